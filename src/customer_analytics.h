/*
 * customer_analytics.h
 *		Declarations shared by the extension's C files.
 */
#ifndef CUSTOMER_ANALYTICS_H
#define CUSTOMER_ANALYTICS_H

#define CA_DEFAULT_SOURCE_SCHEMA "cosmos_sync"

/* customer_analytics.source_schema */
extern char *ca_source_schema;

/* customer_analytics.use_rollup */
extern bool ca_use_rollup;

#endif
