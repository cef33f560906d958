/*
 * customer_analytics.c
 *		Module entry point: the library magic block and the extension's GUCs,
 *		and which of the extension's SQL objects are installed.
 */
#include "postgres.h"

#include "fmgr.h"
#include "nodes/pg_list.h"
#include "nodes/value.h"
#include "parser/parse_func.h"
#include "utils/guc.h"

#include "customer_analytics.h"

PG_MODULE_MAGIC;

char	   *ca_source_schema = NULL;
bool		ca_use_rollup = true;

void		_PG_init(void);

void
_PG_init(void)
{
	DefineCustomStringVariable("customer_analytics.source_schema",
							   "Schema holding the ERP tables customers, sales_orders and sales_order_lines.",
							   "Functions whose source_schema argument is NULL read this schema.",
							   &ca_source_schema,
							   CA_DEFAULT_SOURCE_SCHEMA,
							   PGC_USERSET,
							   0,
							   NULL, NULL, NULL);

	DefineCustomBoolVariable("customer_analytics.use_rollup",
							 "Read a source's order rollup when it is current.",
							 "Off: always read the source tables (for comparisons and diagnosis).",
							 &ca_use_rollup,
							 true,
							 PGC_USERSET,
							 0,
							 NULL, NULL, NULL);

	MarkGUCPrefixReserved("customer_analytics");
}

bool
ca_function_installed(const char *name, int nargs, const Oid *argtypes)
{
	return OidIsValid(LookupFuncName(list_make2(makeString("customer_analytics"),
												makeString(pstrdup(name))),
									 nargs, argtypes, true));
}
