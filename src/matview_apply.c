/*
 * matview_apply.c
 *		Replace the rows of some customers in a materialized view, in place,
 *		without blocking its readers.
 *
 * REFRESH MATERIALIZED VIEW CONCURRENTLY computes the whole result, diffs
 * it against the whole view and applies the difference; its cost grows
 * with the view even when a handful of customers changed.  A campaign's
 * delta refresh knows which customers changed and their new rows, so it
 * applies only those, the way CONCURRENTLY applies its diff: under
 * ExclusiveLock (readers go on reading the old rows until commit; other
 * refreshes wait), old rows deleted and new rows inserted with their index
 * entries, all WAL-logged; a customer with one old and one new row left is
 * written as an update of the old one (HOT, with no new index entry, when
 * its page has room: the view's index does not grow with every refresh).  Like CONCURRENTLY's diff, a row that is the
 * same before and after (column by column, by binary image) is left where
 * it is: a changed customer whose rows did not change, or the months of a
 * customer that did not change, cost a read and no write.  PostgreSQL refuses INSERT/DELETE on a
 * materialized view from SQL, so this is done with the table access method
 * and executor's index routines, as logical replication's apply does for
 * tables (execReplication.c); the current rows of the customers are found
 * the same way, through the view's index on customer_code, without a
 * query.  Only the view's owner may do it, as only the owner may REFRESH.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/nbtree.h"
#include "access/relation.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_am.h"
#include "catalog/pg_opfamily.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "parser/parse_relation.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/relcache.h"
#include "utils/snapmgr.h"

PG_FUNCTION_INFO_V1(matview_apply);
PG_FUNCTION_INFO_V1(matview_lock);
PG_FUNCTION_INFO_V1(matview_applied);
PG_FUNCTION_INFO_V1(matview_touched);

/*
 * The rows each _matview_apply() added to a view (inserted minus deleted),
 * in this transaction, not yet read by _matview_applied(): what lets a
 * refresh keep a view's row count (its count recorded at the last refresh
 * plus these) instead of counting the whole view again.  One entry per
 * call, with the subtransaction it ran in: an aborted subtransaction's
 * writes are undone, and so are its entries; the transaction's end forgets
 * them all.  Kept in TopMemoryContext (a few per refresh).
 */
typedef struct AppliedRows
{
	Oid			relid;
	int64		added;
	SubTransactionId subxid;	/* where the rows were applied */
	SubTransactionId read_in;	/* where _matview_applied() read them, or Invalid */
	ArrayType  *touched;		/* the keys of the rows written or deleted (text[]) */
	struct AppliedRows *next;
} AppliedRows;

static AppliedRows *applied_rows = NULL;
static bool applied_callbacks = false;

static void
applied_forget(SubTransactionId from)
{
	AppliedRows **link = &applied_rows;

	while (*link != NULL)
	{
		AppliedRows *a = *link;

		if (from == InvalidSubTransactionId || a->subxid >= from)
		{
			*link = a->next;
			pfree(a->touched);
			pfree(a);
			continue;
		}
		/* a read rolled back: the rows are to be read again */
		if (a->read_in != InvalidSubTransactionId && a->read_in >= from)
			a->read_in = InvalidSubTransactionId;
		link = &a->next;
	}
}

static void
applied_xact_callback(XactEvent event, pg_attribute_unused() void *arg)
{
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT ||
		event == XACT_EVENT_PARALLEL_COMMIT || event == XACT_EVENT_PARALLEL_ABORT ||
		event == XACT_EVENT_PREPARE)
		applied_forget(InvalidSubTransactionId);
}

/* a subtransaction rolled back: so are the rows its calls applied (and its children's) */
static void
applied_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
						 pg_attribute_unused() SubTransactionId parentSubid, pg_attribute_unused() void *arg)
{
	if (event == SUBXACT_EVENT_ABORT_SUB)
		applied_forget(mySubid);
}

