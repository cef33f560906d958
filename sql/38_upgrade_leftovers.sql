-- An updated database keeps nothing a fresh install would not make (issue
-- 21, item 3).  Needs 00_setup (fx, public.err).
--
-- Under 1.4: a rollup with a writer (1.4 granted it SELECT, INSERT, DELETE
-- on the rollup's tables: its trigger ran as the writer) and a reader; a
-- superuser's campaign and segmentation; a non-superuser's campaign and
-- segmentation, with the user's own view on the segmentation's members.
-- After ALTER EXTENSION ... UPDATE: the writer has no privilege left on
-- the rollup's tables and its DELETE is refused (as that role), also after
-- rebuild_rollup, which resets any grant made since; every view the
-- extension manages is what a fresh 1.5 build of the same definition
-- makes (definition, owner, comments, privileges, indexes), built as its
-- owner under SECURITY_RESTRICTED_OPERATION (the owner's code cannot take
-- the superuser's rights); nothing of a user's became part of the
-- extension or got "initial privileges" that pg_dump would leave out.
\set VERBOSITY terse
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS customer_analytics CASCADE;
RESET client_min_messages;

-- a rollup source of the superuser's, and one of the non-superuser's own
CREATE SCHEMA lo;
CREATE TABLE lo.customers AS SELECT * FROM fx.customers;
CREATE TABLE lo.sales_orders AS SELECT * FROM fx.sales_orders;
CREATE TABLE lo.sales_order_lines AS SELECT * FROM fx.sales_order_lines;
CREATE ROLE ca_lo_erp;
CREATE ROLE ca_lo_reader;
CREATE ROLE ca_lo_bi;
CREATE ROLE ca_lo_owner;
GRANT USAGE ON SCHEMA lo TO ca_lo_erp;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA lo TO ca_lo_erp;
CREATE SCHEMA lo_src AUTHORIZATION ca_lo_owner;
CREATE TABLE lo_src.customers AS SELECT * FROM fx.customers;
CREATE TABLE lo_src.sales_orders AS SELECT * FROM fx.sales_orders;
CREATE TABLE lo_src.sales_order_lines AS SELECT * FROM fx.sales_order_lines;
ALTER TABLE lo_src.customers OWNER TO ca_lo_owner;
ALTER TABLE lo_src.sales_orders OWNER TO ca_lo_owner;
ALTER TABLE lo_src.sales_order_lines OWNER TO ca_lo_owner;
CREATE SCHEMA lo_bi;
CREATE SCHEMA lo_own AUTHORIZATION ca_lo_owner;

-- The privileges on a relation of roles other than its owner
-- (grantee:privilege, * with grant option), and the owner's if it lacks any.
CREATE FUNCTION lo_acl(rel regclass) RETURNS text LANGUAGE sql AS $$
    SELECT COALESCE(string_agg(x.item, ' ' ORDER BY x.item) FILTER (WHERE a.grantee <> c.relowner), '(none)')
           || CASE WHEN count(*) FILTER (WHERE a.grantee = c.relowner)
                        < (SELECT count(*) FROM aclexplode(acldefault('r', c.relowner))) THEN ' (owner lacks some)' ELSE '' END
      FROM pg_class c, aclexplode(COALESCE(c.relacl, acldefault('r', c.relowner))) a,
           LATERAL (SELECT format('%s:%s', CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee) END,
                                  a.privilege_type) || CASE WHEN a.is_grantable THEN '*' ELSE '' END AS item) x
     WHERE c.oid = rel
     GROUP BY c.relowner
$$;
-- What the extension manages for campaigns and segmentations in a schema:
-- each view and materialized view with its owner, definition, comments,
-- privileges and columns, and the indexes of the materialized views.
-- (State tables are made by refreshes, not builds: left out.)
CREATE FUNCTION lo_views(schema text)
RETURNS TABLE (relname name, relkind "char", owner name, definition text, remark text, acl text, columns text)
LANGUAGE sql AS $$
    SELECT c.relname, c.relkind, pg_get_userbyid(c.relowner),
           CASE c.relkind WHEN 'i' THEN pg_get_indexdef(c.oid) ELSE pg_get_viewdef(c.oid) END,
           obj_description(c.oid, 'pg_class'), lo_acl(c.oid),
           (SELECT string_agg(format('%s %s: %s', a.attname, format_type(a.atttypid, a.atttypmod),
                                     col_description(c.oid, a.attnum)), '; ' ORDER BY a.attnum)
              FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped)
      FROM pg_class c
     WHERE c.relnamespace = schema::regnamespace
       AND (c.relkind IN ('m', 'v')
            OR c.relkind = 'i' AND (SELECT t.relkind FROM pg_index x JOIN pg_class t ON t.oid = x.indrelid
                                     WHERE x.indexrelid = c.oid) = 'm')
       AND c.relname !~ '^my_'
$$;

CREATE EXTENSION customer_analytics VERSION '1.4';
-- What the extension manages for a rollup: its tables' privileges, by kind
-- of table (ids differ between two builds), column privileges included.
CREATE FUNCTION lo_rollup_acl(src text) RETURNS TABLE (kind text, acl text, column_acl text) LANGUAGE sql AS $$
    SELECT k.kind, lo_acl(to_regclass(k.rel)),
           (SELECT string_agg(format('%s.%s:%s', a.attname, pg_get_userbyid(y.grantee), y.privilege_type), ' '
                              ORDER BY a.attnum, pg_get_userbyid(y.grantee), y.privilege_type)
              FROM pg_attribute a, aclexplode(a.attacl) y WHERE a.attrelid = to_regclass(k.rel))
      FROM customer_analytics.rollups r,
           LATERAL (VALUES ('rollup', customer_analytics._rollup_table(r.id)),
                           ('dirty', customer_analytics._rollup_dirty_table(r.id)),
                           ('keys', 'customer_analytics.rollup_keys_' || r.id)) k(kind, rel)
     WHERE r.source_schema = src AND to_regclass(k.rel) IS NOT NULL
$$;
SELECT rollup_rows FROM customer_analytics.enable_rollup('lo', readers => '{ca_lo_reader}', writers => '{ca_lo_erp}');
-- what 1.4 gave the writer
SELECT * FROM lo_rollup_acl('lo') ORDER BY 1;
SELECT name FROM customer_analytics.create_campaign('lc', 'lo_bi', readers => '{ca_lo_reader}', source_schema => 'lo');
SELECT name FROM customer_analytics.create_segmentation('ls', 'lo_bi', k => 2, segment => 'all', k_to => 2,
                                                       silhouette_sample => 0, readers => '{ca_lo_reader}',
                                                       source_schema => 'lo');
-- under 1.4 a DBA let the analyst keep definitions with grants on the catalogs
GRANT USAGE ON SCHEMA customer_analytics TO ca_lo_owner;
GRANT INSERT, UPDATE, DELETE ON customer_analytics.campaigns, customer_analytics.segmentations TO ca_lo_owner;
SET ROLE ca_lo_owner;
SELECT name FROM customer_analytics.create_campaign('loc', 'lo_own', readers => '{ca_lo_reader}', source_schema => 'lo_src');
SELECT name FROM customer_analytics.create_segmentation('los', 'lo_own', k => 2, segment => 'all', k_to => 2,
                                                       silhouette_sample => 0, source_schema => 'lo_src');
SELECT name FROM customer_analytics.create_segmentation('losu', 'lo_own', k => 2, segment => 'all', k_to => 2,
                                                       silhouette_sample => 0, source_schema => 'lo_src');
-- a view of the analyst's own on a segmentation's members
CREATE VIEW lo_own.my_members AS SELECT customer_code, cluster FROM lo_own.losu_members;
-- and code of its own in its source, run whenever its orders are read (a
-- policy it forces on itself): it records who ran it and tries to take
-- back the session's rights
CREATE TABLE lo_own.seen (who name, tried text);
CREATE FUNCTION lo_own.spy() RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    BEGIN
        EXECUTE 'RESET ROLE';
        EXECUTE 'ALTER ROLE ca_lo_owner SUPERUSER';
        INSERT INTO lo_own.seen VALUES (current_user, 'became ' || current_user);
    EXCEPTION WHEN OTHERS THEN
        INSERT INTO lo_own.seen VALUES (current_user, SQLERRM);
    END;
    RETURN true;
END $$;
CREATE POLICY spy ON lo_src.sales_orders USING (lo_own.spy());
ALTER TABLE lo_src.sales_orders ENABLE ROW LEVEL SECURITY;
ALTER TABLE lo_src.sales_orders FORCE ROW LEVEL SECURITY;
RESET ROLE;

ALTER EXTENSION customer_analytics UPDATE;

-- 1. the rollup's tables: the writer keeps nothing, the reader SELECT
SELECT * FROM lo_rollup_acl('lo') ORDER BY 1;
SELECT r.role, t.kind, has_table_privilege(r.role, t.rel, 'SELECT') AS sel,
       has_table_privilege(r.role, t.rel, 'INSERT') AS ins, has_table_privilege(r.role, t.rel, 'UPDATE') AS upd,
       has_table_privilege(r.role, t.rel, 'DELETE') AS del, has_table_privilege(r.role, t.rel, 'TRUNCATE') AS trunc
  FROM (VALUES ('ca_lo_erp'), ('ca_lo_reader')) r(role),
       (SELECT 'rollup' AS kind, customer_analytics._rollup_table(id) AS rel FROM customer_analytics.rollups
         WHERE source_schema = 'lo'
        UNION ALL
        SELECT 'dirty', customer_analytics._rollup_dirty_table(id) FROM customer_analytics.rollups
         WHERE source_schema = 'lo') t
 ORDER BY 1, 2;
-- 2. nothing of a user's became part of the extension, nor got initial
-- privileges (pg_dump would dump only the difference from them)
SELECT count(*) AS user_relations_in_extension
  FROM pg_depend d JOIN pg_class c ON c.oid = d.objid
 WHERE d.classid = 'pg_class'::regclass AND d.deptype = 'e'
   AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'customer_analytics')
   AND c.relnamespace <> 'customer_analytics'::regnamespace;
