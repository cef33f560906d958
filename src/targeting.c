/*
 * targeting.c
 *		One pass over the confirmed orders of the data window, folded into
 *		per-customer state, then the funnel's verdicts.
 *
 * The executor joins each confirmed order header to its lines and sums them
 * (an order's total; 0 when it has no lines or only NULL amounts, as the
 * notebook's COALESCE(SUM(...), 0)), and the targeting_stats aggregate folds
 * the orders per customer, in parallel workers where the planner uses them.
 * One row per customer then reaches a hash table keyed by customer_code,
 * which the customers' attributes join, so memory grows with customers, not
 * with lines or orders.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "common/int.h"
#include "lib/stringinfo.h"
#include "executor/nodeHash.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include "code_set.h"
#include "customer_analytics.h"
#include "numeric_acc.h"
#include "order_line_totals.h"
#include "query_stream.h"
#include "sharded_source.h"
#include "source_tables.h"
#include "targeting.h"

#define SH_PREFIX		custhash
#define SH_ELEMENT_TYPE CustomerState
#include "code_hash.h"

/* an order of the scoped orders query, waiting for its total */
typedef struct ScannedOrder
{
	CustomerState *customer;	/* valid until a customer is added (entries move) */
	const char *code;			/* its key, which outlives a growth */
	DateADT		order_date;
	int32		key;			/* position in the key list; -1: no key */
} ScannedOrder;

typedef struct TargetingPass
{
	const TargetingParams *params;
	const SourceTables *src;
	custhash_hash *customers;
	MemoryContext context;		/* owns the hash table and its contents */
	int64		uncoded_customers;

	/* scan_orders_fold(): the scoped orders and their keys */
	ScannedOrder *orders;
	int64		norders;
	int64		maxorders;
	OrderKeyList *keys;
} TargetingPass;

/* column attno of the row as a string in context; NULL for NULL */
static char *
text_column(TupleTableSlot *slot, int attno, MemoryContext context)
{
	MemoryContext old;
	char	   *s;

	if (slot->tts_isnull[attno])
		return NULL;
	/* one copy, made where it stays */
	old = MemoryContextSwitchTo(context);
	s = TextDatumGetCString(slot->tts_values[attno]);
	MemoryContextSwitchTo(old);
	return s;
}

static CustomerState *
lookup_or_add(TargetingPass *pass, const char *code)
{
	CustomerState *c = custhash_lookup(pass->customers, code);
	bool		found;

	if (c)
		return c;
	c = custhash_insert(pass->customers, MemoryContextStrdup(pass->context, code), &found);
	/* simplehash zeroes nothing but the key and status */
	memset(((char *) c) + offsetof(CustomerState, in_customers), 0,
		   sizeof(CustomerState) - offsetof(CustomerState, in_customers));
	return c;
}

/* The error of a customer code found twice among the route customers */
void
targeting_duplicate_customer(const char *schema, const char *code)
{
	ereport(ERROR,
			(errcode(ERRCODE_UNIQUE_VIOLATION),
			 errmsg("customer_code \"%s\" appears more than once in %s.customers",
					code, schema),
			 errhint("customer_code must identify one customer: remove the duplicate row, "
					 "or point source_schema at a view that keeps one row per customer.")));
}

static void
report_duplicate_customer(TargetingPass *pass, const char *code)
{
	targeting_duplicate_customer(pass->src->schema, code);
}

/* TargetingHookPass.add */
static CustomerState *
hook_add_customer(void *arg, const char *code)
{
	return lookup_or_add((TargetingPass *) arg, code);
}

/*
 * Row of the customers query: customer_code, trade_name, delivery_route,
 * shipping_address, csm.  With the route taken from the customer every row
 * is a route customer; with the route taken from the order only customers
 * that ordered on a route are kept.
 */
static void
fold_customer(TupleTableSlot *slot, void *arg)
{
	TargetingPass *pass = (TargetingPass *) arg;
	const char *code;
	CustomerState *c;

	if (slot->tts_isnull[0])
	{
		if (!pass->params->route_from_order)
			pass->uncoded_customers++;
		return;
	}
	code = TextDatumGetCString(slot->tts_values[0]);
	if (pass->params->route_from_order)
	{
		c = custhash_lookup(pass->customers, code);
		if (c == NULL)
			return;
	}
	else
		c = lookup_or_add(pass, code);

	if (c->in_customers)
		report_duplicate_customer(pass, code);
	c->in_customers = true;
	c->trade_name = text_column(slot, 1, pass->context);
	c->delivery_route = text_column(slot, 2, pass->context);
	c->shipping_address = text_column(slot, 3, pass->context);
	c->csm = text_column(slot, 4, pass->context);
}

/*
 * Row of the per-customer query: customer_code and the fields of its
 * targeting_stats (orders, total, last_order, spend_orders, spend,
 * low_tickets, base, recent).  The aggregate already folded the orders,
 * in parallel workers where the planner chose them.
 */
