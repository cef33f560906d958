/*
 * monthly_revenue.c
 *		customer_analytics.monthly_revenue(): revenue and order count per
 *		customer and calendar month, in long form, for a list of customers.
 *
 * Every requested customer gets a row for every month the window touches,
 * with 0 where there were no orders, so a pivot never loses a customer or a
 * month.  The first and last month may be partial (the notebook's January
 * stops on the 7th): only days inside the window count.  Orders follow the
 * targeting rules: confirmed only, total = sum of the lines, 0 without lines.
 *
 * The orders are grouped per customer by the monthly_revenue_stats
 * aggregate (1.4); with older SQL objects the same MonthlyTotals are folded
 * here, one order row at a time.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/tuplestore.h"

#include "ca_limits.h"
#include "calendar_month.h"
#include "customer_analytics.h"
#include "monthly_revenue_stats.h"
#include "numeric_acc.h"
#include "query_stream.h"
#include "sharded_source.h"
#include "source_tables.h"
#include "sql_args.h"

PG_FUNCTION_INFO_V1(monthly_revenue);

typedef struct MonthlyCustomer
{
	const char *code;
	uint32		hash;
	char		status;
	MonthlyTotals *months;
} MonthlyCustomer;

#define SH_PREFIX		monthhash
#define SH_ELEMENT_TYPE MonthlyCustomer
#include "code_hash.h"

typedef struct MonthlyPass
{
	monthhash_hash *customers;
	MemoryContext context;
} MonthlyPass;

/* The customer of an order or aggregate row (column 0), or NULL. */
static MonthlyCustomer *
listed_customer(MonthlyPass *pass, TupleTableSlot *slot)
{
	if (slot->tts_isnull[0])
		return NULL;
	/* NULL for a code not listed: the query filters on the codes, cannot happen */
	return monthhash_lookup(pass->customers, TextDatumGetCString(slot->tts_values[0]));
}

/* Row of the order query (older SQL objects): customer_code, order date, order total. */
static void
fold_order(TupleTableSlot *slot, void *arg)
{
	MonthlyPass *pass = (MonthlyPass *) arg;
	MonthlyCustomer *c = listed_customer(pass, slot);

	if (c)
		monthly_totals_add(pass->context, c->months, DatumGetDateADT(slot->tts_values[1]),
						   slot->tts_isnull[2] ? NULL : DatumGetNumeric(slot->tts_values[2]));
}

/*
 * Row of the aggregate query: customer_code, then the revenue and order
 * count arrays of monthly_revenue_stats, one element per month of the
 * window (the same window as the pass: the query passes it).
 */
static void
fold_customer_months(TupleTableSlot *slot, void *arg)
{
	MonthlyPass *pass = (MonthlyPass *) arg;
	MonthlyCustomer *c = listed_customer(pass, slot);
	MonthlyTotals *t;
	Datum	   *revenue,
			   *orders;
	int			nrevenue,
				norders;

	if (c == NULL || slot->tts_isnull[1] || slot->tts_isnull[2])
		return;
	t = c->months;
	deconstruct_array(DatumGetArrayTypeP(slot->tts_values[1]), NUMERICOID, -1, false,
					  TYPALIGN_INT, &revenue, NULL, &nrevenue);
	deconstruct_array(DatumGetArrayTypeP(slot->tts_values[2]), INT8OID, sizeof(int64),
					  FLOAT8PASSBYVAL, TYPALIGN_DOUBLE, &orders, NULL, &norders);
	if (nrevenue != t->nmonths || norders != t->nmonths)
		elog(ERROR,			/* our own query's result: cannot happen */ "monthly_revenue_stats returned %d months, expected %d", nrevenue, t->nmonths);
	for (int m = 0; m < t->nmonths; m++)
	{
		numeric_accumulate(pass->context, &t->revenue[m], DatumGetNumeric(revenue[m]));
		t->orders[m] += DatumGetInt64(orders[m]);
	}
}

/* false while the extension's SQL objects predate the aggregate (1.3 and older) */
static bool
monthly_revenue_stats_installed(void)
{
	Oid			argtypes[3] = {DATEOID, NUMERICOID, DATERANGEOID};

	return ca_function_installed("monthly_revenue_stats", 3, argtypes);
}

