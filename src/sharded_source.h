/*
 * sharded_source.h
 *		Reading a source sharded by customer_code over postgres_fdw, with the
 *		per-customer aggregates pushed down to the shards.
 */
#ifndef SHARDED_SOURCE_H
#define SHARDED_SOURCE_H

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
 * Planner settings for a query over a sharded source: partitionwise join
 * and aggregate on until sharded_settings_pop(); nothing when src is not
 * sharded.  Returns the GUC nest level to pass to sharded_settings_pop().
 */
extern int	sharded_settings_push(const SourceTables *src);
extern void sharded_settings_pop(int nestlevel);

#endif
