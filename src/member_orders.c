/*
 * member_orders.c
 *		_member_orders(): each campaign member's confirmed orders by window,
 *		what a campaign's response compares between its arms.
 *
 * The source is read as every reader reads it (source_tables_open(): the
 * trust checks, the data contract, the rollup when readable, a sharded
 * source's order_totals), through SPI under the caller's privileges and
 * row-level security, and only the listed customers' orders in the hull of
 * the windows are read (customer_code = ANY ($2)): the work follows the
 * members' orders, not the source's size.  Each order row is folded here
 * into every window holding its date, with exact numeric sums.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/memutils.h"
#include "utils/rangetypes.h"
#include "utils/tuplestore.h"
#include "utils/typcache.h"

#include "ca_limits.h"
#include "customer_analytics.h"
#include "numeric_acc.h"
#include "query_stream.h"
#include "sharded_source.h"
#include "source_tables.h"
#include "sql_args.h"

PG_FUNCTION_INFO_V1(member_orders);

/* one member's orders in one window */
typedef struct WindowOrders
{
	Numeric		revenue;		/* NULL: 0 */
	int64		orders;
	int64		low_tickets;
} WindowOrders;

typedef struct Member
{
	const char *code;
	uint32		hash;
	char		status;
	WindowOrders *windows;
} Member;

#define SH_PREFIX		memberhash
#define SH_ELEMENT_TYPE Member
#include "code_hash.h"

typedef struct MemberPass
{
	memberhash_hash *members;
	MemoryContext context;
	int			nwindows;
	DateWindow *windows;
	Numeric		low_ticket_below;
} MemberPass;

/*
 * The windows argument: a one-dimensional daterange[] without NULL, empty
 * or unbounded elements, as [lo, hi) pairs; ereport(ERROR) otherwise.
 */
static DateWindow *
arg_windows(FunctionCallInfo fcinfo, int argno, int *nwindows)
{
	ArrayType  *arr;
	TypeCacheEntry *typcache;
	Datum	   *elems;
	bool	   *elem_nulls;
	DateWindow *windows;

	arg_not_null(fcinfo, argno, "windows");
	arr = PG_GETARG_ARRAYTYPE_P(argno);
	if (ARR_NDIM(arr) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("windows must be a one-dimensional array"),
				 errhint("Pass ARRAY[measure_window, baseline_window].")));
	/* the SQL signature takes daterange[] only */
	typcache = lookup_type_cache(DATERANGEOID, TYPECACHE_RANGE_INFO);
	deconstruct_array(arr, DATERANGEOID, typcache->typlen, typcache->typbyval,
					  typcache->typalign, &elems, &elem_nulls, nwindows);
	if (*nwindows == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("windows must not be empty"),
				 errhint("Pass at least one daterange, such as ARRAY['[2026-01-01,2026-02-01)']::daterange[].")));
	windows = palloc(sizeof(DateWindow) * *nwindows);
	for (int i = 0; i < *nwindows; i++)
	{
		RangeBound	lower,
					upper;
		bool		empty;

		if (elem_nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("window %d must not be NULL", i + 1),
					 errhint("Pass a daterange with both ends, such as '[2026-01-01,2026-02-01)'.")));
		range_deserialize(typcache, DatumGetRangeTypeP(elems[i]), &lower, &upper, &empty);
		if (empty)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("window %d must not be empty", i + 1),
					 errhint("Give a window of at least one day, such as daterange('2026-01-01', '2026-01-31', '[]').")));
		if (lower.infinite || upper.infinite ||
			DATE_NOT_FINITE(DatumGetDateADT(lower.val)) ||
			DATE_NOT_FINITE(DatumGetDateADT(upper.val)))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("window %d must have a finite lower and upper bound", i + 1),
					 errhint("Give both ends, such as daterange('2026-01-01', '2026-01-31', '[]').")));
		/* daterange is canonical: [lo, hi) */
		windows[i].lo = DatumGetDateADT(lower.val);
		windows[i].hi = DatumGetDateADT(upper.val);
	}
	return windows;
}

/* Row of the order query: customer_code, order date, order total (NULL: 0). */
static void
fold_order(TupleTableSlot *slot, void *arg)
{
	MemberPass *pass = (MemberPass *) arg;
	Member	   *m;
	DateADT		date;
	Numeric		total;
	bool		low;

	if (slot->tts_isnull[0] || slot->tts_isnull[1])
		return;
	/* NULL for a code not listed: the query filters on the codes, cannot happen */
	m = memberhash_lookup(pass->members, TextDatumGetCString(slot->tts_values[0]));
	if (m == NULL)
		return;
	date = DatumGetDateADT(slot->tts_values[1]);
	total = slot->tts_isnull[2] ? int64_to_numeric(0) : DatumGetNumeric(slot->tts_values[2]);
	low = numeric_compare(total, pass->low_ticket_below) < 0;
	for (int i = 0; i < pass->nwindows; i++)
	{
		WindowOrders *w = &m->windows[i];

		if (date < pass->windows[i].lo || date >= pass->windows[i].hi)
			continue;
		numeric_accumulate(pass->context, &w->revenue, total);
		w->orders++;
		if (low)
			w->low_tickets++;
	}
}

