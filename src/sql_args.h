/*
 * sql_args.h
 *		Checks of SQL-level arguments shared by the extension's functions.
 */
#ifndef SQL_ARGS_H
#define SQL_ARGS_H

#include "fmgr.h"
#include "utils/array.h"
#include "utils/date.h"
#include "utils/numeric.h"

/* A closed-open window of days [lo, hi), as a canonical daterange holds it. */
typedef struct DateWindow
{
	DateADT		lo;
	DateADT		hi;
} DateWindow;

/* Whether day d is in the window w. */
static inline bool
date_in_window(DateADT d, DateWindow w)
{
	return d >= w.lo && d < w.hi;
}

extern void arg_not_null(FunctionCallInfo fcinfo, int argno, const char *name);
extern DateWindow arg_date_window(FunctionCallInfo fcinfo, int argno, const char *name);
/* The window as a daterange Datum, [lo, hi), e.g. for a query parameter. */
extern Datum date_window_datum(DateWindow w);
extern Numeric arg_amount(FunctionCallInfo fcinfo, int argno, const char *name);
/* A text[] without NULLs, of at most max_elems elements (else limit_hint) */
extern ArrayType *arg_text_array(FunctionCallInfo fcinfo, int argno, const char *name,
								 bool allow_empty, int64 max_elems, const char *limit_hint);

#endif
