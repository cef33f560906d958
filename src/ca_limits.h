/*
 * ca_limits.h
 *		The size bounds of every SQL-callable function and aggregate, in one
 *		place (README.md, "Limits", documents the same numbers).
 *
 * A request above a bound is refused before anything is allocated for it,
 * with SQLSTATE 54000 (program_limit_exceeded), a detail giving the limit
 * and the request, and a hint saying what to do instead.  Work within a
 * bound can still take long: every long loop checks for interrupts, so a
 * cancel or statement_timeout stops it promptly.
 *
 * (Not named limits.h: that would shadow the C library's header.)
 */
#ifndef CA_LIMITS_H
#define CA_LIMITS_H

#include "fmgr.h"

/*
 * monthly_revenue() and monthly_revenue_stats: the calendar months a
 * revenue_window may touch (100 years; campaigns stop at 120 months).
 */
#define CA_MAX_REVENUE_MONTHS		1200

/*
 * Customer codes in one array argument: monthly_revenue(customer_codes),
 * target_customers() and targeting_funnel() (customers).
 */
#define CA_MAX_CUSTOMER_CODES		1000000

/*
 * monthly_revenue(): customer codes (as listed, duplicates included) times
 * months of the window.  Each cell keeps 16 bytes, plus its exact sum
 * (about 32 bytes) when it has orders: 5 million cells are 80 MB of state
 * without orders and at most about 250 MB with an order in every month.
 * 100,000 customers x 13 months are 1.3 million cells; a campaign's 120
 * months allow 41,666 customers.
 */
#define CA_MAX_MONTHLY_CELLS		5000000

/*
 * _member_orders(): customer codes (as listed, duplicates included) times
 * windows, 32 bytes a cell plus its exact sum when it has orders, as
 * monthly_revenue()'s cells.
 */
#define CA_MAX_MEMBER_WINDOW_CELLS	5000000
/* target_customers() and targeting_funnel(): delivery routes in routes. */
#define CA_MAX_ROUTES				10000

/*
 * customer_feature_stats: product codes in one row's product_codes array
 * (one order's lines).
 */
#define CA_MAX_ORDER_PRODUCT_CODES	1000000

/* kmeans_fit, silhouette, kmeans_predict, kmeans_standardize: features per vector. */
#define CA_MAX_FEATURES				1000

/*
 * kmeans_fit and silhouette keep every point: rows x features values, 8
 * bytes each (128 MB; fitting holds about three copies).  1.4 million
 * customers with the 11 features of customer_features().
 */
#define CA_MAX_POINT_VALUES			16000000

/* kmeans_fit: clusters, and the options n_init and max_iter. */
#define KMEANS_MAX_K				1000
#define KMEANS_MAX_N_INIT			1000
#define KMEANS_MAX_MAX_ITER			100000

/*
 * silhouette: points of one exact score (n^2 distances; 80,000 points took
 * about 30 s on the development machine), and the largest sample_size.
 */
#define CA_MAX_SILHOUETTE_POINTS	100000

/*
 * Refuse a request above a limit: SQLSTATE 54000, "<what> exceeds the limit",
 * a detail with the limit and the request, and hint.
 */
extern void ca_check_limit(const char *what, int64 request, int64 limit, const char *hint);

/*
 * The elements of array argument argno (not NULL): refused above limit
 * before anything is read from it.
 */
extern void ca_check_array_length(FunctionCallInfo fcinfo, int argno, const char *name,
								  int64 limit, const char *hint);

#endif
