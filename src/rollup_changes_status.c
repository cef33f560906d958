/*
 * rollup_changes_status.c
 *		On a shard: the status row of a source's rollup that a coordinator's
 *		refresh reads first, and whether the current role may read the
 *		rollup's recorded changes, without planning a query per rule.
 *
 * A coordinator's refresh opens a fresh backend on every shard and reads its
 * rollup_changes view (create_rollup_changes_view), whose status row was an
 * SQL function asking customer_analytics._rollup_changes_problem()
 * (PL/pgSQL over _rollup_for_reading() and _rollup_trigger_problem():
 * about 3.5 CPU-ms to compile and plan in a fresh backend, most of a
 * shard's work for a small change).  _rollup_changes_intact() answers the
 * same question for the common case, every rule met, from the catalog
 * caches: the rollup's row, its state, its six triggers on every watched
 * relation (the source tables and all their partitions) enabled as the
 * rollup needs them, the SELECT privileges and no row-level security.  It
 * answers false whenever any rule is not plainly met (a missing table
 * included); the callers then ask _rollup_changes_problem(), which stays
 * the one statement of the rules and says why.  So a true here always
 * means that function returns NULL, and a false costs only the time it
 * saved.  _rollup_changes_status() builds the status row with one
 * statement (the rollup's row, the campaigns on the source, the snapshot)
 * and that test.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/xlog.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_trigger.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/rls.h"

#include "customer_analytics.h"

PG_FUNCTION_INFO_V1(rollup_changes_intact);
PG_FUNCTION_INFO_V1(rollup_changes_status);
PG_FUNCTION_INFO_V1(rollup_changes_readable);

/* The rollup's triggers on every watched relation (_rollup_trigger_problem). */
static const char *const rollup_triggers[] = {
	"customer_analytics_rollup_insert", "customer_analytics_rollup_update",
	"customer_analytics_rollup_delete", "customer_analytics_rollup_truncate",
	"customer_analytics_rollup_apply", "customer_analytics_rollup_apply_flush"
};

/* The source tables whose writes the rollup follows. */
static const char *const watched_tables[] = {"customers", "sales_orders", "sales_order_lines"};

/*
 * Whether relation relid has trigger name enabled as the rollup needs it:
 * the apply worker's (customer_analytics_rollup_apply*) in replica sessions
 * (REPLICA or ALWAYS), the others in every session (ALWAYS).  One lookup
 * in pg_trigger's (tgrelid, tgname) index, as _rollup_trigger_problem's
 * join reads it, without locking the relation.
 */
static bool
trigger_as_needed(Relation tgrel, Oid relid, const char *name)
{
	ScanKeyData key[2];
	SysScanDesc scan;
	HeapTuple	tup;
	bool		ok = false;

	ScanKeyInit(&key[0], Anum_pg_trigger_tgrelid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(relid));
	ScanKeyInit(&key[1], Anum_pg_trigger_tgname, BTEqualStrategyNumber, F_NAMEEQ,
				CStringGetDatum(name));
	scan = systable_beginscan(tgrel, TriggerRelidNameIndexId, true, NULL, 2, key);
	tup = systable_getnext(scan);
	if (HeapTupleIsValid(tup))
	{
		char		enabled = ((Form_pg_trigger) GETSTRUCT(tup))->tgenabled;

		if (strncmp(name, "customer_analytics_rollup_apply", strlen("customer_analytics_rollup_apply")) == 0)
			ok = (enabled == TRIGGER_FIRES_ON_REPLICA || enabled == TRIGGER_FIRES_ALWAYS);
		else
			ok = (enabled == TRIGGER_FIRES_ALWAYS);
	}
	systable_endscan(scan);
	return ok;
}

/*
 * Whether every relation the rollup of schema nspid watches (each source
 * table and, when partitioned, every partition at every depth, as
 * _rollup_watched_relations lists them) has the six triggers as needed, the
 * current role may SELECT from each source table and no row-level security
 * applies to it.  A missing source table is not plainly met.
 */
static bool
sources_intact(Oid nspid)
{
	Relation	tgrel = table_open(TriggerRelationId, AccessShareLock);
	bool		ok = true;

	for (size_t t = 0; ok && t < lengthof(watched_tables); t++)
	{
		Oid			relid = get_relname_relid(watched_tables[t], nspid);
		List	   *rels;
		ListCell   *lc;

		if (!OidIsValid(relid) ||
			pg_class_aclcheck(relid, GetUserId(), ACL_SELECT) != ACLCHECK_OK ||
			check_enable_rls(relid, InvalidOid, true) == RLS_ENABLED)
		{
			ok = false;
			break;
		}
		/* pg_partition_tree's set: the tree of a partitioned table, locked as it locks it */
		if (get_rel_relkind(relid) == RELKIND_PARTITIONED_TABLE)
			rels = find_all_inheritors(relid, AccessShareLock, NULL);
		else
			rels = list_make1_oid(relid);
		foreach(lc, rels)
		{
			CHECK_FOR_INTERRUPTS();
			for (size_t n = 0; ok && n < lengthof(rollup_triggers); n++)
				ok = trigger_as_needed(tgrel, lfirst_oid(lc), rollup_triggers[n]);
			if (!ok)
				break;
		}
		list_free(rels);
	}
	table_close(tgrel, AccessShareLock);
	return ok;
}

