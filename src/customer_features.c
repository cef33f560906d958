/*
 * customer_features.c
 *		customer_analytics.customer_features(): the segmentation notebook's
 *		"customer single view", one row of RFM-style features per customer
 *		with a confirmed order in the feature window.
 *
 * Orders follow the targeting rules: confirmed only, checked dates, total =
 * sum of the lines' amounts (0 without lines).  A query returns one row per
 * order with its total, its quantity and its lines' product codes, and the
 * customer_feature_stats aggregate folds them by customer_code (in parallel
 * workers where the planner uses them): visits, two exact numeric sums,
 * first and last order, and the set of the customer's SKUs.  One row per
 * customer reaches this function, which derives the features from it.
 *
 * While the extension's SQL objects predate the aggregate (before ALTER
 * EXTENSION UPDATE to 1.3), the per-order rows stream here instead, into a
 * hash table keyed by customer_code, and each order is counted by the same
 * feature_stats_add() the aggregate uses, its codes interned once per call
 * in the pass's context.  Either way memory grows with customers times their
 * distinct SKUs (a pointer each: every code is stored once, not once per
 * customer), never with orders or lines.
 *
 * The features array is the float8 vector a clustering step takes, in this
 * order (the SQL comment documents the same):
 *   visits, total_spend, ticket_size, skus, total_quantity, recency_days,
 *   tenure_days, quantity_per_visit, days_per_visit, skus_per_visit, diff
 * Ratios are float8 divisions by visits, as the notebook's pandas gives them.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datetime.h"
#include "utils/memutils.h"
#include "utils/rangetypes.h"
#include "utils/tuplestore.h"

#include "customer_analytics.h"
#include "customer_features.h"
#include "feature_stats.h"
#include "numeric_acc.h"
#include "query_stream.h"
#include "sharded_source.h"
#include "source_tables.h"
#include "sql_args.h"

PG_FUNCTION_INFO_V1(customer_features);
PG_FUNCTION_INFO_V1(customer_features_of);

typedef struct FeatureCustomer
{
	const char *code;			/* hash key (per-order fold) */
	uint32		hash;
	char		status;			/* simplehash bookkeeping */

	FeatureStats stats;			/* confirmed orders in the window */
	int64		skus;			/* distinct product codes, once counted */
} FeatureCustomer;

#define SH_PREFIX		featurehash
#define SH_ELEMENT_TYPE FeatureCustomer
#include "code_hash.h"

typedef struct FeaturePass
{
	featurehash_hash *customers;	/* per-order fold only */
	CodeInterner *codes;		/* per-order fold only: the product codes */
	FeatureCustomer **rows;		/* the customers to report, in no order yet */
	int			nrows;
	int			maxrows;
	MemoryContext context;		/* owns the customers and what they point to */
} FeaturePass;

/* The output columns, in the order of the SQL declaration. */
enum
{
	COL_CUSTOMER_CODE,
	COL_VISITS,
	COL_TOTAL_SPEND,
	COL_TICKET_SIZE,
	COL_SKUS,
	COL_TOTAL_QUANTITY,
	COL_FIRST_ORDER,
	COL_LAST_ORDER,
	COL_RECENCY_DAYS,
	COL_TENURE_DAYS,
	COL_SPAN_DAYS,
	COL_QUANTITY_PER_VISIT,
	COL_DAYS_PER_VISIT,
	COL_SKUS_PER_VISIT,
	COL_DIFF,
	COL_IS_REPEAT,
	COL_FEATURES,
	NUM_COLUMNS
};

#define NUM_FEATURES 11

/* One customer's derived values, as the row reports them. */
typedef struct Features
{
	Numeric		spend;
	Numeric		ticket_size;
	Numeric		quantity;
	int64		skus;
	int32		recency_days;
	int32		tenure_days;
	int32		span_days;
	float8		quantity_per_visit;
	float8		days_per_visit;
	float8		skus_per_visit;
	float8		diff;
} Features;

static void
add_row(FeaturePass *pass, FeatureCustomer *c)
{
	if (pass->nrows == pass->maxrows)
	{
		pass->maxrows *= 2;
		pass->rows = repalloc(pass->rows, sizeof(FeatureCustomer *) * pass->maxrows);
	}
	pass->rows[pass->nrows++] = c;
}

