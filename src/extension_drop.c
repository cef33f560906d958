/*
 * extension_drop.c
 *		DROP EXTENSION customer_analytics takes its pg_cron jobs with it.
 *
 * Scheduled refreshes are rows in pg_cron's cron.job, which the extension
 * does not own: without this, dropping the extension would leave jobs that
 * fail every time they run.  An event trigger on ddl_command_start sees the
 * DROP before anything is dropped (at sql_drop the extension's own event
 * trigger is already gone), and unschedules its jobs (named
 * 'customer_analytics refresh <kind> <name>' and running that definition's
 * refresh) in the same transaction, so a DROP that fails or is rolled back
 * keeps them.
 *
 * The same goes for the tables the extension created outside its script:
 * each rollup's tables (copies of order data in the extension's schema,
 * which DROP EXTENSION would otherwise leave behind) and each campaign's
 * per-customer state tables next to its views.  Dispatcher jobs live in
 * pg_cron's database, out of reach from here: they become no-ops, and a
 * NOTICE names them for the DBA to unschedule.
 */
#include "postgres.h"

#include "commands/event_trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "nodes/parsenodes.h"
#include "nodes/value.h"

PG_FUNCTION_INFO_V1(extension_drop_watch);

/*
 * Run SELECT proc (no arguments) when the extension's script defines it:
 * an event trigger of an older version's script may see a newer library.
 */
static void
call_if_defined(const char *proc)
{
	char	   *check = psprintf("SELECT 1 WHERE pg_catalog.to_regprocedure('%s') IS NOT NULL", proc);
	char	   *call = psprintf("SELECT %s", proc);

	if (SPI_execute(check, true, 1) == SPI_OK_SELECT && SPI_processed == 1 &&
		SPI_execute(call, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "%s failed", call);
}

/* Does this DROP name the extension customer_analytics? */
static bool
drops_this_extension(Node *parsetree)
{
	DropStmt   *stmt = (DropStmt *) parsetree;
	ListCell   *lc;

	if (parsetree == NULL || !IsA(parsetree, DropStmt) || stmt->removeType != OBJECT_EXTENSION)
		return false;
	foreach(lc, stmt->objects)
	{
		Node	   *object = (Node *) lfirst(lc);

		if (IsA(object, String) && strcmp(strVal(object), "customer_analytics") == 0)
			return true;
	}
	return false;
}

/*
 * customer_analytics._drop_watch() RETURNS event_trigger, on
 * ddl_command_start WHEN TAG IN ('DROP EXTENSION').
 */
Datum
extension_drop_watch(PG_FUNCTION_ARGS)
{
	EventTriggerData *trigdata;

	if (!CALLED_AS_EVENT_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("customer_analytics._drop_watch() must be called as an event trigger")));
	trigdata = (EventTriggerData *) fcinfo->context;
	if (!drops_this_extension(trigdata->parsetree))
		PG_RETURN_NULL();

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	/* pg_cron may be absent, or its jobs table unreadable to this role */
	if (SPI_execute("SELECT 1 WHERE CASE WHEN pg_catalog.to_regclass('cron.job') IS NULL THEN false"
					" ELSE pg_catalog.has_table_privilege('cron.job', 'SELECT') END", true, 1) == SPI_OK_SELECT &&
		SPI_processed == 1)
	{
		/*
		 * Only the extension's own jobs: running a definition's refresh (the
		 * 1.5 procedure, or the function before 1.5) under the name the
		 * extension gives it (_cron_job_name(): names are ASCII, so 54
		 * characters are 54 bytes), not any job a role gave a name like
		 * theirs.
		 */
		if (SPI_execute("SELECT count(cron.unschedule(j.jobid)) FROM cron.job j,"
						" LATERAL pg_catalog.regexp_match(j.command,"
						"   '^(?:CALL customer_analytics\\.run_scheduled_refresh\\(''|SELECT customer_analytics\\.refresh_)"
						"(campaign|segmentation)(?:'', ''|\\('')([a-z][a-z0-9_]*)''\\)$') m,"
						" LATERAL (SELECT 'customer_analytics refresh ' || m[1] || ' ' || m[2] AS n) f"
						" WHERE m IS NOT NULL"
						"  AND j.command IN (pg_catalog.format('CALL customer_analytics.run_scheduled_refresh(%L, %L)', m[1], m[2]),"
						"                    pg_catalog.format('SELECT customer_analytics.refresh_%s(%L)', m[1], m[2]))"
						/* the name the extension gives, or the one pg_cron cut to 63 bytes */
						"  AND j.jobname IN (f.n, pg_catalog.left(f.n, 63),"
						"                    pg_catalog.left(f.n, 54) || ' ' || pg_catalog.left(pg_catalog.md5(f.n), 8))",
						false, 1) != SPI_OK_SELECT)
			elog(ERROR, "unscheduling customer_analytics's pg_cron jobs failed");
		if (SPI_processed == 1)
		{
			bool		isnull;
			int64		n = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));

			if (n > 0)
				ereport(NOTICE,
						(errmsg("customer_analytics: %lld scheduled refresh job(s) removed from pg_cron with the extension",
								(long long) n)));
		}
	}
	call_if_defined("customer_analytics._drop_extension_tables()");
	call_if_defined("customer_analytics._dispatcher_drop_notice()");
	SPI_finish();
	PG_RETURN_NULL();
}
