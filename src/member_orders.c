/*
 * member_orders.c
 *		_member_orders(): each campaign member's confirmed orders by window.
 */
#include "postgres.h"

#include "fmgr.h"

PG_FUNCTION_INFO_V1(member_orders);

Datum
member_orders(PG_FUNCTION_ARGS)
{
	ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED), errmsg("_member_orders is not implemented yet")));
	PG_RETURN_NULL();
}
