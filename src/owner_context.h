/*
 * owner_context.h
 *		Run work on a role's objects as that role, the way REFRESH
 *		MATERIALIZED VIEW runs a view's query as the view's owner.
 */
#ifndef OWNER_CONTEXT_H
#define OWNER_CONTEXT_H

#include "postgres_ext.h"

/* what ca_become_role() saved, for ca_restore_role() */
typedef struct CaRoleSwitch
{
	Oid			save_userid;
	int			save_sec_context;
	int			save_nestlevel;
} CaRoleSwitch;

/*
 * Become role under SECURITY_RESTRICTED_OPERATION with search_path pinned
 * to pg_catalog, pg_temp.  An error leaves through the (sub)transaction's
 * abort, which restores the user and the settings; otherwise call
 * ca_restore_role() with the same switch.
 */
extern void ca_become_role(Oid role, CaRoleSwitch *sw);
extern void ca_restore_role(CaRoleSwitch *sw);

/*
 * True while _scratch_table runs its CREATE TEMP TABLE (a checked shape: no
 * inheritance, no partition, nothing of a source table): the rollup's DDL
 * watch has nothing to look at then and returns at once.
 */
extern bool ca_scratch_ddl_running;

#endif
