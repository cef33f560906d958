/*
 * campaign_delta_state.c
 *		A campaign's delta refresh: the changed customers' state adjusted by
 *		the signed order changes in one pass, for the decisions.
 *
 * A campaign keeps per customer (its state table) the counts and sums
 * target_customers() folds from the orders of the data window.  After
 * orders change, each changed customer's row is adjusted by its change rows
 * (-1: an order's row before, +1: after).  This pass does in memory what
 * the statements of the SQL delta did one customer index probe at a time in
 * each of several statements: it reads the change rows once, the changed
 * customers' state rows once (one keyed scan), applies the signed sums as
 * SQL's sum() and + give them (numeric arithmetic: exact, the same display
 * scale; a sum over no order NULL), looks the last order up again only
 * where a removed order may have been it, writes back the rows that
 * changed (through the table AM and the indexes, keyed_write.c; where the
 * table does not allow it, one statement: an UPDATE, an INSERT, a DELETE,
 * each over arrays), and hands the route customers among them, with their
 * new stats, to targeting_run(), whose decisions
 * _target_customers_from_state() makes too.  The state also keeps what the decisions read of each customer's
 * row of the customers (whether it is a route customer, its name, route,
 * address and CSM): the customers are read only for the customers whose
 * own row changed, those new to the state, and rows that do not know them
 * (settle_attrs).  The same read of the change rows sums them per customer
 * and month of the campaign's revenue window; after the decisions,
 * campaign_delta_months_apply() writes the changed customers' months from
 * these sums (the month statements of the SQL delta read the change rows
 * again and probed the months three times), and keeps the changed targets'
 * month rows as it leaves them for the transaction: the long form's and
 * the sheet's new rows are built from them (_campaign_delta_month_rows,
 * _campaign_delta_sheet_months) instead of reading month_state again.
 *
 * Every statement runs through SPI as the caller (the refresh runs as the
 * campaign's owner, whose table the state is), as of the statement's
 * snapshot (the delta's one snapshot, _at_one_snapshot): the reads before
 * any write, the writes with a command id of their own.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "common/int.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "storage/itemptr.h"
#include "storage/proc.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/fmgrprotos.h"
#include "funcapi.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

#include "keyed_write.h"
#include "numeric_acc.h"
#include "query_stream.h"
#include "targeting.h"

PG_FUNCTION_INFO_V1(campaign_last_order_unknown);
PG_FUNCTION_INFO_V1(campaign_delta_view_keys);
PG_FUNCTION_INFO_V1(campaign_delta_month_rows);
PG_FUNCTION_INFO_V1(campaign_delta_months_kept);
PG_FUNCTION_INFO_V1(campaign_delta_sheet_months);

/* One state row (the columns of a campaign's state table). */
typedef struct StateRow
{
	int64		orders;
	int64		spend_orders;
	int64		low_tickets;
	int64		base_orders;
	int64		recent_orders;
	Numeric		total;			/* NULL: SQL NULL */
	Numeric		spend;
	Numeric		base;
	Numeric		recent;
	bool		has_last;
	DateADT		last_order;
} StateRow;

/*
 * What the decisions read of a customer's row of the customers, kept in its
 * state row: whether it is one of the campaign's route customers (on its
 * routes, and open where closed customers are excluded) and its attributes.
 */
typedef enum RouteKnown
{
	ROUTE_UNKNOWN,				/* route_customer NULL: read the customers */
	ROUTE_YES,
	ROUTE_NO
} RouteKnown;

typedef struct RouteAttrs
{
	RouteKnown	route;
	char	   *trade_name;		/* NULL: SQL NULL */
	char	   *delivery_route;
	char	   *shipping_address;
	char	   *csm;
} RouteAttrs;

typedef enum DeltaAction
{
	DELTA_NONE,
	DELTA_UPDATE,
	DELTA_INSERT,
	DELTA_DELETE
} DeltaAction;

typedef struct DeltaCustomer
{
	const char *code;			/* hash key */
	uint32		hash;
	char		status;

	/* its change rows in the data window, summed with their signs */
	bool		changed;
	StateRow	d;				/* sums NULL over no row of their window */
	bool		has_added;		/* max(d) of the rows with sign > 0 */
	DateADT		added_last;
	int64		added_at_last;	/* ... and their signed count at that date */
	bool		has_removed;	/* ... with sign < 0 */
	DateADT		removed_last;
	int64		removed_at_last;

	bool		in_state;		/* its state row, as read */
	ItemPointerData ctid;		/* ... and where: the UPDATE and DELETE
								 * fetch it there, no second index probe */
	StateRow	old;

	DeltaAction action;
	StateRow	new;			/* the row written (UPDATE, INSERT) */
	bool		lookup_last;	/* new.last_order to be looked up in orders */

	/* its row of the customers (route_customer and attributes) */
	bool		own_row;		/* changed (a change row with no sign) */
	RouteAttrs	old_attrs;		/* as the state row holds them */
	bool		probe;			/* to be read from the customers */
	bool		probe_found;	/* ... and found there, on the routes */
	RouteAttrs	attrs;			/* as written and decided on */
} DeltaCustomer;

#define SH_PREFIX		deltahash
#define SH_ELEMENT_TYPE DeltaCustomer
#include "code_hash.h"

typedef struct DeltaPass
{
	const CampaignDeltaState *delta;
	deltahash_hash *customers;
	MemoryContext context;		/* owns the table and its contents */
	const char *schema;			/* the source schema (messages) */
} DeltaPass;

static Numeric numeric_copy_to(MemoryContext context, Numeric n);

/*
 * The months: a changed customer's change rows in the revenue window, summed
 * per month with their signs (as the SQL delta's grouping by customer and
 * date_trunc('month', order_date) did), kept from the read of the changes
 * until the verdicts (campaign_delta_months_apply).
 */
typedef struct MonthDelta
{
	DateADT		month;			/* its first day */
	Numeric		revenue;		/* sum(sign * total) */
	int64		orders;			/* sum(sign) */
} MonthDelta;

typedef struct MonthCustomer
{
	const char *code;			/* hash key */
	uint32		hash;
	char		status;

	int			nmonths;
	int			maxmonths;
	MonthDelta *months;
	bool		has_rows;		/* a target with rows in month_state, as read */
	bool		dropped;		/* ... or no longer one: its rows deleted */
	bool		listed;			/* in the long form's keys */
	int			group;			/* 1 + its index among the kept rows'
								 * customers (0: none yet) */
	const char *kept_code;		/* its code in TopTransactionContext, then */
} MonthCustomer;

#define SH_PREFIX		monthhash
#define SH_ELEMENT_TYPE MonthCustomer
#include "code_hash.h"

typedef struct DeltaMonths
{
	MemoryContext context;		/* owns the table and its contents */
	monthhash_hash *customers;
} DeltaMonths;

static DeltaCustomer *
delta_customer(DeltaPass *pass, const char *code)
{
	DeltaCustomer *c = deltahash_lookup(pass->customers, code);
	bool		found;

	if (c)
		return c;
	c = deltahash_insert(pass->customers, MemoryContextStrdup(pass->context, code), &found);
	/* simplehash sets nothing but the key and status */
	memset(((char *) c) + offsetof(DeltaCustomer, changed), 0,
		   sizeof(DeltaCustomer) - offsetof(DeltaCustomer, changed));
	return c;
}

static MonthCustomer *
month_customer(DeltaMonths *months, const char *code)
{
	MonthCustomer *m = monthhash_lookup(months->customers, code);
	bool		found;

	if (m)
		return m;
	m = monthhash_insert(months->customers, MemoryContextStrdup(months->context, code), &found);
	/* simplehash sets nothing but the key and status */
	memset(((char *) m) + offsetof(MonthCustomer, nmonths), 0,
		   sizeof(MonthCustomer) - offsetof(MonthCustomer, nmonths));
	return m;
}

/* date_trunc('month', d)::date */
static DateADT
month_of(DateADT d)
{
	int			year,
				month,
				day;

	if (DATE_NOT_FINITE(d))
		return d;
	j2date(d + POSTGRES_EPOCH_JDATE, &year, &month, &day);
	return date2j(year, month, 1) - POSTGRES_EPOCH_JDATE;
}

/* One change row in the revenue window: its month's signed sums. */
static void
fold_month_change(DeltaMonths *months, const char *code, DateADT d, Numeric samount, int32 sign)
{
	MonthCustomer *m = month_customer(months, code);
	DateADT		month = month_of(d);
	MonthDelta *md = NULL;

	for (int i = 0; i < m->nmonths; i++)
		if (m->months[i].month == month)
			md = &m->months[i];
	if (md == NULL)
	{
		if (m->nmonths == m->maxmonths)
		{
			m->maxmonths = Max(4, m->maxmonths * 2);
			m->months = m->months == NULL
				? MemoryContextAlloc(months->context, sizeof(MonthDelta) * m->maxmonths)
				: repalloc(m->months, sizeof(MonthDelta) * m->maxmonths);
		}
		md = &m->months[m->nmonths++];
		md->month = month;
		md->revenue = NULL;
		md->orders = 0;
	}
	md->orders += sign;
	numeric_accumulate(months->context, &md->revenue, samount);
}

/*
 * Row of the changes query: customer_code, order_date, amount (the order's
 * total, 0 when NULL), sign, in the data window, in the revenue window; the
 * order date in either window, the sign not NULL.  The sums of
 * _campaign_state_aggregates(true) over the flags of
 * _campaign_state_flags(c, true); the months' sums (fold_month_change).
 */
