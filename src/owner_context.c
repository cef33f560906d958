/*
 * owner_context.c
 *		The one way the extension works on a definition's objects: as the
 *		definition's owner, inside a security-restricted operation.
 *
 * A campaign's or segmentation's views, state tables and indexes belong to
 * its owner, and so does anything the owner attached to them: an index
 * whose expression or predicate calls the owner's function, a policy, a
 * trigger on a state table.  The planner and the executor evaluate those
 * with the rights of whoever runs the statement.  A superuser refreshing an
 * analyst's campaign would run the analyst's code as superuser.  PostgreSQL's
 * REFRESH MATERIALIZED VIEW avoids this by becoming the view's owner under
 * SECURITY_RESTRICTED_OPERATION for the whole refresh; the extension does
 * the same for every refresh, build, alter and drop (customer_analytics.
 * _as_owner), and for the rollup's upkeep (rollup_trigger.c).  The caller's
 * right to ask is checked first, in SQL; _as_owner itself only lets a role
 * act as a role it could SET ROLE to anyway.  Inside an extension script
 * (ALTER EXTENSION ... UPDATE rebuilding other roles' views) it works as the
 * owner's own call would: what it creates does not join the extension and
 * its GRANTs are not recorded as the objects' initial privileges, which
 * pg_dump would then leave out.
 *
 * A security-restricted operation refuses CREATE TEMP TABLE (a temporary
 * table would shadow names in the caller's session).  The delta refreshes
 * need scratch tables for one transaction; _scratch_table creates them the
 * way REFRESH ... CONCURRENTLY creates its diff table: with the restriction
 * lifted for that one statement, whose shape is checked to run no code
 * (plain columns of named types, NOT NULL, a primary key, LIKE another
 * relation's columns), under a reserved name prefix, ON COMMIT DROP;
 * _session_scratch_table the same way, but, for the session's own role,
 * once per session (ON COMMIT DELETE ROWS, emptied when asked for again),
 * so that a refresh of a campaign's delta neither writes the catalogs nor
 * gets new OIDs.
 * REFRESH MATERIALIZED VIEW CONCURRENTLY creates such a table itself and so
 * fails inside a security-restricted operation; _refresh_matview runs the
 * REFRESH statement with the restriction lifted, since REFRESH restores it
 * (as the view's owner) before it evaluates anything of the view's.
 */
#include "postgres.h"

#include "access/relation.h"
#include "access/xact.h"
#include "catalog/dependency.h"
#include "catalog/namespace.h"
#include "catalog/objectaddress.h"
#include "catalog/pg_class.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "parser/parser.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "storage/bufmgr.h"
#include "utils/rel.h"

#include "owner_context.h"

PG_FUNCTION_INFO_V1(as_owner);
PG_FUNCTION_INFO_V1(in_owner_context);
PG_FUNCTION_INFO_V1(scratch_table);
PG_FUNCTION_INFO_V1(session_scratch_table);
PG_FUNCTION_INFO_V1(refresh_matview);

static void run_unrestricted(const char *sql);
static void check_scratch_shape(CreateStmt *stmt);

bool		ca_scratch_ddl_running = false;

/* the names the delta refreshes' scratch tables must start with */
#define CA_SCRATCH_PREFIX "customer_analytics_"

void
ca_become_role(Oid role, CaRoleSwitch *sw)
{
	GetUserIdAndSecContext(&sw->save_userid, &sw->save_sec_context);
	SetUserIdAndSecContext(role, sw->save_sec_context | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	sw->save_nestlevel = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
}

void
ca_restore_role(CaRoleSwitch *sw)
{
	AtEOXact_GUC(false, sw->save_nestlevel);
	SetUserIdAndSecContext(sw->save_userid, sw->save_sec_context);
}

/* The role named by argument argno, which must not be NULL and must exist. */
static Oid
role_argument(FunctionCallInfo fcinfo, int argno)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("owner must not be NULL")));
	return get_role_oid(NameStr(*PG_GETARG_NAME(argno)), false);
}

