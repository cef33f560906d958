/*
 * sharded_source.h
 *		Reading a source sharded by customer_code over postgres_fdw, with the
 *		per-customer aggregates pushed down to the shards.
 */
#ifndef SHARDED_SOURCE_H
#define SHARDED_SOURCE_H

#include "nodes/pg_list.h"
#include "utils/array.h"
#include "source_tables.h"

/*
 * Query text over a sharded source's order_totals (alias o), as
 * source_order_totals_query(): confirmed orders in the window $1 satisfying
 * scope, as (customer_code, order date, order total numeric).  join is
 * pasted after "FROM order_totals o" (a JOIN on customers c, or "").
 * customer_code is the partition key column itself, uncast, so that
 * grouping on it lets the planner aggregate per partition (per shard).
 */
extern char *sharded_order_totals_query(const SourceTables *src, const char *join,
										const char *scope);

/*
 * As source_order_items_query() over a sharded source's order_totals: the
 * columns of sharded_order_totals_query() (without a join), then the
 * order's quantity (numeric) and product codes (text[]).
 */
extern char *sharded_order_items_query(const SourceTables *src, const char *scope);

/*
 * As source_order_lines_query() over a sharded source's order_lines (alias
 * o; join pasted after it as in sharded_order_totals_query()): one row per
 * line, customer_code uncast.  Only when src->order_lines is set.
 */
extern char *sharded_order_lines_query(const SourceTables *src, const char *join,
									   const char *scope);

/*
 * One partition of a sharded source's order_totals and the listed customer
 * codes whose rows it can hold (sharded_codes_by_partition()).
 */
typedef struct ShardCodes
{
	const char *relation;		/* quoted, schema-qualified partition */
	ArrayType  *codes;			/* text[] */
} ShardCodes;

/*
 * The customer codes (text Datums, no NULLs) split by the partition of the
 * sharded source's order_totals that can hold their rows: a List of
 * ShardCodes, one per partition given a code; *nparts is set to the number
 * of partitions.  NIL when the partitions cannot be read one by one as the
 * parent is (not hash-partitioned on customer_code alone, row security, a
 * partition the caller may not read): read the parent then.
 */
extern List *sharded_codes_by_partition(const SourceTables *src, Datum *codes, int ncodes,
										int *nparts);

/*
 * Planner settings for a query over a sharded source: partitionwise join
 * and aggregate on until sharded_settings_pop(); nothing when src is not
 * sharded.  Returns the GUC nest level to pass to sharded_settings_pop().
 */
extern int	sharded_settings_push(const SourceTables *src);
extern void sharded_settings_pop(int nestlevel);

#endif