static void
fold_change(TupleTableSlot *slot, void *arg)
{
	DeltaPass  *pass = (DeltaPass *) arg;
	const OrderWindows *w = &pass->delta->params->windows;
	DeltaCustomer *c;
	const char *code;
	DateADT		d;
	Numeric		amount;
	Numeric		samount;
	int32		sign;

	if (slot->tts_isnull[0])
		return;					/* the query excludes these */
	code = TextDatumGetCString(slot->tts_values[0]);
	if (slot->tts_isnull[3])
	{
		/* no sign: the customer's own row changed (added, updated, deleted) */
		delta_customer(pass, code)->own_row = true;
		return;
	}
	if (slot->tts_isnull[1])
		return;					/* the query excludes these */
	d = DatumGetDateADT(slot->tts_values[1]);
	amount = DatumGetNumeric(slot->tts_values[2]);
	sign = DatumGetInt32(slot->tts_values[3]);
	/* sign * amount, as SQL's int * numeric gives it */
	if (sign == 1)
		samount = amount;
	else if (sign == -1)
		samount = DatumGetNumeric(DirectFunctionCall1(numeric_uminus, NumericGetDatum(amount)));
	else
		samount = numeric_mul_opt_error(int64_to_numeric(sign), amount, NULL);

	if (!slot->tts_isnull[5] && DatumGetBool(slot->tts_values[5]))
		fold_month_change(pass->delta->months, code, d, samount, sign);
	if (slot->tts_isnull[4] || !DatumGetBool(slot->tts_values[4]))
		return;					/* in the revenue window only */
	c = delta_customer(pass, code);
	c->changed = true;
	c->d.orders += sign;
	numeric_accumulate(pass->context, &c->d.total, samount);
	if (date_in_window(d, w->spend))
	{
		c->d.spend_orders += sign;
		numeric_accumulate(pass->context, &c->d.spend, samount);
	}
	if (date_in_window(d, w->low_ticket) && numeric_compare(amount, w->low_ticket_below) < 0)
		c->d.low_tickets += sign;
	if (date_in_window(d, w->base))
	{
		c->d.base_orders += sign;
		numeric_accumulate(pass->context, &c->d.base, samount);
	}
	if (date_in_window(d, w->recent))
	{
		c->d.recent_orders += sign;
		numeric_accumulate(pass->context, &c->d.recent, samount);
	}
	if (sign > 0)
	{
		if (!c->has_added || d > c->added_last)
		{
			c->has_added = true;
			c->added_last = d;
			c->added_at_last = 0;
		}
		if (d == c->added_last)
			c->added_at_last += sign;
	}
	if (sign < 0)
	{
		if (!c->has_removed || d > c->removed_last)
		{
			c->has_removed = true;
			c->removed_last = d;
			c->removed_at_last = 0;
		}
		if (d == c->removed_last)
			c->removed_at_last -= sign;
	}
}

/* A text column of the row, copied into context (NULL for SQL NULL) */
static char *
text_copy(TupleTableSlot *slot, int attno, MemoryContext context)
{
	if (slot->tts_isnull[attno])
		return NULL;
	return MemoryContextStrdup(context, TextDatumGetCString(slot->tts_values[attno]));
}

/*
 * Row of the state query: the state table's columns, customer_code first,
 * the row's ctid, then route_customer and the attributes.
 */
static void
fold_state_row(TupleTableSlot *slot, void *arg)
{
	DeltaPass  *pass = (DeltaPass *) arg;
	DeltaCustomer *c;

	if (slot->tts_isnull[0])
		return;
	c = deltahash_lookup(pass->customers, TextDatumGetCString(slot->tts_values[0]));
	if (c == NULL)
		return;
	c->in_state = true;
	c->old.orders = DatumGetInt64(slot->tts_values[1]);
	c->old.total = slot_numeric_copy(slot, 2, pass->context);
	c->old.has_last = !slot->tts_isnull[3];
	c->old.last_order = c->old.has_last ? DatumGetDateADT(slot->tts_values[3]) : 0;
	c->old.spend_orders = DatumGetInt64(slot->tts_values[4]);
	c->old.spend = slot_numeric_copy(slot, 5, pass->context);
	c->old.low_tickets = DatumGetInt64(slot->tts_values[6]);
	c->old.base_orders = DatumGetInt64(slot->tts_values[7]);
	c->old.base = slot_numeric_copy(slot, 8, pass->context);
	c->old.recent_orders = DatumGetInt64(slot->tts_values[9]);
	c->old.recent = slot_numeric_copy(slot, 10, pass->context);
	c->ctid = *(ItemPointer) DatumGetPointer(slot->tts_values[11]);
	c->old_attrs.route = slot->tts_isnull[12] ? ROUTE_UNKNOWN :
		DatumGetBool(slot->tts_values[12]) ? ROUTE_YES : ROUTE_NO;
	c->old_attrs.trade_name = text_copy(slot, 13, pass->context);
	c->old_attrs.delivery_route = text_copy(slot, 14, pass->context);
	c->old_attrs.shipping_address = text_copy(slot, 15, pass->context);
	c->old_attrs.csm = text_copy(slot, 16, pass->context);
}

/* Row of the last-order query: customer_code, its latest order date or NULL. */
static void
fold_last_order(TupleTableSlot *slot, void *arg)
{
	DeltaPass  *pass = (DeltaPass *) arg;
	DeltaCustomer *c;

	if (slot->tts_isnull[0])
		return;
	c = deltahash_lookup(pass->customers, TextDatumGetCString(slot->tts_values[0]));
	if (c == NULL || !c->lookup_last)
		return;
	c->new.has_last = !slot->tts_isnull[1];
	c->new.last_order = c->new.has_last ? DatumGetDateADT(slot->tts_values[1]) : 0;
}

/* a + b as SQL's numeric + (NULL if either is) */
static Numeric
add_strict(Numeric a, Numeric b)
{
	if (a == NULL || b == NULL)
		return NULL;
	return numeric_add_opt_error(a, b, NULL);
}

/* CASE WHEN count > 0 THEN COALESCE(a, 0) + COALESCE(b, 0) END */
static Numeric
sum_if_counted(int64 count, Numeric a, Numeric b)
{
	if (count <= 0)
		return NULL;
	return numeric_add_opt_error(numeric_or_zero(a), numeric_or_zero(b), NULL);
}

/*
 * Must a changed customer's last order be looked up again?  Only where its
 * latest removed order (R, removed_last) is no earlier than every order the
 * delta knows of: GREATEST(the state's last order, the latest added), NULLs
 * left out; none known, nothing to look up.  An order is still there on R,
 * and R is the answer, when the orders on R known to be there outnumber
 * those removed on R: the ones added on R, and one more when the state's
 * last order was on R.  (A changed order is removed and added again with
 * its date; an order added and then removed within the changes counts for
 * nothing.)  The one statement of the rule: the C pass applies it to each
 * changed customer, and a sharded campaign's landing of its shards' changes
 * (_shard_land_changes, through _campaign_last_order_unknown) to choose the
 * customers whose latest order it fetches from their shards.
 */
static bool
last_order_unknown(bool has_state_last, DateADT state_last,
				   bool has_added, DateADT added_last, int64 added_at_last,
				   bool has_removed, DateADT removed_last, int64 removed_at_last)
{
	DateADT		greatest;
	int64		present;

	if (!has_removed || (!has_state_last && !has_added))
		return false;
	greatest = !has_state_last ? added_last :
		!has_added ? state_last : Max(state_last, added_last);
	if (removed_last < greatest)
		return false;
	if (pg_sub_s64_overflow(0, removed_at_last, &present) ||
		(has_added && added_last == removed_last &&
		 pg_add_s64_overflow(present, added_at_last, &present)) ||
		(has_state_last && state_last == removed_last &&
		 pg_add_s64_overflow(present, 1, &present)))
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("order counts out of range: %lld added, %lld removed",
						(long long) added_at_last, (long long) removed_at_last),
				 errhint("Pass the numbers of orders added and removed on the latest dates.")));
	return present <= 0;
}

/* last_order_unknown() for a changed customer, old its state row (NULL: none) */
static bool
customer_last_order_unknown(const DeltaCustomer *c, const StateRow *old)
{
	return last_order_unknown(old != NULL && old->has_last, old != NULL ? old->last_order : 0,
							  c->has_added, c->added_last, c->added_at_last,
							  c->has_removed, c->removed_last, c->removed_at_last);
}

/*
 * _campaign_last_order_unknown(state_last, added_last, added_at_last,
 * removed_last, removed_at_last): last_order_unknown() from SQL, a NULL
 * date meaning none (no last order in the state, nothing added or removed),
 * a NULL count none.
 */
Datum
campaign_last_order_unknown(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(last_order_unknown(!PG_ARGISNULL(0), PG_ARGISNULL(0) ? 0 : PG_GETARG_DATEADT(0),
									  !PG_ARGISNULL(1), PG_ARGISNULL(1) ? 0 : PG_GETARG_DATEADT(1),
									  PG_ARGISNULL(2) ? 0 : PG_GETARG_INT64(2),
									  !PG_ARGISNULL(3), PG_ARGISNULL(3) ? 0 : PG_GETARG_DATEADT(3),
									  PG_ARGISNULL(4) ? 0 : PG_GETARG_INT64(4)));
}

/*
 * The new state row of a changed customer (c->changed), as the SQL delta's
 * UPDATE (a row in the state) or INSERT (none) computed it; its last order
 * flagged for a look-up where a removed order may have been it.
 */
