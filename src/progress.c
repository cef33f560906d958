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
 *
 * Each phase is also timed: the phases reported in a transaction are kept
 * (in TopTransactionContext, so they end with it) until
 * _progress_phases() returns them with their durations, which is how a
 * build or refresh says at the end what took the time.
 */
#include "postgres.h"

#include "access/xact.h"
#include "fmgr.h"
#include "pgstat.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/backend_status.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

PG_FUNCTION_INFO_V1(report_progress);
PG_FUNCTION_INFO_V1(progress_phases);

/* The phases reported in the current transaction, oldest first. */
typedef struct Phase
{
	char	   *name;
	TimestampTz started;
} Phase;

static Phase *phases = NULL;
static int	nphases = 0;
static int	max_phases = 0;
static LocalTransactionId phases_lxid = InvalidLocalTransactionId;

/* Forget phases of an earlier transaction (their memory went with it). */
static void
phases_for_this_transaction(void)
{
	if (phases_lxid != MyProc->lxid)
	{
		phases = NULL;
		nphases = max_phases = 0;
		phases_lxid = MyProc->lxid;
	}
}

/* Remember that phase started now. */
static void
remember_phase(const char *phase)
{
	phases_for_this_transaction();
	if (nphases == max_phases)
	{
		max_phases = Max(8, max_phases * 2);
		phases = phases == NULL
			? MemoryContextAlloc(TopTransactionContext, sizeof(Phase) * max_phases)
			: repalloc(phases, sizeof(Phase) * max_phases);
	}
	phases[nphases].name = MemoryContextStrdup(TopTransactionContext, phase);
	phases[nphases].started = GetCurrentTimestamp();
	nphases++;
}

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
	remember_phase(phase);
	PG_RETURN_VOID();
}

/*
 * _progress_phases() returns jsonb: the phases reported in this transaction
 * since the last call, oldest first, as [{"phase": ..., "ms": ...}], each
 * lasting until the next one began (the last one until now); then forgets
 * them.  '[]' when none.
 */
Datum
progress_phases(PG_FUNCTION_ARGS)
{
	StringInfoData buf;
	TimestampTz now = GetCurrentTimestamp();

	phases_for_this_transaction();
	initStringInfo(&buf);
	appendStringInfoChar(&buf, '[');
	for (int i = 0; i < nphases; i++)
	{
		TimestampTz end = i + 1 < nphases ? phases[i + 1].started : now;

		if (i > 0)
			appendStringInfoString(&buf, ", ");
		appendStringInfoString(&buf, "{\"phase\": ");
		escape_json(&buf, phases[i].name);
		appendStringInfo(&buf, ", \"ms\": %.1f}", (double) (end - phases[i].started) / 1000.0);
	}
	appendStringInfoChar(&buf, ']');
	nphases = 0;
	PG_RETURN_DATUM(DirectFunctionCall1(jsonb_in, CStringGetDatum(buf.data)));
}
