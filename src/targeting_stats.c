/*
 * targeting_stats.c
 *		The targeting_stats aggregate: one customer's confirmed orders (date,
 *		total) folded into the counts and sums the promo funnel decides on.
 *
 *	  targeting_stats(order_date, order_total, spend_window, low_ticket_window,
 *					  base_window, recent_window, low_ticket_below)
 *
 * It is PARALLEL SAFE with combine, serial and deserial functions: each
 * parallel worker folds the orders it scans into partial states per
 * customer, and the leader combines them, so the per-customer work of
 * target_customers() runs in the workers too.  The windows and the bar must
 * be the same for every row of a group (they are the function's arguments,
 * constants); a row that disagrees is an error rather than a silently mixed
 * answer.  Rows with a NULL order_date are in no window and are skipped, as
 * count(column) skips NULLs.
 */
#include "postgres.h"

#include "fmgr.h"
#include "funcapi.h"
#include "libpq/pqformat.h"
#include "utils/builtins.h"
#include "utils/datum.h"

#include "numeric_acc.h"
#include "order_stats.h"
#include "point_buffer.h"

PG_FUNCTION_INFO_V1(targeting_stats_sfunc);
PG_FUNCTION_INFO_V1(targeting_stats_combine);
PG_FUNCTION_INFO_V1(targeting_stats_serialize);
PG_FUNCTION_INFO_V1(targeting_stats_deserialize);
PG_FUNCTION_INFO_V1(targeting_stats_final);

typedef struct TargetingStatsState
{
	OrderWindows windows;		/* low_ticket_below lives in the aggregate context */
	OrderStats	stats;
} TargetingStatsState;

/*
 * The window arguments as last parsed, with copies of their values: the
 * arguments are normally constants, so each row costs a few byte compares
 * instead of four range parses.
 */
typedef struct WindowCache
{
	Datum		args[5];		/* raw copies in fn_mcxt, for comparing */
	OrderWindows windows;		/* low_ticket_below: a plain copy in fn_mcxt */
} WindowCache;

#define ARG_ORDER_DATE	1
#define ARG_ORDER_TOTAL 2
#define ARG_FIRST_WINDOW 3		/* spend, low_ticket, base, recent, then the bar */

static const char *const window_names[5] = {
	"spend_window", "low_ticket_window", "base_window", "recent_window", "low_ticket_below"
};

/* Parse (or reuse) the windows and the bar of this call. */
static const OrderWindows *
call_windows(FunctionCallInfo fcinfo)
{
	WindowCache *cache = (WindowCache *) fcinfo->flinfo->fn_extra;
	bool		same = cache != NULL;
	MemoryContext old;

	for (int i = 0; i < 5 && same; i++)
		same = !PG_ARGISNULL(ARG_FIRST_WINDOW + i) &&
			datumIsEqual(PG_GETARG_DATUM(ARG_FIRST_WINDOW + i), cache->args[i], false, -1);
	if (same)
		return &cache->windows;

	if (cache == NULL)
		cache = fcinfo->flinfo->fn_extra =
			MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(WindowCache));
	else
	{
		for (int i = 0; i < 5; i++)
			pfree(DatumGetPointer(cache->args[i]));
		pfree(cache->windows.low_ticket_below);
	}
	cache->windows.spend = arg_date_window(fcinfo, ARG_FIRST_WINDOW, window_names[0]);
	cache->windows.low_ticket = arg_date_window(fcinfo, ARG_FIRST_WINDOW + 1, window_names[1]);
	cache->windows.base = arg_date_window(fcinfo, ARG_FIRST_WINDOW + 2, window_names[2]);
	cache->windows.recent = arg_date_window(fcinfo, ARG_FIRST_WINDOW + 3, window_names[3]);
	(void) arg_amount(fcinfo, ARG_FIRST_WINDOW + 4, window_names[4]);
	old = MemoryContextSwitchTo(fcinfo->flinfo->fn_mcxt);
	for (int i = 0; i < 5; i++)
		cache->args[i] = datumCopy(PG_GETARG_DATUM(ARG_FIRST_WINDOW + i), false, -1);
	cache->windows.low_ticket_below = (Numeric) PG_DETOAST_DATUM_COPY(PG_GETARG_DATUM(ARG_FIRST_WINDOW + 4));
	MemoryContextSwitchTo(old);
	return &cache->windows;
}

static bool
same_windows(const OrderWindows *a, const OrderWindows *b)
{
	return a->spend.lo == b->spend.lo && a->spend.hi == b->spend.hi &&
		a->low_ticket.lo == b->low_ticket.lo && a->low_ticket.hi == b->low_ticket.hi &&
		a->base.lo == b->base.lo && a->base.hi == b->base.hi &&
		a->recent.lo == b->recent.lo && a->recent.hi == b->recent.hi &&
		(a->low_ticket_below == b->low_ticket_below ||
		 numeric_compare(a->low_ticket_below, b->low_ticket_below) == 0);
}

static void
check_same_windows(const OrderWindows *state, const OrderWindows *row)
{
	if (!same_windows(state, row))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("targeting_stats windows and low_ticket_below differ between rows of one group"),
				 errhint("Pass constants (or the same values for every row) for the windows and the bar.")));
}

static TargetingStatsState *
new_state(MemoryContext aggcontext, const OrderWindows *windows)
{
	TargetingStatsState *state = MemoryContextAllocZero(aggcontext, sizeof(TargetingStatsState));

	state->windows = *windows;
	state->windows.low_ticket_below = (Numeric) MemoryContextAlloc(aggcontext, VARSIZE(windows->low_ticket_below));
	memcpy(state->windows.low_ticket_below, windows->low_ticket_below, VARSIZE(windows->low_ticket_below));
	return state;
}

