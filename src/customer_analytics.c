/*
 * customer_analytics.c
 *		Module entry point: the library magic block and the extension's GUCs,
 *		and which of the extension's SQL objects are installed.
 *
 * Who may set what for whom.  A setting stored with ALTER DATABASE or ALTER
 * ROLE applies to every session it matches, superusers', pg_cron jobs' and
 * dispatchers' included, and a database's owner need not be a superuser.
 * So the check hooks look at where a value comes from (its GucSource):
 *
 *	- as_of_date pins "today" for rolling windows, a knob for tests, backfills
 *	  and reruns.  It is taken only from the session itself (SET, set_config(),
 *	  a function's SET clause, the connection's options); a value stored for
 *	  a database or role, or in postgresql.conf / ALTER SYSTEM, is refused:
 *	  PostgreSQL then warns and ignores it when the session starts (or when
 *	  the library loads).  No stored setting can pin everybody's windows, nor
 *	  a role's own scheduled refreshes for good.
 *	- source_schema is the default source of calls that pass none and of new
 *	  definitions; a database-wide default is useful.  A value stored with
 *	  ALTER DATABASE (or ALTER ROLE ALL IN DATABASE, the same source) is
 *	  taken only by sessions whose user trusts the database's owner by the
 *	  rule of role_trust.c (the owner is that user, a superuser, a member of
 *	  that user, or listed in trusted_source_owners); others warn and keep
 *	  the default.  Values for a role come from that role itself, a CREATEROLE
 *	  role or a superuser, and server-wide ones from a superuser: all taken.
 *
 * A stored definition keeps its source schema and rolling spec in its
 * catalog row; refreshing it reads neither setting's source but the row.
 * SQL reads the settings through _checked_setting() (below), never current_setting(),
 * because before the library is loaded a stored value sits unchecked in a
 * placeholder.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/parallel.h"
#include "access/xact.h"
#include "catalog/pg_database.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/pg_list.h"
#include "nodes/value.h"
#include "parser/parse_func.h"
#include "postmaster/bgworker_internals.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/syscache.h"
#include "utils/varlena.h"

#include "customer_analytics.h"
#include "kmeans.h"
#include "role_trust.h"

PG_MODULE_MAGIC;

char	   *ca_source_schema = NULL;
bool		ca_use_rollup = true;
bool		ca_shard_pushdown = true;
static int	ca_refresh_history_keep = 100;
static double ca_shard_incremental_max_fraction = 0.05;
static char *ca_refresh_via = NULL;
static char *ca_as_of_date = NULL;

void		_PG_init(void);

/* customer_analytics.trusted_source_owners must be a list of identifiers */
static bool
check_trusted_source_owners(char **newval, void **extra, GucSource source)
{
	char	   *raw = pstrdup(*newval);
	List	   *names;
	bool		ok = SplitIdentifierString(raw, ',', &names);

	(void) extra;
	(void) source;
	if (!ok)
		GUC_check_errdetail("List syntax is invalid: role names separated by commas.");
	list_free(names);
	pfree(raw);
	return ok;
}

/* Where a stored value came from, for a DETAIL. */
static const char *
source_name(GucSource source)
{
	switch (source)
	{
		case PGC_S_ENV_VAR:
			return "the server's environment";
		case PGC_S_FILE:
			return "the configuration file (postgresql.conf or ALTER SYSTEM)";
		case PGC_S_ARGV:
			return "the server's command line";
		case PGC_S_GLOBAL:
			return "ALTER ROLE ALL SET";
		case PGC_S_DATABASE:
			return "ALTER DATABASE SET";
		case PGC_S_USER:
			return "ALTER ROLE SET";
		case PGC_S_DATABASE_USER:
			return "ALTER ROLE IN DATABASE SET";
		default:
			return "a stored setting";
	}
}

/*
 * customer_analytics.as_of_date: only the session sets it (see the file
 * header).  Sources from PGC_S_CLIENT up are the session's own; PGC_S_TEST
 * validates ALTER DATABASE / ALTER ROLE SET and a function's SET clause
 * alike, so it is accepted with a NOTICE (the function's clause works; the
 * stored value will be refused when a session starts).  The empty string is
 * the default and pins nothing.  A parallel worker takes what it is given:
 * it applies the stored values before loading the library (which would warn
 * again for each worker), then PostgreSQL resets every setting to the
 * leader's, which never holds a refused value.
 */