static void
fold_customer_stats(TupleTableSlot *slot, void *arg)
{
	TargetingPass *pass = (TargetingPass *) arg;
	OrderStats *stats;

	if (slot->tts_isnull[0])
		return;					/* no customer to credit: the query excludes these */
	if (pass->params->stats_relation && pass->params->customers)
	{
		/*
		 * The state's rows of listed customers (state_stats_query): a route
		 * customer is one the customers query found.
		 */
		CustomerState *c = custhash_lookup(pass->customers, TextDatumGetCString(slot->tts_values[0]));

		if (c == NULL)
			return;
		stats = &c->orders;
	}
	else
		stats = &lookup_or_add(pass, TextDatumGetCString(slot->tts_values[0]))->orders;
	stats->orders = DatumGetInt64(slot->tts_values[1]);
	stats->total = slot_numeric_copy(slot, 2, pass->context);
	stats->last_order = DatumGetDateADT(slot->tts_values[3]);
	stats->spend_orders = DatumGetInt64(slot->tts_values[4]);
	stats->spend = slot_numeric_copy(slot, 5, pass->context);
	stats->low_tickets = DatumGetInt64(slot->tts_values[6]);
	stats->base = slot_numeric_copy(slot, 7, pass->context);
	stats->recent = slot_numeric_copy(slot, 8, pass->context);
}

/*
 * Row of the per-order query: customer_code, order date, order total.  Only
 * when the extension's SQL objects predate the targeting_stats aggregate.
 */
static void
fold_order(TupleTableSlot *slot, void *arg)
{
	TargetingPass *pass = (TargetingPass *) arg;

	if (slot->tts_isnull[0])
		return;					/* no customer to credit: the query excludes these */
	order_stats_add(pass->context,
					&lookup_or_add(pass, TextDatumGetCString(slot->tts_values[0]))->orders,
					&pass->params->windows, DatumGetDateADT(slot->tts_values[1]),
					slot->tts_isnull[2] ? NULL : DatumGetNumeric(slot->tts_values[2]));
}

/* SQL text of the customers argument's filter ($3) on alias a */
#define CUSTOMER_FILTER(a) a ".customer_code::text = ANY ($3)"

/*
 * The same filter as an array the planner cannot see the size of (an
 * InitPlan): it then probes the customer index for each listed customer
 * instead of scanning the whole table with a hashed filter, whatever its
 * estimates.  Used over a campaign's state (the delta refresh's changed
 * customers, one server: postgres_fdw would not ship the subquery).
 */
#define CUSTOMER_KEYS(a) a ".customer_code::text = ANY (ARRAY(SELECT pg_catalog.unnest($3)))"

/* SQL text shared by both queries: is customer c open? */
#define OPEN_CUSTOMER "COALESCE(pg_catalog.btrim(c.closure_date::text), '') = ''"

static char *
customers_query(const TargetingPass *pass)
{
	StringInfoData sql;

	initStringInfo(&sql);
	appendStringInfo(&sql,
					 "SELECT c.customer_code::text, c.trade_name::text, c.delivery_route::text,"
					 " c.shipping_address::text, c.csm::text FROM %s c",
					 pass->src->customers);
	/* with routes from orders, the order query already applied all filters */
	if (!pass->params->route_from_order)
	{
		appendStringInfoString(&sql, " WHERE c.delivery_route::text = ANY ($2)");
		if (pass->params->exclude_closed)
			appendStringInfoString(&sql, " AND " OPEN_CUSTOMER);
		if (pass->params->customers)
			appendStringInfoString(&sql, pass->params->stats_relation ? " AND " CUSTOMER_KEYS("c")
								   : " AND " CUSTOMER_FILTER("c"));
	}
	return sql.data;
}

/*
 * orders_query() over a sharded source: the route test is a join on the
 * customers by the partition key (postgres_fdw 15 ships joins, not semi- or
 * anti-joins), so each shard joins and aggregates its own customers.  A
 * duplicated route customer, which the join would count twice, is an error
 * of the customers query that runs first; a closed one only removes rows.
 * lines: one row per line from order_lines (targeting_line_stats folds
 * them), else one per order from order_totals.
 */
static char *
sharded_orders_query(const TargetingPass *pass, bool lines)
{
	const char *join = "";
	const char *scope;

	if (!pass->params->route_from_order)
	{
		join = psprintf(" JOIN %s c ON c.customer_code = o.customer_code", pass->src->customers);
		scope = psprintf("c.delivery_route::text = ANY ($2)%s%s",
						 pass->params->exclude_closed ? " AND " OPEN_CUSTOMER : "",
						 pass->params->customers ? " AND " CUSTOMER_FILTER("c") : "");
	}
	else
	{
		scope = "o.customer_code IS NOT NULL AND o.delivery_route::text = ANY ($2)";
		if (pass->params->exclude_closed)
		{
			join = psprintf(" LEFT JOIN %s c ON c.customer_code = o.customer_code AND NOT " OPEN_CUSTOMER,
							pass->src->customers);
			scope = psprintf("%s AND c.customer_code IS NULL", scope);
		}
		if (pass->params->customers)
			scope = psprintf("%s AND " CUSTOMER_FILTER("o"), scope);
	}
	if (lines)
		return sharded_order_lines_query(pass->src, join, scope);
	return sharded_order_totals_query(pass->src, join, scope);
}

