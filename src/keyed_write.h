/*
 * keyed_write.h
 *		Rows of one of the extension's own state tables written through the
 *		table access method and its indexes, one row at a time, instead of
 *		through an UPDATE, INSERT or DELETE statement.
 */
#ifndef KEYED_WRITE_H
#define KEYED_WRITE_H

#include "postgres.h"

#include "storage/itemptr.h"
#include "utils/acl.h"

typedef struct KeyedWriter KeyedWriter;

/*
 * Open relid for direct writes of the columns named (ncolumns of them, of
 * the types given: the values given to the writes below, in this order),
 * needing the table privileges in modes (each of them).  NULL when the
 * table is to be written by SQL statements instead, which then behave (and
 * fail) as they always did: not a plain table, a trigger or rule on it,
 * row-level security in force for the current user, a privilege of modes
 * missing, a transaction that may not write, or columns other than the
 * ones named (or of other types, or with a type modifier).
 */
extern KeyedWriter *keyed_writer_open(Oid relid, int ncolumns, const char *const *names, const Oid *types,
									  AclMode modes);

/* Insert one row (its indexes' entries too: a duplicate key is an ERROR) */
extern void keyed_writer_insert(KeyedWriter *w, const Datum *values, const bool *nulls);

/*
 * Replace the row at tid, whole (HOT when no indexed column changes and its
 * page has room); an ERROR if it was updated or deleted since it was read.
 */
extern void keyed_writer_update(KeyedWriter *w, ItemPointer tid, const Datum *values, const bool *nulls);

/* Delete the row at tid; an ERROR if it was updated or deleted since read */
extern void keyed_writer_delete(KeyedWriter *w, ItemPointer tid);

/* Close the table and its indexes (its lock kept to the end of the transaction) */
extern void keyed_writer_close(KeyedWriter *w);

#endif
