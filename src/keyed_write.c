/*
 * keyed_write.c
 *		Rows of one of the extension's own state tables written through the
 *		table access method and its indexes, one row at a time.
 *
 * A campaign's delta refresh knows, for each row it writes, the whole new
 * row and (for an update or a delete) where the old one is: the ctid it
 * read it at, as of the refresh's snapshot, under the refresh's lock.  An
 * UPDATE statement over arrays of ctids and values costs a plan, a function
 * scan of the arrays per column and a Tid Scan and a projection per row;
 * here each row goes straight to the table AM (table_tuple_update, insert,
 * delete) and, when its update cannot be HOT or it is new, to its indexes,
 * through the executor's own single-row entry points (those logical
 * replication's apply uses: the table's constraints checked, replica
 * identity checked, the writes WAL-logged as any statement's).
 *
 * Only where that is the same as the statement: a plain table, without
 * triggers, rules or row-level security in force, whose columns are exactly
 * the ones written (with their types, no type modifier), the privileges
 * each statement would need held by the current user (the campaign's
 * owner, in its security-restricted context), in a transaction that may
 * write.  Otherwise keyed_writer_open() says no, and the caller runs its
 * statements, which do (or refuse) what they always did.  An ERROR part
 * way rolls the writes back with the rest of the statement, as a
 * statement's would.
 */
#include "postgres.h"

#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_class.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "utils/acl.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/rls.h"
#include "utils/snapmgr.h"

#include "keyed_write.h"

struct KeyedWriter
{
	Relation	rel;
	EState	   *estate;
	ResultRelInfo *rri;
	TupleTableSlot *slot;		/* the new row */
	int			ncolumns;
	AttrNumber *attnums;		/* the caller's column i: attribute attnums[i] */
};

/*
 * The attribute numbers of the columns named, if rel has exactly these
 * columns (not dropped), of these types and no type modifier; else NULL.
 */
static AttrNumber *
map_columns(Relation rel, int ncolumns, const char *const *names, const Oid *types)
{
	TupleDesc	desc = RelationGetDescr(rel);
	AttrNumber *attnums = palloc(sizeof(AttrNumber) * ncolumns);
	int			live = 0;

	for (int a = 0; a < desc->natts; a++)
		if (!TupleDescAttr(desc, a)->attisdropped)
			live++;
	if (live != ncolumns)
		return NULL;
	for (int i = 0; i < ncolumns; i++)
	{
		Form_pg_attribute att = NULL;

		for (int a = 0; a < desc->natts && att == NULL; a++)
		{
			Form_pg_attribute candidate = TupleDescAttr(desc, a);

			if (!candidate->attisdropped && strcmp(NameStr(candidate->attname), names[i]) == 0)
				att = candidate;
		}
		if (att == NULL || att->atttypid != types[i] || att->atttypmod != -1 || att->attgenerated)
			return NULL;
		attnums[i] = att->attnum;
	}
	return attnums;
}

/*
 * Open relid for direct writes (keyed_write.h), with RowExclusiveLock as
 * the statements take it; NULL when the statements must write it.
 */
KeyedWriter *
keyed_writer_open(Oid relid, int ncolumns, const char *const *names, const Oid *types, AclMode modes)
{
	KeyedWriter *w;
	Relation	rel;
	AttrNumber *attnums;
	RangeTblEntry *rte;

	if (XactReadOnly || RecoveryInProgress() || IsInParallelMode() ||
		pg_class_aclmask(relid, GetUserId(), modes, ACLMASK_ALL) != modes ||
		check_enable_rls(relid, InvalidOid, true) != RLS_NONE)
		return NULL;
	rel = table_open(relid, RowExclusiveLock);
	if (rel->rd_rel->relkind != RELKIND_RELATION || rel->rd_rel->relispartition ||
		rel->trigdesc != NULL || rel->rd_rules != NULL ||
		(attnums = map_columns(rel, ncolumns, names, types)) == NULL)
	{
		table_close(rel, NoLock);
		return NULL;
	}
	/* as a statement's plan checks it: published, the table needs a key */
	if (modes & ACL_UPDATE)
		CheckCmdReplicaIdentity(rel, CMD_UPDATE);
	if (modes & ACL_DELETE)
		CheckCmdReplicaIdentity(rel, CMD_DELETE);

	w = palloc0(sizeof(KeyedWriter));
	w->rel = rel;
	w->ncolumns = ncolumns;
	w->attnums = attnums;
	w->estate = CreateExecutorState();
	rte = makeNode(RangeTblEntry);
	rte->rtekind = RTE_RELATION;
	rte->relid = relid;
	rte->relkind = rel->rd_rel->relkind;
	rte->rellockmode = RowExclusiveLock;
	ExecInitRangeTable(w->estate, list_make1(rte));
	w->rri = makeNode(ResultRelInfo);
	InitResultRelInfo(w->rri, rel, 1, NULL, 0);
	/* a command id of its own, as SPI gives each statement */
	CommandCounterIncrement();
	w->estate->es_output_cid = GetCurrentCommandId(true);
	w->estate->es_snapshot = GetActiveSnapshot();
	ExecOpenIndices(w->rri, false);
	w->slot = table_slot_create(rel, &w->estate->es_tupleTable);
	return w;
}

