#!/usr/bin/env bash
# test/catalog_equality.sh: a fresh install and an updated one have the same
# catalogs (issue 22, "A test that proves it").  Run by scripts/test.sh, as
# root, after the extension is installed.
#
# Starts its own throwaway cluster as the postgres OS user (unix socket in a
# temp dir, no TCP, port CATALOG_EQ_PORT, default 5470), with pg_cron
# preloaded and cron.database_name set to the updated database, and makes
# two databases:
#   ca_fresh     CREATE EXTENSION customer_analytics (the control file's
#                default_version, read from pg_available_extensions);
#   ca_upgraded  the demo data (scale 0.02), CREATE EXTENSION ... VERSION
#                '1.0', then ALTER EXTENSION ... UPDATE TO each version of
#                the update path in turn, with live objects made on the way:
#                under 1.0 a campaign and a segmentation, both scheduled
#                with pg_cron, with a reader; under 1.1 the order rollup
#                (a reader, a writer), a second campaign, orders changed,
#                refreshes; under 1.3 a segmentation and refreshes; under
#                1.4 a non-superuser's campaign (scheduled as that role),
#                segmentation and a view of its own on the campaign; under
#                1.5, once it is no longer the default, a rebuilt rollup, a
#                rolling campaign, BI views and schedules.  The last step is
#                a plain ALTER EXTENSION customer_analytics UPDATE.
# Then compares the two databases' catalogs, one "ok"/"not ok" line per
# category, with the diff (fresh "-", updated "+") printed on failure:
#   members      the extension's member objects (pg_depend deptype 'e',
#                pg_describe_object)
#   functions    every function, procedure and aggregate in schema
#                customer_analytics or a member: pg_get_functiondef (for an
#                aggregate its pg_aggregate entry), kind, owner, prosecdef,
#                provolatile, proparallel, proconfig, proacl
#   tables       member tables (and views, if any): kind, persistence, row
#                level security, options; columns by their position among
#                the non-dropped ones: name, type, collation, not null,
#                default, identity, generated
#   indexes      pg_get_indexdef of the indexes on member tables
#   constraints  pg_get_constraintdef on member tables and member types
#   policies     pg_policies on member tables
#   triggers     pg_get_triggerdef and tgenabled of the (non-internal)
#                triggers and the rules on member tables; the member event
#                triggers (event, function, evtenabled, evttags, owner)
#   grants       owners and privileges (aclexplode, role OIDs as names,
#                NULL as acldefault) of the schema customer_analytics, the
#                member relations and their columns, functions and types;
#                pg_init_privs of the members and the schema
#   comments     every comment on a member, the schema, a column of a
#                member relation, and an index, constraint, trigger, rule or
#                policy on a member table
#   extension    extversion, extrelocatable, schema, owner, and extconfig
#                paired with extcondition (as table names, sorted)
#   sequences    member sequences: type, start, increment, bounds, cache,
#                cycle, the column that owns them
#   types        member types: composite attributes, enum labels, domain
#                base/not null/default, range subtype, base type functions
# Excluded, and why:
#   - objects that are not extension members: what the live definitions
#     made at run time (their views and materialized views in the users'
#     schemas ce_bi and ce_own, their state tables in the extension's
#     schema customer_analytics_state, the rollup's order_rollup_<id>,
#     rollup_dirty_<id>, rollup_keys_<id> tables in the extension's schema,
#     the rollup triggers on the user's cosmos_sync tables, pg_cron's jobs)
#     belong to the definitions, not to the extension, and the fresh
#     database has no definitions; they are listed as "#" lines;
#   - rows of the catalog tables (campaigns, rollups, refresh_schedules,
#     refresh_history, ...) and sequence values: user data;
#   - OIDs, attnum of dropped columns (an updated table keeps its dropped
#     columns' slots), relfilenodes, statistics: physical, not behaviour;
#   - the order of the items of an ACL and of extconfig: both are sets;
#   - pg_cron, installed in ca_upgraded only (it can only live in
#     cron.database_name): its own objects are not customer_analytics's.
# Prints "ok - ..." / "not ok - ..." lines and "N passed, M failed".
# CATALOG_EQ_DIFF_LINES (default 400) caps the diff lines printed per
# category; on a failure (or with CATALOG_EQ_KEEP=1) the catalogs and diffs
# are kept in a directory it names.
set -uo pipefail

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WORK=$(mktemp -d /tmp/ca_catalog_eq.XXXXXX)
chown postgres: "$WORK"
PORT=${CATALOG_EQ_PORT:-5470}
DIFF_LINES=${CATALOG_EQ_DIFF_LINES:-400}
FRESH=ca_fresh
UPGRADED=ca_upgraded
source "$(dirname "${BASH_SOURCE[0]}")/checks.sh"
OUT=$WORK/out
mkdir -p "$OUT"
keep=""
cleanup() {
    if [ "${failed:-0}" -ne 0 ] || [ -n "${CATALOG_EQ_KEEP:-}" ]; then
        keep=$(mktemp -d /tmp/ca_catalog_eq.kept.XXXXXX)
        cp -r "$OUT"/. "$keep"/
        echo "# the catalogs and diffs are kept in $keep"
    fi
    stop_clusters cat
}
trap cleanup EXIT