/*
 * The listed customers' orders (codes: the parameter named, as "$2") in the
 * window ($1), grouped per customer.
 */
static char *
customer_months_grouped(const SourceTables *src, const char *codes)
{
	char	   *scope = psprintf("o.customer_code::text = ANY (%s)", codes);

	return psprintf("SELECT o.customer_code,"
					" customer_analytics.monthly_revenue_stats(o.order_date, o.order_total, $1) AS m"
					" FROM (%s) o(customer_code, order_date, order_total)"
					" GROUP BY o.customer_code",
					src->order_totals
					? sharded_order_totals_query(src, "", scope)
					: source_order_totals_query(src, scope));
}

/* The grouped rows (one query, or branches under UNION ALL) as the fold reads them. */
static char *
customer_months_query(const char *grouped)
{
	return psprintf("SELECT s.customer_code, (s.m).revenue, (s.m).orders FROM (%s) s", grouped);
}

/*
 * Over a sharded source, the customers' months from one branch per
 * partition of order_totals given codes, each reading that partition with
 * only its codes ($2, $3, ...), under UNION ALL (one projection above it):
 * each shard's Remote SQL, and postgres_fdw's remote EXPLAINs while the
 * query is planned, carry that shard's codes instead of the whole list
 * (bench/README.md, issue 25), and the branches stay foreign scans directly
 * under the Append, scanned asynchronously.  (The parent with each branch's
 * codes would be pruned to the same partition, but as an Append of one
 * child, which the planner does not scan asynchronously.)  The branches'
 * customers are disjoint, so each still gets one row.  false (nothing run)
 * when the list cannot be split that way (sharded_codes_by_partition()):
 * the caller then filters the parent on the whole list.
 */
static bool
stream_sharded_months(const SourceTables *src, DateWindow window, ArrayType *codes,
					  MonthlyPass *pass)
{
	Datum	   *elems;
	int			nelems;
	int			nparts;
	List	   *parts;
	ListCell   *lc;
	StringInfoData sql;
	StringInfoData counts;
	Oid		   *types;
	Datum	   *values;
	int			nparams = 1;

	deconstruct_array(codes, TEXTOID, -1, false, TYPALIGN_INT, &elems, NULL, &nelems);
	parts = sharded_codes_by_partition(src, elems, nelems, &nparts);
	if (parts == NIL)
		return false;

	types = palloc(sizeof(Oid) * (list_length(parts) + 1));
	values = palloc(sizeof(Datum) * (list_length(parts) + 1));
	types[0] = DATERANGEOID;
	values[0] = date_window_datum(window);
	initStringInfo(&sql);
	initStringInfo(&counts);
	foreach(lc, parts)
	{
		ShardCodes *part = (ShardCodes *) lfirst(lc);
		SourceTables one = *src;

		one.order_totals = part->relation;
		types[nparams] = TEXTARRAYOID;
		values[nparams] = PointerGetDatum(part->codes);
		nparams++;
		if (nparams > 2)
		{
			appendStringInfoString(&sql, " UNION ALL ");
			appendStringInfoString(&counts, ", ");
		}
		appendStringInfoString(&sql, customer_months_grouped(&one, psprintf("$%d", nparams)));
		appendStringInfo(&counts, "%s %d", part->relation,
						 ArrayGetNItems(ARR_NDIM(part->codes), ARR_DIMS(part->codes)));
	}
	ereport(DEBUG1,
			(errmsg_internal("customer_analytics: monthly_revenue(): %d customer codes in %d of the %d partitions of %s (%s)",
							 nelems, list_length(parts), nparts, src->order_totals, counts.data)));
	query_stream(customer_months_query(sql.data), nparams, types, values, NULL,
				 fold_customer_months, pass);
	return true;
}

/* qsort comparator: customers by code, byte order */
static int
compare_codes(const void *a, const void *b)
{
	return strcmp((*(MonthlyCustomer *const *) a)->code,
				  (*(MonthlyCustomer *const *) b)->code);
}

