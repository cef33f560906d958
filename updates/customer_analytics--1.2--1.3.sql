-- customer_analytics 1.2 -> 1.3: customer_features() as a parallel aggregate;
-- a campaign's monthly sheet refreshed incrementally like its targets
\echo Use "ALTER EXTENSION customer_analytics UPDATE TO '1.3'" to load this file. \quit

------------------------------------------------------------------------------
-- customer_feature_stats: one customer's confirmed orders folded into what
-- customer_features() derives its columns from.  customer_features() groups
-- its order rows by customer with it, so parallel workers build partial
-- states (SKU sets included) and the leader combines them.  Rows with a
-- NULL order_date are skipped; NULL totals, quantities and product codes
-- add nothing; a group without a counted row gives NULL.
------------------------------------------------------------------------------
CREATE TYPE customer_feature_stats AS (
    visits      bigint,     -- every order aggregated
    spend       numeric,    -- their totals (0 without any)
    quantity    numeric,    -- their quantities (0 without any)
    skus        bigint,     -- distinct product codes over all of them
    first_order date,
    last_order  date
);
COMMENT ON TYPE customer_feature_stats IS
'what the customer_feature_stats aggregate returns: visits, exact spend and quantity, distinct SKUs, first and last order';

CREATE FUNCTION _customer_feature_stats_sfunc(internal, date, numeric, numeric, text[]) RETURNS internal
AS 'MODULE_PATHNAME', 'customer_feature_stats_sfunc' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION _customer_feature_stats_combine(internal, internal) RETURNS internal
AS 'MODULE_PATHNAME', 'customer_feature_stats_combine' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION _customer_feature_stats_serialize(internal) RETURNS bytea
AS 'MODULE_PATHNAME', 'customer_feature_stats_serialize' LANGUAGE C IMMUTABLE PARALLEL SAFE STRICT;
CREATE FUNCTION _customer_feature_stats_deserialize(bytea, internal) RETURNS internal
AS 'MODULE_PATHNAME', 'customer_feature_stats_deserialize' LANGUAGE C IMMUTABLE PARALLEL SAFE STRICT;
CREATE FUNCTION _customer_feature_stats_final(internal) RETURNS customer_feature_stats
AS 'MODULE_PATHNAME', 'customer_feature_stats_final' LANGUAGE C IMMUTABLE PARALLEL SAFE;

-- SSPACE: a state with some sixty product codes (hash set and strings);
-- the demo data's customers average about a hundred
CREATE AGGREGATE customer_feature_stats(
    order_date    date,
    order_total   numeric,
    quantity      numeric,
    product_codes text[]) (
    SFUNC = _customer_feature_stats_sfunc, STYPE = internal, SSPACE = 4096,
    FINALFUNC = _customer_feature_stats_final,
    COMBINEFUNC = _customer_feature_stats_combine,
    SERIALFUNC = _customer_feature_stats_serialize, DESERIALFUNC = _customer_feature_stats_deserialize,
    PARALLEL = SAFE);
COMMENT ON AGGREGATE customer_feature_stats(date, numeric, numeric, text[]) IS
'per-customer visits, spend, quantity, distinct SKUs and first/last order (one row per order, product codes may repeat); what customer_features() derives its columns from';

------------------------------------------------------------------------------
-- Incremental monthly sheet.  The <name>_monthly view reads its revenue
-- through _campaign_sheet_revenue(), which keeps the months of every target
-- no transaction touched since the last refresh (read back from the view
-- itself) and recomputes only the changed targets' months, as
-- campaign_targets() does for the targets.  A sheet built before 1.3 keeps
-- its definition and is recomputed in full until the campaign's monthly
-- view is rebuilt (alter_campaign with a new revenue_window).
------------------------------------------------------------------------------
ALTER TABLE campaign_refresh_state ADD COLUMN monthly_view oid;  -- NULL: the sheet is recomputed in full
COMMENT ON COLUMN campaign_refresh_state.monthly_view IS
'the monthly view whose rows the snapshot describes (rebuilt view: new oid)';