/* SQL condition over the orders o (source tables or rollup): the route customers' orders */
static const char *
orders_scope(const TargetingPass *pass)
{
	const char *scope;

	if (!pass->params->route_from_order)
	{
		/*
		 * With a customers filter the route customers it names are few: the
		 * planner then reads each one's orders through the customer index,
		 * instead of every listed customer's orders before the route test.
		 */
		return psprintf("o.customer_code::text IN (SELECT c.customer_code::text FROM %s c"
						" WHERE c.delivery_route::text = ANY ($2)%s%s)",
						pass->src->customers,
						pass->params->exclude_closed ? " AND " OPEN_CUSTOMER : "",
						pass->params->customers ? " AND " CUSTOMER_FILTER("c") : "");
	}
	else if (!pass->params->exclude_closed)
		scope = "o.customer_code IS NOT NULL AND o.delivery_route::text = ANY ($2)";
	else
		scope = psprintf("o.customer_code IS NOT NULL AND o.delivery_route::text = ANY ($2)"
						 " AND NOT EXISTS (SELECT 1 FROM %s c"
						 " WHERE c.customer_code::text = o.customer_code::text"
						 " AND NOT " OPEN_CUSTOMER ")",
						 pass->src->customers);
	if (pass->params->customers)
		scope = psprintf("%s AND " CUSTOMER_FILTER("o"), scope);
	return scope;
}

static char *
orders_query(const TargetingPass *pass)
{
	if (pass->src->order_totals)
		return sharded_orders_query(pass, false);
	return source_order_totals_query(pass->src, orders_scope(pass));
}

/*
 * Row of the scoped orders query (source_scoped_orders_query): customer_code,
 * order_type, order_number, order date.  As the rows of the lines query
 * reach targeting_line_stats grouped by customer: a row with a customer
 * credits the customer (with its orders, if any), one with a NULL date is
 * no order, an order with a NULL key part has no lines.
 */
static void
scan_orders_fold(TupleTableSlot *slot, void *arg)
{
	TargetingPass *pass = (TargetingPass *) arg;
	CustomerState *c;
	ScannedOrder *o;

	if (slot->tts_isnull[0])
		return;					/* no customer to credit: the query excludes these */
	/* the code in a buffer of this call (lookup_or_add copies a new one) */
	{
		text	   *t = DatumGetTextPP(slot->tts_values[0]);
		Size		len = VARSIZE_ANY_EXHDR(t);
		char		buf[64];
		char	   *code = buf;

		if (len < sizeof(buf))
		{
			memcpy(buf, VARDATA_ANY(t), len);
			buf[len] = '\0';
		}
		else
			code = text_to_cstring(t);
		c = lookup_or_add(pass, code);
	}
	if (slot->tts_isnull[3])
		return;
	if (pass->norders == pass->maxorders)
	{
		int64		newmax = Max(pass->maxorders * 2, 1024);

		if ((Size) newmax * sizeof(ScannedOrder) > MaxAllocHugeSize)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("too many orders in the data window to total from one scan of the lines")));
		pass->orders = pass->orders
			? repalloc_huge(pass->orders, newmax * sizeof(ScannedOrder))
			: MemoryContextAllocHuge(pass->context, newmax * sizeof(ScannedOrder));
		pass->maxorders = newmax;
	}
	o = &pass->orders[pass->norders++];
	o->customer = c;
	o->code = c->code;
	o->order_date = DatumGetDateADT(slot->tts_values[3]);
	o->key = -1;
	if (!slot->tts_isnull[1] && !slot->tts_isnull[2])
		o->key = order_key_list_add(pass->keys, DatumGetTextPP(slot->tts_values[1]),
									DatumGetTextPP(slot->tts_values[2]));
}

/* memory of the line scan per listed order and process, bytes (see scan_lines_pass) */
#define LINE_SCAN_ORDER_BYTES 64

/* the one row of the lines query: the totals of the listed orders */
typedef struct LineTotals
{
	TargetingPass *pass;
	LineSum    *sums;			/* per listed order */
} LineTotals;

static void
scan_totals_fold(TupleTableSlot *slot, void *arg)
{
	LineTotals *totals = (LineTotals *) arg;

	totals->sums = order_line_totals_read(slot->tts_isnull[0] ? NULL
										  : DatumGetByteaPP(slot->tts_values[0]),
										  totals->pass->keys, totals->pass->context);
}

