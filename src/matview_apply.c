/*
 * matview_apply.c
 *		Replace the rows of some customers in a materialized view, in place,
 *		without blocking its readers.
 *
 * REFRESH MATERIALIZED VIEW CONCURRENTLY computes the whole result, diffs
 * it against the whole view and applies the difference; its cost grows
 * with the view even when a handful of customers changed.  A campaign's
 * delta refresh knows which customers changed and their new rows, so it
 * applies only those, the way CONCURRENTLY applies its diff: under
 * ExclusiveLock (readers go on reading the old rows until commit; other
 * refreshes wait), old rows deleted and new rows inserted with their index
 * entries, all WAL-logged.  PostgreSQL refuses INSERT/DELETE on a
 * materialized view from SQL, so this is done with the table access method
 * and executor's index routines, as logical replication's apply does for
 * tables (execReplication.c).  Only the view's owner may do it, as only the
 * owner may REFRESH.
 */
#include "postgres.h"

#include "access/relation.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/pg_type.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "parser/parse_relation.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

PG_FUNCTION_INFO_V1(matview_apply);
PG_FUNCTION_INFO_V1(matview_lock);

/* The relation's name, schema-qualified and quoted, for SQL and messages. */
static char *
qualified_name(Relation rel)
{
	return quote_qualified_identifier(get_namespace_name(RelationGetNamespace(rel)),
									  RelationGetRelationName(rel));
}

/* Error unless desc (the rows) has exactly the view's column types. */
static void
check_row_type(Relation rel, TupleDesc desc)
{
	TupleDesc	view = RelationGetDescr(rel);
	bool		same = view->natts == desc->natts;

	for (int i = 0; same && i < view->natts; i++)
		same = TupleDescAttr(view, i)->atttypid == TupleDescAttr(desc, i)->atttypid &&
			!TupleDescAttr(view, i)->attisdropped;
	if (!same)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("the new rows do not have the columns of materialized view %s", qualified_name(rel)),
				 errhint("The view was changed by hand; rebuild it with a full refresh.")));
}

/*
 * Delete the view's rows whose customer_code is one of keys (found through
 * the view's index by an ordinary query), as of the active snapshot.
 * Returns how many.  The keys are given as an array the planner cannot see
 * the size of (an InitPlan): it then probes the index for each key, never
 * reading the whole view with a hashed filter, whatever its estimates.
 */
static uint64
delete_key_rows(Relation rel, Datum keys)
{
	Oid			argtypes[1] = {TEXTARRAYOID};
	Datum		args[1] = {keys};
	char	   *sql = psprintf("SELECT m.ctid FROM %s m WHERE m.customer_code = ANY (ARRAY(SELECT pg_catalog.unnest($1)))",
							   qualified_name(rel));
	ItemPointerData *tids;
	uint64		n;

	if (SPI_execute_with_args(sql, 1, argtypes, args, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not find the rows to replace in %s", qualified_name(rel));
	n = SPI_processed;
	tids = palloc(sizeof(ItemPointerData) * Max(n, 1));
	for (uint64 i = 0; i < n; i++)
	{
		bool		isnull;

		tids[i] = *(ItemPointer) DatumGetPointer(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));
	}
	SPI_freetuptable(SPI_tuptable);
	for (uint64 i = 0; i < n; i++)
	{
		CHECK_FOR_INTERRUPTS();
		simple_table_tuple_delete(rel, &tids[i], GetActiveSnapshot());
	}
	return n;
}

/* Insert the rows of SPI_tuptable into the view with their index entries. */
static uint64
insert_rows(Relation rel)
{
	EState	   *estate = CreateExecutorState();
	ResultRelInfo *rri = makeNode(ResultRelInfo);
	TupleTableSlot *slot = MakeSingleTupleTableSlot(RelationGetDescr(rel), &TTSOpsHeapTuple);
	CommandId	cid = GetCurrentCommandId(true);
	uint64		n = SPI_processed;

	InitResultRelInfo(rri, rel, 1, NULL, 0);
	ExecOpenIndices(rri, false);
	for (uint64 i = 0; i < n; i++)
	{
		List	   *recheck;

		CHECK_FOR_INTERRUPTS();
		ExecStoreHeapTuple(SPI_copytuple(SPI_tuptable->vals[i]), slot, true);
		table_tuple_insert(rel, slot, cid, 0, NULL);
		recheck = ExecInsertIndexTuples(rri, slot, estate, false, false, NULL, NIL);
		list_free(recheck);
		ExecClearTuple(slot);
		ResetPerTupleExprContext(estate);
	}
	ExecCloseIndices(rri);
	ExecDropSingleTupleTableSlot(slot);
	FreeExecutorState(estate);
	return n;
}

/*
 * Open the materialized view relid with ExclusiveLock (what REFRESH ...
 * CONCURRENTLY takes: readers go on, writers and refreshes wait), as its
 * owner.
 */
static Relation
open_owned_matview(Oid relid)
{
	Relation	rel = try_relation_open(relid, ExclusiveLock);

	if (rel == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid),
				 errhint("Pass one of the campaign's materialized views.")));
	if (rel->rd_rel->relkind != RELKIND_MATVIEW)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a materialized view", RelationGetRelationName(rel)),
				 errhint("Only a campaign's materialized views are updated in place.")));
	if (!pg_class_ownercheck(relid, GetUserId()))
		aclcheck_error(ACLCHECK_NOT_OWNER, OBJECT_MATVIEW, RelationGetRelationName(rel));
	return rel;
}

/*
 * _matview_lock(matview regclass) returns void: take the lock
 * _matview_apply() will hold, until the end of the transaction (LOCK TABLE
 * does not take materialized views).
 */
Datum
matview_lock(PG_FUNCTION_ARGS)
{
	table_close(open_owned_matview(PG_GETARG_OID(0)), NoLock);
	PG_RETURN_VOID();
}

/*
 * _matview_apply(matview regclass, keys text[], rows_sql text) returns bigint
 *
 * Deletes the rows of matview whose customer_code is in keys and inserts
 * the rows rows_sql returns (which must be rows of those keys, with the
 * view's column types), as of the active snapshot.  Returns the number of
 * rows inserted.  matview must be a populated materialized view with a
 * customer_code column, owned by the current user.
 */
Datum
matview_apply(PG_FUNCTION_ARGS)
{
	Oid			relid;
	Relation	rel;
	char	   *rows_sql;
	uint64		inserted;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("matview, keys and rows_sql must not be NULL"),
				 errhint("Pass '{}' as keys when no customer changed.")));
	relid = PG_GETARG_OID(0);
	rows_sql = text_to_cstring(PG_GETARG_TEXT_PP(2));

	rel = open_owned_matview(relid);
	if (!RelationIsPopulated(rel))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("materialized view %s has not been populated", qualified_name(rel)),
				 errhint("Refresh it in full first.")));
	if (attnameAttNum(rel, "customer_code", false) == InvalidAttrNumber)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("materialized view %s has no customer_code column", qualified_name(rel)),
				 errhint("Only a campaign's materialized views are updated in place.")));

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	delete_key_rows(rel, PG_GETARG_DATUM(1));
	if (SPI_execute(rows_sql, true, 0) != SPI_OK_SELECT)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("rows_sql must be a query"),
				 errhint("Pass a SELECT returning the new rows.")));
	check_row_type(rel, SPI_tuptable->tupdesc);
	inserted = insert_rows(rel);
	SPI_finish();

	/* the statements after this one see the new rows */
	CommandCounterIncrement();
	table_close(rel, NoLock);
	PG_RETURN_INT64((int64) inserted);
}
