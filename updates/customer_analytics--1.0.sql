-- customer_analytics 1.0: promo targeting over the ERP tables
\echo Use "CREATE EXTENSION customer_analytics" to load this file. \quit

-- The ERP stores order_date as text YYYYMMDD.  These turn it into a date and
-- refuse values that are not one (naming the order), instead of letting a
-- text comparison skip them.  COST keeps the planner evaluating cheap
-- filters such as confirmed_code = 'Y' first.
CREATE FUNCTION checked_order_date(order_date text, order_type text, order_number text)
RETURNS date
AS 'MODULE_PATHNAME', 'checked_order_date_text'
LANGUAGE C IMMUTABLE PARALLEL SAFE COST 10;

CREATE FUNCTION checked_order_date(order_date date, order_type text, order_number text)
RETURNS date
AS 'MODULE_PATHNAME', 'checked_order_date_date'
LANGUAGE C IMMUTABLE PARALLEL SAFE COST 10;

COMMENT ON FUNCTION checked_order_date(text, text, text) IS
'order_date text YYYYMMDD as a date; an error naming the order for anything else';
COMMENT ON FUNCTION checked_order_date(date, text, text) IS
'order_date as a date; an error naming the order when it is NULL or infinite';

-- The funnel functions read tables through SPI (so the caller's privileges
-- and row-level security apply) and run the order scan as a query of its
-- own, which may use parallel workers.  They are STABLE: one snapshot, same
-- answer within a statement.  PARALLEL RESTRICTED keeps them in the leader:
-- as a parallel-safe function scan every worker would redo the whole pass.
CREATE FUNCTION target_customers(
    routes            text[]    DEFAULT '{K1,K2,PS}',
    spend_window      daterange DEFAULT '[2025-01-01,2025-12-31]',
    min_spend         numeric   DEFAULT 1000,
    low_ticket_window daterange DEFAULT '[2025-09-15,2026-01-07]',
    low_ticket_below  numeric   DEFAULT 3000,
    min_low_tickets   int       DEFAULT 3,
    base_window       daterange DEFAULT '[2025-08-31,2025-10-30]',
    recent_window     daterange DEFAULT '[2025-10-31,2025-12-31]',
    decline_pct       numeric   DEFAULT 30,
    exclude_closed    boolean   DEFAULT false,
    route_source      text      DEFAULT 'customer',
    source_schema     text      DEFAULT NULL,
    OUT customer_code    text,
    OUT trade_name       text,
    OUT delivery_route   text,
    OUT shipping_address text,
    OUT csm              text,
    OUT total_spend      numeric,
    OUT total_orders     bigint,
    OUT low_ticket_count bigint,
    OUT base_sales       numeric,
    OUT recent_sales     numeric,
    OUT pct_change       numeric,
    OUT target_reason    text,
    OUT is_low_ticket    boolean,
    OUT is_declining     boolean,
    OUT last_order_date  date,
    OUT avg_ticket_size  numeric)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'target_customers'
LANGUAGE C STABLE PARALLEL RESTRICTED SECURITY INVOKER ROWS 500;

COMMENT ON FUNCTION target_customers IS
'Promo targets: customers on the routes whose spend reaches min_spend and who have many low-value orders or declining sales; one row each with the reason';

CREATE FUNCTION targeting_funnel(
    routes            text[]    DEFAULT '{K1,K2,PS}',
    spend_window      daterange DEFAULT '[2025-01-01,2025-12-31]',
    min_spend         numeric   DEFAULT 1000,
    low_ticket_window daterange DEFAULT '[2025-09-15,2026-01-07]',
    low_ticket_below  numeric   DEFAULT 3000,
    min_low_tickets   int       DEFAULT 3,
    base_window       daterange DEFAULT '[2025-08-31,2025-10-30]',
    recent_window     daterange DEFAULT '[2025-10-31,2025-12-31]',
    decline_pct       numeric   DEFAULT 30,
    exclude_closed    boolean   DEFAULT false,
    route_source      text      DEFAULT 'customer',
    source_schema     text      DEFAULT NULL,
    OUT step_no     int,
    OUT step        text,
    OUT description text,
    OUT customers   bigint,
    OUT orders      bigint)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'targeting_funnel'
LANGUAGE C STABLE PARALLEL RESTRICTED SECURITY INVOKER ROWS 6;

COMMENT ON FUNCTION targeting_funnel IS
'The promo funnel step by step (geo, spend, low_ticket, decline, either, both): customers and their orders in the data window';

-- The order scan's date filter: checks the date like checked_order_date and
-- tests it against the window.  The support function estimates it from the
-- order_date column's statistics, so the planner sizes the scan correctly.
CREATE FUNCTION order_date_in_window_support(internal)
RETURNS internal
AS 'MODULE_PATHNAME', 'order_date_in_window_support'
LANGUAGE C STRICT;