SELECT count(*) AS initial_privileges_of_user_relations
  FROM pg_init_privs i JOIN pg_class c ON c.oid = i.objoid AND i.classoid = 'pg_class'::regclass
 WHERE c.relnamespace IN ('lo_bi'::regnamespace, 'lo_own'::regnamespace)
    OR c.relname ~ '^(order_rollup|rollup_dirty|rollup_keys)_';
-- 3. the views were built as their owner, whose code ran only with its own
-- rights (the role switch of the update could not be undone)
SELECT DISTINCT who, tried FROM lo_own.seen ORDER BY 1, 2;
SELECT rolsuper AS owner_became_superuser FROM pg_roles WHERE rolname = 'ca_lo_owner';
DROP POLICY spy ON lo_src.sales_orders;
ALTER TABLE lo_src.sales_orders NO FORCE ROW LEVEL SECURITY;
ALTER TABLE lo_src.sales_orders DISABLE ROW LEVEL SECURITY;
-- the segmentation with the user's view on it kept its views (the WARNING
-- above), the others have every 1.5 view
SELECT relname, relkind, owner FROM lo_views('lo_bi') WHERE relkind <> 'i'
UNION ALL
SELECT relname, relkind, owner FROM lo_views('lo_own') WHERE relkind <> 'i' ORDER BY 1;

