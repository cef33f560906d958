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
 *
 * Messages say what happened: a DROP without CASCADE that would fail on
 * objects depending on the extension (the campaigns' and segmentations'
 * views, the rollups' triggers, users' objects) is refused here, naming
 * them, in the transaction's state from before (the error undoes the
 * unscheduling and the tables' drop); and the NOTICEs counting the removed
 * jobs and tables come when the transaction commits, never for a DROP that
 * fails or is rolled back.
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/event_trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "nodes/parsenodes.h"
#include "nodes/value.h"

PG_FUNCTION_INFO_V1(extension_drop_watch);

/*
 * What a DROP of this transaction removed (pg_cron jobs, the rollup and
 * state tables), reported at its commit; forgotten when the (sub)transaction
 * of the DROP aborts.
 */
static int64 jobs_removed = 0;
static int64 tables_dropped = 0;
static SubTransactionId removed_subid = InvalidSubTransactionId;
static bool callbacks_registered = false;

static void
drop_xact_callback(XactEvent event, pg_attribute_unused() void *arg)
{
	int64		jobs = jobs_removed;
	int64		tables = tables_dropped;

	if (event == XACT_EVENT_PRE_PREPARE)
		return;
	jobs_removed = tables_dropped = 0;
	if (event != XACT_EVENT_PRE_COMMIT && event != XACT_EVENT_PARALLEL_PRE_COMMIT)
		return;					/* aborted, or committed without a DROP */
	if (jobs > 0)
		ereport(NOTICE,
				(errmsg("customer_analytics: %lld scheduled refresh job(s) removed from pg_cron with the extension",
						(long long) jobs)));
	if (tables > 0)
		ereport(NOTICE,
				(errmsg("customer_analytics: %lld rollup and state table(s) dropped with the extension",
						(long long) tables)));
}

static void
drop_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
					  SubTransactionId parentSubid, pg_attribute_unused() void *arg)
{
	if (mySubid != removed_subid)
		return;
	if (event == SUBXACT_EVENT_ABORT_SUB)
		jobs_removed = tables_dropped = 0;
	else if (event == SUBXACT_EVENT_COMMIT_SUB)
		removed_subid = parentSubid;
}

static void
report_at_commit(int64 jobs, int64 tables)
{
	if (!callbacks_registered)
	{
		RegisterXactCallback(drop_xact_callback, NULL);
		RegisterSubXactCallback(drop_subxact_callback, NULL);
		callbacks_registered = true;
	}
	jobs_removed += jobs;
	tables_dropped += tables;
	removed_subid = GetCurrentSubTransactionId();
}

/*
 * A DROP without CASCADE fails on every object outside the extension that
 * depends on one of its objects: the campaigns' and segmentations' views,
 * the rollups' triggers, users' objects.  Refuse it here, naming them, the
 * way PostgreSQL would after the work is done: what the extension drops is
 * its members and what hangs on them (automatic and internal dependencies);
 * an object depending on that in the normal way stops the DROP.
 */
static void
refuse_dependents(void)
{
	bool		isnull;
	int64		n;

	if (SPI_execute("WITH RECURSIVE dropped(classid, objid) AS ("
					"  SELECT e.classid, e.objid FROM pg_catalog.pg_depend e"
					"    JOIN pg_catalog.pg_extension x ON x.oid = e.refobjid AND x.extname = 'customer_analytics'"
					"   WHERE e.refclassid = 'pg_catalog.pg_extension'::pg_catalog.regclass AND e.deptype = 'e'"
					"  UNION"
					"  SELECT d.classid, d.objid FROM pg_catalog.pg_depend d"
					"    JOIN dropped p ON d.refclassid = p.classid AND d.refobjid = p.objid"
					"   WHERE d.deptype IN ('a', 'i')),"
					" blocking AS ("
					"  SELECT DISTINCT CASE WHEN d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass"
					"                       THEN pg_catalog.pg_describe_object('pg_catalog.pg_class'::pg_catalog.regclass,"
					"                              (SELECT r.ev_class FROM pg_catalog.pg_rewrite r WHERE r.oid = d.objid), 0)"
					"                       ELSE pg_catalog.pg_describe_object(d.classid, d.objid, d.objsubid) END AS what"
					"    FROM pg_catalog.pg_depend d JOIN dropped p ON d.refclassid = p.classid AND d.refobjid = p.objid"
					"   WHERE d.deptype = 'n'"
					"     AND NOT EXISTS (SELECT FROM dropped q WHERE q.classid = d.classid AND q.objid = d.objid))"
					" SELECT count(*), pg_catalog.string_agg(b.what, ', ' ORDER BY b.what) FILTER (WHERE b.i <= 10)"
					"   FROM (SELECT what, pg_catalog.row_number() OVER (ORDER BY what) AS i FROM blocking) b",
					true, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "looking for objects that depend on customer_analytics failed");
	n = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	if (n > 0)
		ereport(ERROR,
				(errcode(ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST),
				 errmsg("cannot drop extension customer_analytics because %lld other object(s) depend on it",
						(long long) n),
				 errdetail("%s%s", SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2),
						   n > 10 ? psprintf(" and %lld more", (long long) (n - 10)) : ""),
				 errhint("Drop every campaign and segmentation (customer_analytics.drop_campaign(), "
						 "drop_segmentation(): they stop at your own views built on theirs) and every rollup "
						 "(drop_rollup()), and your objects that use the extension; or DROP EXTENSION customer_analytics "
						 "CASCADE, which drops them all and every object built on them, your own views included. "
						 "Nothing was dropped.")));
}

/*
 * Run SELECT proc (no arguments) when the extension's script defines it:
 * an event trigger of an older version's script may see a newer library.
 * Its result when it is an integer, else 0.
 */
static int64
call_if_defined(const char *proc)
{
	char	   *check = psprintf("SELECT 1 WHERE pg_catalog.to_regprocedure('%s') IS NOT NULL", proc);
	char	   *call = psprintf("SELECT %s", proc);
	bool		isnull;
	Datum		result;

	if (SPI_execute(check, true, 1) != SPI_OK_SELECT || SPI_processed != 1)
		return 0;
	if (SPI_execute(call, false, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "%s failed", call);
	if (SPI_gettypeid(SPI_tuptable->tupdesc, 1) != INT4OID)
		return 0;
	result = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	return isnull ? 0 : DatumGetInt32(result);
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
	int64		jobs = 0;
	int64		tables;

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
		 * theirs.  The name rule is written out here rather than called:
		 * an extension installed before 1.6 has no _cron_fit_name(), and
		 * its DROP must find its jobs too.
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

			jobs = n;
		}
	}
	tables = call_if_defined("customer_analytics._drop_extension_tables()");
	/* what depended on those tables went with them; anything else stops the DROP */
	if (((DropStmt *) trigdata->parsetree)->behavior == DROP_RESTRICT)
		refuse_dependents();
	/* said at commit: the DROP may still fail or be rolled back */
	if (jobs > 0 || tables > 0)
		report_at_commit(jobs, tables);
	call_if_defined("customer_analytics._dispatcher_drop_notice()");
	SPI_finish();
	PG_RETURN_NULL();
}
