/*
 * sharded_source.c
 *		The queries over a source sharded by customer_code (README, "Past one
 *		server"): a coordinator schema whose customers, sales_orders,
 *		sales_order_lines and order_totals are hash-partitioned by
 *		customer_code, with postgres_fdw foreign tables on the shard servers
 *		as partitions.
 *
 * Over the source tables an order's total is a correlated subquery on the
 * lines, which over foreign tables is one remote query per order and shard,
 * and the per-customer aggregate then runs on the coordinator.  postgres_fdw
 * cannot ship an aggregate over a grouped subquery, so the shards expose one
 * row per order (order_totals, a view over their own headers and lines,
 * which are co-located by customer_code).  Grouping that relation, joined to
 * customers, by the partition key with partitionwise join and aggregate on
 * lets the planner send the whole per-customer aggregation to each shard
 * (the servers' "extensions" option makes the extension's functions and
 * aggregates shippable): one row per customer travels, not one per order
 * or line.
 */
#include "postgres.h"

#include "utils/guc.h"

#include "sharded_source.h"

static char *
order_totals_query(const SourceTables *src, const char *extra_columns,
				   const char *join, const char *scope)
{
	SourceTables totals = *src;

	Assert(src->order_totals != NULL);
	/* the dates are read from order_totals, whose order_date may be typed apart */
	totals.order_date_is_date = src->totals_date_is_date;
	return psprintf("SELECT o.customer_code, %s, o.order_total::numeric%s"
					" FROM %s o%s WHERE o.confirmed_code = 'Y' AND %s AND %s",
					source_order_date_expr(&totals, "o"), extra_columns,
					src->order_totals, join,
					source_order_window_expr(&totals, "o", "$1"), scope);
}

char *
sharded_order_totals_query(const SourceTables *src, const char *join, const char *scope)
{
	return order_totals_query(src, "", join, scope);
}

/*
 * The shard's order_totals already hold each order's quantity and product
 * codes (source_tables_check_line_items() checked them), so the features'
 * aggregate runs on the shard like targeting_stats: the lines never travel.
 */
char *
sharded_order_items_query(const SourceTables *src, const char *scope)
{
	return order_totals_query(src, ", o.quantity::numeric, o.product_codes::text[]", "", scope);
}

/*
 * One row per line of the confirmed orders in the window $1 satisfying scope
 * (alias o over order_lines, joined as join says): customer_code (the
 * partition key, uncast), order_type, order_number, the order's checked
 * date, the line's amount (NULL for an order without lines), the rows of
 * source_order_lines_query().  The shard's order_lines is a view joining
 * its headers to their lines without grouping, so the route test on the
 * customers (a join by the partition key) filters the orders before their
 * lines are read, and the per-customer aggregate over it (targeting_line_stats)
 * ships whole: each shard folds its route customers' lines, as one server's
 * parallel workers do, and sends one row per customer.
 */
char *
sharded_order_lines_query(const SourceTables *src, const char *join, const char *scope)
{
	SourceTables lines = *src;

	Assert(src->order_lines != NULL);
	lines.order_date_is_date = src->order_lines_date_is_date;
	return psprintf("SELECT o.customer_code, o.order_type::text, o.order_number::text, %s,"
					" o.line_amount::numeric FROM %s o%s WHERE o.confirmed_code = 'Y' AND %s AND %s",
					source_order_date_expr(&lines, "o"), src->order_lines, join,
					source_order_window_expr(&lines, "o", "$1"), scope);
}

int
sharded_settings_push(const SourceTables *src)
{
	int			nestlevel;

	if (src->order_totals == NULL)
		return -1;
	nestlevel = NewGUCNestLevel();
	(void) set_config_option("enable_partitionwise_join", "on",
							 PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	(void) set_config_option("enable_partitionwise_aggregate", "on",
							 PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	return nestlevel;
}

void
sharded_settings_pop(int nestlevel)
{
	if (nestlevel >= 0)
		AtEOXact_GUC(true, nestlevel);
}
