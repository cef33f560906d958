#!/usr/bin/env bash
# test/plpgsql_check.sh: static analysis of every PL/pgSQL function and
# procedure of the extension with plpgsql_check (Debian's
# postgresql-15-plpgsql-check), issue 22.
#
#   PG_BIN=/path/to/bin bash test/plpgsql_check.sh
#
# Starts its own throwaway cluster (scripts/common.sh, preloading pg_cron
# with cron.database_name = postgres) and works in database postgres, where
# CREATE EXTENSION pg_cron works: pg_cron, postgres_fdw, plpgsql_check and
# customer_analytics (as installed in PG_BIN's installation, e.g. by
# scripts/test.sh), so that the functions' static SQL on cron.* resolves.
#
# Then, in one transaction, plpgsql_check_function_tb with every warning on
# (other, extra, performance, security, compatibility; fatal_errors off, so
# that a function's every finding is listed) over each PL/pgSQL routine of
# the extension (found through pg_depend), a trigger function with each table
# it is a trigger of:
#   1. as installed: the "before" counts;
#   2. after creating the scratch tables the refreshes create at run time
#      (pg_temp.customer_analytics_*, through _scratch_table()), so that the
#      statements on them are checked instead of failing.  Their shapes come
#      from the functions themselves: each _scratch_table(name, definition)
#      call's definition is evaluated; one that names a variable is given
#      here (customer_analytics_targets: LIKE a campaign's targets view,
#      which is SELECT * FROM campaign_targets(name)).
# Every finding of step 2 must match an entry of test/plpgsql_check.allow
# (function | level | message pattern | reason); the script prints the
# allowed ones under their reason and fails on any other, on an allow-list
# entry that matches nothing, and on a scratch table whose shape it cannot
# tell.  Prints "ok - ..." / "not ok - ..." lines and "N passed, M failed".
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$HERE/../scripts/common.sh"
set +e    # common.sh sets -e; a failed step here is a "not ok", not an exit
source "$HERE/checks.sh"
# PLPGSQL_CHECK_ALLOW: another allow-list (to try one out)
ALLOW=${PLPGSQL_CHECK_ALLOW:-$HERE/plpgsql_check.allow}

ca_start_cluster    # exports PGHOST/PGPORT/PGUSER for it, stops it at exit
WORK=$(mktemp -d /tmp/ca_plpgsql_check.XXXXXX)
trap 'ca_stop_cluster; rm -rf "$WORK"' EXIT

