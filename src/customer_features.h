/*
 * customer_features.h
 *		customer_features()'s derivation of the feature row from one
 *		customer's folded stats, for callers that keep the stats themselves.
 */
#ifndef CUSTOMER_FEATURES_H
#define CUSTOMER_FEATURES_H

#include "fmgr.h"

/*
 * Return, as fcinfo's materialized result set, customer_features()'s rows
 * for the customers stats_query lists: one row each of customer_code,
 * visits (bigint), spend and quantity (numeric sums, NULL for none), skus
 * (bigint), first_order and last_order (date); rows with a NULL code or
 * visits are skipped.  fcinfo's arguments 1 and 2 are feature_window and
 * as_of, checked as customer_features() checks them; function names the
 * caller in internal errors.
 */
extern Datum customer_features_from_stats(FunctionCallInfo fcinfo, const char *stats_query,
										  const char *function);

#endif