-- 4. the rollup, rebuilt, is current again; the writer (as itself) writes
-- the ERP tables as before, but cannot touch the rollup
SELECT state FROM customer_analytics.rebuild_rollup('lo');
SELECT customer_analytics._rollup_table(id) AS lo_rollup, customer_analytics._rollup_dirty_table(id) AS lo_dirty,
       'customer_analytics.rollup_keys_' || id AS lo_keys
  FROM customer_analytics.rollups WHERE source_schema = 'lo' \gset
CREATE TEMP TABLE upgraded_rollup_acl AS SELECT * FROM lo_rollup_acl('lo');
SET ROLE ca_lo_erp;
SELECT err(format('DELETE FROM %s WHERE customer_code = %L', :'lo_rollup', '0001001')) AS writer_deletes_rollup_rows;
SELECT err(format('INSERT INTO %s (customer_code) VALUES (NULL)', :'lo_dirty')) AS writer_writes_dirty_rows;
SELECT err(format('SELECT count(*) FROM %s', :'lo_rollup')) AS writer_reads_rollup;
INSERT INTO lo.sales_order_lines VALUES ('SO', '1001', 9, 'P9', 1, 10);
RESET ROLE;
SELECT count(*) AS rollup_differences FROM customer_analytics.check_rollup('lo');
SELECT state FROM customer_analytics.rollups WHERE source_schema = 'lo';
SELECT count(*) AS customers FROM customer_analytics.customer_features(source_schema => 'lo');
DELETE FROM lo.sales_order_lines WHERE line_no = 9;

