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
#include "nodes/primnodes.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/memutils.h"

#include "numeric_acc.h"
#include "order_line_totals.h"
#include "order_stats.h"
#include "point_buffer.h"

PG_FUNCTION_INFO_V1(targeting_stats_sfunc);
PG_FUNCTION_INFO_V1(targeting_stats_combine);
PG_FUNCTION_INFO_V1(targeting_stats_serialize);
PG_FUNCTION_INFO_V1(targeting_stats_deserialize);
PG_FUNCTION_INFO_V1(targeting_stats_final);

static void targeting_result_values(const OrderStats *stats, Datum *values, bool *nulls);

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
	Datum		seen[5];		/* the argument datums last found equal (constants) */
	uint64		generation;		/* bumped whenever windows change */
} WindowCache;

#define ARG_ORDER_DATE	1
#define ARG_ORDER_TOTAL 2
#define ARG_FIRST_WINDOW 3		/* spend, low_ticket, base, recent, then the bar */

static const char *const window_names[5] = {
	"spend_window", "low_ticket_window", "base_window", "recent_window", "low_ticket_below"
};

/*
 * Parse the four windows and the bar at argument positions first .. first
 * + 4 into the call's cache in fn_extra (made on first use, its previous
 * copies freed), with copies of the arguments for comparing later rows'.
 */
static WindowCache *
window_cache_reparse(FunctionCallInfo fcinfo, int first)
{
	WindowCache *cache = (WindowCache *) fcinfo->flinfo->fn_extra;
	MemoryContext old;

	if (cache == NULL)
		cache = fcinfo->flinfo->fn_extra =
			MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(WindowCache));
	else
	{
		for (int i = 0; i < 5; i++)
			pfree(DatumGetPointer(cache->args[i]));
		pfree(cache->windows.low_ticket_below);
	}
	cache->windows.spend = arg_date_window(fcinfo, first, window_names[0]);
	cache->windows.low_ticket = arg_date_window(fcinfo, first + 1, window_names[1]);
	cache->windows.base = arg_date_window(fcinfo, first + 2, window_names[2]);
	cache->windows.recent = arg_date_window(fcinfo, first + 3, window_names[3]);
	(void) arg_amount(fcinfo, first + 4, window_names[4]);
	old = MemoryContextSwitchTo(fcinfo->flinfo->fn_mcxt);
	for (int i = 0; i < 5; i++)
		cache->args[i] = datumCopy(PG_GETARG_DATUM(first + i), false, -1);
	cache->windows.low_ticket_below = (Numeric) PG_DETOAST_DATUM_COPY(PG_GETARG_DATUM(first + 4));
	MemoryContextSwitchTo(old);
	cache->generation++;
	return cache;
}

/* Parse (or reuse) the windows and the bar of this call. */
static const OrderWindows *
call_windows(FunctionCallInfo fcinfo)
{
	WindowCache *cache = (WindowCache *) fcinfo->flinfo->fn_extra;
	bool		same = cache != NULL;

	for (int i = 0; i < 5 && same; i++)
		same = !PG_ARGISNULL(ARG_FIRST_WINDOW + i) &&
			datumIsEqual(PG_GETARG_DATUM(ARG_FIRST_WINDOW + i), cache->args[i], false, -1);
	if (same)
		return &cache->windows;
	return &window_cache_reparse(fcinfo, ARG_FIRST_WINDOW)->windows;
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

/* *dst = *src, with its own copy of the bar in aggcontext */
static void
copy_windows(MemoryContext aggcontext, OrderWindows *dst, const OrderWindows *src)
{
	*dst = *src;
	dst->low_ticket_below = (Numeric) MemoryContextAlloc(aggcontext, VARSIZE(src->low_ticket_below));
	memcpy(dst->low_ticket_below, src->low_ticket_below, VARSIZE(src->low_ticket_below));
}

static TargetingStatsState *
new_state(MemoryContext aggcontext, const OrderWindows *windows)
{
	TargetingStatsState *state = MemoryContextAllocZero(aggcontext, sizeof(TargetingStatsState));

	copy_windows(aggcontext, &state->windows, windows);
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

/* the four windows, then the bar's length and bytes */
static void
send_windows(StringInfo buf, const OrderWindows *w)
{
	send_window(buf, w->spend);
	send_window(buf, w->low_ticket);
	send_window(buf, w->base);
	send_window(buf, w->recent);
	pq_sendint32(buf, VARSIZE(w->low_ticket_below));
	pq_sendbytes(buf, (char *) w->low_ticket_below, VARSIZE(w->low_ticket_below));
}

/* what send_windows() wrote; the bar in CurrentMemoryContext */
static void
get_windows(StringInfo buf, OrderWindows *w)
{
	int32		barlen;

	w->spend = get_window(buf);
	w->low_ticket = get_window(buf);
	w->base = get_window(buf);
	w->recent = get_window(buf);
	barlen = pq_getmsgint(buf, 4);
	w->low_ticket_below = palloc(barlen);
	pq_copymsgbytes(buf, (char *) w->low_ticket_below, barlen);
}

/* layout: four windows, the bar's length and bytes, then the stats */
Datum
targeting_stats_serialize(PG_FUNCTION_ARGS)
{
	TargetingStatsState *state = (TargetingStatsState *) PG_GETARG_POINTER(0);
	StringInfoData buf;

	(void) pb_aggcontext(fcinfo, "targeting_stats_serialize");
	pq_begintypsend(&buf);
	send_windows(&buf, &state->windows);
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

	(void) pb_aggcontext(fcinfo, "targeting_stats_deserialize");
	agg_image_reader(image, &buf);
	get_windows(&buf, &state->windows);
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

	targeting_result_values(&state->stats, values, nulls);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(tupdesc), values, nulls)));
}