psql_() { "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -d postgres "$@"; }

if psql_ >"$WORK/setup.out" 2>&1 <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION pg_cron;
CREATE EXTENSION postgres_fdw;
CREATE EXTENSION plpgsql_check;
CREATE EXTENSION customer_analytics;
SQL
then
    ok "cluster with pg_cron, postgres_fdw, plpgsql_check $(psql_ -At -c "SELECT extversion FROM pg_extension WHERE extname = 'plpgsql_check'") and customer_analytics $(psql_ -At -c "SELECT extversion FROM pg_extension WHERE extname = 'customer_analytics'") in database postgres"
else
    not_ok "pg_cron, postgres_fdw, plpgsql_check and customer_analytics created in database postgres" \
        "$(tail -5 "$WORK/setup.out" | tr '\n' ' ')"
    finish
fi

# the allow-list's entries, one per line as "LINE<TAB>TEXT": comments and blank
# lines dropped, continuation lines (leading white space) joined to their entry
awk '
    /^[ \t]*(#|$)/ { next }
    /^[ \t]/ { if (n) { sub(/^[ \t]+/, ""); text = text " " $0 }; next }
    { if (n) print n "\t" text; n = NR; text = $0 }
    END { if (n) print n "\t" text }
' "$ALLOW" >"$WORK/allow.tsv"

# Prints the result as "ok - ..." / "not ok - ..." / "# ..." lines.
psql_ -At -v allow="$(cat "$WORK/allow.tsv")" -v allow_file="$(basename "$ALLOW")" \
    >"$WORK/check.out" 2>"$WORK/check.err" <<'SQL'
SET client_min_messages = warning;
BEGIN;

-- the PL/pgSQL routines of the extension; a trigger function with the tables
-- it is a trigger of (plpgsql_check needs one to resolve NEW and OLD)
CREATE TEMP TABLE ca_fn AS
SELECT p.oid AS fn, p.proname, p.prokind, p.prorettype = 'pg_catalog.trigger'::pg_catalog.regtype AS is_trigger,
       ARRAY(SELECT DISTINCT t.tgrelid FROM pg_catalog.pg_trigger t WHERE t.tgfoid = p.oid) AS rels
  FROM pg_catalog.pg_proc p
  JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass AND d.objid = p.oid
 WHERE d.refclassid = 'pg_catalog.pg_extension'::pg_catalog.regclass AND d.deptype = 'e'
   AND d.refobjid = (SELECT e.oid FROM pg_catalog.pg_extension e WHERE e.extname = 'customer_analytics')
   AND p.prolang = (SELECT l.oid FROM pg_catalog.pg_language l WHERE l.lanname = 'plpgsql');

CREATE TEMP TABLE ca_finding (phase text, fn oid, proname name, lineno int, level text, msg text, src text);

CREATE FUNCTION pg_temp.ca_check(phase text) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    f record;
    rel oid;
BEGIN
    FOR f IN SELECT * FROM ca_fn ORDER BY proname, fn LOOP
        IF f.is_trigger AND cardinality(f.rels) = 0 THEN
            INSERT INTO ca_finding VALUES (phase, f.fn, f.proname, NULL, 'error',
                'trigger function that is no table''s trigger: no relation to check it with', NULL);
            CONTINUE;
        END IF;
        FOREACH rel IN ARRAY CASE WHEN f.is_trigger THEN f.rels ELSE ARRAY[0::oid] END LOOP
            BEGIN
                INSERT INTO ca_finding
                SELECT phase, f.fn, f.proname, t.lineno, t.level,
                       t.message || COALESCE(': ' || NULLIF(t.detail, ''), ''),
                       CASE WHEN t.lineno IS NOT NULL
                            THEN left(btrim(split_part(p.prosrc, E'\n', t.lineno)), 110) END
                  FROM pg_catalog.pg_proc p,
                       public.plpgsql_check_function_tb(f.fn::regprocedure, rel::regclass,
                           fatal_errors => false, other_warnings => true, performance_warnings => true,
                           extra_warnings => true, security_warnings => true,
                           compatibility_warnings => true) t
                 WHERE p.oid = f.fn;
            EXCEPTION WHEN OTHERS THEN
                INSERT INTO ca_finding VALUES (phase, f.fn, f.proname, NULL, 'error',
                    'plpgsql_check could not check it: ' || SQLERRM, NULL);
            END;
        END LOOP;
    END LOOP;
END $$;

-- 1. as installed
\o /dev/null
SELECT pg_temp.ca_check('before');

-- 2. the scratch tables, shaped as the functions create them
CREATE TEMP TABLE ca_scratch AS
SELECT DISTINCT m[1] AS name, m[2] AS expr, NULL::text AS definition
  FROM pg_catalog.pg_proc p
  JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass AND d.objid = p.oid
       AND d.refclassid = 'pg_catalog.pg_extension'::pg_catalog.regclass AND d.deptype = 'e'
       AND d.refobjid = (SELECT e.oid FROM pg_catalog.pg_extension e WHERE e.extname = 'customer_analytics'),
       regexp_matches(p.prosrc, $re$_scratch_table\(\s*'(\w+)'\s*,\s*('(?:[^']|'')*'(?=\s*\))|[^;]*?(?=\s*\);))$re$, 'g') m
UNION
-- the same call inside a statement's text (quotes doubled): a literal
-- definition, or %L (the targets' LIKE below)
SELECT DISTINCT m[1], replace(m[2], '''''', ''''), NULL::text
  FROM pg_catalog.pg_proc p
  JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass AND d.objid = p.oid
       AND d.refclassid = 'pg_catalog.pg_extension'::pg_catalog.regclass AND d.deptype = 'e'
       AND d.refobjid = (SELECT e.oid FROM pg_catalog.pg_extension e WHERE e.extname = 'customer_analytics'),
       regexp_matches(p.prosrc, $re$_scratch_table\(''(\w+)'',\s*(''[^']*''|%L)\)$re$, 'g') m;
-- a campaign's targets view is SELECT * FROM campaign_targets(name)
-- (_build_targets_matview); the delta refreshes copy its shape with LIKE
CREATE TEMP VIEW ca_campaign_targets AS SELECT * FROM customer_analytics.campaign_targets(NULL);
DO $$
DECLARE
    s record;
    def text;
BEGIN
    FOR s IN SELECT * FROM ca_scratch LOOP
        BEGIN
            EXECUTE 'SELECT ' || s.expr INTO def;   -- a literal, or a function of the extension
        EXCEPTION WHEN OTHERS THEN
            def := CASE s.name WHEN 'customer_analytics_targets' THEN '(LIKE pg_temp.ca_campaign_targets)' END;
        END;
        UPDATE ca_scratch x SET definition = def WHERE x.name = s.name AND x.expr = s.expr;
    END LOOP;
    -- every scratch table the PL/pgSQL code names, even one made otherwise
    INSERT INTO ca_scratch
    SELECT DISTINCT m[1], NULL, NULL
      FROM ca_fn f JOIN pg_catalog.pg_proc p ON p.oid = f.fn,
           regexp_matches(p.prosrc, 'pg_temp\.(customer_analytics_\w+)', 'g') m
     WHERE m[1] NOT IN (SELECT x.name FROM ca_scratch x);
    PERFORM customer_analytics._scratch_table(x.name, min(x.definition))
       FROM ca_scratch x GROUP BY x.name
      HAVING count(*) = count(x.definition) AND count(DISTINCT x.definition) = 1;
END $$;
SELECT pg_temp.ca_check('after');
\o

-- 3. the allow-list
CREATE TEMP TABLE ca_allow AS
SELECT line, btrim(split_part(entry, '|', 1)) AS fn, btrim(split_part(entry, '|', 2)) AS level,
       btrim(split_part(entry, '|', 3)) AS pattern, btrim(regexp_replace(entry, '^([^|]*\|){3}', '')) AS reason,
       entry ~ '^([^|]*\|){3}' AS well_formed
  FROM (SELECT split_part(e, E'\t', 1)::int AS line, substr(e, strpos(e, E'\t') + 1) AS entry
          FROM regexp_split_to_table(:'allow', E'\n') e WHERE e <> '') x;
CREATE TEMP TABLE ca_match AS
SELECT f.*, (SELECT a.line FROM ca_allow a
              WHERE a.well_formed AND a.fn = f.proname AND a.level = f.level AND f.msg LIKE a.pattern
              ORDER BY a.line LIMIT 1) AS allowed_by
  FROM ca_finding f WHERE f.phase = 'after';

-- the report
CREATE FUNCTION pg_temp.ca_counts(phase text) RETURNS text LANGUAGE sql AS $$
    SELECT COALESCE(sum(n), 0) || ' (' || COALESCE(string_agg(n || ' ' || level, ', ' ORDER BY level), 'none') || ')'
      FROM (SELECT f.level, count(*) AS n FROM ca_finding f WHERE f.phase = ca_counts.phase GROUP BY f.level) c
$$;
WITH fns AS (
    SELECT count(*) AS n, count(*) FILTER (WHERE prokind = 'p') AS procs,
           string_agg(CASE WHEN is_trigger THEN proname || ' on ' ||
                      array_to_string(ARRAY(SELECT r::regclass::text FROM unnest(rels) r), ', ') END, '; ') AS triggers
      FROM ca_fn)
SELECT CASE WHEN n > 0 THEN 'ok' ELSE 'not ok' END ||
       format(' - plpgsql_check ran over %s PL/pgSQL routines of the extension (%s procedures; trigger functions: %s)',
              n, procs, COALESCE(triggers, 'none'))
  FROM fns;
SELECT CASE WHEN bool_and(definition IS NOT NULL) AND count(DISTINCT definition) = 1 AND bool_or(to_regclass('pg_temp.' || name) IS NOT NULL)
            THEN format('ok - scratch table pg_temp.%s created for the check: %s', name, min(definition))
            WHEN bool_or(expr IS NULL)
            THEN format('not ok - scratch table pg_temp.%s is named in the PL/pgSQL, but no _scratch_table() call that makes it was recognised: give its shape in test/plpgsql_check.sh', name)
            WHEN count(DISTINCT definition) > 1
            THEN format('not ok - scratch table pg_temp.%s has different shapes: %s', name, string_agg(DISTINCT definition, ' / '))
            ELSE format('not ok - scratch table pg_temp.%s: cannot tell its shape from _scratch_table(%L, %s): give it in test/plpgsql_check.sh',
                        name, name, string_agg(DISTINCT expr, ' / ') FILTER (WHERE definition IS NULL)) END
  FROM ca_scratch GROUP BY name ORDER BY name;
SELECT '# before the harness (plpgsql_check over the functions as installed): ' || pg_temp.ca_counts('before') || ' findings';
SELECT '# after creating the scratch tables: ' || pg_temp.ca_counts('after') || ' findings, '
       || count(*) FILTER (WHERE allowed_by IS NOT NULL) || ' allowed, '
       || count(*) FILTER (WHERE (SELECT a.reason FROM ca_allow a WHERE a.line = allowed_by) LIKE 'defect, to be fixed%')
       || ' of them as defects to be fixed; ' || count(*) FILTER (WHERE allowed_by IS NULL) || ' not allowed'
  FROM ca_match;
-- the allowed findings under their entry's reason
SELECT format(E'# allowed by %s:%s (%s, %s, %s finding%s): %s\n%s', :'allow_file', a.line, a.fn, a.level, count(*),
              CASE WHEN count(*) > 1 THEN 's' END, a.reason,
              string_agg(format('#     line %s: %s%s', COALESCE(m.lineno::text, '-'), m.msg,
                                COALESCE(E'\n#         ' || m.src, '')), E'\n' ORDER BY m.lineno, m.msg))
  FROM ca_allow a JOIN ca_match m ON m.allowed_by = a.line
 GROUP BY a.line, a.fn, a.level, a.reason ORDER BY a.line;
-- the others fail
SELECT format('not ok - %s line %s: %s: %s%s', proname, COALESCE(lineno::text, '-'), level, msg, COALESCE(' -- ' || src, ''))
  FROM ca_match WHERE allowed_by IS NULL ORDER BY proname, lineno, msg;
SELECT CASE WHEN count(*) FILTER (WHERE allowed_by IS NULL) = 0
            THEN format('ok - no error or warning outside the allow-list (%s findings, each allowed with its reason)', count(*))
            ELSE format('not ok - %s of %s findings are not in the allow-list', count(*) FILTER (WHERE allowed_by IS NULL), count(*)) END
  FROM ca_match;
-- the allow-list itself
SELECT format('not ok - %s:%s: %s', :'allow_file', a.line,
              CASE WHEN NOT a.well_formed OR a.fn = '' OR a.pattern = '' OR a.reason = ''
                   THEN 'not "function | level | message pattern | reason"'
                   WHEN a.level NOT IN ('error', 'warning', 'warning extra', 'performance', 'security', 'compatibility')
                   THEN format('level %L is none of error, warning, warning extra, performance, security, compatibility', a.level)
                   WHEN NOT EXISTS (SELECT 1 FROM ca_fn f WHERE f.proname = a.fn)
                   THEN format('%s is no PL/pgSQL routine of the extension', a.fn)
                   ELSE format('%s | %s | %s matches no finding: remove it (fixed?)', a.fn, a.level, a.pattern) END)
  FROM ca_allow a
 WHERE NOT EXISTS (SELECT 1 FROM ca_match m WHERE m.allowed_by = a.line)
 ORDER BY a.line;
SELECT format('ok - every entry of %s (%s) matches a finding', :'allow_file', count(*))
  FROM ca_allow a
HAVING bool_and(EXISTS (SELECT 1 FROM ca_match m WHERE m.allowed_by = a.line));
ROLLBACK;
SQL
status=$?
if [ "$status" -ne 0 ]; then
    not_ok "the check ran" "$(tail -5 "$WORK/check.err" | tr '\n' ' ')"
    finish
fi

# route the lines through checks.sh, which counts them
while IFS= read -r line; do
    case "$line" in
        "ok - "*)     ok "${line#ok - }" ;;
        "not ok - "*) not_ok "${line#not ok - }" ;;
        *)            echo "$line" ;;
    esac
done <"$WORK/check.out"
finish
