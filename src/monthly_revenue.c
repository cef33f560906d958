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
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/memutils.h"
#include "utils/tuplestore.h"

#include "numeric_acc.h"
#include "query_stream.h"
#include "source_tables.h"
#include "sql_args.h"

PG_FUNCTION_INFO_V1(monthly_revenue);

typedef struct MonthlyCustomer
{
	const char *code;
	uint32		hash;
	char		status;
	Numeric    *revenue;		/* per month; NULL means 0 */
	int64	   *orders;
} MonthlyCustomer;

#define SH_PREFIX		monthhash
#define SH_ELEMENT_TYPE MonthlyCustomer
#include "code_hash.h"

typedef struct MonthlyPass
{
	monthhash_hash *customers;
	MemoryContext context;
	int			first_month;	/* year * 12 + month - 1 */
	int			nmonths;
} MonthlyPass;

static int
month_index(DateADT d)
{
	int			year,
				month,
				day;

	j2date(d + POSTGRES_EPOCH_JDATE, &year, &month, &day);
	return year * 12 + month - 1;
}

static DateADT
month_start(int index)
{
	return date2j(index / 12, index % 12 + 1, 1) - POSTGRES_EPOCH_JDATE;
}

/* Row of the order query: customer_code, order date, order total. */
static void
fold_order(TupleTableSlot *slot, void *arg)
{
	MonthlyPass *pass = (MonthlyPass *) arg;
	MonthlyCustomer *c;
	int			m;
	Numeric		total;

	if (slot->tts_isnull[0])
		return;
	c = monthhash_lookup(pass->customers, TextDatumGetCString(slot->tts_values[0]));
	if (c == NULL)
		return;					/* the query filters on the codes: cannot happen */

	m = month_index(DatumGetDateADT(slot->tts_values[1])) - pass->first_month;
	Assert(m >= 0 && m < pass->nmonths);
	total = slot->tts_isnull[2] ? int64_to_numeric(0) : DatumGetNumeric(slot->tts_values[2]);

	numeric_accumulate(pass->context, &c->revenue[m], total);
	c->orders[m]++;
}

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
	ArrayType  *codes = arg_text_array(fcinfo, 0, "customer_codes", true);
	DateWindow	window = arg_date_window(fcinfo, 1, "revenue_window");
	const char *schema = PG_ARGISNULL(2) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(2));
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

	InitMaterializedSRF(fcinfo, 0);
	src = source_tables_open(schema);

	pass.context = AllocSetContextCreate(CurrentMemoryContext,
										 "customer_analytics monthly_revenue",
										 ALLOCSET_DEFAULT_SIZES);
	pass.first_month = month_index(window.lo);
	pass.nmonths = month_index(window.hi - 1) - pass.first_month + 1;

	deconstruct_array(codes, TEXTOID, -1, false, TYPALIGN_INT, &elems, NULL, &nelems);
	pass.customers = monthhash_create(pass.context, Max(nelems, 16), NULL);
	for (int i = 0; i < nelems; i++)
	{
		char	   *code = TextDatumGetCString(elems[i]);
		bool		found;

		if (monthhash_lookup(pass.customers, code))
			continue;			/* a code listed twice still gets one row a month */
		c = monthhash_insert(pass.customers, MemoryContextStrdup(pass.context, code), &found);
		c->revenue = MemoryContextAllocZero(pass.context, sizeof(Numeric) * pass.nmonths);
		c->orders = MemoryContextAllocZero(pass.context, sizeof(int64) * pass.nmonths);
	}

	if (pass.customers->members > 0)
	{
		values[0] = date_window_datum(window);
		values[1] = PointerGetDatum(codes);
		query_stream(source_order_totals_query(src, "o.customer_code::text = ANY ($2)"),
					 2, types, values, NULL, fold_order, &pass);
	}

	sorted = palloc(sizeof(MonthlyCustomer *) * Max(pass.customers->members, 1));
	monthhash_start_iterate(pass.customers, &it);
	while ((c = monthhash_iterate(pass.customers, &it)) != NULL)
		sorted[n++] = c;
	qsort(sorted, n, sizeof(MonthlyCustomer *), compare_codes);

	for (int i = 0; i < n; i++)
	{
		CHECK_FOR_INTERRUPTS();
		for (int m = 0; m < pass.nmonths; m++)
		{
			Datum		row[4];
			bool		nulls[4] = {0};

			row[0] = CStringGetTextDatum(sorted[i]->code);
			row[1] = DateADTGetDatum(month_start(pass.first_month + m));
			row[2] = NumericGetDatum(sorted[i]->revenue[m] ? sorted[i]->revenue[m]
									 : int64_to_numeric(0));
			row[3] = Int64GetDatum(sorted[i]->orders[m]);
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, row, nulls);
		}
	}

	MemoryContextDelete(pass.context);
	return (Datum) 0;
}
