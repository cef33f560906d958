/*
 * customer_analytics.c
 *		Module entry point: the library magic block and the extension's GUCs,
 *		and which of the extension's SQL objects are installed.
 */
#include "postgres.h"

#include "fmgr.h"
#include "nodes/pg_list.h"
#include "nodes/value.h"
#include "parser/parse_func.h"
#include "utils/guc.h"
#include "utils/varlena.h"

#include "customer_analytics.h"
#include "role_trust.h"

PG_MODULE_MAGIC;

char	   *ca_source_schema = NULL;
bool		ca_use_rollup = true;
bool		ca_shard_pushdown = true;
static int	ca_refresh_history_keep = 100;
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

void
_PG_init(void)
{
	DefineCustomStringVariable("customer_analytics.source_schema",
							   "Schema holding the ERP tables customers, sales_orders and sales_order_lines.",
							   "Functions whose source_schema argument is NULL read this schema.",
							   &ca_source_schema,
							   CA_DEFAULT_SOURCE_SCHEMA,
							   PGC_USERSET,
							   0,
							   NULL, NULL, NULL);

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

	/*
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
	 * read: customer_analytics._as_of_today()); empty: current_date.
	 */
	DefineCustomStringVariable("customer_analytics.as_of_date",
							   "The date rolling campaign windows are resolved against (empty: the current date).",
							   "For tests, backfills and reruns: SET customer_analytics.as_of_date = '2026-01-07'.",
							   &ca_as_of_date,
							   "",
							   PGC_USERSET,
							   0,
							   NULL, NULL, NULL);

	MarkGUCPrefixReserved("customer_analytics");
}

bool
ca_function_installed(const char *name, int nargs, const Oid *argtypes)
{
	return OidIsValid(LookupFuncName(list_make2(makeString("customer_analytics"),
												makeString(pstrdup(name))),
									 nargs, argtypes, true));
}
