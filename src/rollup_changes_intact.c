/*
 * rollup_changes_intact.c
 *		On a shard: whether the current role may read the recorded changes of
 *		a source's rollup, checked without planning a query per rule.
 *
 * A coordinator's refresh opens a fresh backend on every shard and reads its
 * rollup_changes view, whose status row asks
 * customer_analytics._rollup_changes_problem() (PL/pgSQL over
 * _rollup_for_reading() and _rollup_trigger_problem(): about 3.5 CPU-ms
 * to compile and plan in a fresh backend, most of a shard's work for a
 * small change).  _rollup_changes_intact() answers the same question for
 * the common case, every rule met, from the catalog caches: the rollup's
 * row, its state, its six triggers on every watched relation (the source
 * tables and all their partitions) enabled as the rollup needs them, the
 * SELECT privileges and no row-level security.  It answers false whenever
 * any rule is not plainly met (a missing table included); the callers then
 * ask _rollup_changes_problem(), which stays the one statement of the
 * rules and says why.  So a true here always means that function returns
 * NULL, and a false costs only the time it saved.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_trigger.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/rls.h"

PG_FUNCTION_INFO_V1(rollup_changes_intact);

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
 * _rollup_changes_intact(source_schema text) returns boolean: true when
 * every rule of _rollup_changes_problem(source_schema) is plainly met (it
 * would return NULL), false when one may not be.  The rollup's row is read
 * as _rollup_for_reading reads it (customer_analytics.rollups, as the
 * current role: its policies apply).
 */
Datum
rollup_changes_intact(PG_FUNCTION_ARGS)
{
	text	   *schema = PG_GETARG_TEXT_PP(0);
	Oid			argtypes[1] = {TEXTOID};
	Datum		args[1];
	Oid			extnsp = get_namespace_oid("customer_analytics", true);
	Oid			srcnsp;
	int32		id = 0;
	bool		current = false;
	bool		ok;

	if (!OidIsValid(extnsp))
		PG_RETURN_BOOL(false);
	args[0] = PointerGetDatum(schema);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_with_args("SELECT x.id, x.state = 'current' FROM customer_analytics.rollups x"
							  " WHERE x.source_schema = $1",
							  1, argtypes, args, NULL, true, 2) != SPI_OK_SELECT)
		elog(ERROR, "reading customer_analytics.rollups failed");
	if (SPI_processed == 1)
	{
		bool		isnull1,
					isnull2;
		Datum		d1 = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull1);
		Datum		d2 = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull2);

		if (!isnull1 && !isnull2)
		{
			id = DatumGetInt32(d1);
			current = DatumGetBool(d2);
		}
	}
	SPI_finish();
	if (!current)
		PG_RETURN_BOOL(false);

	srcnsp = get_namespace_oid(text_to_cstring(schema), true);
	ok = OidIsValid(srcnsp) &&
		rollup_relation_readable(extnsp, "order_rollup_", id) &&
		rollup_relation_readable(extnsp, "rollup_dirty_", id) &&
		sources_intact(srcnsp);
	PG_RETURN_BOOL(ok);
}
