/*
 * order_rollup.c
 *		The C side of the order rollup: deciding whether a query may read it,
 *		and the contract check enable_rollup() runs.
 *
 * The rollup itself (tables, triggers, rebuild, check) is SQL in the
 * extension script; whether it is usable is decided there too, by
 * customer_analytics._rollup_for_reading(), so that the rules live in one
 * place.  This file only asks and reports.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "nodes/value.h"
#include "parser/parse_func.h"
#include "utils/builtins.h"

#include "customer_analytics.h"
#include "order_rollup.h"
#include "source_tables.h"

PG_FUNCTION_INFO_V1(check_rollup_source);

const char *
order_rollup_for_reading(const char *schema)
{
	Oid			argtypes[1] = {TEXTOID};
	Datum		args[1];
	const char *rollup = NULL;
	const char *reason = "customer_analytics.use_rollup is off";
	MemoryContext caller = CurrentMemoryContext;

	/* a 1.1 library under 1.0 SQL objects, until ALTER EXTENSION ... UPDATE */
	if (ca_use_rollup &&
		!OidIsValid(LookupFuncName(list_make2(makeString("customer_analytics"),
											  makeString("_rollup_for_reading")),
								   1, argtypes, true)))
		reason = "the extension's SQL objects predate the rollup: ALTER EXTENSION customer_analytics UPDATE";
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

/*
 * _check_rollup_source(source_schema text) returns boolean: check every
 * column the rollup copies (the whole data contract), with the same errors
 * as the reading functions; true when order_date is a date column.
 */
Datum
check_rollup_source(PG_FUNCTION_ARGS)
{
	SourceTables *src = source_tables_open_tables(text_to_cstring(PG_GETARG_TEXT_PP(0)));

	source_tables_check_line_items(src);
	PG_RETURN_BOOL(src->order_date_is_date);
}
