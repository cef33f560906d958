/*
 * source_tables.c
 *		Find the ERP tables and check them against the data contract before
 *		any query runs, so that a wrong schema, a missing column or a column
 *		of the wrong type is reported by name with a hint, not as a confusing
 *		error from deep inside generated SQL.
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/lsyscache.h"
#include "utils/rangetypes.h"
#include "utils/typcache.h"

#include "customer_analytics.h"
#include "order_rollup.h"
#include "query_stream.h"
#include "role_trust.h"
#include "source_tables.h"

PG_FUNCTION_INFO_V1(source_trust_problem);
PG_FUNCTION_INFO_V1(contract_columns);
PG_FUNCTION_INFO_V1(source_schema_of);
PG_FUNCTION_INFO_V1(window_has_orders);

static const char *const source_table_names[] = {"customers", "sales_orders", "sales_order_lines"};

/* What a column must hold: each class lists the types accepted for it. */
typedef enum ColumnClass
{
	COL_ANY,					/* keys: any type with an equality operator */
	COL_TEXT,					/* text, varchar or char */
	COL_DATE,					/* text YYYYMMDD, or date */
	COL_AMOUNT,					/* exact numbers: numeric or an integer type */
	COL_TEXT_ARRAY				/* text[], varchar[] or char[] */
} ColumnClass;

typedef struct ColumnSpec
{
	const char *name;
	ColumnClass class;
} ColumnSpec;

static const ColumnSpec customer_columns[] = {
	{"customer_code", COL_TEXT},
	{"trade_name", COL_TEXT},
	{"delivery_route", COL_TEXT},
	{"shipping_address", COL_TEXT},
	{"closure_date", COL_DATE},
	{"csm", COL_TEXT},
	{NULL, COL_ANY}
};

static const ColumnSpec order_columns[] = {
	{"order_type", COL_ANY},
	{"order_number", COL_ANY},
	{"customer_code", COL_TEXT},
	{"delivery_route", COL_TEXT},
	{"order_date", COL_DATE},
	{"confirmed_code", COL_TEXT},
	{NULL, COL_ANY}
};

/* the sharded source's shard-local order relation, one row per order */
static const ColumnSpec order_totals_columns[] = {
	{"customer_code", COL_TEXT},
	{"order_type", COL_ANY},
	{"order_number", COL_ANY},
	{"delivery_route", COL_TEXT},
	{"order_date", COL_DATE},
	{"confirmed_code", COL_TEXT},
	{"order_total", COL_AMOUNT},
	{NULL, COL_ANY}
};

/*
 * The sharded source's shard-local line relation (1.6), one row per line
 * with its order's header (an order without lines: one row, a NULL amount),
 * which targeting folds per customer on the shards (targeting_line_stats)
 */
static const ColumnSpec order_lines_columns[] = {
	{"customer_code", COL_TEXT},
	{"order_type", COL_ANY},
	{"order_number", COL_ANY},
	{"delivery_route", COL_TEXT},
	{"order_date", COL_DATE},
	{"confirmed_code", COL_TEXT},
	{"line_amount", COL_AMOUNT},
	{NULL, COL_ANY}
};

/*
 * order_totals columns only customer_features() reads: the order's sum of
 * line quantities and its lines' product codes
 */
static const ColumnSpec order_totals_item_columns[] = {
	{"quantity", COL_AMOUNT},
	{"product_codes", COL_TEXT_ARRAY},
	{NULL, COL_ANY}
};

static const ColumnSpec line_columns[] = {
	{"order_type", COL_ANY},
	{"order_number", COL_ANY},
	{"pretax_subtotal", COL_AMOUNT},
	{NULL, COL_ANY}
};

/*
 * Line columns only customer_features() reads.  They are checked on their
 * own, so that sources built for targeting alone keep working without them.
 */
static const ColumnSpec line_item_columns[] = {
	{"product_code", COL_TEXT},
	{"quantity", COL_AMOUNT},
	{NULL, COL_ANY}
};

static bool
is_text_type(Oid type)
{
	return type == TEXTOID || type == VARCHAROID || type == BPCHAROID;
}