psql_() { "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$WORK" -p "$PORT" -U postgres "$@"; }
# q DB SQL: rows unaligned, tuples only, errors to stderr
q() { psql_ -At -d "$1" -c "SET client_min_messages = warning" -c "$2"; }

if ! start_cluster cat "$PORT" "-c shared_preload_libraries=pg_cron -c cron.database_name=$UPGRADED -c cron.use_background_workers=on"; then
    not_ok "a throwaway cluster started"; tail -20 "$WORK/cat.log" 2>/dev/null; finish
fi

default=$(q postgres "SELECT default_version FROM pg_available_extensions WHERE name = 'customer_analytics'")
path=$(q postgres "SELECT path FROM pg_extension_update_paths('customer_analytics') WHERE source = '1.0' AND target = '$default'")
if [ -z "$default" ] || { [ "$default" != "1.0" ] && [ -z "$path" ]; }; then
    not_ok "customer_analytics is installed with an update path from 1.0 to its default version" \
        "default '$default', path '$path'"
    finish
fi
ok "cluster started (socket in $WORK, port $PORT); default version $default, update path ${path:-1.0}"

# --- ca_fresh ---------------------------------------------------------------
if psql_ -d postgres -c "CREATE DATABASE $FRESH" -c "CREATE DATABASE $UPGRADED" >"$WORK/createdb.out" 2>&1 &&
   q "$FRESH" "CREATE EXTENSION customer_analytics" >"$WORK/fresh.out" 2>&1; then
    ok "$FRESH: CREATE EXTENSION customer_analytics ($(q "$FRESH" "SELECT extversion FROM pg_extension WHERE extname = 'customer_analytics'"))"
else
    not_ok "$FRESH: CREATE EXTENSION customer_analytics" "$(cat "$WORK/createdb.out" "$WORK/fresh.out" | tail -5)"
    finish
fi

# --- ca_upgraded: live objects made under each version on the way -----------
# stage_<version>: SQL run once the database is at that version (1.0 right
# after CREATE EXTENSION); a version without a stage is only passed through.
# A stage runs only if its version is not the default one.
stage_1_0="
CREATE SCHEMA ce_bi;
SELECT name FROM customer_analytics.create_campaign('c10', 'ce_bi', readers => '{ce_reader}');
SELECT name FROM customer_analytics.create_segmentation('s10', 'ce_bi', k => 3, segment => 'all', k_to => 4,
                                                       silhouette_sample => 0, readers => '{ce_reader}');
SELECT customer_analytics.schedule_campaign_refresh('c10', '0 6 * * *');
SELECT customer_analytics.schedule_segmentation_refresh('s10', '30 6 * * *');"
stage_1_1="
SELECT rollup_rows FROM customer_analytics.enable_rollup('cosmos_sync', readers => '{ce_reader}', writers => '{ce_erp}');
SELECT name FROM customer_analytics.create_campaign('c11', 'ce_bi', min_spend => 5000, readers => '{ce_reader}');
UPDATE cosmos_sync.sales_order_lines SET pretax_subtotal = pretax_subtotal + 100
 WHERE order_number IN (SELECT order_number FROM cosmos_sync.sales_orders ORDER BY order_number LIMIT 5);
SELECT target_rows FROM customer_analytics.refresh_campaign('c10');
SELECT target_rows FROM customer_analytics.refresh_campaign('c11');"
stage_1_3="
SELECT name FROM customer_analytics.create_segmentation('s13', 'ce_bi', k => 2, segment => 'repeat', k_to => 3,
                                                       silhouette_sample => 0);
DELETE FROM cosmos_sync.sales_order_lines
 WHERE order_number = (SELECT order_number FROM cosmos_sync.sales_orders ORDER BY order_number DESC LIMIT 1);