static void
apply_change(DeltaCustomer *c)
{
	StateRow   *o = &c->old;
	StateRow   *d = &c->d;
	StateRow   *n = &c->new;

	if (c->in_state)
	{
		bool		has_greatest;
		DateADT		greatest;

		n->orders = o->orders + d->orders;
		if (n->orders <= 0)
		{
			/* left with no order in the data window */
			c->action = DELTA_DELETE;
			return;
		}
		c->action = DELTA_UPDATE;
		n->total = add_strict(o->total, d->total);
		n->spend_orders = o->spend_orders + d->spend_orders;
		n->spend = sum_if_counted(n->spend_orders, o->spend, d->spend);
		n->low_tickets = o->low_tickets + d->low_tickets;
		n->base_orders = o->base_orders + d->base_orders;
		n->base = sum_if_counted(n->base_orders, o->base, d->base);
		n->recent_orders = o->recent_orders + d->recent_orders;
		n->recent = sum_if_counted(n->recent_orders, o->recent, d->recent);
		/* GREATEST(s.last_order, d.added_last), NULLs left out */
		has_greatest = o->has_last || c->has_added;
		greatest = !o->has_last ? c->added_last :
			!c->has_added ? o->last_order : Max(o->last_order, c->added_last);
		n->has_last = has_greatest;
		n->last_order = greatest;
		c->lookup_last = customer_last_order_unknown(c, o);
	}
	else
	{
		if (d->orders <= 0)
			return;				/* added and removed since: not added */
		c->action = DELTA_INSERT;
		n->orders = d->orders;
		n->total = d->total;
		n->spend_orders = d->spend_orders;
		n->spend = d->spend_orders > 0 ? d->spend : NULL;
		n->low_tickets = d->low_tickets;
		n->base_orders = d->base_orders;
		n->base = d->base_orders > 0 ? d->base : NULL;
		n->recent_orders = d->recent_orders;
		n->recent = d->recent_orders > 0 ? d->recent : NULL;
		n->has_last = c->has_added;
		n->last_order = c->added_last;
		c->lookup_last = customer_last_order_unknown(c, NULL);
	}
}

/* A one-dimensional array of n elements of type typid, NULLs where nulls[i]. */
static Datum
make_array(Datum *elems, bool *nulls, int n, Oid typid)
{
	int			dims[1] = {n};
	int			lbs[1] = {1};
	int16		typlen;
	bool		typbyval;
	char		typalign;

	get_typlenbyvalalign(typid, &typlen, &typbyval, &typalign);
	return PointerGetDatum(construct_md_array(elems, nulls, 1, dims, lbs, typid, typlen, typbyval, typalign));
}

/*
 * The columns written, in the order of the UPDATE's and INSERT's arrays:
 * the key (the customer codes inserted, or the rows' ctids updated), then
 * the others; the state table's columns (keyed_writer_open).
 */
#define NSTATE_COLUMNS 16
static const char *const state_column_names[NSTATE_COLUMNS] = {
	"customer_code", "orders", "total", "last_order", "spend_orders", "spend", "low_tickets", "base_orders", "base",
	"recent_orders", "recent", "route_customer", "trade_name", "delivery_route", "shipping_address", "csm"
};
static const Oid state_column_types[NSTATE_COLUMNS] = {
	TEXTOID, INT8OID, NUMERICOID, DATEOID, INT8OID, NUMERICOID, INT8OID, INT8OID, NUMERICOID, INT8OID, NUMERICOID,
	BOOLOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID
};
static const char *const state_column_typnames[NSTATE_COLUMNS] = {
	"text", "int8", "numeric", "date", "int8", "numeric", "int8", "int8", "numeric", "int8", "numeric",
	"bool", "text", "text", "text", "text"
};

/*
 * ROWS FROM (unnest($first::keytype[]), unnest($first+1::int8[]), ...) AS
 * u(key, <the columns>)
 */
static void
append_state_unnest(StringInfo sql, int first, const char *keytype, const char *key)
{
	appendStringInfoString(sql, "ROWS FROM (");
	for (int j = 0; j < NSTATE_COLUMNS; j++)
		appendStringInfo(sql, "%spg_catalog.unnest($%d::pg_catalog.%s[])", j > 0 ? ", " : "", first + j,
						 j == 0 ? keytype : state_column_typnames[j]);
	appendStringInfo(sql, ") AS u(%s", key);
	for (int j = 1; j < NSTATE_COLUMNS; j++)
		appendStringInfo(sql, ", %s", state_column_names[j]);
	appendStringInfoChar(sql, ')');
}

static Datum
text_or_null(const char *s, bool *isnull)
{
	*isnull = s == NULL;
	return s ? CStringGetTextDatum(s) : (Datum) 0;
}

/* A changed customer's new state row as its columns' values (the key: its code) */
static void
state_row_values(const DeltaCustomer *c, Datum *values, bool *nulls)
{
	const StateRow *r = &c->new;
	const RouteAttrs *a = &c->attrs;
	Numeric		sums[4] = {r->total, r->spend, r->base, r->recent};
	int			sumcols[4] = {2, 5, 8, 10};

	memset(nulls, 0, sizeof(bool) * NSTATE_COLUMNS);
	values[0] = CStringGetTextDatum(c->code);
	values[1] = Int64GetDatum(r->orders);
	values[3] = DateADTGetDatum(r->last_order);
	nulls[3] = !r->has_last;
	values[4] = Int64GetDatum(r->spend_orders);
	values[6] = Int64GetDatum(r->low_tickets);
	values[7] = Int64GetDatum(r->base_orders);
	values[9] = Int64GetDatum(r->recent_orders);
	for (int k = 0; k < 4; k++)
	{
		values[sumcols[k]] = sums[k] ? NumericGetDatum(sums[k]) : (Datum) 0;
		nulls[sumcols[k]] = sums[k] == NULL;
	}
	values[11] = BoolGetDatum(a->route == ROUTE_YES);
	nulls[11] = a->route == ROUTE_UNKNOWN;
	values[12] = text_or_null(a->trade_name, &nulls[12]);
	values[13] = text_or_null(a->delivery_route, &nulls[13]);
	values[14] = text_or_null(a->shipping_address, &nulls[14]);
	values[15] = text_or_null(a->csm, &nulls[15]);
}

/*
 * The rows of one action as sixteen arrays (values[0] to values[15]);
 * keytype is the key's: text (the codes) or tid (the rows' ctids).
 */
static void
state_arrays(DeltaCustomer **rows, int n, Oid keytype, Datum *values, Oid *types)
{
	Datum	   *cols[NSTATE_COLUMNS];
	bool	   *colnulls[NSTATE_COLUMNS];

	for (int j = 0; j < NSTATE_COLUMNS; j++)
	{
		cols[j] = palloc(sizeof(Datum) * Max(n, 1));
		colnulls[j] = palloc0(sizeof(bool) * Max(n, 1));
	}
	for (int i = 0; i < n; i++)
	{
		Datum		row[NSTATE_COLUMNS];
		bool		rownulls[NSTATE_COLUMNS];

		CHECK_FOR_INTERRUPTS();
		state_row_values(rows[i], row, rownulls);
		if (keytype == TIDOID)
			row[0] = PointerGetDatum(&rows[i]->ctid);
		for (int j = 0; j < NSTATE_COLUMNS; j++)
		{
			cols[j][i] = row[j];
			colnulls[j][i] = rownulls[j];
		}
	}
	for (int j = 0; j < NSTATE_COLUMNS; j++)
	{
		Oid			elemtype = j == 0 ? keytype : state_column_types[j];

		values[j] = make_array(cols[j], colnulls[j], n, elemtype);
		types[j] = get_array_type(elemtype);
	}
}

/*
 * The settings of the pass's keyed writes, in an SPI connection of their
 * own: plans that fetch each row by its ctid in nested loops (hash and
 * merge joins off: their scan of a whole table is what the delta avoids).
 * Returns the GUC nest level to give end_keyed_writes().
 */