#define FAST_TOTAL	0
#define FAST_SPEND	1
#define FAST_BASE	2
#define FAST_RECENT 3

/* customer c's sum i plus an order total of units with scale dscale */
static void
fast_add(TargetingPass *pass, CustomerState *c, int i, int64 units, int dscale)
{
	int64		sum;

	if (pg_add_s64_overflow(c->fast[i].units, units, &sum))
	{
		/* the sum so far to the Numeric one, then start again */
		Numeric    *slow[4] = {&c->orders.total, &c->orders.spend, &c->orders.base, &c->orders.recent};

		numeric_accumulate(pass->context, slow[i],
						   units_to_numeric(c->fast[i].units, c->fast[i].dscale, pass->context));
		sum = units;
	}
	c->fast[i].units = sum;
	c->fast[i].dscale = Max(c->fast[i].dscale, dscale);
	c->fast[i].any = true;
}

/*
 * order_stats_add() for an order whose total is units (of 1e-8) with scale
 * dscale, into the customer's int64 sums: the same counts, and sums that
 * fast_flush() makes the same Numerics (exact additions; the largest scale).
 * bar: low_ticket_below in units, when it has an exact one.
 */
static void
fast_order_add(TargetingPass *pass, CustomerState *c, DateADT order_date, int64 units, int dscale,
			   bool bar_exact, int64 bar)
{
	const OrderWindows *w = &pass->params->windows;
	OrderStats *stats = &c->orders;

	if (stats->orders == 0 || order_date > stats->last_order)
		stats->last_order = order_date;
	stats->orders++;
	fast_add(pass, c, FAST_TOTAL, units, dscale);
	if (date_in_window(order_date, w->spend))
	{
		stats->spend_orders++;
		fast_add(pass, c, FAST_SPEND, units, dscale);
	}
	if (date_in_window(order_date, w->low_ticket) &&
		(bar_exact ? units < bar
		 : numeric_compare(units_to_numeric(units, dscale, pass->context), w->low_ticket_below) < 0))
		stats->low_tickets++;
	if (date_in_window(order_date, w->base))
		fast_add(pass, c, FAST_BASE, units, dscale);
	if (date_in_window(order_date, w->recent))
		fast_add(pass, c, FAST_RECENT, units, dscale);
}

/* every customer's int64 sums added to its Numeric ones */
static void
fast_flush(TargetingPass *pass)
{
	custhash_iterator it;
	CustomerState *c;

	custhash_start_iterate(pass->customers, &it);
	while ((c = custhash_iterate(pass->customers, &it)) != NULL)
	{
		Numeric    *slow[4] = {&c->orders.total, &c->orders.spend, &c->orders.base, &c->orders.recent};

		CHECK_FOR_INTERRUPTS();
		for (int i = 0; i < 4; i++)
		{
			if (c->fast[i].any)
				numeric_accumulate(pass->context, slow[i],
								   units_to_numeric(c->fast[i].units, c->fast[i].dscale, pass->context));
			c->fast[i].any = false;
		}
	}
}

/*
 * The scoped orders query of scan_lines_pass() with the route test as
 * _code_listed(customer_code, $9), $9 the codes of the route customers the
 * customers query found (pass->customers: on its routes, open when closed
 * customers are excluded, with a code), instead of orders_scope()'s
 * semi-join with the customers: a hash and a load or two per confirmed
 * order in the window where the join's bucket scan cost several times that
 * (bench/README.md, issue 25, branch s32-full-linear).  The same orders:
 * codes compare bytewise in both (text equality, as the leader's table of
 * customers compares them), a NULL code is in neither.  The function's cost
 * keeps it after the window test, so every confirmed order's date is still
 * checked.  false, nothing run, with routes from the orders (no such list),
 * while the function is not installed (SQL objects of 1.5), or when each
 * process's table of the codes would pass the memory a hash table may take
 * (work_mem times hash_mem_multiplier): then the semi-join runs.
 */
