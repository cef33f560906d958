/*
 * snapshot_exec.c
 *		Run several SQL statements as if they were one: every statement reads
 *		the database as of the same snapshot (and sees the writes of the
 *		statements before it).
 *
 * A campaign's delta refresh adjusts per-customer state from the order
 * changes committed since the state's snapshot.  Its statements (read the
 * changes, adjust the state, recompute a customer from the rollup where a
 * change cannot be applied, derive the views' rows) must all see the same
 * committed transactions, or a change committed between two of them would
 * be counted in one and missed, or counted again, by the next refresh.  In
 * READ COMMITTED each statement of a PL/pgSQL function takes a new
 * snapshot; SPI_execute_snapshot() lets C pin one, as the foreign-key
 * triggers do.  The snapshot is returned so that the next refresh starts
 * from exactly it.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/snapmgr.h"

PG_FUNCTION_INFO_V1(at_one_snapshot);

/* Prepare sql and run it as of snapshot; returns the SPI result code. */
static int
run_at(const char *sql, Snapshot snapshot, bool read_only)
{
	SPIPlanPtr	plan = SPI_prepare(sql, 0, NULL);
	int			ret;

	if (plan == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("could not prepare statement \"%s\": %s", sql, SPI_result_code_string(SPI_result)),
				 errhint("Pass one SQL statement per array element.")));
	ret = SPI_execute_snapshot(plan, NULL, NULL, snapshot, InvalidSnapshot, read_only, true, 0);
	if (ret < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("could not run statement \"%s\": %s", sql, SPI_result_code_string(ret)),
				 errhint("Transaction control and utility statements that need their own snapshot cannot run here.")));
	SPI_freeplan(plan);
	return ret;
}

/*
 * _at_one_snapshot(guard text, statements text[]) returns pg_snapshot
 *
 * Takes a snapshot, runs guard (a query returning one boolean, or NULL for
 * none) as of it, and when the guard is not true runs the statements in
 * order as of the same snapshot, each seeing the writes of the ones before
 * (the guard's too: a guard may be a SELECT whose WITH writes, as the
 * campaign's, which lists the changed customers as it tests the changes).
 * Returns the snapshot as pg_current_snapshot() would show it, or NULL
 * (nothing run) when the guard was true.  A guard may return a second
 * boolean, "nothing to do": when it is true (and the first is not), the
 * statements are skipped and the snapshot returned all the same (a
 * campaign's delta refresh with no change since its state's snapshot
 * plans and runs none of its statements).  The statements run as the
 * caller, like EXECUTE in PL/pgSQL: nothing here changes who may do what.
 */
Datum
at_one_snapshot(PG_FUNCTION_ARGS)
{
	ArrayType  *statements;
	Datum	   *sqls;
	bool	   *sql_nulls;
	int			nsql;
	Snapshot	snapshot;
	Datum		result = (Datum) 0;
	bool		result_null = true;

	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("statements must not be NULL"),
				 errhint("Pass an array of SQL statements, '{}' for none.")));
	statements = PG_GETARG_ARRAYTYPE_P(1);
	deconstruct_array(statements, TEXTOID, -1, false, TYPALIGN_INT, &sqls, &sql_nulls, &nsql);
	for (int i = 0; i < nsql; i++)
		if (sql_nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("statement %d is NULL", i + 1),
					 errhint("Every element of statements must be an SQL statement.")));

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	/*
	 * The transaction's snapshot: a new one in READ COMMITTED, the
	 * transaction's own in REPEATABLE READ (which then reads nothing newer).
	 */
	snapshot = RegisterSnapshot(GetTransactionSnapshot());

	if (!PG_ARGISNULL(0))
	{
		bool		isnull = true;
		Datum		stop = (Datum) 0;
		int			natts;

		/* not read-only: a guard may fill a scratch table as it tests */
		if (run_at(text_to_cstring(PG_GETARG_TEXT_PP(0)), snapshot, false) != SPI_OK_SELECT ||
			SPI_processed != 1 || (natts = SPI_tuptable->tupdesc->natts) < 1 || natts > 2 ||
			SPI_gettypeid(SPI_tuptable->tupdesc, 1) != BOOLOID ||
			(natts == 2 && SPI_gettypeid(SPI_tuptable->tupdesc, 2) != BOOLOID))
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("the guard must return one row of one boolean (stop), or two (stop, nothing to do)"),
					 errhint("For example SELECT EXISTS (...).")));
		stop = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
		if (!isnull && DatumGetBool(stop))
		{
			UnregisterSnapshot(snapshot);
			SPI_finish();
			PG_RETURN_NULL();
		}
		if (natts == 2)
		{
			Datum		idle = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);

			if (!isnull && DatumGetBool(idle))
				nsql = 0;		/* nothing to do: no statement is run */
		}
	}

	for (int i = 0; i < nsql; i++)
	{
		CHECK_FOR_INTERRUPTS();
		run_at(TextDatumGetCString(sqls[i]), snapshot, false);
	}

	/* the snapshot as pg_snapshot, copied out of SPI's memory */
	if (run_at("SELECT pg_catalog.pg_current_snapshot()", snapshot, true) == SPI_OK_SELECT &&
		SPI_processed == 1)
	{
		result = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &result_null);
		if (!result_null)
			result = SPI_datumTransfer(result, false, -1);
	}
	UnregisterSnapshot(snapshot);
	SPI_finish();
	if (result_null)
		elog(ERROR, "could not read the snapshot back");
	PG_RETURN_DATUM(result);
}