/*
 * Row of the per-customer query: customer_code and the fields of its
 * customer_feature_stats (visits, spend, quantity, skus, first_order,
 * last_order).  The aggregate already folded the orders, in parallel
 * workers where the planner chose them.
 */
static void
fold_customer_stats(TupleTableSlot *slot, void *arg)
{
	FeaturePass *pass = (FeaturePass *) arg;
	FeatureCustomer *c;

	/* no customer to credit (the query excludes these), or no order counted */
	if (slot->tts_isnull[0] || slot->tts_isnull[1])
		return;
	c = MemoryContextAllocZero(pass->context, sizeof(FeatureCustomer));
	c->code = MemoryContextStrdup(pass->context, TextDatumGetCString(slot->tts_values[0]));
	c->stats.visits = DatumGetInt64(slot->tts_values[1]);
	c->stats.spend = slot_numeric_copy(slot, 2, pass->context);
	c->stats.quantity = slot_numeric_copy(slot, 3, pass->context);
	c->skus = DatumGetInt64(slot->tts_values[4]);
	c->stats.first_order = DatumGetDateADT(slot->tts_values[5]);
	c->stats.last_order = DatumGetDateADT(slot->tts_values[6]);
	add_row(pass, c);
}

static FeatureCustomer *
lookup_or_add(FeaturePass *pass, const char *code)
{
	FeatureCustomer *c = featurehash_lookup(pass->customers, code);
	bool		found;

	if (c)
		return c;
	c = featurehash_insert(pass->customers, MemoryContextStrdup(pass->context, code), &found);
	/* simplehash zeroes nothing but the key and status */
	memset(((char *) c) + offsetof(FeatureCustomer, stats), 0,
		   sizeof(FeatureCustomer) - offsetof(FeatureCustomer, stats));
	return c;
}

/*
 * Row of the per-order query: customer_code, date, total, quantity, product
 * codes.  Only when the extension's SQL objects predate the
 * customer_feature_stats aggregate; it counts an order as the aggregate does.
 */
static void
fold_order(TupleTableSlot *slot, void *arg)
{
	FeaturePass *pass = (FeaturePass *) arg;

	/* no customer to credit (the query excludes these), or no date (as the aggregate) */
	if (slot->tts_isnull[0] || slot->tts_isnull[1])
		return;
	feature_stats_add(pass->context, pass->codes,
					  &lookup_or_add(pass, TextDatumGetCString(slot->tts_values[0]))->stats,
					  DatumGetDateADT(slot->tts_values[1]),
					  slot->tts_isnull[2] ? NULL : DatumGetNumeric(slot->tts_values[2]),
					  slot->tts_isnull[3] ? NULL : DatumGetNumeric(slot->tts_values[3]),
					  slot->tts_isnull[4] ? NULL : DatumGetArrayTypeP(slot->tts_values[4]));
}

/* A finite date as YYYY-MM-DD, whatever DateStyle says, for messages. */
static char *
iso_date(DateADT d)
{
	struct pg_tm tm;
	char		buf[MAXDATELEN + 1];

	memset(&tm, 0, sizeof(tm));
	j2date(d + POSTGRES_EPOCH_JDATE, &tm.tm_year, &tm.tm_mon, &tm.tm_mday);
	EncodeDateOnly(&tm, USE_ISO_DATES, buf);
	return pstrdup(buf);
}

/* as_of: a finite day, not before the window's last day */
static DateADT
arg_as_of(FunctionCallInfo fcinfo, int argno, DateWindow window)
{
	DateADT		as_of;

	arg_not_null(fcinfo, argno, "as_of");
	as_of = PG_GETARG_DATEADT(argno);
	if (DATE_NOT_FINITE(as_of))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("as_of must be a finite date"),
				 errhint("Give the day recency and tenure are counted to, such as as_of => '2026-01-07'.")));
	if (as_of < window.hi - 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("as_of %s is before the last day of feature_window, %s",
						iso_date(as_of), iso_date(window.hi - 1)),
				 errhint("Recency and tenure are counted back from as_of, so orders after it would give negative days: "
						 "give an as_of on or after the window's last day, or end the window earlier.")));
	return as_of;
}