static bool
route_codes_scan(TargetingPass *pass, const Datum *values, const bool *nulls,
				 const Oid *types, int nparams)
{
	Oid			argtypes[2] = {TEXTOID, BYTEAOID};
	Oid		   *alltypes;
	Datum	   *allvalues;
	bool	   *allnulls;
	const char **codes;
	custhash_iterator it;
	CustomerState *c;
	int32		n = 0;
	bytea	   *image;

	if (pass->params->route_from_order || pass->params->customers ||
		!ca_function_installed("_code_listed", 2, argtypes))
		return false;
	codes = MemoryContextAllocHuge(pass->context, sizeof(char *) * Max(pass->customers->members, 1));
	custhash_start_iterate(pass->customers, &it);
	while ((c = custhash_iterate(pass->customers, &it)) != NULL)
	{
		CHECK_FOR_INTERRUPTS();
		codes[n++] = c->code;
	}
	image = code_set_image(codes, n);
	if ((double) code_set_memory(n, VARSIZE(image)) > (double) get_hash_memory_limit())
	{
		pfree(image);
		pfree(codes);
		return false;
	}
	alltypes = palloc(sizeof(Oid) * (nparams + 1));
	allvalues = palloc(sizeof(Datum) * (nparams + 1));
	allnulls = palloc(sizeof(bool) * (nparams + 1));
	memcpy(alltypes, types, sizeof(Oid) * nparams);
	memcpy(allvalues, values, sizeof(Datum) * nparams);
	memcpy(allnulls, nulls, sizeof(bool) * nparams);
	alltypes[nparams] = BYTEAOID;
	allvalues[nparams] = PointerGetDatum(image);
	allnulls[nparams] = false;
	/* the window a constant (its selectivity estimate), the codes a parameter */
	query_stream_mixed(source_scoped_orders_query(pass->src,
												  psprintf("customer_analytics._code_listed(o.customer_code::text, $%d)",
														   nparams + 1)),
					   nparams + 1, nparams, alltypes, allvalues, allnulls, scan_orders_fold, pass);
	pfree(image);
	pfree(codes);
	return true;
}

/*
 * Over the source tables without a customers filter: the scoped orders (one
 * row each, their keys listed), then one scan of every line, each line
 * added to its listed order's total by the _order_line_totals aggregate in
 * parallel workers, then the orders folded per customer as
 * targeting_line_stats folds them.  The lines are read as the floor reads
 * them (one sequential scan, split between the workers), each run of one
 * order's lines looked for in the scoped orders' keys, sorted once, from
 * where the previous run was found (a merge where both are in key order)
 * rather than a B-tree descent per order, and no join: the cost grows with
 * the lines, where one index probe per order grew faster.  Not
 * for a customers filter (its few customers' lines are cheaper to probe).
 * false, nothing credited, when the scoped orders hold a key twice (the
 * per-customer aggregate then decides what a repeated header means) or
 * need more memory than a hash table may take.
 */
static bool
scan_lines_pass(TargetingPass *pass, const Datum *values, const bool *nulls,
				const Oid *types, int nparams)
{
	Oid			bytea_type = BYTEAOID;
	Datum		image;
	LineTotals	totals;
	uint32		members = pass->customers->members;
	bool		bar_exact;
	int64		bar;
	int			bar_scale;

	pass->keys = order_key_list_create(pass->context);

	if (!route_codes_scan(pass, values, nulls, types, nparams))
		query_stream(source_scoped_orders_query(pass->src, orders_scope(pass)), nparams, types, values,
					 nulls, scan_orders_fold, pass);
	/*
	 * customers added (routes from the orders) may have moved the entries:
	 * simplehash moves them when it grows and when an insertion displaces them
	 */
	if (pass->customers->members != members)
	{
		for (int64 i = 0; i < pass->norders; i++)
		{
			if ((i & 0xFFFF) == 0)
				CHECK_FOR_INTERRUPTS();
			pass->orders[i].customer = custhash_lookup(pass->customers, pass->orders[i].code);
		}
	}
	/*
	 * Each process of the scan keeps about LINE_SCAN_ORDER_BYTES per listed
	 * order (its key's code and offset, its running sum), which no executor
	 * node spills: past the memory a hash table may take (work_mem times
	 * hash_mem_multiplier) the per-customer aggregate, which spills, reads
	 * the lines instead.
	 */
	if ((double) order_key_list_length(pass->keys) * LINE_SCAN_ORDER_BYTES > (double) get_hash_memory_limit())
		return false;

	/* the keys sorted, as the aggregate reads them; a key twice shows there */
	image = PointerGetDatum(order_key_list_image(pass->keys));
	if (order_key_list_has_duplicates(pass->keys))
		return false;
	totals.pass = pass;
	totals.sums = NULL;
	query_stream_params(source_line_totals_query(pass->src), 1, &bytea_type, &image, NULL,
						scan_totals_fold, &totals);
	if (totals.sums == NULL)
		elog(ERROR, "the lines query returned no row");

	/*
	 * Each order folded as targeting_line_stats folds it (order_stats_add; no
	 * line or no amount: 0), in int64 sums where its total is exact in them
	 * (no allocation per order), else in Numerics.
	 */
	bar_exact = numeric_to_units(NumericGetDatum(pass->params->windows.low_ticket_below), &bar, &bar_scale);
	for (int64 i = 0; i < pass->norders; i++)
	{
		ScannedOrder *o = &pass->orders[i];
		const LineSum *sum = o->key >= 0 ? &totals.sums[o->key] : NULL;

		if ((i & 0xFFFF) == 0)
			CHECK_FOR_INTERRUPTS();
		if (sum == NULL || !sum->any)
			fast_order_add(pass, o->customer, o->order_date, 0, 0, bar_exact, bar);
		else if (sum->slow == NULL)
			fast_order_add(pass, o->customer, o->order_date, sum->fast, sum->dscale, bar_exact, bar);
		else
			order_stats_add(pass->context, &o->customer->orders, &pass->params->windows, o->order_date,
							line_sum_numeric(sum, pass->context));
	}
	fast_flush(pass);
	return true;
}