static bool
check_as_of_date(char **newval, void **extra, GucSource source)
{
	(void) extra;
	if ((*newval)[0] == '\0' || source == PGC_S_DEFAULT || IsParallelWorker() ||
		(source >= PGC_S_CLIENT && source != PGC_S_TEST))
		return true;
	if (source == PGC_S_TEST)
	{
		ereport(NOTICE,
				(errmsg("customer_analytics.as_of_date applies only to the session that sets it"),
				 errdetail("A value stored with ALTER DATABASE or ALTER ROLE is refused when a session starts (a WARNING, and rolling windows keep the current date), scheduled runs included; a function's SET clause applies while the function runs."),
				 errhint("To pin the date of a scheduled run, SET it in that session: in the pg_cron job's command (SET customer_analytics.as_of_date = '2026-01-07'; CALL customer_analytics.run_scheduled_refresh(...)) or in the dispatcher's session; remove a stored value with ALTER ROLE ... RESET customer_analytics.as_of_date (or ALTER DATABASE ... RESET).")));
		return true;
	}
	GUC_check_errdetail("customer_analytics.as_of_date may only be set in a session; this value comes from %s.",
						source_name(source));
	GUC_check_errhint("SET customer_analytics.as_of_date in the session (for a scheduled run: in the pg_cron job's command or the dispatcher's session), or use set_config() or a function's SET clause.");
	return false;
}

/*
 * customer_analytics.source_schema: a database-wide value is taken only by a
 * session user that trusts the database's owner (see the file header; a
 * parallel worker as in check_as_of_date()).
 */
static bool
check_source_schema(char **newval, void **extra, GucSource source)
{
	HeapTuple	tuple;
	Oid			owner;
	Oid			user;

	(void) extra;
	if (source != PGC_S_DATABASE || strcmp(*newval, CA_DEFAULT_SOURCE_SCHEMA) == 0 || IsParallelWorker())
		return true;
	/* the owner is read from the catalog: never outside a transaction */
	if (!IsTransactionState())
	{
		GUC_check_errdetail("A value from ALTER DATABASE SET is taken only where the database's owner can be checked.");
		return false;
	}
	tuple = SearchSysCache1(DATABASEOID, ObjectIdGetDatum(MyDatabaseId));
	if (!HeapTupleIsValid(tuple))
	{
		GUC_check_errdetail("The database's owner was not found.");
		return false;
	}
	owner = ((Form_pg_database) GETSTRUCT(tuple))->datdba;
	ReleaseSysCache(tuple);
	user = GetSessionUserId();
	if (ca_role_trusts(user, owner))
		return true;
	GUC_check_errdetail("Only roles that trust the database's owner take a value from ALTER DATABASE SET, and role \"%s\" "
						"does not trust role \"%s\" (trusted are the role itself, superusers, the role's members "
						"and customer_analytics.trusted_source_owners).",
						GetUserNameFromId(user, false), GetUserNameFromId(owner, false));
	GUC_check_errhint("Set it for the role instead: ALTER ROLE ... IN DATABASE ... SET customer_analytics.source_schema.");
	return false;
}

