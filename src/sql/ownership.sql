-- ownership.sql
--	Whose rights a definition's work runs with: the owner checks, and the one mechanism that runs a step as the owner (owner_context.c).

-- Work on a definition's objects runs as the definition's owner inside a
-- security-restricted operation, whoever asked (src/owner_context.c): the
-- public functions check the caller's right to ask, then run their
-- _*_as_owner step through _as_owner(); those steps refuse to run
-- otherwise (_require_owner_context).
CREATE FUNCTION customer_analytics._as_owner(owner name, command text) RETURNS text
    LANGUAGE c
    AS 'MODULE_PATHNAME', 'as_owner';

COMMENT ON FUNCTION customer_analytics._as_owner(owner name, command text) IS 'Run one of the extension''s statements as owner (a role the caller can act as) inside a security-restricted operation; the first column of its first row as text';

-- What every named analysis (campaign, segmentation) checks before it
-- builds views: a name that is safe inside view names, an existing schema,
-- existing reader roles.
CREATE FUNCTION customer_analytics._check_view_owner(kind text, name text, view_schema text, readers text[], views text) RETURNS void
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
DECLARE
    reader text;
BEGIN
    IF name IS NULL OR name !~ '^[a-z][a-z0-9_]{0,39}$' THEN
        RAISE EXCEPTION 'invalid % name "%"', kind, name
            USING ERRCODE = 'invalid_name',
                  HINT = 'Use 1 to 40 lower-case ASCII letters, digits and underscores, starting with a letter: '
                         'the name becomes part of the view names ' || views || '.';
    END IF;
    IF view_schema IS NULL OR to_regnamespace(quote_ident(view_schema)) IS NULL THEN
        RAISE EXCEPTION 'view schema "%" does not exist', view_schema
            USING ERRCODE = 'invalid_schema_name',
                  HINT = 'Create it first (CREATE SCHEMA ...); the ' || kind || '''s views are built there.';
    END IF;
    IF readers IS NULL OR array_position(readers, NULL) IS NOT NULL THEN
        RAISE EXCEPTION 'readers must be an array of role names without NULL'
            USING ERRCODE = 'null_value_not_allowed', HINT = 'Pass readers => ''{}'' for none.';
    END IF;
    FOREACH reader IN ARRAY readers LOOP
        IF to_regrole(quote_ident(reader)) IS NULL THEN
            RAISE EXCEPTION 'role "%" does not exist', reader
                USING ERRCODE = 'undefined_object',
                      HINT = 'readers names the roles that get SELECT on the ' || kind || '''s views.';
        END IF;
    END LOOP;
END $_$;