-- 5. rebuild_rollup resets privileges given since: write privileges
-- (table and column) go, from everyone; SELECT given by hand to a role
-- stays (it falsifies nothing); the keys table is the owner's alone
GRANT SELECT, INSERT, DELETE ON :lo_rollup, :lo_dirty TO ca_lo_erp;
GRANT SELECT ON :lo_rollup TO ca_lo_bi;
GRANT UPDATE (total) ON :lo_rollup TO ca_lo_bi;
GRANT TRUNCATE ON :lo_dirty TO PUBLIC;
GRANT SELECT, UPDATE ON :lo_keys TO ca_lo_erp;
SELECT * FROM lo_rollup_acl('lo') ORDER BY 1;
SET ROLE ca_lo_erp;
SELECT err(format('DELETE FROM %s WHERE customer_code = %L', :'lo_rollup', '0001001')) AS writer_deletes_before_rebuild;
RESET ROLE;
SELECT state FROM customer_analytics.rebuild_rollup('lo');
SELECT * FROM lo_rollup_acl('lo') ORDER BY 1;
SET ROLE ca_lo_erp;
SELECT err(format('DELETE FROM %s WHERE customer_code = %L', :'lo_rollup', '0001001')) AS writer_deletes_after_rebuild;
SELECT err(format('SELECT * FROM %s FOR UPDATE', :'lo_keys')) AS writer_locks_keys;
RESET ROLE;
SET ROLE ca_lo_bi;
SELECT err(format('UPDATE %s SET total = 0', :'lo_rollup')) AS bi_updates_rollup;
SELECT err(format('SELECT count(*) FROM %s', :'lo_rollup')) AS bi_reads_rollup;
RESET ROLE;
REVOKE ALL ON :lo_rollup FROM ca_lo_bi;

-- 6. the analyst drops its view and finishes with upgrade_views(); a
-- second call has nothing left to do
SET ROLE ca_lo_owner;
DROP VIEW lo_own.my_members;
SELECT v::text FROM customer_analytics.upgrade_views() v ORDER BY 1;
SELECT count(*) AS second_call FROM customer_analytics.upgrade_views();
RESET ROLE;
-- another role's definitions are not its to upgrade
SET ROLE ca_lo_reader;
SELECT count(*) AS readers_upgrade FROM customer_analytics.upgrade_views();
SELECT left(err('SELECT customer_analytics._as_owner(''postgres'', ''SELECT 1'')'), 60) AS run_as_another_role;
RESET ROLE;