-- Can a campaign view's rows be reused: is it the view the refresh state
-- describes (same oid, not rebuilt since), populated and readable by the
-- caller?  false, never NULL, when either is missing.
CREATE FUNCTION _view_reusable(v regclass, described oid) RETURNS boolean
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT COALESCE(v = described
                    AND (SELECT relispopulated FROM pg_class WHERE oid = v)
                    AND has_table_privilege(v, 'SELECT'), false)
$$;

-- One hashed DISTINCT instead of array_agg(DISTINCT ...), which sorts
-- every dirty row; the view check shared with the sheet; otherwise as in 1.1.
CREATE OR REPLACE FUNCTION _campaign_changes(c campaigns, OUT usable boolean, OUT changed text[], OUT reason text)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    s customer_analytics.campaign_refresh_state;
    r customer_analytics.rollups;
    v regclass := to_regclass(format('%I.%I', c.view_schema, c.name || '_targets'));
    everything boolean;
BEGIN
    usable := false;
    SELECT * INTO s FROM customer_analytics.campaign_refresh_state WHERE campaign = c.name;
    SELECT * INTO r FROM customer_analytics.rollups x WHERE x.source_schema = c.source_schema;
    IF s IS NULL THEN
        reason := 'no incremental state yet';
    ELSIF r IS NULL OR (customer_analytics._rollup_for_reading(c.source_schema)).rollup IS NULL THEN
        reason := 'the rollup is not usable';
    ELSIF s.generation <> r.generation THEN
        reason := 'the rollup was rebuilt';
    ELSIF s.fingerprint <> customer_analytics._campaign_fingerprint(c) THEN
        reason := 'the campaign changed';
    ELSIF NOT customer_analytics._view_reusable(v, s.targets_view) THEN
        reason := 'the targets view was rebuilt or cannot be read';
    ELSE
        EXECUTE format('SELECT COALESCE(array_agg(d.customer_code) FILTER (WHERE d.customer_code IS NOT NULL), ''{}''),'
                       ' COALESCE(bool_or(d.customer_code IS NULL), false)'
                       ' FROM (SELECT DISTINCT customer_code FROM %s WHERE NOT pg_visible_in_snapshot(xid, $1)) d',
                       customer_analytics._rollup_dirty_table(r.id))
           INTO changed, everything USING s.snapshot;
        IF everything THEN
            reason := 'a source table was truncated';
            changed := NULL;
        ELSE
            usable := true;
        END IF;
    END IF;
END $$;

-- The revenue of a campaign's targets per month of its revenue window, as
-- its monthly sheet shows it: read back from the sheet for targets whose
-- data did not change since the last refresh, computed for the others.
-- Called while the sheet is refreshed, after the targets view was.
CREATE FUNCTION _campaign_sheet_revenue(campaign text)
RETURNS TABLE (customer_code text, month date, revenue numeric)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    c customer_analytics.campaigns := customer_analytics._campaign(campaign);
    d record := customer_analytics._campaign_changes(c);
    sheet regclass := to_regclass(format('%I.%I', c.view_schema, c.name || '_monthly'));
    targets text := format('%I.%I', c.view_schema, c.name || '_targets');
    months text;
