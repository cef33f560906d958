/*
 * progress.c
 *		Long work says where it is: the phase of a rollup build or a view
 *		refresh shows in pg_stat_activity.query of the session doing it.
 *
 * PostgreSQL 15's pg_stat_progress_* views only know its own commands
 * (VACUUM, CREATE INDEX, COPY, ...), and an extension cannot add one
 * without shared memory of its own.  The activity string every session
 * already publishes is enough for phases: it is replaced for the rest of
 * the statement (the next top-level statement resets it), and keeps the
 * statement's own text after the phase so that nothing is lost.
 */
#include "postgres.h"

#include "fmgr.h"
#include "pgstat.h"
#include "tcop/tcopprot.h"
#include "utils/backend_status.h"
#include "utils/builtins.h"

PG_FUNCTION_INFO_V1(report_progress);

/*
 * _report_progress(phase text): publish "customer_analytics: <phase> | <the
 * statement>" as this session's activity in pg_stat_activity.
 */
Datum
report_progress(PG_FUNCTION_ARGS)
{
	char	   *phase = text_to_cstring(PG_GETARG_TEXT_PP(0));

	pgstat_report_activity(STATE_RUNNING,
						   psprintf("customer_analytics: %s | %s", phase,
									debug_query_string ? debug_query_string : ""));
	PG_RETURN_VOID();
}