static int
begin_keyed_writes(void)
{
	int			nestlevel = NewGUCNestLevel();

	(void) set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	(void) set_config_option("enable_hashjoin", "off", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	(void) set_config_option("enable_mergejoin", "off", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	return nestlevel;
}

/* The end of begin_keyed_writes(): the connection closed, the settings restored. */
static void
end_keyed_writes(int nestlevel)
{
	SPI_finish();
	AtEOXact_GUC(true, nestlevel);
}

/*
 * Run one write statement with its parameters as of the statement's
 * snapshot (a command id of its own: SPI increments it), its plan generic
 * (the arrays' sizes unknown); returns SPI's result code.  The rows were
 * read as of the same snapshot, under the refresh's lock: each ctid is the
 * row's (a row changed in between would not match, and the caller's count
 * of the rows written would say so).
 */
static int
execute_keyed(const char *sql, int nparams, const Oid *types, Datum *values)
{
	SPIPlanPtr	plan;
	int			ret;

	plan = SPI_prepare_cursor(sql, nparams, unconstify(Oid *, types), CURSOR_OPT_GENERIC_PLAN);
	if (plan == NULL)
		elog(ERROR, "SPI_prepare_cursor failed for \"%s\": %s", sql, SPI_result_code_string(SPI_result));
	ret = SPI_execute_snapshot(plan, values, NULL, GetActiveSnapshot(), InvalidSnapshot, false, false, 0);
	if (ret < 0)
		elog(ERROR, "SPI_execute_snapshot failed for \"%s\": %s", sql, SPI_result_code_string(ret));
	SPI_freeplan(plan);
	return ret;
}

/* One of the months' writes (execute_keyed), expected rows written (-1: any). */
static void
run_write(const char *sql, int nparams, const Oid *types, Datum *values, int expected)
{
	(void) execute_keyed(sql, nparams, types, values);
	if (expected >= 0 && SPI_processed != (uint64) expected)
		ereport(ERROR,
				(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
				 errmsg("the campaign's state changed while its refresh wrote it: %d rows expected, " UINT64_FORMAT " written",
						expected, SPI_processed),
				 errdetail("Statement: %s", sql),
				 errhint("Write the state tables through refresh_campaign() only, and refresh again.")));
}

/*
 * The state's writes through the table AM (keyed_write.c), when its table
 * allows it (else false, nothing written): the rows left with no order
 * deleted and the changed rows updated at the ctids they were read at (an
 * update changes no indexed column, the key being customer_code alone, so
 * that it is HOT where the state's fillfactor left room on the page: no new
 * index entry), the new customers inserted; the same rows as the statement
 * of write_state() writes, with the privileges it needs.
 */
static bool
write_state_direct(Oid relid, DeltaCustomer **updates, int nupdates, DeltaCustomer **inserts, int ninserts,
				   DeltaCustomer **deletes, int ndeletes)
{
	KeyedWriter *w;
	MemoryContext rowcontext;
	MemoryContext old;
	Datum		values[NSTATE_COLUMNS];
	bool		nulls[NSTATE_COLUMNS];

	w = keyed_writer_open(relid, NSTATE_COLUMNS, state_column_names, state_column_types,
						  ACL_SELECT | ACL_INSERT | ACL_UPDATE | ACL_DELETE);
	if (w == NULL)
		return false;
	rowcontext = AllocSetContextCreate(CurrentMemoryContext, "customer_analytics state row",
									   ALLOCSET_SMALL_SIZES);
	for (int i = 0; i < ndeletes; i++)
		keyed_writer_delete(w, &deletes[i]->ctid);
	for (int i = 0; i < nupdates + ninserts; i++)
	{
		DeltaCustomer *c = i < nupdates ? updates[i] : inserts[i - nupdates];

		old = MemoryContextSwitchTo(rowcontext);
		state_row_values(c, values, nulls);
		if (i < nupdates)
			keyed_writer_update(w, &c->ctid, values, nulls);
		else
			keyed_writer_insert(w, values, nulls);
		MemoryContextSwitchTo(old);
		MemoryContextReset(rowcontext);
	}
	MemoryContextDelete(rowcontext);
	keyed_writer_close(w);
	return true;
}

/*
 * The state's writes: through the table AM (write_state_direct) where the
 * table allows it; else in one statement with its parameters, as of the
 * statement's snapshot (a command id of its own: SPI increments it): the
 * rows left with no order deleted, the changed rows updated (both by the
 * ctid they were read at, a parameterized Tid Scan: no second probe of the
 * key), the new customers inserted.  Plan: generic (the arrays' sizes
 * unknown), nested loops fetching each row by its ctid (hash and merge
 * joins off: their scan of the whole state is what the delta avoids).  The
 * rows were read as of the same snapshot, under the refresh's lock: each
 * ctid is the row's (a row changed in between would not match, and the
 * counts would say so).  An update changes no indexed column (the key is
 * customer_code alone), so that the state's fillfactor leaves room for
 * HOT updates, with no new index entry.
 */
static void
write_state(const char *state, Oid relid, DeltaCustomer **updates, int nupdates, DeltaCustomer **inserts, int ninserts,
			DeltaCustomer **deletes, int ndeletes)
{
	Datum		values[1 + 2 * NSTATE_COLUMNS];
	Oid			types[1 + 2 * NSTATE_COLUMNS];
	Datum	   *ctids;
	StringInfoData sql;
	int			ret;
	int			nestlevel;
	int64		written[3];
	int64		expected[3] = {ndeletes, nupdates, ninserts};

	if (nupdates + ninserts + ndeletes == 0)
		return;
	nestlevel = begin_keyed_writes();
	if (write_state_direct(relid, updates, nupdates, inserts, ninserts, deletes, ndeletes))
	{
		end_keyed_writes(nestlevel);
		return;
	}

	ctids = palloc(sizeof(Datum) * Max(ndeletes, 1));
	for (int i = 0; i < ndeletes; i++)
		ctids[i] = PointerGetDatum(&deletes[i]->ctid);
	values[0] = make_array(ctids, NULL, ndeletes, TIDOID);
	types[0] = TIDARRAYOID;
	state_arrays(updates, nupdates, TIDOID, values + 1, types + 1);
	state_arrays(inserts, ninserts, TEXTOID, values + 1 + NSTATE_COLUMNS, types + 1 + NSTATE_COLUMNS);

	initStringInfo(&sql);
	appendStringInfo(&sql, "WITH gone AS (DELETE FROM %s s USING pg_catalog.unnest($1) u(ctid_)"
					 " WHERE s.ctid = u.ctid_ RETURNING 1),"
					 " changed AS (UPDATE %s s SET ", state, state);
	for (int j = 1; j < NSTATE_COLUMNS; j++)
		appendStringInfo(&sql, "%s%s = u.%s", j > 1 ? ", " : "", state_column_names[j], state_column_names[j]);
	appendStringInfoString(&sql, " FROM ");
	append_state_unnest(&sql, 2, "tid", "ctid_");
	appendStringInfo(&sql, " WHERE s.ctid = u.ctid_ RETURNING 1),"
					 " added AS (INSERT INTO %s (customer_code", state);
	for (int j = 1; j < NSTATE_COLUMNS; j++)
		appendStringInfo(&sql, ", %s", state_column_names[j]);
	appendStringInfoString(&sql, ") SELECT * FROM ");
	append_state_unnest(&sql, 2 + NSTATE_COLUMNS, "text", "customer_code");
	appendStringInfoString(&sql, " RETURNING 1)"
						   " SELECT (SELECT pg_catalog.count(*) FROM gone), (SELECT pg_catalog.count(*) FROM changed),"
						   " (SELECT pg_catalog.count(*) FROM added)");

	ret = execute_keyed(sql.data, 1 + 2 * NSTATE_COLUMNS, types, values);
	if (ret != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "SPI_execute_snapshot failed for \"%s\": %s", sql.data, SPI_result_code_string(ret));
	for (int k = 0; k < 3; k++)
	{
		bool		isnull;

		written[k] = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, k + 1, &isnull));
		if (isnull || written[k] != expected[k])
			ereport(ERROR,
					(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
					 errmsg("the campaign's state changed while its refresh wrote it: "
							INT64_FORMAT " rows deleted, " INT64_FORMAT " updated, " INT64_FORMAT
							" inserted; " INT64_FORMAT ", " INT64_FORMAT ", " INT64_FORMAT " expected",
							written[0], written[1], written[2], expected[0], expected[1], expected[2]),
					 errdetail("Statement: %s", sql.data),
					 errhint("Write the state tables through refresh_campaign() only, and refresh again.")));
	}
	end_keyed_writes(nestlevel);
}

/*
 * Row of the customers query over the customers to read there
 * (c->probe): customer_code, trade_name, delivery_route,
 * shipping_address, csm of a route customer.
 */
static void
fold_route_customer(TupleTableSlot *slot, void *arg)
{
	DeltaPass  *pass = (DeltaPass *) arg;
	DeltaCustomer *c;

	if (slot->tts_isnull[0])
		return;
	c = deltahash_lookup(pass->customers, TextDatumGetCString(slot->tts_values[0]));
	if (c == NULL || !c->probe)
		return;
	if (c->probe_found)
		targeting_duplicate_customer(pass->schema, c->code);
	c->probe_found = true;
	c->attrs.route = ROUTE_YES;
	c->attrs.trade_name = text_copy(slot, 1, pass->context);
	c->attrs.delivery_route = text_copy(slot, 2, pass->context);
	c->attrs.shipping_address = text_copy(slot, 3, pass->context);
	c->attrs.csm = text_copy(slot, 4, pass->context);
}

static bool
same_text(const char *a, const char *b)
{
	return (a == NULL) ? b == NULL : (b != NULL && strcmp(a, b) == 0);
}

static bool
same_attrs(const RouteAttrs *a, const RouteAttrs *b)
{
	return a->route == b->route && same_text(a->trade_name, b->trade_name) &&
		same_text(a->delivery_route, b->delivery_route) &&
		same_text(a->shipping_address, b->shipping_address) && same_text(a->csm, b->csm);
}

/* Will the customer have a state row after this refresh? */
static bool
keeps_row(const DeltaCustomer *c)
{
	return c->action == DELTA_UPDATE || c->action == DELTA_INSERT ||
		(c->action == DELTA_NONE && c->in_state);
}

/*
 * The route customer and attributes of each changed customer with a state
 * row after this refresh: those its state row holds, unless its own row of
 * the customers changed (a change row with no sign: the rollup's triggers
 * write one for every customer added, updated or deleted, and a TRUNCATE
 * or a rewrite of the customers makes the refresh a full one), it is new
 * to the state, or its row does not know them (a state kept by 1.5): those
 * are read from the customers, with the route and closure tests of
 * target_customers() (hook->customers_query, one keyed scan).  A customer
 * whose own row changed is read even with no state row, for the duplicate
 * test of target_customers().  A row whose attributes changed is written
 * (an UPDATE without order changes, if need be).  Returns how many were
 * read.
 */
static int
settle_attrs(DeltaPass *pass, const TargetingHookPass *hook, DeltaCustomer **updates, int *nupdates)
{
	deltahash_iterator it;
	DeltaCustomer *c;
	Datum	   *codes;
	int			nprobes = 0;

	codes = palloc(sizeof(Datum) * Max(pass->customers->members, 1));
	deltahash_start_iterate(pass->customers, &it);
	while ((c = deltahash_iterate(pass->customers, &it)) != NULL)
	{
		bool		keeps = keeps_row(c);

		CHECK_FOR_INTERRUPTS();
		c->attrs = c->old_attrs;
		c->probe = c->own_row || (keeps && (!c->in_state || c->old_attrs.route == ROUTE_UNKNOWN));
		if (c->probe)
			codes[nprobes++] = CStringGetTextDatum(c->code);
	}
	if (nprobes > 0)
	{
		const TargetingParams *params = pass->delta->params;
		Oid			types[3] = {DATERANGEOID, TEXTARRAYOID, TEXTARRAYOID};
		Datum		values[3];

		values[0] = date_window_datum(params->data);
		values[1] = PointerGetDatum(params->routes);
		values[2] = make_array(codes, NULL, nprobes, TEXTOID);
		pass->schema = hook->schema;
		query_stream(hook->customers_query, 3, types, values, NULL, fold_route_customer, pass);
	}

	deltahash_start_iterate(pass->customers, &it);
	while ((c = deltahash_iterate(pass->customers, &it)) != NULL)
	{
		CHECK_FOR_INTERRUPTS();
		if (!c->probe)
			continue;
		if (!c->probe_found)
		{
			memset(&c->attrs, 0, sizeof(c->attrs));
			c->attrs.route = ROUTE_NO;
		}
		/* a kept row with no order change whose attributes changed */
		if (c->action == DELTA_NONE && c->in_state && !same_attrs(&c->attrs, &c->old_attrs))
		{
			c->action = DELTA_UPDATE;
			c->new = c->old;
			updates[(*nupdates)++] = c;
		}
	}
	return nprobes;
}