CREATE FUNCTION order_date_in_window(order_date text, order_window daterange, order_type text, order_number text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'order_date_in_window_text'
LANGUAGE C IMMUTABLE PARALLEL SAFE COST 10 SUPPORT order_date_in_window_support;

CREATE FUNCTION order_date_in_window(order_date date, order_window daterange, order_type text, order_number text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'order_date_in_window_date'
LANGUAGE C IMMUTABLE PARALLEL SAFE COST 10 SUPPORT order_date_in_window_support;

COMMENT ON FUNCTION order_date_in_window(text, daterange, text, text) IS
'is the checked order_date (text YYYYMMDD) inside the window? errors like checked_order_date';
COMMENT ON FUNCTION order_date_in_window(date, daterange, text, text) IS
'is the order_date inside the window? errors like checked_order_date';

-- Revenue per customer and calendar month, long form, every customer and
-- month present (0 where nothing was ordered).  Months are cut to the window,
-- so the first and last may be partial.
CREATE FUNCTION monthly_revenue(
    customer_codes text[],
    revenue_window daterange DEFAULT '[2025-09-01,2026-01-07]',
    source_schema  text      DEFAULT NULL,
    OUT customer_code text,
    OUT month         date,
    OUT revenue       numeric,
    OUT orders        bigint)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'monthly_revenue'
LANGUAGE C STABLE PARALLEL RESTRICTED SECURITY INVOKER;

COMMENT ON FUNCTION monthly_revenue IS
'Revenue and confirmed orders per customer and month over revenue_window (partial first/last months cut to the window); one row per customer and month, 0 where nothing was ordered';

------------------------------------------------------------------------------
-- Campaigns: named targeting definitions, built as materialized views
------------------------------------------------------------------------------

-- The catalog.  An ordinary table in the extension's schema, marked for
-- pg_dump so that a dump and restore keeps the campaigns (and their views,
-- which read it, refresh after the restore).
CREATE TABLE campaigns (
    name              text PRIMARY KEY
                      CONSTRAINT campaign_name_format CHECK (name ~ '^[a-z][a-z0-9_]{0,39}$'),
    view_schema       text NOT NULL,
    source_schema     text NOT NULL,
    routes            text[] NOT NULL,
    spend_window      daterange NOT NULL,
    min_spend         numeric NOT NULL,
    low_ticket_window daterange NOT NULL,
    low_ticket_below  numeric NOT NULL,
    min_low_tickets   int NOT NULL,
    base_window       daterange NOT NULL,
    recent_window     daterange NOT NULL,
    decline_pct       numeric NOT NULL,
    exclude_closed    boolean NOT NULL,
    route_source      text NOT NULL,
    revenue_window    daterange NOT NULL,
    readers           text[] NOT NULL DEFAULT '{}',
    owner             name NOT NULL DEFAULT current_user,
    created_at        timestamptz NOT NULL DEFAULT now(),
    refreshed_at      timestamptz,
    refresh_ms        numeric,
    target_rows       bigint,
    monthly_rows      bigint
);
SELECT pg_catalog.pg_extension_config_dump('campaigns', '');
GRANT SELECT ON campaigns TO PUBLIC;
COMMENT ON TABLE campaigns IS
'Promo campaigns: targeting parameters, pivot window, where their views live, last refresh';

-- The longest pivot a campaign may ask for (one column per month).
CREATE FUNCTION _max_pivot_months() RETURNS int
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS 'SELECT 120';

-- One campaign's catalog row, or an error that says how to find the names.
CREATE FUNCTION _campaign(campaign text) RETURNS campaigns
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    c customer_analytics.campaigns;
BEGIN
    SELECT * INTO c FROM customer_analytics.campaigns WHERE name = campaign;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'campaign "%" does not exist', campaign
            USING ERRCODE = 'undefined_object',
                  HINT = 'SELECT * FROM customer_analytics.list_campaigns() shows the campaigns.';
    END IF;
    RETURN c;
END $$;

-- A campaign's views, in refresh order (the sheet reads the targets).
CREATE FUNCTION _campaign_views(campaign text) RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT ARRAY[campaign || '_targets', campaign || '_monthly'] $$;

-- The targets of a campaign, computed now from its stored definition.  The
-- <name>_targets view selects from this, so a plain REFRESH recomputes it.
CREATE FUNCTION campaign_targets(campaign text)
RETURNS TABLE (customer_code text, trade_name text, delivery_route text, shipping_address text,
               csm text, total_spend numeric, total_orders bigint, low_ticket_count bigint,
               base_sales numeric, recent_sales numeric, pct_change numeric, target_reason text,
               is_low_ticket boolean, is_declining boolean, last_order_date date,
               avg_ticket_size numeric)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    c customer_analytics.campaigns := customer_analytics._campaign(campaign);
BEGIN
    RETURN QUERY SELECT * FROM customer_analytics.target_customers(
        routes => c.routes, spend_window => c.spend_window, min_spend => c.min_spend,
        low_ticket_window => c.low_ticket_window, low_ticket_below => c.low_ticket_below,
        min_low_tickets => c.min_low_tickets, base_window => c.base_window,
        recent_window => c.recent_window, decline_pct => c.decline_pct,
        exclude_closed => c.exclude_closed, route_source => c.route_source,
        source_schema => c.source_schema);
END $$;
COMMENT ON FUNCTION campaign_targets IS
'target_customers() with the parameters stored for the campaign';

-- A window as people write it: first and last day, both included.
CREATE FUNCTION _window_text(w daterange) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    SELECT lower(w) || '..' || (upper(w) - 1)
$$;

-- monthly_revenue() for a campaign's current targets over its pivot window.
CREATE FUNCTION campaign_monthly_revenue(campaign text,
    OUT customer_code text, OUT month date, OUT revenue numeric, OUT orders bigint)
RETURNS SETOF record
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    c customer_analytics.campaigns := customer_analytics._campaign(campaign);
BEGIN
    RETURN QUERY SELECT * FROM customer_analytics.monthly_revenue(
        ARRAY(SELECT t.customer_code FROM customer_analytics.campaign_targets(c.name) t),
        c.revenue_window, c.source_schema);
END $$;
COMMENT ON FUNCTION campaign_monthly_revenue IS
'monthly_revenue() of the campaign''s targets over its revenue_window, computed now';

-- The months a pivot window touches: first day, last day inside the window,
-- column name, and whether the month is cut short by the window.
CREATE FUNCTION pivot_months(revenue_window daterange)
RETURNS TABLE (month date, first_day date, last_day date, column_name text, partial boolean)
LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    SELECT m::date,
           greatest(m::date, lower(revenue_window)),
           least((m + interval '1 month')::date, upper(revenue_window)) - 1,
           to_char(m, '"rev_"YYYY_MM'),
           lower(revenue_window) > m::date OR upper(revenue_window) < (m + interval '1 month')::date
      FROM generate_series(date_trunc('month', lower(revenue_window)),
                           date_trunc('month', upper(revenue_window) - 1),
                           interval '1 month') AS m
$$;

-- What every named analysis (campaign, segmentation) checks before it
-- builds views: a name that is safe inside view names, an existing schema,
-- existing reader roles.
CREATE FUNCTION _check_view_owner(kind text, name text, view_schema text, readers text[], views text)
RETURNS void
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
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
END $$;

CREATE FUNCTION _check_campaign(c campaigns) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM customer_analytics._check_view_owner('campaign', c.name, c.view_schema, c.readers,
                                                 '<name>_targets and <name>_monthly');
    IF c.revenue_window IS NULL OR isempty(c.revenue_window)
       OR lower_inf(c.revenue_window) OR upper_inf(c.revenue_window) THEN
        RAISE EXCEPTION 'revenue_window must be a bounded, non-empty daterange'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'For example revenue_window => ''[2025-09-01,2026-01-07]''.';
    END IF;
    IF (SELECT count(*) FROM customer_analytics.pivot_months(c.revenue_window))
       > customer_analytics._max_pivot_months() THEN
        RAISE EXCEPTION 'revenue_window spans more than % months', customer_analytics._max_pivot_months()
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'The monthly view has one column per month; use monthly_revenue() for longer series.';
    END IF;
    -- the targeting arguments are checked by target_customers() itself when
    -- the views are built, with the same errors as a direct call
END $$;

-- (Re)create the targets view: unique index for REFRESH ... CONCURRENTLY,
-- comments for BI tools, SELECT for the readers.
CREATE FUNCTION _build_targets_view(c campaigns) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v text := c.name || '_targets';
    col record;
BEGIN
    EXECUTE format('CREATE MATERIALIZED VIEW %I.%I AS SELECT * FROM customer_analytics.campaign_targets(%L) ORDER BY customer_code',
                   c.view_schema, v, c.name);
    EXECUTE format('CREATE UNIQUE INDEX %I ON %I.%I (customer_code)', v || '_key', c.view_schema, v);
    EXECUTE format('COMMENT ON MATERIALIZED VIEW %I.%I IS %L', c.view_schema, v,
        format('Promo targets of campaign %s: routes %s, spend %s >= %s; >= %s orders below %s in %s, '
               'or sales %s more than %s%% below %s. Refresh: SELECT customer_analytics.refresh_campaign(%L).',
               c.name, array_to_string(c.routes, ','), customer_analytics._window_text(c.spend_window),
               c.min_spend, c.min_low_tickets, c.low_ticket_below,
               customer_analytics._window_text(c.low_ticket_window),
               customer_analytics._window_text(c.recent_window), c.decline_pct,
               customer_analytics._window_text(c.base_window), c.name));
    FOR col IN SELECT * FROM (VALUES
        ('customer_code', 'customer code (leading zeros kept)'),
        ('trade_name', 'trade name'),
        ('delivery_route', 'the customer''s delivery route'),
        ('shipping_address', 'shipping address'),
        ('csm', 'customer success manager'),
        ('total_spend', format('sum of confirmed order totals in %s', customer_analytics._window_text(c.spend_window))),
        ('total_orders', format('confirmed orders in %s', customer_analytics._window_text(c.spend_window))),
        ('low_ticket_count', format('orders below %s in %s', c.low_ticket_below, customer_analytics._window_text(c.low_ticket_window))),
        ('base_sales', format('sales in %s', customer_analytics._window_text(c.base_window))),
        ('recent_sales', format('sales in %s', customer_analytics._window_text(c.recent_window))),
        ('pct_change', 'recent vs base sales in percent; NULL without base sales'),
        ('target_reason', '低客單 (many low tickets) before 業績下滑 (declining sales)'),
        ('is_low_ticket', 'meets the low-ticket rule'),
        ('is_declining', 'meets the decline rule'),
        ('last_order_date', 'last confirmed order in the campaign''s data window'),
        ('avg_ticket_size', 'mean order total in the data window, whole units')) AS t(name, text)
    LOOP
        EXECUTE format('COMMENT ON COLUMN %I.%I.%I IS %L', c.view_schema, v, col.name,
                       col.text || ' (campaign ' || c.name || ')');
    END LOOP;
END $$;

-- (Re)create the monthly sheet: one numeric column per month of the pivot
-- window, read from the targets view and monthly_revenue().
CREATE FUNCTION _build_monthly_view(c campaigns) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v text := c.name || '_monthly';
    t text := c.name || '_targets';
    m record;
    columns text := '';
BEGIN
    FOR m IN SELECT * FROM customer_analytics.pivot_months(c.revenue_window) LOOP
        columns := columns || format(', COALESCE(sum(m.revenue) FILTER (WHERE m.month = %L::date), 0)::numeric AS %I',
                                     m.month, m.column_name);
    END LOOP;
    EXECUTE format(
        'CREATE MATERIALIZED VIEW %1$I.%2$I AS '
        'SELECT t.customer_code, t.trade_name, t.delivery_route, COALESCE(t.csm, '''') AS csm, t.avg_ticket_size%3$s '
        'FROM %1$I.%4$I t LEFT JOIN customer_analytics.monthly_revenue('
        'ARRAY(SELECT customer_code FROM %1$I.%4$I), '
        '(SELECT revenue_window FROM customer_analytics.campaigns WHERE name = %5$L), '
        '(SELECT source_schema FROM customer_analytics.campaigns WHERE name = %5$L)) m USING (customer_code) '
        'GROUP BY t.customer_code, t.trade_name, t.delivery_route, t.csm, t.avg_ticket_size '
        'ORDER BY t.customer_code',
        c.view_schema, v, columns, t, c.name);
    EXECUTE format('CREATE UNIQUE INDEX %I ON %I.%I (customer_code)', v || '_key', c.view_schema, v);
    EXECUTE format('COMMENT ON MATERIALIZED VIEW %I.%I IS %L', c.view_schema, v,
        format('Monthly revenue sheet of campaign %s (%s), one row per target. '
               'Refresh after %s: SELECT customer_analytics.refresh_campaign(%L).',
               c.name, customer_analytics._window_text(c.revenue_window), t, c.name));
    EXECUTE format('COMMENT ON COLUMN %I.%I.customer_code IS %L', c.view_schema, v, 'customer code (campaign ' || c.name || ')');
    EXECUTE format('COMMENT ON COLUMN %I.%I.trade_name IS %L', c.view_schema, v, 'trade name');
    EXECUTE format('COMMENT ON COLUMN %I.%I.delivery_route IS %L', c.view_schema, v, 'the customer''s delivery route');
    EXECUTE format('COMMENT ON COLUMN %I.%I.csm IS %L', c.view_schema, v, 'customer success manager ('''' when none)');
    EXECUTE format('COMMENT ON COLUMN %I.%I.avg_ticket_size IS %L', c.view_schema, v,
                   'mean order total in the campaign''s data window, whole units');
    FOR m IN SELECT * FROM customer_analytics.pivot_months(c.revenue_window) LOOP
        EXECUTE format('COMMENT ON COLUMN %I.%I.%I IS %L', c.view_schema, v, m.column_name,
            format('revenue of confirmed orders (pretax) %s to %s%s (campaign %s)',
                   m.first_day, m.last_day, CASE WHEN m.partial THEN ', partial month' ELSE '' END, c.name));
    END LOOP;
END $$;

-- The view machinery every named analysis shares: grants, refresh, row
-- counts, drop, and scheduling (below).
CREATE FUNCTION _grant_readers(view_schema text, views text[], readers text[],
                               revoke_from text[] DEFAULT '{}') RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r text;
    v text;
BEGIN
    -- readers need the schema too; it is not revoked later, other objects may need it
    FOREACH r IN ARRAY readers LOOP
        EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', view_schema, r);
    END LOOP;
    FOREACH v IN ARRAY views LOOP
        FOREACH r IN ARRAY revoke_from LOOP
            IF to_regrole(quote_ident(r)) IS NOT NULL THEN
                EXECUTE format('REVOKE SELECT ON %I.%I FROM %I', view_schema, v, r);
            END IF;
        END LOOP;
        FOREACH r IN ARRAY readers LOOP
            EXECUTE format('GRANT SELECT ON %I.%I TO %I', view_schema, v, r);
        END LOOP;
    END LOOP;
END $$;

-- REFRESH each view in order (later views may read earlier ones)
CREATE FUNCTION _refresh_views(view_schema text, views text[], concurrently boolean) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v text;
BEGIN
    -- "concurrently" is a keyword: qualified
    IF _refresh_views.concurrently IS NULL THEN
        RAISE EXCEPTION 'concurrently must not be NULL' USING ERRCODE = 'null_value_not_allowed',
            HINT = 'true (the default) keeps the views readable during the refresh.';
    END IF;
    FOREACH v IN ARRAY views LOOP
        EXECUTE format('REFRESH MATERIALIZED VIEW %s%I.%I',
                       CASE WHEN _refresh_views.concurrently THEN 'CONCURRENTLY ' ELSE '' END, view_schema, v);
    END LOOP;
END $$;

CREATE FUNCTION _count_rows(view_schema text, view text) RETURNS bigint
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n bigint;
BEGIN
    EXECUTE format('SELECT count(*) FROM %I.%I', view_schema, view) INTO n;
    RETURN n;
END $$;

-- DROP each view in order; RESTRICT: a user's own view on top of ours stops
-- the drop instead of vanishing with it
CREATE FUNCTION _drop_views(view_schema text, views text[]) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v text;
BEGIN
    FOREACH v IN ARRAY views LOOP
        EXECUTE format('DROP MATERIALIZED VIEW IF EXISTS %I.%I', view_schema, v);
    END LOOP;
END $$;

-- true when one of the views' names is taken in the schema
CREATE FUNCTION _views_taken(view_schema text, views text[]) RETURNS boolean
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT coalesce(bool_or(to_regclass(format('%I.%I', view_schema, v)) IS NOT NULL), false) FROM unnest(views) v
$$;

CREATE FUNCTION _record_refresh(campaign text, started timestamptz) RETURNS campaigns
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    c customer_analytics.campaigns := customer_analytics._campaign(campaign);
    n_targets bigint;
    n_monthly bigint;
BEGIN
    n_targets := customer_analytics._count_rows(c.view_schema, c.name || '_targets');
    n_monthly := customer_analytics._count_rows(c.view_schema, c.name || '_monthly');
    UPDATE customer_analytics.campaigns
       SET refreshed_at = now(),
           refresh_ms = round(extract(epoch FROM clock_timestamp() - started) * 1000, 1),
           target_rows = n_targets, monthly_rows = n_monthly
     WHERE name = campaign
    RETURNING * INTO c;
    RETURN c;
END $$;

CREATE FUNCTION create_campaign(
    name              text,
    view_schema       text,
    routes            text[]    DEFAULT '{K1,K2,PS}',
    spend_window      daterange DEFAULT '[2025-01-01,2025-12-31]',
    min_spend         numeric   DEFAULT 1000,
    low_ticket_window daterange DEFAULT '[2025-09-15,2026-01-07]',
    low_ticket_below  numeric   DEFAULT 3000,
    min_low_tickets   int       DEFAULT 3,
    base_window       daterange DEFAULT '[2025-08-31,2025-10-30]',
    recent_window     daterange DEFAULT '[2025-10-31,2025-12-31]',
    decline_pct       numeric   DEFAULT 30,
    exclude_closed    boolean   DEFAULT false,
    route_source      text      DEFAULT 'customer',
    revenue_window    daterange DEFAULT '[2025-09-01,2026-01-07]',
    readers           text[]    DEFAULT '{}',
    source_schema     text      DEFAULT NULL)
RETURNS campaigns
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    c customer_analytics.campaigns;
    started timestamptz := clock_timestamp();
BEGIN
    c := ROW(name, view_schema,
             COALESCE(source_schema, current_setting('customer_analytics.source_schema', true), 'cosmos_sync'),
             routes, spend_window, min_spend, low_ticket_window, low_ticket_below, min_low_tickets,
             base_window, recent_window, decline_pct, exclude_closed, route_source, revenue_window,
             readers, current_user, now(), NULL, NULL, NULL, NULL);
    PERFORM customer_analytics._check_campaign(c);
    BEGIN
        INSERT INTO customer_analytics.campaigns SELECT c.*;
    EXCEPTION WHEN unique_violation THEN
        RAISE EXCEPTION 'campaign "%" already exists', c.name
            USING ERRCODE = 'duplicate_object',
                  HINT = 'Change it with customer_analytics.alter_campaign(), or drop it first with customer_analytics.drop_campaign().';
    END;
    IF customer_analytics._views_taken(c.view_schema, customer_analytics._campaign_views(c.name)) THEN
        RAISE EXCEPTION 'schema "%" already has a relation named %_targets or %_monthly', c.view_schema, c.name, c.name
            USING ERRCODE = 'duplicate_table',
                  HINT = 'Pick another campaign name or view schema; customer_analytics never replaces relations it did not build.';
    END IF;
    PERFORM customer_analytics._build_targets_view(c);
    PERFORM customer_analytics._build_monthly_view(c);
    PERFORM customer_analytics._grant_readers(c.view_schema, customer_analytics._campaign_views(c.name), c.readers);
    c := customer_analytics._record_refresh(c.name, started);
    RAISE NOTICE 'campaign "%" built: % (% rows), % (% rows)', c.name,
        format('%I.%I', c.view_schema, c.name || '_targets'), c.target_rows,
        format('%I.%I', c.view_schema, c.name || '_monthly'), c.monthly_rows;
    RETURN c;
END $$;
COMMENT ON FUNCTION create_campaign IS
'Store a named campaign and build its materialized views <name>_targets and <name>_monthly in view_schema';

CREATE FUNCTION refresh_campaign(campaign text, concurrently boolean DEFAULT true)
RETURNS campaigns
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    c customer_analytics.campaigns := customer_analytics._campaign(campaign);
    started timestamptz := clock_timestamp();
BEGIN
    PERFORM customer_analytics._refresh_views(c.view_schema, customer_analytics._campaign_views(c.name),
                                              refresh_campaign.concurrently);
    c := customer_analytics._record_refresh(c.name, started);
    -- the duration goes to the catalog (refresh_ms), not the message
    RAISE NOTICE 'campaign "%" refreshed%: % targets, % monthly rows',
        c.name, CASE WHEN refresh_campaign.concurrently THEN ' concurrently' ELSE '' END, c.target_rows, c.monthly_rows;
    RETURN c;
END $$;
COMMENT ON FUNCTION refresh_campaign IS
'Recompute both views of a campaign (CONCURRENTLY by default: readers are never blocked) and record the refresh';

CREATE FUNCTION alter_campaign(
    name              text,
    routes            text[]    DEFAULT NULL,
    spend_window      daterange DEFAULT NULL,
    min_spend         numeric   DEFAULT NULL,
    low_ticket_window daterange DEFAULT NULL,
    low_ticket_below  numeric   DEFAULT NULL,
    min_low_tickets   int       DEFAULT NULL,
    base_window       daterange DEFAULT NULL,
    recent_window     daterange DEFAULT NULL,
    decline_pct       numeric   DEFAULT NULL,
    exclude_closed    boolean   DEFAULT NULL,
    route_source      text      DEFAULT NULL,
    revenue_window    daterange DEFAULT NULL,
    readers           text[]    DEFAULT NULL,
    source_schema     text      DEFAULT NULL)
RETURNS campaigns
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    old customer_analytics.campaigns := customer_analytics._campaign(name);
    c customer_analytics.campaigns := old;
    changed text[] := '{}';
BEGIN
    c.routes := COALESCE(routes, old.routes);
    c.spend_window := COALESCE(spend_window, old.spend_window);
    c.min_spend := COALESCE(min_spend, old.min_spend);
    c.low_ticket_window := COALESCE(low_ticket_window, old.low_ticket_window);
    c.low_ticket_below := COALESCE(low_ticket_below, old.low_ticket_below);
    c.min_low_tickets := COALESCE(min_low_tickets, old.min_low_tickets);
    c.base_window := COALESCE(base_window, old.base_window);
    c.recent_window := COALESCE(recent_window, old.recent_window);
    c.decline_pct := COALESCE(decline_pct, old.decline_pct);
    c.exclude_closed := COALESCE(exclude_closed, old.exclude_closed);
    c.route_source := COALESCE(route_source, old.route_source);
    c.revenue_window := COALESCE(revenue_window, old.revenue_window);
    c.readers := COALESCE(readers, old.readers);
    c.source_schema := COALESCE(source_schema, old.source_schema);
    PERFORM customer_analytics._check_campaign(c);

    SELECT array_agg(n.key ORDER BY n.key) INTO changed
      FROM jsonb_each(to_jsonb(c)) n JOIN jsonb_each(to_jsonb(old)) o USING (key)
     WHERE n.value IS DISTINCT FROM o.value;
    IF changed IS NULL THEN
        RAISE NOTICE 'campaign "%" unchanged', c.name;
        RETURN old;
    END IF;

    UPDATE customer_analytics.campaigns SET
        routes = c.routes, spend_window = c.spend_window, min_spend = c.min_spend,
        low_ticket_window = c.low_ticket_window, low_ticket_below = c.low_ticket_below,
        min_low_tickets = c.min_low_tickets, base_window = c.base_window,
        recent_window = c.recent_window, decline_pct = c.decline_pct,
        exclude_closed = c.exclude_closed, route_source = c.route_source,
        revenue_window = c.revenue_window, readers = c.readers, source_schema = c.source_schema
     WHERE campaigns.name = c.name;

    IF c.revenue_window IS DISTINCT FROM old.revenue_window THEN
        -- new columns: rebuild the sheet in this transaction; readers wait
        -- for the commit and then see the new view, never a missing one
        EXECUTE format('DROP MATERIALIZED VIEW %I.%I', c.view_schema, c.name || '_monthly');
        PERFORM customer_analytics._build_monthly_view(c);
        PERFORM customer_analytics._grant_readers(c.view_schema, customer_analytics._campaign_views(c.name), c.readers);
        RAISE NOTICE 'campaign "%": monthly view rebuilt with columns %', c.name,
            (SELECT string_agg(column_name, ', ') FROM customer_analytics.pivot_months(c.revenue_window));
    END IF;
    IF c.readers IS DISTINCT FROM old.readers THEN
        PERFORM customer_analytics._grant_readers(c.view_schema, customer_analytics._campaign_views(c.name),
                                                  c.readers, old.readers);
    END IF;
    RAISE NOTICE 'campaign "%" changed: %', c.name, array_to_string(changed, ', ');
    RETURN customer_analytics.refresh_campaign(c.name, true);
END $$;
COMMENT ON FUNCTION alter_campaign IS
'Change a campaign''s stored parameters (arguments left NULL keep their value) and refresh its views; a new revenue_window rebuilds the monthly view';

CREATE FUNCTION drop_campaign(campaign text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    c customer_analytics.campaigns := customer_analytics._campaign(campaign);
BEGIN
    IF customer_analytics._cron_job('campaign', c.name) IS NOT NULL THEN
        PERFORM customer_analytics.unschedule_campaign_refresh(c.name);
    END IF;
    PERFORM customer_analytics._drop_views(c.view_schema, ARRAY[c.name || '_monthly', c.name || '_targets']);
    DELETE FROM customer_analytics.campaigns WHERE name = c.name;
    RAISE NOTICE 'campaign "%" dropped with its views % and %', c.name,
        format('%I.%I', c.view_schema, c.name || '_targets'), format('%I.%I', c.view_schema, c.name || '_monthly');
END $$;
COMMENT ON FUNCTION drop_campaign IS 'Drop a campaign, its two views and its scheduled refresh';

-- pg_cron scheduling.  pg_cron is optional: these functions check for it and
-- reach it through dynamic SQL, so the extension installs without it.
CREATE FUNCTION _require_pg_cron() RETURNS void
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_cron') THEN
        RAISE EXCEPTION 'pg_cron is not installed in this database'
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Install postgresql-15-cron, set shared_preload_libraries = ''pg_cron'' and cron.database_name '
                         'to this database, restart, then CREATE EXTENSION pg_cron. Or run the refresh '
                         'function (refresh_campaign, refresh_segmentation) from any other scheduler.';
    END IF;
END $$;

CREATE FUNCTION _cron_job_name(kind text, name text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT 'customer_analytics refresh ' || kind || ' ' || name $$;

-- the schedule of the caller's refresh job for this analysis, or NULL
CREATE FUNCTION _cron_job(kind text, name text) RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    schedule text;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_cron') THEN
        RETURN NULL;
    END IF;
    EXECUTE 'SELECT schedule FROM cron.job WHERE jobname = $1 AND username = current_user'
       INTO schedule USING customer_analytics._cron_job_name(kind, name);
    RETURN schedule;
END $$;

-- schedule command (a refresh function call) under the analysis's job name;
-- the same name again makes pg_cron update the job
CREATE FUNCTION _schedule_refresh(kind text, name text, schedule text, command text) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    job bigint;
BEGIN
    PERFORM customer_analytics._require_pg_cron();
    IF schedule IS NULL THEN
        RAISE EXCEPTION 'schedule must not be NULL' USING ERRCODE = 'null_value_not_allowed',
            HINT = 'A cron expression such as ''*/5 * * * *'' (every five minutes).';
    END IF;
    EXECUTE 'SELECT cron.schedule($1, $2, $3)' INTO job
      USING customer_analytics._cron_job_name(kind, name), schedule, command;
    RAISE NOTICE '% "%" refresh scheduled: % (pg_cron job %)', kind, name, schedule, job;
    RETURN job;
END $$;

CREATE FUNCTION _unschedule_refresh(kind text, name text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM customer_analytics._require_pg_cron();
    IF customer_analytics._cron_job(kind, name) IS NULL THEN
        RAISE EXCEPTION '% "%" has no scheduled refresh', kind, name
            USING ERRCODE = 'undefined_object',
                  HINT = 'customer_analytics.list_' || kind || 's() shows each ' || kind || '''s schedule.';
    END IF;
    EXECUTE 'SELECT cron.unschedule($1)' USING customer_analytics._cron_job_name(kind, name);
    RAISE NOTICE '% "%" refresh unscheduled', kind, name;
END $$;

CREATE FUNCTION schedule_campaign_refresh(campaign text, schedule text) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    c customer_analytics.campaigns := customer_analytics._campaign(campaign);
BEGIN
    RETURN customer_analytics._schedule_refresh('campaign', c.name, schedule,
        format('SELECT customer_analytics.refresh_campaign(%L)', c.name));
END $$;
COMMENT ON FUNCTION schedule_campaign_refresh IS
'Schedule refresh_campaign() with pg_cron (cron expression); scheduling again replaces the schedule';

CREATE FUNCTION unschedule_campaign_refresh(campaign text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    c customer_analytics.campaigns := customer_analytics._campaign(campaign);
BEGIN
    PERFORM customer_analytics._unschedule_refresh('campaign', c.name);
END $$;

CREATE FUNCTION list_campaigns()
RETURNS TABLE (name text, view_schema text, targets_view text, monthly_view text,
               source_schema text, revenue_window daterange, owner name, schedule text,
               refreshed_at timestamptz, refresh_ms numeric, target_rows bigint, monthly_rows bigint)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT c.name, c.view_schema, c.name || '_targets', c.name || '_monthly', c.source_schema,
           c.revenue_window, c.owner, customer_analytics._cron_job('campaign', c.name),
           c.refreshed_at, c.refresh_ms, c.target_rows, c.monthly_rows
      FROM customer_analytics.campaigns c
     ORDER BY c.name
$$;
COMMENT ON FUNCTION list_campaigns IS 'The campaigns, their views, schedule and last refresh';

------------------------------------------------------------------------------
-- Customer features: the segmentation notebook's customer single view
------------------------------------------------------------------------------

-- One row per customer with a confirmed order in feature_window, RFM-style:
-- visits, spend, basket, SKUs, dates, and the per-visit ratios.  Orders
-- follow the targeting rules.  as_of is the day recency and tenure are
-- counted to; it may not be before the window's last day (negative recency
-- means nothing).  STABLE, PARALLEL RESTRICTED and SECURITY INVOKER for the
-- same reasons as target_customers.
CREATE FUNCTION customer_features(
    feature_window daterange DEFAULT '[2025-01-01,2025-12-31]',
    as_of          date      DEFAULT '2026-01-07',
    source_schema  text      DEFAULT NULL,
    OUT customer_code      text,
    OUT visits             bigint,
    OUT total_spend        numeric,
    OUT ticket_size        numeric,
    OUT skus               bigint,
    OUT total_quantity     numeric,
    OUT first_order        date,
    OUT last_order         date,
    OUT recency_days       int,
    OUT tenure_days        int,
    OUT span_days          int,
    OUT quantity_per_visit float8,
    OUT days_per_visit     float8,
    OUT skus_per_visit     float8,
    OUT diff               float8,
    OUT is_repeat          boolean,
    OUT features           float8[])
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'customer_features'
LANGUAGE C STABLE PARALLEL RESTRICTED SECURITY INVOKER;

COMMENT ON FUNCTION customer_features IS
'Customer single view over feature_window, one row per customer with a confirmed order: visits (orders), total_spend, ticket_size = total_spend / visits, skus (distinct product codes), total_quantity, first/last order, recency_days = as_of - last_order, tenure_days = as_of - first_order, span_days = last_order - first_order, quantity_per_visit, days_per_visit (span_days / visits), skus_per_visit, diff = quantity_per_visit - skus_per_visit, is_repeat = visits >= 2; features = float8[] of visits, total_spend, ticket_size, skus, total_quantity, recency_days, tenure_days, quantity_per_visit, days_per_visit, skus_per_visit, diff (in this order)';

------------------------------------------------------------------------------
-- Clustering: k-means as SQL values, silhouette
------------------------------------------------------------------------------

-- Shared by the clustering aggregates: their state is a buffer of points.
CREATE FUNCTION _point_buffer_combine(internal, internal) RETURNS internal
AS 'MODULE_PATHNAME', 'point_buffer_combine' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION _point_buffer_serialize(internal) RETURNS bytea
AS 'MODULE_PATHNAME', 'point_buffer_serialize' LANGUAGE C IMMUTABLE PARALLEL SAFE STRICT;
CREATE FUNCTION _point_buffer_deserialize(bytea, internal) RETURNS internal
AS 'MODULE_PATHNAME', 'point_buffer_deserialize' LANGUAGE C IMMUTABLE PARALLEL SAFE STRICT;

CREATE FUNCTION _kmeans_fit_sfunc(internal, float8[], int) RETURNS internal
AS 'MODULE_PATHNAME', 'kmeans_fit_sfunc' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION _kmeans_fit_sfunc(internal, float8[], int, jsonb) RETURNS internal
AS 'MODULE_PATHNAME', 'kmeans_fit_sfunc' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION _kmeans_fit_final(internal) RETURNS jsonb
AS 'MODULE_PATHNAME', 'kmeans_fit_final' LANGUAGE C IMMUTABLE PARALLEL SAFE;

-- kmeans_fit(features, k [, options]): standardize (z-scores, population
-- std), then k-means++ with n_init restarts and Lloyd iterations as
-- scikit-learn 1.2 does.  options: {"n_init": 10, "max_iter": 300,
-- "tol": 1e-4, "seed": 0, "init": [[...], ...]} (init in z-score units).
-- The points are put into a canonical order before fitting, so the model
-- does not depend on the plan (serial or parallel).
CREATE AGGREGATE kmeans_fit(features float8[], k int) (
    SFUNC = _kmeans_fit_sfunc, STYPE = internal,
    FINALFUNC = _kmeans_fit_final, FINALFUNC_MODIFY = READ_WRITE,
    COMBINEFUNC = _point_buffer_combine,
    SERIALFUNC = _point_buffer_serialize, DESERIALFUNC = _point_buffer_deserialize,
    PARALLEL = SAFE);
CREATE AGGREGATE kmeans_fit(features float8[], k int, options jsonb) (
    SFUNC = _kmeans_fit_sfunc, STYPE = internal,
    FINALFUNC = _kmeans_fit_final, FINALFUNC_MODIFY = READ_WRITE,
    COMBINEFUNC = _point_buffer_combine,
    SERIALFUNC = _point_buffer_serialize, DESERIALFUNC = _point_buffer_deserialize,
    PARALLEL = SAFE);
COMMENT ON AGGREGATE kmeans_fit(float8[], int) IS
'k-means model (jsonb) of the feature vectors: standardization, centroids, inertia, iterations, sizes; k-means++ with 10 restarts, seed 0';
COMMENT ON AGGREGATE kmeans_fit(float8[], int, jsonb) IS
'k-means model (jsonb) with options n_init, max_iter, tol, seed, init (initial centroids in z-score units)';

CREATE FUNCTION kmeans_predict(model jsonb, features float8[]) RETURNS int
AS 'MODULE_PATHNAME', 'kmeans_predict' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION kmeans_predict IS
'cluster (0-based) of the nearest centroid, after the model''s standardization';

CREATE FUNCTION kmeans_standardize(model jsonb, features float8[]) RETURNS float8[]
AS 'MODULE_PATHNAME', 'kmeans_standardize' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION kmeans_standardize IS
'the features as z-scores with the model''s mean and scale (the space the centroids live in)';

CREATE FUNCTION _silhouette_sfunc(internal, float8[], int) RETURNS internal
AS 'MODULE_PATHNAME', 'silhouette_sfunc' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION _silhouette_sfunc(internal, float8[], int, int, bigint) RETURNS internal
AS 'MODULE_PATHNAME', 'silhouette_sfunc' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION _silhouette_final(internal) RETURNS float8
AS 'MODULE_PATHNAME', 'silhouette_final' LANGUAGE C IMMUTABLE PARALLEL SAFE;

-- silhouette(features, cluster [, sample_size, seed]): scikit-learn's
-- silhouette_score (Euclidean, exact); NULL when fewer than 2 or more than
-- n - 1 clusters.
CREATE AGGREGATE silhouette(features float8[], cluster int) (
    SFUNC = _silhouette_sfunc, STYPE = internal,
    FINALFUNC = _silhouette_final, FINALFUNC_MODIFY = READ_WRITE,
    COMBINEFUNC = _point_buffer_combine,
    SERIALFUNC = _point_buffer_serialize, DESERIALFUNC = _point_buffer_deserialize,
    PARALLEL = SAFE);
CREATE AGGREGATE silhouette(features float8[], cluster int, sample_size int, seed bigint) (
    SFUNC = _silhouette_sfunc, STYPE = internal,
    FINALFUNC = _silhouette_final, FINALFUNC_MODIFY = READ_WRITE,
    COMBINEFUNC = _point_buffer_combine,
    SERIALFUNC = _point_buffer_serialize, DESERIALFUNC = _point_buffer_deserialize,
    PARALLEL = SAFE);
COMMENT ON AGGREGATE silhouette(float8[], int) IS
'mean silhouette coefficient (scikit-learn''s silhouette_score, Euclidean, exact)';
COMMENT ON AGGREGATE silhouette(float8[], int, int, bigint) IS
'mean silhouette coefficient on a repeatable random sample of sample_size points';

------------------------------------------------------------------------------
-- Segmentation: choosing k, cluster profiles, RFM
------------------------------------------------------------------------------

-- Which customers a segmentation looks at: the notebook segments repeat
-- customers and one-visit customers separately.
CREATE FUNCTION _segment_filter(segment text, is_repeat boolean) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF segment = 'all' THEN
        RETURN true;
    ELSIF segment = 'repeat' THEN
        RETURN is_repeat;
    ELSIF segment = 'one_visit' THEN
        RETURN NOT is_repeat;
    END IF;
    RAISE EXCEPTION 'segment must be ''all'', ''repeat'' or ''one_visit'', not %', quote_nullable(segment)
        USING ERRCODE = 'invalid_parameter_value',
              HINT = 'The notebook clusters repeat customers (2+ visits) and one-visit customers separately.';
END $$;

-- Kneedle (Satopaa et al. 2011) on a decreasing, convex curve such as
-- inertia over k: normalize both axes to [0, 1] and take the k where the
-- normalized curve lies farthest below the straight line from first to last
-- point.  NULL with fewer than three points or a flat curve.
CREATE FUNCTION kneedle(k int[], inertia float8[]) RETURNS int
LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    WITH p AS (SELECT u.k, u.y FROM unnest(k, inertia) AS u(k, y) WHERE u.k IS NOT NULL AND u.y IS NOT NULL),
    n AS (SELECT p.k,
                 (p.k - min(p.k) OVER ())::float8 / NULLIF(max(p.k) OVER () - min(p.k) OVER (), 0) AS x,
                 (p.y - min(p.y) OVER ()) / NULLIF(max(p.y) OVER () - min(p.y) OVER (), 0) AS y,
                 count(*) OVER () AS points
            FROM p)
    SELECT n.k FROM n
     WHERE n.points >= 3 AND n.x IS NOT NULL AND n.y IS NOT NULL
     ORDER BY (1 - n.y) - n.x DESC, n.k
     LIMIT 1
$$;
COMMENT ON FUNCTION kneedle IS
'the knee of a decreasing convex curve (kneedle): the k where inertia stops falling fast';

-- The elbow table: for each k, inertia and silhouette of the k-means fit of
-- the customers' features, and which k kneedle and the silhouette maximum
-- pick.  Silhouettes use a repeatable sample of silhouette_sample points
-- (0 = exact).
CREATE FUNCTION kmeans_elbow(
    k_from            int       DEFAULT 1,
    k_to              int       DEFAULT 10,
    segment           text      DEFAULT 'repeat',
    feature_window    daterange DEFAULT '[2025-01-01,2025-12-31]',
    as_of             date      DEFAULT '2026-01-07',
    options           jsonb     DEFAULT '{"n_init": 10, "seed": 0}',
    silhouette_sample int       DEFAULT 2000,
    source_schema     text      DEFAULT NULL)
RETURNS TABLE (k int, inertia float8, silhouette float8, kneedle_pick boolean, silhouette_pick boolean)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF k_from IS NULL OR k_to IS NULL OR k_from < 1 OR k_to < k_from OR k_to > 50 THEN
        RAISE EXCEPTION 'need 1 <= k_from <= k_to <= 50, not k_from = %, k_to = %', k_from, k_to
            USING ERRCODE = 'invalid_parameter_value', HINT = 'The notebook looks at k = 1 .. 10.';
    END IF;
    IF silhouette_sample IS NULL OR silhouette_sample < 0 THEN
        RAISE EXCEPTION 'silhouette_sample must be 0 (exact) or a sample size'
            USING ERRCODE = 'invalid_parameter_value', HINT = 'The default 2000 is repeatable (seed 0).';
    END IF;
    RETURN QUERY
    WITH f AS MATERIALIZED (
        SELECT cf.features FROM customer_analytics.customer_features(feature_window, as_of, source_schema) cf
         WHERE customer_analytics._segment_filter(segment, cf.is_repeat)),
    fits AS (
        SELECT g.k, (SELECT customer_analytics.kmeans_fit(f.features, g.k, options) FROM f) AS model
          FROM generate_series(k_from, k_to) AS g(k)),
    scored AS (
        SELECT fits.k, (fits.model->>'inertia')::float8 AS inertia,
               (SELECT CASE WHEN silhouette_sample = 0
                            THEN customer_analytics.silhouette(customer_analytics.kmeans_standardize(fits.model, f.features),
                                                               customer_analytics.kmeans_predict(fits.model, f.features))
                            ELSE customer_analytics.silhouette(customer_analytics.kmeans_standardize(fits.model, f.features),
                                                               customer_analytics.kmeans_predict(fits.model, f.features),
                                                               silhouette_sample, 0) END
                  FROM f) AS silhouette
          FROM fits WHERE fits.model IS NOT NULL)
    SELECT s.k, s.inertia, s.silhouette,
           s.k = customer_analytics.kneedle((SELECT array_agg(x.k ORDER BY x.k) FROM scored x),
                                           (SELECT array_agg(x.inertia ORDER BY x.k) FROM scored x)),
           s.k = (SELECT x.k FROM scored x WHERE x.silhouette IS NOT NULL ORDER BY x.silhouette DESC, x.k LIMIT 1)
      FROM scored s ORDER BY s.k;
END $$;
COMMENT ON FUNCTION kmeans_elbow IS
'inertia and silhouette for k = k_from .. k_to over customer_features(), with the k kneedle and the silhouette maximum pick';

-- Cluster profiles: per cluster of a model, the customers, their share, the
-- mean of every feature and each mean's rank across clusters (1 = highest),
-- as the notebook's profile tables.
CREATE FUNCTION kmeans_profiles(
    model          jsonb,
    segment        text      DEFAULT 'repeat',
    feature_window daterange DEFAULT '[2025-01-01,2025-12-31]',
    as_of          date      DEFAULT '2026-01-07',
    source_schema  text      DEFAULT NULL)
RETURNS TABLE (cluster int, customers bigint, share numeric,
               visits float8, total_spend float8, ticket_size float8, skus float8,
               total_quantity float8, recency_days float8, tenure_days float8,
               quantity_per_visit float8, days_per_visit float8, skus_per_visit float8,
               diff float8, ranks jsonb)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    WITH m AS (
        SELECT customer_analytics.kmeans_predict(model, cf.features) AS cluster, cf.features AS f
          FROM customer_analytics.customer_features(feature_window, as_of, source_schema) cf
         WHERE customer_analytics._segment_filter(segment, cf.is_repeat)),
    p AS (
        SELECT m.cluster, count(*) AS customers,
               avg(f[1]) AS visits, avg(f[2]) AS total_spend, avg(f[3]) AS ticket_size, avg(f[4]) AS skus,
               avg(f[5]) AS total_quantity, avg(f[6]) AS recency_days, avg(f[7]) AS tenure_days,
               avg(f[8]) AS quantity_per_visit, avg(f[9]) AS days_per_visit, avg(f[10]) AS skus_per_visit,
               avg(f[11]) AS diff
          FROM m GROUP BY m.cluster)
    SELECT p.cluster, p.customers,
           round(100.0 * p.customers / sum(p.customers) OVER (), 2),
           p.visits, p.total_spend, p.ticket_size, p.skus, p.total_quantity, p.recency_days, p.tenure_days,
           p.quantity_per_visit, p.days_per_visit, p.skus_per_visit, p.diff,
           jsonb_build_object(
               'visits', rank() OVER (ORDER BY p.visits DESC),
               'total_spend', rank() OVER (ORDER BY p.total_spend DESC),
               'ticket_size', rank() OVER (ORDER BY p.ticket_size DESC),
               'skus', rank() OVER (ORDER BY p.skus DESC),
               'total_quantity', rank() OVER (ORDER BY p.total_quantity DESC),
               'recency_days', rank() OVER (ORDER BY p.recency_days DESC),
               'tenure_days', rank() OVER (ORDER BY p.tenure_days DESC),
               'quantity_per_visit', rank() OVER (ORDER BY p.quantity_per_visit DESC),
               'days_per_visit', rank() OVER (ORDER BY p.days_per_visit DESC),
               'skus_per_visit', rank() OVER (ORDER BY p.skus_per_visit DESC),
               'diff', rank() OVER (ORDER BY p.diff DESC))
      FROM p ORDER BY p.cluster
$$;
COMMENT ON FUNCTION kmeans_profiles IS
'per cluster of a kmeans_fit model: customers, share %, mean of each feature, and each mean''s rank across clusters (1 = highest)';

-- RFM: quintile scores and named segments.  R = 5 for the most recent fifth
-- of customers, F and M = 5 for the most visits / spend; ties are broken by
-- customer_code so scores are repeatable.  Segments, first match wins:
--   Champions          R >= 4, F >= 4, M >= 4
--   Loyal              R >= 3, F >= 4
--   Cannot Lose Them   R <= 2, F >= 4, M >= 4
--   At Risk            R <= 2, F >= 3
--   Potential Loyalist R >= 4, F 2..3
--   New Customer       R >= 4, F = 1
--   Need Attention     R = 3,  F <= 3
--   Hibernating        R <= 2, F <= 2
CREATE FUNCTION rfm_segments(
    feature_window daterange DEFAULT '[2025-01-01,2025-12-31]',
    as_of          date      DEFAULT '2026-01-07',
    source_schema  text      DEFAULT NULL)
RETURNS TABLE (customer_code text, recency_days int, visits bigint, total_spend numeric,
               r int, f int, m int, rfm text, segment text)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    WITH s AS (
        SELECT cf.customer_code, cf.recency_days, cf.visits, cf.total_spend,
               ntile(5) OVER (ORDER BY cf.recency_days DESC, cf.customer_code) AS r,
               ntile(5) OVER (ORDER BY cf.visits, cf.customer_code) AS f,
               ntile(5) OVER (ORDER BY cf.total_spend, cf.customer_code) AS m
          FROM customer_analytics.customer_features(feature_window, as_of, source_schema) cf)
    SELECT s.customer_code, s.recency_days, s.visits, s.total_spend, s.r, s.f, s.m,
           s.r::text || s.f::text || s.m::text,
           CASE WHEN s.r >= 4 AND s.f >= 4 AND s.m >= 4 THEN 'Champions'
                WHEN s.r >= 3 AND s.f >= 4 THEN 'Loyal'
                WHEN s.r <= 2 AND s.f >= 4 AND s.m >= 4 THEN 'Cannot Lose Them'
                WHEN s.r <= 2 AND s.f >= 3 THEN 'At Risk'
                WHEN s.r >= 4 AND s.f BETWEEN 2 AND 3 THEN 'Potential Loyalist'
                WHEN s.r >= 4 AND s.f = 1 THEN 'New Customer'
                WHEN s.r = 3 THEN 'Need Attention'
                ELSE 'Hibernating' END
      FROM s ORDER BY s.customer_code
$$;
COMMENT ON FUNCTION rfm_segments IS
'RFM quintile scores (1-5) per customer and a named segment: Champions, Loyal, Cannot Lose Them, At Risk, Potential Loyalist, New Customer, Need Attention, Hibernating';

------------------------------------------------------------------------------
-- Segmentations: named k-means segmentations built as materialized views,
-- refreshed and scheduled with the same machinery as campaigns
------------------------------------------------------------------------------

CREATE TABLE segmentations (
    name              text PRIMARY KEY
                      CONSTRAINT segmentation_name_format CHECK (name ~ '^[a-z][a-z0-9_]{0,39}$'),
    view_schema       text NOT NULL,
    source_schema     text NOT NULL,
    segment           text NOT NULL,
    k                 int NOT NULL,
    feature_window    daterange NOT NULL,
    as_of             date NOT NULL,
    options           jsonb NOT NULL,
    k_from            int NOT NULL,
    k_to              int NOT NULL,
    silhouette_sample int NOT NULL,
    readers           text[] NOT NULL DEFAULT '{}',
    owner             name NOT NULL DEFAULT current_user,
    created_at        timestamptz NOT NULL DEFAULT now(),
    refreshed_at      timestamptz,
    refresh_ms        numeric,
    member_rows       bigint
);
SELECT pg_catalog.pg_extension_config_dump('segmentations', '');
GRANT SELECT ON segmentations TO PUBLIC;
COMMENT ON TABLE segmentations IS
'k-means segmentations: which customers, k, features window, where their views live, last refresh';

CREATE FUNCTION _segmentation(segmentation text) RETURNS segmentations
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    s customer_analytics.segmentations;
BEGIN
    SELECT * INTO s FROM customer_analytics.segmentations WHERE name = segmentation;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'segmentation "%" does not exist', segmentation
            USING ERRCODE = 'undefined_object',
                  HINT = 'SELECT * FROM customer_analytics.list_segmentations() shows the segmentations.';
    END IF;
    RETURN s;
END $$;

-- The views of a segmentation, in refresh order: the model first (members
-- and profiles apply it), then members, profiles and the elbow table.
CREATE FUNCTION _segmentation_views(segmentation text) RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT ARRAY[segmentation || '_model', segmentation || '_members',
                 segmentation || '_profiles', segmentation || '_elbow']
$$;

-- The features of a segmentation's customers, from its stored definition.
CREATE FUNCTION segmentation_features(segmentation text)
RETURNS TABLE (customer_code text, visits bigint, total_spend numeric, ticket_size numeric, skus bigint,
               total_quantity numeric, first_order date, last_order date, recency_days int,
               tenure_days int, span_days int, quantity_per_visit float8, days_per_visit float8,
               skus_per_visit float8, diff float8, is_repeat boolean, features float8[])
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    s customer_analytics.segmentations := customer_analytics._segmentation(segmentation);
BEGIN
    RETURN QUERY SELECT cf.* FROM customer_analytics.customer_features(s.feature_window, s.as_of, s.source_schema) cf
                  WHERE customer_analytics._segment_filter(s.segment, cf.is_repeat);
END $$;
COMMENT ON FUNCTION segmentation_features IS
'customer_features() of the segmentation''s customers (repeat, one-visit or all), from its stored definition';

CREATE FUNCTION _check_segmentation(s segmentations) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM customer_analytics._check_view_owner('segmentation', s.name, s.view_schema, s.readers,
        '<name>_model, <name>_members, <name>_profiles and <name>_elbow');
    PERFORM customer_analytics._segment_filter(s.segment, true);
    IF s.k IS NULL OR s.k < 1 OR s.k > 50 OR s.k_from IS NULL OR s.k_to IS NULL
       OR s.k_from < 1 OR s.k_to < s.k_from OR s.k_to > 50 THEN
        RAISE EXCEPTION 'need 1 <= k <= 50 and 1 <= k_from <= k_to <= 50'
            USING ERRCODE = 'invalid_parameter_value', HINT = 'The notebook uses k = 4 and looks at k = 1 .. 10.';
    END IF;
    IF s.options IS NULL OR jsonb_typeof(s.options) <> 'object' THEN
        RAISE EXCEPTION 'options must be a JSON object'
            USING ERRCODE = 'invalid_parameter_value', HINT = 'For example ''{"n_init": 10, "seed": 0}''.';
    END IF;
    IF s.silhouette_sample IS NULL OR s.silhouette_sample < 0 THEN
        RAISE EXCEPTION 'silhouette_sample must be 0 (exact) or a sample size'
            USING ERRCODE = 'invalid_parameter_value', HINT = 'The default 2000 is repeatable (seed 0).';
    END IF;
    -- the window and as_of are checked by customer_features() when the views are built
END $$;

-- Build the four views.  Each reads the stored definition, so a plain
-- REFRESH from any client recomputes it; members and profiles apply the
-- model view, so they always agree with it and with each other.
CREATE FUNCTION _build_segmentation_views(s segmentations) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    catalog_value text := '(SELECT %s FROM customer_analytics.segmentations WHERE name = %L)';
    model text := format('(SELECT model FROM %I.%I)', s.view_schema, s.name || '_model');
    col record;
BEGIN
    EXECUTE format('CREATE MATERIALIZED VIEW %I.%I AS '
                   'SELECT %L::text AS segmentation, customer_analytics.kmeans_fit(f.features, %s, %s) AS model '
                   'FROM customer_analytics.segmentation_features(%L) f',
                   s.view_schema, s.name || '_model', s.name,
                   format(catalog_value, 'k', s.name), format(catalog_value, 'options', s.name), s.name);
    EXECUTE format('CREATE MATERIALIZED VIEW %I.%I AS '
                   'SELECT f.customer_code, customer_analytics.kmeans_predict(%s, f.features) AS cluster, '
                   'f.visits, f.total_spend, f.ticket_size, f.skus, f.total_quantity, f.first_order, f.last_order, '
                   'f.recency_days, f.tenure_days, f.span_days, f.quantity_per_visit, f.days_per_visit, '
                   'f.skus_per_visit, f.diff, f.features '
                   'FROM customer_analytics.segmentation_features(%L) f ORDER BY f.customer_code',
                   s.view_schema, s.name || '_members', model, s.name);
    EXECUTE format('CREATE MATERIALIZED VIEW %I.%I AS '
                   'SELECT * FROM customer_analytics.kmeans_profiles(%s, %s, %s, %s, %s)',
                   s.view_schema, s.name || '_profiles', model,
                   format(catalog_value, 'segment', s.name), format(catalog_value, 'feature_window', s.name),
                   format(catalog_value, 'as_of', s.name), format(catalog_value, 'source_schema', s.name));
    EXECUTE format('CREATE MATERIALIZED VIEW %I.%I AS '
                   'SELECT * FROM customer_analytics.kmeans_elbow(%s, %s, %s, %s, %s, %s, %s, %s)',
                   s.view_schema, s.name || '_elbow',
                   format(catalog_value, 'k_from', s.name), format(catalog_value, 'k_to', s.name),
                   format(catalog_value, 'segment', s.name), format(catalog_value, 'feature_window', s.name),
                   format(catalog_value, 'as_of', s.name), format(catalog_value, 'options', s.name),
                   format(catalog_value, 'silhouette_sample', s.name), format(catalog_value, 'source_schema', s.name));

    FOR col IN SELECT * FROM (VALUES
        ('_model', 'segmentation', format('k-means model of segmentation %s (k = %s, %s customers, features %s, as of %s): '
                                          'standardization, centroids, inertia, sizes',
                                          s.name, s.k, s.segment, customer_analytics._window_text(s.feature_window), s.as_of)),
        ('_members', 'customer_code', format('Customers of segmentation %s with their cluster and features', s.name)),
        ('_profiles', 'cluster', format('Per cluster of segmentation %s: customers, share %%, feature means and their ranks (1 = highest)', s.name)),
        ('_elbow', 'k', format('Inertia and silhouette of segmentation %s''s customers for k = %s .. %s, with the kneedle and silhouette picks',
                               s.name, s.k_from, s.k_to))) AS v(suffix, key, comment)
    LOOP
        EXECUTE format('CREATE UNIQUE INDEX %I ON %I.%I (%I)', s.name || col.suffix || '_key',
                       s.view_schema, s.name || col.suffix, col.key);
        EXECUTE format('COMMENT ON MATERIALIZED VIEW %I.%I IS %L', s.view_schema, s.name || col.suffix,
                       col.comment || format('. Refresh: SELECT customer_analytics.refresh_segmentation(%L).', s.name));
    END LOOP;
    FOR col IN SELECT * FROM (VALUES
        ('_model', 'segmentation', 'segmentation name'),
        ('_model', 'model', 'kmeans_fit() model (jsonb): mean, scale, centroids, centroids_original, inertia, iterations, sizes'),
        ('_members', 'customer_code', 'customer code'),
        ('_members', 'cluster', 'cluster number (0-based) of the nearest centroid'),
        ('_members', 'visits', 'distinct confirmed orders in the window'),
        ('_members', 'total_spend', 'sum of order totals in the window'),
        ('_members', 'ticket_size', 'total_spend / visits'),
        ('_members', 'skus', 'distinct product codes bought'),
        ('_members', 'total_quantity', 'sum of quantities'),
        ('_members', 'first_order', 'first confirmed order in the window'),
        ('_members', 'last_order', 'last confirmed order in the window'),
        ('_members', 'recency_days', 'days from the last order to as_of'),
        ('_members', 'tenure_days', 'days from the first order to as_of'),
        ('_members', 'span_days', 'days from the first to the last order'),
        ('_members', 'quantity_per_visit', 'total_quantity / visits'),
        ('_members', 'days_per_visit', 'span_days / visits'),
        ('_members', 'skus_per_visit', 'skus / visits'),
        ('_members', 'diff', 'quantity_per_visit - skus_per_visit'),
        ('_members', 'features', 'the feature vector clustered (order: visits .. diff)'),
        ('_elbow', 'k', 'number of clusters'),
        ('_elbow', 'inertia', 'within-cluster sum of squares (z-score units)'),
        ('_elbow', 'silhouette', 'mean silhouette coefficient'),
        ('_elbow', 'kneedle_pick', 'the k kneedle picks on the inertia curve'),
        ('_elbow', 'silhouette_pick', 'the k with the highest silhouette')) AS c(suffix, name, comment)
    LOOP
        EXECUTE format('COMMENT ON COLUMN %I.%I.%I IS %L', s.view_schema, s.name || col.suffix, col.name,
                       col.comment || ' (segmentation ' || s.name || ')');
    END LOOP;
    FOR col IN SELECT a.attname FROM pg_attribute a
                WHERE a.attrelid = format('%I.%I', s.view_schema, s.name || '_profiles')::regclass AND a.attnum > 0 LOOP
        EXECUTE format('COMMENT ON COLUMN %I.%I.%I IS %L', s.view_schema, s.name || '_profiles', col.attname,
            CASE col.attname WHEN 'cluster' THEN 'cluster number (0-based)'
                             WHEN 'customers' THEN 'customers in the cluster'
                             WHEN 'share' THEN 'share of the segmentation''s customers, %'
                             WHEN 'ranks' THEN 'rank of each feature mean across clusters (1 = highest)'
                             ELSE 'mean ' || col.attname || ' of the cluster' END
            || ' (segmentation ' || s.name || ')');
    END LOOP;
END $$;

CREATE FUNCTION _record_segmentation_refresh(segmentation text, started timestamptz) RETURNS segmentations
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    s customer_analytics.segmentations := customer_analytics._segmentation(segmentation);
BEGIN
    UPDATE customer_analytics.segmentations
       SET refreshed_at = now(),
           refresh_ms = round(extract(epoch FROM clock_timestamp() - started) * 1000, 1),
           member_rows = customer_analytics._count_rows(s.view_schema, s.name || '_members')
     WHERE name = s.name
    RETURNING * INTO s;
    RETURN s;
END $$;

CREATE FUNCTION create_segmentation(
    name              text,
    view_schema       text,
    k                 int       DEFAULT 4,
    segment           text      DEFAULT 'repeat',
    feature_window    daterange DEFAULT '[2025-01-01,2025-12-31]',
    as_of             date      DEFAULT '2026-01-07',
    options           jsonb     DEFAULT '{"n_init": 10, "seed": 0}',
    k_from            int       DEFAULT 1,
    k_to              int       DEFAULT 10,
    silhouette_sample int       DEFAULT 2000,
    readers           text[]    DEFAULT '{}',
    source_schema     text      DEFAULT NULL)
RETURNS segmentations
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    s customer_analytics.segmentations;
    started timestamptz := clock_timestamp();
BEGIN
    s := ROW(name, view_schema,
             COALESCE(source_schema, current_setting('customer_analytics.source_schema', true), 'cosmos_sync'),
             segment, k, feature_window, as_of, options, k_from, k_to, silhouette_sample,
             readers, current_user, now(), NULL, NULL, NULL);
    PERFORM customer_analytics._check_segmentation(s);
    BEGIN
        INSERT INTO customer_analytics.segmentations SELECT s.*;
    EXCEPTION WHEN unique_violation THEN
        RAISE EXCEPTION 'segmentation "%" already exists', s.name
            USING ERRCODE = 'duplicate_object',
                  HINT = 'Drop it first with customer_analytics.drop_segmentation(), or pick another name.';
    END;
    IF customer_analytics._views_taken(s.view_schema, customer_analytics._segmentation_views(s.name)) THEN
        RAISE EXCEPTION 'schema "%" already has a relation named like %_model, %_members, %_profiles or %_elbow',
                        s.view_schema, s.name, s.name, s.name, s.name
            USING ERRCODE = 'duplicate_table',
                  HINT = 'Pick another segmentation name or view schema; customer_analytics never replaces relations it did not build.';
    END IF;
    PERFORM customer_analytics._build_segmentation_views(s);
    PERFORM customer_analytics._grant_readers(s.view_schema, customer_analytics._segmentation_views(s.name), s.readers);
    s := customer_analytics._record_segmentation_refresh(s.name, started);
    RAISE NOTICE 'segmentation "%" built: % with % customers in % clusters', s.name,
        format('%I.%I', s.view_schema, s.name || '_members'), s.member_rows, s.k;
    RETURN s;
END $$;
COMMENT ON FUNCTION create_segmentation IS
'Store a named k-means segmentation and build its views <name>_model, <name>_members, <name>_profiles and <name>_elbow in view_schema';

CREATE FUNCTION refresh_segmentation(segmentation text, concurrently boolean DEFAULT true)
RETURNS segmentations
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    s customer_analytics.segmentations := customer_analytics._segmentation(segmentation);
    started timestamptz := clock_timestamp();
BEGIN
    PERFORM customer_analytics._refresh_views(s.view_schema, customer_analytics._segmentation_views(s.name),
                                              refresh_segmentation.concurrently);
    s := customer_analytics._record_segmentation_refresh(s.name, started);
    RAISE NOTICE 'segmentation "%" refreshed%: % customers', s.name,
        CASE WHEN refresh_segmentation.concurrently THEN ' concurrently' ELSE '' END, s.member_rows;
    RETURN s;
END $$;
COMMENT ON FUNCTION refresh_segmentation IS
'Recompute the model, members, profiles and elbow views (CONCURRENTLY by default) and record the refresh';

CREATE FUNCTION drop_segmentation(segmentation text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    s customer_analytics.segmentations := customer_analytics._segmentation(segmentation);
BEGIN
    IF customer_analytics._cron_job('segmentation', s.name) IS NOT NULL THEN
        PERFORM customer_analytics._unschedule_refresh('segmentation', s.name);
    END IF;
    PERFORM customer_analytics._drop_views(s.view_schema,
        ARRAY[s.name || '_elbow', s.name || '_profiles', s.name || '_members', s.name || '_model']);
    DELETE FROM customer_analytics.segmentations WHERE name = s.name;
    RAISE NOTICE 'segmentation "%" dropped with its views', s.name;
END $$;
COMMENT ON FUNCTION drop_segmentation IS 'Drop a segmentation, its four views and its scheduled refresh';

CREATE FUNCTION schedule_segmentation_refresh(segmentation text, schedule text) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    s customer_analytics.segmentations := customer_analytics._segmentation(segmentation);
BEGIN
    RETURN customer_analytics._schedule_refresh('segmentation', s.name, schedule,
        format('SELECT customer_analytics.refresh_segmentation(%L)', s.name));
END $$;
COMMENT ON FUNCTION schedule_segmentation_refresh IS
'Schedule refresh_segmentation() with pg_cron (cron expression); scheduling again replaces the schedule';

CREATE FUNCTION unschedule_segmentation_refresh(segmentation text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    s customer_analytics.segmentations := customer_analytics._segmentation(segmentation);
BEGIN
    PERFORM customer_analytics._unschedule_refresh('segmentation', s.name);
END $$;

CREATE FUNCTION list_segmentations()
RETURNS TABLE (name text, view_schema text, views text[], segment text, k int, feature_window daterange,
               as_of date, source_schema text, owner name, schedule text,
               refreshed_at timestamptz, refresh_ms numeric, member_rows bigint)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT s.name, s.view_schema, customer_analytics._segmentation_views(s.name), s.segment, s.k,
           s.feature_window, s.as_of, s.source_schema, s.owner,
           customer_analytics._cron_job('segmentation', s.name), s.refreshed_at, s.refresh_ms, s.member_rows
      FROM customer_analytics.segmentations s ORDER BY s.name
$$;
COMMENT ON FUNCTION list_segmentations IS 'The segmentations, their views, schedule and last refresh';
