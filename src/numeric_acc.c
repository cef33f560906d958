/*
 * numeric_acc.c
 *		Exact running sums of numeric values kept in a long-lived context,
 *		their comparison, and their bytes in a parallel aggregate's state.
 */
#include "postgres.h"

#include "libpq/pqformat.h"
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

Numeric
numeric_or_zero(Numeric n)
{
	return n ? n : int64_to_numeric(0);
}

int
numeric_compare(Numeric a, Numeric b)
{
	return DatumGetInt32(DirectFunctionCall2(numeric_cmp, NumericGetDatum(a),
											 NumericGetDatum(b)));
}

void
numeric_send_sum(StringInfo buf, Numeric sum)
{
	if (sum == NULL)
		pq_sendint32(buf, 0);
	else
	{
		pq_sendint32(buf, VARSIZE(sum));
		pq_sendbytes(buf, (char *) sum, VARSIZE(sum));
	}
}

Numeric
numeric_get_sum(StringInfo buf, MemoryContext context)
{
	int32		len = pq_getmsgint(buf, 4);
	Numeric		sum;

	if (len == 0)
		return NULL;
	sum = MemoryContextAlloc(context, len);
	pq_copymsgbytes(buf, (char *) sum, len);
	return sum;
}