void
_PG_init(void)
{
	/*
	 * Defined first: source_schema's check hook reads it (when the library
	 * loads, each variable takes its stored value as it is defined).
	 *
	 * Superuser-only: a role that could set it could trust itself.  PGC_SUSET
	 * also means a value set for a role or database by a non-superuser
	 * before the library was loaded is not applied.
	 */
	DefineCustomStringVariable("customer_analytics.trusted_source_owners",
							   "Roles whose views and row-level security policies on source tables every role trusts.",
							   "Comma-separated role names.  Besides these, a role trusts itself, superusers and its own members.",
							   &ca_trusted_source_owners,
							   "",
							   PGC_SUSET,
							   GUC_LIST_INPUT,
							   check_trusted_source_owners, NULL, NULL);

	DefineCustomStringVariable("customer_analytics.source_schema",
							   "Schema holding the ERP tables customers, sales_orders and sales_order_lines.",
							   "Functions whose source_schema argument is NULL read this schema.",
							   &ca_source_schema,
							   CA_DEFAULT_SOURCE_SCHEMA,
							   PGC_USERSET,
							   0,
							   check_source_schema, NULL, NULL);

	DefineCustomBoolVariable("customer_analytics.use_rollup",
							 "Read a source's order rollup when it is current.",
							 "Off: always read the source tables (for comparisons and diagnosis).",
							 &ca_use_rollup,
							 true,
							 PGC_USERSET,
							 0,
							 NULL, NULL, NULL);

	DefineCustomBoolVariable("customer_analytics.shard_pushdown",
							 "Over a sharded source, send the per-customer aggregates to the shards.",
							 "Off: read a sharded source's tables as on one server (for comparisons and diagnosis).",
							 &ca_shard_pushdown,
							 true,
							 PGC_USERSET,
							 0,
							 NULL, NULL, NULL);

	/* kmeans_lloyd.c: the bounds change no result, only the time */
	DefineCustomBoolVariable("customer_analytics.kmeans_bounds",
							 "Skip the distances Hamerly's bounds make unnecessary in k-means (exact: the same result).",
							 "Off: compute every point's distance to every centre at each iteration (for comparisons).",
							 &ca_kmeans_bounds,
							 true,
							 PGC_USERSET,
							 0,
							 NULL, NULL, NULL);

	/* kmeans_lloyd.c: the specialized copies change no result, only the time */
	DefineCustomBoolVariable("customer_analytics.kmeans_specialize",
							 "Run k-means through copies compiled for 2 to 12 features (exact: the same result).",
							 "Off: the generic loops for every number of features (for comparisons).",
							 &ca_kmeans_specialize,
							 true,
							 PGC_USERSET,
							 0,
							 NULL, NULL, NULL);

	/* kmeans_lloyd.c: the workers change no result, only the time */
	DefineCustomIntVariable("customer_analytics.kmeans_parallel_workers",
							"Parallel workers a k-means fit runs its restarts (n_init) on.",
							"-1: max_parallel_workers_per_gather; 0: no workers.  The leader takes restarts too "
							"(unless parallel_leader_participation is off); the result is bit-identical either way.",
							&ca_kmeans_parallel_workers,
							-1, -1, MAX_PARALLEL_WORKER_LIMIT,
							PGC_USERSET,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("customer_analytics.kmeans_parallel_min_points",
							"The fewest points a k-means fit runs its restarts in parallel for.",
							"Below it starting the workers costs more than they save.",
							&ca_kmeans_parallel_min_points,
							10000, 0, INT_MAX,
							PGC_USERSET,
							0,
							NULL, NULL, NULL);

	/* read in SQL: customer_analytics._shard_incremental_refusal() */
	DefineCustomRealVariable("customer_analytics.shard_incremental_max_fraction",
							 "Over a sharded source, the largest share of the customers a campaign refresh recomputes from the shards' changes.",
							 "Past it the refresh recomputes the views in full, which is then cheaper (0: always in full, 1: never for this reason).",
							 &ca_shard_incremental_max_fraction,
							 0.05, 0.0, 1.0,
							 PGC_USERSET,
							 0,
							 NULL, NULL, NULL);

	DefineCustomIntVariable("customer_analytics.refresh_history_keep",
							"Rows of customer_analytics.refresh_history kept per campaign or segmentation.",
							"Each recorded refresh deletes the definition's older rows beyond this many.",
							&ca_refresh_history_keep,
							100, 1, 1000000,
							PGC_USERSET,
							0,
							NULL, NULL, NULL);

	/* set by run_scheduled_refresh for the refresh it runs; not for users */
	DefineCustomStringVariable("customer_analytics.refresh_via",
							   "How the current refresh was started (internal).",
							   NULL,
							   &ca_refresh_via,
							   "",
							   PGC_USERSET,
							   GUC_NO_SHOW_ALL | GUC_NOT_IN_SAMPLE,
							   NULL, NULL, NULL);

	/*
	 * What "today" means for rolling campaign windows (checked where it is
	 * read: customer_analytics._as_of_today()); empty: current_date.  Only a
	 * session sets it: check_as_of_date().
	 */
	DefineCustomStringVariable("customer_analytics.as_of_date",
							   "The date rolling campaign windows are resolved against (empty: the current date).",
							   "For tests, backfills and reruns, in a session only: SET customer_analytics.as_of_date = '2026-01-07'.",
							   &ca_as_of_date,
							   "",
							   PGC_USERSET,
							   0,
							   check_as_of_date, NULL, NULL);

	MarkGUCPrefixReserved("customer_analytics");
}

bool
ca_function_installed(const char *name, int nargs, const Oid *argtypes)
{
	return OidIsValid(LookupFuncName(list_make2(makeString("customer_analytics"),
												makeString(pstrdup(name))),
									 nargs, argtypes, true));
}

PG_FUNCTION_INFO_V1(ca_checked_setting);

/*
 * customer_analytics._checked_setting(name text): current_setting(name, true) for
 * the extension's own settings, read with the library loaded, so that the
 * check hooks above have ruled on a stored value (current_setting() in a
 * session that has not loaded the library yet returns a placeholder's
 * unchecked value).
 */
Datum
ca_checked_setting(PG_FUNCTION_ARGS)
{
	char	   *name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	const char *value;

	if (strncmp(name, "customer_analytics.", strlen("customer_analytics.")) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("\"%s\" is not a setting of customer_analytics", name),
				 errhint("Use current_setting() for other settings.")));
	value = GetConfigOption(name, true, true);
	if (value == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(value));
}