static bool
type_fits(Oid type, ColumnClass class)
{
	switch (class)
	{
		case COL_ANY:
			return true;
		case COL_TEXT:
			return is_text_type(type);
		case COL_DATE:
			return is_text_type(type) || type == DATEOID;
		case COL_AMOUNT:
			return type == NUMERICOID || type == INT2OID ||
				type == INT4OID || type == INT8OID;
		case COL_TEXT_ARRAY:
			return type == TEXTARRAYOID || type == VARCHARARRAYOID || type == BPCHARARRAYOID;
	}
	return false;
}

static const char *
class_description(ColumnClass class)
{
	switch (class)
	{
		case COL_TEXT:
			return "text, varchar or char";
		case COL_DATE:
			return "text, varchar or char holding YYYYMMDD, or date";
		case COL_AMOUNT:
			return "numeric or an integer type";
		case COL_TEXT_ARRAY:
			return "text[], varchar[] or char[]";
		default:
			return "any type";
	}
}

/*
 * The relation schema.table, locked against DROP, RENAME and ALTER until the
 * end of the transaction (the lock the query takes anyway), so that what is
 * checked here is what the query reads; InvalidOid when there is none.
 */
static Oid
lock_source_relation(Oid nspid, const char *table)
{
	for (;;)
	{
		Oid			relid = get_relname_relid(table, nspid);

		if (!OidIsValid(relid))
			return InvalidOid;
		LockRelationOid(relid, AccessShareLock);
		/* replaced while we waited for the lock: look again */
		if (get_relname_relid(table, nspid) == relid)
			return relid;
		UnlockRelationOid(relid, AccessShareLock);
	}
}

/*
 * ereport(ERROR) when reading schema.table would run code of a role the
 * current user does not trust (role_trust.c says why that matters).
 */
static void
check_trust(Oid relid, const char *schema, const char *table)
{
	char	   *problem = ca_relation_trust_problem(relid, schema, table);

	if (problem)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("%s", problem),
				 errdetail("Trusted owners are the reading role itself, superusers, roles that are members of the reading role, "
						   "and the roles listed in customer_analytics.trusted_source_owners."),
				 errhint("Have a trusted role own the relation, or ask a superuser to add its owner to customer_analytics.trusted_source_owners.")));
}

/* Look up one table and check its columns and owner; returns the quoted name. */
static const char *
check_table(const char *schema, Oid nspid, const char *table,
			const ColumnSpec *columns, Oid *order_date_type)
{
	Oid			relid = lock_source_relation(nspid, table);

	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("source table \"%s.%s\" does not exist", schema, table),
				 errhint("customer_analytics reads customers, sales_orders and sales_order_lines from the source schema; "
						 "create them, or point source_schema at the schema that has them.")));
	check_trust(relid, schema, table);

	for (const ColumnSpec *col = columns; col->name != NULL; col++)
	{
		AttrNumber	attnum = get_attnum(relid, col->name);
		Oid			type;

		if (attnum == InvalidAttrNumber)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("column \"%s\" of source table \"%s.%s\" does not exist",
							col->name, schema, table),
					 errhint("Rename the column, or point source_schema at a schema of views that expose it under this name.")));

		type = getBaseType(get_atttype(relid, attnum));
		if (!type_fits(type, col->class))
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("column \"%s\" of source table \"%s.%s\" has type %s",
							col->name, schema, table, format_type_be(type)),
					 errdetail("customer_analytics expects %s.", class_description(col->class)),
					 errhint("Expose the column with a cast in a view, and point source_schema at the view's schema.")));

		if (order_date_type && strcmp(col->name, "order_date") == 0)
			*order_date_type = type;
	}

	return quote_qualified_identifier(schema, table);
}

/*
 * The source schema a call means: its argument, else the setting (whose
 * default is CA_DEFAULT_SOURCE_SCHEMA).  The one rule for C and, through
 * _source_schema(), SQL.
 */
static const char *
source_schema_for(const char *schema_arg)
{
	return schema_arg ? schema_arg : ca_source_schema;
}

SourceTables *
source_tables_open_tables(const char *schema_arg)
{
	SourceTables *src = palloc0(sizeof(SourceTables));
	const char *schema = source_schema_for(schema_arg);
	Oid			nspid;
	Oid			order_date_type = InvalidOid;

	if (schema == NULL || schema[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("no source schema given"),
				 errhint("Pass source_schema => 'cosmos_sync' or SET customer_analytics.source_schema.")));

	nspid = get_namespace_oid(schema, true);
	if (!OidIsValid(nspid))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_SCHEMA_NAME),
				 errmsg("source schema \"%s\" does not exist", schema),
				 errhint("Pass source_schema => '...' or SET customer_analytics.source_schema to the schema holding customers, sales_orders and sales_order_lines.")));

	src->schema = pstrdup(schema);
	src->customers = check_table(schema, nspid, "customers", customer_columns, NULL);
	src->orders = check_table(schema, nspid, "sales_orders", order_columns, &order_date_type);
	src->lines = check_table(schema, nspid, "sales_order_lines", line_columns, NULL);
	src->order_date_is_date = (order_date_type == DATEOID);
	return src;
}

