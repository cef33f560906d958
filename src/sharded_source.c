/*
 * sharded_source.c
 *		The queries over a source sharded by customer_code (README, "Past one
 *		server"): a coordinator schema whose customers, sales_orders,
 *		sales_order_lines and order_totals are hash-partitioned by
 *		customer_code, with postgres_fdw foreign tables on the shard servers
 *		as partitions.
 *
 * Over the source tables an order's total is a correlated subquery on the
 * lines, which over foreign tables is one remote query per order and shard,
 * and the per-customer aggregate then runs on the coordinator.  postgres_fdw
 * cannot ship an aggregate over a grouped subquery, so the shards expose one
 * row per order (order_totals, a view over their own headers and lines,
 * which are co-located by customer_code).  Grouping that relation, joined to
 * customers, by the partition key with partitionwise join and aggregate on
 * lets the planner send the whole per-customer aggregation to each shard
 * (the servers' "extensions" option makes the extension's functions and
 * aggregates shippable): one row per customer travels, not one per order
 * or line.
 */
#include "postgres.h"

#include "access/table.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "partitioning/partbounds.h"
#include "partitioning/partdesc.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/partcache.h"
#include "utils/rel.h"
#include "utils/syscache.h"

#include "sharded_source.h"

static char *
order_totals_query(const SourceTables *src, const char *extra_columns,
				   const char *join, const char *scope)
{
	SourceTables totals = *src;

	Assert(src->order_totals != NULL);
	/* the dates are read from order_totals, whose order_date may be typed apart */
	totals.order_date_is_date = src->totals_date_is_date;
	return psprintf("SELECT o.customer_code, %s, o.order_total::numeric%s"
					" FROM %s o%s WHERE o.confirmed_code = 'Y' AND %s AND %s",
					source_order_date_expr(&totals, "o"), extra_columns,
					src->order_totals, join,
					source_order_window_expr(&totals, "o", "$1"), scope);
}

char *
sharded_order_totals_query(const SourceTables *src, const char *join, const char *scope)
{
	return order_totals_query(src, "", join, scope);
}

/*
 * The shard's order_totals already hold each order's quantity and product
 * codes (source_tables_check_line_items() checked them), so the features'
 * aggregate runs on the shard like targeting_stats: the lines never travel.
 */
char *
sharded_order_items_query(const SourceTables *src, const char *scope)
{
	return order_totals_query(src, ", o.quantity::numeric, o.product_codes::text[]", "", scope);
}

/*
 * One row per line of the confirmed orders in the window $1 satisfying scope
 * (alias o over order_lines, joined as join says): customer_code (the
 * partition key, uncast), order_type, order_number, the order's checked
 * date, the line's amount (NULL for an order without lines), the rows of
 * source_order_lines_query().  The shard's order_lines is a view joining
 * its headers to their lines without grouping, so the route test on the
 * customers (a join by the partition key) filters the orders before their
 * lines are read, and the per-customer aggregate over it (targeting_line_stats)
 * ships whole: each shard folds its route customers' lines, as one server's
 * parallel workers do, and sends one row per customer.
 */
char *
sharded_order_lines_query(const SourceTables *src, const char *join, const char *scope)
{
	SourceTables lines = *src;

	Assert(src->order_lines != NULL);
	lines.order_date_is_date = src->order_lines_date_is_date;
	return psprintf("SELECT o.customer_code, o.order_type::text, o.order_number::text, %s,"
					" o.line_amount::numeric FROM %s o%s WHERE o.confirmed_code = 'Y' AND %s AND %s",
					source_order_date_expr(&lines, "o"), src->order_lines, join,
					source_order_window_expr(&lines, "o", "$1"), scope);
}

/*
 * Whether the caller may read partition partid of order_totals on its own
 * as it reads it through the parent: SELECT on it, and no row security on
 * it (a partition's policies apply only when it is read directly; the
 * parent's were checked by the caller).
 */
static bool
partition_readable(Oid partid)
{
	HeapTuple	tuple;
	bool		rls;

	if (pg_class_aclcheck(partid, GetUserId(), ACL_SELECT) != ACLCHECK_OK)
		return false;
	tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(partid));
	if (!HeapTupleIsValid(tuple))
		return false;
	rls = ((Form_pg_class) GETSTRUCT(tuple))->relrowsecurity;
	ReleaseSysCache(tuple);
	return !rls;
}

