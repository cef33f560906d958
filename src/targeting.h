/*
 * targeting.h
 *		The promo-targeting funnel: arguments, per-customer state, decisions.
 *		target_customers() and targeting_funnel() are two views of one pass.
 */
#ifndef TARGETING_H
#define TARGETING_H

#include "fmgr.h"
#include "utils/array.h"
#include "utils/date.h"
#include "utils/numeric.h"

#include "order_stats.h"
#include "sql_args.h"

struct CustomerState;

/*
 * What targeting_run() hands its stats hook: the pass to add the route
 * customers to (add: finds or adds a customer, its attributes and stats
 * zeroed), the customers query of the listed customers ($2: the routes,
 * $3: the codes; the route and closure tests of target_customers()) and
 * the source schema's name (for messages), and the memory context of the
 * pass (strings and sums of the customers added live there).
 */
typedef struct TargetingHookPass
{
	struct CustomerState *(*add) (void *pass, const char *code);
	void	   *pass;
	const char *customers_query;
	const char *schema;
	MemoryContext context;
} TargetingHookPass;

/*
 * Finds the route customers among params->customers and fills their
 * attributes (in_customers, trade_name, ...) and stats (orders) instead of
 * the customers query and a query of a state table: the delta refresh's one
 * pass (campaign_delta_state.c), which keeps the route customers'
 * attributes in the campaign's state.  Called once, after the source
 * tables are opened; no customers query runs.
 */
typedef void (*TargetingStatsHook) (void *arg, const TargetingHookPass *hook);

typedef struct TargetingParams
{
	ArrayType  *routes;			/* text[], non-empty, no NULLs */
	OrderWindows windows;		/* spend, low_ticket, base, recent, low_ticket_below */
	Numeric		min_spend;
	int32		min_low_tickets;
	Numeric		decline_pct;
	bool		exclude_closed;
	bool		route_from_order;	/* route_source => 'order' */
	const char *source_schema;	/* NULL: the GUC */
	ArrayType  *customers;		/* text[]: only these customer codes; NULL: all */
	const char *stats_relation;	/* per-customer state table (quoted name) to
								 * read instead of folding orders; NULL: fold */
	DateWindow	data;			/* smallest window covering the four above */
	TargetingStatsHook stats_hook;	/* with customers and stats_relation:
									 * the route customers and their stats */
	void	   *stats_hook_arg;
} TargetingParams;

/* Everything one pass learns about a customer, then the funnel's verdicts. */
typedef struct CustomerState
{
	const char *code;			/* hash key */
	uint32		hash;
	char		status;			/* simplehash bookkeeping */

	bool		in_customers;	/* attributes below come from customers */
	char	   *trade_name;
	char	   *delivery_route;
	char	   *shipping_address;
	char	   *csm;

	OrderStats	orders;			/* its confirmed orders in the data window */

	bool		spend_ok;		/* verdicts, set after the pass */
	bool		low_ticket;
	bool		declining;

	/*
	 * The line scan's sums of exact order totals (targeting.c), added to
	 * orders' Numeric sums at its end: total, spend, base, recent.
	 */
	struct
	{
		int64		units;		/* of 1e-8 */
		int16		dscale;
		bool		any;
	}			fast[4];
} CustomerState;

typedef struct TargetingResult
{
	CustomerState **customers;	/* sorted by customer_code, bytewise */
	int			ncustomers;
	int64		uncoded_customers;	/* route customers with NULL code */
} TargetingResult;

/* Both functions take the same thirteen arguments in the same order. */
#define TARGETING_NARGS 13
extern void targeting_parse_args(FunctionCallInfo fcinfo, TargetingParams *params);
extern TargetingResult *targeting_run(const TargetingParams *params);

extern void targeting_duplicate_customer(const char *schema, const char *code) pg_attribute_noreturn();
extern bool customer_is_target(const CustomerState *c);
extern const char *customer_target_reason(const CustomerState *c);
extern Numeric customer_pct_change(const CustomerState *c);
extern Numeric customer_avg_ticket(const CustomerState *c);

/*
 * The delta refresh's state update (campaign_delta_state.c): what
 * campaign_delta_state_apply needs, its TargetingStatsHook argument.
 */
typedef struct CampaignDeltaState
{
	const char *state;			/* the campaign's state table, quoted name */
	Oid			state_relid;	/* ... and its OID */
	const char *changes;		/* SQL of the signed order changes (alias x) */
	const char *orders;			/* SQL of (customer_code, order_date) rows */
	const TargetingParams *params;	/* windows, data window, changed customers */
	/* the months (campaign_delta_months_apply); month_state NULL: none */
	const char *month_state;	/* the campaign's month state, quoted name */
	Oid			month_state_relid;	/* ... and its OID */
	Datum		revenue_window; /* daterange */
	const char *long_keys;		/* table of the long form's keys, quoted name */
	struct DeltaMonths *months; /* the change rows per customer and month */
} CampaignDeltaState;

extern void campaign_delta_state_apply(void *arg, const TargetingHookPass *hook);
extern struct DeltaMonths *campaign_delta_months_create(MemoryContext context);
extern void campaign_delta_months_apply(const CampaignDeltaState *delta, const TargetingResult *result);

#endif