/*
 * Whether the current role may SELECT from customer_analytics.<prefix><id>
 * (the rollup's table or its table of changes); false when it is missing.
 */
static bool
rollup_relation_readable(Oid extnsp, const char *prefix, int32 id)
{
	char	   *name = psprintf("%s%d", prefix, id);
	Oid			relid = get_relname_relid(name, extnsp);

	return OidIsValid(relid) && pg_class_aclcheck(relid, GetUserId(), ACL_SELECT) == ACLCHECK_OK;
}

/*
 * Whether the rules of a rollup (id, current: its row's id and whether its
 * state is 'current') of source schema `schema` that concern the catalogs
 * are plainly met for the current role: see sources_intact().
 */
static bool
rollup_rules_met(const char *schema, int32 id, bool current)
{
	Oid			extnsp = get_namespace_oid("customer_analytics", true);
	Oid			srcnsp;

	if (!current || !OidIsValid(extnsp) || schema == NULL)
		return false;
	srcnsp = get_namespace_oid(schema, true);
	return OidIsValid(srcnsp) &&
		rollup_relation_readable(extnsp, "order_rollup_", id) &&
		rollup_relation_readable(extnsp, "rollup_dirty_", id) &&
		sources_intact(srcnsp);
}

/*
 * The id of the rollup of source schema `schema` (a text Datum) and whether
 * its state is 'current', read as _rollup_for_reading reads its row
 * (customer_analytics.rollups as the current role: its policies apply);
 * false unless exactly one row.  SPI must be connected.
 */
static bool
read_rollup_row(Datum schema, int32 *id, bool *current)
{
	Oid			argtypes[1] = {TEXTOID};
	Datum		args[1] = {schema};
	bool		isnull1,
				isnull2;
	Datum		d1,
				d2;

	*id = 0;
	*current = false;
	if (SPI_execute_with_args("SELECT x.id, x.state OPERATOR(pg_catalog.=) 'current' FROM customer_analytics.rollups x"
							  " WHERE x.source_schema OPERATOR(pg_catalog.=) $1",
							  1, argtypes, args, NULL, true, 2) != SPI_OK_SELECT)
		elog(ERROR, "reading customer_analytics.rollups failed");
	if (SPI_processed != 1)
		return false;
	d1 = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull1);
	d2 = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull2);
	if (isnull1 || isnull2)
		return false;
	*id = DatumGetInt32(d1);
	*current = DatumGetBool(d2);
	return true;
}

/*
 * _rollup_changes_intact(source_schema text) returns boolean: true when
 * every rule of _rollup_changes_problem(source_schema) is plainly met (it
 * would return NULL), false when one may not be.
 */
Datum
rollup_changes_intact(PG_FUNCTION_ARGS)
{
	text	   *schema = PG_GETARG_TEXT_PP(0);
	int32		id;
	bool		current;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	read_rollup_row(PointerGetDatum(schema), &id, &current);
	SPI_finish();
	PG_RETURN_BOOL(rollup_rules_met(text_to_cstring(schema), id, current));
}

/*
 * _rollup_changes_readable(source_schema text, dirty regclass) returns
 * boolean: true when the current role reads the recorded changes of
 * source_schema's rollup (_rollup_changes_problem() would return NULL:
 * asked only when _rollup_changes_intact's test is not sure) and they are
 * kept in table dirty; NULL when the rollup's table of changes is missing.
 * The view of create_rollup_changes_view tests it once per query, before
 * its scan.
 */
Datum
rollup_changes_readable(PG_FUNCTION_ARGS)
{
	text	   *schema = PG_GETARG_TEXT_PP(0);
	Oid			dirty = PG_GETARG_OID(1);
	Oid			argtypes[1] = {TEXTOID};
	Datum		args[1] = {PointerGetDatum(schema)};
	Oid			extnsp = get_namespace_oid("customer_analytics", true);
	int32		id;
	bool		current;
	bool		found;
	bool		ok;
	Oid			relid;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	found = read_rollup_row(args[0], &id, &current);
	ok = rollup_rules_met(text_to_cstring(schema), id, current);
	if (!ok)
	{
		bool		isnull;

		/* the rules' one statement */
		if (SPI_execute_with_args("SELECT customer_analytics._rollup_changes_problem($1) IS NULL",
								  1, argtypes, args, NULL, true, 1) != SPI_OK_SELECT ||
			SPI_processed != 1)
			elog(ERROR, "customer_analytics._rollup_changes_problem() returned no row");
		ok = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	}
	SPI_finish();
	if (!ok)
		PG_RETURN_BOOL(false);
	relid = (found && OidIsValid(extnsp)) ?
		get_relname_relid(psprintf("rollup_dirty_%d", id), extnsp) : InvalidOid;
	if (!OidIsValid(relid))
		PG_RETURN_NULL();
	PG_RETURN_BOOL(relid == dirty);
}

