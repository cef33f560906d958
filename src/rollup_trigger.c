/*
 * rollup_trigger.c
 *		The rollup's upkeep: its statement trigger, its row trigger for
 *		logical replication, and its event trigger for DDL, all run as the
 *		rollup's owner.
 *
 * The ERP's writers must never be refused and must never make the rollup
 * wrong.  If the upkeep ran as the writer, a writer would need privileges on
 * the extension's schema and tables (and without them its write fails), and
 * a writer whose row-level security hides some orders would recompute them
 * as missing.  So, as REFRESH MATERIALIZED VIEW does for a view's owner, the
 * upkeep switches to the rollup table's owner under
 * SECURITY_RESTRICTED_OPERATION with a pinned search_path, and runs the
 * statements customer_analytics._rollup_sync_sql() writes for the event.
 * The writer's rows reach those statements only as data: the transition
 * tables (new_rows, old_rows) registered with SPI, or, from the row trigger,
 * key values quoted as literals.  Which statements to run (and whether the
 * rollup's owner can read every source row without running untrusted code)
 * is decided in SQL, next to the rest of the rollup.
 *
 * Three entry points, one per way a write can reach the source tables:
 *   - rollup_sync_trigger: AFTER ... FOR EACH STATEMENT on every source
 *     table and partition (a write naming a partition fires only its own);
 *   - rollup_sync_row_trigger and rollup_sync_flush_trigger: AFTER ... FOR
 *     EACH ROW, ENABLE REPLICA, for logical replication's apply worker,
 *     which fires row triggers only: the first remembers the applied rows'
 *     keys, the second (deferred to the commit) brings the rollup up to
 *     date for all of them at once;
 *   - rollup_ddl_watch: the event trigger after CREATE TABLE ... PARTITION
 *     OF (new partitions get the triggers), ALTER TABLE ... ATTACH / DETACH
 *     PARTITION or ALTER COLUMN TYPE (rows changed without a write trigger:
 *     every order is recomputed), and ALTER TABLE ... ENABLE / DISABLE
 *     TRIGGER (a rollup trigger that no longer fires disables the rollup),
 *     and ALTER TABLE ... RENAME COLUMN (a column of the data contract
 *     renamed disables the rollup, the rename goes through).
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "common/hashfn.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "commands/event_trigger.h"
#include "commands/trigger.h"
#include "nodes/parsenodes.h"
#include "tcop/deparse_utility.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "replication/logicalworker.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

#include "owner_context.h"

PG_FUNCTION_INFO_V1(rollup_sync_trigger);
PG_FUNCTION_INFO_V1(rollup_sync_row_trigger);
PG_FUNCTION_INFO_V1(rollup_sync_flush_trigger);
PG_FUNCTION_INFO_V1(rollup_ddl_watch);

/* The kind of write that fired the trigger, as _rollup_sync_sql() names it. */
static const char *
trigger_operation(TriggerEvent event)
{
	if (TRIGGER_FIRED_BY_INSERT(event))
		return "INSERT";
	if (TRIGGER_FIRED_BY_UPDATE(event))
		return "UPDATE";
	if (TRIGGER_FIRED_BY_DELETE(event))
		return "DELETE";
	return "TRUNCATE";
}

static Oid	extension_relation_owner(const char *relname);

/* Owner of customer_analytics.order_rollup_<id>, or InvalidOid when it is gone. */
static Oid
rollup_owner(int32 rollup_id)
{
	return extension_relation_owner(psprintf("order_rollup_%d", rollup_id));
}

/*
 * Run one statement of the rollup's upkeep.  Under READ COMMITTED each
 * statement takes a new snapshot, which is what lets the recomputation see
 * a transaction it waited for.  A REPEATABLE READ or SERIALIZABLE writer's
 * own snapshot is older than its statement: the upkeep would not see orders
 * committed since it began (and PostgreSQL would report their key rows as a
 * serialization failure), so it runs on the latest snapshot, as the
 * referential-integrity triggers do.  Only writers that really overlap on
 * one order then get the serialization failure their isolation level
 * promises, and retry.
 */
