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

#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

#include "customer_analytics.h"
#include "order_rollup.h"
#include "source_tables.h"

PG_FUNCTION_INFO_V1(check_rollup_source);

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

/*
 * A rollup is kept by triggers on the coordinator's tables, and a write made
 * directly on a shard server never fires them: on a sharded schema (a source
 * table with a foreign table among its partitions) the rollup would silently
 * miss orders, so it is refused.
 */
static void
refuse_sharded_rollup(const SourceTables *src)
{
	static const char *const tables[] = {"customers", "sales_orders", "sales_order_lines"};
	Oid			nspid = get_namespace_oid(src->schema, false);

	for (size_t i = 0; i < lengthof(tables); i++)
	{
		Oid			relid = get_relname_relid(tables[i], nspid);
		ListCell   *lc;

		if (!OidIsValid(relid) || get_rel_relkind(relid) != RELKIND_PARTITIONED_TABLE)
			continue;
		foreach(lc, find_all_inheritors(relid, AccessShareLock, NULL))
		{
			Oid			part = lfirst_oid(lc);

			if (get_rel_relkind(part) != RELKIND_FOREIGN_TABLE)
				continue;
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("source schema \"%s\" is sharded: an order rollup cannot be kept on it", src->schema),
					 errdetail("Partition %s of %s is a foreign table: the rollup's triggers would miss every write made directly on its server.",
							   quote_qualified_identifier(get_namespace_name(get_rel_namespace(part)),
														  get_rel_name(part)),
							   tables[i]),
					 errhint("Enable the rollup on each shard instead, and give this schema a rollup_changes table over the shards' "
							 "rollup_changes() (README, \"Past one server\"): campaign refreshes then read only what changed on each shard.")));
		}
	}
}

/*
 * _check_rollup_source(source_schema text) returns boolean: check every
 * column the rollup copies (the whole data contract), with the same errors
 * as the reading functions, and that the schema is not sharded; true when
 * order_date is a date column.
 */
Datum
check_rollup_source(PG_FUNCTION_ARGS)
{
	SourceTables *src = source_tables_open_tables(text_to_cstring(PG_GETARG_TEXT_PP(0)));

	refuse_sharded_rollup(src);
	source_tables_check_line_items(src);
	PG_RETURN_BOOL(src->order_date_is_date);
}
