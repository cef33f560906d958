/*
 * order_date.h
 *		The ERP's order dates, checked.
 */
#ifndef ORDER_DATE_H
#define ORDER_DATE_H

#include "fmgr.h"
#include "utils/date.h"

/*
 * Argument 0 (of type argtype: text YYYYMMDD or date) as a date; a
 * malformed or NULL value raises an error naming the order whose key is in
 * arguments keyarg and keyarg + 1.
 */
extern DateADT order_date_arg(FunctionCallInfo fcinfo, Oid argtype, int keyarg);

#endif
