-- Why a refresh recomputed in full after a source table's rows changed
-- behind the triggers' backs (issue 24, item 8): a TRUNCATE and an ALTER
-- TABLE that changes rows (ALTER COLUMN ... TYPE ... USING) each mark every
-- customer changed, and the rollup's dirty table records which (its column
-- cause); refresh_history.mode words it (_rollup_full_reason): "a source
-- table was truncated", "a source table was rewritten: ALTER TABLE ...
-- changed its rows".  A campaign and a segmentation on a rollup, owned by
-- a non-superuser analyst with the documented grants; the source tables
-- owned by the ERP's role, which truncates and alters them.  After each
-- refresh, every view equals a recompute from the source tables (a twin
-- definition built with customer_analytics.use_rollup off).
-- Needs 00_setup (fx, public.err).
\set VERBOSITY terse
SET client_min_messages = warning;
CREATE ROLE ca_fr_erp;
CREATE ROLE ca_fr_analyst;
CREATE SCHEMA fr AUTHORIZATION ca_fr_erp;
CREATE TABLE fr.customers AS SELECT * FROM fx.customers;
CREATE TABLE fr.sales_orders AS SELECT * FROM fx.sales_orders;
CREATE TABLE fr.sales_order_lines AS SELECT * FROM fx.sales_order_lines;
ALTER TABLE fr.customers OWNER TO ca_fr_erp;
ALTER TABLE fr.sales_orders OWNER TO ca_fr_erp;
ALTER TABLE fr.sales_order_lines OWNER TO ca_fr_erp;
GRANT USAGE ON SCHEMA fr TO ca_fr_analyst;
-- (the ERP loads its lines again from fx's)
GRANT USAGE ON SCHEMA fx TO ca_fr_erp;
GRANT SELECT ON fx.sales_order_lines TO ca_fr_erp;
GRANT SELECT ON ALL TABLES IN SCHEMA fr TO ca_fr_analyst;
SELECT rollup_rows > 0 AS rollup FROM customer_analytics.enable_rollup('fr', readers => '{ca_fr_analyst}');
CREATE SCHEMA fr_bi;
GRANT USAGE, CREATE ON SCHEMA fr_bi TO ca_fr_analyst;
GRANT USAGE, CREATE ON SCHEMA customer_analytics_state TO ca_fr_analyst;

-- the analyst's campaign and segmentation; their first refreshes build the
-- state the delta refreshes follow
SET ROLE ca_fr_analyst;
SELECT name FROM customer_analytics.create_campaign('frc', 'fr_bi', routes => '{K1,K2}', min_spend => 500,
                                                    source_schema => 'fr');
SELECT name FROM customer_analytics.create_segmentation('frs', 'fr_bi', k => 2, k_to => 2, segment => 'all',
                                                        silhouette_sample => 0, source_schema => 'fr');
SELECT target_rows FROM customer_analytics.refresh_campaign('frc');
SELECT member_rows FROM customer_analytics.refresh_segmentation('frs');
RESET ROLE;
SELECT set_config('fr.last', (SELECT max(id) FROM customer_analytics.refresh_history)::text, false) IS NOT NULL AS runs_so_far;

-- a refresh of both as the analyst, and the mode each run recorded
CREATE FUNCTION fr_refresh() RETURNS SETOF text LANGUAGE plpgsql AS $$
BEGIN
    SET LOCAL ROLE ca_fr_analyst;
    PERFORM customer_analytics.refresh_campaign('frc');
    PERFORM customer_analytics.refresh_segmentation('frs');
    RETURN QUERY SELECT h.kind || ' ' || h.name || ': ' || h.mode FROM customer_analytics.refresh_history h
                  WHERE h.name IN ('frc', 'frs') AND h.id > COALESCE(current_setting('fr.last', true), '0')::bigint
                  ORDER BY h.id;
    PERFORM set_config('fr.last', (SELECT max(id) FROM customer_analytics.refresh_history)::text, false);
END $$;
GRANT EXECUTE ON FUNCTION fr_refresh() TO PUBLIC;

-- each materialized view against its twin's: a campaign and a segmentation
-- built afresh, as the analyst, from the source tables (not the rollup);
-- rows that differ, as text
CREATE FUNCTION fr_exact() RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
    v text;
    n bigint;
    rows bigint;
BEGIN
    SET LOCAL ROLE ca_fr_analyst;
    PERFORM set_config('customer_analytics.use_rollup', 'off', true);
    PERFORM customer_analytics.create_campaign('frc_twin', 'fr_bi', routes => '{K1,K2}', min_spend => 500,
                                               source_schema => 'fr');
    PERFORM customer_analytics.create_segmentation('frs_twin', 'fr_bi', k => 2, k_to => 2, segment => 'all',
                                                   silhouette_sample => 0, source_schema => 'fr');
    PERFORM set_config('customer_analytics.use_rollup', 'on', true);
    FOREACH v IN ARRAY ARRAY['frc_targets', 'frc_monthly', 'frc_monthly_long',
                             'frs_members', 'frs_model', 'frs_profiles', 'frs_elbow'] LOOP
        -- (the model view names its segmentation beside the model)
        EXECUTE format('SELECT count(*) FROM ((SELECT %3$s FROM fr_bi.%1$I x EXCEPT ALL SELECT %3$s FROM fr_bi.%2$I x)'
                       ' UNION ALL (SELECT %3$s FROM fr_bi.%2$I x EXCEPT ALL SELECT %3$s FROM fr_bi.%1$I x)) d',
                       v, replace(replace(v, 'frc_', 'frc_twin_'), 'frs_', 'frs_twin_'),
                       CASE WHEN v = 'frs_model' THEN 'x.model::text' ELSE 'x::text' END) INTO n;
        EXECUTE format('SELECT count(*) FROM fr_bi.%I', v) INTO rows;
        RETURN NEXT format('%s: %s rows, %s differing', v, rows, n);
    END LOOP;
    PERFORM customer_analytics.drop_campaign('frc_twin');
    PERFORM customer_analytics.drop_segmentation('frs_twin');
END $$;

SELECT * FROM fr_exact();
-- a write the triggers see: a delta
SET ROLE ca_fr_erp;
UPDATE fr.sales_order_lines SET pretax_subtotal = pretax_subtotal + 100
 WHERE order_number IN (SELECT min(order_number) FROM fr.sales_order_lines);
RESET ROLE;
SELECT * FROM fr_refresh();
SELECT * FROM fr_exact();

-- 1. the ERP truncates the lines and loads them again, changed
SET ROLE ca_fr_erp;
BEGIN;
TRUNCATE fr.sales_order_lines;
INSERT INTO fr.sales_order_lines SELECT * FROM fx.sales_order_lines WHERE line_no = 1;
COMMIT;
RESET ROLE;
-- (the mark the upkeep recorded, as the rollup's owner)
SELECT customer_analytics._rollup_dirty_table(id) AS fr_dirty FROM customer_analytics.rollups WHERE source_schema = 'fr' \gset
SELECT customer_code, cause FROM :fr_dirty WHERE customer_code IS NULL;
SELECT * FROM fr_refresh();
SELECT * FROM fr_exact();
-- (followed by a delta again)
SELECT * FROM fr_refresh();

-- 2. the ERP doubles the amounts with a column type change
SET ROLE ca_fr_erp;
ALTER TABLE fr.sales_order_lines ALTER COLUMN pretax_subtotal TYPE numeric(14,2) USING pretax_subtotal * 2;
RESET ROLE;
SELECT * FROM fr_refresh();
SELECT * FROM fr_exact();
SELECT * FROM fr_refresh();

-- 3. both in one transaction: the reason names both
SET ROLE ca_fr_erp;
BEGIN;
TRUNCATE fr.sales_order_lines;
INSERT INTO fr.sales_order_lines SELECT * FROM fx.sales_order_lines;
ALTER TABLE fr.sales_order_lines ALTER COLUMN pretax_subtotal TYPE numeric(14,2) USING pretax_subtotal / 2;
COMMIT;
RESET ROLE;
SELECT * FROM fr_refresh();
SELECT * FROM fr_exact();

-- a mark recorded before 1.6 names no cause: the words say either
SET ROLE ca_fr_erp;
TRUNCATE fr.sales_order_lines;
INSERT INTO fr.sales_order_lines SELECT * FROM fx.sales_order_lines;
RESET ROLE;
WITH u AS (UPDATE :fr_dirty SET cause = NULL WHERE customer_code IS NULL RETURNING 1) SELECT count(*) > 0 AS marks_unnamed FROM u;
SELECT * FROM fr_refresh();
SELECT * FROM fr_exact();
