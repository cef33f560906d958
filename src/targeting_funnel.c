/*
 * targeting_funnel.c
 *		customer_analytics.targeting_funnel(): how many customers (and their
 *		orders) survive each step of the promo funnel, as the notebook prints.
 */
#include "postgres.h"

#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/tuplestore.h"

#include "targeting.h"

PG_FUNCTION_INFO_V1(targeting_funnel);

typedef enum FunnelStep
{
	STEP_GEO,
	STEP_SPEND,
	STEP_LOW_TICKET,
	STEP_DECLINE,
	STEP_EITHER,
	STEP_BOTH,
	NUM_STEPS
} FunnelStep;

static const char *const step_names[NUM_STEPS] = {
	"geo", "spend", "low_ticket", "decline", "either", "both"
};

static const char *const step_descriptions[NUM_STEPS] = {
	"customers on the routes",
	"... whose spend in spend_window reaches min_spend",
	"... with at least min_low_tickets orders below low_ticket_below in low_ticket_window",
	"... whose recent_window sales fell more than decline_pct % below base_window sales",
	"... low ticket or declining: the targets",
	"... low ticket and declining"
};

static bool
in_step(const CustomerState *c, FunnelStep step, bool route_from_order)
{
	switch (step)
	{
		case STEP_GEO:
			/* with order routes, a customer is on a route by ordering on it */
			return !route_from_order || c->orders.orders > 0;
		case STEP_SPEND:
			return c->spend_ok;
		case STEP_LOW_TICKET:
			return c->spend_ok && c->low_ticket;
		case STEP_DECLINE:
			return c->spend_ok && c->declining;
		case STEP_EITHER:
			return c->spend_ok && (c->low_ticket || c->declining);
		case STEP_BOTH:
			return c->spend_ok && c->low_ticket && c->declining;
		default:
			return false;
	}
}

Datum
targeting_funnel(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	TargetingParams params;
	TargetingResult *result;
	int64		customers[NUM_STEPS] = {0};
	int64		orders[NUM_STEPS] = {0};

	targeting_parse_args(fcinfo, &params);
	InitMaterializedSRF(fcinfo, 0);
	result = targeting_run(&params);

	for (int i = 0; i < result->ncustomers; i++)
	{
		const CustomerState *c = result->customers[i];

		for (int step = 0; step < NUM_STEPS; step++)
		{
			if (!in_step(c, step, params.route_from_order))
				continue;
			customers[step]++;
			orders[step] += c->orders.orders;
		}
	}
	/* route customers whose code is NULL count, though no order can be theirs */
	customers[STEP_GEO] += result->uncoded_customers;

	for (int step = 0; step < NUM_STEPS; step++)
	{
		Datum		values[5];
		bool		nulls[5] = {0};

		values[0] = Int32GetDatum(step + 1);
		values[1] = CStringGetTextDatum(step_names[step]);
		values[2] = CStringGetTextDatum(step_descriptions[step]);
		values[3] = Int64GetDatum(customers[step]);
		values[4] = Int64GetDatum(orders[step]);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}

	return (Datum) 0;
}