static void
run_statement(const char *sql, int nparams, Oid *paramtypes, Datum *params)
{
	int			rc;

	if (!IsolationUsesXactSnapshot())
		rc = nparams > 0 ? SPI_execute_with_args(sql, nparams, paramtypes, params, NULL, false, 0)
			: SPI_execute(sql, false, 0);
	else
	{
		SPIPlanPtr	plan = SPI_prepare(sql, nparams, paramtypes);

		if (plan == NULL)
			elog(ERROR, "SPI_prepare failed for rollup statement: %s", SPI_result_code_string(SPI_result));
		rc = SPI_execute_snapshot(plan, params, NULL, GetLatestSnapshot(), InvalidSnapshot, false, true, 0);
		SPI_freeplan(plan);
	}
	if (rc < 0)
		elog(ERROR, "rollup statement failed: %s", SPI_result_code_string(rc));
}

/*
 * Ask customer_analytics.<generator>(args) for the statements of one piece
 * of upkeep, and run them in this SPI connection (where a statement
 * trigger's transition tables are registered), with the parameters $1...
 * (params) they may refer to: the applied rows' keys, from the row trigger.
 */
static void
run_generated_statements(const char *generator_call, int nargs, Oid *argtypes, Datum *args,
						 const char *nulls_arg, int nparams, Oid *paramtypes, Datum *params)
{
	bool		isnull;
	Datum		value;
	ArrayType  *statements;
	Datum	   *elems;
	bool	   *nulls;
	int			n;

	if (SPI_execute_with_args(generator_call, nargs, argtypes, args, nulls_arg, false, 1) != SPI_OK_SELECT ||
		SPI_processed != 1)
		elog(ERROR, "%s returned no row", generator_call);
	value = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	if (isnull)
		return;
	statements = DatumGetArrayTypeP(value);
	deconstruct_array(statements, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	for (int i = 0; i < n; i++)
	{
		if (nulls[i])
			continue;
		CHECK_FOR_INTERRUPTS();
		run_statement(TextDatumGetCString(elems[i]), nparams, paramtypes, params);
	}
}

/* What the upkeep of one event needs: the write, or the DDL, it follows. */
typedef struct UpkeepRequest
{
	int32		rollup_id;
	TriggerData *trigdata;		/* statement trigger: its transition tables */
	const char *op;				/* INSERT, UPDATE, DELETE, TRUNCATE or DDL */
	Oid			relid;			/* the relation written or altered */
	const char *rows_sql;		/* row trigger: the keys, as a query of $1, $2 */
	int			nkeys;			/* row trigger: 1 or 2 key arrays (text[]) */
	Datum		keys[2];		/* ... $1 and $2 of rows_sql */
} UpkeepRequest;

/*
 * True while this backend runs the rollup's own upkeep: the DDL it issues
 * itself (the triggers it gives a new partition) is not an outside change
 * for the event trigger to act on.  Backend-local, never settable from SQL.
 */
static bool upkeep_running = false;

static void run_upkeep_as_owner_guts(UpkeepRequest *req);

/*
 * Run one event's upkeep as the rollup's owner: SECURITY_RESTRICTED_OPERATION,
 * search_path pinned, the generated statements in one SPI connection.
 */
static void
run_upkeep_as_owner(UpkeepRequest *req)
{
	bool		was_running = upkeep_running;

	upkeep_running = true;
	PG_TRY();
	{
		run_upkeep_as_owner_guts(req);
	}
	PG_FINALLY();
	{
		upkeep_running = was_running;
	}
	PG_END_TRY();
}

/* run_upkeep_as_owner()'s work. */
static void
run_upkeep_as_owner_guts(UpkeepRequest *req)
{
	Oid			owner = rollup_owner(req->rollup_id);
	CaRoleSwitch sw;
	Oid			argtypes[4] = {INT4OID, TEXTOID, OIDOID, TEXTOID};
	Datum		args[4];
	char		nulls[4] = {' ', ' ', ' ', ' '};
	Oid			key_types[2] = {TEXTARRAYOID, TEXTARRAYOID};

	/* a rollup dropped while its triggers stayed: nothing to keep */
	if (!OidIsValid(owner))
		return;

	ca_become_role(owner, &sw);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (req->trigdata && SPI_register_trigger_data(req->trigdata) != SPI_OK_TD_REGISTER)
		elog(ERROR, "SPI_register_trigger_data failed");
	args[0] = Int32GetDatum(req->rollup_id);
	args[1] = CStringGetTextDatum(req->op);
	args[2] = ObjectIdGetDatum(req->relid);
	if (req->rows_sql)
		args[3] = CStringGetTextDatum(req->rows_sql);
	else
		nulls[3] = 'n';
	run_generated_statements("SELECT customer_analytics._rollup_sync_sql($1, $2, $3, $4)",
							 4, argtypes, args, nulls, req->nkeys, key_types, req->keys);
	SPI_finish();
	ca_restore_role(&sw);
}

/* The rollup id a trigger was created with (its one argument). */
static int32
trigger_rollup_id(FunctionCallInfo fcinfo, bool for_each_row)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo) ||
		!TRIGGER_FIRED_AFTER(trigdata->tg_event) ||
		(for_each_row != (TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) != 0)) ||
		trigdata->tg_trigger->tgnargs != 1)
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("customer_analytics's rollup trigger functions must be AFTER triggers with the rollup's id"),
				 errhint("Let customer_analytics.rebuild_rollup() create the rollup's triggers.")));
	return pg_strtoint32(trigdata->tg_trigger->tgargs[0]);
}

