-- customer_analytics 1.5 -> 1.6: the SQL half rebuilt as source files by
-- concern (src/sql/); no definition changed.  What 1.6 no longer installs:
\echo Use "ALTER EXTENSION customer_analytics UPDATE TO '1.6'" to load this file. \quit

-- nothing calls these any more
DROP FUNCTION _campaign_as_of(campaigns);
DROP FUNCTION _require_pg_cron();
DROP FUNCTION _rollup_trigger_names();