SELECT target_rows FROM customer_analytics.refresh_campaign('c11');
SELECT member_rows FROM customer_analytics.refresh_segmentation('s10');"
# under 1.4 a DBA let a non-superuser keep definitions with grants on the
# catalogs; they are revoked again (grants made by hand on the extension's
# objects would differ from a fresh install, rightly)
stage_1_4="
CREATE SCHEMA ce_own AUTHORIZATION ce_analyst;
GRANT USAGE ON SCHEMA cosmos_sync TO ce_analyst;
GRANT SELECT ON ALL TABLES IN SCHEMA cosmos_sync TO ce_analyst;
GRANT USAGE ON SCHEMA cron TO ce_analyst;
GRANT USAGE ON SCHEMA customer_analytics TO ce_analyst;
GRANT INSERT, UPDATE, DELETE ON customer_analytics.campaigns, customer_analytics.segmentations TO ce_analyst;
SET ROLE ce_analyst;
SELECT name FROM customer_analytics.create_campaign('c14', 'ce_own', readers => '{ce_reader}');
SELECT name FROM customer_analytics.create_segmentation('s14', 'ce_own', k => 2, segment => 'all', k_to => 2,
                                                       silhouette_sample => 0);
SELECT customer_analytics.schedule_campaign_refresh('c14', '15 6 * * 1');
CREATE VIEW ce_own.my_targets AS SELECT customer_code FROM ce_own.c14_targets;
RESET ROLE;
REVOKE USAGE ON SCHEMA customer_analytics FROM ce_analyst;
REVOKE INSERT, UPDATE, DELETE ON customer_analytics.campaigns, customer_analytics.segmentations FROM ce_analyst;
SELECT target_rows FROM customer_analytics.refresh_campaign('c10');"
stage_1_5="
SELECT state FROM customer_analytics.rebuild_rollup('cosmos_sync');
SET customer_analytics.as_of_date = '2026-01-07';
SELECT name FROM customer_analytics.create_campaign('c15', 'ce_bi', readers => '{ce_reader}', rolling => '{
    \"spend_window\": {\"from\": \"as_of -12 months +1 day\", \"to\": \"as_of\"},
    \"revenue_window\": {\"from\": \"month_start -4 months\", \"to\": \"as_of\"}}');
SELECT customer_analytics.schedule_campaign_refresh('c15', '0 5 * * *');
UPDATE cosmos_sync.sales_order_lines SET quantity = quantity + 1
 WHERE order_number IN (SELECT order_number FROM cosmos_sync.sales_orders ORDER BY order_number LIMIT 3);
SELECT target_rows FROM customer_analytics.refresh_campaign('c11');
SELECT target_rows FROM customer_analytics.refresh_campaign('c15');
SELECT count(*) FROM customer_analytics.add_bi_views();
SET ROLE ce_analyst;
SELECT name FROM customer_analytics.create_segmentation('s15', 'ce_own', k => 2, segment => 'all', k_to => 2,
                                                       silhouette_sample => 0);
SELECT customer_analytics.schedule_segmentation_refresh('s15', '0 4 * * *');
SELECT member_rows FROM customer_analytics.refresh_segmentation('s14');
RESET ROLE;"

# the roles are the cluster's; the demo data, pg_cron, version 1.0
up_sql="SET client_min_messages = warning;
CREATE ROLE ce_reader; CREATE ROLE ce_erp; CREATE ROLE ce_analyst;
CREATE EXTENSION pg_cron;
CREATE EXTENSION customer_analytics VERSION '1.0';
GRANT USAGE ON SCHEMA cosmos_sync TO ce_erp;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA cosmos_sync TO ce_erp;
$stage_1_0"
IFS=' ' read -r -a versions <<<"${path//--/ }"
made="1.0"
for ((i = 1; i < ${#versions[@]} - 1; i++)); do
    v=${versions[$i]}
    up_sql+="
ALTER EXTENSION customer_analytics UPDATE TO '$v';"
    stage_var="stage_${v//./_}"
    if [ -n "${!stage_var:-}" ]; then
        up_sql+="${!stage_var}"
        made+=", $v"
    fi
done
if (cd "$ROOT" && psql_ -v scale=0.02 -f test/demo_data.sql -d "$UPGRADED") >"$WORK/demo.out" 2>&1 &&
   psql_ -d "$UPGRADED" -c "$up_sql" >"$WORK/stages.out" 2>&1; then
    ok "$UPGRADED: demo data, CREATE EXTENSION ... VERSION '1.0', live objects made under $made"
else
    not_ok "$UPGRADED: demo data, CREATE EXTENSION ... VERSION '1.0', live objects made under $made" \
        "$(cat "$WORK/demo.out" "$WORK/stages.out" | tail -8)"
    finish
fi
# per-customer state kept under 1.5 beside the views (ce_bi): refreshes in
# transactions of their own (the stages' one wrote the source tables, and a
# refresh does not keep state in such a transaction), for the update to move
if psql_ -d "$UPGRADED" -c "SELECT count(*) FROM customer_analytics.refresh_campaign('c11')" \
        -c "SELECT count(*) FROM customer_analytics.refresh_segmentation('s10')" >"$WORK/state15.out" 2>&1; then
    check "$UPGRADED: under 1.5, state tables beside the views in ce_bi" \
        "$(q "$UPGRADED" "SELECT string_agg(relname, ',' ORDER BY relname) FROM pg_class
                          WHERE relnamespace = 'ce_bi'::regnamespace AND relkind = 'r'")" \
        "c11_month_state,c11_state,s10_features_state,s10_sku_state"
else
    not_ok "$UPGRADED: under 1.5, refreshes that keep state" "$(tail -5 "$WORK/state15.out")"
fi
# the update itself, in its own statement, to the control file's default
if psql_ -d "$UPGRADED" -c "ALTER EXTENSION customer_analytics UPDATE" >"$WORK/update.out" 2>&1; then
    check "$UPGRADED: ALTER EXTENSION customer_analytics UPDATE reaches the default version" \
        "$(q "$UPGRADED" "SELECT extversion FROM pg_extension WHERE extname = 'customer_analytics'")" "$default"
else
    not_ok "$UPGRADED: ALTER EXTENSION customer_analytics UPDATE" "$(tail -8 "$WORK/update.out")"
    finish
fi
# what the update said (the rollup disabled until rebuilt, views kept...)
sed 's/^/# update: /' "$WORK/update.out"

# --- the catalogs -------------------------------------------------------------
# Each query runs with search_path = pg_catalog, so that every regclass,
# regprocedure and regtype is schema-qualified.  mem: the extension's
# members; rels: member relations; tabs: member tables.
COMMON="WITH
ext AS (SELECT e.* FROM pg_extension e WHERE e.extname = 'customer_analytics'),
mem AS (SELECT d.classid, d.objid, d.objsubid FROM pg_depend d, ext
         WHERE d.refclassid = 'pg_extension'::regclass AND d.refobjid = ext.oid AND d.deptype = 'e'),
rels AS (SELECT c.* FROM pg_class c WHERE c.oid IN (SELECT objid FROM mem WHERE classid = 'pg_class'::regclass)),
tabs AS (SELECT * FROM rels WHERE relkind IN ('r', 'p', 'f')),
procs AS (SELECT p.* FROM pg_proc p
           WHERE p.oid IN (SELECT objid FROM mem WHERE classid = 'pg_proc'::regclass)
              OR p.pronamespace = 'customer_analytics'::regnamespace),
types AS (SELECT t.* FROM pg_type t WHERE t.oid IN (SELECT objid FROM mem WHERE classid = 'pg_type'::regclass)),
role_name(oid, name) AS (SELECT 0::oid, 'PUBLIC'::text UNION ALL SELECT oid, rolname::text FROM pg_authid)"
# acl EXPR KIND OWNER: a normalized ACL, grantee=privilege[*]/grantor, sorted
acl() {
    echo "(SELECT COALESCE(string_agg(x, ' ' ORDER BY x), '(none)') FROM (
        SELECT format('%s=%s%s/%s', COALESCE(g.name, a.grantee::text), a.privilege_type,
                      CASE WHEN a.is_grantable THEN '*' ELSE '' END, COALESCE(r.name, a.grantor::text)) AS x
          FROM aclexplode(COALESCE($1, acldefault('$2', $3))) a
          LEFT JOIN role_name g ON g.oid = a.grantee LEFT JOIN role_name r ON r.oid = a.grantor) acl)"
}

declare -A SQL
SQL[members]="SELECT pg_describe_object(classid, objid, objsubid) FROM mem ORDER BY 1"

SQL[functions]="SELECT format(E'== %s\n%s %s, owner %s, security definer %s, volatility %s, parallel %s, config %s\nacl %s\n%s',
       p.oid::regprocedure,
       CASE p.prokind WHEN 'f' THEN 'function' WHEN 'p' THEN 'procedure' WHEN 'a' THEN 'aggregate' ELSE 'window function' END,
       p.oid::regprocedure, pg_get_userbyid(p.proowner), p.prosecdef, p.provolatile, p.proparallel,
       COALESCE(p.proconfig::text, '(none)'), $(acl p.proacl f p.proowner),
       CASE WHEN p.prokind = 'a' THEN
           (SELECT format(E'returns %s\nkind %s, direct args %s, sfunc %s, stype %s, sspace %s, finalfunc %s, finalfunc extra %s, finalfunc modify %s, '
                          'combinefunc %s, serialfunc %s, deserialfunc %s, initcond %s, msfunc %s, minvfunc %s, mfinalfunc %s, '
                          'mstype %s, minitcond %s, sortop %s',
                          pg_get_function_result(p.oid), a.aggkind, a.aggnumdirectargs, a.aggtransfn::oid::regprocedure,
                          format_type(a.aggtranstype, NULL), a.aggtransspace, a.aggfinalfn::oid::regprocedure, a.aggfinalextra,
                          a.aggfinalmodify, a.aggcombinefn::oid::regprocedure, a.aggserialfn::oid::regprocedure,
                          a.aggdeserialfn::oid::regprocedure, COALESCE(a.agginitval, '(null)'), a.aggmtransfn::oid::regprocedure,
                          a.aggminvtransfn::oid::regprocedure, a.aggmfinalfn::oid::regprocedure, format_type(a.aggmtranstype, NULL),
                          COALESCE(a.aggminitval, '(null)'), a.aggsortop::regoperator)
              FROM pg_aggregate a WHERE a.aggfnoid = p.oid)
       ELSE pg_get_functiondef(p.oid) END)
  FROM procs p ORDER BY p.oid::regprocedure::text"

SQL[tables]="SELECT line FROM (
    SELECT c.oid::regclass::text AS rel, 0 AS pos,
           format('%s: relkind %s, persistence %s, row security %s, forced %s, options %s, replica identity %s, access method %s%s',
                  c.oid::regclass, c.relkind, c.relpersistence, c.relrowsecurity, c.relforcerowsecurity,
                  COALESCE(c.reloptions::text, '(none)'), c.relreplident, COALESCE(am.amname, '(none)'),
                  CASE WHEN c.relkind IN ('v', 'm') THEN E'\n' || pg_get_viewdef(c.oid) ELSE '' END) AS line
      FROM rels c LEFT JOIN pg_am am ON am.oid = c.relam WHERE c.relkind NOT IN ('S', 'i', 'I', 'c')
    UNION ALL
    SELECT c.oid::regclass::text, a.pos,
           format('%s column %s: %s %s%s%s%s%s%s', c.oid::regclass, a.pos, a.attname,
                  format_type(a.atttypid, a.atttypmod),
                  CASE WHEN a.attcollation <> 0 AND a.attcollation <> t.typcollation
                       THEN ' collate ' || a.attcollation::regcollation ELSE '' END,
                  CASE WHEN a.attnotnull THEN ' not null' ELSE '' END,
                  COALESCE(' default ' || pg_get_expr(d.adbin, d.adrelid), ''),
                  CASE WHEN a.attidentity <> '' THEN ' identity ' || a.attidentity::text ELSE '' END,
                  CASE WHEN a.attgenerated <> '' THEN ' generated ' || a.attgenerated::text ELSE '' END)
      FROM rels c
      JOIN (SELECT *, row_number() OVER (PARTITION BY attrelid ORDER BY attnum) AS pos
              FROM pg_attribute WHERE attnum > 0 AND NOT attisdropped) a ON a.attrelid = c.oid
      JOIN pg_type t ON t.oid = a.atttypid
      LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
     WHERE c.relkind NOT IN ('S', 'i', 'I', 'c')) x
 ORDER BY rel, pos"