/*
 * customer_analytics._rollup_sync() RETURNS trigger, argument: the rollup's
 * id.  AFTER ... FOR EACH STATEMENT on the three source tables and on every
 * partition of them (a write that names a partition fires only its own
 * statement triggers).
 */
Datum
rollup_sync_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	UpkeepRequest req = {0};

	req.rollup_id = trigger_rollup_id(fcinfo, false);
	req.trigdata = trigdata;
	req.op = trigger_operation(trigdata->tg_event);
	req.relid = RelationGetRelid(trigdata->tg_relation);
	run_upkeep_as_owner(&req);
	return PointerGetDatum(NULL);
}

/*
 * Keys of rows applied by logical replication in this transaction, waiting
 * for the deferred flush trigger (or for a batch to fill).  Allocated in
 * TopTransactionContext, forgotten at the end of every transaction.  Each
 * key is remembered once (pending_seen): an order's header and its lines,
 * and an UPDATE's old and new row, name it once, so that the flush at the
 * commit recomputes it once, with all its lines.
 */
typedef struct PendingKey
{
	/* the hash key: the fields below up to relid */
	int32		rollup_id;
	bool		is_order;		/* order keys, or a customer code */
	char	   *key1;			/* order_type or customer_code; NULL for SQL NULL */
	char	   *key2;			/* order_number */
	/* the entry */
	Oid			relid;			/* a relation of the source table written */
} PendingKey;

static List *pending_keys = NIL;	/* PendingKey *, in the order first seen */
static HTAB *pending_seen = NULL;	/* the same keys, to remember each once */
static bool pending_callback_registered = false;

/*
 * A flush before the commit once this many distinct keys wait, to bound
 * the memory of a huge transaction (about 100 bytes a key).  Until then
 * the commit's flush recomputes each order once: a flush every 10,000
 * applied rows (1.5) recomputed orders before their lines had arrived, and
 * again after.
 */
#define PENDING_FLUSH_KEYS	100000

/* Forget the pending keys when the transaction ends, whichever way. */
static void
pending_keys_reset(XactEvent event, void *arg)
{
	(void) arg;
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT ||
		event == XACT_EVENT_PREPARE || event == XACT_EVENT_PARALLEL_COMMIT ||
		event == XACT_EVENT_PARALLEL_ABORT)
	{
		pending_keys = NIL;
		pending_seen = NULL;	/* freed with TopTransactionContext */
	}
}