static float8
numeric_to_float8(Numeric n)
{
	return DatumGetFloat8(DirectFunctionCall1(numeric_float8, NumericGetDatum(n)));
}

static void
derive_features(const FeatureCustomer *c, DateADT as_of, Features *f)
{
	const FeatureStats *s = &c->stats;
	float8		visits = (float8) s->visits;

	f->spend = numeric_or_zero(s->spend);
	f->ticket_size = numeric_div_opt_error(f->spend, int64_to_numeric(s->visits), NULL);
	f->quantity = numeric_or_zero(s->quantity);
	f->skus = c->skus;
	f->recency_days = as_of - s->last_order;
	f->tenure_days = as_of - s->first_order;
	f->span_days = s->last_order - s->first_order;
	f->quantity_per_visit = numeric_to_float8(f->quantity) / visits;
	f->days_per_visit = (float8) f->span_days / visits;
	f->skus_per_visit = (float8) f->skus / visits;
	f->diff = f->quantity_per_visit - f->skus_per_visit;
}

/* The features array, in the documented order. */
static ArrayType *
features_array(const FeatureCustomer *c, const Features *f)
{
	Datum		elems[NUM_FEATURES];

	elems[0] = Float8GetDatum((float8) c->stats.visits);
	elems[1] = Float8GetDatum(numeric_to_float8(f->spend));
	elems[2] = Float8GetDatum(numeric_to_float8(f->ticket_size));
	elems[3] = Float8GetDatum((float8) f->skus);
	elems[4] = Float8GetDatum(numeric_to_float8(f->quantity));
	elems[5] = Float8GetDatum((float8) f->recency_days);
	elems[6] = Float8GetDatum((float8) f->tenure_days);
	elems[7] = Float8GetDatum(f->quantity_per_visit);
	elems[8] = Float8GetDatum(f->days_per_visit);
	elems[9] = Float8GetDatum(f->skus_per_visit);
	elems[10] = Float8GetDatum(f->diff);
	return construct_array(elems, NUM_FEATURES, FLOAT8OID, sizeof(float8),
						   FLOAT8PASSBYVAL, TYPALIGN_DOUBLE);
}

static void
put_customer(ReturnSetInfo *rsinfo, const FeatureCustomer *c, DateADT as_of)
{
	Datum		values[NUM_COLUMNS];
	bool		nulls[NUM_COLUMNS] = {0};
	Features	f;

	derive_features(c, as_of, &f);
	values[COL_CUSTOMER_CODE] = CStringGetTextDatum(c->code);
	values[COL_VISITS] = Int64GetDatum(c->stats.visits);
	values[COL_TOTAL_SPEND] = NumericGetDatum(f.spend);
	values[COL_TICKET_SIZE] = NumericGetDatum(f.ticket_size);
	values[COL_SKUS] = Int64GetDatum(f.skus);
	values[COL_TOTAL_QUANTITY] = NumericGetDatum(f.quantity);
	values[COL_FIRST_ORDER] = DateADTGetDatum(c->stats.first_order);
	values[COL_LAST_ORDER] = DateADTGetDatum(c->stats.last_order);
	values[COL_RECENCY_DAYS] = Int32GetDatum(f.recency_days);
	values[COL_TENURE_DAYS] = Int32GetDatum(f.tenure_days);
	values[COL_SPAN_DAYS] = Int32GetDatum(f.span_days);
	values[COL_QUANTITY_PER_VISIT] = Float8GetDatum(f.quantity_per_visit);
	values[COL_DAYS_PER_VISIT] = Float8GetDatum(f.days_per_visit);
	values[COL_SKUS_PER_VISIT] = Float8GetDatum(f.skus_per_visit);
	values[COL_DIFF] = Float8GetDatum(f.diff);
	values[COL_IS_REPEAT] = BoolGetDatum(c->stats.visits >= 2);
	values[COL_FEATURES] = PointerGetDatum(features_array(c, &f));
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
}

static void
features_error_context(void *arg)
{
	errcontext("customer_analytics.customer_features reading source schema \"%s\"",
			   (const char *) arg);
}

/* false while the extension's SQL objects predate the aggregate (1.2 and older) */
static bool
customer_feature_stats_installed(void)
{
	Oid			argtypes[4] = {DATEOID, NUMERICOID, NUMERICOID, TEXTARRAYOID};

	return ca_function_installed("customer_feature_stats", 4, argtypes);
}