SourceTables *
source_tables_open(const char *schema_arg)
{
	SourceTables *src = source_tables_open_tables(schema_arg);

	src->rollup = order_rollup_for_reading(src->schema);
	if (src->rollup == NULL)
		source_tables_open_sharded(src);
	return src;
}

static bool
is_partitioned(Oid nspid, const char *table)
{
	Oid			relid = get_relname_relid(table, nspid);

	return OidIsValid(relid) && get_rel_relkind(relid) == RELKIND_PARTITIONED_TABLE;
}

/*
 * A sharded source: customers, sales_orders and order_totals are all
 * partitioned tables (by customer_code on the shards, which
 * check_sharded_source() verifies; the queries are right whatever the
 * partitioning, only their pushdown depends on it).  Then order_totals is
 * checked like the source tables and read instead of the order headers and
 * lines, unless customer_analytics.shard_pushdown is off.  A partitioned
 * order_lines (1.6's contract; optional, 1.5's coordinators have none) is
 * checked too: targeting reads it instead of order_totals, so that each
 * shard folds its route customers' lines per customer without grouping
 * every order first.
 */
void
source_tables_open_sharded(SourceTables *src)
{
	Oid			nspid = get_namespace_oid(src->schema, false);
	Oid			date_type = InvalidOid;

	if (!ca_shard_pushdown ||
		!is_partitioned(nspid, "order_totals") ||
		!is_partitioned(nspid, "customers") ||
		!is_partitioned(nspid, "sales_orders"))
		return;
	src->order_totals = check_table(src->schema, nspid, "order_totals",
									order_totals_columns, &date_type);
	src->totals_date_is_date = (date_type == DATEOID);
	if (is_partitioned(nspid, "order_lines"))
	{
		date_type = InvalidOid;
		src->order_lines = check_table(src->schema, nspid, "order_lines",
									   order_lines_columns, &date_type);
		src->order_lines_date_is_date = (date_type == DATEOID);
	}
	ereport(DEBUG1,
			(errmsg_internal("customer_analytics: source \"%s\" is sharded: reading %s",
							 src->schema, src->order_totals)));
}

void
source_tables_check_line_items(const SourceTables *src)
{
	Oid			nspid = get_namespace_oid(src->schema, false);

	(void) check_table(src->schema, nspid, "sales_order_lines", line_item_columns, NULL);
	if (src->order_totals)
		(void) check_table(src->schema, nspid, "order_totals", order_totals_item_columns, NULL);
}

const char *
source_order_date_expr(const SourceTables *src, const char *alias)
{
	return psprintf("customer_analytics.checked_order_date(%s.order_date%s, %s.order_type::text, %s.order_number::text)",
					alias, src->order_date_is_date ? "" : "::text", alias, alias);
}

const char *
source_order_window_expr(const SourceTables *src, const char *alias, const char *window)
{
	return psprintf("customer_analytics.order_date_in_window(%s.order_date%s, %s, %s.order_type::text, %s.order_number::text)",
					alias, src->order_date_is_date ? "" : "::text", window, alias, alias);
}

/*
 * The date of the rollup's order row o, checked: _rollup_order_date()
 * (order_date.c), which every reader of the rollup uses.
 */
#define ROLLUP_ORDER_DATE \
	"customer_analytics._rollup_order_date(o.order_date, o.order_date_raw, o.order_type, o.order_number)"

/*
 * One row per confirmed order whose date is in the daterange $1 and that
 * satisfies scope (SQL over alias o): customer_code, order date, total, then
 * the extra aggregate columns over its lines l.  The executor joins the
 * header to its lines and sums them; the total is NULL for an order without
 * lines or with only NULL amounts (callers read 0).  Grouping on the order
 * key mirrors the notebook's extract.
 *
 * With a current rollup the same rows come from it, one row per order
 * already summed.  Orders whose date the triggers could not read have no
 * order_date (the window test on it is not true), and _rollup_order_date()
 * raises on them the same error the source tables would.
 */
