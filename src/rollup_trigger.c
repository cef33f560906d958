/*
 * rollup_trigger.c
 *		The statement-level trigger that keeps an order rollup current, run
 *		as the rollup's owner.
 *
 * The ERP's writers must never be refused and must never make the rollup
 * wrong.  If the trigger ran as the writer, a writer would need privileges on
 * the extension's schema and tables (and without them its write fails), and
 * a writer whose row-level security hides some orders would recompute them
 * as missing.  So, as REFRESH MATERIALIZED VIEW does for a view's owner, the
 * trigger switches to the rollup table's owner under
 * SECURITY_RESTRICTED_OPERATION with a pinned search_path, and runs the
 * statements customer_analytics._rollup_sync_sql() writes for this write.
 * The writer's rows reach those statements only as the transition tables
 * (new_rows, old_rows) registered with SPI: data, never SQL text.  Which
 * statements to run (and whether the rollup's owner can read every source
 * row without running untrusted code) is decided in SQL, next to the rest of
 * the rollup.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

PG_FUNCTION_INFO_V1(rollup_sync_trigger);

/* The kind of write that fired the trigger, as _rollup_sync_sql() names it. */
static const char *
trigger_operation(TriggerEvent event)
{
	if (TRIGGER_FIRED_BY_INSERT(event))
		return "INSERT";
	if (TRIGGER_FIRED_BY_UPDATE(event))
		return "UPDATE";
	if (TRIGGER_FIRED_BY_DELETE(event))
		return "DELETE";
	return "TRUNCATE";
}

/* Owner of customer_analytics.order_rollup_<id>, or InvalidOid when it is gone. */
static Oid
rollup_owner(int32 rollup_id)
{
	/* the extension is not relocatable: its schema is always this one */
	Oid			nspid = get_namespace_oid("customer_analytics", true);
	Oid			relid;
	HeapTuple	tuple;
	Oid			owner;

	if (!OidIsValid(nspid))
		return InvalidOid;
	relid = get_relname_relid(psprintf("order_rollup_%d", rollup_id), nspid);
	if (!OidIsValid(relid))
		return InvalidOid;
	tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	if (!HeapTupleIsValid(tuple))
		return InvalidOid;
	owner = ((Form_pg_class) GETSTRUCT(tuple))->relowner;
	ReleaseSysCache(tuple);
	return owner;
}

/*
 * Run one statement of the rollup's upkeep.  Under READ COMMITTED each
 * statement takes a new snapshot, which is what lets the recomputation see
 * a transaction it waited for.  A REPEATABLE READ or SERIALIZABLE writer's
 * own snapshot is older than its statement: the upkeep would not see orders
 * committed since it began (and PostgreSQL would report their key rows as a
 * serialization failure), so it runs on the latest snapshot, as the
 * referential-integrity triggers do.  Only writers that really overlap on
 * one order then get the serialization failure their isolation level
 * promises, and retry.
 */
static void
run_statement(const char *sql)
{
	int			rc;

	if (!IsolationUsesXactSnapshot())
		rc = SPI_execute(sql, false, 0);
	else
	{
		SPIPlanPtr	plan = SPI_prepare(sql, 0, NULL);

		if (plan == NULL)
			elog(ERROR, "SPI_prepare failed for rollup statement: %s", SPI_result_code_string(SPI_result));
		rc = SPI_execute_snapshot(plan, NULL, NULL, GetLatestSnapshot(), InvalidSnapshot, false, true, 0);
		SPI_freeplan(plan);
	}
	if (rc < 0)
		elog(ERROR, "rollup statement failed: %s", SPI_result_code_string(rc));
}

/*
 * Ask _rollup_sync_sql(id, op, table) for the statements, and run them in
 * this SPI connection, where the transition tables are visible.
 */
static void
run_sync_statements(TriggerData *trigdata, int32 rollup_id)
{
	Oid			argtypes[3] = {INT4OID, TEXTOID, TEXTOID};
	Datum		args[3];
	bool		isnull;
	Datum		value;
	ArrayType  *statements;
	Datum	   *elems;
	bool	   *nulls;
	int			n;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_register_trigger_data(trigdata) != SPI_OK_TD_REGISTER)
		elog(ERROR, "SPI_register_trigger_data failed");

	args[0] = Int32GetDatum(rollup_id);
	args[1] = CStringGetTextDatum(trigger_operation(trigdata->tg_event));
	args[2] = CStringGetTextDatum(RelationGetRelationName(trigdata->tg_relation));
	if (SPI_execute_with_args("SELECT customer_analytics._rollup_sync_sql($1, $2, $3)",
							  3, argtypes, args, NULL, false, 1) != SPI_OK_SELECT ||
		SPI_processed != 1)
		elog(ERROR, "customer_analytics._rollup_sync_sql() returned no row");
	value = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	if (!isnull)
	{
		statements = DatumGetArrayTypeP(value);
		deconstruct_array(statements, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
		for (int i = 0; i < n; i++)
		{
			if (nulls[i])
				continue;
			CHECK_FOR_INTERRUPTS();
			run_statement(TextDatumGetCString(elems[i]));
		}
	}
	SPI_finish();
}

/*
 * customer_analytics._rollup_sync() RETURNS trigger, argument: the rollup's
 * id.  AFTER ... FOR EACH STATEMENT on the three source tables.
 */
Datum
rollup_sync_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	int32		rollup_id;
	Oid			owner;
	Oid			save_userid;
	int			save_sec_context;
	int			save_nestlevel;

	if (!CALLED_AS_TRIGGER(fcinfo) ||
		!TRIGGER_FIRED_AFTER(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_STATEMENT(trigdata->tg_event) ||
		trigdata->tg_trigger->tgnargs != 1)
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("customer_analytics._rollup_sync() must be an AFTER ... FOR EACH STATEMENT trigger with the rollup's id"),
				 errhint("Let customer_analytics.rebuild_rollup() create the rollup's triggers.")));
	rollup_id = pg_strtoint32(trigdata->tg_trigger->tgargs[0]);

	/* a rollup dropped while its triggers stayed: nothing to keep */
	owner = rollup_owner(rollup_id);
	if (!OidIsValid(owner))
		return PointerGetDatum(NULL);

	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(owner, save_sec_context | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	save_nestlevel = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);

	run_sync_statements(trigdata, rollup_id);

	/* an error leaves through the transaction's abort, which restores both */
	AtEOXact_GUC(false, save_nestlevel);
	SetUserIdAndSecContext(save_userid, save_sec_context);
	return PointerGetDatum(NULL);
}
