/*
 * numeric_acc.c
 *		Exact running sums of numeric values kept in a long-lived context,
 *		and their comparison.
 */
#include "postgres.h"

#include "utils/fmgrprotos.h"

#include "numeric_acc.h"

void
numeric_accumulate(MemoryContext context, Numeric *acc, Numeric value)
{
	MemoryContext oldcontext = MemoryContextSwitchTo(context);
	Numeric		old = *acc;

	*acc = old ? numeric_add_opt_error(old, value, NULL)
		: DatumGetNumericCopy(NumericGetDatum(value));
	if (old)
		pfree(old);
	MemoryContextSwitchTo(oldcontext);
}

int
numeric_compare(Numeric a, Numeric b)
{
	return DatumGetInt32(DirectFunctionCall2(numeric_cmp, NumericGetDatum(a),
											 NumericGetDatum(b)));
}