/*
 * The orders folded per customer by the customer_feature_stats aggregate:
 * one row per customer, so the planner can run partial aggregates in
 * parallel workers and the leader combines them.  Over a sharded source the
 * orders come from order_totals, grouped by the partition key itself, so
 * that each shard runs the aggregate (docs/sharding.md).
 */
static char *
customer_stats_query(const SourceTables *src, const char *scope)
{
	return psprintf("SELECT s.customer_code, (s.st).visits, (s.st).spend, (s.st).quantity,"
					" (s.st).skus, (s.st).first_order, (s.st).last_order"
					" FROM (SELECT o.customer_code,"
					" customer_analytics.customer_feature_stats(o.order_date, o.order_total,"
					" o.quantity, o.product_codes) AS st"
					" FROM (%s) o(customer_code, order_date, order_total, quantity, product_codes)"
					" GROUP BY o.customer_code) s",
					src->order_totals
					? sharded_order_items_query(src, scope)
					: source_order_items_query(src, scope));
}

/* The customers a pass reads: all, or those of the text[] parameter $2. */
#define ALL_CUSTOMERS "o.customer_code IS NOT NULL"
#define SOME_CUSTOMERS "o.customer_code IS NOT NULL AND o.customer_code::text = ANY ($2)"

/*
 * The customers of the window (a daterange datum) into pass->rows: one row
 * each from the aggregate, or, with older SQL objects, the per-order rows
 * folded here.
 */
static void
scan_customers(FeaturePass *pass, const SourceTables *src, Datum window, Datum customers)
{
	Oid			types[2] = {DATERANGEOID, TEXTARRAYOID};
	Datum		params[2] = {window, customers};
	int			nparams = customers == (Datum) 0 ? 1 : 2;
	const char *scope = customers == (Datum) 0 ? ALL_CUSTOMERS : SOME_CUSTOMERS;
	ErrorContextCallback errcallback;

	errcallback.callback = features_error_context;
	errcallback.arg = (void *) src->schema;
	errcallback.previous = error_context_stack;
	error_context_stack = &errcallback;

	if (customer_feature_stats_installed())
	{
		/*
		 * Serial: a worker's partial SKU set holds most of its customer's
		 * codes, so the leader's combine repeats the fold instead of
		 * sharing it (scale 10 over the rollup, 2 cores: 2.1-2.3 s with 2
		 * workers, 1.4 s without).  The aggregate stays PARALLEL SAFE for
		 * queries whose groups a worker sees whole, such as shards
		 * co-located by customer.
		 */
		int			shard_settings = sharded_settings_push(src);

		query_stream_serial(customer_stats_query(src, scope), nparams, types, params, NULL,
							fold_customer_stats, pass);
		sharded_settings_pop(shard_settings);
	}
	else
	{
		featurehash_iterator it;
		FeatureCustomer *c;

		pass->customers = featurehash_create(pass->context, 1024, NULL);
		pass->codes = code_interner_create(pass->context);
		query_stream(source_order_items_query(src, scope),
					 nparams, types, params, NULL, fold_order, pass);
		featurehash_start_iterate(pass->customers, &it);
		while ((c = featurehash_iterate(pass->customers, &it)) != NULL)
		{
			CHECK_FOR_INTERRUPTS();
			c->skus = feature_stats_skus(&c->stats);
			add_row(pass, c);
		}
	}

	error_context_stack = errcallback.previous;
}

static int
compare_codes(const void *a, const void *b)
{
	return strcmp((*(FeatureCustomer *const *) a)->code,
				  (*(FeatureCustomer *const *) b)->code);
}

/* An empty pass, its rows in a new child context of the current one. */
static void
pass_init(FeaturePass *pass)
{
	memset(pass, 0, sizeof(*pass));
	pass->context = AllocSetContextCreate(CurrentMemoryContext,
										  "customer_analytics customer_features",
										  ALLOCSET_DEFAULT_SIZES);
	pass->maxrows = 1024;
	pass->rows = MemoryContextAlloc(pass->context, sizeof(FeatureCustomer *) * pass->maxrows);
}

