-- Hand-edited k-means models, the kmeans_fit seed, and the settings only a
-- session may set (issue 21, items 6 and 5).  Needs 00_setup: public.err()
-- (one line per error: SQLSTATE | message | DETAIL | HINT) and the fixture
-- schema fx.  Creates and drops its own roles (ca_ms_*), schemas ms_bi and
-- ms_erp, and a database ca_ms_owned owned by a non-superuser; connects to
-- it and back with \c.

------------------------------------------------------------------------------
-- Item 6: every model is checked where it is read (kmeans_model_parse(), the
-- one check, behind kmeans_predict, kmeans_standardize and kmeans_profiles).
------------------------------------------------------------------------------
-- the two groups of 14_kmeans: A = (0,0) (0,1) (1,0), B = (10,10) (10,11) (11,10)
CREATE TEMP TABLE ms_pts (id int, f float8[]);
INSERT INTO ms_pts VALUES (1, '{0,0}'), (2, '{0,1}'), (3, '{1,0}'),
                          (4, '{10,10}'), (5, '{10,11}'), (6, '{11,10}');
CREATE TEMP TABLE ms_model AS SELECT customer_analytics.kmeans_fit(f, 2) AS m FROM ms_pts;
-- a model as fitted predicts the groups apart (labels 1 for A, 0 for B)
SELECT id, customer_analytics.kmeans_predict(m, f) AS label FROM ms_pts, ms_model ORDER BY id;

-- each tampered field is refused with 22023, the field named and the element
-- at fault given as a jsonb path; before, a scale of 0, a negative or
-- subnormal scale and a nested centroid gave labels (0 for every row) or
-- infinite z-scores, and 1e400 a 22003 naming no field
SELECT t.what, public.err(format('SELECT customer_analytics.kmeans_predict(%L::jsonb, ''{1,1}'')', t.model)) AS error
  FROM ms_model, LATERAL (VALUES
    ('scale 0',            jsonb_set(m, '{scale,0}', '0')),
    ('scale negative',     jsonb_set(m, '{scale,1}', '-5.02')),
    ('scale subnormal',    jsonb_set(m, '{scale,0}', '1e-310')),
    ('scale 1e-400',       jsonb_set(m, '{scale,0}', '1e-400')),
    ('scale 1e400',        jsonb_set(m, '{scale,0}', '1e400')),
    ('scale nested',       jsonb_set(m, '{scale}', '[[5.02, 5.02]]')),
    ('scale a number',     jsonb_set(m, '{scale}', '5.02')),
    ('scale missing',      m - 'scale'),
    ('mean 1e400',         jsonb_set(m, '{mean,1}', '1e400')),
    ('mean a string',      jsonb_set(m, '{mean,0}', '"5.3"')),
    ('mean too short',     jsonb_set(m, '{mean}', '[5.3]')),
    ('centroid nested',    jsonb_set(m, '{centroids,1,0}', '[-0.99]')),
    ('centroid too long',  jsonb_set(m, '{centroids,1}', '[-0.99, -0.99, 0]')),
    ('centroid an object', jsonb_set(m, '{centroids,1}', '{"x": -0.99}')),
    ('centroids flat',     jsonb_set(m, '{centroids}', '[0.99, 0.99, -0.99, -0.99]')),
    ('centroid 1e400',     jsonb_set(m, '{centroids,0,1}', '1e400')),
    ('k fractional',       jsonb_set(m, '{k}', '2.5')),
    ('k a string',         jsonb_set(m, '{k}', '"2"')),
    ('k 0',                jsonb_set(m, '{k}', '0')),
    ('features 1e30',      jsonb_set(m, '{features}', '1e30')),
    ('an array',           '[1, 2]'::jsonb),
    ('a number',           '3'::jsonb)
  ) t(what, model);
-- the same check behind kmeans_standardize (it returned -Infinity and NaN)
SELECT public.err($$SELECT customer_analytics.kmeans_standardize(jsonb_set(m, '{scale,0}', '1e-310'), '{1,1}') FROM ms_model$$);
SELECT public.err($$SELECT customer_analytics.kmeans_standardize(jsonb_set(m, '{scale,0}', '0'), '{1,1}') FROM ms_model$$);
-- and behind kmeans_profiles, even with no features to predict (a window
-- without orders): before, no rows and no error
SELECT count(*) AS no_features FROM customer_analytics.customer_features('[1990-01-01,1990-12-31]', '1991-01-01', 'fx');
SELECT public.err($$SELECT p.* FROM ms_model, customer_analytics.kmeans_profiles(jsonb_set(m, '{scale,0}', '0'),
    feature_window => '[1990-01-01,1990-12-31]', as_of => '1991-01-01', source_schema => 'fx') p$$);
