/*
 * feature_stats.c
 *		One customer's visits, sums, first and last order and product codes
 *		(see feature_stats.h).
 *
 * The product codes are a set of strings, each stored once per state in the
 * state's context; an order's codes are looked up (and copied only when new)
 * through temporary strings that are freed again, so a state grows with its
 * distinct codes, never with its orders.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "libpq/pqformat.h"
#include "utils/builtins.h"

#include "feature_stats.h"
#include "numeric_acc.h"

/* A member of one state's set: a product code, the state's own copy. */
typedef struct SkuMember
{
	const char *code;			/* hash key */
	uint32		hash;
	char		status;			/* simplehash bookkeeping */
} SkuMember;

#define SH_PREFIX		skuset
#define SH_ELEMENT_TYPE SkuMember
#include "code_hash.h"

/* Add a product code to the set, copying it into context when it is new. */
static void
add_code(MemoryContext context, FeatureStats *stats, const char *code)
{
	SkuMember  *m;
	bool		found;

	if (stats->skus == NULL)
		stats->skus = skuset_create(context, 8, NULL);
	m = skuset_insert(stats->skus, code, &found);
	if (!found)
		m->code = MemoryContextStrdup(context, code);	/* code may be temporary */
}

/* An order's product codes (may repeat, NULL elements ignored). */
static void
add_codes(MemoryContext context, FeatureStats *stats, ArrayType *codes)
{
	Datum	   *elems;
	bool	   *nulls;
	int			n;

	deconstruct_array(codes, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	for (int i = 0; i < n; i++)
	{
		char	   *code;

		if (nulls[i])
			continue;
		code = TextDatumGetCString(elems[i]);
		add_code(context, stats, code);
		pfree(code);
	}
	/* per-order scratch: the caller's context may be a long-lived one */
	pfree(elems);
	pfree(nulls);
}

void
feature_stats_add(MemoryContext context, FeatureStats *stats, DateADT order_date,
				  Numeric total, Numeric quantity, ArrayType *codes)
{
	if (stats->visits == 0 || order_date < stats->first_order)
		stats->first_order = order_date;
	if (stats->visits == 0 || order_date > stats->last_order)
		stats->last_order = order_date;
	stats->visits++;
	if (total)
		numeric_accumulate(context, &stats->spend, total);
	if (quantity)
		numeric_accumulate(context, &stats->quantity, quantity);
	if (codes)
		add_codes(context, stats, codes);
}

static void
add_sum(MemoryContext context, Numeric *sum, Numeric other)
{
	if (other)
		numeric_accumulate(context, sum, other);
}

void
feature_stats_combine(MemoryContext context, FeatureStats *stats, const FeatureStats *other)
{
	if (other->visits == 0)
		return;
	if (stats->visits == 0 || other->first_order < stats->first_order)
		stats->first_order = other->first_order;
	if (stats->visits == 0 || other->last_order > stats->last_order)
		stats->last_order = other->last_order;
	stats->visits += other->visits;
	add_sum(context, &stats->spend, other->spend);
	add_sum(context, &stats->quantity, other->quantity);
	if (other->skus)
	{
		skuset_iterator it;
		SkuMember  *m;

		/* sized for other's codes at once rather than grown step by step */
		if (stats->skus == NULL)
			stats->skus = skuset_create(context, other->skus->members, NULL);
		skuset_start_iterate(other->skus, &it);
		while ((m = skuset_iterate(other->skus, &it)) != NULL)
			add_code(context, stats, m->code);
	}
}

int64
feature_stats_skus(const FeatureStats *stats)
{
	return stats->skus ? (int64) stats->skus->members : 0;
}

/*
 * layout: visits, first and last order, the two sums, the number of codes,
 * then each code as its length and bytes (raw: pq_sendstring would convert
 * them to the client encoding)
 */
void
feature_stats_serialize(StringInfo buf, const FeatureStats *stats)
{
	pq_sendint64(buf, stats->visits);
	pq_sendint32(buf, stats->first_order);
	pq_sendint32(buf, stats->last_order);
	numeric_send_sum(buf, stats->spend);
	numeric_send_sum(buf, stats->quantity);
	pq_sendint32(buf, (uint32) feature_stats_skus(stats));
	if (stats->skus)
	{
		skuset_iterator it;
		SkuMember  *m;

		skuset_start_iterate(stats->skus, &it);
		while ((m = skuset_iterate(stats->skus, &it)) != NULL)
		{
			int32		len = strlen(m->code);

			pq_sendint32(buf, len);
			pq_sendbytes(buf, m->code, len);
		}
	}
}

void
feature_stats_deserialize(StringInfo buf, MemoryContext context, FeatureStats *stats)
{
	uint32		nskus;

	stats->visits = pq_getmsgint64(buf);
	stats->first_order = (DateADT) pq_getmsgint(buf, 4);
	stats->last_order = (DateADT) pq_getmsgint(buf, 4);
	stats->spend = numeric_get_sum(buf, context);
	stats->quantity = numeric_get_sum(buf, context);
	nskus = pq_getmsgint(buf, 4);
	stats->skus = nskus > 0 ? skuset_create(context, nskus, NULL) : NULL;
	for (uint32 i = 0; i < nskus; i++)
	{
		int32		len = pq_getmsgint(buf, 4);
		char	   *code = MemoryContextAlloc(context, len + 1);
		bool		found;

		pq_copymsgbytes(buf, code, len);
		code[len] = '\0';
		/* the image's codes are distinct: each is a new member, kept as read */
		(void) skuset_insert(stats->skus, code, &found);
	}
}
