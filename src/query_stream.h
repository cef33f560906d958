/*
 * query_stream.h
 *		Run one read-only SQL query through SPI and hand each result row to a
 *		callback, without materializing the result.
 */
#ifndef QUERY_STREAM_H
#define QUERY_STREAM_H

#include "executor/tuptable.h"
#include "utils/numeric.h"

/*
 * Called once per row with all attributes deformed (slot->tts_values and
 * slot->tts_isnull).  It runs in a short-lived memory context that is reset
 * after every row: anything that must survive has to be allocated elsewhere.
 */
typedef void (*QueryRowCallback) (TupleTableSlot *slot, void *arg);

/* paramnulls may be NULL: no parameter is NULL */
extern void query_stream(const char *sql,
						 int nparams, const Oid *paramtypes,
						 const Datum *paramvalues, const bool *paramnulls,
						 QueryRowCallback callback, void *arg);

/*
 * The same, planned without parallel workers: for a query whose partial
 * aggregate states would cost the leader more to combine than they save.
 */
extern void query_stream_serial(const char *sql,
								int nparams, const Oid *paramtypes,
								const Datum *paramvalues, const bool *paramnulls,
								QueryRowCallback callback, void *arg);

/*
 * The same, the parameters kept as parameters rather than constants of the
 * plan: for a large value that parallel workers read (it then reaches them
 * in binary, not in the plan's text).
 */
extern void query_stream_params(const char *sql,
								int nparams, const Oid *paramtypes,
								const Datum *paramvalues, const bool *paramnulls,
								QueryRowCallback callback, void *arg);

/* The first nconst parameters constants (as query_stream), the others parameters. */
extern void query_stream_mixed(const char *sql, int nparams, int nconst,
							   const Oid *paramtypes,
							   const Datum *paramvalues, const bool *paramnulls,
							   QueryRowCallback callback, void *arg);

/*
 * A numeric column of the row, copied into context so that it outlives the
 * row (and is never a short varlena); NULL for SQL NULL.
 */
extern Numeric slot_numeric_copy(TupleTableSlot *slot, int attno, MemoryContext context);

#endif