/*
 * The per-customer stats as a campaign's state table keeps them (the same
 * fields targeting_stats returns, adjusted from order changes by the delta
 * refresh), restricted to the route customers as orders_query() restricts
 * the orders.  Routes from the orders are not kept per customer: the
 * refresh never asks for them.
 */
static char *
state_stats_query(const TargetingPass *pass)
{
	if (pass->params->route_from_order)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("per-customer state cannot serve route_source => 'order'"),
				 errhint("Campaigns with routes from the orders are refreshed from the rollup.")));
	if (pass->params->customers)
	{
		/*
		 * The delta refresh's changed customers: their rows of the state
		 * through its key (CUSTOMER_KEYS), so that neither the state nor
		 * the customers are read in full.  The route test is not probed
		 * again here: the customers query, which runs first with the same
		 * keys, routes and closure test, found the route customers among
		 * them, and targeting_run passes those alone as the keys ($3);
		 * fold_customer_stats keeps the rows of those alone.
		 */
		return psprintf("SELECT s.customer_code, s.orders, s.total, s.last_order, s.spend_orders, s.spend,"
						" s.low_tickets, s.base, s.recent FROM %s s"
						" WHERE s.orders > 0 AND " CUSTOMER_KEYS("s"),
						pass->params->stats_relation);
	}
	return psprintf("SELECT s.customer_code, s.orders, s.total, s.last_order, s.spend_orders, s.spend,"
					" s.low_tickets, s.base, s.recent FROM %s s"
					" WHERE s.orders > 0 AND s.customer_code IN (SELECT c.customer_code::text FROM %s c"
					" WHERE c.delivery_route::text = ANY ($2)%s)",
					pass->params->stats_relation, pass->src->customers,
					pass->params->exclude_closed ? " AND " OPEN_CUSTOMER : "");
}

/*
 * The orders folded per customer by the targeting_stats aggregate, whose
 * windows and bar are the parameters $4 to $8.  Over the rollup the order
 * rows are a plain scan, so the planner can run the aggregate as partial
 * aggregates in parallel workers.  Over the source tables (from_lines) the
 * lines themselves go to targeting_line_stats, which sums each order's
 * lines: the planner joins each header to its lines through the lines' key
 * index and folds them per customer in the workers, and the leader only
 * combines one partial state per customer and worker.  (The order totals
 * as subqueries, as SQL objects older than that aggregate still read them,
 * ran in the leader alone: PostgreSQL 15 keeps correlated subqueries out of
 * parallel workers, and the time grew faster than the data.)
 */
static char *
customer_stats_query(const TargetingPass *pass, bool from_lines)
{
	if (pass->params->stats_relation)
		return state_stats_query(pass);
	if (from_lines)
		return psprintf("SELECT s.customer_code, (s.st).orders, (s.st).total, (s.st).last_order,"
						" (s.st).spend_orders, (s.st).spend, (s.st).low_tickets, (s.st).base, (s.st).recent"
						" FROM (SELECT o.customer_code,"
						" customer_analytics.targeting_line_stats(o.order_type, o.order_number, o.order_date,"
						" o.line_amount, $4, $5, $6, $7, $8) AS st"
						" FROM (%s) o(customer_code, order_type, order_number, order_date, line_amount)"
						" GROUP BY o.customer_code) s",
						pass->src->order_totals ? sharded_orders_query(pass, true)
						: source_order_lines_query(pass->src, orders_scope(pass)));
	return psprintf("SELECT s.customer_code, (s.st).orders, (s.st).total, (s.st).last_order,"
					" (s.st).spend_orders, (s.st).spend, (s.st).low_tickets, (s.st).base, (s.st).recent"
					" FROM (SELECT o.customer_code,"
					" customer_analytics.targeting_stats(o.order_date, o.order_total, $4, $5, $6, $7, $8) AS st"
					" FROM (%s) o(customer_code, order_date, order_total)"
					" GROUP BY o.customer_code) s",
					orders_query(pass));
}

/*
 * Read the lines into targeting_line_stats?  Over the source tables, and
 * over a sharded source whose schema has order_lines (each shard then folds
 * its customers' lines); not over the rollup (one row per order already), a
 * sharded source with order_totals alone (1.5's contract), nor while the
 * extension's SQL objects predate the aggregate (1.5 and older).
 */
static bool
from_lines(const TargetingPass *pass)
{
	Oid			argtypes[9] = {TEXTOID, TEXTOID, DATEOID, NUMERICOID, DATERANGEOID,
		DATERANGEOID, DATERANGEOID, DATERANGEOID, NUMERICOID};

	if (pass->params->stats_relation || pass->src->rollup ||
		(pass->src->order_totals && pass->src->order_lines == NULL))
		return false;
	return ca_function_installed("targeting_line_stats", 9, argtypes);
}