/*
 * The targeting_line_stats aggregate: targeting_stats over the lines of the
 * orders rather than over order totals, so that the order query needs no
 * grouping per order (the executor joins each header to its lines and the
 * aggregate sums them):
 *
 *	  targeting_line_stats(order_type, order_number, order_date, line_amount,
 *						   spend_window, low_ticket_window, base_window,
 *						   recent_window, low_ticket_below)
 *
 * One row per line of the customer's orders, with its order's key and date
 * (an order without lines: one row with a NULL amount).  The state keeps one
 * entry per order, the key, the date and the sum of its amounts (a LineSum:
 * an int64 of 1e-8 units while the amounts are exact there, no Numeric
 * addition or allocation per line; a Numeric part otherwise): a line of
 * the order of the previous row adds to that order's entry (one compare),
 * any other starts an entry.  Where the executor delivers an order's lines
 * one after another (a nested loop or a hash join with the headers outside,
 * the plans of the order query) each order is one entry; where it does not
 * (or where two parallel workers each saw part of an order), the final
 * function sorts the entries by key and merges those of one order, so the
 * result never depends on the plan.  Memory is one entry per order of the
 * group, in the aggregate's context (which the hash aggregate counts against
 * its memory limit); the final function then folds the orders exactly as
 * targeting_stats does (order_stats_add), NULL totals as 0.  Rows with a
 * NULL order_date are skipped, as targeting_stats skips them.  A NULL order
 * key is an order of its own.
 */
PG_FUNCTION_INFO_V1(targeting_line_stats_sfunc);
PG_FUNCTION_INFO_V1(targeting_line_stats_combine);
PG_FUNCTION_INFO_V1(targeting_line_stats_serialize);
PG_FUNCTION_INFO_V1(targeting_line_stats_deserialize);
PG_FUNCTION_INFO_V1(targeting_line_stats_final);

typedef struct LineOrder
{
	char	   *key;			/* order_type, '\0', order_number; NULL: no key */
	int32		keylen;			/* bytes of key */
	DateADT		order_date;
	LineSum		total;			/* nothing added: no amount yet (0) */
} LineOrder;

typedef struct TargetingLineState
{
	OrderWindows windows;		/* low_ticket_below lives in the aggregate context */
	const WindowCache *checked; /* the arguments last found equal to windows */
	uint64		checked_generation;
	LineOrder  *orders;
	int64		norders;
	int64		maxorders;
} TargetingLineState;

#define LINE_ARG_ORDER_TYPE		1
#define LINE_ARG_ORDER_NUMBER	2
#define LINE_ARG_ORDER_DATE		3
#define LINE_ARG_AMOUNT			4
#define LINE_ARG_FIRST_WINDOW	5

/*
 * The datum of argument argno when the expression is a constant or a
 * parameter (the same value behind the same pointer on every row), else 0:
 * a computed argument can reuse an address for another value.
 */
static Datum
stable_arg(FunctionCallInfo fcinfo, int argno)
{
	Aggref	   *aggref = AggGetAggref(fcinfo);
	TargetEntry *tle;

	/* argument 0 of the transition function is the state */
	if (aggref == NULL || argno < 1 || argno > list_length(aggref->args))
		return (Datum) 0;
	tle = list_nth_node(TargetEntry, aggref->args, argno - 1);
	if (!IsA(tle->expr, Const) &&
		!(IsA(tle->expr, Param) && ((Param *) tle->expr)->paramkind == PARAM_EXTERN))
		return (Datum) 0;
	return PG_GETARG_DATUM(argno);
}