/* pending_seen's hash of a key: its rollup, kind and both values */
static uint32
pending_key_hash(const void *key, Size keysize)
{
	const PendingKey *k = (const PendingKey *) key;
	uint32		h = hash_uint32((uint32) k->rollup_id) ^ (k->is_order ? 0x9e3779b9 : 0);

	(void) keysize;
	if (k->key1)
		h = hash_combine(h, hash_bytes((const unsigned char *) k->key1, strlen(k->key1)));
	if (k->key2)
		h = hash_combine(h, hash_bytes((const unsigned char *) k->key2, strlen(k->key2)) + 1);
	return h;
}

/* two values equal, NULL equal to NULL only */
static bool
same_value(const char *a, const char *b)
{
	return (a == NULL || b == NULL) ? a == b : strcmp(a, b) == 0;
}

/* pending_seen's comparison: 0 when two keys are the same */
static int
pending_key_match(const void *key1, const void *key2, Size keysize)
{
	const PendingKey *a = (const PendingKey *) key1;
	const PendingKey *b = (const PendingKey *) key2;

	(void) keysize;
	return (a->rollup_id == b->rollup_id && a->is_order == b->is_order &&
			same_value(a->key1, b->key1) && same_value(a->key2, b->key2)) ? 0 : 1;
}

/* Remember the key columns of one applied row, unless they already wait. */
static void
remember_key(int32 rollup_id, Relation rel, HeapTuple tuple, bool is_order)
{
	TupleDesc	desc = RelationGetDescr(rel);
	MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);
	PendingKey	probe = {0};
	PendingKey *key;
	bool		found;

	if (pending_seen == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = offsetof(PendingKey, relid);
		ctl.entrysize = sizeof(PendingKey);
		ctl.hash = pending_key_hash;
		ctl.match = pending_key_match;
		ctl.hcxt = TopTransactionContext;
		pending_seen = hash_create("customer_analytics pending rollup keys", 1024, &ctl,
								   HASH_ELEM | HASH_FUNCTION | HASH_COMPARE | HASH_CONTEXT);
	}
	probe.rollup_id = rollup_id;
	probe.is_order = is_order;
	probe.key1 = SPI_getvalue(tuple, desc, SPI_fnumber(desc, is_order ? "order_type" : "customer_code"));
	if (is_order)
		probe.key2 = SPI_getvalue(tuple, desc, SPI_fnumber(desc, "order_number"));
	key = hash_search(pending_seen, &probe, HASH_ENTER, &found);
	if (!found)
	{
		key->relid = RelationGetRelid(rel);
		pending_keys = lappend(pending_keys, key);
	}
	else
	{
		if (probe.key1)
			pfree(probe.key1);
		if (probe.key2)
			pfree(probe.key2);
	}
	MemoryContextSwitchTo(old);
}

/* An array of text from the n values (NULL for SQL NULL) of values. */
static Datum
text_array(char **values, int n)
{
	Datum	   *elems = palloc(sizeof(Datum) * Max(n, 1));
	bool	   *nulls = palloc(sizeof(bool) * Max(n, 1));
	int			dims[1] = {n};
	int			lbs[1] = {1};

	for (int i = 0; i < n; i++)
	{
		nulls[i] = values[i] == NULL;
		elems[i] = nulls[i] ? (Datum) 0 : CStringGetTextDatum(values[i]);
	}
	return PointerGetDatum(construct_md_array(elems, nulls, 1, dims, lbs, TEXTOID, -1, false, TYPALIGN_INT));
}

/*
 * Bring the rollup up to date for every pending key: one upkeep per rollup
 * and kind of key (orders, customers), instead of one upkeep per applied
 * row.  The keys reach its statements as text arrays, parameters $1 (and
 * $2) unnested: a short statement to parse and plan whatever the number of
 * keys, planned on the arrays' true length (a VALUES list of quoted
 * literals, 1.5's, cost more to parse and plan than to run).
 */