/* The new row in w->slot: the values given, NULL in the dropped columns */
static void
store_row(KeyedWriter *w, const Datum *values, const bool *nulls)
{
	TupleTableSlot *slot = w->slot;

	ExecClearTuple(slot);
	for (int a = 0; a < slot->tts_tupleDescriptor->natts; a++)
	{
		slot->tts_values[a] = (Datum) 0;
		slot->tts_isnull[a] = true;
	}
	for (int i = 0; i < w->ncolumns; i++)
	{
		slot->tts_values[w->attnums[i] - 1] = values[i];
		slot->tts_isnull[w->attnums[i] - 1] = nulls[i];
	}
	ExecStoreVirtualTuple(slot);
}

/* The row at tid was updated or deleted since it was read (result) */
static void
row_changed(KeyedWriter *w, ItemPointer tid, TM_Result result)
{
	ereport(ERROR,
			(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
			 errmsg("the state table \"%s\" changed while a refresh wrote it: its row at (%u,%u) was %s since it was read",
					RelationGetRelationName(w->rel), ItemPointerGetBlockNumber(tid),
					ItemPointerGetOffsetNumber(tid), result == TM_Deleted ? "deleted" : "updated"),
			 errhint("Write the state tables through refresh_campaign() only, and refresh again.")));
}

/* Insert one row and its index entries, as an INSERT does */
void
keyed_writer_insert(KeyedWriter *w, const Datum *values, const bool *nulls)
{
	CHECK_FOR_INTERRUPTS();
	store_row(w, values, nulls);
	if (w->rel->rd_att->constr)
		ExecConstraints(w->rri, w->slot, w->estate);
	table_tuple_insert(w->rel, w->slot, w->estate->es_output_cid, 0, NULL);
	if (w->rri->ri_NumIndices > 0)
		list_free(ExecInsertIndexTuples(w->rri, w->slot, w->estate, false, false, NULL, NIL));
	ResetPerTupleExprContext(w->estate);
}

/*
 * Replace the row at tid by the values given, as an UPDATE does: new index
 * entries only where the table AM says (not for a HOT update).
 */
void
keyed_writer_update(KeyedWriter *w, ItemPointer tid, const Datum *values, const bool *nulls)
{
	TM_Result	result;
	TM_FailureData tmfd;
	LockTupleMode lockmode;
	bool		update_indexes;

	CHECK_FOR_INTERRUPTS();
	store_row(w, values, nulls);
	if (w->rel->rd_att->constr)
		ExecConstraints(w->rri, w->slot, w->estate);
	result = table_tuple_update(w->rel, tid, w->slot, w->estate->es_output_cid, w->estate->es_snapshot,
								InvalidSnapshot, true, &tmfd, &lockmode, &update_indexes);
	if (result != TM_Ok)
		row_changed(w, tid, result);
	if (update_indexes && w->rri->ri_NumIndices > 0)
		list_free(ExecInsertIndexTuples(w->rri, w->slot, w->estate, true, false, NULL, NIL));
	ResetPerTupleExprContext(w->estate);
}

/* Delete the row at tid, as a DELETE does */
void
keyed_writer_delete(KeyedWriter *w, ItemPointer tid)
{
	TM_Result	result;
	TM_FailureData tmfd;

	CHECK_FOR_INTERRUPTS();
	result = table_tuple_delete(w->rel, tid, w->estate->es_output_cid, w->estate->es_snapshot,
								InvalidSnapshot, true, &tmfd, false);
	if (result != TM_Ok)
		row_changed(w, tid, result);
}

/* Close the indexes and the table (keeping its lock), free the executor state */
void
keyed_writer_close(KeyedWriter *w)
{
	ExecCloseIndices(w->rri);
	ExecResetTupleTable(w->estate->es_tupleTable, false);
	FreeExecutorState(w->estate);
	table_close(w->rel, NoLock);
	pfree(w->attnums);
	pfree(w);
}