SQL[indexes]="SELECT pg_get_indexdef(i.indexrelid)
       || CASE WHEN i.indisclustered THEN ' (clustered)' ELSE '' END
       || CASE WHEN NOT i.indisvalid THEN ' (invalid)' ELSE '' END
       || CASE WHEN i.indisreplident THEN ' (replica identity)' ELSE '' END
  FROM pg_index i WHERE i.indrelid IN (SELECT oid FROM tabs) ORDER BY 1"

SQL[constraints]="SELECT format('%s: %s %s %s', COALESCE(c.conrelid::regclass::text, c.contypid::regtype::text),
                      c.conname, c.contype, pg_get_constraintdef(c.oid))
  FROM pg_constraint c
 WHERE c.conrelid IN (SELECT oid FROM tabs) OR c.contypid IN (SELECT oid FROM types) ORDER BY 1"

SQL[policies]="SELECT format('%I.%I %s: %s for %s to %s using (%s) with check (%s)', p.schemaname, p.tablename,
                      p.policyname, p.permissive, p.cmd, p.roles, COALESCE(p.qual, '-'), COALESCE(p.with_check, '-'))
  FROM pg_policies p
 WHERE format('%I.%I', p.schemaname, p.tablename)::regclass IN (SELECT oid FROM tabs) ORDER BY 1"