/* as call_windows(), for the line aggregate's argument positions */
static WindowCache *
line_call_windows(FunctionCallInfo fcinfo)
{
	WindowCache *cache = (WindowCache *) fcinfo->flinfo->fn_extra;
	bool		same = cache != NULL;
	bool		seen = true;

	/*
	 * Constant arguments (the order query passes parameters) are the same
	 * pointers row after row: compare the bytes only when a pointer changes,
	 * and look at the arguments' expressions again only then (not per row).
	 */
	for (int i = 0; i < 5 && same; i++)
	{
		Datum		arg = PG_GETARG_DATUM(LINE_ARG_FIRST_WINDOW + i);

		if (PG_ARGISNULL(LINE_ARG_FIRST_WINDOW + i))
			same = false;
		else if (cache->seen[i] == (Datum) 0 || arg != cache->seen[i])
		{
			seen = false;
			same = datumIsEqual(arg, cache->args[i], false, -1);
		}
	}
	if (same)
	{
		if (!seen)
		{
			for (int i = 0; i < 5; i++)
				cache->seen[i] = stable_arg(fcinfo, LINE_ARG_FIRST_WINDOW + i);
		}
		return cache;
	}

	cache = window_cache_reparse(fcinfo, LINE_ARG_FIRST_WINDOW);
	for (int i = 0; i < 5; i++)
		cache->seen[i] = stable_arg(fcinfo, LINE_ARG_FIRST_WINDOW + i);
	return cache;
}

static TargetingLineState *
new_line_state(MemoryContext aggcontext, const OrderWindows *windows)
{
	TargetingLineState *state = MemoryContextAllocZero(aggcontext, sizeof(TargetingLineState));

	copy_windows(aggcontext, &state->windows, windows);
	return state;
}

/* a new entry at the end of state's orders (its fields unset) */
static LineOrder *
line_order_append(MemoryContext aggcontext, TargetingLineState *state)
{
	if (state->norders == state->maxorders)
	{
		int64		newmax = Max(state->maxorders * 2, 8);

		if ((Size) newmax * sizeof(LineOrder) > MaxAllocHugeSize)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("targeting_line_stats: too many orders in one group"),
					 errhint("Group the rows by customer: one group holds one customer's orders.")));
		if (state->orders == NULL)
			state->orders = MemoryContextAllocHuge(aggcontext, newmax * sizeof(LineOrder));
		else
			state->orders = repalloc_huge(state->orders, newmax * sizeof(LineOrder));
		state->maxorders = newmax;
	}
	return &state->orders[state->norders++];
}

/* the key of the row's order in buf (NULL when either part is NULL) */
static bool
row_order_key(FunctionCallInfo fcinfo, text **type, text **number)
{
	if (PG_ARGISNULL(LINE_ARG_ORDER_TYPE) || PG_ARGISNULL(LINE_ARG_ORDER_NUMBER))
		return false;
	*type = PG_GETARG_TEXT_PP(LINE_ARG_ORDER_TYPE);
	*number = PG_GETARG_TEXT_PP(LINE_ARG_ORDER_NUMBER);
	return true;
}

/* is the order of entry e the one of key (type, number) on order_date? */
static bool
same_order(const LineOrder *e, const text *type, const text *number, DateADT order_date)
{
	int32		tlen = VARSIZE_ANY_EXHDR(type);
	int32		nlen = VARSIZE_ANY_EXHDR(number);

	return e->key != NULL && e->order_date == order_date &&
		e->keylen == tlen + 1 + nlen &&
		memcmp(e->key, VARDATA_ANY(type), tlen) == 0 &&
		memcmp(e->key + tlen + 1, VARDATA_ANY(number), nlen) == 0;
}