/*
 * Run command through SPI; the first column of its first row as text in the
 * caller's memory, or NULL.
 */
static char *
run_for_value(const char *command)
{
	char	   *value = NULL;
	int			ret;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	ret = SPI_execute(command, false, 1);
	if (ret < 0)
		elog(ERROR, "SPI_execute failed: %s", SPI_result_code_string(ret));
	if (SPI_tuptable != NULL && SPI_processed > 0 && SPI_tuptable->tupdesc->natts > 0)
	{
		char	   *v = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);

		/* copied out of SPI's memory (SPI_finish frees it) into the caller's */
		if (v != NULL)
		{
			value = SPI_palloc(strlen(v) + 1);
			strcpy(value, v);
		}
	}
	SPI_finish();
	return value;
}

/*
 * _as_owner(owner name, command text) returns text
 *
 * Runs command (one statement, built by the extension with its arguments
 * quoted) as owner inside a security-restricted operation with search_path
 * pinned, and returns the first column of its first row as text (NULL when
 * it returns no row).  The current user must be able to act as owner
 * (superusers and owner's members can).
 */
Datum
as_owner(PG_FUNCTION_ARGS)
{
	Oid			owner = role_argument(fcinfo, 0);
	char	   *command;
	CaRoleSwitch sw;
	char	   *value;
	bool		save_creating_extension = creating_extension;
	Oid			save_extension = CurrentExtensionObject;

	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("command must not be NULL")));
	command = text_to_cstring(PG_GETARG_TEXT_PP(1));
	if (!is_member_of_role(GetUserId(), owner))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to act as role \"%s\"", GetUserNameFromId(owner, false)),
				 errdetail("Work on a definition's objects runs as the definition's owner."),
				 errhint("Ask the owner, or a role that can SET ROLE to it.")));

	ca_become_role(owner, &sw);
	creating_extension = false;
	CurrentExtensionObject = InvalidOid;
	PG_TRY();
	{
		value = run_for_value(command);
	}
	PG_FINALLY();
	{
		creating_extension = save_creating_extension;
		CurrentExtensionObject = save_extension;
	}
	PG_END_TRY();
	ca_restore_role(&sw);
	if (value == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(value));
}

/*
 * _in_owner_context(owner name) returns boolean
 *
 * True when the current user is owner inside a security-restricted
 * operation: under _as_owner, or a REFRESH of owner's view.
 */
Datum
in_owner_context(PG_FUNCTION_ARGS)
{
	Oid			owner = role_argument(fcinfo, 0);

	PG_RETURN_BOOL(GetUserId() == owner && InSecurityRestrictedOperation());
}

/* Error unless the CREATE TABLE statement stmt runs no code when it runs. */
static void
check_scratch_shape(CreateStmt *stmt)
{
	ListCell   *lc;
	const char *why = NULL;

	if (stmt->inhRelations != NIL || stmt->partbound != NULL || stmt->partspec != NULL ||
		stmt->ofTypename != NULL || stmt->options != NIL || stmt->tablespacename != NULL ||
		stmt->accessMethod != NULL)
		why = "inheritance, partitioning, typed tables, storage options, tablespaces and access methods";
	foreach(lc, stmt->tableElts)
	{
		Node	   *elt = lfirst(lc);

		if (IsA(elt, ColumnDef))
		{
			ColumnDef  *col = (ColumnDef *) elt;
			ListCell   *cc;

			if (col->typeName == NULL || col->raw_default != NULL || col->cooked_default != NULL ||
				col->identity || col->generated || col->fdwoptions != NIL ||
				col->typeName->typmods != NIL)
				why = "defaults, identity, generated columns, options and type modifiers";
			foreach(cc, col->constraints)
			{
				ConstrType	t = ((Constraint *) lfirst(cc))->contype;

				if (t != CONSTR_NOTNULL && t != CONSTR_NULL && t != CONSTR_PRIMARY)
					why = "defaults, checks, identity, generated columns or references";
			}
		}
		else if (IsA(elt, TableLikeClause))
		{
			if (((TableLikeClause *) elt)->options != 0)
				why = "LIKE ... INCLUDING";
		}
		else if (IsA(elt, Constraint))
		{
			if (((Constraint *) elt)->contype != CONSTR_PRIMARY)
				why = "table constraints other than PRIMARY KEY";
		}
		else
			why = "this kind of table element";
	}
	if (stmt->constraints != NIL)
		why = "table constraints other than PRIMARY KEY";
	if (why != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a scratch table's definition may not use %s", why),
				 errhint("Give plain columns of named types, with NOT NULL or PRIMARY KEY at most.")));
}