SQL[triggers]="SELECT line FROM (
    SELECT pg_get_triggerdef(t.oid) || ' [enabled ' || t.tgenabled::text || ']' AS line
      FROM pg_trigger t WHERE t.tgrelid IN (SELECT oid FROM tabs) AND NOT t.tgisinternal
    UNION ALL
    SELECT 'rule ' || r.rulename || ': ' || pg_get_ruledef(r.oid) || ' [enabled ' || r.ev_enabled::text || ']'
      FROM pg_rewrite r WHERE r.ev_class IN (SELECT oid FROM tabs)
    UNION ALL
    SELECT format('event trigger %s on %s executes %s, enabled %s, tags %s, owner %s', e.evtname, e.evtevent,
                  e.evtfoid::regprocedure, e.evtenabled, COALESCE(e.evttags::text, '(all)'), pg_get_userbyid(e.evtowner))
      FROM pg_event_trigger e WHERE e.oid IN (SELECT objid FROM mem WHERE classid = 'pg_event_trigger'::regclass)) x
 ORDER BY 1"

SQL[grants]="SELECT line FROM (
    SELECT format('schema %s: owner %s, %s', n.nspname, pg_get_userbyid(n.nspowner), $(acl n.nspacl n n.nspowner)) AS line
      FROM pg_namespace n WHERE n.nspname = 'customer_analytics'
    UNION ALL
    SELECT format('%s %s: owner %s, %s', CASE c.relkind WHEN 'S' THEN 'sequence' ELSE 'relation' END, c.oid::regclass,
                  pg_get_userbyid(c.relowner),
                  CASE c.relkind WHEN 'S' THEN $(acl c.relacl s c.relowner) ELSE $(acl c.relacl r c.relowner) END)
      FROM rels c
    UNION ALL
    SELECT format('column %s.%I: %s', c.oid::regclass, a.attname, $(acl a.attacl c c.relowner))
      FROM rels c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
     WHERE a.attacl IS NOT NULL AND cardinality(a.attacl) > 0
    UNION ALL
    SELECT format('function %s: owner %s, %s', p.oid::regprocedure, pg_get_userbyid(p.proowner), $(acl p.proacl f p.proowner))
      FROM procs p
    UNION ALL
    SELECT format('type %s: owner %s, %s', t.oid::regtype, pg_get_userbyid(t.typowner), $(acl t.typacl T t.typowner))
      FROM types t
    UNION ALL
    SELECT format('initial privileges (%s) of %s: %s', i.privtype, pg_describe_object(i.classoid, i.objoid, i.objsubid),
                  $(acl i.initprivs r 0))
      FROM pg_init_privs i
     WHERE (i.classoid, i.objoid) IN (SELECT classid, objid FROM mem)
        OR (i.classoid = 'pg_namespace'::regclass AND i.objoid = 'customer_analytics'::regnamespace)) x
 ORDER BY 1"