/*
 * The route customers among the changed ones to targeting_run's pass, with
 * their attributes and their new stats (old ones when no order of theirs
 * changed; none when they have no order left in the data window: no row).
 */
static void
emit_route_customers(DeltaPass *pass, const TargetingHookPass *hook)
{
	deltahash_iterator it;
	DeltaCustomer *c;

	deltahash_start_iterate(pass->customers, &it);
	while ((c = deltahash_iterate(pass->customers, &it)) != NULL)
	{
		CustomerState *t;
		OrderStats *stats;
		const StateRow *r;

		CHECK_FOR_INTERRUPTS();
		if (!keeps_row(c) || c->attrs.route != ROUTE_YES)
			continue;
		r = c->action == DELTA_NONE ? &c->old : &c->new;
		t = hook->add(hook->pass, c->code);
		t->in_customers = true;
		t->trade_name = c->attrs.trade_name ? MemoryContextStrdup(hook->context, c->attrs.trade_name) : NULL;
		t->delivery_route = c->attrs.delivery_route ? MemoryContextStrdup(hook->context, c->attrs.delivery_route) : NULL;
		t->shipping_address = c->attrs.shipping_address ? MemoryContextStrdup(hook->context, c->attrs.shipping_address) : NULL;
		t->csm = c->attrs.csm ? MemoryContextStrdup(hook->context, c->attrs.csm) : NULL;
		if (r->orders <= 0)
			continue;			/* as the state query's s.orders > 0 */
		stats = &t->orders;
		stats->orders = r->orders;
		stats->total = numeric_copy_to(hook->context, r->total);
		stats->last_order = r->last_order;
		stats->spend_orders = r->spend_orders;
		stats->spend = numeric_copy_to(hook->context, r->spend);
		stats->low_tickets = r->low_tickets;
		stats->base = numeric_copy_to(hook->context, r->base);
		stats->recent = numeric_copy_to(hook->context, r->recent);
	}
}

/* Copy a sum into context (it outlives the pass) */
static Numeric
numeric_copy_to(MemoryContext context, Numeric n)
{
	MemoryContext old;
	Numeric		copy;

	if (n == NULL)
		return NULL;
	old = MemoryContextSwitchTo(context);
	copy = DatumGetNumericCopy(NumericGetDatum(n));
	MemoryContextSwitchTo(old);
	return copy;
}

/*
 * The keys of a campaign's views that the statements after a delta pass
 * replace, from what the pass knows of each changed customer (a view's
 * rows are those of targets, and a target is a route customer), so that a
 * changed customer that cannot have a row in them is not looked up
 * (_campaign_delta_view_keys()).  Two lists, each in the order of the
 * changed customers' list (the views' indexes' order):
 * - routes: those that may be a route customer at some snapshot since the
 *   state's: a view refreshed by hand in between holds the targets of its
 *   own snapshot, which may be any of these;
 * - targets: those that were targets at the state's snapshot (their months
 *   dropped now: every target has a row of month_state per month of the
 *   revenue window) or are now: the rows of views as the last refresh left
 *   them (NULL when the pass did not follow the months).
 * Kept in TopTransactionContext for the transaction (lxid) and the state
 * table (state_relid) of the pass that made them; cleared when a pass
 * starts, set when it has written everything.
 */
/*
 * A row of month_state of a changed customer that is a target after the
 * pass, as the pass left it (read and adjusted, or inserted for a new
 * target), with whether its customer is among the long form's keys (its
 * months changed, entered or left).
 */
typedef struct KeptMonthRow
{
	const char *code;
	DateADT		month;
	Numeric		revenue;		/* NULL: SQL NULL */
	bool		orders_null;
	int64		orders;
	bool		listed;
	int			group;			/* its customer's index (0-based) among the
								 * kept rows' customers */
} KeptMonthRow;

typedef struct DeltaViewKeys
{
	LocalTransactionId lxid;
	Oid			state_relid;
	ArrayType  *routes;
	ArrayType  *targets;
	ArrayType  *old_routes;		/* route customers at the state's snapshot:
								 * the only ones with rows of month_state */
	bool		months_kept;	/* the month rows below are set */
	int			nmonth_rows;
	int			nmonth_groups;	/* their customers */
	struct KeptMonthRow *month_rows;	/* the changed targets' rows of
										 * month_state as the pass left them */
} DeltaViewKeys;

static DeltaViewKeys view_keys;

/* Might the changed customer be a route customer at some snapshot since the state's, or now? */
static bool
may_be_route_customer(const DeltaCustomer *c)
{
	if (c->own_row)
		return true;			/* its row of the customers changed */
	if (c->attrs.route == ROUTE_YES)
		return true;
	if (c->in_state)
		return c->old_attrs.route != ROUTE_NO;	/* unknown in a 1.5 row */
	/* not in the state before: known only when read from the customers */
	return !c->probe;
}

/*
 * Was the changed customer a route customer at the state's snapshot (then
 * possibly a target, with rows of month_state)?  Its state row says so
 * (unknown in a 1.5 row); a customer with no state row was no target.
 */
static bool
was_route_customer(const DeltaCustomer *c)
{
	return c->in_state && c->old_attrs.route != ROUTE_NO;
}

/* The elements keep[i] of codes (n of them) as a text[] in TopTransactionContext */
static ArrayType *
view_key_array(const Datum *codes, const bool *keep, int n)
{
	MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);
	Datum	   *kept = palloc(sizeof(Datum) * Max(n, 1));
	int			nkept = 0;
	ArrayType  *a;

	for (int i = 0; i < n; i++)
		if (keep[i])
			kept[nkept++] = codes[i];
	a = construct_array(kept, nkept, TEXTOID, -1, false, TYPALIGN_INT);
	pfree(kept);
	MemoryContextSwitchTo(old);
	return a;
}

/*
 * Refuse (42501) a caller who may not read the campaign's state table
 * state: what the functions below return is what the delta pass, run as
 * the campaign's owner, read and wrote there and in its month state, kept
 * in this backend's memory until the transaction ends.  The owner's own
 * statements in the refresh pass this; another role of the same session
 * (one who called refresh_campaign() and then these) does not.
 */
static void
require_kept_rows_readable(Oid state_relid)
{
	if (pg_class_aclcheck(state_relid, GetUserId(), ACL_SELECT) != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to read the delta refresh's rows of \"%s\"",
						get_rel_name(state_relid)),
				 errhint("Only a role that may read the campaign's state table (its owner) reads what its delta refresh keeps; call refresh_campaign() instead.")));
}

/*
 * _campaign_delta_view_keys(state regclass, targets boolean) returns text[]
 *
 * The keys of the views of the campaign whose state table is state that
 * the last delta pass of this transaction on it found (targets: its old or
 * new targets, else the customers that may have been route customers
 * since; see DeltaViewKeys), in the order of its list of changed
 * customers; NULL when no such pass ran or, for targets, when it did not
 * follow the months: the caller then takes every changed customer.
 */
Datum
campaign_delta_view_keys(PG_FUNCTION_ARGS)
{
	ArrayType  *a;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		PG_RETURN_NULL();
	if (view_keys.lxid != MyProc->lxid || view_keys.state_relid != PG_GETARG_OID(0))
		PG_RETURN_NULL();
	require_kept_rows_readable(view_keys.state_relid);
	a = PG_GETARG_BOOL(1) ? view_keys.targets : view_keys.routes;
	if (a == NULL)
		PG_RETURN_NULL();
	PG_RETURN_ARRAYTYPE_P(DatumGetArrayTypePCopy(PointerGetDatum(a)));
}

/*
 * TargetingStatsHook: the changed customers' state adjusted and written
 * back; the route customers among them, with their attributes and new
 * stats, added to the targeting pass (hook).
 */
