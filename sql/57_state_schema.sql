-- Internal state out of the schemas BI users browse (issue 24, item 6):
-- the per-customer state of campaigns (launched ones too) and segmentations
-- lives in the schema customer_analytics_state, owned by each definition's
-- owner and granted to no one; a view schema holds only the documented
-- views and materialized views.  Built by a non-superuser analyst with the
-- README's grants (USAGE and CREATE on the state schema among them),
-- refreshed from the order changes, dropped with its definitions.
-- Needs 00_setup (fx, public.err).
\set VERBOSITY terse
SET client_min_messages = warning;
CREATE ROLE ca_ss_analyst;
CREATE ROLE ca_ss_reader;
CREATE SCHEMA ss;
CREATE TABLE ss.customers AS SELECT * FROM fx.customers;
CREATE TABLE ss.sales_orders AS SELECT * FROM fx.sales_orders;
CREATE TABLE ss.sales_order_lines AS SELECT * FROM fx.sales_order_lines;
GRANT USAGE ON SCHEMA ss TO ca_ss_analyst;
GRANT SELECT ON ALL TABLES IN SCHEMA ss TO ca_ss_analyst;
SELECT rollup_rows > 0 AS rollup FROM customer_analytics.enable_rollup('ss', readers => '{ca_ss_analyst}');
CREATE SCHEMA ss_bi;
CREATE SCHEMA ss_bi2;
GRANT USAGE, CREATE ON SCHEMA ss_bi, ss_bi2 TO ca_ss_analyst;
GRANT USAGE ON SCHEMA ss_bi, ss_bi2 TO ca_ss_reader;

-- the state schema: the extension's, nothing for PUBLIC
SELECT n.nspname, d.deptype AS extension_member,
       NOT EXISTS (SELECT FROM aclexplode(COALESCE(n.nspacl, acldefault('n', n.nspowner))) a WHERE a.grantee = 0) AS nothing_for_public,
       customer_analytics._state_schema() = n.nspname AS the_state_schema
  FROM pg_namespace n JOIN pg_depend d ON d.classid = 'pg_namespace'::regclass AND d.objid = n.oid
                                      AND d.refclassid = 'pg_extension'::regclass
 WHERE n.nspname = 'customer_analytics_state';

-- without USAGE and CREATE on it, the analyst is told before anything is
-- stored
SET ROLE ca_ss_analyst;
SELECT err($$SELECT customer_analytics.create_campaign('ssc', 'ss_bi', source_schema => 'ss')$$);
SELECT err($$SELECT customer_analytics.create_segmentation('sss', 'ss_bi', source_schema => 'ss')$$);
RESET ROLE;
GRANT CREATE ON SCHEMA customer_analytics_state TO ca_ss_analyst;
SET ROLE ca_ss_analyst;
SELECT err($$SELECT customer_analytics.create_campaign('ssc', 'ss_bi', source_schema => 'ss')$$);
RESET ROLE;
SELECT count(*) AS stored_after_the_refusals FROM customer_analytics.campaigns WHERE name = 'ssc';
-- the hint's GRANT
GRANT USAGE, CREATE ON SCHEMA customer_analytics_state TO ca_ss_analyst;

-- the analyst's campaign (then launched), a second campaign in another
-- view schema whose 1.5 state names would have met the first's
-- (ssc_month_state), and a segmentation; the first refreshes build the state
SET ROLE ca_ss_analyst;
SELECT name FROM customer_analytics.create_campaign('ssc', 'ss_bi', routes => '{K1,K2}', source_schema => 'ss',
                                                    readers => '{ca_ss_reader}');
SELECT name FROM customer_analytics.create_campaign('ssc_month', 'ss_bi2', routes => '{K1,K2}', source_schema => 'ss',
                                                    readers => '{ca_ss_reader}');
SELECT name FROM customer_analytics.create_segmentation('sss', 'ss_bi', k => 2, k_to => 2, segment => 'all',
                                                        silhouette_sample => 0, source_schema => 'ss',
                                                        readers => '{ca_ss_reader}');
SELECT target_rows FROM customer_analytics.refresh_campaign('ssc');
SELECT target_rows FROM customer_analytics.refresh_campaign('ssc_month');
SELECT member_rows FROM customer_analytics.refresh_segmentation('sss');
SELECT treatment_members + holdout_members AS members
  FROM customer_analytics.launch_campaign('ssc', holdout_share => 0.25, launched_on => '2025-12-01', seed => 'ss');
SELECT target_rows FROM customer_analytics.refresh_campaign('ssc');
RESET ROLE;

-- what a reader's tool lists in the view schemas (pgjdbc's getTables reads
-- pg_class by relnamespace, without a privilege filter): the documented
-- views and materialized views, nothing else
SELECT n.nspname, c.relname, c.relkind
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname IN ('ss_bi', 'ss_bi2') AND c.relkind <> 'i'
 ORDER BY 1, 2;
SELECT count(*) AS neither_view_nor_matview
  FROM pg_class c WHERE c.relnamespace IN ('ss_bi'::regnamespace, 'ss_bi2'::regnamespace) AND c.relkind NOT IN ('v', 'm', 'i');