SQL[comments]="SELECT format('%s: %s', pg_describe_object(d.classoid, d.objoid, d.objsubid), d.description)
  FROM pg_description d
 WHERE (d.classoid, d.objoid) IN (SELECT classid, objid FROM mem)
    OR (d.classoid = 'pg_namespace'::regclass AND d.objoid = 'customer_analytics'::regnamespace)
    OR (d.classoid = 'pg_class'::regclass AND d.objoid IN (SELECT indexrelid FROM pg_index WHERE indrelid IN (SELECT oid FROM tabs)))
    OR (d.classoid = 'pg_constraint'::regclass AND d.objoid IN (SELECT oid FROM pg_constraint WHERE conrelid IN (SELECT oid FROM tabs)))
    OR (d.classoid = 'pg_trigger'::regclass AND d.objoid IN (SELECT oid FROM pg_trigger WHERE tgrelid IN (SELECT oid FROM tabs)))
    OR (d.classoid = 'pg_rewrite'::regclass AND d.objoid IN (SELECT oid FROM pg_rewrite WHERE ev_class IN (SELECT oid FROM tabs)))
    OR (d.classoid = 'pg_policy'::regclass AND d.objoid IN (SELECT oid FROM pg_policy WHERE polrelid IN (SELECT oid FROM tabs)))
 ORDER BY 1"