static void
applied_note(Oid relid, int64 added, ArrayType *touched)
{
	AppliedRows *a;

	if (!applied_callbacks)
	{
		RegisterXactCallback(applied_xact_callback, NULL);
		RegisterSubXactCallback(applied_subxact_callback, NULL);
		applied_callbacks = true;
	}
	a = MemoryContextAlloc(TopMemoryContext, sizeof(AppliedRows));
	a->relid = relid;
	a->added = added;
	a->subxid = GetCurrentSubTransactionId();
	a->read_in = InvalidSubTransactionId;
	a->touched = (ArrayType *) MemoryContextAlloc(TopMemoryContext, VARSIZE(touched));
	memcpy(a->touched, touched, VARSIZE(touched));
	a->next = applied_rows;
	applied_rows = a;
}

/* The relation's name, schema-qualified and quoted, for SQL and messages. */
static char *
qualified_name(Relation rel)
{
	return quote_qualified_identifier(get_namespace_name(RelationGetNamespace(rel)),
									  RelationGetRelationName(rel));
}

/* Error unless desc (the rows) has exactly the view's column types. */
static void
check_row_type(Relation rel, TupleDesc desc)
{
	TupleDesc	view = RelationGetDescr(rel);
	bool		same = view->natts == desc->natts;

	for (int i = 0; same && i < view->natts; i++)
		same = TupleDescAttr(view, i)->atttypid == TupleDescAttr(desc, i)->atttypid &&
			!TupleDescAttr(view, i)->attisdropped;
	if (!same)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("the new rows do not have the columns of materialized view %s", qualified_name(rel)),
				 errhint("The view was changed by hand; rebuild it with a full refresh.")));
}

/*
 * The prepared statement of key_rows_sql() per view, kept for the session
 * (SPI_keepplan: the plan cache plans it again when the view, its indexes
 * or the search_path change), so that a refresh does not parse and plan it
 * again.  An entry is used only for the view it was made for, under the
 * name it was made with: a view renamed, or dropped and made again, gets a
 * new statement.  A few entries (a campaign's three views), the oldest
 * replaced when full.
 */
#define KEY_ROWS_PLANS 12

typedef struct KeyRowsPlan
{
	Oid			relid;
	char	   *name;			/* qualified, quoted (TopMemoryContext) */
	SPIPlanPtr	plan;
} KeyRowsPlan;

static KeyRowsPlan key_rows_plans[KEY_ROWS_PLANS];
static int	key_rows_next = 0;

/* The kept statement of key_rows_sql() for rel (named name), prepared once. */
static SPIPlanPtr
key_rows_plan(Relation rel, const char *name)
{
	Oid			argtypes[1] = {TEXTARRAYOID};
	KeyRowsPlan *slot;
	SPIPlanPtr	plan;

	for (int i = 0; i < KEY_ROWS_PLANS; i++)
		if (key_rows_plans[i].plan != NULL && key_rows_plans[i].relid == RelationGetRelid(rel) &&
			strcmp(key_rows_plans[i].name, name) == 0)
			return key_rows_plans[i].plan;
	plan = SPI_prepare(psprintf("SELECT m.ctid, m.* FROM %s m"
								" WHERE m.customer_code = ANY (ARRAY(SELECT pg_catalog.unnest($1)))", name),
					   1, argtypes);
	if (plan == NULL)
		elog(ERROR, "could not prepare the search of the rows to replace in %s: %s",
			 name, SPI_result_code_string(SPI_result));
	slot = &key_rows_plans[key_rows_next];
	key_rows_next = (key_rows_next + 1) % KEY_ROWS_PLANS;
	if (slot->plan != NULL)
	{
		SPI_freeplan(slot->plan);
		pfree(slot->name);
		slot->plan = NULL;
	}
	if (SPI_keepplan(plan) != 0)
		elog(ERROR, "could not keep the search of the rows to replace in %s", name);
	slot->relid = RelationGetRelid(rel);
	slot->name = MemoryContextStrdup(TopMemoryContext, name);
	slot->plan = plan;
	return plan;
}

/*
 * The view's current rows to replace: each row a tuple (vals[i], of
 * descriptor desc, the view's columns from attribute first on) and its tid.
 */
typedef struct OldRows
{
	HeapTuple  *vals;
	ItemPointerData *tids;
	TupleDesc	desc;
	int			first;			/* the view's first column in desc */
	uint64		n;
} OldRows;

