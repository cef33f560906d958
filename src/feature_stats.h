/*
 * feature_stats.h
 *		What customer_features() keeps of one customer's confirmed orders:
 *		visits, exact sums, first and last order, and the set of product
 *		codes.  One implementation serves both the customer_feature_stats
 *		aggregate (whose partial states parallel workers build and the leader
 *		combines) and the per-order fold that remains for SQL objects older
 *		than the aggregate.
 *
 * Product codes are interned: a CodeInterner keeps each distinct code once,
 * and a state's set holds pointers to the interned strings.  Customers share
 * most codes, so a query keeps one copy of each code rather than one per
 * customer that has it (scale 10: 100k customers, ~117 codes each).  A state
 * records the interner its pointers come from, which must outlive it.
 */
#ifndef FEATURE_STATS_H
#define FEATURE_STATS_H

#include "lib/stringinfo.h"
#include "utils/array.h"
#include "utils/date.h"
#include "utils/numeric.h"

struct skuset_hash;				/* defined in feature_stats.c */
struct interner_hash;

/* The distinct product codes seen, each stored once in context. */
typedef struct CodeInterner
{
	MemoryContext context;		/* owns the table and the strings */
	struct interner_hash *codes;
} CodeInterner;

/* An empty interner in a new child context of parent. */
extern CodeInterner *code_interner_create(MemoryContext parent);

/* code's interned copy, stable for the interner's life; copied when new. */
extern const char *code_interner_intern(CodeInterner *interner, const char *code);

/* Sums are NULL until the first order adds to them (NULL means 0). */
typedef struct FeatureStats
{
	int64		visits;			/* every order given */
	Numeric		spend;			/* sum of the non-NULL order totals */
	Numeric		quantity;		/* sum of the non-NULL order quantities */
	DateADT		first_order;	/* valid when visits > 0 */
	DateADT		last_order;
	CodeInterner *interner;		/* where skus' strings live; NULL until set */
	struct skuset_hash *skus;	/* distinct interned codes, by pointer; NULL
								 * until the first */
} FeatureStats;

/*
 * Count one order: total and quantity NULL add nothing, codes (text[], may
 * repeat, NULL elements ignored) may be NULL.  What the state keeps is
 * allocated in context, its codes interned through interner (a state keeps
 * the first interner it was given); the scratch of reading the codes is
 * freed again, whatever the current context is.
 */
extern void feature_stats_add(MemoryContext context, CodeInterner *interner,
							  FeatureStats *stats, DateADT order_date,
							  Numeric total, Numeric quantity, ArrayType *codes);

/*
 * stats += other, as if other's orders had been added one by one.  With
 * different interners (e.g. unserialized partial states of different Agg
 * nodes), other's codes are interned again through stats' interner; an
 * empty stats without one adopts other's.
 */
extern void feature_stats_combine(MemoryContext context, FeatureStats *stats,
								  const FeatureStats *other);

/*
 * A byte image for parallel workers (the codes as strings), and back:
 * allocated in context, the codes interned through interner.
 */
extern void feature_stats_serialize(StringInfo buf, const FeatureStats *stats);
extern void feature_stats_deserialize(StringInfo buf, MemoryContext context,
									  CodeInterner *interner, FeatureStats *stats);

/* The number of distinct product codes. */
extern int64 feature_stats_skus(const FeatureStats *stats);

#endif