-- a whole number written 2.0 is 2; fields the functions do not read are not checked
SELECT customer_analytics.kmeans_predict(jsonb_set(jsonb_set(m, '{k}', '2.0'), '{inertia}', '"n/a"'), '{1,1}') AS label
  FROM ms_model;

-- a distance that overflows float8 is an error (22003), never a label: every
-- row far out got label 0 before, and kmeans_standardize gave Infinity
SELECT public.err($$SELECT customer_analytics.kmeans_predict(m, '{1e160,1e160}') FROM ms_model$$);
SELECT public.err($$SELECT customer_analytics.kmeans_predict(m, '{-1e160,-1e160}') FROM ms_model$$);
SELECT public.err($$SELECT customer_analytics.kmeans_predict(jsonb_set(m, '{mean,0}', '-1e308'), '{1e308,1}') FROM ms_model$$);
SELECT public.err($$SELECT customer_analytics.kmeans_standardize(jsonb_set(m, '{mean,0}', '-1e308'), '{1e308,1}') FROM ms_model$$);
SELECT public.err($$SELECT customer_analytics.kmeans_standardize(jsonb_set(m, '{scale,0}', '1e-300'), '{1e10,1}') FROM ms_model$$);
-- a centroid far away but another near: still an error (the one rule)
SELECT public.err($$SELECT customer_analytics.kmeans_predict(jsonb_set(m, '{centroids,0}', '[1e200, 1e200]'), '{1,1}') FROM ms_model$$);
-- a fit whose features overflow says so (22003), instead of an invalid JSON (22P02)
SELECT public.err($$SELECT customer_analytics.kmeans_fit(ARRAY[x, 1]::float8[], 1) FROM (VALUES (1e200::float8), (-1e200)) v(x)$$);

-- the seed is a 64-bit integer, parsed as written: 2^53 + 1 is not 2^53
-- (they gave the same model), the int64 extremes are accepted (refused
-- before), a whole number written 42.0 is 42, 1.5 is refused (accepted before)
SELECT (SELECT customer_analytics.kmeans_fit(f, 2, '{"seed": 9007199254740993}') FROM ms_pts)->'seed' AS seed,
       (SELECT customer_analytics.kmeans_fit(f, 2, '{"seed": 9007199254740993}') FROM ms_pts)
     = (SELECT customer_analytics.kmeans_fit(f, 2, '{"seed": 9007199254740992}') FROM ms_pts) AS same_model;
SELECT s, (SELECT customer_analytics.kmeans_fit(f, 2, jsonb_build_object('seed', s)) FROM ms_pts)->'seed' AS seed
  FROM unnest(ARRAY[9223372036854775807, -9223372036854775808, 42.0, 4.2e1]::numeric[]) s;
SELECT s, public.err(format('SELECT customer_analytics.kmeans_fit(f, 2, %L) FROM ms_pts', s)) AS error
  FROM unnest(ARRAY['{"seed": 1.5}', '{"seed": 9223372036854775808}', '{"seed": -9223372036854775809}',
                    '{"seed": 1e400}', '{"seed": "42"}']) s;

------------------------------------------------------------------------------
-- Item 5: customer_analytics.as_of_date only from the session;
-- customer_analytics.source_schema from ALTER DATABASE only for roles that
-- trust the database's owner; a pinned "today" said in refresh_history.
------------------------------------------------------------------------------
CREATE ROLE ca_ms_owner LOGIN;
GRANT USAGE, CREATE ON SCHEMA customer_analytics_state TO ca_ms_owner;  -- the state of its definitions
GRANT USAGE ON SCHEMA fx TO ca_ms_owner;
GRANT SELECT ON ALL TABLES IN SCHEMA fx TO ca_ms_owner;
CREATE SCHEMA ms_bi AUTHORIZATION ca_ms_owner;
SET ROLE ca_ms_owner;
SET client_min_messages = warning;
-- a rolling campaign following "today", one pinned to a date, one with fixed windows
SET customer_analytics.as_of_date = '2026-01-07';
SELECT name FROM customer_analytics.create_campaign('ms_today', 'ms_bi', source_schema => 'fx',
    rolling => '{"as_of": "today", "spend_window": {"from": "as_of -12 months +1 day", "to": "as_of"},
                 "revenue_window": {"from": "month_start -4 months", "to": "as_of"}}');