void
campaign_delta_state_apply(void *arg, const TargetingHookPass *hook)
{
	const CampaignDeltaState *delta = (const CampaignDeltaState *) arg;
	const TargetingParams *params = delta->params;
	DeltaPass	pass;
	Oid			types[2] = {DATERANGEOID, TEXTARRAYOID};
	Datum		values[2];
	deltahash_iterator it;
	DeltaCustomer *c;
	DeltaCustomer **updates,
			  **inserts,
			  **deletes,
			  **lookups;
	int			nupdates = 0,
				ninserts = 0,
				ndeletes = 0,
				nlookups = 0;
	Datum	   *codes;
	int			ncodes = 0;
	Datum	   *listed;
	int			nlisted;

	view_keys.lxid = InvalidLocalTransactionId;
	view_keys.months_kept = false;
	memset(&pass, 0, sizeof(pass));
	pass.delta = delta;
	pass.context = AllocSetContextCreate(CurrentMemoryContext, "customer_analytics campaign delta",
										 ALLOCSET_DEFAULT_SIZES);
	pass.customers = deltahash_create(pass.context, 1024, NULL);

	/*
	 * the change rows, once: the signed sums per customer (and month), and
	 * the customers whose own row changed (no sign)
	 */
	values[0] = date_window_datum(params->data);
	if (delta->months != NULL)
	{
		Oid			change_types[2] = {DATERANGEOID, DATERANGEOID};
		Datum		change_values[2] = {values[0], delta->revenue_window};

		query_stream_serial(psprintf("SELECT x.customer_code::pg_catalog.text, x.order_date::pg_catalog.date,"
									 " COALESCE(x.total, 0)::pg_catalog.numeric, x.sign::pg_catalog.int4,"
									 " x.order_date OPERATOR(pg_catalog.<@) $1, x.order_date OPERATOR(pg_catalog.<@) $2"
									 " FROM %s x WHERE x.customer_code IS NOT NULL"
									 " AND (x.sign IS NULL OR x.order_date OPERATOR(pg_catalog.<@) $1"
									 " OR x.order_date OPERATOR(pg_catalog.<@) $2)",
									 delta->changes),
							2, change_types, change_values, NULL, fold_change, &pass);
	}
	else
		query_stream_serial(psprintf("SELECT x.customer_code::pg_catalog.text, x.order_date::pg_catalog.date,"
									 " COALESCE(x.total, 0)::pg_catalog.numeric, x.sign::pg_catalog.int4,"
									 " true, false"
									 " FROM %s x WHERE x.customer_code IS NOT NULL"
									 " AND (x.sign IS NULL OR x.order_date OPERATOR(pg_catalog.<@) $1)",
									 delta->changes),
							1, types, values, NULL, fold_change, &pass);

	/* every changed customer, with or without order changes */
	deconstruct_array(params->customers, TEXTOID, -1, false, TYPALIGN_INT, &listed, NULL, &nlisted);
	for (int i = 0; i < nlisted; i++)
	{
		CHECK_FOR_INTERRUPTS();
		(void) delta_customer(&pass, TextDatumGetCString(listed[i]));
	}

	/*
	 * their state rows, once: one keyed scan, by the list of changed
	 * customers as given (in the key index's order, so that the scan's sort
	 * of its keys finds them sorted) when it names every one
	 */
	if (pass.customers->members > 0)
	{
		MemoryContext old = MemoryContextSwitchTo(pass.context);

		if (pass.customers->members == (uint32) nlisted)
			values[1] = PointerGetDatum(params->customers);
		else
		{
			codes = palloc(sizeof(Datum) * pass.customers->members);
			deltahash_start_iterate(pass.customers, &it);
			while ((c = deltahash_iterate(pass.customers, &it)) != NULL)
				codes[ncodes++] = CStringGetTextDatum(c->code);
			values[1] = make_array(codes, NULL, ncodes, TEXTOID);
		}
		MemoryContextSwitchTo(old);
		query_stream_serial(psprintf("SELECT s.customer_code, s.orders, s.total, s.last_order, s.spend_orders,"
									 " s.spend, s.low_tickets, s.base_orders, s.base, s.recent_orders, s.recent, s.ctid,"
									 " s.route_customer, s.trade_name, s.delivery_route, s.shipping_address, s.csm"
									 " FROM %s s WHERE s.customer_code = ANY (ARRAY(SELECT pg_catalog.unnest($2)))",
									 delta->state),
							2, types, values, NULL, fold_state_row, &pass);
	}

	/* the new rows, in memory */
	updates = palloc(sizeof(DeltaCustomer *) * Max(pass.customers->members, 1));
	inserts = palloc(sizeof(DeltaCustomer *) * Max(pass.customers->members, 1));
	deletes = palloc(sizeof(DeltaCustomer *) * Max(pass.customers->members, 1));
	lookups = palloc(sizeof(DeltaCustomer *) * Max(pass.customers->members, 1));
	deltahash_start_iterate(pass.customers, &it);
	while ((c = deltahash_iterate(pass.customers, &it)) != NULL)
	{
		CHECK_FOR_INTERRUPTS();
		if (!c->changed)
			continue;
		apply_change(c);
		switch (c->action)
		{
			case DELTA_UPDATE:
				updates[nupdates++] = c;
				break;
			case DELTA_INSERT:
				inserts[ninserts++] = c;
				break;
			case DELTA_DELETE:
				deletes[ndeletes++] = c;
				break;
			case DELTA_NONE:
				break;
		}
		if (c->lookup_last)
			lookups[nlookups++] = c;
	}

	/* the route customers and their attributes: the state's, or read again */
	(void) settle_attrs(&pass, hook, updates, &nupdates);

	/* the last order again where a removed order may have been it */
	if (nlookups > 0)
	{
		codes = palloc(sizeof(Datum) * nlookups);
		for (int i = 0; i < nlookups; i++)
			codes[i] = CStringGetTextDatum(lookups[i]->code);
		values[1] = make_array(codes, NULL, nlookups, TEXTOID);
		query_stream_serial(psprintf("SELECT k.code, (SELECT pg_catalog.max(r.order_date) FROM %s r"
									 " WHERE r.customer_code = k.code AND r.order_date OPERATOR(pg_catalog.<@) $1)"
									 " FROM pg_catalog.unnest($2) k(code)",
									 delta->orders),
							2, types, values, NULL, fold_last_order, &pass);
	}

	write_state(delta->state, delta->state_relid, updates, nupdates, inserts, ninserts, deletes, ndeletes);

	emit_route_customers(&pass, hook);

	/* the views' keys: the changed customers that may be route customers */
	{
		bool	   *keep = palloc(sizeof(bool) * Max(nlisted, 1));
		bool	   *keep_old = palloc(sizeof(bool) * Max(nlisted, 1));

		for (int i = 0; i < nlisted; i++)
		{
			const char *code = TextDatumGetCString(listed[i]);

			CHECK_FOR_INTERRUPTS();
			c = deltahash_lookup(pass.customers, code);
			keep[i] = c == NULL || may_be_route_customer(c);
			keep_old[i] = c == NULL || was_route_customer(c);
		}
		view_keys.routes = view_key_array(listed, keep, nlisted);
		view_keys.old_routes = view_key_array(listed, keep_old, nlisted);
		pfree(keep_old);
		view_keys.targets = NULL;
		view_keys.state_relid = delta->state_relid;
		view_keys.lxid = MyProc->lxid;
		pfree(keep);
	}
	MemoryContextDelete(pass.context);
}

/*
 * The months of a campaign's delta refresh, after the verdicts.  What the
 * SQL delta's three statements on month_state did, each reading the change
 * rows or probing month_state again: the changed customers' rows of
 * month_state read once (one keyed scan, with their ctids); a customer's
 * rows dropped when it is no longer a target; a target's rows of the
 * months its changes touch adjusted (orders + the signed count, revenue +
 * the signed sum, 0 when no order is left in the month), fetched by ctid
 * (the deletes and updates through the table AM where month_state allows
 * it, write_months_direct); the rows of a new target (no row yet) computed
 * by monthly_revenue(); each customer whose rows were dropped, adjusted or
 * added listed in the long form's keys.  The month sums come from the pass's read of the changes
 * (fold_month_change).
 */
DeltaMonths *
campaign_delta_months_create(MemoryContext context)
{
	DeltaMonths *months = MemoryContextAllocZero(context, sizeof(DeltaMonths));

	months->context = AllocSetContextCreate(context, "customer_analytics campaign delta months",
											ALLOCSET_DEFAULT_SIZES);
	months->customers = monthhash_create(months->context, 256, NULL);
	return months;
}

typedef struct MonthPass
{
	DeltaMonths *months;
	const TargetingResult *result;
	int			maxrows;		/* of each list below, grown as needed */
	int			ndeletes;
	Datum	   *deletes;		/* ctids (copies) */
	int			nupdates;
	Datum	   *update_ctids;
	Datum	   *update_codes;	/* (text: the row's key, kept as it is) */
	Datum	   *update_months;
	Datum	   *update_revenue;
	bool	   *update_revenue_nulls;
	Datum	   *update_orders;
	bool	   *update_orders_nulls;
	int			nkeys;
	int			maxkeys;
	Datum	   *keys;			/* the long form's keys (text) */
	int			nrows;
	int			maxkept;
	KeptMonthRow *rows;			/* the targets' rows as left (months context) */
} MonthPass;

/* Keep a target's month row as the pass leaves it (in the months' context). */
static void
keep_month_row(MonthPass *mp, const char *code, DateADT month, Numeric revenue, bool orders_null, int64 orders)
{
	KeptMonthRow *r;

	if (mp->nrows == mp->maxkept)
	{
		mp->maxkept *= 2;
		mp->rows = repalloc_huge(mp->rows, sizeof(KeptMonthRow) * mp->maxkept);
	}
	r = &mp->rows[mp->nrows++];
	r->code = code;
	r->month = month;
	r->revenue = revenue ? numeric_copy_to(mp->months->context, revenue) : NULL;
	r->orders_null = orders_null;
	r->orders = orders;
	r->listed = false;
}

static int
compare_code_to_customer(const void *key, const void *elem)
{
	return strcmp((const char *) key, (*(CustomerState *const *) elem)->code);
}

/* a target among the verdicts? (result->customers is sorted bytewise) */
static bool
is_target(const TargetingResult *result, const char *code)
{
	CustomerState **c = bsearch(code, result->customers, result->ncustomers,
								sizeof(CustomerState *), compare_code_to_customer);

	return c != NULL && customer_is_target(*c);
}

static void
list_long_key(MonthPass *mp, MonthCustomer *m)
{
	if (m->listed)
		return;
	m->listed = true;
	if (mp->nkeys == mp->maxkeys)
	{
		mp->maxkeys *= 2;
		mp->keys = repalloc(mp->keys, sizeof(Datum) * mp->maxkeys);
	}
	mp->keys[mp->nkeys++] = PointerGetDatum(cstring_to_text(m->code));
}

static void
grow_month_rows(MonthPass *mp)
{
	mp->maxrows *= 2;
	mp->deletes = repalloc(mp->deletes, sizeof(Datum) * mp->maxrows);
	mp->update_ctids = repalloc(mp->update_ctids, sizeof(Datum) * mp->maxrows);
	mp->update_codes = repalloc(mp->update_codes, sizeof(Datum) * mp->maxrows);
	mp->update_months = repalloc(mp->update_months, sizeof(Datum) * mp->maxrows);
	mp->update_revenue = repalloc(mp->update_revenue, sizeof(Datum) * mp->maxrows);
	mp->update_revenue_nulls = repalloc(mp->update_revenue_nulls, sizeof(bool) * mp->maxrows);
	mp->update_orders = repalloc(mp->update_orders, sizeof(Datum) * mp->maxrows);
	mp->update_orders_nulls = repalloc(mp->update_orders_nulls, sizeof(bool) * mp->maxrows);
}

static Datum
ctid_copy(MemoryContext context, Datum ctid)
{
	ItemPointer copy = MemoryContextAlloc(context, sizeof(ItemPointerData));

	ItemPointerCopy((ItemPointer) DatumGetPointer(ctid), copy);
	return PointerGetDatum(copy);
}

