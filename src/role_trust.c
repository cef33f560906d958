/*
 * role_trust.c
 *		The trust rule: code owned by one role never runs with another
 *		role's rights unless the second role already trusts the first.
 *
 * Reading a table runs no code of its owner, except the row-level security
 * policies that apply to the reader; reading a view runs its body, and the
 * functions it calls run as the reader (PostgreSQL checks table privileges
 * as the view's owner, but executes functions as the current user).  So a
 * role that can create a view, or a policy, in a schema another role's
 * scheduled refresh reads can make that refresh run its function with the
 * refresher's rights.  Every read of a source schema, by a function, a
 * view's REFRESH or the rollup's triggers, therefore checks the owner of
 * each relation that would run code.
 *
 * PostgreSQL itself draws the same line for SECURITY_RESTRICTED_OPERATION
 * (REFRESH runs as the view's owner) and for logical replication, which runs
 * table owners' triggers only as roles that can act as them.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_class.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rls.h"
#include "utils/syscache.h"
#include "utils/varlena.h"

#include "role_trust.h"

char	   *ca_trusted_source_owners = NULL;

/* Is role listed in customer_analytics.trusted_source_owners? */
static bool
listed_as_trusted(Oid role)
{
	char	   *raw;
	List	   *names;
	ListCell   *lc;
	bool		found = false;

	if (ca_trusted_source_owners == NULL || ca_trusted_source_owners[0] == '\0')
		return false;
	raw = pstrdup(ca_trusted_source_owners);
	/* the check hook accepted the list; a role dropped since just never matches */
	if (!SplitIdentifierString(raw, ',', &names))
		return false;
	foreach(lc, names)
	{
		if (get_role_oid((const char *) lfirst(lc), true) == role)
		{
			found = true;
			break;
		}
	}
	list_free(names);
	pfree(raw);
	return found;
}

bool
ca_role_trusts(Oid runner, Oid owner)
{
	if (owner == runner || superuser_arg(owner))
		return true;
	/* a member of runner can act as runner: its code gains nothing */
	if (is_member_of_role_nosuper(owner, runner))
		return true;
	return listed_as_trusted(owner);
}

char *
ca_relation_trust_problem(Oid relid, const char *schema, const char *table)
{
	HeapTuple	tuple;
	Form_pg_class form;
	Oid			owner;
	char		relkind;
	Oid			runner = GetUserId();
	const char *what;

	tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	if (!HeapTupleIsValid(tuple))
		return NULL;			/* dropped meanwhile: the query reports it */
	form = (Form_pg_class) GETSTRUCT(tuple);
	owner = form->relowner;
	relkind = form->relkind;
	ReleaseSysCache(tuple);

	if (relkind == RELKIND_VIEW)
		what = "it is a view, and the functions a view calls run as the role reading it";
	else if (check_enable_rls(relid, InvalidOid, true) == RLS_ENABLED)
		what = "its row-level security policies apply to this role, and run as it";
	else
		return NULL;			/* a table, matview or foreign table: no owner code runs */

	if (ca_role_trusts(runner, owner))
		return NULL;
	return psprintf("source relation \"%s.%s\" is owned by role \"%s\", which role \"%s\" does not trust: %s",
					schema, table, GetUserNameFromId(owner, false),
					GetUserNameFromId(runner, false), what);
}