Datum
targeting_line_stats_sfunc(PG_FUNCTION_ARGS)
{
	MemoryContext aggcontext = pb_aggcontext(fcinfo, "targeting_line_stats_sfunc");
	TargetingLineState *state = PG_ARGISNULL(0) ? NULL : (TargetingLineState *) PG_GETARG_POINTER(0);
	WindowCache *cache = line_call_windows(fcinfo);
	DateADT		order_date;
	text	   *type = NULL;
	text	   *number = NULL;
	bool		has_key;
	LineOrder  *e;

	if (state == NULL)
		state = new_line_state(aggcontext, &cache->windows);
	else if (state->checked != cache || state->checked_generation != cache->generation)
		check_same_windows(&state->windows, &cache->windows);
	state->checked = cache;
	state->checked_generation = cache->generation;

	if (PG_ARGISNULL(LINE_ARG_ORDER_DATE))
		PG_RETURN_POINTER(state);
	order_date = PG_GETARG_DATEADT(LINE_ARG_ORDER_DATE);
	has_key = row_order_key(fcinfo, &type, &number);

	e = state->norders > 0 ? &state->orders[state->norders - 1] : NULL;
	if (e == NULL || !has_key || !same_order(e, type, number, order_date))
	{
		e = line_order_append(aggcontext, state);
		e->key = NULL;
		e->keylen = 0;
		e->order_date = order_date;
		memset(&e->total, 0, sizeof(LineSum));
		if (has_key)
		{
			int32		tlen = VARSIZE_ANY_EXHDR(type);
			int32		nlen = VARSIZE_ANY_EXHDR(number);

			e->keylen = tlen + 1 + nlen;
			e->key = MemoryContextAlloc(aggcontext, e->keylen);
			memcpy(e->key, VARDATA_ANY(type), tlen);
			e->key[tlen] = '\0';
			memcpy(e->key + tlen + 1, VARDATA_ANY(number), nlen);
		}
	}
	if (!PG_ARGISNULL(LINE_ARG_AMOUNT))
		line_sum_add(aggcontext, &e->total, PG_GETARG_DATUM(LINE_ARG_AMOUNT));
	PG_RETURN_POINTER(state);
}

/* append a copy of entry src (key and total into aggcontext) to state */
static void
line_order_copy(MemoryContext aggcontext, TargetingLineState *state, const LineOrder *src)
{
	LineOrder  *e = line_order_append(aggcontext, state);

	e->keylen = src->keylen;
	e->order_date = src->order_date;
	e->key = NULL;
	if (src->key)
	{
		e->key = MemoryContextAlloc(aggcontext, Max(src->keylen, 1));
		memcpy(e->key, src->key, src->keylen);
	}
	memset(&e->total, 0, sizeof(LineSum));
	line_sum_add_sum(aggcontext, &e->total, &src->total);
}

Datum
targeting_line_stats_combine(PG_FUNCTION_ARGS)
{
	MemoryContext aggcontext = pb_aggcontext(fcinfo, "targeting_line_stats_combine");
	TargetingLineState *a = PG_ARGISNULL(0) ? NULL : (TargetingLineState *) PG_GETARG_POINTER(0);
	TargetingLineState *b = PG_ARGISNULL(1) ? NULL : (TargetingLineState *) PG_GETARG_POINTER(1);

	if (b == NULL)
	{
		if (a == NULL)
			PG_RETURN_NULL();
		PG_RETURN_POINTER(a);
	}
	/* the result must live in the aggregate context: never return b itself */
	if (a == NULL)
		a = new_line_state(aggcontext, &b->windows);
	else
		check_same_windows(&a->windows, &b->windows);
	for (int64 i = 0; i < b->norders; i++)
	{
		CHECK_FOR_INTERRUPTS();
		line_order_copy(aggcontext, a, &b->orders[i]);
	}
	PG_RETURN_POINTER(a);
}