/* Row of the month state query: customer_code, month, revenue, orders, ctid. */
static void
fold_month_row(TupleTableSlot *slot, void *arg)
{
	MonthPass  *mp = (MonthPass *) arg;
	MemoryContext old;
	const char *code;
	MonthCustomer *m;
	DateADT		month;
	const MonthDelta *md = NULL;

	if (slot->tts_isnull[0] || slot->tts_isnull[1])
		return;					/* the key's columns: never NULL */
	code = TextDatumGetCString(slot->tts_values[0]);	/* (the row's context) */
	month = DatumGetDateADT(slot->tts_values[1]);
	/* what is kept of the row, in the months' context */
	old = MemoryContextSwitchTo(mp->months->context);
	m = month_customer(mp->months, code);
	if (mp->ndeletes == mp->maxrows || mp->nupdates == mp->maxrows)
		grow_month_rows(mp);
	if (!is_target(mp->result, code))
	{
		/* no longer a target: its months go */
		mp->deletes[mp->ndeletes++] = ctid_copy(mp->months->context, slot->tts_values[4]);
		m->dropped = true;
		list_long_key(mp, m);
		MemoryContextSwitchTo(old);
		return;
	}
	m->has_rows = true;
	for (int i = 0; i < m->nmonths && md == NULL; i++)
		if (m->months[i].month == month)
			md = &m->months[i];
	if (md != NULL)
	{
		/*
		 * orders = m.orders + d.orders, revenue = CASE WHEN m.orders +
		 * d.orders > 0 THEN m.revenue + d.revenue ELSE 0 END, NULLs as SQL's
		 */
		Numeric		revenue;
		int			n = mp->nupdates++;

		mp->update_orders_nulls[n] = slot->tts_isnull[3];
		mp->update_orders[n] = slot->tts_isnull[3] ? (Datum) 0
			: Int64GetDatum(DatumGetInt64(slot->tts_values[3]) + md->orders);
		if (!slot->tts_isnull[3] && DatumGetInt64(mp->update_orders[n]) > 0)
			revenue = slot->tts_isnull[2] ? NULL
				: numeric_add_opt_error(DatumGetNumeric(slot->tts_values[2]), md->revenue, NULL);
		else
			revenue = int64_to_numeric(0);
		mp->update_revenue_nulls[n] = revenue == NULL;
		mp->update_revenue[n] = revenue ? NumericGetDatum(revenue) : (Datum) 0;
		mp->update_ctids[n] = ctid_copy(mp->months->context, slot->tts_values[4]);
		mp->update_codes[n] = PointerGetDatum(cstring_to_text(code));
		mp->update_months[n] = DateADTGetDatum(month);
		/* as the SQL's UPDATE ... RETURNING listed it: a month row matched */
		list_long_key(mp, m);
		keep_month_row(mp, m->code, month, revenue, mp->update_orders_nulls[n],
					   mp->update_orders_nulls[n] ? 0 : DatumGetInt64(mp->update_orders[n]));
	}
	else
		keep_month_row(mp, m->code, month,
					   slot->tts_isnull[2] ? NULL : DatumGetNumeric(slot->tts_values[2]),
					   slot->tts_isnull[3], slot->tts_isnull[3] ? 0 : DatumGetInt64(slot->tts_values[3]));
	MemoryContextSwitchTo(old);
}

/*
 * The months' deletes and updates through the table AM (keyed_write.c),
 * when month_state allows it (else false, nothing written): the rows at
 * the ctids they were read at, the updated ones whole (their key as read,
 * so HOT where the page has room), as the statements of
 * campaign_delta_months_apply() write them, with the privileges they need.
 */
static bool
write_months_direct(Oid relid, const MonthPass *mp)
{
	static const char *const names[4] = {"customer_code", "month", "revenue", "orders"};
	static const Oid types[4] = {TEXTOID, DATEOID, NUMERICOID, INT8OID};
	KeyedWriter *w;

	w = keyed_writer_open(relid, 4, names, types,
						  ACL_SELECT | (mp->ndeletes > 0 ? ACL_DELETE : 0) | (mp->nupdates > 0 ? ACL_UPDATE : 0));
	if (w == NULL)
		return false;
	for (int i = 0; i < mp->ndeletes; i++)
		keyed_writer_delete(w, (ItemPointer) DatumGetPointer(mp->deletes[i]));
	for (int i = 0; i < mp->nupdates; i++)
	{
		Datum		values[4] = {mp->update_codes[i], mp->update_months[i], mp->update_revenue[i], mp->update_orders[i]};
		bool		nulls[4] = {false, false, mp->update_revenue_nulls[i], mp->update_orders_nulls[i]};

		keyed_writer_update(w, (ItemPointer) DatumGetPointer(mp->update_ctids[i]), values, nulls);
	}
	keyed_writer_close(w);
	return true;
}

/*
 * The targets' month rows the pass leaves (mp->rows), each with whether
 * its customer is among the long form's keys, copied into
 * TopTransactionContext for the views' statements that follow
 * (_campaign_delta_month_rows).
 */
static void
keep_month_rows(MonthPass *mp)
{
	MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);
	KeptMonthRow *rows = palloc_extended(sizeof(KeptMonthRow) * Max(mp->nrows, 1), MCXT_ALLOC_HUGE);
	int			ngroups = 0;

	for (int i = 0; i < mp->nrows; i++)
	{
		const KeptMonthRow *r = &mp->rows[i];
		MonthCustomer *m = monthhash_lookup(mp->months->customers, r->code);

		CHECK_FOR_INTERRUPTS();
		/* (every kept row's customer is in the months: fold_month_row, the inserts) */
		if (m == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INTERNAL_ERROR),
					 errmsg("campaign delta: a month row of customer \"%s\" that the pass did not follow", r->code),
					 errhint("This is an internal inconsistency of the delta pass: report it with the campaign's definition.")));
		rows[i] = *r;
		rows[i].listed = r->listed || m->listed;
		if (m->group == 0)
		{
			m->group = ++ngroups;
			m->kept_code = pstrdup(r->code);
		}
		rows[i].code = m->kept_code;
		rows[i].group = m->group - 1;
		rows[i].revenue = r->revenue ? numeric_copy_to(TopTransactionContext, r->revenue) : NULL;
	}
	MemoryContextSwitchTo(old);
	view_keys.month_rows = rows;
	view_keys.nmonth_rows = mp->nrows;
	view_keys.nmonth_groups = ngroups;
	view_keys.months_kept = true;
}

/*
 * _campaign_delta_months_kept(state regclass) returns boolean
 *
 * Did the last delta pass of this transaction over the campaign's state
 * table state keep its targets' month rows (_campaign_delta_month_rows)?
 */
Datum
campaign_delta_months_kept(PG_FUNCTION_ARGS)
{
	if (PG_ARGISNULL(0))
		PG_RETURN_BOOL(false);
	PG_RETURN_BOOL(view_keys.lxid == MyProc->lxid && view_keys.state_relid == PG_GETARG_OID(0)
				   && view_keys.months_kept);
}

/*
 * _campaign_delta_month_rows(state regclass, listed boolean)
 *		returns table(customer_code text, month date, revenue numeric, orders bigint)
 *
 * The rows of month_state that the last delta pass of this transaction over
 * the campaign's state table state left for the changed customers that are
 * targets (read and adjusted, or inserted for new targets): with listed,
 * only those of the customers in the long form's keys (whose months
 * changed, entered or left).  No row when the pass kept none
 * (_campaign_delta_months_kept() false): the caller reads month_state.
 */
Datum
campaign_delta_month_rows(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	bool		listed_only = !PG_ARGISNULL(1) && PG_GETARG_BOOL(1);

	InitMaterializedSRF(fcinfo, 0);
	if (PG_ARGISNULL(0) || view_keys.lxid != MyProc->lxid || view_keys.state_relid != PG_GETARG_OID(0)
		|| !view_keys.months_kept)
		PG_RETURN_NULL();
	require_kept_rows_readable(view_keys.state_relid);
	for (int i = 0; i < view_keys.nmonth_rows; i++)
	{
		const KeptMonthRow *r = &view_keys.month_rows[i];
		Datum		values[4];
		bool		nulls[4] = {false, false, false, false};

		CHECK_FOR_INTERRUPTS();
		if (listed_only && !r->listed)
			continue;
		values[0] = CStringGetTextDatum(r->code);
		values[1] = DateADTGetDatum(r->month);
		nulls[2] = r->revenue == NULL;
		values[2] = r->revenue ? NumericGetDatum(r->revenue) : (Datum) 0;
		nulls[3] = r->orders_null;
		values[3] = Int64GetDatum(r->orders);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		pfree(DatumGetPointer(values[0]));
	}
	PG_RETURN_NULL();
}

/*
 * _campaign_delta_sheet_months(state regclass, months date[])
 *		returns table(customer_code text, revenue numeric[])
 *
 * The kept month rows of _campaign_delta_month_rows() pivoted per customer:
 * one row per changed target, its revenue of each of months in their order
 * (NULL where it has no row for the month or its revenue is NULL: what the
 * sheet's max(revenue) FILTER (WHERE month = ...) gives, which its
 * statement then makes 0).  No row when the pass kept none.
 */
