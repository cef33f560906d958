/*
 * numeric_acc.h
 *		Exact running sums of numeric values kept in a long-lived context.
 */
#ifndef NUMERIC_ACC_H
#define NUMERIC_ACC_H

#include "utils/numeric.h"

/*
 * *acc += value, with the new sum allocated in context and the old one
 * freed, so memory stays one value per sum.  *acc == NULL means 0.
 */
extern void numeric_accumulate(MemoryContext context, Numeric *acc, Numeric value);

#endif