/*
 * The checked CREATE TEMP TABLE statement of a scratch table: name must
 * start with customer_analytics_, definition be a parenthesized list of
 * columns (or LIKE relation) that runs no code; on_commit its ON COMMIT
 * clause.  *stmt is set to the parsed statement.
 */
static char *
scratch_create_sql(FunctionCallInfo fcinfo, const char *on_commit, char **name_out, CreateStmt **stmt)
{
	char	   *name;
	char	   *definition;
	StringInfoData sql;
	List	   *parsed;
	RawStmt    *raw;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("name and definition must not be NULL")));
	name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	definition = text_to_cstring(PG_GETARG_TEXT_PP(1));
	if (strncmp(name, CA_SCRATCH_PREFIX, strlen(CA_SCRATCH_PREFIX)) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_NAME),
				 errmsg("scratch table name \"%s\" does not start with \"%s\"", name, CA_SCRATCH_PREFIX),
				 errhint("Scratch tables of the extension's refreshes use that prefix.")));

	initStringInfo(&sql);
	appendStringInfo(&sql, "CREATE TEMP TABLE %s %s ON COMMIT %s", quote_identifier(name), definition, on_commit);
	parsed = raw_parser(sql.data, RAW_PARSE_DEFAULT);
	raw = list_length(parsed) == 1 ? linitial_node(RawStmt, parsed) : NULL;
	if (raw == NULL || !IsA(raw->stmt, CreateStmt) ||
		((CreateStmt *) raw->stmt)->relation->schemaname != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a scratch table's definition must be a parenthesized column list"),
				 errhint("For example '(customer_code text PRIMARY KEY)' or '(LIKE schema.relation)'.")));
	check_scratch_shape((CreateStmt *) raw->stmt);
	*name_out = name;
	*stmt = (CreateStmt *) raw->stmt;
	return sql.data;
}

/* Run the checked CREATE TEMP TABLE sql (scratch_create_sql) unrestricted; the new table. */
static Oid
scratch_create(const char *sql, const char *name)
{
	/*
	 * as REFRESH ... CONCURRENTLY creates its diff table: this statement
	 * only; the rollup's DDL watch (an event trigger on CREATE TABLE) is told
	 * that it is a scratch table, which can be no source table or partition
	 */
	ca_scratch_ddl_running = true;
	PG_TRY();
	{
		run_unrestricted(sql);
	}
	PG_FINALLY();
	{
		ca_scratch_ddl_running = false;
	}
	PG_END_TRY();
	return get_relname_relid(name, LookupExplicitNamespace("pg_temp", false));
}

/*
 * _scratch_table(name text, definition text) returns regclass
 *
 * CREATE TEMP TABLE pg_temp.<name> <definition> ON COMMIT DROP, allowed
 * inside a security-restricted operation (see the file's header).  name
 * must start with customer_analytics_; definition is a parenthesized list
 * of columns (or LIKE relation) that runs no code.
 */
Datum
scratch_table(PG_FUNCTION_ARGS)
{
	char	   *name;
	CreateStmt *stmt;
	char	   *sql = scratch_create_sql(fcinfo, "DROP", &name, &stmt);

	PG_RETURN_OID(scratch_create(sql, name));
}