Datum
targeting_stats_sfunc(PG_FUNCTION_ARGS)
{
	MemoryContext aggcontext = pb_aggcontext(fcinfo, "targeting_stats_sfunc");
	TargetingStatsState *state = PG_ARGISNULL(0) ? NULL : (TargetingStatsState *) PG_GETARG_POINTER(0);
	const OrderWindows *windows = call_windows(fcinfo);

	if (state == NULL)
		state = new_state(aggcontext, windows);
	else if (windows != &state->windows)
		check_same_windows(&state->windows, windows);

	if (!PG_ARGISNULL(ARG_ORDER_DATE))
		order_stats_add(aggcontext, &state->stats, &state->windows,
						PG_GETARG_DATEADT(ARG_ORDER_DATE),
						PG_ARGISNULL(ARG_ORDER_TOTAL) ? NULL : PG_GETARG_NUMERIC(ARG_ORDER_TOTAL));
	PG_RETURN_POINTER(state);
}

Datum
targeting_stats_combine(PG_FUNCTION_ARGS)
{
	MemoryContext aggcontext = pb_aggcontext(fcinfo, "targeting_stats_combine");
	TargetingStatsState *a = PG_ARGISNULL(0) ? NULL : (TargetingStatsState *) PG_GETARG_POINTER(0);
	TargetingStatsState *b = PG_ARGISNULL(1) ? NULL : (TargetingStatsState *) PG_GETARG_POINTER(1);

	if (b == NULL)
	{
		if (a == NULL)
			PG_RETURN_NULL();	/* a NULL pointer is no state: say NULL */
		PG_RETURN_POINTER(a);
	}
	/* the result must live in the aggregate context: never return b itself */
	if (a == NULL)
		a = new_state(aggcontext, &b->windows);
	else
		check_same_windows(&a->windows, &b->windows);
	order_stats_combine(aggcontext, &a->stats, &b->stats);
	PG_RETURN_POINTER(a);
}

static void
send_window(StringInfo buf, DateWindow w)
{
	pq_sendint32(buf, w.lo);
	pq_sendint32(buf, w.hi);
}

static DateWindow
get_window(StringInfo buf)
{
	DateWindow	w;

	w.lo = (DateADT) pq_getmsgint(buf, 4);
	w.hi = (DateADT) pq_getmsgint(buf, 4);
	return w;
}

/* layout: four windows, the bar's length and bytes, then the stats */
Datum
targeting_stats_serialize(PG_FUNCTION_ARGS)
{
	TargetingStatsState *state = (TargetingStatsState *) PG_GETARG_POINTER(0);
	Numeric		bar = state->windows.low_ticket_below;
	StringInfoData buf;

	(void) pb_aggcontext(fcinfo, "targeting_stats_serialize");
	pq_begintypsend(&buf);
	send_window(&buf, state->windows.spend);
	send_window(&buf, state->windows.low_ticket);
	send_window(&buf, state->windows.base);
	send_window(&buf, state->windows.recent);
	pq_sendint32(&buf, VARSIZE(bar));
	pq_sendbytes(&buf, (char *) bar, VARSIZE(bar));
	order_stats_serialize(&buf, &state->stats);
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

/*
 * The state lives in the caller's (per-row) context: the combine function
 * copies what it keeps into the aggregate context and never returns it.
 */
Datum
targeting_stats_deserialize(PG_FUNCTION_ARGS)
{
	bytea	   *image = PG_GETARG_BYTEA_PP(0);
	TargetingStatsState *state = palloc0(sizeof(TargetingStatsState));
	StringInfoData buf;
	int32		barlen;

	(void) pb_aggcontext(fcinfo, "targeting_stats_deserialize");
	agg_image_reader(image, &buf);
	state->windows.spend = get_window(&buf);
	state->windows.low_ticket = get_window(&buf);
	state->windows.base = get_window(&buf);
	state->windows.recent = get_window(&buf);
	barlen = pq_getmsgint(&buf, 4);
	state->windows.low_ticket_below = palloc(barlen);
	pq_copymsgbytes(&buf, (char *) state->windows.low_ticket_below, barlen);
	order_stats_deserialize(&buf, CurrentMemoryContext, &state->stats);
	pq_getmsgend(&buf);
	PG_RETURN_POINTER(state);
}

/* (orders, total, last_order, spend_orders, spend, low_tickets, base, recent) */
Datum
targeting_stats_final(PG_FUNCTION_ARGS)
{
	TargetingStatsState *state;
	TupleDesc	tupdesc;
	Datum		values[8];
	bool		nulls[8] = {0};

	(void) pb_aggcontext(fcinfo, "targeting_stats_final");
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();		/* no rows, as sum() */
	state = (TargetingStatsState *) PG_GETARG_POINTER(0);
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "targeting_stats_final must return a composite type");

	values[0] = Int64GetDatum(state->stats.orders);
	values[1] = NumericGetDatum(numeric_or_zero(state->stats.total));
	values[2] = DateADTGetDatum(state->stats.last_order);
	nulls[2] = state->stats.orders == 0;
	values[3] = Int64GetDatum(state->stats.spend_orders);
	values[4] = NumericGetDatum(numeric_or_zero(state->stats.spend));
	values[5] = Int64GetDatum(state->stats.low_tickets);
	values[6] = NumericGetDatum(numeric_or_zero(state->stats.base));
	values[7] = NumericGetDatum(numeric_or_zero(state->stats.recent));
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(tupdesc), values, nulls)));
}
