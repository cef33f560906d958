/*
 * feature_stats.c
 *		One customer's visits, sums, first and last order and product codes
 *		(see feature_stats.h).
 *
 * The product codes are interned: a CodeInterner stores each distinct code
 * once, in its own context, and a state's set holds pointers to those
 * strings, compared and hashed as pointers.  The copies used to be per state
 * (one per customer having the code), which at scale 10 made memory and page
 * faults dominate customer_features(); now a query keeps one copy per code.
 * An order's codes are looked up through temporary strings that are freed
 * again, so a state grows with its distinct codes, never with its orders.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "libpq/pqformat.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include "ca_limits.h"
#include "feature_stats.h"
#include "numeric_acc.h"

/* A distinct product code: the interner's own copy. */
typedef struct InternedCode
{
	const char *code;			/* hash key */
	uint32		hash;
	char		status;			/* simplehash bookkeeping */
} InternedCode;

#define SH_PREFIX		interner
#define SH_ELEMENT_TYPE InternedCode
#include "code_hash.h"

/* A member of one state's set: an interned code, by address. */
typedef struct SkuMember
{
	const char *code;			/* hash key: the interned string's address */
	char		status;			/* simplehash bookkeeping */
} SkuMember;

/* fold the address's high bits in: allocations differ mostly in the low ones */
static inline uint32
code_pointer_hash(const char *code)
{
	uint64		v = (uint64) (uintptr_t) code;

	return murmurhash32((uint32) (v ^ (v >> 32)));
}

#define SH_PREFIX		skuset
#define SH_ELEMENT_TYPE SkuMember
#define SH_KEY_TYPE		const char *
#define SH_KEY			code
#define SH_HASH_KEY(tb, key) code_pointer_hash(key)
#define SH_EQUAL(tb, a, b) ((a) == (b))
#define SH_SCOPE		static inline
#define SH_DECLARE
#define SH_DEFINE
#include "lib/simplehash.h"

/* An empty interner in a new child context of parent (see feature_stats.h). */
CodeInterner *
code_interner_create(MemoryContext parent)
{
	MemoryContext context = AllocSetContextCreate(parent,
												  "customer_analytics product codes",
												  ALLOCSET_DEFAULT_SIZES);
	CodeInterner *interner = MemoryContextAlloc(context, sizeof(CodeInterner));

	interner->context = context;
	interner->codes = interner_create(context, 256, NULL);
	return interner;
}

/* code's interned copy (see feature_stats.h). */
const char *
code_interner_intern(CodeInterner *interner, const char *code)
{
	bool		found;
	InternedCode *m = interner_insert(interner->codes, code, &found);

	if (!found)
		m->code = MemoryContextStrdup(interner->context, code); /* code may be temporary */
	return m->code;
}

/* Add an interned code to the set. */
static void
add_pointer(MemoryContext context, FeatureStats *stats, const char *code)
{
	bool		found;

	if (stats->skus == NULL)
		stats->skus = skuset_create(context, 8, NULL);
	(void) skuset_insert(stats->skus, code, &found);
}

/* An order's product codes (may repeat, NULL elements ignored). */
static void
add_codes(MemoryContext context, FeatureStats *stats, ArrayType *codes)
{
	Datum	   *elems;
	bool	   *nulls;
	int			n;

	/* one order's lines: refused above the limit before they are read */
	ca_check_limit("the number of elements of product_codes",
				   ArrayGetNItems(ARR_NDIM(codes), ARR_DIMS(codes)), CA_MAX_ORDER_PRODUCT_CODES,
				   "Pass one row per order with that order's product codes, such as array_agg(product_code) grouped by order.");
	deconstruct_array(codes, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	for (int i = 0; i < n; i++)
	{
		char	   *code;

		if ((i & 0xFFF) == 0)
			CHECK_FOR_INTERRUPTS();

		if (nulls[i])
			continue;
		code = TextDatumGetCString(elems[i]);
		add_pointer(context, stats, code_interner_intern(stats->interner, code));
		pfree(code);
	}
	/* per-order scratch: the caller's context may be a long-lived one */
	pfree(elems);
	pfree(nulls);
}

/* Count one order (see feature_stats.h). */
void
feature_stats_add(MemoryContext context, CodeInterner *interner, FeatureStats *stats,
				  DateADT order_date, Numeric total, Numeric quantity, ArrayType *codes)
{
	/* a state's pointers all come from one interner: the first it was given */
	if (stats->interner == NULL)
		stats->interner = interner;
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

/* *sum += other, when other is a sum (NULL: nothing added) */
static void
add_sum(MemoryContext context, Numeric *sum, Numeric other)
{
	if (other)
		numeric_accumulate(context, sum, other);
}

/* stats += other (see feature_stats.h). */
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
	if (stats->interner == NULL)
		stats->interner = other->interner;
	if (other->skus)
	{
		/*
		 * Pointers of another interner (another Agg node's, should partial
		 * states ever reach us unserialized: PostgreSQL 15 serializes them
		 * even for partitionwise aggregation) are not ours: intern their
		 * strings here.
		 */
		bool		same = (other->interner == stats->interner);
		skuset_iterator it;
		SkuMember  *m;

		/* sized for other's codes at once rather than grown step by step */
		if (stats->skus == NULL)
			stats->skus = skuset_create(context, other->skus->members, NULL);
		skuset_start_iterate(other->skus, &it);
		while ((m = skuset_iterate(other->skus, &it)) != NULL)
		{
			CHECK_FOR_INTERRUPTS();
			add_pointer(context, stats,
						same ? m->code : code_interner_intern(stats->interner, m->code));
		}
	}
}

/* The number of distinct product codes. */
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

			CHECK_FOR_INTERRUPTS();
			pq_sendint32(buf, len);
			pq_sendbytes(buf, m->code, len);
		}
	}
}

/* The state feature_stats_serialize() wrote (see feature_stats.h). */
void
feature_stats_deserialize(StringInfo buf, MemoryContext context, CodeInterner *interner,
						  FeatureStats *stats)
{
	uint32		nskus;
	char	   *code = NULL;
	int32		size = 0;

	stats->interner = interner;
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
		bool		found;

		CHECK_FOR_INTERRUPTS();
		/* one scratch buffer for the image, grown as needed */
		if (len + 1 > size)
		{
			if (code)
				pfree(code);
			size = Max(len + 1, 64);
			code = palloc(size);
		}
		pq_copymsgbytes(buf, code, len);
		code[len] = '\0';
		/* the image's codes are distinct: each is a new member */
		(void) skuset_insert(stats->skus, code_interner_intern(interner, code), &found);
	}
	if (code)
		pfree(code);
}
