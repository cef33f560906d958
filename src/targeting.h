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
 * Fills the stats (orders) of the route customers the customers query found
 * among params->customers, instead of a query of a state table: the delta
 * refresh's one pass (campaign_delta_state.c).  Sums are allocated in
 * context.  Called once, after the customers query.
 */
typedef void (*TargetingStatsHook) (void *arg, struct CustomerState **customers, int ncustomers,
									MemoryContext context);

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
									 * the stats of the route customers */
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
	const char *changes;		/* SQL of the signed order changes (alias x) */
	const char *orders;			/* SQL of (customer_code, order_date) rows */
	const TargetingParams *params;	/* windows, data window, changed customers */
	/* the months (campaign_delta_months_apply); month_state NULL: none */
	const char *month_state;	/* the campaign's month state, quoted name */
	Datum		revenue_window; /* daterange */
	const char *long_keys;		/* table of the long form's keys, quoted name */
	struct DeltaMonths *months; /* the change rows per customer and month */
} CampaignDeltaState;

extern void campaign_delta_state_apply(void *arg, CustomerState **customers, int ncustomers,
									   MemoryContext context);
extern struct DeltaMonths *campaign_delta_months_create(MemoryContext context);
extern void campaign_delta_months_apply(const CampaignDeltaState *delta, const TargetingResult *result);

#endif
