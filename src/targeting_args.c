/*
 * targeting_args.c
 *		Checking the funnel's arguments before anything is read.
 *
 * Every argument is named in its error so that an analyst calling
 * target_customers(spend_window => ...) sees which one to fix.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/rangetypes.h"
#include "utils/typcache.h"

#include "targeting.h"

/* Argument positions, as declared in the extension script. */
enum
{
	ARG_ROUTES,
	ARG_SPEND_WINDOW,
	ARG_MIN_SPEND,
	ARG_LOW_TICKET_WINDOW,
	ARG_LOW_TICKET_BELOW,
	ARG_MIN_LOW_TICKETS,
	ARG_BASE_WINDOW,
	ARG_RECENT_WINDOW,
	ARG_DECLINE_PCT,
	ARG_EXCLUDE_CLOSED,
	ARG_ROUTE_SOURCE,
	ARG_SOURCE_SCHEMA,
	NUM_TARGETING_ARGS
};

static const char *const arg_names[NUM_TARGETING_ARGS] = {
	"routes", "spend_window", "min_spend", "low_ticket_window",
	"low_ticket_below", "min_low_tickets", "base_window", "recent_window",
	"decline_pct", "exclude_closed", "route_source", "source_schema"
};

static void
require_not_null(FunctionCallInfo fcinfo, int argno)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("argument %s must not be NULL", arg_names[argno]),
				 errhint("Leave the argument out to use its default.")));
}

static DateWindow
window_arg(FunctionCallInfo fcinfo, int argno)
{
	RangeType  *range;
	TypeCacheEntry *typcache;
	RangeBound	lower,
				upper;
	bool		empty;
	DateWindow	w;

	require_not_null(fcinfo, argno);
	range = PG_GETARG_RANGE_P(argno);
	typcache = lookup_type_cache(RangeTypeGetOid(range), TYPECACHE_RANGE_INFO);
	range_deserialize(typcache, range, &lower, &upper, &empty);

	if (empty)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must not be empty", arg_names[argno]),
				 errhint("Give a window of at least one day, such as daterange('2025-01-01', '2025-12-31', '[]').")));

	if (lower.infinite || upper.infinite ||
		DATE_NOT_FINITE(DatumGetDateADT(lower.val)) ||
		DATE_NOT_FINITE(DatumGetDateADT(upper.val)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must have a finite lower and upper bound", arg_names[argno]),
				 errhint("Give both ends, such as daterange('2025-01-01', '2025-12-31', '[]').")));

	/* daterange is canonical: [lo, hi) */
	w.lo = DatumGetDateADT(lower.val);
	w.hi = DatumGetDateADT(upper.val);
	return w;
}

/* A non-negative, finite amount or percentage. */
static Numeric
amount_arg(FunctionCallInfo fcinfo, int argno)
{
	Numeric		n;

	require_not_null(fcinfo, argno);
	n = PG_GETARG_NUMERIC(argno);
	if (numeric_is_nan(n) || numeric_is_inf(n))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be a finite number", arg_names[argno]),
				 errhint("Give a plain amount such as 1000.")));
	if (DatumGetInt32(DirectFunctionCall2(numeric_cmp, NumericGetDatum(n),
										  NumericGetDatum(int64_to_numeric(0)))) < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must not be negative", arg_names[argno]),
				 errhint("Give an amount of zero or more.")));
	return n;
}

static void
routes_arg(FunctionCallInfo fcinfo, TargetingParams *params)
{
	ArrayType  *routes;
	Datum	   *elems;
	bool	   *nulls;
	int			nelems;

	require_not_null(fcinfo, ARG_ROUTES);
	routes = PG_GETARG_ARRAYTYPE_P(ARG_ROUTES);
	deconstruct_array(routes, TEXTOID, -1, false, TYPALIGN_INT,
					  &elems, &nulls, &nelems);
	if (nelems == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("routes must not be empty"),
				 errhint("Name at least one delivery route, such as routes => '{K1,K2,PS}'.")));
	for (int i = 0; i < nelems; i++)
		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("routes must not contain NULL"),
					 errhint("Remove the NULL element from the array.")));
	params->routes = routes;
}

static DateWindow
hull(DateWindow a, DateWindow b)
{
	DateWindow	w;

	w.lo = Min(a.lo, b.lo);
	w.hi = Max(a.hi, b.hi);
	return w;
}

void
targeting_parse_args(FunctionCallInfo fcinfo, TargetingParams *params)
{
	char	   *route_source;

	Assert(PG_NARGS() == NUM_TARGETING_ARGS);
	memset(params, 0, sizeof(*params));

	routes_arg(fcinfo, params);
	params->spend = window_arg(fcinfo, ARG_SPEND_WINDOW);
	params->min_spend = amount_arg(fcinfo, ARG_MIN_SPEND);
	params->low_ticket = window_arg(fcinfo, ARG_LOW_TICKET_WINDOW);
	params->low_ticket_below = amount_arg(fcinfo, ARG_LOW_TICKET_BELOW);

	require_not_null(fcinfo, ARG_MIN_LOW_TICKETS);
	params->min_low_tickets = PG_GETARG_INT32(ARG_MIN_LOW_TICKETS);
	if (params->min_low_tickets < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("min_low_tickets must be at least 1, not %d", params->min_low_tickets),
				 errhint("The notebook's rule \"more than 2 low tickets\" is min_low_tickets => 3.")));

	params->base = window_arg(fcinfo, ARG_BASE_WINDOW);
	params->recent = window_arg(fcinfo, ARG_RECENT_WINDOW);
	params->decline_pct = amount_arg(fcinfo, ARG_DECLINE_PCT);
	if (DatumGetInt32(DirectFunctionCall2(numeric_cmp, NumericGetDatum(params->decline_pct),
										  NumericGetDatum(int64_to_numeric(100)))) > 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("decline_pct must be between 0 and 100"),
				 errhint("decline_pct => 30 selects customers whose recent sales fell by more than 30 %% of their base sales.")));

	require_not_null(fcinfo, ARG_EXCLUDE_CLOSED);
	params->exclude_closed = PG_GETARG_BOOL(ARG_EXCLUDE_CLOSED);

	require_not_null(fcinfo, ARG_ROUTE_SOURCE);
	route_source = text_to_cstring(PG_GETARG_TEXT_PP(ARG_ROUTE_SOURCE));
	if (strcmp(route_source, "customer") == 0)
		params->route_from_order = false;
	else if (strcmp(route_source, "order") == 0)
		params->route_from_order = true;
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("route_source must be 'customer' or 'order', not '%s'", route_source),
				 errhint("'customer' filters on the customer's own delivery_route (the notebook's rule); "
						 "'order' on the route each order was delivered on.")));

	params->source_schema = PG_ARGISNULL(ARG_SOURCE_SCHEMA) ? NULL :
		text_to_cstring(PG_GETARG_TEXT_PP(ARG_SOURCE_SCHEMA));

	params->data = hull(hull(params->spend, params->low_ticket),
						hull(params->base, params->recent));
}