-- the state: in the state schema, the analyst's, no privilege for the
-- reader (nor for PUBLIC), each table with its definition's marker and a
-- key that takes no table's name
SELECT c.relname, pg_get_userbyid(c.relowner) AS owner,
       has_table_privilege('ca_ss_reader', c.oid, 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER') AS reader_privilege,
       COALESCE(cardinality(c.relacl), 0) AS grants,
       obj_description(c.oid, 'pg_class') AS marker,
       (SELECT string_agg(i.indexrelid::regclass::text, ', ') FROM pg_index i WHERE i.indrelid = c.oid) AS key
  FROM pg_class c
 WHERE c.relnamespace = 'customer_analytics_state'::regnamespace AND c.relkind NOT IN ('i', 't')
 ORDER BY 1;
-- the recorded state tables are those
SELECT campaign, state_table::regclass, month_state_table::regclass FROM customer_analytics.campaign_refresh_state ORDER BY 1;
SELECT segmentation, state_table::regclass, sku_table::regclass FROM customer_analytics.segmentation_refresh_state WHERE segmentation = 'sss';
SELECT has_schema_privilege('ca_ss_reader', 'customer_analytics_state', 'USAGE') AS reader_usage,
       has_schema_privilege('ca_ss_analyst', 'customer_analytics_state', 'USAGE, CREATE') AS analyst_usage_create;
SET ROLE ca_ss_reader;
SELECT err($$SELECT count(*) FROM customer_analytics_state.campaign_state_ssc$$);
SELECT count(*) > 0 AS reader_reads_the_sheet FROM ss_bi.ssc_monthly_v;
RESET ROLE;

-- the refreshes still follow the order changes, from the moved state
INSERT INTO ss.sales_orders VALUES ('SO', '9901', '0001001', 'K1', '20251201', 'Y');
INSERT INTO ss.sales_order_lines VALUES ('SO', '9901', 1, 'P1', 1, 2500);
SET ROLE ca_ss_analyst;
SELECT target_rows FROM customer_analytics.refresh_campaign('ssc');
SELECT member_rows FROM customer_analytics.refresh_segmentation('sss');
RESET ROLE;
SELECT kind, name, split_part(mode, ' ', 1) AS mode FROM customer_analytics.refresh_history
 WHERE id IN (SELECT max(id) FROM customer_analytics.refresh_history WHERE name IN ('ssc', 'sss') GROUP BY name)
 ORDER BY 1, 2;
SELECT applied_members IS NOT NULL AS response_in_place FROM customer_analytics.campaign_launch_state WHERE campaign = 'ssc';

-- a relation squatting a state table's name in the state schema (only its
-- owner or a superuser can make one) is refused, never used: the campaign
-- keeps no state, with a warning
CREATE TABLE customer_analytics_state.campaign_state_ssx (note text);
SET ROLE ca_ss_analyst;
SELECT name FROM customer_analytics.create_campaign('ssx', 'ss_bi', routes => '{K1}', source_schema => 'ss');
SET client_min_messages = notice;
SELECT target_rows FROM customer_analytics.refresh_campaign('ssx');
SET client_min_messages = warning;
SELECT customer_analytics.drop_campaign('ssx');
RESET ROLE;
SELECT count(*) AS squatter_kept FROM customer_analytics_state.campaign_state_ssx;
DROP TABLE customer_analytics_state.campaign_state_ssx;
-- every definition owner may create tables in the state schema: another
-- analyst's table with the name and the marker of the analyst's campaign
-- state, open to PUBLIC, is refused too (never written: the analyst's
-- customers do not leak into it), and the campaign's drop leaves it
CREATE ROLE ca_ss_other;
GRANT USAGE, CREATE ON SCHEMA customer_analytics_state TO ca_ss_other;
SET ROLE ca_ss_other;
CREATE TABLE customer_analytics_state.campaign_state_ssy (customer_code text PRIMARY KEY, orders bigint NOT NULL,
    total numeric, last_order date, spend_orders bigint NOT NULL, spend numeric, low_tickets bigint NOT NULL,
    base_orders bigint NOT NULL, base numeric, recent_orders bigint NOT NULL, recent numeric);
COMMENT ON TABLE customer_analytics_state.campaign_state_ssy IS 'customer_analytics: per-customer state of campaign ssy';
GRANT ALL ON customer_analytics_state.campaign_state_ssy TO PUBLIC;
RESET ROLE;
SET ROLE ca_ss_analyst;
SELECT name FROM customer_analytics.create_campaign('ssy', 'ss_bi', routes => '{K1}', source_schema => 'ss');
SET client_min_messages = notice;
SELECT target_rows FROM customer_analytics.refresh_campaign('ssy');
SET client_min_messages = warning;
SELECT customer_analytics.drop_campaign('ssy');
RESET ROLE;
SELECT count(*) AS written_into_the_other_table FROM customer_analytics_state.campaign_state_ssy;
DROP TABLE customer_analytics_state.campaign_state_ssy;
DROP OWNED BY ca_ss_other;
DROP ROLE ca_ss_other;

-- drop_campaign and drop_segmentation take their state tables
SET ROLE ca_ss_analyst;
SELECT customer_analytics.drop_campaign('ssc');
SELECT customer_analytics.drop_campaign('ssc_month');
SELECT customer_analytics.drop_segmentation('sss');
RESET ROLE;
SELECT count(*) AS state_tables_left FROM pg_class c
 WHERE c.relnamespace = 'customer_analytics_state'::regnamespace;
SELECT count(*) AS view_schema_relations_left FROM pg_class c
 WHERE c.relnamespace IN ('ss_bi'::regnamespace, 'ss_bi2'::regnamespace);

SELECT customer_analytics.drop_rollup('ss');
DROP SCHEMA ss_bi, ss_bi2;
DROP SCHEMA ss CASCADE;
DROP OWNED BY ca_ss_analyst, ca_ss_reader;
DROP ROLE ca_ss_analyst;
DROP ROLE ca_ss_reader;