static void
flush_pending_keys(void)
{
	List	   *keys = pending_keys;
	HTAB	   *seen = pending_seen;	/* holds the keys: freed once done */

	pending_keys = NIL;
	pending_seen = NULL;
	while (keys != NIL)
	{
		PendingKey *first = (PendingKey *) linitial(keys);
		List	   *rest = NIL;
		ListCell   *lc;
		char	  **key1 = palloc(sizeof(char *) * list_length(keys));
		char	  **key2 = palloc(sizeof(char *) * list_length(keys));
		int			n = 0;
		UpkeepRequest req = {0};

		foreach(lc, keys)
		{
			PendingKey *key = (PendingKey *) lfirst(lc);

			if (key->rollup_id != first->rollup_id || key->is_order != first->is_order)
			{
				rest = lappend(rest, key);
				continue;
			}
			key1[n] = key->key1;
			key2[n] = key->key2;
			n++;
		}
		req.rollup_id = first->rollup_id;
		req.op = "UPDATE";
		req.relid = first->relid;
		req.keys[0] = text_array(key1, n);
		if (first->is_order)
		{
			req.keys[1] = text_array(key2, n);
			req.nkeys = 2;
			req.rows_sql = "SELECT * FROM ROWS FROM (pg_catalog.unnest($1::pg_catalog.text[]),"
				" pg_catalog.unnest($2::pg_catalog.text[])) AS v(order_type, order_number)";
		}
		else
		{
			req.nkeys = 1;
			req.rows_sql = "SELECT * FROM pg_catalog.unnest($1::pg_catalog.text[]) AS v(customer_code)";
		}
		run_upkeep_as_owner(&req);
		keys = rest;
	}
	if (seen != NULL)
		hash_destroy(seen);
}

/*
 * customer_analytics._rollup_sync_row() RETURNS trigger, argument: the
 * rollup's id.  AFTER INSERT OR UPDATE OR DELETE ... FOR EACH ROW, ENABLE
 * REPLICA, on the three source tables (cloned by PostgreSQL onto every
 * partition, present and future).  A logical replication apply worker fires
 * row triggers only, never statement triggers: this is how its rows reach
 * the rollup.  It only remembers the row's keys (old and new); the deferred
 * trigger below brings the rollup up to date once, at the transaction's
 * commit.  In any other session with session_replication_role = replica the
 * statement triggers (ENABLE ALWAYS) already do the work, so this returns at
 * once.
 */
Datum
rollup_sync_row_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	int32		rollup_id = trigger_rollup_id(fcinfo, true);
	bool		is_order;

	if (!IsLogicalWorker())
		return PointerGetDatum(NULL);
	if (!pending_callback_registered)
	{
		RegisterXactCallback(pending_keys_reset, NULL);
		pending_callback_registered = true;
	}
	is_order = SPI_fnumber(RelationGetDescr(trigdata->tg_relation), "order_number") > 0;
	if (trigdata->tg_trigtuple)
		remember_key(rollup_id, trigdata->tg_relation, trigdata->tg_trigtuple, is_order);
	if (trigdata->tg_newtuple)
		remember_key(rollup_id, trigdata->tg_relation, trigdata->tg_newtuple, is_order);
	if (list_length(pending_keys) >= PENDING_FLUSH_KEYS)
		flush_pending_keys();
	return PointerGetDatum(NULL);
}

/*
 * customer_analytics._rollup_sync_flush() RETURNS trigger: a DEFERRABLE
 * INITIALLY DEFERRED constraint trigger beside the row trigger (ENABLE
 * REPLICA too), so it fires when the applied transaction commits, after
 * every row trigger: its first firing brings the rollup up to date for all
 * the keys remembered, the others find nothing left.
 */
Datum
rollup_sync_flush_trigger(PG_FUNCTION_ARGS)
{
	(void) trigger_rollup_id(fcinfo, true);
	if (IsLogicalWorker() && pending_keys != NIL)
		flush_pending_keys();
	return PointerGetDatum(NULL);
}

