/*
 * ca_limits.c
 *		Refusing requests above the size bounds of ca_limits.h, up front and
 *		all in the same words.
 */
#include "postgres.h"

#include "utils/array.h"

#include "ca_limits.h"

/* Refuse request when it is above limit (see ca_limits.h). */
void
ca_check_limit(const char *what, int64 request, int64 limit, const char *hint)
{
	if (request > limit)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("%s exceeds the limit", what),
				 errdetail("The limit is " INT64_FORMAT ", the request is " INT64_FORMAT ".",
						   limit, request),
				 errhint("%s", hint)));
}

/* Refuse an array argument with more than limit elements (see ca_limits.h). */
void
ca_check_array_length(FunctionCallInfo fcinfo, int argno, const char *name,
					  int64 limit, const char *hint)
{
	ArrayType  *array = PG_GETARG_ARRAYTYPE_P(argno);
	char		what[NAMEDATALEN + 32];

	snprintf(what, sizeof(what), "the number of elements of %s", name);
	ca_check_limit(what, ArrayGetNItems(ARR_NDIM(array), ARR_DIMS(array)), limit, hint);
}