/*
 * The view's current rows whose customer_code is one of keys, by an
 * ordinary query (prepared once per session), as of the active snapshot:
 * the path for a view without an index key_index() takes.  The keys are
 * given as an array the planner cannot see the size of (an InitPlan): it
 * then probes the index for each key, never reading the whole view with a
 * hashed filter, whatever its estimates (the same plan whatever the keys,
 * so one kept for the session is the one each call would make).
 */
static void
key_rows_sql(Relation rel, Datum keys, OldRows *old)
{
	char	   *name = qualified_name(rel);
	Datum		args[1] = {keys};
	SPITupleTable *tuptable;

	if (SPI_execute_plan(key_rows_plan(rel, name), args, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not find the rows to replace in %s", name);
	tuptable = SPI_tuptable;
	old->n = SPI_processed;
	old->vals = tuptable->vals;
	old->desc = tuptable->tupdesc;
	old->first = 2;
	old->tids = palloc(sizeof(ItemPointerData) * Max(old->n, 1));
	for (uint64 i = 0; i < old->n; i++)
	{
		bool		isnull;

		old->tids[i] = *(ItemPointer) DatumGetPointer(SPI_getbinval(tuptable->vals[i], tuptable->tupdesc, 1, &isnull));
	}
}

/*
 * An index of rel that finds its rows by customer_code (attribute key + 1,
 * of type text) as "customer_code = key" does: a valid B-tree index, not
 * partial, whose first column is customer_code itself with the column's
 * collation and text's own B-tree operator family (its "=" is text's, under
 * the collation; text_pattern_ops compares bytes).  Opened
 * (AccessShareLock) and returned, or NULL when rel has none.
 */
static Relation
key_index(Relation rel, int key)
{
	Form_pg_attribute att = TupleDescAttr(RelationGetDescr(rel), key);
	List	   *indexes;
	ListCell   *lc;
	Relation	found = NULL;

	if (att->atttypid != TEXTOID)
		return NULL;
	indexes = RelationGetIndexList(rel);
	foreach(lc, indexes)
	{
		Relation	irel = index_open(lfirst_oid(lc), AccessShareLock);
		Form_pg_index index = irel->rd_index;

		if (irel->rd_rel->relam == BTREE_AM_OID && index->indisvalid && index->indisready &&
			index->indislive && index->indnkeyatts >= 1 && index->indkey.values[0] == key + 1 &&
			irel->rd_opfamily[0] == TEXT_BTREE_FAM_OID && irel->rd_opcintype[0] == TEXTOID &&
			irel->rd_indcollation[0] == att->attcollation &&
			RelationGetIndexPredicate(irel) == NIL)
		{
			found = irel;
			break;
		}
		index_close(irel, AccessShareLock);
	}
	list_free(indexes);
	return found;
}

/* The order of two keys by the index's comparison (qsort_arg's comparator). */
typedef struct KeyOrder
{
	FmgrInfo   *cmp;
	Oid			collation;
} KeyOrder;

static int
key_order(const void *a, const void *b, void *arg)
{
	KeyOrder   *order = (KeyOrder *) arg;

	return DatumGetInt32(FunctionCall2Coll(order->cmp, order->collation,
										   *(const Datum *) a, *(const Datum *) b));
}

/* Keep a copy of the row in slot (and its tid) among the old rows. */
static void
old_rows_add(OldRows *old, uint64 *cap, TupleTableSlot *slot)
{
	if (old->n == *cap)
	{
		*cap *= 2;
		old->vals = repalloc_huge(old->vals, sizeof(HeapTuple) * *cap);
		old->tids = repalloc_huge(old->tids, sizeof(ItemPointerData) * *cap);
	}
	old->vals[old->n] = ExecCopySlotHeapTuple(slot);
	old->tids[old->n] = slot->tts_tid;
	old->n++;
}

/*
 * The view's current rows whose customer_code is one of keys, as of the
 * active snapshot, read through irel (key_index()) directly: the keys (NULLs
 * dropped, as "= ANY" drops them) put in the index's order, which is
 * checked in one pass and sorted only when they are not in it (the
 * refresh's lists are written in that order), equal keys kept once; then
 * one descent of the index per key, each row copied with its tid.  What
 * the query of key_rows_sql() finds, without its parse of the array, its
 * executor and its sort of the keys in the column's collation.
 */
static void
key_rows_index(Relation rel, Relation irel, Datum *elems, int nkeys, OldRows *old)
{
	bool		sorted = true;
	KeyOrder	order;
	IndexScanDesc scan;
	TupleTableSlot *slot;
	uint64		cap = 64;

	order.cmp = index_getprocinfo(irel, 1, BTORDER_PROC);
	order.collation = irel->rd_indcollation[0];
	for (int i = 1; sorted && i < nkeys; i++)
		sorted = key_order(&elems[i - 1], &elems[i], &order) <= 0;
	if (!sorted)
		qsort_arg(elems, nkeys, sizeof(Datum), key_order, &order);

	old->desc = RelationGetDescr(rel);
	old->first = 1;
	old->n = 0;
	old->vals = palloc(sizeof(HeapTuple) * cap);
	old->tids = palloc(sizeof(ItemPointerData) * cap);
	slot = table_slot_create(rel, NULL);
	scan = index_beginscan(rel, irel, GetActiveSnapshot(), 1, 0);
	for (int i = 0; i < nkeys; i++)
	{
		ScanKeyData skey;

		CHECK_FOR_INTERRUPTS();
		/* (sorted: an equal key is next to its twin) */
		if (i > 0 && key_order(&elems[i - 1], &elems[i], &order) == 0)
			continue;
		ScanKeyEntryInitialize(&skey, 0, 1, BTEqualStrategyNumber, InvalidOid,
							   irel->rd_indcollation[0], F_TEXTEQ, elems[i]);
		index_rescan(scan, &skey, 1, NULL, 0);
		while (index_getnext_slot(scan, ForwardScanDirection, slot))
			old_rows_add(old, &cap, slot);
	}
	index_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
}

/*
 * The view's current rows whose customer_code (attribute key + 1) is one
 * of keys (NULLs dropped, as "= ANY" drops them), as of the active
 * snapshot: through its index on customer_code when it has one
 * (key_index()), else by a query.  The current user must be allowed to
 * read the view, as the query requires.
 */
static void
old_rows_read(Relation rel, int key, Datum keys, OldRows *old)
{
	Form_pg_attribute att = TupleDescAttr(RelationGetDescr(rel), key);
	Relation	irel;
	Datum	   *elems;
	bool	   *elem_nulls;
	int			nelems;
	int			nkeys = 0;

	if (pg_class_aclcheck(RelationGetRelid(rel), GetUserId(), ACL_SELECT) != ACLCHECK_OK)
		aclcheck_error(ACLCHECK_NO_PRIV, OBJECT_MATVIEW, RelationGetRelationName(rel));
	if (att->atttypid != TEXTOID)
	{
		key_rows_sql(rel, keys, old);
		return;
	}
	deconstruct_array(DatumGetArrayTypeP(keys), TEXTOID, -1, false, TYPALIGN_INT, &elems, &elem_nulls, &nelems);
	for (int i = 0; i < nelems; i++)
		if (!elem_nulls[i])
			elems[nkeys++] = elems[i];
	irel = key_index(rel, key);
	if (irel == NULL)
	{
		key_rows_sql(rel, keys, old);
		return;
	}
	key_rows_index(rel, irel, elems, nkeys, old);
	index_close(irel, NoLock);
}

/*
 * Rows deformed once: the view's columns (attributes
 * first .. first + natts - 1 of each row) as arrays of values and null
 * flags, natts per row, so that hashing and comparing them reads each
 * column once (SPI_getbinval walks a row's varlena columns again for each
 * column asked).
 */
typedef struct DeformedRows
{
	Datum	   *values;
	bool	   *nulls;
	int			natts;
} DeformedRows;

static void
deform_rows(HeapTuple *vals, TupleDesc desc, uint64 nrows, int first, int natts, DeformedRows *rows)
{
	int			width = desc->natts;
	Datum	   *values = palloc(sizeof(Datum) * width);
	bool	   *nulls = palloc(sizeof(bool) * width);

	rows->natts = natts;
	rows->values = palloc(sizeof(Datum) * Max(nrows, 1) * natts);
	rows->nulls = palloc(sizeof(bool) * Max(nrows, 1) * natts);
	for (uint64 r = 0; r < nrows; r++)
	{
		CHECK_FOR_INTERRUPTS();
		heap_deform_tuple(vals[r], desc, values, nulls);
		memcpy(rows->values + r * natts, values + first - 1, sizeof(Datum) * natts);
		memcpy(rows->nulls + r * natts, nulls + first - 1, sizeof(bool) * natts);
	}
	pfree(values);
	pfree(nulls);
}

/* The hash of a deformed row's columns by their binary image, as datum_image_eq compares them. */
static uint32
row_image_hash(TupleDesc view, const DeformedRows *rows, uint64 row)
{
	uint32		h = 0;

	for (int i = 0; i < view->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(view, i);
		uint64		k = row * rows->natts + i;

		h = hash_combine(h, rows->nulls[k] ? 0x9e3779b9 :
						 datum_image_hash(rows->values[k], att->attbyval, att->attlen));
	}
	return h;
}

/* Are an old row and a new row the same, column by column? */
static bool
rows_identical(TupleDesc view, const DeformedRows *old, uint64 o, const DeformedRows *new, uint64 n)
{
	for (int i = 0; i < view->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(view, i);
		uint64		ok = o * old->natts + i;
		uint64		nk = n * new->natts + i;

		if (old->nulls[ok] != new->nulls[nk])
			return false;
		if (!old->nulls[ok] && !datum_image_eq(old->values[ok], new->values[nk], att->attbyval, att->attlen))
			return false;
	}
	return true;
}

/*
 * Match the new rows against the old ones: an old row identical to a new
 * row (each used once) stays where it is; the other old rows are to be
 * deleted (old_kept false) and the other new rows inserted (new_kept
 * false).  A hash of each old row's columns, chained per bucket; each row
 * deformed once.
 */
static void
match_rows(TupleDesc view, const OldRows *old_rows, SPITupleTable *new_rows, uint64 nnew,
		   int key, bool *old_kept, bool *new_kept, int64 *new_pair)
{
	uint64		nbuckets = 1;
	int64	   *bucket;
	int64	   *next;
	uint32	   *hash;
	int32	   *claims;
	DeformedRows old;
	DeformedRows new;
	uint64		nold = old_rows->n;

	for (uint64 j = 0; j < nnew; j++)
	{
		new_kept[j] = false;
		new_pair[j] = -1;
	}
	if (nold == 0)
		return;
	while (nbuckets < 2 * nold)
		nbuckets <<= 1;
	bucket = palloc(sizeof(int64) * nbuckets);
	next = palloc(sizeof(int64) * nold);
	hash = palloc(sizeof(uint32) * nold);
	for (uint64 b = 0; b < nbuckets; b++)
		bucket[b] = -1;
	deform_rows(old_rows->vals, old_rows->desc, nold, old_rows->first, view->natts, &old);
	deform_rows(new_rows->vals, new_rows->tupdesc, nnew, 1, view->natts, &new);
	for (uint64 i = 0; i < nold; i++)
	{
		CHECK_FOR_INTERRUPTS();
		hash[i] = row_image_hash(view, &old, i);
		next[i] = bucket[hash[i] & (nbuckets - 1)];
		bucket[hash[i] & (nbuckets - 1)] = (int64) i;
		old_kept[i] = false;
	}
	for (uint64 j = 0; j < nnew; j++)
	{
		uint32		h;

		CHECK_FOR_INTERRUPTS();
		h = row_image_hash(view, &new, j);
		for (int64 i = bucket[h & (nbuckets - 1)]; i >= 0; i = next[i])
		{
			if (!old_kept[i] && hash[i] == h && rows_identical(view, &old, (uint64) i, &new, j))
			{
				old_kept[i] = true;
				new_kept[j] = true;
				break;
			}
		}
	}

	/*
	 * The rows left on both sides, paired by customer_code when the
	 * customer has one row left on each side (a view of one row per
	 * customer; with several, as the long form's months, an update could
	 * take a key another old row still holds): a pair is written as an
	 * update of the old row, which stays HOT (no new index entry) when its
	 * page has room and no indexed column moved.
	 */
	for (uint64 b = 0; b < nbuckets; b++)
		bucket[b] = -1;
	for (uint64 i = 0; i < nold; i++)
	{
		uint64		k = i * old.natts + key;

		if (old_kept[i] || old.nulls[k])
			continue;
		hash[i] = datum_image_hash(old.values[k], TupleDescAttr(view, key)->attbyval, TupleDescAttr(view, key)->attlen);
		next[i] = bucket[hash[i] & (nbuckets - 1)];
		bucket[hash[i] & (nbuckets - 1)] = (int64) i;
	}
	for (uint64 j = 0; j < nnew; j++)
	{
		uint64		nk = j * new.natts + key;
		uint32		h;

		CHECK_FOR_INTERRUPTS();
		if (new_kept[j] || new.nulls[nk])
			continue;
		h = datum_image_hash(new.values[nk], TupleDescAttr(view, key)->attbyval, TupleDescAttr(view, key)->attlen);
		for (int64 i = bucket[h & (nbuckets - 1)]; i >= 0; i = next[i])
		{
			if (!old_kept[i] && hash[i] == h &&
				datum_image_eq(old.values[i * old.natts + key], new.values[nk],
							   TupleDescAttr(view, key)->attbyval, TupleDescAttr(view, key)->attlen))
			{
				/* a second old row of the customer: no pair */
				new_pair[j] = new_pair[j] == -1 ? i : -2;
			}
		}
	}
	/* a second new row of the customer: no pair either */
	claims = palloc0(sizeof(int32) * nold);
	for (uint64 j = 0; j < nnew; j++)
		if (new_pair[j] >= 0)
			claims[new_pair[j]]++;
	for (uint64 j = 0; j < nnew; j++)
	{
		if (new_pair[j] >= 0 && claims[new_pair[j]] != 1)
			new_pair[j] = -1;
		else if (new_pair[j] >= 0)
			old_kept[new_pair[j]] = true;	/* not deleted: updated */
		else
			new_pair[j] = -1;
	}
	pfree(claims);
	pfree(bucket);
	pfree(next);
	pfree(hash);
	pfree(old.values);
	pfree(old.nulls);
	pfree(new.values);
	pfree(new.nulls);
}

/* Delete the old rows not kept, as of the active snapshot. */
static uint64
delete_rows(Relation rel, const OldRows *old, const bool *old_kept)
{
	uint64		n = 0;

	for (uint64 i = 0; i < old->n; i++)
	{
		CHECK_FOR_INTERRUPTS();
		if (old_kept[i])
			continue;
		simple_table_tuple_delete(rel, &old->tids[i], GetActiveSnapshot());
		n++;
	}
	return n;
}

/*
 * Write the new rows not kept into the view with their index entries: an
 * update of the old row it is paired with, else an insert.
 * Returns the rows written; *updated counts the updates.
 */
static uint64
write_rows(Relation rel, const OldRows *old, SPITupleTable *new, uint64 nnew, const bool *new_kept,
		   const int64 *new_pair, uint64 *updated)
{
	EState	   *estate = CreateExecutorState();
	ResultRelInfo *rri = makeNode(ResultRelInfo);
	TupleTableSlot *slot = MakeSingleTupleTableSlot(RelationGetDescr(rel), &TTSOpsHeapTuple);
	CommandId	cid = GetCurrentCommandId(true);
	uint64		n = 0;

	*updated = 0;
	InitResultRelInfo(rri, rel, 1, NULL, 0);
	ExecOpenIndices(rri, false);
	for (uint64 i = 0; i < nnew; i++)
	{
		List	   *recheck = NIL;

		CHECK_FOR_INTERRUPTS();
		if (new_kept[i])
			continue;
		ExecStoreHeapTuple(SPI_copytuple(new->vals[i]), slot, true);
		if (new_pair[i] >= 0)
		{
			bool		update_indexes;
			ItemPointerData tid = old->tids[new_pair[i]];

			simple_table_tuple_update(rel, &tid, slot, GetActiveSnapshot(), &update_indexes);
			/*
			 * (update false: its hint to the index, "unchanged by this
			 * update", needs the updated columns from a range table this
			 * executor state does not have)
			 */
			if (update_indexes)
				recheck = ExecInsertIndexTuples(rri, slot, estate, false, false, NULL, NIL);
			(*updated)++;
		}
		else
		{
			table_tuple_insert(rel, slot, cid, 0, NULL);
			recheck = ExecInsertIndexTuples(rri, slot, estate, false, false, NULL, NIL);
		}
		list_free(recheck);
		ExecClearTuple(slot);
		ResetPerTupleExprContext(estate);
		n++;
	}
	ExecCloseIndices(rri);
	ExecDropSingleTupleTableSlot(slot);
	FreeExecutorState(estate);
	return n;
}

/*
 * The keys (customer_code, column key of the view) of the rows an apply
 * wrote or deleted: the old rows not kept (deleted) and the new
 * rows not kept (inserted, or written over their old row), as a text[]
 * (a key may appear twice; NULL keys left out).
 */
static ArrayType *
touched_keys(const OldRows *old, const bool *old_kept, SPITupleTable *new, uint64 nnew,
			 const bool *new_kept, int key)
{
	Datum	   *keys = palloc(sizeof(Datum) * Max(old->n + nnew, 1));
	int			n = 0;
	bool		isnull;

	for (uint64 i = 0; i < old->n; i++)
	{
		Datum		k;

		if (old_kept[i])
			continue;
		k = heap_getattr(old->vals[i], key + old->first, old->desc, &isnull);
		if (!isnull)
			keys[n++] = k;
	}
	for (uint64 j = 0; j < nnew; j++)
	{
		Datum		k;

		if (new_kept[j])
			continue;
		k = SPI_getbinval(new->vals[j], new->tupdesc, key + 1, &isnull);
		if (!isnull)
			keys[n++] = k;
	}
	return construct_array(keys, n, TEXTOID, -1, false, TYPALIGN_INT);
}

/*
 * Open the materialized view relid with ExclusiveLock (what REFRESH ...
 * CONCURRENTLY takes: readers go on, writers and refreshes wait), as its
 * owner.
 */
static Relation
open_owned_matview(Oid relid)
{
	Relation	rel = try_relation_open(relid, ExclusiveLock);

	if (rel == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid),
				 errhint("Pass one of the campaign's materialized views.")));
	if (rel->rd_rel->relkind != RELKIND_MATVIEW)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a materialized view", RelationGetRelationName(rel)),
				 errhint("Only a campaign's materialized views are updated in place.")));
	if (!pg_class_ownercheck(relid, GetUserId()))
		aclcheck_error(ACLCHECK_NOT_OWNER, OBJECT_MATVIEW, RelationGetRelationName(rel));
	return rel;
}