/* Owner of customer_analytics.<relname>, or InvalidOid when it is gone. */
static Oid
extension_relation_owner(const char *relname)
{
	Oid			nspid = get_namespace_oid("customer_analytics", true);
	Oid			relid;
	HeapTuple	tuple;
	Oid			owner;

	if (!OidIsValid(nspid))
		return InvalidOid;
	relid = get_relname_relid(relname, nspid);
	if (!OidIsValid(relid))
		return InvalidOid;
	tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	if (!HeapTupleIsValid(tuple))
		return InvalidOid;
	owner = ((Form_pg_class) GETSTRUCT(tuple))->relowner;
	ReleaseSysCache(tuple);
	return owner;
}

/*
 * What an ALTER TABLE on a watched relation means for the rollup:
 *   - "ALTER TABLE": it can change the rows a source table holds without a
 *     write trigger firing (ATTACH and DETACH PARTITION move rows in or out;
 *     ALTER COLUMN TYPE ... USING rewrites values): every order is
 *     recomputed;
 *   - "ALTER TABLE TRIGGERS": it enables or disables triggers: if the
 *     rollup's own no longer all fire, writes can go unseen from now on, so
 *     the rollup is disabled until it is rebuilt (enabling them again later
 *     cannot bring back what was missed meanwhile);
 *   - "RENAME COLUMN": ALTER TABLE ... RENAME COLUMN changes no row, but a
 *     column of the data contract renamed leaves the rollup unable to
 *     follow the next write: it is disabled at once, saying what to run;
 *   - "RENAME TABLE": ALTER TABLE ... RENAME TO or SET SCHEMA changes no
 *     row, but a source table renamed or moved away leaves the source
 *     without it: the rollup is disabled at once, saying what to run;
 *   - NULL: anything else (adding a column, ...) leaves rows and triggers be.
 */
static const char *
alter_table_effect(CollectedCommand *cmd)
{
	ListCell   *lc;
	const char *effect = NULL;

	/* ALTER TABLE ... RENAME COLUMN changes no row, but maybe the contract */
	if (cmd != NULL && cmd->type == SCT_Simple && cmd->parsetree != NULL &&
		IsA(cmd->parsetree, RenameStmt) &&
		((RenameStmt *) cmd->parsetree)->renameType == OBJECT_COLUMN)
		return "RENAME COLUMN";
	/* ALTER TABLE ... RENAME TO / SET SCHEMA: maybe a source table's name */
	if (cmd != NULL && cmd->type == SCT_Simple && cmd->parsetree != NULL &&
		((IsA(cmd->parsetree, RenameStmt) &&
		  ((RenameStmt *) cmd->parsetree)->renameType == OBJECT_TABLE) ||
		 IsA(cmd->parsetree, AlterObjectSchemaStmt)))
		return "RENAME TABLE";
	if (cmd == NULL || cmd->type != SCT_AlterTable)
		return "ALTER TABLE";	/* not the shape we know: be safe */
	foreach(lc, cmd->d.alterTable.subcmds)
	{
		CollectedATSubcmd *sub = (CollectedATSubcmd *) lfirst(lc);
		AlterTableCmd *at = (AlterTableCmd *) sub->parsetree;

		if (!IsA(at, AlterTableCmd))
			return "ALTER TABLE";
		switch (at->subtype)
		{
			case AT_AttachPartition:
			case AT_DetachPartition:
			case AT_DetachPartitionFinalize:
			case AT_AlterColumnType:
				return "ALTER TABLE";
			case AT_EnableTrig:
			case AT_EnableAlwaysTrig:
			case AT_EnableReplicaTrig:
			case AT_DisableTrig:
			case AT_EnableTrigAll:
			case AT_DisableTrigAll:
			case AT_EnableTrigUser:
			case AT_DisableTrigUser:
				effect = "ALTER TABLE TRIGGERS";
				break;
			default:
				break;
		}
	}
	return effect;
}

/*
 * The DDL commands of this event that touch a current rollup's source
 * table or one of its partitions, as UpkeepRequests.  The rollup catalog
 * is read as its owner (the extension's owner): the role that ran the DDL
 * may have no privilege on the extension's schema, and must not be able to
 * make the event trigger fail its CREATE TABLE.
 */
