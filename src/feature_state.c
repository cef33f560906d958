/*
 * feature_state.c
 *		customer_analytics._customer_features_from_state(): a segmentation's
 *		features derived from its per-customer state table instead of the
 *		orders.
 *
 * refresh_segmentation() keeps, per customer with a confirmed order in the
 * feature window, the raw stats customer_features() folds (visits, exact
 * sums with the number of orders that have a total / a quantity, distinct
 * product codes, first and last order), adjusted from the rollup's order
 * changes.  Everything that depends on as_of (recency, tenure) and every
 * ratio is derived here, by customer_features()'s own code, so the rows
 * equal a recompute's exactly whatever as_of the refresh resolves.
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/regproc.h"

#include "customer_features.h"

PG_FUNCTION_INFO_V1(customer_features_from_state);

/*
 * _customer_features_from_state(state regclass, feature_window daterange,
 * as_of date): the rows of customer_features(feature_window, as_of) for the
 * customers of the state table (customer_code, visits, spend, spend_orders,
 * quantity, quantity_orders, skus, first_order, last_order).  A sum counts
 * as NULL (no total, no quantity) when no order contributed to it, as the
 * aggregate leaves it; with no count (NULL: a state copied from
 * customer_features()) it is taken as it is.  The state is read with the
 * caller's rights.
 */
Datum
customer_features_from_state(PG_FUNCTION_ARGS)
{
	Oid			state;
	char	   *query;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("state must not be NULL"),
				 errhint("Pass a segmentation's per-customer state table.")));
	state = PG_GETARG_OID(0);
	if (get_rel_name(state) == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", state),
				 errhint("Refresh the segmentation: refresh_segmentation() builds its state again.")));
	query = psprintf("SELECT s.customer_code, s.visits,"
					 " CASE WHEN s.spend_orders IS NULL OR s.spend_orders > 0 THEN s.spend END,"
					 " CASE WHEN s.quantity_orders IS NULL OR s.quantity_orders > 0 THEN s.quantity END,"
					 " s.skus, s.first_order, s.last_order"
					 " FROM %s s WHERE s.visits > 0",
					 quote_qualified_identifier(get_namespace_name(get_rel_namespace(state)),
												get_rel_name(state)));
	return customer_features_from_stats(fcinfo, query, "_customer_features_from_state");
}
