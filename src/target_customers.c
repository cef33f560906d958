/*
 * target_customers.c
 *		customer_analytics.target_customers(): one row per promo target, the
 *		notebook's final table plus what a user needs to act on it.
 */
#include "postgres.h"

#include "access/relation.h"
#include "access/table.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/tuplestore.h"

#include "numeric_acc.h"
#include "targeting.h"

PG_FUNCTION_INFO_V1(target_customers);
PG_FUNCTION_INFO_V1(target_customers_from_state);
PG_FUNCTION_INFO_V1(campaign_delta_state_targets);

enum
{
	COL_CUSTOMER_CODE,
	COL_TRADE_NAME,
	COL_DELIVERY_ROUTE,
	COL_SHIPPING_ADDRESS,
	COL_CSM,
	COL_TOTAL_SPEND,
	COL_TOTAL_ORDERS,
	COL_LOW_TICKET_COUNT,
	COL_BASE_SALES,
	COL_RECENT_SALES,
	COL_PCT_CHANGE,
	COL_TARGET_REASON,
	COL_IS_LOW_TICKET,
	COL_IS_DECLINING,
	COL_LAST_ORDER_DATE,
	COL_AVG_TICKET_SIZE,
	NUM_COLUMNS
};

static void
set_text(Datum *values, bool *nulls, int col, const char *s)
{
	nulls[col] = (s == NULL);
	values[col] = s ? CStringGetTextDatum(s) : (Datum) 0;
}

/* Run the funnel with params and return one row per target. */
/* ... and, with delta, the delta refresh's months applied on the verdicts. */
static Datum
emit_targets_delta(FunctionCallInfo fcinfo, const TargetingParams *p, const CampaignDeltaState *delta)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	TargetingParams params = *p;
	TargetingResult *result;

	InitMaterializedSRF(fcinfo, 0);
	if (rsinfo->setDesc->natts != NUM_COLUMNS)
		elog(ERROR, "target_customers: return type has %d columns, expected %d",
			 rsinfo->setDesc->natts, NUM_COLUMNS);

	result = targeting_run(&params);
	if (delta != NULL && delta->month_state != NULL)
		campaign_delta_months_apply(delta, result);

	for (int i = 0; i < result->ncustomers; i++)
	{
		const CustomerState *c = result->customers[i];
		Datum		values[NUM_COLUMNS];
		bool		nulls[NUM_COLUMNS];
		Numeric		pct;

		CHECK_FOR_INTERRUPTS();
		if (!customer_is_target(c))
			continue;

		memset(nulls, 0, sizeof(nulls));
		set_text(values, nulls, COL_CUSTOMER_CODE, c->code);
		set_text(values, nulls, COL_TRADE_NAME, c->trade_name);
		set_text(values, nulls, COL_DELIVERY_ROUTE, c->delivery_route);
		set_text(values, nulls, COL_SHIPPING_ADDRESS, c->shipping_address);
		set_text(values, nulls, COL_CSM, c->csm);
		values[COL_TOTAL_SPEND] = NumericGetDatum(numeric_or_zero(c->orders.spend));
		values[COL_TOTAL_ORDERS] = Int64GetDatum(c->orders.spend_orders);
		values[COL_LOW_TICKET_COUNT] = Int64GetDatum(c->orders.low_tickets);
		values[COL_BASE_SALES] = NumericGetDatum(numeric_or_zero(c->orders.base));
		values[COL_RECENT_SALES] = NumericGetDatum(numeric_or_zero(c->orders.recent));
		pct = customer_pct_change(c);
		nulls[COL_PCT_CHANGE] = (pct == NULL);
		values[COL_PCT_CHANGE] = pct ? NumericGetDatum(pct) : (Datum) 0;
		set_text(values, nulls, COL_TARGET_REASON, customer_target_reason(c));
		values[COL_IS_LOW_TICKET] = BoolGetDatum(c->low_ticket);
		values[COL_IS_DECLINING] = BoolGetDatum(c->declining);
		values[COL_LAST_ORDER_DATE] = DateADTGetDatum(c->orders.last_order);	/* a target has orders */
		values[COL_AVG_TICKET_SIZE] = NumericGetDatum(customer_avg_ticket(c));

		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}

	return (Datum) 0;
}

static Datum
emit_targets(FunctionCallInfo fcinfo, const TargetingParams *p)
{
	return emit_targets_delta(fcinfo, p, NULL);
}

Datum
target_customers(PG_FUNCTION_ARGS)
{
	TargetingParams params;

	targeting_parse_args(fcinfo, &params);
	return emit_targets(fcinfo, &params);
}

/*
 * The state table argument argno (regclass) of a function deciding on a
 * campaign's state: the caller's own plain table without row-level
 * security, as a quoted qualified name.
 */
