/*
 * customer_features.c
 *		customer_analytics.customer_features(): the segmentation notebook's
 *		"customer single view", one row of RFM-style features per customer
 *		with a confirmed order in the feature window.
 *
 * Orders follow the targeting rules: confirmed only, checked dates, total =
 * sum of the lines' amounts (0 without lines).  One query returns one row
 * per order with its total, its quantity and its lines' product codes; the
 * rows stream into a hash table keyed by customer_code.  Each customer keeps
 * counters, two numeric sums and the set of its SKUs, so memory grows with
 * customers times their distinct SKUs (plus one entry per product code),
 * never with orders or lines.  Product codes are interned once per call
 * (each gets a number), and a customer's set holds those numbers, not
 * copies of the strings.
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

#include "numeric_acc.h"
#include "query_stream.h"
#include "source_tables.h"
#include "sql_args.h"

PG_FUNCTION_INFO_V1(customer_features);

/* A product code and its number, interned once per call. */
typedef struct SkuEntry
{
	const char *code;			/* hash key */
	uint32		hash;
	char		status;			/* simplehash bookkeeping */
	uint32		id;
} SkuEntry;

#define SH_PREFIX		skuhash
#define SH_ELEMENT_TYPE SkuEntry
#include "code_hash.h"

/* A member of one customer's SKU set: the number of a product code. */
typedef struct SkuMember
{
	uint32		id;
	char		status;
} SkuMember;

#define SH_PREFIX		skuset
#define SH_ELEMENT_TYPE SkuMember
#define SH_KEY_TYPE		uint32
#define SH_KEY			id
#define SH_HASH_KEY(tb, key) murmurhash32(key)
#define SH_EQUAL(tb, a, b) ((a) == (b))
#define SH_SCOPE		static inline
#define SH_DECLARE
#define SH_DEFINE
#include "lib/simplehash.h"

typedef struct FeatureCustomer
{
	const char *code;			/* hash key */
	uint32		hash;
	char		status;			/* simplehash bookkeeping */

	int64		visits;			/* confirmed orders in the window */
	Numeric		spend;			/* sum of order totals; NULL means 0 */
	Numeric		quantity;		/* sum of line quantities; NULL means 0 */
	DateADT		first_order;
	DateADT		last_order;
	skuset_hash *skus;			/* NULL until the first product code */
} FeatureCustomer;

#define SH_PREFIX		featurehash
#define SH_ELEMENT_TYPE FeatureCustomer
#include "code_hash.h"