BEGIN
    IF d.usable AND customer_analytics._view_reusable(sheet,
           (SELECT s.monthly_view FROM customer_analytics.campaign_refresh_state s WHERE s.campaign = c.name)) THEN
        -- unchanged targets: their months, unpivoted from the sheet's columns
        SELECT string_agg(format('(%L::date, m.%I)', p.month, p.column_name), ', ' ORDER BY p.month)
          INTO months FROM customer_analytics.pivot_months(c.revenue_window) p;
        RETURN QUERY EXECUTE format(
            'SELECT m.customer_code, v.month, v.revenue FROM %s m, LATERAL (VALUES %s) v(month, revenue)'
            ' WHERE NOT (m.customer_code = ANY ($1))',
            sheet, months) USING d.changed;
        IF cardinality(d.changed) > 0 THEN
            RETURN QUERY EXECUTE format(
                'SELECT r.customer_code, r.month, r.revenue FROM customer_analytics.monthly_revenue('
                'ARRAY(SELECT t.customer_code FROM %s t WHERE t.customer_code = ANY ($1)), $2, $3) r',
                targets) USING d.changed, c.revenue_window, c.source_schema;
        END IF;
        RETURN;
    END IF;
    RETURN QUERY EXECUTE format(
        'SELECT r.customer_code, r.month, r.revenue FROM customer_analytics.monthly_revenue('
        'ARRAY(SELECT t.customer_code FROM %s t), $1, $2) r', targets)
        USING c.revenue_window, c.source_schema;
END $$;
COMMENT ON FUNCTION _campaign_sheet_revenue IS
'revenue per target and month for a campaign''s monthly sheet, recomputing only targets changed since the last refresh';

-- As in 1.0, with the revenue read through _campaign_sheet_revenue().
CREATE OR REPLACE FUNCTION _build_monthly_view(c campaigns) RETURNS void
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
        'FROM %1$I.%4$I t LEFT JOIN customer_analytics._campaign_sheet_revenue(%5$L) m USING (customer_code) '
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

-- As in 1.1, and the state names the monthly view it describes.
CREATE OR REPLACE FUNCTION refresh_campaign(campaign text, concurrently boolean DEFAULT true)
RETURNS campaigns
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    c customer_analytics.campaigns := customer_analytics._campaign(campaign);
    started timestamptz := clock_timestamp();
    snap pg_snapshot;
    d record;
    r customer_analytics.rollups;
BEGIN
    -- refreshes of one source take turns (readers never wait): the dirty
    -- set is pruned below, and no other refresh may be between snapshot
    -- and state
    PERFORM pg_advisory_xact_lock(hashtext('customer_analytics.refresh'), hashtext(c.source_schema));
    -- taken before the views are computed: every change it sees, they see
    SELECT pg_current_snapshot() INTO snap;
    d := customer_analytics._campaign_changes(c);
    PERFORM customer_analytics._refresh_views(c.view_schema, customer_analytics._campaign_views(c.name),
                                              refresh_campaign.concurrently);

    SELECT * INTO r FROM customer_analytics.rollups x WHERE x.source_schema = c.source_schema;
    IF r IS NOT NULL AND (customer_analytics._rollup_for_reading(c.source_schema)).rollup IS NOT NULL THEN
        INSERT INTO customer_analytics.campaign_refresh_state AS s
        VALUES (c.name, customer_analytics._campaign_fingerprint(c),
                format('%I.%I', c.view_schema, c.name || '_targets')::regclass, r.generation, snap,
                format('%I.%I', c.view_schema, c.name || '_monthly')::regclass)
        ON CONFLICT ON CONSTRAINT campaign_refresh_state_pkey DO UPDATE
            SET fingerprint = excluded.fingerprint, targets_view = excluded.targets_view,
                generation = excluded.generation, snapshot = excluded.snapshot,
                monthly_view = excluded.monthly_view;
        PERFORM customer_analytics._prune_dirty(r);
    ELSE
        DELETE FROM customer_analytics.campaign_refresh_state s WHERE s.campaign = c.name;
    END IF;

    c := customer_analytics._record_refresh(c.name, started);
    -- the duration goes to the catalog (refresh_ms), not the message
    RAISE NOTICE 'campaign "%" refreshed%: % targets, % monthly rows',
        c.name, CASE WHEN refresh_campaign.concurrently THEN ' concurrently' ELSE '' END
                || CASE WHEN r IS NULL THEN ''
                        WHEN d.usable THEN format(' incrementally (%s changed customers)', cardinality(d.changed))
                        ELSE ' in full (' || d.reason || ')' END,
        c.target_rows, c.monthly_rows;
    RETURN c;
END $$;