/*
 * _matview_lock(matview regclass) returns void: take the lock
 * _matview_apply() will hold, until the end of the transaction (LOCK TABLE
 * does not take materialized views).
 */
Datum
matview_lock(PG_FUNCTION_ARGS)
{
	table_close(open_owned_matview(PG_GETARG_OID(0)), NoLock);
	PG_RETURN_VOID();
}

/*
 * _matview_apply(matview regclass, keys text[], rows_sql text) returns bigint
 *
 * Makes the rows of matview whose customer_code is in keys the rows
 * rows_sql returns (which must be rows of those keys, with the view's
 * column types; it may read keys as its parameter $1, text[]), as of the
 * active snapshot: a current row identical
 * (column by column, by binary image) to a new row stays as it is, the
 * other current rows are deleted and the other new rows inserted, so that
 * a customer whose rows did not change costs no write; an old row left and
 * a new row of the same customer_code are written as an update of the old
 * one.  Returns the number of rows written (inserted or updated).  matview must be a populated materialized view with a
 * customer_code column, owned by the current user.
 */
Datum
matview_apply(PG_FUNCTION_ARGS)
{
	Oid			relid;
	Relation	rel;
	char	   *rows_sql;
	uint64		inserted;
	uint64		deleted;
	OldRows		old;
	SPITupleTable *new;
	uint64		nnew;
	bool	   *old_kept;
	bool	   *new_kept;
	int64	   *new_pair;
	uint64		updated;
	int			key;
	Oid			argtypes[1] = {TEXTARRAYOID};
	Datum		args[1];

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("matview, keys and rows_sql must not be NULL"),
				 errhint("Pass '{}' as keys when no customer changed.")));
	relid = PG_GETARG_OID(0);
	rows_sql = text_to_cstring(PG_GETARG_TEXT_PP(2));
	args[0] = PG_GETARG_DATUM(1);

	rel = open_owned_matview(relid);
	if (!RelationIsPopulated(rel))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("materialized view %s has not been populated", qualified_name(rel)),
				 errhint("Refresh it in full first.")));
	key = attnameAttNum(rel, "customer_code", false) - 1;
	if (key < 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("materialized view %s has no customer_code column", qualified_name(rel)),
				 errhint("Only a campaign's materialized views are updated in place.")));

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	old_rows_read(rel, key, PG_GETARG_DATUM(1), &old);
	/* (rows_sql may read the keys as $1) */
	if (SPI_execute_with_args(rows_sql, 1, argtypes, args, NULL, true, 0) != SPI_OK_SELECT)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("rows_sql must be a query"),
				 errhint("Pass a SELECT returning the new rows.")));
	new = SPI_tuptable;
	nnew = SPI_processed;
	check_row_type(rel, new->tupdesc);
	/* rows that are the same before and after are left alone */
	old_kept = palloc(sizeof(bool) * Max(old.n, 1));
	new_kept = palloc(sizeof(bool) * Max(nnew, 1));
	new_pair = palloc(sizeof(int64) * Max(nnew, 1));
	match_rows(RelationGetDescr(rel), &old, new, nnew, key, old_kept, new_kept, new_pair);
	deleted = delete_rows(rel, &old, old_kept);
	inserted = write_rows(rel, &old, new, nnew, new_kept, new_pair, &updated);
	/* (an update neither adds nor removes a row) */
	applied_note(relid, (int64) (inserted - updated) - (int64) deleted,
				 touched_keys(&old, old_kept, new, nnew, new_kept, key));
	SPI_finish();

	/* the statements after this one see the new rows */
	CommandCounterIncrement();
	table_close(rel, NoLock);
	PG_RETURN_INT64((int64) inserted);
}