typedef struct FeaturePass
{
	featurehash_hash *customers;
	skuhash_hash *skus;			/* every product code seen, numbered */
	MemoryContext context;		/* owns both tables and what they point to */
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

static FeatureCustomer *
lookup_or_add(FeaturePass *pass, const char *code)
{
	FeatureCustomer *c = featurehash_lookup(pass->customers, code);
	bool		found;

	if (c)
		return c;
	c = featurehash_insert(pass->customers, MemoryContextStrdup(pass->context, code), &found);
	/* simplehash zeroes nothing but the key and status */
	memset(((char *) c) + offsetof(FeatureCustomer, visits), 0,
		   sizeof(FeatureCustomer) - offsetof(FeatureCustomer, visits));
	return c;
}

static uint32
sku_id(FeaturePass *pass, const char *code)
{
	SkuEntry   *e = skuhash_lookup(pass->skus, code);
	bool		found;

	if (e)
		return e->id;
	e = skuhash_insert(pass->skus, MemoryContextStrdup(pass->context, code), &found);
	e->id = (uint32) (pass->skus->members - 1);
	return e->id;
}

/* Add an order's product codes (text[], may repeat) to the customer's set. */
static void
add_skus(FeaturePass *pass, FeatureCustomer *c, ArrayType *codes)
{
	Datum	   *elems;
	bool	   *nulls;
	int			n;

	deconstruct_array(codes, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	if (c->skus == NULL)
		c->skus = skuset_create(pass->context, 8, NULL);
	for (int i = 0; i < n; i++)
	{
		bool		found;

		if (nulls[i])
			continue;			/* the query filters them out */
		(void) skuset_insert(c->skus, sku_id(pass, TextDatumGetCString(elems[i])), &found);
	}
}

/* Row of the order query: customer_code, date, total, quantity, product codes. */
static void
fold_order(TupleTableSlot *slot, void *arg)
{
	FeaturePass *pass = (FeaturePass *) arg;
	FeatureCustomer *c;
	DateADT		d;

	if (slot->tts_isnull[0])
		return;					/* no customer to credit: the query excludes these */

	c = lookup_or_add(pass, TextDatumGetCString(slot->tts_values[0]));
	d = DatumGetDateADT(slot->tts_values[1]);
	if (c->visits == 0 || d < c->first_order)
		c->first_order = d;
	if (c->visits == 0 || d > c->last_order)
		c->last_order = d;
	c->visits++;

	if (!slot->tts_isnull[2])
		numeric_accumulate(pass->context, &c->spend, DatumGetNumeric(slot->tts_values[2]));
	if (!slot->tts_isnull[3])
		numeric_accumulate(pass->context, &c->quantity, DatumGetNumeric(slot->tts_values[3]));
	if (!slot->tts_isnull[4])
		add_skus(pass, c, DatumGetArrayTypeP(slot->tts_values[4]));
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
	float8		visits = (float8) c->visits;

	f->spend = c->spend ? c->spend : int64_to_numeric(0);
	f->ticket_size = numeric_div_opt_error(f->spend, int64_to_numeric(c->visits), NULL);
	f->quantity = c->quantity ? c->quantity : int64_to_numeric(0);
	f->skus = c->skus ? (int64) c->skus->members : 0;
	f->recency_days = as_of - c->last_order;
	f->tenure_days = as_of - c->first_order;
	f->span_days = c->last_order - c->first_order;
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

	elems[0] = Float8GetDatum((float8) c->visits);
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
	values[COL_VISITS] = Int64GetDatum(c->visits);
	values[COL_TOTAL_SPEND] = NumericGetDatum(f.spend);
	values[COL_TICKET_SIZE] = NumericGetDatum(f.ticket_size);
	values[COL_SKUS] = Int64GetDatum(f.skus);
	values[COL_TOTAL_QUANTITY] = NumericGetDatum(f.quantity);
	values[COL_FIRST_ORDER] = DateADTGetDatum(c->first_order);
	values[COL_LAST_ORDER] = DateADTGetDatum(c->last_order);
	values[COL_RECENCY_DAYS] = Int32GetDatum(f.recency_days);
	values[COL_TENURE_DAYS] = Int32GetDatum(f.tenure_days);
	values[COL_SPAN_DAYS] = Int32GetDatum(f.span_days);
	values[COL_QUANTITY_PER_VISIT] = Float8GetDatum(f.quantity_per_visit);
	values[COL_DAYS_PER_VISIT] = Float8GetDatum(f.days_per_visit);
	values[COL_SKUS_PER_VISIT] = Float8GetDatum(f.skus_per_visit);
	values[COL_DIFF] = Float8GetDatum(f.diff);
	values[COL_IS_REPEAT] = BoolGetDatum(c->visits >= 2);
	values[COL_FEATURES] = PointerGetDatum(features_array(c, &f));
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
}

static void
features_error_context(void *arg)
{
	errcontext("customer_analytics.customer_features reading source schema \"%s\"",
			   (const char *) arg);
}

/* Run the order query over the window (a daterange datum) into pass. */
static void
scan_orders(FeaturePass *pass, const SourceTables *src, Datum window)
{
	Oid			types[1] = {DATERANGEOID};
	ErrorContextCallback errcallback;

	errcallback.callback = features_error_context;
	errcallback.arg = (void *) src->schema;
	errcallback.previous = error_context_stack;
	error_context_stack = &errcallback;

	query_stream(source_order_items_query(src, "o.customer_code IS NOT NULL"),
				 1, types, &window, NULL, fold_order, pass);

	error_context_stack = errcallback.previous;
}

static int
compare_codes(const void *a, const void *b)
{
	return strcmp((*(FeatureCustomer *const *) a)->code,
				  (*(FeatureCustomer *const *) b)->code);
}

/* The customers of the pass, sorted by code (byte order). */
static FeatureCustomer **
sorted_customers(FeaturePass *pass, int *n)
{
	FeatureCustomer **sorted;
	featurehash_iterator it;
	FeatureCustomer *c;

	sorted = palloc(sizeof(FeatureCustomer *) * Max(pass->customers->members, 1));
	*n = 0;
	featurehash_start_iterate(pass->customers, &it);
	while ((c = featurehash_iterate(pass->customers, &it)) != NULL)
	{
		CHECK_FOR_INTERRUPTS();
		sorted[(*n)++] = c;
	}
	qsort(sorted, *n, sizeof(FeatureCustomer *), compare_codes);
	return sorted;
}

/* customer_features(feature_window daterange, as_of date, source_schema text) */
Datum
customer_features(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	DateWindow	window = arg_date_window(fcinfo, 0, "feature_window");
	DateADT		as_of = arg_as_of(fcinfo, 1, window);
	const char *schema = PG_ARGISNULL(2) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(2));
	SourceTables *src;
	FeaturePass pass;
	FeatureCustomer **sorted;
	MemoryContext rowcontext;
	int			n;

	InitMaterializedSRF(fcinfo, 0);
	if (rsinfo->setDesc->natts != NUM_COLUMNS)
		elog(ERROR, "customer_features: return type has %d columns, expected %d",
			 rsinfo->setDesc->natts, NUM_COLUMNS);
	src = source_tables_open(schema);
	source_tables_check_line_items(src);

	pass.context = AllocSetContextCreate(CurrentMemoryContext,
										 "customer_analytics customer_features",
										 ALLOCSET_DEFAULT_SIZES);
	pass.customers = featurehash_create(pass.context, 1024, NULL);
	pass.skus = skuhash_create(pass.context, 1024, NULL);
	scan_orders(&pass, src, PointerGetDatum(PG_GETARG_RANGE_P(0)));

	sorted = sorted_customers(&pass, &n);
	rowcontext = AllocSetContextCreate(CurrentMemoryContext,
									   "customer_analytics customer_features row",
									   ALLOCSET_DEFAULT_SIZES);
	for (int i = 0; i < n; i++)
	{
		MemoryContext oldcontext = MemoryContextSwitchTo(rowcontext);

		CHECK_FOR_INTERRUPTS();
		put_customer(rsinfo, sorted[i], as_of);
		MemoryContextSwitchTo(oldcontext);
		MemoryContextReset(rowcontext);
	}

	MemoryContextDelete(rowcontext);
	MemoryContextDelete(pass.context);
	return (Datum) 0;
}