/* monthly_revenue(customer_codes text[], revenue_window daterange, source_schema text) */
Datum
monthly_revenue(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	ArrayType  *codes = arg_text_array(fcinfo, 0, "customer_codes", true, CA_MAX_CUSTOMER_CODES,
										"Call monthly_revenue() once per batch of at most 1,000,000 customer codes.");
	DateWindow	window = arg_date_window(fcinfo, 1, "revenue_window");
	int			nmonths = monthly_window_months(window);
	const char *schema = PG_ARGISNULL(2) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(2));
	int64		ncodes = ArrayGetNItems(ARR_NDIM(codes), ARR_DIMS(codes));
	SourceTables *src;
	MonthlyPass pass;
	Datum	   *elems;
	int			nelems;
	MonthlyCustomer **sorted;
	int			n = 0;
	Oid			types[2] = {DATERANGEOID, TEXTARRAYOID};
	Datum		values[2];
	monthhash_iterator it;
	MonthlyCustomer *c;
	MemoryContext rowcontext;

	/* customers x months, before anything is allocated (duplicates counted) */
	ca_check_limit("the number of customer-month cells of monthly_revenue", ncodes * nmonths,
				   CA_MAX_MONTHLY_CELLS,
				   "Pass fewer customer codes per call (batches), or a shorter revenue_window.");

	InitMaterializedSRF(fcinfo, 0);
	src = source_tables_open(schema);

	pass.context = AllocSetContextCreate(CurrentMemoryContext,
										 "customer_analytics monthly_revenue",
										 ALLOCSET_DEFAULT_SIZES);

	deconstruct_array(codes, TEXTOID, -1, false, TYPALIGN_INT, &elems, NULL, &nelems);
	pass.customers = monthhash_create(pass.context, Max(nelems, 16), NULL);
	for (int i = 0; i < nelems; i++)
	{
		char	   *code = TextDatumGetCString(elems[i]);
		bool		found;

		CHECK_FOR_INTERRUPTS();
		if (monthhash_lookup(pass.customers, code))
			continue;			/* a code listed twice still gets one row a month */
		c = monthhash_insert(pass.customers, MemoryContextStrdup(pass.context, code), &found);
		c->months = monthly_totals_create(pass.context, window);
	}

	if (pass.customers->members > 0)
	{
		values[0] = date_window_datum(window);
		values[1] = PointerGetDatum(codes);
		if (monthly_revenue_stats_installed())
		{
			int			shard_settings = sharded_settings_push(src);

			if (src->order_totals == NULL ||
				!stream_sharded_months(src, window, codes, &pass))
				query_stream(customer_months_query(customer_months_grouped(src, "$2")), 2, types, values, NULL,
							 fold_customer_months, &pass);
			sharded_settings_pop(shard_settings);
		}
		else
			query_stream(source_order_totals_query(src, "o.customer_code::text = ANY ($2)"),
						 2, types, values, NULL, fold_order, &pass);
	}

	sorted = palloc(sizeof(MonthlyCustomer *) * Max(pass.customers->members, 1));
	monthhash_start_iterate(pass.customers, &it);
	while ((c = monthhash_iterate(pass.customers, &it)) != NULL)
	{
		CHECK_FOR_INTERRUPTS();
		sorted[n++] = c;
	}
	qsort(sorted, n, sizeof(MonthlyCustomer *), compare_codes);

	/*
	 * The rows' values are built in a context reset per customer: in the
	 * query's context they would stay until the end of the query, 64 bytes
	 * a row (the tuplestore keeps its own copies, within work_mem).
	 */
	rowcontext = AllocSetContextCreate(CurrentMemoryContext,
									   "customer_analytics monthly_revenue row",
									   ALLOCSET_DEFAULT_SIZES);
	for (int i = 0; i < n; i++)
	{
		MonthlyTotals *t = sorted[i]->months;
		MemoryContext oldcontext = MemoryContextSwitchTo(rowcontext);
		Datum		code = CStringGetTextDatum(sorted[i]->code);

		for (int m = 0; m < t->nmonths; m++)
		{
			Datum		row[4];
			bool		nulls[4] = {0};

			CHECK_FOR_INTERRUPTS();
			row[0] = code;
			row[1] = DateADTGetDatum(calendar_month_start(t->first_month + m));
			row[2] = NumericGetDatum(numeric_or_zero(t->revenue[m]));
			row[3] = Int64GetDatum(t->orders[m]);
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, row, nulls);
		}
		MemoryContextSwitchTo(oldcontext);
		MemoryContextReset(rowcontext);
	}

	MemoryContextDelete(rowcontext);
	MemoryContextDelete(pass.context);
	return (Datum) 0;
}
