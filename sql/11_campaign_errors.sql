-- Campaign errors: bad names (quotes, semicolons, mixed case, non-ASCII),
-- missing schema or role, duplicates, unknown campaigns.  After every
-- failure nothing is left half-built.
CREATE SCHEMA bi;
SET client_min_messages = warning;
\pset tuples_only on
\pset format unaligned

-- names: only lower-case ASCII identifiers, so view names never need care
SELECT public.err($$SELECT customer_analytics.create_campaign('promo''2', 'bi', source_schema => 'fx')$$);
SELECT public.err($$SELECT customer_analytics.create_campaign('x; DROP TABLE fx.customers; --', 'bi', source_schema => 'fx')$$);
SELECT public.err($$SELECT customer_analytics.create_campaign('Promo2', 'bi', source_schema => 'fx')$$);
SELECT public.err($$SELECT customer_analytics.create_campaign('促銷', 'bi', source_schema => 'fx')$$);
SELECT public.err($$SELECT customer_analytics.create_campaign('', 'bi', source_schema => 'fx')$$);
SELECT public.err($$SELECT customer_analytics.create_campaign(repeat('a', 41), 'bi', source_schema => 'fx')$$);
SELECT public.err($$SELECT customer_analytics.create_campaign(NULL, 'bi', source_schema => 'fx')$$);
SELECT count(*) AS customers_still_there FROM fx.customers;

-- where the views go, who reads them, which months
SELECT public.err($$SELECT customer_analytics.create_campaign('p', 'no_such_schema', source_schema => 'fx')$$);
SELECT public.err($$SELECT customer_analytics.create_campaign('p', 'bi', readers => '{nobody_here}', source_schema => 'fx')$$);
SELECT public.err($$SELECT customer_analytics.create_campaign('p', 'bi', readers => '{NULL}', source_schema => 'fx')$$);
SELECT public.err($$SELECT customer_analytics.create_campaign('p', 'bi', revenue_window => '[2025-09-01,)', source_schema => 'fx')$$);
SELECT public.err($$SELECT customer_analytics.create_campaign('p', 'bi', revenue_window => '[2015-01-01,2025-12-31]', source_schema => 'fx')$$);
-- targeting arguments are checked by target_customers() itself
SELECT public.err($$SELECT customer_analytics.create_campaign('p', 'bi', min_spend => -1, source_schema => 'fx')$$);
SELECT public.err($$SELECT customer_analytics.create_campaign('p', 'bi', source_schema => 'nowhere')$$);
-- nothing half-built by any of the above
SELECT count(*) AS catalog_rows FROM customer_analytics.campaigns;
SELECT count(*) AS relations_in_bi FROM pg_class WHERE relnamespace = 'bi'::regnamespace;

-- duplicates: the same campaign twice, or a relation we did not build
SELECT name FROM customer_analytics.create_campaign('p', 'bi', source_schema => 'fx');
SELECT public.err($$SELECT customer_analytics.create_campaign('p', 'bi', source_schema => 'fx')$$);
CREATE TABLE bi.q_targets (x int);
SELECT public.err($$SELECT customer_analytics.create_campaign('q', 'bi', source_schema => 'fx')$$);
SELECT name FROM customer_analytics.campaigns ORDER BY 1;

-- unknown campaigns
SELECT public.err($$SELECT customer_analytics.refresh_campaign('nope')$$);
SELECT public.err($$SELECT customer_analytics.alter_campaign('nope', min_spend => 5)$$);
SELECT public.err($$SELECT customer_analytics.drop_campaign('nope')$$);
SELECT public.err($$SELECT customer_analytics.campaign_targets('nope')$$);
SELECT public.err($$SELECT customer_analytics.refresh_campaign('p', concurrently => NULL)$$);
-- a bad change leaves the campaign as it was
SELECT public.err($$SELECT customer_analytics.alter_campaign('p', decline_pct => 150)$$);
SELECT public.err($$SELECT customer_analytics.alter_campaign('p', revenue_window => 'empty')$$);
SELECT decline_pct, revenue_window FROM customer_analytics.campaigns WHERE name = 'p';

SELECT customer_analytics.drop_campaign('p');
DROP TABLE bi.q_targets;
DROP SCHEMA bi;