#define DDL_COMMANDS_SQL \
	"SELECT x.id, d.objid, d.command_tag, d.command" \
	" FROM pg_catalog.pg_event_trigger_ddl_commands() d, customer_analytics.rollups x" \
	" WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass" \
	" AND d.command_tag IN ('CREATE TABLE', 'ALTER TABLE') AND x.state = 'current'"

static List *
ddl_upkeep_requests(void)
{
	Oid			catalog_owner = extension_relation_owner("rollups");
	CaRoleSwitch sw;
	List	   *requests = NIL;
	MemoryContext caller = CurrentMemoryContext;
	bool		lost_known;
	bool		lost_null;

	if (!OidIsValid(catalog_owner))
		return NIL;
	ca_become_role(catalog_owner, &sw);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	/*
	 * A source table renamed away is found by the rollup's triggers on it
	 * (_rollup_lost_table, new in 1.6: under older SQL objects, not yet).
	 */
	if (SPI_execute("SELECT pg_catalog.to_regprocedure("
					"'customer_analytics._rollup_lost_table(customer_analytics.rollups, oid)') IS NOT NULL",
					true, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "reading the catalog failed");
	lost_known = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &lost_null));
	if (SPI_execute(lost_known ?
					DDL_COMMANDS_SQL " AND (customer_analytics._rollup_source_table(x, d.objid) IS NOT NULL"
					"      OR customer_analytics._rollup_lost_table(x, d.objid) IS NOT NULL)" :
					DDL_COMMANDS_SQL " AND customer_analytics._rollup_source_table(x, d.objid) IS NOT NULL",
					true, 0) != SPI_OK_SELECT)
		elog(ERROR, "reading the DDL commands failed");
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	row = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		MemoryContext spi = MemoryContextSwitchTo(caller);
		UpkeepRequest *req = palloc0(sizeof(UpkeepRequest));

		req->rollup_id = DatumGetInt32(SPI_getbinval(row, desc, 1, &isnull));
		req->relid = DatumGetObjectId(SPI_getbinval(row, desc, 2, &isnull));
		req->op = TextDatumGetCString(SPI_getbinval(row, desc, 3, &isnull));
		if (strcmp(req->op, "ALTER TABLE") == 0)
			req->op = alter_table_effect((CollectedCommand *) DatumGetPointer(SPI_getbinval(row, desc, 4, &isnull)));
		/* older SQL objects know no RENAME TABLE: what they did before */
		if (req->op != NULL && strcmp(req->op, "RENAME TABLE") == 0 && !lost_known)
			req->op = "ALTER TABLE";
		if (req->op != NULL)
			requests = lappend(requests, req);
		MemoryContextSwitchTo(spi);
	}
	SPI_finish();
	ca_restore_role(&sw);
	return requests;
}

/*
 * customer_analytics._rollup_ddl_watch() RETURNS event_trigger, on
 * ddl_command_end for CREATE TABLE and ALTER TABLE: a new partition of a
 * source table gets the rollup's triggers; an ALTER TABLE on a source table
 * or partition (ATTACH, DETACH, a rewrite that changes values) changed rows
 * no trigger saw, so every order is recomputed.  The upkeep runs as the
 * rollup's owner, like the triggers'.
 */
Datum
rollup_ddl_watch(PG_FUNCTION_ARGS)
{
	ListCell   *lc;

	if (!CALLED_AS_EVENT_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("customer_analytics._rollup_ddl_watch() must be called as an event trigger")));
	if (upkeep_running)
		PG_RETURN_NULL();		/* the rollup's own DDL */
	if (ca_scratch_ddl_running)
		PG_RETURN_NULL();		/* a refresh's scratch table (temporary, checked) */
	foreach(lc, ddl_upkeep_requests())
		run_upkeep_as_owner((UpkeepRequest *) lfirst(lc));
	PG_RETURN_NULL();
}