/*
 * Total the source tables' lines by one scan (scan_lines_pass)?  As
 * from_lines(), over one server's source tables only (a sharded source's
 * shards fold their own lines, see sharded_orders_query), and only while the
 * _order_line_totals aggregate is installed.
 */
static bool
scan_lines_installed(const TargetingPass *pass)
{
	Oid			argtypes[4] = {TEXTOID, TEXTOID, NUMERICOID, BYTEAOID};

	return pass->src->order_totals == NULL && from_lines(pass) &&
		ca_function_installed("_order_line_totals", 4, argtypes);
}

/* false while the extension's SQL objects predate the aggregate (1.1 and older) */
static bool
targeting_stats_installed(void)
{
	Oid			argtypes[7] = {DATEOID, NUMERICOID, DATERANGEOID, DATERANGEOID,
		DATERANGEOID, DATERANGEOID, NUMERICOID};

	return ca_function_installed("targeting_stats", 7, argtypes);
}

static void
decide(const TargetingParams *p, CustomerState *c)
{
	Numeric		zero = int64_to_numeric(0);

	/* as the notebook: a spend customer has at least one order in the window */
	c->spend_ok = c->orders.spend_orders > 0 &&
		numeric_compare(numeric_or_zero(c->orders.spend), p->min_spend) >= 0;
	c->low_ticket = c->orders.low_tickets >= p->min_low_tickets;

	/*
	 * A decline of more than decline_pct percent, decided exactly:
	 * (recent - base) / base * 100 < -pct  <=>  (recent - base) * 100 + pct * base < 0
	 * for base > 0.  The notebook's float division would call a drop of
	 * exactly 30 % a decline; exact arithmetic does not.
	 */
	c->declining = false;
	if (c->orders.base && numeric_compare(c->orders.base, zero) > 0)
	{
		Numeric		base = c->orders.base;
		Numeric		recent = numeric_or_zero(c->orders.recent);
		Numeric		drop = numeric_mul_opt_error(numeric_sub_opt_error(recent, base, NULL),
												 int64_to_numeric(100), NULL);
		Numeric		allowance = numeric_mul_opt_error(p->decline_pct, base, NULL);

		c->declining = numeric_compare(numeric_add_opt_error(drop, allowance, NULL), zero) < 0;
	}
}

static void
targeting_error_context(void *arg)
{
	errcontext("customer_analytics reading source schema \"%s\"", (const char *) arg);
}

static int
compare_codes(const void *a, const void *b)
{
	return strcmp((*(CustomerState *const *) a)->code,
				  (*(CustomerState *const *) b)->code);
}

/*
 * The codes of the customers found so far (by the customers query: the
 * route customers among the listed ones), as a text[] in the pass's
 * context.
 */
static Datum
found_customers(TargetingPass *pass)
{
	MemoryContext old = MemoryContextSwitchTo(pass->context);
	Datum	   *codes = palloc(sizeof(Datum) * Max(pass->customers->members, 1));
	custhash_iterator it;
	CustomerState *c;
	int			n = 0;
	ArrayType  *array;

	custhash_start_iterate(pass->customers, &it);
	while ((c = custhash_iterate(pass->customers, &it)) != NULL)
	{
		CHECK_FOR_INTERRUPTS();
		codes[n++] = CStringGetTextDatum(c->code);
	}
	array = construct_array(codes, n, TEXTOID, -1, false, TYPALIGN_INT);
	MemoryContextSwitchTo(old);
	return PointerGetDatum(array);
}

/* The queries' parameters, $1 to $8; $3 is NULL without a customers filter. */
#define NPARAMS 8