SELECT name FROM customer_analytics.create_campaign('ms_fixed_day', 'ms_bi', source_schema => 'fx',
    rolling => '{"as_of": "2026-01-07", "spend_window": {"from": "as_of -12 months +1 day", "to": "as_of"}}');
SELECT name FROM customer_analytics.create_campaign('ms_fixed', 'ms_bi', source_schema => 'fx');
-- a refresh in a session that sets another source schema reads the stored one
SET customer_analytics.source_schema = 'nowhere';
SELECT name, source_schema, target_rows FROM customer_analytics.refresh_campaign('ms_today');
SELECT name, target_rows FROM customer_analytics.refresh_campaign('ms_fixed_day');
SELECT name, target_rows FROM customer_analytics.refresh_campaign('ms_fixed');
RESET customer_analytics.source_schema;
-- a scheduled run in a session that pins "today" (a job command or a
-- dispatcher's session may SET it): recorded as pinned, like the build
CALL customer_analytics.run_scheduled_refresh('campaign', 'ms_today');
RESET customer_analytics.as_of_date;
-- with "today" the current date nothing is added (the mode itself depends on
-- the date, and so does a warning of a window without orders: not shown)
SET client_min_messages = error;
CALL customer_analytics.run_scheduled_refresh('campaign', 'ms_today');
SET client_min_messages = warning;
SELECT name, via, CASE WHEN mode LIKE '%pinned%' OR name <> 'ms_today' THEN mode ELSE '(not pinned)' END AS mode
  FROM customer_analytics.refresh_history WHERE owner = 'ca_ms_owner' ORDER BY id;
RESET client_min_messages;
-- the owner stores a date for its own sessions: PostgreSQL validates it as a
-- function's SET clause, so it is accepted, with a NOTICE
ALTER ROLE ca_ms_owner SET customer_analytics.as_of_date = '2020-01-01';
RESET ROLE;

-- its next session (a pg_cron job or dispatcher of the role alike) warns
-- when the library loads and keeps the current date: its scheduled
-- refreshes do not follow the stored date (they ran at 2020-01-01 before)
\c - ca_ms_owner
SELECT customer_analytics._as_of_today() = current_date AS today_is_today;
SET client_min_messages = error;
CALL customer_analytics.run_scheduled_refresh('campaign', 'ms_today');
RESET client_min_messages;
SELECT as_of = current_date AS refreshed_at_today FROM customer_analytics.list_campaigns() WHERE name = 'ms_today';
SELECT mode NOT LIKE '%pinned%' AS not_pinned FROM customer_analytics.refresh_history
 WHERE name = 'ms_today' ORDER BY id DESC LIMIT 1;
-- the session itself may still pin it
SET customer_analytics.as_of_date = '2026-01-07';
SELECT to_char(customer_analytics._as_of_today(), 'YYYY-MM-DD') AS pinned;
ALTER ROLE ca_ms_owner RESET customer_analytics.as_of_date;
\c - postgres

-- A database owned by a non-superuser, with its own "ERP" schema.
CREATE ROLE ca_ms_dbowner LOGIN;
CREATE DATABASE ca_ms_owned OWNER ca_ms_dbowner;
\c ca_ms_owned postgres
SET client_min_messages = warning;
CREATE EXTENSION customer_analytics;
RESET client_min_messages;
CREATE SCHEMA ms_erp AUTHORIZATION ca_ms_dbowner;
GRANT USAGE, CREATE ON SCHEMA customer_analytics_state TO ca_ms_dbowner;  -- the state of its definitions
\c - ca_ms_dbowner
CREATE TABLE ms_erp.customers (customer_code text, trade_name text, delivery_route text,
    shipping_address text, closure_date text, csm text);
CREATE TABLE ms_erp.sales_orders (order_type text, order_number text, customer_code text,
    delivery_route text, order_date text, confirmed_code text);
CREATE TABLE ms_erp.sales_order_lines (order_type text, order_number text, line_no int,
    product_code text, quantity numeric, pretax_subtotal numeric);
INSERT INTO ms_erp.customers VALUES ('9999', 'planted by the owner', 'K1', 'x', NULL, '002');
-- three orders of 500 in November 2025: a low-ticket target by the defaults
INSERT INTO ms_erp.sales_orders VALUES ('SO', '1', '9999', 'K1', '20251101', 'Y'),
    ('SO', '2', '9999', 'K1', '20251102', 'Y'), ('SO', '3', '9999', 'K1', '20251103', 'Y');
INSERT INTO ms_erp.sales_order_lines VALUES ('SO', '1', 1, 'P1', 1, 500), ('SO', '2', 1, 'P1', 1, 500),
    ('SO', '3', 1, 'P1', 1, 500);
SELECT customer_code, trade_name FROM customer_analytics.target_customers(source_schema => 'ms_erp');
-- the owner sets both for the database (the library is loaded here, so
-- PostgreSQL validates: as_of_date with the NOTICE, source_schema silently)
ALTER DATABASE ca_ms_owned SET customer_analytics.as_of_date = '2020-01-01';
ALTER DATABASE ca_ms_owned SET customer_analytics.source_schema = 'ms_erp';

-- the owner's own sessions take his source schema, not his date
\c - ca_ms_dbowner
SELECT customer_analytics._source_schema(NULL) AS source_schema,
       customer_analytics._as_of_today() = current_date AS today_is_today;

-- a superuser's session (a DBA, a pg_cron job, a dispatcher) takes neither:
-- a WARNING for each when the library loads, the defaults kept; before, its
-- target_customers() listed the owner's planted customer and new
-- definitions stored his schema
\c - postgres
SELECT customer_analytics._source_schema(NULL) AS source_schema,
       customer_analytics._as_of_today() = current_date AS today_is_today;
\set VERBOSITY terse
SELECT customer_code FROM customer_analytics.target_customers();
CREATE SCHEMA ms_bi;
SELECT name FROM customer_analytics.create_campaign('ms_dba', 'ms_bi');
\set VERBOSITY default
-- before the library is loaded, current_setting() shows the stored value:
-- the extension's SQL reads the settings through _checked_setting()
\c - postgres
SELECT current_setting('customer_analytics.source_schema') AS unchecked;
SELECT customer_analytics._checked_setting('customer_analytics.source_schema') AS checked;
SELECT customer_analytics._checked_setting('search_path');

-- a superuser who trusts the owner (trusted_source_owners, set before the
-- library loads) takes the database's source schema; never its date
\c - postgres
SET customer_analytics.trusted_source_owners = 'ca_ms_dbowner';
SELECT customer_analytics._source_schema(NULL) AS source_schema,
       customer_analytics._as_of_today() = current_date AS today_is_today;

-- the session's own ways to pin "today": SET (above), a function's SET
-- clause (the NOTICE: PostgreSQL validates it as it validates ALTER
-- DATABASE SET), the connection's options; the configuration file is not one
CREATE FUNCTION ms_jan7() RETURNS text LANGUAGE sql
    SET customer_analytics.as_of_date = '2026-01-07'
    AS $$ SELECT to_char(customer_analytics._as_of_today(), 'YYYY-MM-DD') $$;
SELECT ms_jan7();
ALTER SYSTEM SET customer_analytics.as_of_date = '2020-01-01';
\c "dbname=ca_ms_owned user=postgres options=-ccustomer_analytics.as_of_date=2026-01-08"
SELECT to_char(customer_analytics._as_of_today(), 'YYYY-MM-DD') AS from_connection_options;

\c contrib_regression postgres
DROP DATABASE ca_ms_owned;
DROP ROLE ca_ms_dbowner;
SET ROLE ca_ms_owner;
SET client_min_messages = warning;
SELECT count(*) AS dropped FROM (SELECT customer_analytics.drop_campaign(name)
                                  FROM (VALUES ('ms_today'), ('ms_fixed_day'), ('ms_fixed')) v(name)) d;
RESET client_min_messages;
RESET ROLE;
DROP SCHEMA ms_bi;
REVOKE ALL ON ALL TABLES IN SCHEMA fx FROM ca_ms_owner;
REVOKE ALL ON SCHEMA fx FROM ca_ms_owner;
REVOKE ALL ON SCHEMA customer_analytics_state FROM ca_ms_owner;
DROP ROLE ca_ms_owner;
