/*
 * role_trust.h
 *		Whose code may run with whose rights: the one rule behind the source
 *		checks, the stored definitions and the rollup's triggers.
 */
#ifndef ROLE_TRUST_H
#define ROLE_TRUST_H

#include "postgres_ext.h"

/* customer_analytics.trusted_source_owners (superuser-only setting) */
extern char *ca_trusted_source_owners;

/*
 * May code owned by `owner` (a view's body, a row-level security policy) run
 * with the rights of `runner`?  True when owner is runner, a superuser, a
 * role that is a member of runner (it can act as runner already), or is
 * listed in customer_analytics.trusted_source_owners.
 */
extern bool ca_role_trusts(Oid runner, Oid owner);

/*
 * NULL when reading relation relid (named schema.table in messages) runs no
 * code of a role the current user does not trust; otherwise a sentence
 * saying which role's code would run and why (a view, or row-level security
 * policies that apply to the current user).
 */
extern char *ca_relation_trust_problem(Oid relid, const char *schema, const char *table);

#endif