/* qsort comparator: members by code, byte order */
static int
compare_codes(const void *a, const void *b)
{
	return strcmp((*(Member *const *) a)->code, (*(Member *const *) b)->code);
}

/*
 * _member_orders(source_schema text, customer_codes text[],
 *				  windows daterange[], low_ticket_below numeric,
 *				  OUT customer_code text, OUT window_index int,
 *				  OUT revenue numeric, OUT orders bigint, OUT low_tickets bigint)
 */
Datum
member_orders(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	const char *schema = PG_ARGISNULL(0) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(0));
	ArrayType  *codes = arg_text_array(fcinfo, 1, "customer_codes", true, CA_MAX_CUSTOMER_CODES,
										"Call _member_orders() once per batch of at most 1,000,000 customer codes.");
	int64		ncodes = ArrayGetNItems(ARR_NDIM(codes), ARR_DIMS(codes));
	MemberPass	pass;
	DateWindow	hull;
	SourceTables *src;
	Datum	   *elems;
	int			nelems;
	Member	  **sorted;
	int			n = 0;
	memberhash_iterator it;
	Member	   *m;
	MemoryContext rowcontext;

	/* codes x windows, before anything is read or allocated (duplicates counted) */
	if (!PG_ARGISNULL(2))
	{
		ArrayType  *w = PG_GETARG_ARRAYTYPE_P(2);

		ca_check_limit("the number of customer-window cells of _member_orders",
					   ncodes * ArrayGetNItems(ARR_NDIM(w), ARR_DIMS(w)),
					   CA_MAX_MEMBER_WINDOW_CELLS,
					   "Pass fewer customer codes per call (batches), or fewer windows.");
	}
	pass.windows = arg_windows(fcinfo, 2, &pass.nwindows);
	pass.low_ticket_below = arg_amount(fcinfo, 3, "low_ticket_below");

	InitMaterializedSRF(fcinfo, 0);
	src = source_tables_open(schema);

	pass.context = AllocSetContextCreate(CurrentMemoryContext,
										 "customer_analytics _member_orders",
										 ALLOCSET_DEFAULT_SIZES);
	deconstruct_array(codes, TEXTOID, -1, false, TYPALIGN_INT, &elems, NULL, &nelems);
	pass.members = memberhash_create(pass.context, Max(nelems, 16), NULL);
	for (int i = 0; i < nelems; i++)
	{
		char	   *code = TextDatumGetCString(elems[i]);
		bool		found;

		CHECK_FOR_INTERRUPTS();
		if (memberhash_lookup(pass.members, code))
			continue;			/* a code listed twice still gets one row a window */
		m = memberhash_insert(pass.members, MemoryContextStrdup(pass.context, code), &found);
		m->windows = MemoryContextAllocZero(pass.context, sizeof(WindowOrders) * pass.nwindows);
	}

	/* one pass over the members' orders in the hull of the windows */
	hull = pass.windows[0];
	for (int i = 1; i < pass.nwindows; i++)
	{
		hull.lo = Min(hull.lo, pass.windows[i].lo);
		hull.hi = Max(hull.hi, pass.windows[i].hi);
	}
	if (pass.members->members > 0)
	{
		const char *scope = "o.customer_code::text = ANY ($2)";
		Oid			types[2] = {DATERANGEOID, TEXTARRAYOID};
		Datum		values[2];

		values[0] = date_window_datum(hull);
		values[1] = PointerGetDatum(codes);
		query_stream(src->order_totals ? sharded_order_totals_query(src, "", scope)
					 : source_order_totals_query(src, scope),
					 2, types, values, NULL, fold_order, &pass);
	}

	sorted = palloc(sizeof(Member *) * Max(pass.members->members, 1));
	memberhash_start_iterate(pass.members, &it);
	while ((m = memberhash_iterate(pass.members, &it)) != NULL)
	{
		CHECK_FOR_INTERRUPTS();
		sorted[n++] = m;
	}
	qsort(sorted, n, sizeof(Member *), compare_codes);

	/* the rows' values in a context reset per member (the tuplestore copies them) */
	rowcontext = AllocSetContextCreate(CurrentMemoryContext,
									   "customer_analytics _member_orders row",
									   ALLOCSET_DEFAULT_SIZES);
	for (int i = 0; i < n; i++)
	{
		MemoryContext oldcontext = MemoryContextSwitchTo(rowcontext);
		Datum		code = CStringGetTextDatum(sorted[i]->code);

		for (int w = 0; w < pass.nwindows; w++)
		{
			const WindowOrders *o = &sorted[i]->windows[w];
			Datum		row[5];
			bool		nulls[5] = {0};

			CHECK_FOR_INTERRUPTS();
			row[0] = code;
			row[1] = Int32GetDatum(w + 1);
			row[2] = NumericGetDatum(numeric_or_zero(o->revenue));
			row[3] = Int64GetDatum(o->orders);
			row[4] = Int64GetDatum(o->low_tickets);
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, row, nulls);
		}
		MemoryContextSwitchTo(oldcontext);
		MemoryContextReset(rowcontext);
	}
	MemoryContextDelete(rowcontext);
	MemoryContextDelete(pass.context);
	return (Datum) 0;
}