-- The grants a definition's views need, checked before anything is stored
-- (42501, with the GRANT to run as HINT): its owner builds them in the view
-- schema (USAGE and CREATE on it) and keeps their state in the state schema
-- (USAGE and CREATE on _state_schema()), and each reader reaches them (USAGE
-- on the schema: readers => grants it when the owner may, that is owns the
-- schema or holds USAGE WITH GRANT OPTION; otherwise the schema's owner does).
CREATE FUNCTION customer_analytics._check_view_grants(kind text, owner name, view_schema text, readers text[]) RETURNS void
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    schema_owner name := (SELECT n.nspowner::regrole::name FROM pg_namespace n WHERE n.nspname = view_schema);
    reader text;
BEGIN
    PERFORM customer_analytics._require_schema_privileges(owner, view_schema, '{USAGE,CREATE}',
                                                          format('to build the %s''s views', kind));
    PERFORM customer_analytics._require_schema_privileges(owner, customer_analytics._state_schema(), '{USAGE,CREATE}',
                                                          format('to keep the %s''s state', kind));
    FOREACH reader IN ARRAY readers LOOP
        IF NOT has_schema_privilege(reader, view_schema, 'USAGE')
           AND NOT has_schema_privilege(owner, view_schema, 'USAGE WITH GRANT OPTION') THEN
            RAISE EXCEPTION 'reader "%" has no USAGE on view schema "%", and role "%" cannot grant it', reader, view_schema, owner
                USING ERRCODE = 'insufficient_privilege',
                      HINT = format('The schema''s owner (%s) runs: GRANT USAGE ON SCHEMA %I TO %I; '
                                    'readers => grants USAGE only on a schema the %s''s owner owns.',
                                    quote_ident(schema_owner), view_schema, reader, kind);
        END IF;
    END LOOP;
END $$;

COMMENT ON FUNCTION customer_analytics._check_view_grants(kind text, owner name, view_schema text, readers text[]) IS 'internal: refuse (42501, the GRANT to run as HINT) a definition whose owner lacks USAGE or CREATE on its view schema or on the state schema, or whose reader lacks USAGE there that the owner cannot grant';

-- true when the current user is owner inside a security-restricted operation
CREATE FUNCTION customer_analytics._in_owner_context(owner name) RETURNS boolean
    LANGUAGE c STABLE
    AS 'MODULE_PATHNAME', 'in_owner_context';

-- May the current role change a definition stored for `owner`?  Its owner
-- and roles that can SET ROLE to it may; superusers bypass the policies.
CREATE FUNCTION customer_analytics._is_definition_owner(owner name) RETURNS boolean
    LANGUAGE sql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
    SELECT owner = current_user
        OR COALESCE(pg_has_role(current_user, to_regrole(quote_ident(owner)), 'MEMBER'), false)
$$;

COMMENT ON FUNCTION customer_analytics._is_definition_owner(owner name) IS 'true when the current role owns a stored definition of this owner (or can SET ROLE to it): the catalogs'' row-level security';

-- REFRESH MATERIALIZED VIEW [CONCURRENTLY] that a security-restricted
-- operation may run (REFRESH becomes the view's owner itself).
CREATE FUNCTION customer_analytics._refresh_matview(view regclass, "concurrently" boolean) RETURNS void
    LANGUAGE c
    AS 'MODULE_PATHNAME', 'refresh_matview';

-- The error every management function raises for someone else's definition.
CREATE FUNCTION customer_analytics._require_definition_owner(kind text, name text, owner name) RETURNS void
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
    -- pg_has_role() is true for superusers: they may manage every definition
    IF NOT customer_analytics._is_definition_owner(owner) THEN
        RAISE EXCEPTION 'must be owner of % "%"', kind, name
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = format('%s "%s" belongs to role "%s".', initcap(kind), name, owner),
                  HINT = format('Only its owner (or a role that can SET ROLE %I) may change, refresh or drop it%s.',
                                owner, CASE WHEN kind = 'rollup' THEN '' ELSE '; others read its views' END);
    END IF;
END $$;

-- A definition is computed only as its owner: by the owner's own call, or
-- by REFRESH of its views, which PostgreSQL runs as the views' owner.  A
-- view whose owner is not the definition's (an ALTER ... OWNER TO, or a
-- definition dropped and another role's created under the same name) is
-- refused instead of running someone else's definition with its rights.
CREATE FUNCTION customer_analytics._require_definition_runner(kind text, name text, owner name) RETURNS void
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
    IF owner IS DISTINCT FROM current_user THEN
        RAISE EXCEPTION '% "%" belongs to role "%", not to "%"', kind, name, owner, current_user
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = format('A stored %s is computed only with its owner''s rights; a view refresh runs as the view''s owner.', kind),
                  HINT = format('Refresh it as %I, or make %I own the views again (ALTER MATERIALIZED VIEW ... OWNER TO %I).',
                                owner, owner, owner);
    END IF;
END $$;

-- The error of a step on a definition's objects called other than through
-- its public function (which runs it as the owner).
CREATE FUNCTION customer_analytics._require_owner_context(kind text, name text, owner name) RETURNS void
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
    IF NOT customer_analytics._in_owner_context(owner) THEN
        RAISE EXCEPTION 'work on % "%" runs only as its owner "%"', kind, name, owner
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = 'The extension works on a definition''s objects as their owner, in a security-restricted operation.',
                  HINT = format('Call the public function (for example customer_analytics.refresh_%s), which does that.', kind);
    END IF;
END $$;

-- A scratch table for this transaction that a security-restricted
-- operation may create (a column list that runs no code).
CREATE FUNCTION customer_analytics._scratch_table(name text, definition text) RETURNS regclass
    LANGUAGE c
    AS 'MODULE_PATHNAME', 'scratch_table';

-- A scratch table as _scratch_table makes one, kept for the session (ON
-- COMMIT DELETE ROWS) when the current role is the session's own: made at
-- the first call, emptied at the next ones with the same definition; made
-- again for another role or definition (another role's ON COMMIT DROP).
CREATE FUNCTION customer_analytics._session_scratch_table(name text, definition text) RETURNS regclass
    LANGUAGE c
    AS 'MODULE_PATHNAME', 'session_scratch_table';

-- NULL when reading the source's tables runs no code of a role the current
-- role does not trust.
CREATE FUNCTION customer_analytics._source_trust_problem(source_schema text) RETURNS text
    LANGUAGE c STABLE STRICT
    AS 'MODULE_PATHNAME', 'source_trust_problem';

COMMENT ON FUNCTION customer_analytics._source_trust_problem(source_schema text) IS 'NULL when reading the source''s tables runs no code of a role the current role does not trust; else why';
