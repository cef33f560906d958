/*
 * monthly_revenue_stats.c
 *		The monthly_revenue_stats aggregate: one customer's confirmed orders
 *		(date, total) summed per calendar month of a revenue window.
 *
 *	  monthly_revenue_stats(order_date, order_total, revenue_window)
 *		-> (months date[], revenue numeric[], orders bigint[])
 *
 * Every month the window touches has an element, 0 where there was no
 * order, so a pivot never loses a month; the first and last month count
 * only the window's days.  An order without total counts with revenue 0 (the
 * notebook's COALESCE(SUM(...), 0)); a NULL or out-of-window date adds
 * nothing.  No rows give NULL, as sum() does.
 *
 * It is PARALLEL SAFE with combine, serial and deserial functions, so
 * parallel workers and partitionwise (or sharded) plans fold orders into
 * partial states per customer.  The window must be the same for every row
 * of a group: a row that disagrees is an error, not a mixed answer.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "funcapi.h"
#include "libpq/pqformat.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"

#include "ca_limits.h"
#include "calendar_month.h"
#include "monthly_revenue_stats.h"
#include "numeric_acc.h"
#include "point_buffer.h"

PG_FUNCTION_INFO_V1(monthly_revenue_stats_sfunc);
PG_FUNCTION_INFO_V1(monthly_revenue_stats_combine);
PG_FUNCTION_INFO_V1(monthly_revenue_stats_serialize);
PG_FUNCTION_INFO_V1(monthly_revenue_stats_deserialize);
PG_FUNCTION_INFO_V1(monthly_revenue_stats_final);

#define ARG_ORDER_DATE	1
#define ARG_ORDER_TOTAL 2
#define ARG_WINDOW		3

/* The calendar months window touches, refused above CA_MAX_REVENUE_MONTHS. */
int
monthly_window_months(DateWindow window)
{
	int			nmonths = calendar_month(window.hi - 1) - calendar_month(window.lo) + 1;

	ca_check_limit("the number of months of revenue_window", nmonths, CA_MAX_REVENUE_MONTHS,
				   "Give a revenue_window of at most 1200 months (100 years), "
				   "or call once per part of the window.");
	return nmonths;
}

/* Zero months for window (checked first), allocated in context. */
MonthlyTotals *
monthly_totals_create(MemoryContext context, DateWindow window)
{
	int			nmonths = monthly_window_months(window);
	MonthlyTotals *t = MemoryContextAllocZero(context, sizeof(MonthlyTotals));

	t->window = window;
	t->first_month = calendar_month(window.lo);
	t->nmonths = nmonths;
	t->revenue = MemoryContextAllocZero(context, sizeof(Numeric) * t->nmonths);
	t->orders = MemoryContextAllocZero(context, sizeof(int64) * t->nmonths);
	return t;
}

/* One order into its month (see monthly_revenue_stats.h). */
void
monthly_totals_add(MemoryContext context, MonthlyTotals *t, DateADT order_date, Numeric total)
{
	int			m;

	/* (infinite dates are outside every finite window too) */
	if (order_date < t->window.lo || order_date >= t->window.hi)
		return;
	m = calendar_month(order_date) - t->first_month;
	if (total)
		numeric_accumulate(context, &t->revenue[m], total);
	t->orders[m]++;
}

/*
 * The window argument as last parsed, with a copy of its value: it is
 * normally a constant, so each row costs a byte compare, not a range parse.
 */
typedef struct WindowArgCache
{
	Datum		raw;			/* copy in fn_mcxt */
	DateWindow	window;
} WindowArgCache;

/* This row's window, parsed and checked, or the cached one when unchanged. */
static DateWindow
call_window(FunctionCallInfo fcinfo)
{
	WindowArgCache *cache = (WindowArgCache *) fcinfo->flinfo->fn_extra;
	DateWindow	window;
	MemoryContext old;

	if (cache != NULL && !PG_ARGISNULL(ARG_WINDOW) &&
		datumIsEqual(PG_GETARG_DATUM(ARG_WINDOW), cache->raw, false, -1))
		return cache->window;

	window = arg_date_window(fcinfo, ARG_WINDOW, "revenue_window");
	(void) monthly_window_months(window);
	if (cache == NULL)
		cache = fcinfo->flinfo->fn_extra =
			MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(WindowArgCache));
	else
		pfree(DatumGetPointer(cache->raw));
	old = MemoryContextSwitchTo(fcinfo->flinfo->fn_mcxt);
	cache->raw = datumCopy(PG_GETARG_DATUM(ARG_WINDOW), false, -1);
	MemoryContextSwitchTo(old);
	cache->window = window;
	return window;
}

/* Refuse a group whose rows give different windows. */
static void
check_same_window(DateWindow a, DateWindow b)
{
	if (a.lo != b.lo || a.hi != b.hi)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("monthly_revenue_stats revenue_window differs between rows of one group"),
				 errhint("Pass a constant (or the same window for every row) as revenue_window.")));
}