static char *
order_query(const SourceTables *src, const char *extra_columns,
			const char *rollup_columns, const char *scope)
{
	if (src->rollup)
		return psprintf("SELECT o.customer_code, " ROLLUP_ORDER_DATE ", o.total%s FROM %s o"
						" WHERE (o.order_date >= pg_catalog.lower($1) AND o.order_date < pg_catalog.upper($1)"
						" OR (o.order_date IS NULL AND " ROLLUP_ORDER_DATE " <@ $1))"
						" AND %s",
						rollup_columns, src->rollup, scope);
	return psprintf("SELECT o.customer_code::text, %s, sum(l.pretax_subtotal)::numeric%s"
					" FROM %s o LEFT JOIN %s l"
					" ON l.order_type = o.order_type AND l.order_number = o.order_number"
					" WHERE o.confirmed_code = 'Y' AND %s AND %s"
					" GROUP BY o.order_type, o.order_number, 1, 2",
					source_order_date_expr(src, "o"), extra_columns, src->orders, src->lines,
					source_order_window_expr(src, "o", "$1"), scope);
}

/*
 * Over the source tables each order's total is a subquery on its lines, run
 * in the order the headers are scanned: the lines are then fetched in about
 * their physical order, and no grouping or sort over the lines is needed.
 * (Measured at scale 10: 1.6 s against 2.7 s for the grouped join, whose
 * parallel workers spent it sorting every line.)  OFFSET 0 keeps the
 * subquery evaluated here, before any grouping by customer reorders the rows.
 */
char *
source_order_totals_query(const SourceTables *src, const char *scope)
{
	if (src->rollup)
		return order_query(src, "", "", scope);
	return psprintf("SELECT o.customer_code::text, %s,"
					" (SELECT sum(l.pretax_subtotal) FROM %s l"
					" WHERE l.order_type = o.order_type AND l.order_number = o.order_number)::numeric"
					" FROM %s o WHERE o.confirmed_code = 'Y' AND %s AND %s OFFSET 0",
					source_order_date_expr(src, "o"), src->lines, src->orders,
					source_order_window_expr(src, "o", "$1"), scope);
}

/*
 * One row per line of the confirmed orders whose date is in the daterange
 * $1 and that satisfy scope (SQL over alias o): customer_code, order_type,
 * order_number, the order's date, the line's amount; an order without lines
 * gives one row with a NULL amount.  Nothing is grouped per order: the
 * caller's aggregate (targeting_line_stats) sums each order's lines, so the
 * planner can join each header to its lines in parallel workers and
 * aggregate per customer there (a nested loop over the lines' key index,
 * then a partial aggregate), where the totals of source_order_totals_query()
 * are subqueries the leader runs alone (PostgreSQL 15 keeps correlated
 * subqueries out of workers).  Only for the source tables: the rollup and a
 * sharded source already hold one row per order.
 */
char *
source_order_lines_query(const SourceTables *src, const char *scope)
{
	Assert(src->rollup == NULL && src->order_totals == NULL);
	return psprintf("SELECT o.customer_code::text, o.order_type::text, o.order_number::text, %s,"
					" l.pretax_subtotal::numeric"
					" FROM %s o LEFT JOIN %s l"
					" ON l.order_type = o.order_type AND l.order_number = o.order_number"
					" WHERE o.confirmed_code = 'Y' AND %s AND %s",
					source_order_date_expr(src, "o"), src->orders, src->lines,
					source_order_window_expr(src, "o", "$1"), scope);
}

/*
 * The confirmed orders whose date is in the daterange $1 and that satisfy
 * scope (SQL over alias o), without their lines: customer_code, order_type,
 * order_number, the order's date.  With source_line_totals_query(), the
 * rows of source_order_lines_query() as one row per order and one scan of
 * the lines (targeting.c).
 */
char *
source_scoped_orders_query(const SourceTables *src, const char *scope)
{
	Assert(src->rollup == NULL && src->order_totals == NULL);
	return psprintf("SELECT o.customer_code::text, o.order_type::text, o.order_number::text, %s"
					" FROM %s o WHERE o.confirmed_code = 'Y' AND %s AND %s",
					source_order_date_expr(src, "o"), src->orders,
					source_order_window_expr(src, "o", "$1"), scope);
}