/* layout: four windows, the bar's length and bytes, the count, then the orders */
Datum
targeting_line_stats_serialize(PG_FUNCTION_ARGS)
{
	TargetingLineState *state = (TargetingLineState *) PG_GETARG_POINTER(0);
	StringInfoData buf;

	(void) pb_aggcontext(fcinfo, "targeting_line_stats_serialize");
	pq_begintypsend(&buf);
	send_windows(&buf, &state->windows);
	pq_sendint64(&buf, state->norders);
	for (int64 i = 0; i < state->norders; i++)
	{
		const LineOrder *e = &state->orders[i];

		CHECK_FOR_INTERRUPTS();
		pq_sendint32(&buf, e->key ? e->keylen : -1);
		if (e->key)
			pq_sendbytes(&buf, e->key, e->keylen);
		pq_sendint32(&buf, e->order_date);
		pq_sendbyte(&buf, e->total.any);
		pq_sendint64(&buf, e->total.fast);
		pq_sendint16(&buf, e->total.dscale);
		numeric_send_sum(&buf, e->total.slow);
	}
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

/* The state lives in the caller's (per-row) context, as targeting_stats's. */
Datum
targeting_line_stats_deserialize(PG_FUNCTION_ARGS)
{
	bytea	   *image = PG_GETARG_BYTEA_PP(0);
	TargetingLineState *state = palloc0(sizeof(TargetingLineState));
	StringInfoData buf;
	int64		n;

	(void) pb_aggcontext(fcinfo, "targeting_line_stats_deserialize");
	agg_image_reader(image, &buf);
	get_windows(&buf, &state->windows);
	n = pq_getmsgint64(&buf);
	for (int64 i = 0; i < n; i++)
	{
		LineOrder  *e = line_order_append(CurrentMemoryContext, state);
		int32		keylen = pq_getmsgint(&buf, 4);

		CHECK_FOR_INTERRUPTS();
		e->key = NULL;
		e->keylen = 0;
		if (keylen >= 0)
		{
			e->keylen = keylen;
			e->key = palloc(Max(keylen, 1));
			pq_copymsgbytes(&buf, e->key, keylen);
		}
		e->order_date = (DateADT) pq_getmsgint(&buf, 4);
		e->total.any = pq_getmsgbyte(&buf) != 0;
		e->total.fast = pq_getmsgint64(&buf);
		e->total.dscale = (int16) pq_getmsgint(&buf, 2);
		e->total.slow = numeric_get_sum(&buf, CurrentMemoryContext);
	}
	pq_getmsgend(&buf);
	PG_RETURN_POINTER(state);
}

/* by key (no key last, never equal), then date */
static int
compare_line_orders(const void *pa, const void *pb)
{
	const LineOrder *a = (const LineOrder *) pa;
	const LineOrder *b = (const LineOrder *) pb;
	int			c;

	if (a->key == NULL || b->key == NULL)
		return (a->key == NULL) - (b->key == NULL);
	c = memcmp(a->key, b->key, Min(a->keylen, b->keylen));
	if (c != 0)
		return c;
	if (a->keylen != b->keylen)
		return a->keylen < b->keylen ? -1 : 1;
	if (a->order_date != b->order_date)
		return a->order_date < b->order_date ? -1 : 1;
	return 0;
}

/* the fields of the targeting_stats type, for both aggregates' final functions */
static void
targeting_result_values(const OrderStats *stats, Datum *values, bool *nulls)
{
	values[0] = Int64GetDatum(stats->orders);
	values[1] = NumericGetDatum(numeric_or_zero(stats->total));
	values[2] = DateADTGetDatum(stats->last_order);
	nulls[2] = stats->orders == 0;
	values[3] = Int64GetDatum(stats->spend_orders);
	values[4] = NumericGetDatum(numeric_or_zero(stats->spend));
	values[5] = Int64GetDatum(stats->low_tickets);
	values[6] = NumericGetDatum(numeric_or_zero(stats->base));
	values[7] = NumericGetDatum(numeric_or_zero(stats->recent));
}

/*
 * The orders folded as targeting_stats folds them: entries of one order
 * (same key and date) merged first.  Sorting reorders the entries only, so
 * a second call gives the same result.
 */
Datum
targeting_line_stats_final(PG_FUNCTION_ARGS)
{
	TargetingLineState *state;
	TupleDesc	tupdesc;
	OrderStats	stats;
	Datum		values[8];
	bool		nulls[8] = {0};
	int64		i = 0;

	(void) pb_aggcontext(fcinfo, "targeting_line_stats_final");
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();		/* no rows, as sum() */
	state = (TargetingLineState *) PG_GETARG_POINTER(0);
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "targeting_line_stats_final must return a composite type");

	if (state->norders > 1)
		qsort(state->orders, state->norders, sizeof(LineOrder), compare_line_orders);
	memset(&stats, 0, sizeof(stats));
	while (i < state->norders)
	{
		const LineOrder *e = &state->orders[i];
		LineSum		total = {0};
		int64		j = i + 1;

		CHECK_FOR_INTERRUPTS();
		/* a copy: the entries stay as they are, for a second call */
		line_sum_add_sum(CurrentMemoryContext, &total, &e->total);
		/* the other entries of this order: parts of its lines */
		for (; j < state->norders && e->key != NULL &&
			 compare_line_orders(e, &state->orders[j]) == 0; j++)
			line_sum_add_sum(CurrentMemoryContext, &total, &state->orders[j].total);
		order_stats_add(CurrentMemoryContext, &stats, &state->windows, e->order_date,
						line_sum_numeric(&total, CurrentMemoryContext));
		i = j;
	}
	targeting_result_values(&stats, values, nulls);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(tupdesc), values, nulls)));
}