TargetingResult *
targeting_run(const TargetingParams *params)
{
	TargetingPass pass;
	TargetingResult *result = palloc0(sizeof(TargetingResult));
	Oid			types[NPARAMS] = {DATERANGEOID, TEXTARRAYOID, TEXTARRAYOID, DATERANGEOID,
		DATERANGEOID, DATERANGEOID, DATERANGEOID, NUMERICOID};
	Datum		values[NPARAMS];
	bool		nulls[NPARAMS] = {0};
	ErrorContextCallback errcallback;
	custhash_iterator it;
	CustomerState *c;
	int			n = 0;

	memset(&pass, 0, sizeof(pass));
	pass.params = params;
	pass.src = source_tables_open(params->source_schema);
	pass.context = AllocSetContextCreate(CurrentMemoryContext,
										 "customer_analytics targeting",
										 ALLOCSET_DEFAULT_SIZES);
	pass.customers = custhash_create(pass.context, 1024, NULL);

	values[0] = date_window_datum(params->data);
	values[1] = PointerGetDatum(params->routes);
	values[2] = PointerGetDatum(params->customers);
	nulls[2] = params->customers == NULL;
	values[3] = date_window_datum(params->windows.spend);
	values[4] = date_window_datum(params->windows.low_ticket);
	values[5] = date_window_datum(params->windows.base);
	values[6] = date_window_datum(params->windows.recent);
	values[7] = NumericGetDatum(params->windows.low_ticket_below);

	errcallback.callback = targeting_error_context;
	errcallback.arg = (void *) pass.src->schema;
	errcallback.previous = error_context_stack;
	error_context_stack = &errcallback;

	/*
	 * customer routes: know the route customers first, orders then add to
	 * them (with a stats hook, the hook finds them)
	 */
	if (!params->route_from_order && !params->stats_hook)
		query_stream(customers_query(&pass), NPARAMS, types, values, nulls, fold_customer, &pass);
	if (params->stats_hook)
	{
		/* the route customers and their stats come from the hook, below */
		if (params->route_from_order || params->customers == NULL || params->stats_relation == NULL)
			elog(ERROR, "a stats hook needs customers, a state relation and routes from the customers");
	}
	else if (params->stats_relation && params->customers && !params->route_from_order)
	{
		/*
		 * The delta refresh's changed customers: the state is probed for
		 * the route customers the customers query found among them, not
		 * for every changed customer (those off the routes, often most of
		 * them, would be read only to be dropped by fold_customer_stats).
		 */
		values[2] = found_customers(&pass);
		if (pass.customers->members > 0)
		{
			int			shard_settings = sharded_settings_push(pass.src);

			query_stream(customer_stats_query(&pass, false), NPARAMS, types, values, nulls,
						 fold_customer_stats, &pass);
			sharded_settings_pop(shard_settings);
		}
	}
	else if (params->customers == NULL && scan_lines_installed(&pass) &&
			 scan_lines_pass(&pass, values, nulls, types, NPARAMS))
	{
		/* the orders' stats are in the customers' states */
	}
	else if (params->stats_relation || targeting_stats_installed())
	{
		int			shard_settings = sharded_settings_push(pass.src);

		query_stream(customer_stats_query(&pass, from_lines(&pass)), NPARAMS, types, values, nulls,
					 fold_customer_stats, &pass);
		sharded_settings_pop(shard_settings);
	}
	else
		query_stream(orders_query(&pass), NPARAMS, types, values, nulls, fold_order, &pass);
	if (params->route_from_order)
		query_stream(customers_query(&pass), 0, NULL, NULL, NULL, fold_customer, &pass);

	error_context_stack = errcallback.previous;

	if (params->stats_hook)
	{
		/* the route customers, their attributes and stats from the hook */
		TargetingHookPass hook;

		hook.add = hook_add_customer;
		hook.pass = &pass;
		hook.customers_query = customers_query(&pass);
		hook.schema = pass.src->schema;
		hook.context = pass.context;
		error_context_stack = &errcallback;
		params->stats_hook(params->stats_hook_arg, &hook);
		error_context_stack = errcallback.previous;
	}

	result->customers = palloc(sizeof(CustomerState *) * Max(pass.customers->members, 1));
	custhash_start_iterate(pass.customers, &it);
	while ((c = custhash_iterate(pass.customers, &it)) != NULL)
	{
		CHECK_FOR_INTERRUPTS();
		decide(params, c);
		result->customers[n++] = c;
	}
	qsort(result->customers, n, sizeof(CustomerState *), compare_codes);
	result->ncustomers = n;
	result->uncoded_customers = pass.uncoded_customers;
	return result;
}

bool
customer_is_target(const CustomerState *c)
{
	return c->spend_ok && (c->low_ticket || c->declining);
}

/* The notebook's precedence: a low-ticket customer is reported as such. */
const char *
customer_target_reason(const CustomerState *c)
{
	if (c->low_ticket)
		return "低客單";
	if (c->declining)
		return "業績下滑";
	return "";
}

/* mean order total over the data window, rounded to whole units (notebook) */
Numeric
customer_avg_ticket(const CustomerState *c)
{
	Numeric		mean;

	if (c->orders.orders == 0)
		return int64_to_numeric(0);
	mean = numeric_div_opt_error(numeric_or_zero(c->orders.total),
								 int64_to_numeric(c->orders.orders), NULL);
	return DatumGetNumeric(DirectFunctionCall2(numeric_round, NumericGetDatum(mean),
											   Int32GetDatum(0)));
}

/* (recent - base) / base * 100, as SQL's numeric operators give it; NULL without base sales */
Numeric
customer_pct_change(const CustomerState *c)
{
	Numeric		zero = int64_to_numeric(0);
	Numeric		base = numeric_or_zero(c->orders.base);

	if (numeric_compare(base, zero) <= 0)
		return NULL;
	return numeric_mul_opt_error(numeric_div_opt_error(numeric_sub_opt_error(numeric_or_zero(c->orders.recent), base, NULL),
													   base, NULL),
								 int64_to_numeric(100), NULL);
}