static const char *
state_relation_arg(FunctionCallInfo fcinfo, int argno)
{
	Oid			state;
	Relation	rel;
	const char *name;

	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("state must not be NULL"),
				 errhint("Pass the campaign's state table.")));
	state = PG_GETARG_OID(argno);
	rel = try_relation_open(state, AccessShareLock);
	if (rel == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", state),
				 errhint("Pass the campaign's state table.")));
	/* the campaign owner's own table: reading it runs no one else's code */
	if (rel->rd_rel->relkind != RELKIND_RELATION || rel->rd_rel->relrowsecurity)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a campaign state table", RelationGetRelationName(rel)),
				 errhint("A campaign's state is a plain table without row-level security.")));
	if (!pg_class_ownercheck(state, GetUserId()))
		aclcheck_error(ACLCHECK_NOT_OWNER, OBJECT_TABLE, RelationGetRelationName(rel));
	name = quote_qualified_identifier(get_namespace_name(RelationGetNamespace(rel)),
									  RelationGetRelationName(rel));
	table_close(rel, NoLock);
	return name;
}

/*
 * _target_customers_from_state(<target_customers' arguments>, state regclass):
 * target_customers() deciding on the per-customer stats a campaign's delta
 * refresh keeps in state (its own table), instead of folding the orders.
 * The customers' attributes and routes are read as usual.
 */
Datum
target_customers_from_state(PG_FUNCTION_ARGS)
{
	TargetingParams params;

	targeting_parse_args(fcinfo, &params);
	params.stats_relation = state_relation_arg(fcinfo, TARGETING_NARGS);
	return emit_targets(fcinfo, &params);
}

/* a text argument that must be given */
static const char *
sql_text_arg(FunctionCallInfo fcinfo, int argno, const char *name, const char *hint)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be NULL", name),
				 errhint("%s", hint)));
	return text_to_cstring(PG_GETARG_TEXT_PP(argno));
}

/*
 * _campaign_delta_state_targets(<target_customers' arguments>, state
 * regclass, changes text, orders text, month_state regclass,
 * revenue_window daterange, long_keys regclass): the delta refresh's one
 * pass over the changed customers (customers: every one, with or without
 * order changes).  Applies the signed order changes (changes: SQL of a
 * relation in the rollup's dirty table's shape, read under alias x) to
 * their rows of state, looking their last order up in orders (SQL of a
 * relation of (customer_code, order_date)) only where a removed order may
 * have been it, writes the rows that changed back, and returns the targets
 * among them, decided on the new rows as _target_customers_from_state()
 * decides (campaign_delta_state.c).  With month_state (else NULL), the same
 * read of the changes also gives their months in revenue_window: the
 * changed customers' rows of month_state are dropped (no longer targets),
 * adjusted, or computed (new targets), and their keys listed in long_keys
 * (one column, customer_code).
 */
Datum
campaign_delta_state_targets(PG_FUNCTION_ARGS)
{
	TargetingParams params;
	CampaignDeltaState delta;

	targeting_parse_args(fcinfo, &params);
	if (params.customers == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("customers must not be NULL"),
				 errhint("Pass the changed customers' codes, '{}' for none.")));
	if (params.route_from_order)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("per-customer state cannot serve route_source => 'order'"),
				 errhint("Campaigns with routes from the orders are refreshed from the rollup.")));
	delta.state = state_relation_arg(fcinfo, TARGETING_NARGS);
	delta.state_relid = PG_GETARG_OID(TARGETING_NARGS);
	delta.changes = sql_text_arg(fcinfo, TARGETING_NARGS + 1, "changes",
								 "Pass the SQL of a relation of the signed order changes.");
	delta.orders = sql_text_arg(fcinfo, TARGETING_NARGS + 2, "orders",
								"Pass the SQL of a relation of (customer_code, order_date).");
	delta.params = &params;
	delta.month_state = NULL;
	delta.month_state_relid = InvalidOid;
	delta.revenue_window = (Datum) 0;
	delta.long_keys = NULL;
	delta.months = NULL;
	/* (a declaration without the months' arguments: none) */
	if (PG_NARGS() >= TARGETING_NARGS + 6 && !PG_ARGISNULL(TARGETING_NARGS + 3))
	{
		delta.month_state = state_relation_arg(fcinfo, TARGETING_NARGS + 3);
		delta.month_state_relid = PG_GETARG_OID(TARGETING_NARGS + 3);
		if (PG_ARGISNULL(TARGETING_NARGS + 4) || PG_ARGISNULL(TARGETING_NARGS + 5))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("revenue_window and long_keys must not be NULL with a month_state"),
					 errhint("Pass the campaign's revenue window and the long form's key table, or month_state => NULL.")));
		delta.revenue_window = PG_GETARG_DATUM(TARGETING_NARGS + 4);
		delta.long_keys = state_relation_arg(fcinfo, TARGETING_NARGS + 5);
		delta.months = campaign_delta_months_create(CurrentMemoryContext);
	}
	params.stats_relation = delta.state;
	params.stats_hook = campaign_delta_state_apply;
	params.stats_hook_arg = &delta;
	return emit_targets_delta(fcinfo, &params, &delta);
}
