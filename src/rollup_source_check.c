/*
 * rollup_source_check.c
 *		The data contract check enable_rollup() and rebuild_rollup() run on a
 *		source schema before keeping a rollup of it.
 *
 * The rollup copies every column the functions read, so its source must
 * pass the same checks as theirs (source_tables.c), and must not be sharded.
 * Kept apart from order_rollup.c, which source_tables.c calls, so that the
 * two do not depend on each other.
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_inherits.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

#include "source_tables.h"

PG_FUNCTION_INFO_V1(check_rollup_source);

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
							 "rollup_changes() (docs/sharding.md): campaign refreshes then read only what changed on each shard.")));
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