/*
 * One scan of every line, their amounts summed per order of the list $1 (a
 * bytea built by order_key_list_image()) by the _order_line_totals
 * aggregate: one row, its result.  The key parts are compared as text, as
 * source_order_lines_query()'s join compares them.
 */
char *
source_line_totals_query(const SourceTables *src)
{
	Assert(src->rollup == NULL && src->order_totals == NULL);
	return psprintf("SELECT customer_analytics._order_line_totals(l.order_type::text, l.order_number::text,"
					" l.pretax_subtotal::numeric, $1) FROM %s l", src->lines);
}

/*
 * As source_order_totals_query(), plus each order's sum of line quantities
 * (NULL without lines or with only NULL quantities) and the product codes of
 * its lines as text[] (NULL codes left out; NULL when none is left).  The
 * codes may repeat: callers fold them into sets, and array_agg(DISTINCT ...)
 * would sort every order's lines and rule out hash aggregation.
 */
char *
source_order_items_query(const SourceTables *src, const char *scope)
{
	return order_query(src,
					   ", sum(l.quantity)::numeric,"
					   " array_agg(l.product_code::text) FILTER (WHERE l.product_code IS NOT NULL)",
					   ", o.quantity, o.product_codes",
					   scope);
}

/*
 * _source_trust_problem(source_schema text) returns text: NULL when reading
 * the source's three relations runs no code of a role the current user does
 * not trust, else the first problem.  The rollup's triggers ask this as the
 * rollup's owner, where an error would refuse the ERP's write.
 */
Datum
source_trust_problem(PG_FUNCTION_ARGS)
{
	char	   *schema = text_to_cstring(PG_GETARG_TEXT_PP(0));
	Oid			nspid = get_namespace_oid(schema, true);

	if (!OidIsValid(nspid))
		PG_RETURN_NULL();
	for (size_t i = 0; i < lengthof(source_table_names); i++)
	{
		Oid			relid = lock_source_relation(nspid, source_table_names[i]);
		char	   *problem;

		if (!OidIsValid(relid))
			continue;
		problem = ca_relation_trust_problem(relid, schema, source_table_names[i]);
		if (problem)
			PG_RETURN_TEXT_P(cstring_to_text(problem));
	}
	PG_RETURN_NULL();
}

/* Append the names of a NULL-terminated column list to names. */
static List *
column_names(List *names, const ColumnSpec *columns)
{
	for (; columns->name != NULL; columns++)
		names = lappend(names, (void *) columns->name);
	return names;
}

/*
 * _contract_columns(relation text) returns text[]: the columns the data
 * contract requires of a source relation ('customers', 'sales_orders',
 * 'sales_order_lines' or a sharded source's 'order_totals'), those only
 * customer_features() reads included.  The SQL checks (check_sharded_source)
 * read them here, so that the contract is written once.
 */
Datum
contract_columns(PG_FUNCTION_ARGS)
{
	char	   *relation;
	List	   *names = NIL;
	Datum	   *elems;
	int			n = 0;
	ListCell   *lc;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("relation must not be NULL")));
	relation = text_to_cstring(PG_GETARG_TEXT_PP(0));
	if (strcmp(relation, "customers") == 0)
		names = column_names(names, customer_columns);
	else if (strcmp(relation, "sales_orders") == 0)
		names = column_names(names, order_columns);
	else if (strcmp(relation, "sales_order_lines") == 0)
		names = column_names(column_names(names, line_columns), line_item_columns);
	else if (strcmp(relation, "order_totals") == 0)
		names = column_names(column_names(names, order_totals_columns), order_totals_item_columns);
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("\"%s\" is not a relation of the data contract", relation),
				 errhint("Pass customers, sales_orders, sales_order_lines or order_totals.")));
	elems = palloc(sizeof(Datum) * list_length(names));
	foreach(lc, names)
		elems[n++] = CStringGetTextDatum((const char *) lfirst(lc));
	PG_RETURN_ARRAYTYPE_P(construct_array(elems, n, TEXTOID, -1, false, TYPALIGN_INT));
}

/*
 * _source_schema(source_schema text) returns text: the schema a call with
 * this argument reads (source_schema_for()); NULL when there is none.
 */
Datum
source_schema_of(PG_FUNCTION_ARGS)
{
	const char *schema = source_schema_for(PG_ARGISNULL(0) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(0)));

	if (schema == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(schema));
}

