/*
 * arm_comparison.c
 *		The arm_comparison aggregate (treatment against holdout: Welch,
 *		CUPED, balance) and minimum_detectable_effect().
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/array.h"

PG_FUNCTION_INFO_V1(arm_comparison_accum);
PG_FUNCTION_INFO_V1(arm_comparison_combine);
PG_FUNCTION_INFO_V1(arm_comparison_final);
PG_FUNCTION_INFO_V1(minimum_detectable_effect);

Datum
arm_comparison_accum(PG_FUNCTION_ARGS)
{
	ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED), errmsg("arm_comparison is not implemented yet")));
	PG_RETURN_NULL();
}

Datum
arm_comparison_combine(PG_FUNCTION_ARGS)
{
	ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED), errmsg("arm_comparison is not implemented yet")));
	PG_RETURN_NULL();
}

Datum
arm_comparison_final(PG_FUNCTION_ARGS)
{
	ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED), errmsg("arm_comparison is not implemented yet")));
	PG_RETURN_NULL();
}

Datum
minimum_detectable_effect(PG_FUNCTION_ARGS)
{
	ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED), errmsg("minimum_detectable_effect is not implemented yet")));
	PG_RETURN_NULL();
}
