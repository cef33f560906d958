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

/*
 * A running sum of numeric amounts: exact, in an int64 of units of 1e-8
 * while the amounts have no digit below that and the sum fits (the common
 * case: no allocation per line), else in a Numeric; the largest display
 * scale seen, which numeric addition gives the sum.
 */
typedef struct LineSum
{
	int64		fast;			/* units of 1e-8 */
	Numeric		slow;			/* NULL: 0 */
	int16		dscale;
	bool		any;			/* an amount was added */
} LineSum;

/* a numeric datum as units of 1e-8 and its display scale, when exact and in range */
extern bool numeric_to_units(Datum amount, int64 *units, int *dscale);

/* units of 1e-8 with display scale dscale: the Numeric numeric addition gives */
extern Numeric units_to_numeric(int64 units, int dscale, MemoryContext context);

/* amount (a numeric datum, not NULL) added to sum; a Numeric part goes to context */
extern void line_sum_add(MemoryContext context, LineSum *sum, Datum amount);

/* b added to a */
extern void line_sum_add_sum(MemoryContext context, LineSum *a, const LineSum *b);

/* the sum as a Numeric in context; NULL when nothing was added */
extern Numeric line_sum_numeric(const LineSum *sum, MemoryContext context);

extern OrderKeyList *order_key_list_create(MemoryContext context);

/* the key's position in the list as added */
extern int32 order_key_list_add(OrderKeyList *list, const text *type, const text *number);
extern bool order_key_list_has_duplicates(const OrderKeyList *list);
extern int32 order_key_list_length(const OrderKeyList *list);

/* the aggregate's orders argument (the keys sorted; then has_duplicates is known) */
extern bytea *order_key_list_image(OrderKeyList *list);

/* the aggregate's result: one sum per key of the list, as added */
extern LineSum *order_line_totals_read(bytea *result, const OrderKeyList *list, MemoryContext context);

#endif