/* a table _session_scratch_table made in this session: its OID and statement */
typedef struct SessionScratch
{
	Oid			relid;
	char	   *sql;
} SessionScratch;

/* the tables _session_scratch_table made in this session (TopMemoryContext) */
static List *session_scratches = NIL;

/*
 * Do the columns of the temporary table rel match what stmt would create?
 * Only a single LIKE is compared (its relation's columns now: a view
 * rebuilt with other columns makes another table); any other definition
 * is the same statement's, which was compared as text.
 */
static bool
scratch_shape_current(Relation rel, CreateStmt *stmt)
{
	TableLikeClause *like;
	Relation	src;
	TupleDesc	a = RelationGetDescr(rel);
	TupleDesc	b;
	int			i = 0;
	int			j = 0;
	bool		same = true;

	if (list_length(stmt->tableElts) != 1 || !IsA(linitial(stmt->tableElts), TableLikeClause))
		return true;
	like = linitial_node(TableLikeClause, stmt->tableElts);
	src = relation_openrv_extended(like->relation, AccessShareLock, true);
	if (src == NULL)
		return false;
	b = RelationGetDescr(src);
	for (;;)
	{
		Form_pg_attribute x;
		Form_pg_attribute y;

		while (i < a->natts && TupleDescAttr(a, i)->attisdropped)
			i++;
		while (j < b->natts && TupleDescAttr(b, j)->attisdropped)
			j++;
		if (i >= a->natts || j >= b->natts)
		{
			same = same && i >= a->natts && j >= b->natts;
			break;
		}
		x = TupleDescAttr(a, i++);
		y = TupleDescAttr(b, j++);
		if (strcmp(NameStr(x->attname), NameStr(y->attname)) != 0 || x->atttypid != y->atttypid ||
			x->atttypmod != y->atttypmod || x->attcollation != y->attcollation || x->attnotnull != y->attnotnull)
		{
			same = false;
			break;
		}
	}
	relation_close(src, AccessShareLock);
	return same;
}

/*
 * _session_scratch_table(name text, definition text) returns regclass
 *
 * As _scratch_table, but when the current role is the session's own
 * (SESSION_USER) the table is kept for the session, ON COMMIT DELETE ROWS,
 * and made once: a later call for the same name, by the same role, with
 * the same definition (a LIKE's columns unchanged) finds the
 * table this function made and empties it (a DELETE: no new relation, so
 * no catalog writes and no new OID that would make every statement naming
 * it be planned afresh).  A table of this name that this function made for
 * another role or definition (a session refreshing campaigns of several
 * owners) is dropped first, as ON COMMIT DROP would have; one the current
 * role made otherwise is dropped as the delta refresh always dropped it;
 * anything else of that name makes the CREATE fail, as with _scratch_table.
 * For another role (a superuser's session refreshing an analyst's
 * campaign) the table is made ON COMMIT DROP, as _scratch_table makes it:
 * kept, it would belong to that role, which no DROP ROLE could then drop
 * while this session lasts.
 */