/*
 * The listed customer codes (text, no NULLs) split by the partition of
 * order_totals that can hold their rows: a List of ShardCodes, one per
 * partition given at least one code, in the partitions' order; *nparts the
 * partition count.  NIL when that split cannot be read partition by
 * partition as the parent would be: order_totals not hash-partitioned on
 * customer_code alone with a text or varchar key, row security on it or on
 * a partition, or a partition the caller may not read on its own.  The hash
 * is the partition key's own support function and collation, as tuple
 * routing computes it, so a code lands in the one partition that can hold
 * its rows (a code no partition takes has no rows and is left out).
 */
List *
sharded_codes_by_partition(const SourceTables *src, Datum *codes, int ncodes, int *nparts)
{
	Oid			nspid = get_namespace_oid(src->schema, false);
	Oid			relid = get_relname_relid("order_totals", nspid);
	Relation	rel;
	PartitionKey key;
	PartitionDesc desc;
	ArrayBuildState **parts;
	List	   *result = NIL;
	int			modulus;
	char	   *keyname;
	bool		usable;

	*nparts = 0;
	if (!OidIsValid(relid))
		return NIL;
	rel = table_open(relid, AccessShareLock);
	if (rel->rd_rel->relkind != RELKIND_PARTITIONED_TABLE || rel->rd_rel->relrowsecurity)
	{
		table_close(rel, AccessShareLock);
		return NIL;
	}
	key = RelationGetPartitionKey(rel);
	keyname = key->partnatts == 1 && key->partattrs[0] > 0
		? get_attname(relid, key->partattrs[0], false) : NULL;
	desc = RelationGetPartitionDesc(rel, true);
	usable = key->strategy == PARTITION_STRATEGY_HASH && keyname != NULL &&
		strcmp(keyname, "customer_code") == 0 &&
		(key->parttypid[0] == TEXTOID || key->parttypid[0] == VARCHAROID) &&
		desc->nparts > 0;
	for (int p = 0; usable && p < desc->nparts; p++)
		usable = partition_readable(desc->oids[p]);
	if (!usable)
	{
		table_close(rel, AccessShareLock);
		return NIL;
	}

	modulus = get_hash_partition_greatest_modulus(desc->boundinfo);
	parts = palloc0(sizeof(ArrayBuildState *) * desc->nparts);
	for (int i = 0; i < ncodes; i++)
	{
		bool		isnull = false;
		uint64		hash;
		int			part;

		CHECK_FOR_INTERRUPTS();
		hash = compute_partition_hash_value(1, key->partsupfunc, key->partcollation,
											&codes[i], &isnull);
		part = desc->boundinfo->indexes[hash % modulus];
		if (part < 0)
			continue;			/* no partition for this remainder: no rows */
		if (parts[part] == NULL)
			parts[part] = initArrayResult(TEXTOID, CurrentMemoryContext, false);
		accumArrayResult(parts[part], codes[i], false, TEXTOID, CurrentMemoryContext);
	}
	*nparts = desc->nparts;
	for (int p = 0; p < desc->nparts; p++)
	{
		Oid			partid = desc->oids[p];
		ShardCodes *sc;

		if (parts[p] == NULL)
			continue;
		sc = palloc(sizeof(ShardCodes));
		sc->relation = quote_qualified_identifier(get_namespace_name(get_rel_namespace(partid)),
												  get_rel_name(partid));
		sc->codes = DatumGetArrayTypeP(makeArrayResult(parts[p], CurrentMemoryContext));
		result = lappend(result, sc);
	}
	/* the lock stays until the end of the transaction, as the query's own */
	table_close(rel, NoLock);
	return result;
}

int
sharded_settings_push(const SourceTables *src)
{
	int			nestlevel;

	if (src->order_totals == NULL)
		return -1;
	nestlevel = NewGUCNestLevel();
	(void) set_config_option("enable_partitionwise_join", "on",
							 PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	(void) set_config_option("enable_partitionwise_aggregate", "on",
							 PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	return nestlevel;
}

void
sharded_settings_pop(int nestlevel)
{
	if (nestlevel >= 0)
		AtEOXact_GUC(true, nestlevel);
}
