/*
 * run_as.c
 *		Run statements as a definition's owner, as REFRESH MATERIALIZED VIEW
 *		runs a view's query as the view's owner.
 *
 * ALTER EXTENSION ... UPDATE (a superuser) rebuilds the views the extension
 * manages for other roles and resets the privileges on their rollup tables.
 * That work must be done as the objects' owner, exactly as the owner's own
 * call would do it:
 *
 *   - as the owner, so that the views belong to it and its definition's
 *     owner checks pass, and under SECURITY_RESTRICTED_OPERATION with
 *     search_path pinned, so that nothing the owner planted (a function in
 *     a policy, an index expression, a type's I/O) runs with the caller's
 *     rights or can SET ROLE back to them (a plain SET ROLE could);
 *   - outside the extension script: an object created while an extension
 *     script runs becomes a member of the extension (left out of dumps,
 *     dropped with it), and a GRANT or REVOKE there records the object's
 *     privileges in pg_init_privs as its "initial" ones, after which
 *     pg_dump dumps only the difference and a restore loses them.  The
 *     owner's own call would do neither, so neither is done here.
 *
 * The caller must be able to SET ROLE to the role (a superuser can): this
 * lends nothing it does not have.  An error leaves through the
 * (sub)transaction's abort, which restores the user, the security context
 * and the settings; the extension-script state is restored on the way out.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/syscache.h"

PG_FUNCTION_INFO_V1(run_as_role);

/* Run each statement of stmts (text[], no NULLs) in one SPI connection. */
static void
run_statements(Datum *elems, int n)
{
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	for (int i = 0; i < n; i++)
	{
		int			rc;

		CHECK_FOR_INTERRUPTS();
		rc = SPI_execute(TextDatumGetCString(elems[i]), false, 0);
		if (rc < 0)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("statement %d of %d cannot run here: %s", i + 1, n, SPI_result_code_string(rc))));
	}
	SPI_finish();
}

/*
 * customer_analytics._run_as(role regrole, statements text[]) RETURNS void
 */
Datum
run_as_role(PG_FUNCTION_ARGS)
{
	Oid			role = PG_GETARG_OID(0);
	ArrayType  *stmts = PG_GETARG_ARRAYTYPE_P(1);
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	Oid			save_userid;
	int			save_sec_context;
	int			save_nestlevel;
	bool		save_creating_extension = creating_extension;
	Oid			save_extension = CurrentExtensionObject;

	if (!SearchSysCacheExists1(AUTHOID, ObjectIdGetDatum(role)))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("role with OID %u does not exist", role)));
	if (!is_member_of_role(GetUserId(), role))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to run statements as role \"%s\"", GetUserNameFromId(role, false)),
				 errdetail("Only roles that can SET ROLE to it may.")));
	if (ARR_ELEMTYPE(stmts) != TEXTOID)
		ereport(ERROR, (errcode(ERRCODE_DATATYPE_MISMATCH), errmsg("statements must be text[]")));
	deconstruct_array(stmts, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	for (int i = 0; i < n; i++)
		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("statements must not contain NULL")));

	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(role, save_sec_context | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	save_nestlevel = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	creating_extension = false;
	CurrentExtensionObject = InvalidOid;
	PG_TRY();
	{
		run_statements(elems, n);
	}
	PG_FINALLY();
	{
		creating_extension = save_creating_extension;
		CurrentExtensionObject = save_extension;
	}
	PG_END_TRY();
	AtEOXact_GUC(false, save_nestlevel);
	SetUserIdAndSecContext(save_userid, save_sec_context);
	PG_RETURN_VOID();
}