/*
 * _matview_applied(matview regclass) returns bigint
 *
 * The rows _matview_apply() added to matview (inserted minus deleted, so
 * negative when it removed more) in this transaction since the last call
 * for it (a read rolled back with its subtransaction is undone): a view's row count recorded after a refresh,
 * plus this, is its row count now, as long as nothing else wrote to it
 * (a REFRESH, which the caller tells by the view's catalog row).
 */
Datum
matview_applied(PG_FUNCTION_ARGS)
{
	Oid			relid;
	int64		added = 0;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("matview must not be NULL"),
				 errhint("Pass the materialized view whose applied rows are asked for.")));
	relid = PG_GETARG_OID(0);
	for (AppliedRows *a = applied_rows; a != NULL; a = a->next)
	{
		if (a->relid == relid && a->read_in == InvalidSubTransactionId)
		{
			added += a->added;
			a->read_in = GetCurrentSubTransactionId();
		}
	}
	PG_RETURN_INT64(added);
}

/*
 * _matview_touched(matview regclass) returns text[]
 *
 * The customer codes whose rows the last _matview_apply() on matview in
 * this transaction (not rolled back) wrote or deleted; NULL when none ran.
 * A row it left as it was (identical before and after) is not among them:
 * a view derived from matview's rows (the campaign's sheet from its
 * targets view) changes, for those customers, only where what else it
 * reads changed.
 */
Datum
matview_touched(PG_FUNCTION_ARGS)
{
	Oid			relid;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("matview must not be NULL"),
				 errhint("Pass the materialized view whose written keys are asked for.")));
	relid = PG_GETARG_OID(0);
	/* (the keys are the view's: for those who may read it) */
	if (pg_class_aclcheck(relid, GetUserId(), ACL_SELECT) != ACLCHECK_OK)
		aclcheck_error(ACLCHECK_NO_PRIV, OBJECT_MATVIEW, get_rel_name(relid));
	/* (the list is newest first) */
	for (AppliedRows *a = applied_rows; a != NULL; a = a->next)
	{
		if (a->relid == relid)
		{
			ArrayType  *copy = palloc(VARSIZE(a->touched));

			memcpy(copy, a->touched, VARSIZE(a->touched));
			PG_RETURN_ARRAYTYPE_P(copy);
		}
	}
	PG_RETURN_NULL();
}
