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

#include "ca_limits.h"
#include "numeric_acc.h"
#include "sql_args.h"
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
	ARG_CUSTOMERS,
	NUM_TARGETING_ARGS
};
StaticAssertDecl(NUM_TARGETING_ARGS == TARGETING_NARGS, "targeting.h counts the arguments");

static const char *const arg_names[NUM_TARGETING_ARGS] = {
	"routes", "spend_window", "min_spend", "low_ticket_window",
	"low_ticket_below", "min_low_tickets", "base_window", "recent_window",
	"decline_pct", "exclude_closed", "route_source", "source_schema",
	"customers"
};

/* the smallest window covering a and b */
static DateWindow
hull(DateWindow a, DateWindow b)
{
	DateWindow	w;

	w.lo = Min(a.lo, b.lo);
	w.hi = Max(a.hi, b.hi);
	return w;
}

/* Check every argument of target_customers() / targeting_funnel() into params. */
void
targeting_parse_args(FunctionCallInfo fcinfo, TargetingParams *params)
{
	char	   *route_source;

	/* customers came with 1.1: a 1.0 declaration (before the update) has one argument less */
	/* (_target_customers_from_state() has the state relation after them) */
	/* (_campaign_delta_state_targets() the state, the changes and the
	 * orders, then the month state, the revenue window and the long form's
	 * keys) */
	Assert(PG_NARGS() == NUM_TARGETING_ARGS || PG_NARGS() == ARG_CUSTOMERS ||
		   PG_NARGS() == NUM_TARGETING_ARGS + 1 || PG_NARGS() == NUM_TARGETING_ARGS + 3 ||
		   PG_NARGS() == NUM_TARGETING_ARGS + 6);
	memset(params, 0, sizeof(*params));

	params->routes = arg_text_array(fcinfo, ARG_ROUTES, arg_names[ARG_ROUTES], false,
									CA_MAX_ROUTES,
									"List the campaign's delivery routes only, such as routes => '{K1,K2,PS}'.");
	params->windows.spend = arg_date_window(fcinfo, ARG_SPEND_WINDOW, arg_names[ARG_SPEND_WINDOW]);
	params->min_spend = arg_amount(fcinfo, ARG_MIN_SPEND, arg_names[ARG_MIN_SPEND]);
	params->windows.low_ticket = arg_date_window(fcinfo, ARG_LOW_TICKET_WINDOW, arg_names[ARG_LOW_TICKET_WINDOW]);
	params->windows.low_ticket_below = arg_amount(fcinfo, ARG_LOW_TICKET_BELOW, arg_names[ARG_LOW_TICKET_BELOW]);

	arg_not_null(fcinfo, ARG_MIN_LOW_TICKETS, arg_names[ARG_MIN_LOW_TICKETS]);
	params->min_low_tickets = PG_GETARG_INT32(ARG_MIN_LOW_TICKETS);
	if (params->min_low_tickets < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("min_low_tickets must be at least 1, not %d", params->min_low_tickets),
				 errhint("The notebook's rule \"more than 2 low tickets\" is min_low_tickets => 3.")));

	params->windows.base = arg_date_window(fcinfo, ARG_BASE_WINDOW, arg_names[ARG_BASE_WINDOW]);
	params->windows.recent = arg_date_window(fcinfo, ARG_RECENT_WINDOW, arg_names[ARG_RECENT_WINDOW]);
	params->decline_pct = arg_amount(fcinfo, ARG_DECLINE_PCT, arg_names[ARG_DECLINE_PCT]);
	if (numeric_compare(params->decline_pct, int64_to_numeric(100)) > 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("decline_pct must be between 0 and 100"),
				 errhint("decline_pct => 30 selects customers whose recent sales fell by more than 30 %% of their base sales.")));

	arg_not_null(fcinfo, ARG_EXCLUDE_CLOSED, arg_names[ARG_EXCLUDE_CLOSED]);
	params->exclude_closed = PG_GETARG_BOOL(ARG_EXCLUDE_CLOSED);

	arg_not_null(fcinfo, ARG_ROUTE_SOURCE, arg_names[ARG_ROUTE_SOURCE]);
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
	params->customers = (PG_NARGS() <= ARG_CUSTOMERS || PG_ARGISNULL(ARG_CUSTOMERS)) ? NULL :
		arg_text_array(fcinfo, ARG_CUSTOMERS, arg_names[ARG_CUSTOMERS], true,
					   CA_MAX_CUSTOMER_CODES,
					   "Leave customers out (NULL) to consider every customer, or call once per batch of customer codes.");

	params->data = hull(hull(params->windows.spend, params->windows.low_ticket),
						hull(params->windows.base, params->windows.recent));
}