/* The materialized result set of fcinfo, checked to have our columns. */
static ReturnSetInfo *
features_result(FunctionCallInfo fcinfo, const char *function)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	InitMaterializedSRF(fcinfo, 0);
	if (rsinfo->setDesc->natts != NUM_COLUMNS)
		elog(ERROR, "%s: return type has %d columns, expected %d",
			 function, rsinfo->setDesc->natts, NUM_COLUMNS);
	return rsinfo;
}

/*
 * Report the pass's customers with their features derived at as_of, in
 * customer_code byte order, and free the pass.
 */
static void
put_customers(ReturnSetInfo *rsinfo, FeaturePass *pass, DateADT as_of)
{
	MemoryContext rowcontext;

	/* by code, byte order */
	qsort(pass->rows, pass->nrows, sizeof(FeatureCustomer *), compare_codes);
	rowcontext = AllocSetContextCreate(CurrentMemoryContext,
									   "customer_analytics customer_features row",
									   ALLOCSET_DEFAULT_SIZES);
	for (int i = 0; i < pass->nrows; i++)
	{
		MemoryContext oldcontext = MemoryContextSwitchTo(rowcontext);

		CHECK_FOR_INTERRUPTS();
		put_customer(rsinfo, pass->rows[i], as_of);
		MemoryContextSwitchTo(oldcontext);
		MemoryContextReset(rowcontext);
	}

	MemoryContextDelete(rowcontext);
	MemoryContextDelete(pass->context);
}

/* customer_features(feature_window daterange, as_of date, source_schema text) */
Datum
customer_features(PG_FUNCTION_ARGS)
{
	DateWindow	window = arg_date_window(fcinfo, 0, "feature_window");
	DateADT		as_of = arg_as_of(fcinfo, 1, window);
	const char *schema = PG_ARGISNULL(2) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(2));
	ReturnSetInfo *rsinfo = features_result(fcinfo, "customer_features");
	SourceTables *src;
	FeaturePass pass;

	src = source_tables_open(schema);
	source_tables_check_line_items(src);

	pass_init(&pass);
	scan_customers(&pass, src, PointerGetDatum(PG_GETARG_RANGE_P(0)), (Datum) 0);
	put_customers(rsinfo, &pass, as_of);
	return (Datum) 0;
}

/*
 * _customer_features_of(feature_window daterange, as_of date, source_schema
 * text, customers text[]): customer_features() of these customers only (the
 * rows customer_features() gives them), their codes in the query that reads
 * the orders, so that over a sharded source each shard reads and folds only
 * theirs.  A segmentation's feature state on a sharded source follows the
 * shards' changes with it.
 */
Datum
customer_features_of(PG_FUNCTION_ARGS)
{
	DateWindow	window = arg_date_window(fcinfo, 0, "feature_window");
	DateADT		as_of = arg_as_of(fcinfo, 1, window);
	const char *schema = PG_ARGISNULL(2) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(2));
	ReturnSetInfo *rsinfo;
	SourceTables *src;
	FeaturePass pass;

	arg_not_null(fcinfo, 3, "customers");
	rsinfo = features_result(fcinfo, "_customer_features_of");
	src = source_tables_open(schema);
	source_tables_check_line_items(src);

	pass_init(&pass);
	scan_customers(&pass, src, PointerGetDatum(PG_GETARG_RANGE_P(0)), PG_GETARG_DATUM(3));
	put_customers(rsinfo, &pass, as_of);
	return (Datum) 0;
}

/*
 * customer_features() over per-customer stats kept elsewhere (see
 * customer_features.h): the same checks of feature_window (argument 1) and
 * as_of (argument 2), the same derivation and order.
 */
Datum
customer_features_from_stats(FunctionCallInfo fcinfo, const char *stats_query, const char *function)
{
	DateWindow	window = arg_date_window(fcinfo, 1, "feature_window");
	DateADT		as_of = arg_as_of(fcinfo, 2, window);
	ReturnSetInfo *rsinfo = features_result(fcinfo, function);
	FeaturePass pass;

	pass_init(&pass);
	query_stream_serial(stats_query, 0, NULL, NULL, NULL, fold_customer_stats, &pass);
	put_customers(rsinfo, &pass, as_of);
	return (Datum) 0;
}