-- 7. what the update made equals what a fresh 1.5 build makes: the same
-- definitions created again under 1.5, and the rollup enabled again
CREATE TEMP TABLE upgraded AS SELECT * FROM lo_views('lo_bi') UNION ALL SELECT * FROM lo_views('lo_own');
SELECT customer_analytics.drop_campaign('lc');
SELECT customer_analytics.drop_segmentation('ls');
SET ROLE ca_lo_owner;
SELECT customer_analytics.drop_campaign('loc');
SELECT customer_analytics.drop_segmentation('los');
SELECT customer_analytics.drop_segmentation('losu');
RESET ROLE;
SELECT customer_analytics.drop_rollup('lo');
SELECT rollup_rows FROM customer_analytics.enable_rollup('lo', readers => '{ca_lo_reader}', writers => '{ca_lo_erp}');
SELECT name FROM customer_analytics.create_campaign('lc', 'lo_bi', readers => '{ca_lo_reader}', source_schema => 'lo');
SELECT name FROM customer_analytics.create_segmentation('ls', 'lo_bi', k => 2, segment => 'all', k_to => 2,
                                                       silhouette_sample => 0, readers => '{ca_lo_reader}',
                                                       source_schema => 'lo');
SET ROLE ca_lo_owner;
SELECT name FROM customer_analytics.create_campaign('loc', 'lo_own', readers => '{ca_lo_reader}', source_schema => 'lo_src');
SELECT name FROM customer_analytics.create_segmentation('los', 'lo_own', k => 2, segment => 'all', k_to => 2,
                                                       silhouette_sample => 0, source_schema => 'lo_src');
SELECT name FROM customer_analytics.create_segmentation('losu', 'lo_own', k => 2, segment => 'all', k_to => 2,
                                                       silhouette_sample => 0, source_schema => 'lo_src');
RESET ROLE;
CREATE TEMP TABLE fresh AS SELECT * FROM lo_views('lo_bi') UNION ALL SELECT * FROM lo_views('lo_own');
SELECT count(*) AS relations, count(*) FILTER (WHERE relkind = 'm') AS materialized_views,
       count(*) FILTER (WHERE relkind = 'v') AS plain_views, count(*) FILTER (WHERE relkind = 'i') AS indexes
  FROM fresh;
SELECT 'updated' AS side, relname, relkind FROM (SELECT * FROM upgraded EXCEPT SELECT * FROM fresh) u
UNION ALL
SELECT 'fresh', relname, relkind FROM (SELECT * FROM fresh EXCEPT SELECT * FROM upgraded) f ORDER BY 2, 1;
SELECT 'updated' AS side, * FROM (SELECT * FROM upgraded_rollup_acl EXCEPT SELECT * FROM lo_rollup_acl('lo')) u
UNION ALL
SELECT 'fresh', * FROM (SELECT * FROM lo_rollup_acl('lo') EXCEPT SELECT * FROM upgraded_rollup_acl) f ORDER BY 2, 1;

-- clean up: a fresh extension for whatever runs next
SELECT customer_analytics.drop_campaign('lc');
SELECT customer_analytics.drop_segmentation('ls');
SET ROLE ca_lo_owner;
SELECT customer_analytics.drop_campaign('loc');
SELECT customer_analytics.drop_segmentation('los');
SELECT customer_analytics.drop_segmentation('losu');
RESET ROLE;
SELECT customer_analytics.drop_rollup('lo');
DROP FUNCTION lo_views(text);
DROP FUNCTION lo_rollup_acl(text);
DROP FUNCTION lo_acl(regclass);
DROP SCHEMA lo_own CASCADE;
DROP SCHEMA lo_src CASCADE;
DROP SCHEMA lo_bi;
DROP SCHEMA lo CASCADE;
REVOKE ALL ON SCHEMA customer_analytics FROM ca_lo_owner;
SET client_min_messages = warning;
DROP EXTENSION customer_analytics;
RESET client_min_messages;
CREATE EXTENSION customer_analytics;
DROP ROLE ca_lo_erp;
DROP ROLE ca_lo_reader;
DROP ROLE ca_lo_bi;
DROP ROLE ca_lo_owner;
