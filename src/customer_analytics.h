/*
 * customer_analytics.h
 *		Declarations shared by the extension's C files.
 */
#ifndef CUSTOMER_ANALYTICS_H
#define CUSTOMER_ANALYTICS_H

#include "postgres_ext.h"

#define CA_DEFAULT_SOURCE_SCHEMA "cosmos_sync"

/* customer_analytics.source_schema */
extern char *ca_source_schema;

/* customer_analytics.use_rollup */
extern bool ca_use_rollup;

/* customer_analytics.shard_pushdown */
extern bool ca_shard_pushdown;

/*
 * Does customer_analytics.<name>(argtypes) exist?  false while the
 * extension's SQL objects predate it (an older version's script), so the C
 * code can keep an older way of computing the same answer.
 */
extern bool ca_function_installed(const char *name, int nargs, const Oid *argtypes);

#endif