Datum
campaign_delta_sheet_months(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	ArrayType  *months_arr;
	Datum	   *months;
	bool	   *month_nulls;
	int			nmonths;
	int			ngroups;
	Datum	   *values;
	bool	   *nulls;
	const char **codes;
	int			dims[1];
	int			lbs[1] = {1};
	int16		typlen;
	bool		typbyval;
	char		typalign;

	InitMaterializedSRF(fcinfo, 0);
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || view_keys.lxid != MyProc->lxid
		|| view_keys.state_relid != PG_GETARG_OID(0) || !view_keys.months_kept)
		PG_RETURN_NULL();
	require_kept_rows_readable(view_keys.state_relid);
	months_arr = PG_GETARG_ARRAYTYPE_P(1);
	deconstruct_array(months_arr, DATEOID, sizeof(DateADT), true, TYPALIGN_INT, &months, &month_nulls, &nmonths);
	ngroups = view_keys.nmonth_groups;
	/* (NULL until a row sets it) */
	values = palloc0(sizeof(Datum) * (Size) Max(ngroups, 1) * Max(nmonths, 1));
	nulls = palloc(sizeof(bool) * (Size) Max(ngroups, 1) * Max(nmonths, 1));
	memset(nulls, true, sizeof(bool) * (Size) Max(ngroups, 1) * Max(nmonths, 1));
	codes = palloc0(sizeof(char *) * Max(ngroups, 1));
	for (int i = 0; i < view_keys.nmonth_rows; i++)
	{
		const KeptMonthRow *r = &view_keys.month_rows[i];

		CHECK_FOR_INTERRUPTS();
		codes[r->group] = r->code;
		if (r->revenue == NULL)
			continue;
		for (int k = 0; k < nmonths; k++)
			if (!month_nulls[k] && DatumGetDateADT(months[k]) == r->month)
			{
				values[(Size) r->group * nmonths + k] = NumericGetDatum(r->revenue);
				nulls[(Size) r->group * nmonths + k] = false;
				break;
			}
	}
	get_typlenbyvalalign(NUMERICOID, &typlen, &typbyval, &typalign);
	dims[0] = nmonths;
	for (int g = 0; g < ngroups; g++)
	{
		Datum		row[2];
		bool		row_nulls[2] = {false, false};

		CHECK_FOR_INTERRUPTS();
		row[0] = CStringGetTextDatum(codes[g]);
		row[1] = PointerGetDatum(construct_md_array(values + (Size) g * nmonths, nulls + (Size) g * nmonths,
													1, dims, lbs, NUMERICOID, typlen, typbyval, typalign));
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, row, row_nulls);
		pfree(DatumGetPointer(row[0]));
		pfree(DatumGetPointer(row[1]));
	}
	PG_RETURN_NULL();
}

/*
 * The months of the changed customers after the verdicts (result): read,
 * then written back (DELETE and UPDATE by ctid, the new targets' INSERT
 * with the long form's keys), the writes run as write_state's are.
 */
void
campaign_delta_months_apply(const CampaignDeltaState *delta, const TargetingResult *result)
{
	const TargetingParams *params = delta->params;
	DeltaMonths *months = delta->months;
	MonthPass	mp;
	MemoryContext old;
	Datum		values[3];
	Oid			types[3];
	Datum	   *targets;
	int			ntargets = 0;
	int			nestlevel;
	ArrayType  *read_keys;

	memset(&mp, 0, sizeof(mp));
	mp.months = months;
	mp.result = result;
	old = MemoryContextSwitchTo(months->context);
	mp.maxrows = 64;
	mp.deletes = palloc(sizeof(Datum) * mp.maxrows);
	mp.update_ctids = palloc(sizeof(Datum) * mp.maxrows);
	mp.update_codes = palloc(sizeof(Datum) * mp.maxrows);
	mp.update_months = palloc(sizeof(Datum) * mp.maxrows);
	mp.update_revenue = palloc(sizeof(Datum) * mp.maxrows);
	mp.update_revenue_nulls = palloc(sizeof(bool) * mp.maxrows);
	mp.update_orders = palloc(sizeof(Datum) * mp.maxrows);
	mp.update_orders_nulls = palloc(sizeof(bool) * mp.maxrows);
	mp.maxkeys = 64;
	mp.keys = palloc(sizeof(Datum) * mp.maxkeys);
	mp.maxkept = 256;
	mp.rows = palloc(sizeof(KeptMonthRow) * mp.maxkept);
	MemoryContextSwitchTo(old);

	/*
	 * the changed customers' rows of month_state, once: one keyed scan; of
	 * those that were route customers at the state's snapshot, when the
	 * pass knows them (the others were no targets, and have no row)
	 */
	read_keys = params->customers;
	if (view_keys.lxid == MyProc->lxid && view_keys.state_relid == delta->state_relid)
		read_keys = view_keys.old_routes;
	if (ArrayGetNItems(ARR_NDIM(read_keys), ARR_DIMS(read_keys)) > 0)
	{
		types[0] = TEXTARRAYOID;
		values[0] = PointerGetDatum(read_keys);
		query_stream_serial(psprintf("SELECT m.customer_code, m.month, m.revenue, m.orders, m.ctid FROM %s m"
									 " WHERE m.customer_code = ANY (ARRAY(SELECT pg_catalog.unnest($1)))",
									 delta->month_state),
							1, types, values, NULL, fold_month_row, &mp);
	}

	/* the new targets: no row yet */
	targets = palloc(sizeof(Datum) * Max(result->ncustomers, 1));
	for (int i = 0; i < result->ncustomers; i++)
	{
		const CustomerState *c = result->customers[i];
		MonthCustomer *m;

		CHECK_FOR_INTERRUPTS();
		if (!customer_is_target(c))
			continue;
		m = monthhash_lookup(months->customers, c->code);
		if (m == NULL || !m->has_rows)
			targets[ntargets++] = CStringGetTextDatum(c->code);
	}

	nestlevel = begin_keyed_writes();
	if (mp.ndeletes + mp.nupdates == 0 || write_months_direct(delta->month_state_relid, &mp))
		mp.ndeletes = mp.nupdates = 0;	/* (written) */
	if (mp.ndeletes > 0)
	{
		types[0] = TIDARRAYOID;
		values[0] = make_array(mp.deletes, NULL, mp.ndeletes, TIDOID);
		run_write(psprintf("DELETE FROM %s m USING pg_catalog.unnest($1) u(ctid_) WHERE m.ctid = u.ctid_",
						   delta->month_state),
				  1, types, values, mp.ndeletes);
	}
	if (mp.nupdates > 0)
	{
		types[0] = TIDARRAYOID;
		types[1] = get_array_type(NUMERICOID);
		types[2] = get_array_type(INT8OID);
		values[0] = make_array(mp.update_ctids, NULL, mp.nupdates, TIDOID);
		values[1] = make_array(mp.update_revenue, mp.update_revenue_nulls, mp.nupdates, NUMERICOID);
		values[2] = make_array(mp.update_orders, mp.update_orders_nulls, mp.nupdates, INT8OID);
		run_write(psprintf("UPDATE %s m SET revenue = u.revenue, orders = u.orders"
						   " FROM ROWS FROM (pg_catalog.unnest($1::pg_catalog.tid[]),"
						   " pg_catalog.unnest($2::pg_catalog.numeric[]), pg_catalog.unnest($3::pg_catalog.int8[]))"
						   " AS u(ctid_, revenue, orders) WHERE m.ctid = u.ctid_", delta->month_state),
				  3, types, values, mp.nupdates);
	}
	/* the new targets' months, and the long form's keys */
	types[0] = TEXTARRAYOID;
	values[0] = make_array(mp.keys, NULL, mp.nkeys, TEXTOID);
	if (ntargets > 0)
	{
		types[1] = TEXTARRAYOID;
		values[1] = make_array(targets, NULL, ntargets, TEXTOID);
		types[2] = DATERANGEOID;
		values[2] = delta->revenue_window;
		/* (the source schema as a literal: NULL, the GUC's, is no parameter here) */
		run_write(psprintf("WITH added AS (INSERT INTO %s SELECT * FROM customer_analytics.monthly_revenue($2, $3, %s)"
						   " RETURNING customer_code, month, revenue, orders),"
						   " listed AS (INSERT INTO %s (customer_code) SELECT pg_catalog.unnest($1)"
						   " UNION SELECT a.customer_code FROM added a ON CONFLICT DO NOTHING)"
						   " SELECT a.customer_code, a.month, a.revenue, a.orders FROM added a",
						   delta->month_state,
						   params->source_schema ? quote_literal_cstr(params->source_schema) : "NULL::pg_catalog.text",
						   delta->long_keys),
				  3, types, values, -1);
		/* the new targets' rows as inserted: kept, their customers listed */
		old = MemoryContextSwitchTo(months->context);
		for (uint64 i = 0; i < SPI_processed; i++)
		{
			HeapTuple	tup = SPI_tuptable->vals[i];
			TupleDesc	desc = SPI_tuptable->tupdesc;
			bool		isnull[4];
			Datum		d[4];

			CHECK_FOR_INTERRUPTS();
			for (int a = 0; a < 4; a++)
				d[a] = SPI_getbinval(tup, desc, a + 1, &isnull[a]);
			if (isnull[0] || isnull[1])
				continue;		/* the key's columns: never NULL */
			keep_month_row(&mp, month_customer(months, TextDatumGetCString(d[0]))->code, DatumGetDateADT(d[1]),
						   isnull[2] ? NULL : DatumGetNumeric(d[2]), isnull[3],
						   isnull[3] ? 0 : DatumGetInt64(d[3]));
			mp.rows[mp.nrows - 1].listed = true;
		}
		MemoryContextSwitchTo(old);
	}
	else if (mp.nkeys > 0)
		run_write(psprintf("INSERT INTO %s (customer_code) SELECT pg_catalog.unnest($1) ON CONFLICT DO NOTHING",
						   delta->long_keys),
				  1, types, values, -1);
	end_keyed_writes(nestlevel);

	/*
	 * the views' keys of the old and new targets: the new ones among the
	 * verdicts, the old ones that are no longer targets had months dropped
	 */
	if (view_keys.lxid == MyProc->lxid && view_keys.state_relid == delta->state_relid)
	{
		Datum	   *listed;
		int			nlisted;
		bool	   *keep;

		deconstruct_array(params->customers, TEXTOID, -1, false, TYPALIGN_INT, &listed, NULL, &nlisted);
		keep = palloc(sizeof(bool) * Max(nlisted, 1));
		for (int i = 0; i < nlisted; i++)
		{
			const char *code = TextDatumGetCString(listed[i]);
			MonthCustomer *m = monthhash_lookup(months->customers, code);

			CHECK_FOR_INTERRUPTS();
			keep[i] = (m != NULL && m->dropped) || is_target(result, code);
		}
		view_keys.targets = view_key_array(listed, keep, nlisted);
		pfree(keep);
		keep_month_rows(&mp);
	}
	MemoryContextDelete(months->context);
}
