/*
 * numeric_acc.h
 *		Exact running sums of numeric values kept in a long-lived context,
 *		and their comparison.
 */
#ifndef NUMERIC_ACC_H
#define NUMERIC_ACC_H

#include "lib/stringinfo.h"
#include "utils/numeric.h"

/*
 * *acc += value, with the new sum allocated in context and the old one
 * freed, so memory stays one value per sum.  *acc == NULL means 0.
 */
extern void numeric_accumulate(MemoryContext context, Numeric *acc, Numeric value);

/* a running sum's value: NULL (nothing added) is 0 */
extern Numeric numeric_or_zero(Numeric n);

/* <0, 0 or >0 as a is below, equal to or above b (numeric_cmp) */
extern int	numeric_compare(Numeric a, Numeric b);

/*
 * A running sum in a parallel aggregate's byte image: its length (0 for
 * NULL) and its bytes; read back into context.
 */
extern void numeric_send_sum(StringInfo buf, Numeric sum);
extern Numeric numeric_get_sum(StringInfo buf, MemoryContext context);

#endif
