/*
 * order_date.h
 *		The ERP's order dates, checked.
 */
#ifndef ORDER_DATE_H
#define ORDER_DATE_H

#include "fmgr.h"
#include "utils/date.h"

/*
 * Argument valarg (of type argtype: text YYYYMMDD or date) as a date; a
 * malformed, infinite or NULL value raises an error naming the order whose
 * key is in arguments keyarg and keyarg + 1.  The one check of a confirmed
 * order's date, whichever relation it is read from (order_date.c).
 */
extern DateADT order_date_arg(FunctionCallInfo fcinfo, int valarg, Oid argtype, int keyarg);

#endif
