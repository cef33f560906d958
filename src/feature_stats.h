/*
 * feature_stats.h
 *		What customer_features() keeps of one customer's confirmed orders:
 *		visits, exact sums, first and last order, and the set of product
 *		codes.  One implementation serves both the customer_feature_stats
 *		aggregate (whose partial states parallel workers build and the leader
 *		combines) and the per-order fold that remains for SQL objects older
 *		than the aggregate.
 */
#ifndef FEATURE_STATS_H
#define FEATURE_STATS_H

#include "lib/stringinfo.h"
#include "utils/array.h"
#include "utils/date.h"
#include "utils/numeric.h"

struct skuset_hash;				/* defined in feature_stats.c */

/* Sums are NULL until the first order adds to them (NULL means 0). */
typedef struct FeatureStats
{
	int64		visits;			/* every order given */
	Numeric		spend;			/* sum of the non-NULL order totals */
	Numeric		quantity;		/* sum of the non-NULL order quantities */
	DateADT		first_order;	/* valid when visits > 0 */
	DateADT		last_order;
	struct skuset_hash *skus;	/* distinct product codes; NULL until the first */
} FeatureStats;

/*
 * Count one order: total and quantity NULL add nothing, codes (text[], may
 * repeat, NULL elements ignored) may be NULL.  What the state keeps is
 * allocated in context; the scratch of reading the codes is freed again,
 * whatever the current context is.
 */
extern void feature_stats_add(MemoryContext context, FeatureStats *stats,
							  DateADT order_date, Numeric total, Numeric quantity,
							  ArrayType *codes);

/* stats += other, as if other's orders had been added one by one. */
extern void feature_stats_combine(MemoryContext context, FeatureStats *stats,
								  const FeatureStats *other);

/* A byte image for parallel workers, and back (allocated in context). */
extern void feature_stats_serialize(StringInfo buf, const FeatureStats *stats);
extern void feature_stats_deserialize(StringInfo buf, MemoryContext context,
									  FeatureStats *stats);

/* The number of distinct product codes. */
extern int64 feature_stats_skus(const FeatureStats *stats);

#endif