/* Transition: one order (date, total) of the group, with its window. */
Datum
monthly_revenue_stats_sfunc(PG_FUNCTION_ARGS)
{
	MemoryContext aggcontext = pb_aggcontext(fcinfo, "monthly_revenue_stats_sfunc");
	MonthlyTotals *state = PG_ARGISNULL(0) ? NULL : (MonthlyTotals *) PG_GETARG_POINTER(0);
	DateWindow	window = call_window(fcinfo);

	if (state == NULL)
		state = monthly_totals_create(aggcontext, window);
	else
		check_same_window(state->window, window);

	if (!PG_ARGISNULL(ARG_ORDER_DATE))
		monthly_totals_add(aggcontext, state, PG_GETARG_DATEADT(ARG_ORDER_DATE),
						   PG_ARGISNULL(ARG_ORDER_TOTAL) ? NULL : PG_GETARG_NUMERIC(ARG_ORDER_TOTAL));
	PG_RETURN_POINTER(state);
}

/* Combine: add partial state b to a (parallel workers, partitions). */
Datum
monthly_revenue_stats_combine(PG_FUNCTION_ARGS)
{
	MemoryContext aggcontext = pb_aggcontext(fcinfo, "monthly_revenue_stats_combine");
	MonthlyTotals *a = PG_ARGISNULL(0) ? NULL : (MonthlyTotals *) PG_GETARG_POINTER(0);
	MonthlyTotals *b = PG_ARGISNULL(1) ? NULL : (MonthlyTotals *) PG_GETARG_POINTER(1);

	if (b == NULL)
	{
		if (a == NULL)
			PG_RETURN_NULL();
		PG_RETURN_POINTER(a);
	}
	/* the result must live in the aggregate context: never return b itself */
	if (a == NULL)
		a = monthly_totals_create(aggcontext, b->window);
	else
		check_same_window(a->window, b->window);
	for (int m = 0; m < a->nmonths; m++)
	{
		if (b->revenue[m])
			numeric_accumulate(aggcontext, &a->revenue[m], b->revenue[m]);
		a->orders[m] += b->orders[m];
	}
	PG_RETURN_POINTER(a);
}

/* layout: the window's bounds, then per month the order count and the sum */
Datum
monthly_revenue_stats_serialize(PG_FUNCTION_ARGS)
{
	MonthlyTotals *state = (MonthlyTotals *) PG_GETARG_POINTER(0);
	StringInfoData buf;

	(void) pb_aggcontext(fcinfo, "monthly_revenue_stats_serialize");
	pq_begintypsend(&buf);
	pq_sendint32(&buf, state->window.lo);
	pq_sendint32(&buf, state->window.hi);
	for (int m = 0; m < state->nmonths; m++)
	{
		pq_sendint64(&buf, state->orders[m]);
		numeric_send_sum(&buf, state->revenue[m]);
	}
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

/* The state lives in the caller's (per-row) context; combine copies it. */
Datum
monthly_revenue_stats_deserialize(PG_FUNCTION_ARGS)
{
	bytea	   *image = PG_GETARG_BYTEA_PP(0);
	MonthlyTotals *state;
	DateWindow	window;
	StringInfoData buf;

	(void) pb_aggcontext(fcinfo, "monthly_revenue_stats_deserialize");
	agg_image_reader(image, &buf);
	window.lo = (DateADT) pq_getmsgint(&buf, 4);
	window.hi = (DateADT) pq_getmsgint(&buf, 4);
	state = monthly_totals_create(CurrentMemoryContext, window);
	for (int m = 0; m < state->nmonths; m++)
	{
		state->orders[m] = pq_getmsgint64(&buf);
		state->revenue[m] = numeric_get_sum(&buf, CurrentMemoryContext);
	}
	pq_getmsgend(&buf);
	PG_RETURN_POINTER(state);
}

/* (months date[], revenue numeric[], orders bigint[]) */
Datum
monthly_revenue_stats_final(PG_FUNCTION_ARGS)
{
	MonthlyTotals *state;
	TupleDesc	tupdesc;
	Datum		values[3];
	bool		nulls[3] = {0};
	Datum	   *months,
			   *revenue,
			   *orders;

	(void) pb_aggcontext(fcinfo, "monthly_revenue_stats_final");
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();		/* no rows, as sum() */
	state = (MonthlyTotals *) PG_GETARG_POINTER(0);
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "monthly_revenue_stats_final must return a composite type");

	months = palloc(sizeof(Datum) * state->nmonths);
	revenue = palloc(sizeof(Datum) * state->nmonths);
	orders = palloc(sizeof(Datum) * state->nmonths);
	for (int m = 0; m < state->nmonths; m++)
	{
		months[m] = DateADTGetDatum(calendar_month_start(state->first_month + m));
		revenue[m] = NumericGetDatum(numeric_or_zero(state->revenue[m]));
		orders[m] = Int64GetDatum(state->orders[m]);
	}
	values[0] = PointerGetDatum(construct_array(months, state->nmonths, DATEOID,
												sizeof(DateADT), true, TYPALIGN_INT));
	values[1] = PointerGetDatum(construct_array(revenue, state->nmonths, NUMERICOID,
												-1, false, TYPALIGN_INT));
	values[2] = PointerGetDatum(construct_array(orders, state->nmonths, INT8OID,
												sizeof(int64), FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(tupdesc), values, nulls)));
}
