/*
 * order_line_totals.h
 *		The totals of a list of orders from one scan of the lines (the
 *		_order_line_totals aggregate, order_line_totals.c): the caller's side.
 */
#ifndef ORDER_LINE_TOTALS_H
#define ORDER_LINE_TOTALS_H

#include "fmgr.h"
#include "utils/numeric.h"

typedef struct OrderKeyList OrderKeyList;

/* unique: the keys are known to be distinct (not checked) */
extern OrderKeyList *order_key_list_create(MemoryContext context, bool unique);

/* the key's position in the list (added at the end when new) */
extern int32 order_key_list_add(OrderKeyList *list, const text *type, const text *number);
extern bool order_key_list_has_duplicates(const OrderKeyList *list);
extern int32 order_key_list_length(const OrderKeyList *list);

/* the aggregate's orders argument */
extern bytea *order_key_list_image(OrderKeyList *list);

/* the aggregate's result: one total per listed order (NULL: no amount) */
extern Numeric *order_line_totals_read(bytea *result, int32 norders, MemoryContext context);

#endif
