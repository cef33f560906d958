/*
 * order_rollup.c
 *		Deciding whether a query may read a source's order rollup.
 *
 * The rollup's tables, rebuild and check are SQL (src/sql/rollup.sql), its
 * triggers C (rollup_trigger.c), and the contract check enable_rollup()
 * runs is rollup_source_check.c.  Whether it is usable is decided in SQL, by
 * customer_analytics._rollup_for_reading(), so that the rules live in one
 * place.  This file only asks and reports.
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

#include "customer_analytics.h"
#include "order_rollup.h"

/* See order_rollup.h. */
const char *
order_rollup_for_reading(const char *schema)
{
	Oid			argtypes[1] = {TEXTOID};
	Oid			date_argtypes[4] = {DATEOID, TEXTOID, TEXTOID, TEXTOID};
	Datum		args[1];
	const char *rollup = NULL;
	const char *reason = "customer_analytics.use_rollup is off";
	MemoryContext caller = CurrentMemoryContext;

	/* a newer library under older SQL objects, until ALTER EXTENSION ... UPDATE */
	if (ca_use_rollup && !ca_function_installed("_rollup_for_reading", 1, argtypes))
		reason = "the extension's SQL objects predate the rollup: ALTER EXTENSION customer_analytics UPDATE";
	else if (ca_use_rollup && !ca_function_installed("_rollup_order_date", 4, date_argtypes))
		reason = "the extension's SQL objects predate _rollup_order_date(), which the rollup is read through: "
			"ALTER EXTENSION customer_analytics UPDATE";
	else if (ca_use_rollup)
	{
		args[0] = CStringGetTextDatum(schema);
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		if (SPI_execute_with_args("SELECT rollup, reason FROM customer_analytics._rollup_for_reading($1)",
								  1, argtypes, args, NULL, true, 1) != SPI_OK_SELECT ||
			SPI_processed != 1)
			elog(ERROR, "customer_analytics._rollup_for_reading() returned no row");
		{
			char	   *r = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
			char	   *why = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);

			rollup = r ? MemoryContextStrdup(caller, r) : NULL;
			reason = why ? MemoryContextStrdup(caller, why) : "";
		}
		SPI_finish();
	}

	if (rollup)
		ereport(DEBUG1,
				(errmsg_internal("customer_analytics: source \"%s\": reading the order rollup %s",
								 schema, rollup)));
	else
		ereport(DEBUG1,
				(errmsg_internal("customer_analytics: source \"%s\": reading the source tables (%s)",
								 schema, reason)));
	return rollup;
}