/* One status row's values read from the rollup's row, before SPI_finish. */
typedef struct StatusRow
{
	bool		has_rollup;		/* a row of customer_analytics.rollups */
	int64		generation;
	int32		id;
	bool		current;		/* its state is 'current' */
	int64		campaigns;
	Datum		snapshot;		/* pg_snapshot, copied out of SPI */
} StatusRow;

/*
 * _rollup_changes_status(source_schema text) returns table(customer_code,
 * xid, generation, rollup_state, snapshot, campaigns, system_identifier,
 * order_date, total, quantity, sign): the status row of
 * rollup_order_changes() (customer_code and xid NULL; one per row of
 * customer_analytics.rollups for the source, as the SQL function it
 * replaces gave, or one with a NULL generation when there is none): the
 * rollup's generation, 'current' or why its changes cannot be followed
 * (_rollup_changes_problem, asked only when _rollup_changes_intact's test
 * is not sure), this transaction's snapshot, how many campaigns of this
 * server read the source, the cluster's system identifier.  The source
 * schema is the argument, else the setting (as _source_schema()).  Runs
 * with search_path pg_catalog, pg_temp (its SET clause); its statements
 * qualify every name anyway.
 */
Datum
rollup_changes_status(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	const char *schema = PG_ARGISNULL(0) ? ca_source_schema : text_to_cstring(PG_GETARG_TEXT_PP(0));
	Oid			argtypes[1] = {TEXTOID};
	Datum		args[1];
	char		argnulls[1];
	MemoryContext caller = CurrentMemoryContext;
	StatusRow  *rows;
	uint64		nrows;
	int64		sysid = (int64) GetSystemIdentifier();

	InitMaterializedSRF(fcinfo, 0);
	args[0] = schema ? CStringGetTextDatum(schema) : (Datum) 0;
	argnulls[0] = schema ? ' ' : 'n';
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_with_args("SELECT r.id IS NOT NULL, r.generation, r.id, r.state OPERATOR(pg_catalog.=) 'current',"
							  " (SELECT pg_catalog.count(*) FROM customer_analytics.campaigns c"
							  "   WHERE c.source_schema OPERATOR(pg_catalog.=) $1),"
							  " pg_catalog.pg_current_snapshot()"
							  " FROM (SELECT) s LEFT JOIN customer_analytics.rollups r"
							  "   ON r.source_schema OPERATOR(pg_catalog.=) $1",
							  1, argtypes, args, argnulls, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "reading customer_analytics.rollups failed");
	nrows = SPI_processed;
	rows = MemoryContextAllocZero(caller, sizeof(StatusRow) * Max(nrows, 1));
	for (uint64 i = 0; i < nrows; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		Datum		d;

		rows[i].has_rollup = DatumGetBool(SPI_getbinval(tup, desc, 1, &isnull));
		d = SPI_getbinval(tup, desc, 2, &isnull);
		rows[i].generation = isnull ? -1 : DatumGetInt64(d);
		if (isnull)
			rows[i].has_rollup = false;
		d = SPI_getbinval(tup, desc, 3, &isnull);
		rows[i].id = isnull ? 0 : DatumGetInt32(d);
		d = SPI_getbinval(tup, desc, 4, &isnull);
		rows[i].current = !isnull && DatumGetBool(d);
		rows[i].campaigns = DatumGetInt64(SPI_getbinval(tup, desc, 5, &isnull));
		d = SPI_getbinval(tup, desc, 6, &isnull);
		rows[i].snapshot = SPI_datumTransfer(d, false, -1);
	}

	for (uint64 i = 0; i < nrows; i++)
	{
		Datum		values[11];
		bool		nulls[11];
		char	   *state = NULL;

		CHECK_FOR_INTERRUPTS();
		if (!rollup_rules_met(schema, rows[i].id, rows[i].current))
		{
			/* the rules' one statement says why (or that nothing is wrong) */
			if (SPI_execute_with_args("SELECT customer_analytics._rollup_changes_problem($1)",
									  1, argtypes, args, argnulls, true, 1) != SPI_OK_SELECT ||
				SPI_processed != 1)
				elog(ERROR, "customer_analytics._rollup_changes_problem() returned no row");
			state = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
			state = state ? MemoryContextStrdup(caller, state) : NULL;
		}
		memset(nulls, true, sizeof(nulls));
		if (rows[i].has_rollup)
		{
			values[2] = Int64GetDatum(rows[i].generation);
			nulls[2] = false;
		}
		values[3] = CStringGetTextDatum(state ? state : "current");
		nulls[3] = false;
		values[4] = rows[i].snapshot;
		nulls[4] = false;
		values[5] = Int64GetDatum(rows[i].campaigns);
		nulls[5] = false;
		values[6] = Int64GetDatum(sysid);
		nulls[6] = false;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	SPI_finish();
	return (Datum) 0;
}