SQL[extension]="SELECT line FROM (
    SELECT 0 AS k, format('extension %s %s, relocatable %s, schema %s, owner %s', e.extname, e.extversion,
                          e.extrelocatable, e.extnamespace::regnamespace, pg_get_userbyid(e.extowner)) AS line
      FROM ext e
    UNION ALL
    SELECT 1, format('extconfig %s, condition %s', c.tbl::regclass, COALESCE(quote_literal(c.cond), '(null)'))
      FROM ext e, unnest(e.extconfig, e.extcondition) c(tbl, cond)) x
 ORDER BY k, line"

SQL[sequences]="SELECT format('%s: %s start %s, increment %s, min %s, max %s, cache %s, cycle %s, owned by %s',
                      s.seqrelid::regclass, format_type(s.seqtypid, NULL), s.seqstart, s.seqincrement, s.seqmin, s.seqmax,
                      s.seqcache, s.seqcycle,
                      COALESCE((SELECT string_agg(format('%s.%I (%s)', d.refobjid::regclass, a.attname, d.deptype), ', ')
                                  FROM pg_depend d JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
                                 WHERE d.classid = 'pg_class'::regclass AND d.objid = s.seqrelid
                                   AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')), '(none)'))
  FROM pg_sequence s WHERE s.seqrelid IN (SELECT oid FROM rels) ORDER BY 1"

SQL[types]="SELECT format('%s: %s', t.oid::regtype, CASE t.typtype
        WHEN 'c' THEN 'composite (' || (SELECT string_agg(format('%I %s', a.attname, format_type(a.atttypid, a.atttypmod)), ', '
                                                          ORDER BY a.attnum)
                                          FROM pg_attribute a WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped) || ')'
        WHEN 'e' THEN 'enum (' || (SELECT string_agg(quote_literal(e.enumlabel), ', ' ORDER BY e.enumsortorder)
                                     FROM pg_enum e WHERE e.enumtypid = t.oid) || ')'
        WHEN 'd' THEN format('domain over %s%s%s', format_type(t.typbasetype, t.typtypmod),
                             CASE WHEN t.typnotnull THEN ' not null' ELSE '' END, COALESCE(' default ' || t.typdefault, ''))
        WHEN 'r' THEN (SELECT format('range of %s, subtype diff %s, canonical %s', format_type(r.rngsubtype, NULL),
                                     r.rngsubdiff::oid::regprocedure, r.rngcanonical::oid::regprocedure)
                         FROM pg_range r WHERE r.rngtypid = t.oid)
        ELSE format('%s, input %s, output %s, receive %s, send %s, length %s, align %s, storage %s',
                    t.typtype, t.typinput::oid::regprocedure, t.typoutput::oid::regprocedure, t.typreceive::oid::regprocedure,
                    t.typsend::oid::regprocedure, t.typlen, t.typalign, t.typstorage) END)
  FROM types t ORDER BY 1"

CATEGORIES="members functions tables indexes constraints policies triggers grants comments extension sequences types"
# dump CATEGORY DB: the category's catalog into $OUT/DB.CATEGORY
dump() {
    psql_ -At -d "$2" -c "SET search_path = pg_catalog" -c "$COMMON ${SQL[$1]}" >"$OUT/$2.$1" 2>"$OUT/$2.$1.err"
}
for cat in $CATEGORIES; do
    if ! dump "$cat" "$FRESH" || ! dump "$cat" "$UPGRADED"; then
        not_ok "$cat: the catalog queries run" "$(cat "$OUT/$FRESH.$cat.err" "$OUT/$UPGRADED.$cat.err" | head -5)"
        continue
    fi
    n=$(grep -c '' "$OUT/$FRESH.$cat")
    # the functions' hunks are headed by the function they are in
    if diff -u -F '^== ' --label "$FRESH" --label "$UPGRADED" "$OUT/$FRESH.$cat" "$OUT/$UPGRADED.$cat" >"$OUT/$cat.diff"; then
        case "$n:$cat" in
            0:members|0:functions|0:tables|0:grants|0:extension)
                not_ok "$cat: identical, but empty in both" "the query finds nothing" ;;
            *)  ok "$cat: identical ($n lines)" ;;
        esac
    else
        not_ok "$cat: $FRESH and $UPGRADED differ" \
            "$(grep -c '^-[^-]' "$OUT/$cat.diff") lines only in $FRESH, $(grep -c '^+[^+]' "$OUT/$cat.diff") only in $UPGRADED"
        head -n "$DIFF_LINES" "$OUT/$cat.diff" | sed 's/^/#   /'
        total=$(grep -c '' "$OUT/$cat.diff")
        [ "$total" -gt "$DIFF_LINES" ] && echo "#   ... $((total - DIFF_LINES)) more diff lines"
    fi