/*
 * _window_has_orders(source_schema text, windows daterange[],
 *					  OUT has_orders boolean[], OUT last_order date):
 * for each window, whether the source holds a confirmed order dated in it,
 * and the date of its last confirmed order (NULL: none).  The source is
 * opened as every reader opens it (source_tables_open(): the trust checks,
 * the data contract, the rollup when readable, a sharded source's
 * order_totals) and its dates are read as the readers read them: checked,
 * so that a malformed date raises the error a refresh raises.  One query
 * gives the distinct order dates; the windows are tested here.
 */
Datum
window_has_orders(PG_FUNCTION_ARGS)
{
	const char *schema_arg = PG_ARGISNULL(0) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(0));
	ArrayType  *windows_arr;
	Datum	   *windows;
	bool	   *window_nulls;
	int			nwindows;
	Oid			range_type;
	TypeCacheEntry *typcache;
	SourceTables *src;
	const char *date_expr;
	const char *relation;
	char	   *query;
	bool	   *has;
	Datum	   *has_datums;
	bool		have_last = false;
	DateADT		last = 0;
	TupleDesc	tupdesc;
	Datum		values[2];
	bool		nulls[2] = {false, false};

	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("windows must not be NULL"),
				 errhint("Pass an array of dateranges, such as ARRAY['[2025-01-01,2026-01-01)']::daterange[].")));
	windows_arr = PG_GETARG_ARRAYTYPE_P(1);
	if (ARR_NDIM(windows_arr) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("windows must be a one-dimensional array")));
	range_type = ARR_ELEMTYPE(windows_arr);
	typcache = lookup_type_cache(range_type, TYPECACHE_RANGE_INFO);
	if (typcache->rngelemtype == NULL || typcache->rngelemtype->type_id != DATEOID)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("windows must be an array of dateranges")));
	deconstruct_array(windows_arr, range_type, typcache->typlen, typcache->typbyval,
					  typcache->typalign, &windows, &window_nulls, &nwindows);
	for (int i = 0; i < nwindows; i++)
		if (window_nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("window %d must not be NULL", i + 1),
					 errhint("Pass a daterange; '(,)' takes every order.")));

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("_window_has_orders() must be called where a record is accepted")));
	tupdesc = BlessTupleDesc(tupdesc);

	/* the trust checks and the contract; ereport(ERROR) on a problem */
	src = source_tables_open(schema_arg);
	if (src->rollup)
	{
		/* one row per confirmed order; an unreadable date raises */
		relation = src->rollup;
		date_expr = "COALESCE(o.order_date, " ROLLUP_ORDER_DATE ")";
		query = psprintf("SELECT %s FROM %s o GROUP BY 1", date_expr, relation);
	}
	else
	{
		SourceTables dates = *src;

		if (src->order_totals)
		{
			dates.order_date_is_date = src->totals_date_is_date;
			relation = src->order_totals;
		}
		else
			relation = src->orders;
		date_expr = source_order_date_expr(&dates, "o");
		query = psprintf("SELECT %s FROM %s o WHERE o.confirmed_code = 'Y' GROUP BY 1",
						 date_expr, relation);
	}

	has = palloc0(sizeof(bool) * Max(nwindows, 1));
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute(query, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "customer_analytics: reading the order dates of \"%s\" failed", src->schema);
	for (uint64 row = 0; row < SPI_processed; row++)
	{
		bool		isnull;
		Datum		d = SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, 1, &isnull);
		DateADT		date;

		CHECK_FOR_INTERRUPTS();
		if (isnull)
			continue;			/* the checked dates are never NULL */
		date = DatumGetDateADT(d);
		if (!have_last || date > last)
			last = date;
		have_last = true;
		for (int i = 0; i < nwindows; i++)
			if (!has[i] &&
				range_contains_elem_internal(typcache, DatumGetRangeTypeP(windows[i]), d))
				has[i] = true;
	}
	SPI_finish();

	has_datums = palloc(sizeof(Datum) * Max(nwindows, 1));
	for (int i = 0; i < nwindows; i++)
		has_datums[i] = BoolGetDatum(has[i]);
	values[0] = PointerGetDatum(construct_array(has_datums, nwindows, BOOLOID, 1, true, TYPALIGN_CHAR));
	values[1] = DateADTGetDatum(last);
	nulls[1] = !have_last;
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}