Datum
session_scratch_table(PG_FUNCTION_ARGS)
{
	char	   *name;
	CreateStmt *stmt;
	/*
	 * kept only for the session's own role: a table owned by another role
	 * would stop a DROP ROLE of it for as long as this session lasts
	 */
	bool		keep = GetUserId() == GetSessionUserId();
	char	   *sql = scratch_create_sql(fcinfo, keep ? "DELETE ROWS" : "DROP", &name, &stmt);
	Oid			nsp = LookupExplicitNamespace("pg_temp", true);
	Oid			relid = OidIsValid(nsp) ? get_relname_relid(name, nsp) : InvalidOid;
	SessionScratch *mine = NULL;
	ListCell   *lc;
	MemoryContext old;

	if (OidIsValid(relid))
	{
		foreach(lc, session_scratches)
		{
			SessionScratch *s = (SessionScratch *) lfirst(lc);

			if (s->relid == relid)
				mine = s;
		}
		if (mine != NULL)
		{
			Relation	rel = relation_open(relid, AccessExclusiveLock);
			bool		reuse = keep && rel->rd_rel->relowner == GetUserId() && strcmp(mine->sql, sql) == 0 &&
				rel->rd_rel->relpersistence == RELPERSISTENCE_TEMP && scratch_shape_current(rel, stmt);

			/* no page: emptied by the last commit (ON COMMIT DELETE ROWS), nothing to delete */
			bool		empty = reuse && RelationGetNumberOfBlocks(rel) == 0;

			relation_close(rel, NoLock);
			if (empty)
				PG_RETURN_OID(relid);
			if (reuse)
			{
				if (SPI_connect() != SPI_OK_CONNECT)
					elog(ERROR, "SPI_connect failed");
				if (SPI_execute(psprintf("DELETE FROM pg_temp.%s", quote_identifier(name)), false, 0) != SPI_OK_DELETE)
					elog(ERROR, "could not empty scratch table \"%s\"", name);
				SPI_finish();
				PG_RETURN_OID(relid);
			}
			else
			{
				/* this function's own table, made for another role or shape */
				ObjectAddress obj;

				ObjectAddressSet(obj, RelationRelationId, relid);
				performDeletion(&obj, DROP_RESTRICT, PERFORM_DELETION_INTERNAL);
				CommandCounterIncrement();
			}
		}
		else if (pg_class_ownercheck(relid, GetUserId()))
			run_unrestricted(psprintf("DROP TABLE pg_temp.%s", quote_identifier(name)));
	}

	relid = scratch_create(sql, name);
	if (!keep)
		PG_RETURN_OID(relid);
	old = MemoryContextSwitchTo(TopMemoryContext);
	/* (entries of dropped tables are left: they match no table's OID again) */
	mine = NULL;
	foreach(lc, session_scratches)
	{
		SessionScratch *s = (SessionScratch *) lfirst(lc);

		if (strcmp(s->sql, sql) == 0)
			mine = s;
	}
	if (mine == NULL)
	{
		mine = palloc(sizeof(SessionScratch));
		mine->sql = pstrdup(sql);
		session_scratches = lappend(session_scratches, mine);
	}
	mine->relid = relid;
	MemoryContextSwitchTo(old);
	PG_RETURN_OID(relid);
}

/* Run the utility statement sql through SPI with SECURITY_RESTRICTED_OPERATION lifted. */
static void
run_unrestricted(const char *sql)
{
	Oid			save_userid;
	int			save_sec_context;
	int			ret;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(save_userid, save_sec_context & ~SECURITY_RESTRICTED_OPERATION);
	ret = SPI_execute(sql, false, 0);
	SetUserIdAndSecContext(save_userid, save_sec_context);
	if (ret != SPI_OK_UTILITY)
		elog(ERROR, "SPI_execute failed: %s", SPI_result_code_string(ret));
	SPI_finish();
}

/*
 * _refresh_matview(view regclass, concurrently boolean) returns void
 *
 * REFRESH MATERIALIZED VIEW [CONCURRENTLY] view, allowed inside a
 * security-restricted operation (see the file's header).  REFRESH checks
 * that the current user owns the view.
 */
Datum
refresh_matview(PG_FUNCTION_ARGS)
{
	Oid			view;
	char	   *name;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("view and concurrently must not be NULL")));
	view = PG_GETARG_OID(0);
	if (get_rel_relkind(view) != RELKIND_MATVIEW)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a materialized view", get_rel_name(view))));
	name = quote_qualified_identifier(get_namespace_name(get_rel_namespace(view)), get_rel_name(view));
	run_unrestricted(psprintf("REFRESH MATERIALIZED VIEW %s%s", PG_GETARG_BOOL(1) ? "CONCURRENTLY " : "", name));
	PG_RETURN_VOID();
}