done

# --- what was left out, said out loud -----------------------------------------
# objects of the updated database that the live definitions made: not
# extension members, so not compared (the fresh database has none)
excluded=$(q "$UPGRADED" "SET search_path = pg_catalog;
    $COMMON
    SELECT format('%s %s', CASE c.relkind WHEN 'r' THEN 'table' WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view'
                                           WHEN 'i' THEN 'index' WHEN 'S' THEN 'sequence' ELSE c.relkind::text END,
                  c.oid::regclass)
      FROM pg_class c
     WHERE c.relnamespace IN ('customer_analytics'::regnamespace, 'customer_analytics_state'::regnamespace,
                              'ce_bi'::regnamespace, 'ce_own'::regnamespace)
       AND c.oid NOT IN (SELECT oid FROM rels) AND c.relkind IN ('r', 'v', 'm', 'S', 'p')
    UNION ALL
    SELECT format('trigger %s on %s', t.tgname, t.tgrelid::regclass) FROM pg_trigger t
     WHERE NOT t.tgisinternal AND t.tgrelid NOT IN (SELECT oid FROM tabs)
       AND t.tgrelid IN (SELECT oid FROM pg_class WHERE relnamespace = 'cosmos_sync'::regnamespace)
    UNION ALL
    SELECT format('pg_cron job %s', jobname) FROM cron.job
    ORDER BY 1")
echo "# not compared: rows of the catalog tables and sequence values (user data); OIDs, dropped columns' slots,"
echo "#   statistics (physical); the order of ACL items and of extconfig (sets); pg_cron's objects (ca_upgraded only)"
echo "# not compared: $(grep -c . <<<"$excluded") run-time objects of the live definitions in $UPGRADED (not extension members):"
sed 's/^/#   /' <<<"$excluded"
# the update moved the live definitions' state tables out of the view
# schemas (1.5 kept them there) into customer_analytics_state, their owners'
check "$UPGRADED: the view schemas hold no table; the state tables are in customer_analytics_state, each its definition owner's" \
    "$(q "$UPGRADED" "SELECT (SELECT count(*) FROM pg_class c WHERE c.relnamespace IN ('ce_bi'::regnamespace, 'ce_own'::regnamespace)
                                                         AND c.relkind NOT IN ('v', 'm', 'i'))
                      || ' ' || (SELECT string_agg(c.relname, ',' ORDER BY c.relname) FROM pg_class c
                                  WHERE c.relnamespace = 'customer_analytics_state'::regnamespace AND c.relkind = 'r')
                      || ' ' || (SELECT count(*) FROM pg_class c
                                  WHERE c.relnamespace = 'customer_analytics_state'::regnamespace AND c.relkind = 'r'
                                    AND pg_get_userbyid(c.relowner) NOT IN (SELECT owner FROM customer_analytics.campaigns
                                                                            UNION SELECT owner FROM customer_analytics.segmentations))")" \
    "0 campaign_months_c11,campaign_state_c11,segment_features_s10,segment_skus_s10 0"
# in the fresh database, every relation in the extension's schema is a member
check "$FRESH: every relation in schema customer_analytics is an extension member" \
    "$(q "$FRESH" "SET search_path = pg_catalog; $COMMON
        SELECT COALESCE(string_agg(c.oid::regclass::text, ', '), '(none)') FROM pg_class c
         WHERE c.relnamespace = 'customer_analytics'::regnamespace AND c.relkind IN ('r', 'v', 'm', 'S', 'p', 'f')
           AND c.oid NOT IN (SELECT oid FROM rels)")" "(none)"

# the update templates restate no definition: a function's body comes from
# src/sql/ by "-- @replace NAME", an aggregate's or a type's by "-- @create
# NAME" (scripts/build_update.awk), so the two scripts cannot drift apart
check "updates/*.in define no function, procedure, aggregate or type by text" \
    "$(cat "$ROOT"/updates/*.in | grep -cE '^[[:space:]]*CREATE (OR REPLACE )?(FUNCTION|PROCEDURE|AGGREGATE|TYPE) ')" "0"

finish
