-- campaigns.sql
--	Campaigns: stored targeting definitions and their materialized views (targets, the monthly sheet, its long form).

-- alter_campaign()'s work on the campaign's objects, as its owner: the
-- catalog row changed from old to c (the fields named in changed), the
-- sheet rebuilt when its columns move, readers' grants, then a refresh.
CREATE FUNCTION customer_analytics._alter_campaign_as_owner(old customer_analytics.campaigns, c customer_analytics.campaigns, changed text[]) RETURNS customer_analytics.campaigns
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    cols record;
    deps text;
BEGIN
    PERFORM customer_analytics._require_owner_context('campaign', old.name, old.owner);

    cols := customer_analytics._sheet_columns(c);
    deps := customer_analytics._sheet_dependents(c);
    IF cols.current_columns IS DISTINCT FROM cols.wanted_columns AND deps IS NOT NULL THEN
        -- new columns: refused before anything changes while a user's object depends on the sheet
        PERFORM customer_analytics._rebuild_sheet(c, cols.current_columns);
    END IF;

    UPDATE customer_analytics.campaigns SET
        routes = c.routes, spend_window = c.spend_window, min_spend = c.min_spend,
        low_ticket_window = c.low_ticket_window, low_ticket_below = c.low_ticket_below,
        min_low_tickets = c.min_low_tickets, base_window = c.base_window,
        recent_window = c.recent_window, decline_pct = c.decline_pct,
        exclude_closed = c.exclude_closed, route_source = c.route_source,
        revenue_window = c.revenue_window, readers = c.readers, source_schema = c.source_schema,
        rolling = c.rolling
     WHERE campaigns.name = c.name;

    IF cols.current_columns IS DISTINCT FROM cols.wanted_columns
       OR (deps IS NULL AND (c.revenue_window IS DISTINCT FROM old.revenue_window OR c.rolling IS DISTINCT FROM old.rolling)) THEN
        -- new columns (or, with nothing of a user's on it, a new window or
        -- spec for its comments): rebuild the sheet (and its plain view) in
        -- this transaction; readers wait for the commit and then see the
        -- new views, never a missing one.  Same months with a user's view
        -- on it: the sheet is kept (its columns and months are right)
        PERFORM customer_analytics._rebuild_sheet(c, cols.current_columns);
    END IF;
    PERFORM customer_analytics._ensure_long_view(c);
    IF c.readers IS DISTINCT FROM old.readers THEN
        PERFORM customer_analytics._grant_readers(c.view_schema, customer_analytics._campaign_views(c.name),
                                                  c.readers, old.readers);
    END IF;
    RAISE NOTICE 'campaign "%" changed: %', c.name, array_to_string(changed, ', ');
    RETURN customer_analytics._refresh_campaign_as_owner(c.name, true);
END $$;

-- create_campaign()'s build, as the campaign's owner (its creator): the
-- three views, readers' grants and the first record.
CREATE FUNCTION customer_analytics._build_campaign_as_owner(campaign text, started timestamp with time zone) RETURNS customer_analytics.campaigns
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    c customer_analytics.campaigns := customer_analytics._campaign(campaign);
BEGIN
    PERFORM customer_analytics._require_owner_context('campaign', c.name, c.owner);
    PERFORM customer_analytics._build_targets_view(c);
    PERFORM customer_analytics._build_monthly_view(c);
    PERFORM customer_analytics._build_long_view(c);
    PERFORM customer_analytics._grant_readers(c.view_schema, customer_analytics._campaign_views(c.name), c.readers);
    c := customer_analytics._record_refresh(c.name, started);
    PERFORM customer_analytics._record_history('campaign', c.name, c.owner, started, 'build', c.target_rows, NULL);
    RAISE NOTICE 'campaign "%" built: % (% rows), % (% rows)', c.name,
        format('%I.%I', c.view_schema, c.name || '_targets'), c.target_rows,
        format('%I.%I', c.view_schema, c.name || '_monthly'), c.monthly_rows;
    RETURN c;
END $$;

-- The fillfactor of a campaign's three materialized views and its month
-- state: the room each page keeps for the delta refresh's updates of the
-- rows of changed customers (_matview_apply, campaign_delta_state.c), which
-- change no indexed column and stay HOT (no new index entry, no uniqueness
-- check of the key, no row moved to another page) when the page has room
-- for the new version; full pages made most of them move (issue 25).
CREATE FUNCTION customer_analytics._campaign_view_fillfactor() RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$ SELECT 75 $$;

-- The long-form materialized view <name>_monthly_long: one row per target
-- and month of the revenue window, columns that never change.
CREATE FUNCTION customer_analytics._build_long_matview(c customer_analytics.campaigns) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
DECLARE
    v text := c.name || '_monthly_long';
BEGIN
    EXECUTE format('CREATE MATERIALIZED VIEW %1$I.%2$I WITH (fillfactor = %5$L) AS SELECT r.customer_code, r.month, r.revenue, r.orders '
                   'FROM customer_analytics._campaign_long_revenue(%3$L, ARRAY(SELECT t.customer_code FROM %1$I.%4$I t)) r '
                   'ORDER BY r.customer_code, r.month',
                   c.view_schema, v, c.name, c.name || '_targets', customer_analytics._campaign_view_fillfactor());
    EXECUTE format('CREATE UNIQUE INDEX %I ON %I.%I (customer_code, month)', v || '_key', c.view_schema, v);
    EXECUTE format('COMMENT ON MATERIALIZED VIEW %I.%I IS %L', c.view_schema, v,
        format('Monthly revenue of the targets of campaign %s in long form: one row per target and month of the '
               'revenue window (as resolved at the last refresh), columns that never change. '
               'Refresh: SELECT customer_analytics.refresh_campaign(%L).', c.name, c.name));
    EXECUTE format('COMMENT ON COLUMN %I.%I.customer_code IS %L', c.view_schema, v, 'customer code (campaign ' || c.name || ')');
    EXECUTE format('COMMENT ON COLUMN %I.%I.month IS %L', c.view_schema, v,
                   'first day of the month; the first and last month are cut to the revenue window');
    EXECUTE format('COMMENT ON COLUMN %I.%I.revenue IS %L', c.view_schema, v,
                   'revenue of confirmed orders (pretax) in the month, 0 without orders');
    EXECUTE format('COMMENT ON COLUMN %I.%I.orders IS %L', c.view_schema, v, 'confirmed orders in the month');
END $_$;

-- Build a campaign's long form <name>_monthly_long (one row per target and
-- month) and its plain _v view.
CREATE FUNCTION customer_analytics._build_long_view(c customer_analytics.campaigns) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
    PERFORM customer_analytics._report_progress(format('building %I.%I (campaign %s: long-form sheet, 3 of 3)',
                                                       c.view_schema, c.name || '_monthly_long', c.name));
    PERFORM customer_analytics._build_long_matview(c);
    PERFORM customer_analytics._build_bi_view(c.view_schema, c.name || '_monthly_long');
END $$;

-- Create a campaign's monthly sheet as a materialized view (one column per
-- month of its revenue window).
CREATE FUNCTION customer_analytics._build_monthly_matview(c customer_analytics.campaigns) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
DECLARE
    v text := c.name || '_monthly';
    t text := c.name || '_targets';
    m record;
    columns text := '';
    months date[];
BEGIN
    c := customer_analytics._campaign_resolved(c);
    months := ARRAY(SELECT p.month FROM customer_analytics.pivot_months(c.revenue_window) p ORDER BY p.month);
    FOR m IN SELECT * FROM customer_analytics.pivot_months(c.revenue_window) LOOP
        columns := columns || format(', COALESCE(sum(m.revenue) FILTER (WHERE m.month = %L::date), 0)::numeric AS %I',
                                     m.month, m.column_name);
    END LOOP;
    EXECUTE format(
        'CREATE MATERIALIZED VIEW %1$I.%2$I WITH (fillfactor = %7$L) AS '
        'SELECT t.customer_code, t.trade_name, t.delivery_route, COALESCE(t.csm, '''') AS csm, t.avg_ticket_size%3$s '
        'FROM %1$I.%4$I t LEFT JOIN customer_analytics._campaign_sheet_revenue(%5$L, %6$L::date[]) m USING (customer_code) '
        'GROUP BY t.customer_code, t.trade_name, t.delivery_route, t.csm, t.avg_ticket_size '
        'ORDER BY t.customer_code',
        c.view_schema, v, columns, t, c.name, months, customer_analytics._campaign_view_fillfactor());
    EXECUTE format('CREATE UNIQUE INDEX %I ON %I.%I (customer_code)', v || '_key', c.view_schema, v);
    EXECUTE format('COMMENT ON MATERIALIZED VIEW %I.%I IS %L', c.view_schema, v,
        format('Monthly revenue sheet of campaign %s (%s), one row per target. '
               'Refresh after %s: SELECT customer_analytics.refresh_campaign(%L).%s',
               c.name, customer_analytics._window_text(c.revenue_window), t, c.name,
               CASE WHEN c.rolling ? 'revenue_window'
                    THEN format(' Rolling window: refresh_campaign rebuilds this sheet when its months change; '
                                '%s has columns that never change.', c.name || '_monthly_long') ELSE '' END));
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
END $_$;

-- (Re)create the monthly sheet: one numeric column per month of the pivot
-- window, read from the targets view and monthly_revenue().
CREATE FUNCTION customer_analytics._build_monthly_view(c customer_analytics.campaigns) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
    PERFORM customer_analytics._report_progress(format('building %I.%I (campaign %s: monthly sheet, 2 of 3)',
                                                       c.view_schema, c.name || '_monthly', c.name));
    PERFORM customer_analytics._build_monthly_matview(c);
    PERFORM customer_analytics._build_bi_view(c.view_schema, c.name || '_monthly');
END $$;

-- Create a campaign's targets materialized view over campaign_targets().
CREATE FUNCTION customer_analytics._build_targets_matview(c customer_analytics.campaigns) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    v text := c.name || '_targets';
    col record;
BEGIN
    EXECUTE format('CREATE MATERIALIZED VIEW %I.%I WITH (fillfactor = %L) AS SELECT * FROM customer_analytics.campaign_targets(%L) ORDER BY customer_code',
                   c.view_schema, v, customer_analytics._campaign_view_fillfactor(), c.name);
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

-- The builders the campaign functions call: windows resolved.
CREATE FUNCTION customer_analytics._build_targets_view(c customer_analytics.campaigns) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
    PERFORM customer_analytics._report_progress(format('building %I.%I (campaign %s: targets, 1 of 3)',
                                                       c.view_schema, c.name || '_targets', c.name));
    PERFORM customer_analytics._build_targets_matview(customer_analytics._campaign_resolved(c));
    PERFORM customer_analytics._build_bi_view(c.view_schema, c.name || '_targets');
END $$;

-- One campaign's catalog row for a management call (owner, member or superuser).
CREATE FUNCTION customer_analytics._campaign(campaign text) RETURNS customer_analytics.campaigns
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    c customer_analytics.campaigns;
BEGIN
    SELECT * INTO c FROM customer_analytics.campaigns WHERE name = campaign;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'campaign "%" does not exist', campaign
            USING ERRCODE = 'undefined_object',
                  HINT = 'SELECT * FROM customer_analytics.list_campaigns() shows the campaigns.';
    END IF;
    PERFORM customer_analytics._require_definition_owner('campaign', c.name, c.owner);
    RETURN c;
END $$;

-- The fingerprint of a campaign's incremental state covers its revenue
-- window too, fixed or rolling: the sheet and the long form reuse the
-- months of unchanged targets, which are only right for the same window
-- (a window whose last day moved within the same month keeps the months
-- but not their sums).
CREATE FUNCTION customer_analytics._campaign_fingerprint(c customer_analytics.campaigns) RETURNS text
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    r customer_analytics.campaigns := customer_analytics._campaign_resolved(c);
BEGIN
    RETURN md5(ROW(r.source_schema, r.routes, r.spend_window, r.min_spend, r.low_ticket_window,
                   r.low_ticket_below, r.min_low_tickets, r.base_window, r.recent_window,
                   r.decline_pct, r.exclude_closed, r.route_source)::text
               || ' ' || r.revenue_window::text);
END $$;

-- The long form, incrementally like the sheet: the rows of targets whose
-- data did not change since the last refresh are read back from
-- <name>_monthly_long, only the changed targets' months are computed again
-- (it has a row per target and month: recomputed in full, it would cost
-- every refresh what the sheet saves).  The rows are reused only when the
-- incremental state holds,
-- the sheet is the one it describes, and the long form holds the months of
-- the current window.
CREATE FUNCTION customer_analytics._campaign_long_revenue(campaign text, customer_codes text[]) RETURNS TABLE(customer_code text, month date, revenue numeric, orders bigint)
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    SET row_security TO 'on'
    AS $_$
DECLARE
    c customer_analytics.campaigns := customer_analytics._campaign_resolved(customer_analytics._campaign_to_run(campaign));
    d record := customer_analytics._campaign_changes(c);
    long regclass := to_regclass(format('%I.%I', c.view_schema, c.name || '_monthly_long'));
    sheet regclass := to_regclass(format('%I.%I', c.view_schema, c.name || '_monthly'));
    first_month date;
    last_month date;
    reusable boolean := false;
    recompute text[];
BEGIN
    IF d.usable AND customer_analytics._view_reusable(sheet,
           (SELECT s.monthly_view FROM customer_analytics.campaign_refresh_state s WHERE s.campaign = c.name))
       AND long IS NOT NULL AND (SELECT relispopulated FROM pg_class WHERE oid = long)
       AND has_table_privilege(long, 'SELECT') THEN
        EXECUTE format('SELECT min(l.month), max(l.month) FROM %s l', long) INTO first_month, last_month;
        reusable := first_month = (SELECT min(p.month) FROM customer_analytics.pivot_months(c.revenue_window) p)
                AND last_month = (SELECT max(p.month) FROM customer_analytics.pivot_months(c.revenue_window) p);
    END IF;
    IF NOT reusable THEN
        RETURN QUERY SELECT * FROM customer_analytics.monthly_revenue(customer_codes, c.revenue_window, c.source_schema);
        RETURN;
    END IF;
    -- unchanged targets: their rows as the long form holds them
    RETURN QUERY EXECUTE format(
        'SELECT l.customer_code, l.month, l.revenue, l.orders FROM %s l'
        ' WHERE l.customer_code = ANY ($1) AND NOT (l.customer_code = ANY ($2))', long)
        USING customer_codes, d.changed;
    -- changed targets, and any target the long form does not hold yet
    EXECUTE format(
        'SELECT COALESCE(array_agg(x), ''{}'') FROM unnest($1) x'
        ' WHERE x = ANY ($2) OR NOT EXISTS (SELECT 1 FROM %s l WHERE l.customer_code = x)', long)
        INTO recompute USING customer_codes, d.changed;
    IF cardinality(recompute) > 0 THEN
        RETURN QUERY SELECT * FROM customer_analytics.monthly_revenue(recompute, c.revenue_window, c.source_schema);
    END IF;
END $_$;

-- Sheets built before: no months to check.
CREATE FUNCTION customer_analytics._campaign_sheet_revenue(campaign text) RETURNS TABLE(customer_code text, month date, revenue numeric)
    LANGUAGE sql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    SET row_security TO 'on'
    AS $$
    SELECT * FROM customer_analytics._campaign_sheet_revenue(campaign, NULL::date[])
$$;

COMMENT ON FUNCTION customer_analytics._campaign_sheet_revenue(campaign text) IS 'revenue per target and month for a campaign''s monthly sheet, recomputing only targets changed since the last refresh';

-- Sheets built before: no months to check.
CREATE FUNCTION customer_analytics._campaign_sheet_revenue(campaign text, sheet_months date[]) RETURNS TABLE(customer_code text, month date, revenue numeric)
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    SET row_security TO 'on'
    AS $_$
DECLARE
    c customer_analytics.campaigns := customer_analytics._campaign_resolved(customer_analytics._campaign_to_run(campaign));
    d record := customer_analytics._campaign_changes(c);
    sheet regclass := to_regclass(format('%I.%I', c.view_schema, c.name || '_monthly'));
    targets text := format('%I.%I', c.view_schema, c.name || '_targets');
    months text;
BEGIN
    IF sheet_months IS NOT NULL
       AND sheet_months IS DISTINCT FROM ARRAY(SELECT p.month FROM customer_analytics.pivot_months(c.revenue_window) p ORDER BY p.month) THEN
        RAISE EXCEPTION 'the revenue window of campaign "%" moved to %: the columns of %.% are for other months',
                        c.name, customer_analytics._window_text(c.revenue_window), c.view_schema, c.name || '_monthly'
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = format('Refresh the campaign with SELECT customer_analytics.refresh_campaign(%L), which rebuilds the sheet '
                                'with the new month columns; %s has columns that never change.', c.name,
                                format('%I.%I', c.view_schema, c.name || '_monthly_long'));
    END IF;
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
END $_$;

COMMENT ON FUNCTION customer_analytics._campaign_sheet_revenue(campaign text, sheet_months date[]) IS 'revenue per target and month for a campaign''s monthly sheet built for sheet_months, recomputing only targets changed since the last refresh';

-- One campaign's catalog row to compute from: only its owner computes it.
CREATE FUNCTION customer_analytics._campaign_to_run(campaign text) RETURNS customer_analytics.campaigns
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    c customer_analytics.campaigns := customer_analytics._campaign(campaign);
BEGIN
    PERFORM customer_analytics._require_definition_runner('campaign', c.name, c.owner);
    RETURN c;
END $$;

-- A campaign's views, in refresh order: the sheet and the long form read the targets.
CREATE FUNCTION customer_analytics._campaign_views(campaign text) RETURNS text[]
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT ARRAY[campaign || '_targets', campaign || '_monthly', campaign || '_monthly_long'] $$;

-- Refuse a campaign definition with a bad argument (names, windows,
-- thresholds, route source, rolling spec) before anything is stored.
CREATE FUNCTION customer_analytics._check_campaign(c customer_analytics.campaigns) RETURNS void
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
    PERFORM customer_analytics._check_view_owner('campaign', c.name, c.view_schema, c.readers,
                                                 '<name>_targets, <name>_monthly and <name>_monthly_long');
    PERFORM customer_analytics._check_view_grants('campaign', c.owner, c.view_schema, c.readers);
    PERFORM customer_analytics._check_rolling(c.rolling);
    c := customer_analytics._campaign_resolved(c);
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
END $$;

-- drop_campaign()'s work, as the campaign's owner: its views, state, history
-- and catalog row.
CREATE FUNCTION customer_analytics._drop_campaign_as_owner(campaign text) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    c customer_analytics.campaigns := customer_analytics._campaign(campaign);
    l customer_analytics.campaign_launches := customer_analytics._campaign_launch(campaign);
BEGIN
    PERFORM customer_analytics._require_owner_context('campaign', c.name, c.owner);
    -- a launched campaign's views first (the lift reads the response); its
    -- launch row and members go with the catalog row (ON DELETE CASCADE)
    IF l.campaign IS NOT NULL THEN
        PERFORM customer_analytics._drop_views(c.view_schema,
            ARRAY(SELECT v FROM unnest(customer_analytics._launch_views(c.name)) WITH ORDINALITY u(v, i) ORDER BY i DESC));
    END IF;
    PERFORM customer_analytics._drop_views(c.view_schema,
        ARRAY[c.name || '_monthly_long', c.name || '_monthly', c.name || '_targets']);
    PERFORM customer_analytics._drop_campaign_state(c);
    PERFORM customer_analytics._drop_marked_tables(customer_analytics._state_schema(),
                                                   ARRAY[customer_analytics._launch_months_name(c)],
                                                   customer_analytics._launch_months_marker(c));
    DELETE FROM customer_analytics.refresh_history h WHERE h.kind = 'campaign' AND h.name = c.name;
    DELETE FROM customer_analytics.campaigns WHERE name = c.name;
    RAISE NOTICE 'campaign "%" dropped with its views %, % and %', c.name,
        format('%I.%I', c.view_schema, c.name || '_targets'), format('%I.%I', c.view_schema, c.name || '_monthly'),
        format('%I.%I', c.view_schema, c.name || '_monthly_long') ||
        CASE WHEN l.campaign IS NOT NULL
             THEN format(', and its launch: %s members and the views %s', l.treatment_members + l.holdout_members,
                         (SELECT string_agg(format('%I.%I', c.view_schema, v), ', ')
                            FROM unnest(customer_analytics._launch_views(c.name)) v))
             ELSE '' END;
END $$;

-- DROP each view in order; RESTRICT: a user's own view on top of ours stops
-- the drop instead of vanishing with it
CREATE FUNCTION customer_analytics._drop_views(view_schema text, views text[]) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    v text;
    bi regclass;
BEGIN
    FOREACH v IN ARRAY views LOOP
        bi := customer_analytics._bi_view(view_schema, v);
        IF bi IS NOT NULL THEN
            EXECUTE format('DROP VIEW %s', bi);
        END IF;
        EXECUTE format('DROP MATERIALIZED VIEW IF EXISTS %I.%I', view_schema, v);
    END LOOP;
END $$;

-- Campaigns built before the long form get it at their next refresh (or
-- alter), as their owner.  true when it was built.
CREATE FUNCTION customer_analytics._ensure_long_view(c customer_analytics.campaigns) RETURNS boolean
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
    IF to_regclass(format('%I.%I', c.view_schema, c.name || '_monthly_long')) IS NOT NULL THEN
        RETURN false;
    END IF;
    PERFORM customer_analytics._build_long_view(c);
    PERFORM customer_analytics._grant_readers(c.view_schema, ARRAY[c.name || '_monthly_long'], c.readers);
    RETURN true;
END $$;

-- The view machinery every named analysis shares: grants, refresh, row
-- counts, drop, and scheduling (below).
CREATE FUNCTION customer_analytics._grant_readers(view_schema text, views text[], readers text[], revoke_from text[] DEFAULT '{}'::text[]) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    r text;
    v text;
    rel text;
    bi regclass;
BEGIN
    -- readers need the schema too (_check_view_grants: the owner may grant
    -- it when a reader lacks it); it is not revoked later, other objects may need it
    FOREACH r IN ARRAY readers LOOP
        IF NOT has_schema_privilege(r, view_schema, 'USAGE') THEN
            EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', view_schema, r);
        END IF;
    END LOOP;
    FOREACH v IN ARRAY views LOOP
        bi := customer_analytics._bi_view(view_schema, v);
        FOREACH rel IN ARRAY ARRAY[format('%I.%I', view_schema, v)] || CASE WHEN bi IS NULL THEN '{}'::text[] ELSE ARRAY[bi::text] END LOOP
            FOREACH r IN ARRAY revoke_from LOOP
                IF to_regrole(quote_ident(r)) IS NOT NULL THEN
                    EXECUTE format('REVOKE SELECT ON %s FROM %I', rel, r);
                END IF;
            END LOOP;
            FOREACH r IN ARRAY readers LOOP
                EXECUTE format('GRANT SELECT ON %s TO %I', rel, r);
            END LOOP;
        END LOOP;
    END LOOP;
END $$;

-- Rebuild a campaign's sheet (and its plain view) for new month columns,
-- refusing while a user's object depends on it: never CASCADE.
CREATE FUNCTION customer_analytics._rebuild_sheet(c customer_analytics.campaigns, old_columns text) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    deps text := customer_analytics._sheet_dependents(c);
    r customer_analytics.campaigns := customer_analytics._campaign_resolved(c);
    new_columns text := (SELECT string_agg(p.column_name, ', ' ORDER BY p.month)
                           FROM customer_analytics.pivot_months(r.revenue_window) p);
BEGIN
    IF deps IS NOT NULL THEN
        RAISE EXCEPTION 'cannot rebuild %.% of campaign "%" with new month columns: % depends on it',
                        c.view_schema, c.name || '_monthly', c.name, deps
            USING ERRCODE = 'dependent_objects_still_exist',
                  DETAIL = format('The revenue window is now %s: the sheet''s columns become %s (now %s).',
                                  customer_analytics._window_text(r.revenue_window), new_columns,
                                  COALESCE(old_columns, 'none')),
                  HINT = format('Build it on %s (customer_code, month, revenue, orders: columns that never change) '
                                'or on %s instead, or drop it, then refresh again; customer_analytics never drops your objects.',
                                format('%I.%I', c.view_schema, c.name || '_monthly_long'),
                                format('%I.%I', c.view_schema, c.name || '_targets'));
    END IF;
    PERFORM customer_analytics._drop_views(c.view_schema, ARRAY[c.name || '_monthly']);
    PERFORM customer_analytics._build_monthly_view(c);
    PERFORM customer_analytics._grant_readers(c.view_schema, ARRAY[c.name || '_monthly'], c.readers);
    RAISE NOTICE 'campaign "%": monthly view rebuilt with columns %', c.name, new_columns;
END $$;

-- refresh_campaign()'s work, as the campaign's owner: decide the mode (from
-- the order changes, incremental, full), apply it, record it.
-- A campaign's per-customer state built again for its next refresh, from
-- its rollup r (one server), or from the shards of its coordinator schema
-- when r is NULL (_campaign_shard_build_state), and recorded in its
-- refresh state row.  When the state tables cannot be created (a table of
-- their name is in the state schema, or the campaign's owner may not
-- create tables there) a WARNING says why and the campaign keeps no state
-- (its refreshes then recompute the views).  resolved: c with its windows
-- resolved; the caller holds the refresh lock and has written the row.
CREATE FUNCTION customer_analytics._campaign_keep_built_state(c customer_analytics.campaigns, resolved customer_analytics.campaigns,
                                                              r customer_analytics.rollups) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    state record;
BEGIN
    PERFORM customer_analytics._report_progress(format('refresh_campaign(%L): building the per-customer state', c.name));
    -- (what is recorded when the state cannot be built)
    SELECT NULL::regclass AS state, NULL::regclass AS month_state, NULL::pg_snapshot AS snapshot INTO state;
    BEGIN
        IF r.id IS NULL THEN
            state := customer_analytics._campaign_shard_build_state(resolved);
        ELSE
            state := customer_analytics._campaign_build_state(resolved, r);
        END IF;
    EXCEPTION WHEN duplicate_table OR insufficient_privilege THEN
        RAISE WARNING 'campaign "%" keeps no per-customer state: %', c.name, SQLERRM
            USING HINT = format('Its refreshes recompute the views in full until this is fixed: drop or rename the table named, '
                                'or let the campaign''s owner create tables in schema %I; the next refresh builds the state.',
                                customer_analytics._state_schema());
    END;
    UPDATE customer_analytics.campaign_refresh_state x
       SET state_table = state.state, month_state_table = state.month_state, state_snapshot = state.snapshot
     WHERE x.campaign = c.name;
END $$;

-- After a campaign's refresh: keep its per-customer state for the next one
-- (when its rollup is usable): the refresh state row at at_snapshot, the
-- state tables built again unless the refresh applied the order changes to
-- them (applied_delta), the rollup's order changes pruned; or forget both.
CREATE FUNCTION customer_analytics._campaign_keep_state(c customer_analytics.campaigns, resolved customer_analytics.campaigns,
                                                        r customer_analytics.rollups, rollup_usable boolean,
                                                        at_snapshot pg_snapshot, applied_delta boolean) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
    IF rollup_usable THEN
        INSERT INTO customer_analytics.campaign_refresh_state AS x
        VALUES (c.name, customer_analytics._campaign_fingerprint(c),
                format('%I.%I', c.view_schema, c.name || '_targets')::regclass, r.generation,
                at_snapshot,
                format('%I.%I', c.view_schema, c.name || '_monthly')::regclass)
        ON CONFLICT ON CONSTRAINT campaign_refresh_state_pkey DO UPDATE
            SET fingerprint = excluded.fingerprint, targets_view = excluded.targets_view,
                generation = excluded.generation, snapshot = excluded.snapshot,
                monthly_view = excluded.monthly_view;
        IF applied_delta THEN
            UPDATE customer_analytics.campaign_refresh_state x SET state_snapshot = at_snapshot
             WHERE x.campaign = c.name;
        ELSIF customer_analytics._campaign_state_unsupported(resolved) IS NULL
              AND NOT customer_analytics._rollup_written_here(r) THEN
            -- (re)built from the rollup, for the next refresh
            PERFORM customer_analytics._campaign_keep_built_state(c, resolved, r);
        ELSE
            -- no state for now: what the tables hold is stale
            PERFORM customer_analytics._forget_campaign_state(c);
        END IF;
        PERFORM customer_analytics._prune_dirty(r);
    ELSE
        PERFORM customer_analytics._forget_campaign_state(c);
        DELETE FROM customer_analytics.campaign_refresh_state x WHERE x.campaign = c.name;
    END IF;

END $$;

-- After a campaign's refresh: record it (catalog row, refresh_history with
-- its mode) and say so.
CREATE FUNCTION customer_analytics._campaign_record_refresh(campaign text, started timestamp with time zone,
                                                            "concurrently" boolean, mode text)
RETURNS customer_analytics.campaigns
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    c customer_analytics.campaigns := customer_analytics._record_refresh(campaign, started);
    -- (a launched campaign's mode ends with what became of its response views)
    views text := split_part(mode, '; response views', 1);
    response text := substr(mode, length(views) + 1);
BEGIN
    PERFORM customer_analytics._record_history('campaign', c.name, c.owner, started, mode, c.target_rows, NULL);
    -- the duration goes to the catalog (refresh_ms), not the message
    RAISE NOTICE 'campaign "%" refreshed%: % targets, % monthly rows',
        c.name, CASE WHEN views LIKE 'delta (%' THEN ' from its order changes' || substr(views, length('delta') + 1)
                     ELSE CASE WHEN _campaign_record_refresh.concurrently THEN ' concurrently' ELSE '' END
                          || CASE WHEN views = 'full (no rollup)' THEN ''
                                  WHEN views LIKE 'incremental (%' THEN ' incrementally' || substr(views, length('incremental') + 1)
                                  ELSE ' in full' || substr(views, length('full') + 1) END END
                || response,
        c.target_rows, c.monthly_rows;
    RETURN c;
END $$;

-- A campaign's views computed again: REFRESH of the three, or, when the
-- sheet's months moved (rebuild), its targets refreshed, the sheet rebuilt
-- with the new month columns (from current_columns) and its long form
-- refreshed.
CREATE FUNCTION customer_analytics._campaign_recompute_views(c customer_analytics.campaigns, rebuild boolean,
                                                             current_columns text, "concurrently" boolean) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
    PERFORM customer_analytics._ensure_long_view(c);
    IF rebuild THEN
        PERFORM customer_analytics._refresh_views(c.view_schema, ARRAY[c.name || '_targets'], _campaign_recompute_views.concurrently);
        PERFORM customer_analytics._rebuild_sheet(c, current_columns);
        PERFORM customer_analytics._refresh_views(c.view_schema, ARRAY[c.name || '_monthly_long'], _campaign_recompute_views.concurrently);
    ELSE
        PERFORM customer_analytics._refresh_views(c.view_schema, customer_analytics._campaign_views(c.name),
                                                  _campaign_recompute_views.concurrently);
    END IF;
END $$;

CREATE FUNCTION customer_analytics._refresh_campaign_as_owner(campaign text, "concurrently" boolean) RETURNS customer_analytics.campaigns
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    c customer_analytics.campaigns := customer_analytics._campaign(campaign);
    resolved customer_analytics.campaigns;
    started timestamptz := clock_timestamp();
    snap pg_snapshot;
    d record;
    r customer_analytics.rollups;
    s customer_analytics.campaign_refresh_state;
    delta record;
    no_delta text;
    cols record;
    rebuild boolean := false;
    rollup_usable boolean;
    old_columns text;
    -- views left unpopulated (by a restore): refreshed in full, without CONCURRENTLY
    unpopulated text := customer_analytics._unpopulated_views(c.view_schema, customer_analytics._campaign_views(c.name));
    requested boolean := _refresh_campaign_as_owner.concurrently;
    launch_mode text;
BEGIN
    PERFORM customer_analytics._require_owner_context('campaign', c.name, c.owner);
    IF unpopulated IS NOT NULL THEN
        _refresh_campaign_as_owner.concurrently := false;
    END IF;
    SELECT NULL::pg_snapshot AS snapshot, NULL::bigint AS changed_customers, NULL::bigint AS order_changes INTO delta;
    -- refreshes of one source take turns (readers never wait): the dirty
    -- set is pruned below, and no other refresh may be between snapshot
    -- and state
    PERFORM pg_advisory_xact_lock(hashtext('customer_analytics.refresh'), hashtext(c.source_schema));
    -- taken before the views are computed: every change it sees, they see
    SELECT pg_current_snapshot() INTO snap;
    -- whether the kept rows can be reused; the changed customers are listed
    -- (a scan of the dirty rows) only if the delta path is not taken
    d := customer_analytics._campaign_changes(c, false);
    IF unpopulated IS NOT NULL THEN
        d.usable := false;
        d.reason := format('not populated: %s%s', unpopulated,
                           CASE WHEN requested THEN '; refreshed without CONCURRENTLY' ELSE '' END);
    END IF;
    IF c.rolling IS NOT NULL THEN
        cols := customer_analytics._sheet_columns(c);
        rebuild := cols.current_columns IS DISTINCT FROM cols.wanted_columns;
        old_columns := cols.current_columns;
        IF rebuild AND customer_analytics._sheet_dependents(c) IS NOT NULL THEN
            -- refuse before any work
            PERFORM customer_analytics._rebuild_sheet(c, cols.current_columns);
        END IF;
        IF rebuild THEN
            no_delta := 'the sheet''s months moved';
        END IF;
    END IF;
    SELECT * INTO r FROM customer_analytics.rollups x WHERE x.source_schema = c.source_schema;
    rollup_usable := r.id IS NOT NULL AND (customer_analytics._rollup_for_reading(c.source_schema)).rollup IS NOT NULL;
    resolved := customer_analytics._campaign_resolved(c);
    SELECT * INTO s FROM customer_analytics.campaign_refresh_state x WHERE x.campaign = c.name;
    -- a coordinator schema with per-shard rollups: from the shards' changes
    IF r IS NULL AND to_regclass(format('%I.rollup_changes', c.source_schema)) IS NOT NULL THEN
        RETURN customer_analytics._refresh_sharded_campaign(c, resolved, s, _refresh_campaign_as_owner.concurrently, started,
                                                             rebuild, old_columns);
    END IF;

    -- from the order changes when the state allows (readers never wait:
    -- rows are replaced in place), else the views are recomputed
    IF d.usable AND NOT rebuild THEN
        no_delta := COALESCE(customer_analytics._campaign_state_unsupported(resolved),
                             customer_analytics._campaign_state_problem(resolved, s));
        IF no_delta IS NULL THEN
            PERFORM customer_analytics._report_progress(format('refresh_campaign(%L): applying the order changes', c.name));
            delta := customer_analytics._campaign_delta_refresh(resolved, s, r);
            IF delta.snapshot IS NULL THEN
                no_delta := customer_analytics._rollup_delta_refused(r, s.state_snapshot);
                IF no_delta <> 'this transaction wrote to the source tables' THEN
                    d.usable := false;
                    d.reason := no_delta;
                END IF;
            END IF;
        END IF;
    END IF;
    IF delta.snapshot IS NULL THEN
        IF d.usable THEN
            d := customer_analytics._campaign_changes(c);
        END IF;
        PERFORM customer_analytics._campaign_recompute_views(c, rebuild, old_columns,
                                                             _refresh_campaign_as_owner.concurrently);
    END IF;

    PERFORM customer_analytics._campaign_keep_state(c, resolved, r, rollup_usable, COALESCE(delta.snapshot, snap),
                                                    delta.snapshot IS NOT NULL);
    -- a launched campaign's response views (its members never change), after
    -- the state: from the changed members when the delta replaced their rows,
    -- else in full, including the changes of the state just kept
    launch_mode := customer_analytics._refresh_launch_views(c, _refresh_campaign_as_owner.concurrently, s, delta.snapshot,
        (SELECT x.state_snapshot FROM customer_analytics.campaign_refresh_state x WHERE x.campaign = c.name));
    RETURN customer_analytics._campaign_record_refresh(c.name, started, _refresh_campaign_as_owner.concurrently,
        CASE WHEN unpopulated IS NOT NULL THEN 'full (' || d.reason || ')'
             WHEN r IS NULL THEN 'full (no rollup)'
             WHEN delta.snapshot IS NOT NULL
                 THEN format('delta (%s changed customers, %s order changes)', delta.changed_customers, delta.order_changes)
             WHEN d.usable THEN format('incremental (%s changed customers; histories recomputed: %s)',
                                       cardinality(d.changed), no_delta)
             ELSE 'full (' || d.reason || ')' END || launch_mode);
END $$;

-- The views of a definition that are materialized views not populated (a
-- restore whose REFRESH failed, a view made WITH NO DATA), as a list of
-- qualified names, or NULL: REFRESH ... CONCURRENTLY refuses them.
CREATE FUNCTION customer_analytics._unpopulated_views(view_schema text, views text[]) RETURNS text
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
#variable_conflict use_column
BEGIN
    RETURN (
    SELECT string_agg(format('%I.%I', view_schema, u.v), ', ' ORDER BY u.i)
      FROM unnest(views) WITH ORDINALITY u(v, i)
      JOIN pg_class c ON c.oid = to_regclass(format('%I.%I', view_schema, u.v))
     WHERE c.relkind = 'm' AND NOT c.relispopulated);
END
$$;

-- REFRESH each view in order (later views may read earlier ones); an
-- unpopulated view without CONCURRENTLY, which it cannot take
CREATE FUNCTION customer_analytics._refresh_views(view_schema text, views text[], "concurrently" boolean) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    v text;
    i int := 0;
BEGIN
    -- "concurrently" is a keyword: qualified
    IF _refresh_views.concurrently IS NULL THEN
        RAISE EXCEPTION 'concurrently must not be NULL' USING ERRCODE = 'null_value_not_allowed',
            HINT = 'true (the default) keeps the views readable during the refresh.';
    END IF;
    FOREACH v IN ARRAY views LOOP
        i := i + 1;
        PERFORM customer_analytics._report_progress(format('refreshing %I.%I%s (%s of %s)', view_schema, v,
            CASE WHEN _refresh_views.concurrently THEN ' concurrently' ELSE '' END, i, cardinality(views)));
        PERFORM customer_analytics._refresh_matview(format('%I.%I', view_schema, v)::regclass,
            _refresh_views.concurrently AND customer_analytics._unpopulated_views(view_schema, ARRAY[v]) IS NULL);
    END LOOP;
END $$;

-- The sheet's month columns as they are, and as the resolved window wants
-- them; NULL when there is no sheet.
CREATE FUNCTION customer_analytics._sheet_columns(c customer_analytics.campaigns, OUT current_columns text, OUT wanted_columns text) RETURNS record
    LANGUAGE sql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
    SELECT (SELECT string_agg(a.attname::text, ', ' ORDER BY a.attnum) FROM pg_attribute a
             WHERE a.attrelid = to_regclass(format('%I.%I', c.view_schema, c.name || '_monthly'))
               AND a.attnum > 0 AND NOT a.attisdropped AND a.attname ~ '^rev_[0-9]{4}_[0-9]{2}$'),
           (SELECT string_agg(p.column_name, ', ' ORDER BY p.month)
              FROM customer_analytics.pivot_months((customer_analytics._campaign_resolved(c)).revenue_window) p)
$_$;

-- The user objects that depend on a campaign's sheet or its plain view
-- (ours excluded), described for a message; NULL when none.
CREATE FUNCTION customer_analytics._sheet_dependents(c customer_analytics.campaigns) RETURNS text
    LANGUAGE sql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
    WITH ours AS (
        SELECT x FROM unnest(ARRAY[to_regclass(format('%I.%I', c.view_schema, c.name || '_monthly')),
                                   customer_analytics._bi_view(c.view_schema, c.name || '_monthly')]::oid[]) x
         WHERE x IS NOT NULL)
    SELECT string_agg(DISTINCT CASE WHEN d.classid = 'pg_rewrite'::regclass
                                    THEN (SELECT CASE k.relkind WHEN 'm' THEN 'materialized view ' ELSE 'view ' END
                                                 || k.oid::regclass::text
                                            FROM pg_rewrite r JOIN pg_class k ON k.oid = r.ev_class WHERE r.oid = d.objid)
                                    ELSE pg_describe_object(d.classid, d.objid, d.objsubid) END, ', ')
      FROM pg_depend d
     WHERE d.refclassid = 'pg_class'::regclass AND d.refobjid IN (SELECT x FROM ours) AND d.deptype = 'n'
       AND NOT (d.classid = 'pg_rewrite'::regclass
                AND (SELECT r.ev_class FROM pg_rewrite r WHERE r.oid = d.objid) IN (SELECT x FROM ours))
$$;

-- Can a campaign view's rows be reused: is it the view the refresh state
-- describes (same oid, not rebuilt since), populated and readable by the
-- caller?  false, never NULL, when either is missing.
CREATE FUNCTION customer_analytics._view_reusable(v regclass, described oid) RETURNS boolean
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
#variable_conflict use_column
BEGIN
    RETURN (
    SELECT COALESCE(v = described
                    AND (SELECT relispopulated FROM pg_class WHERE oid = v)
                    AND has_table_privilege(v, 'SELECT'), false));
END
$$;

-- true when one of the views' names is taken in the schema
CREATE FUNCTION customer_analytics._views_taken(view_schema text, views text[]) RETURNS boolean
    LANGUAGE sql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
    SELECT coalesce(bool_or(to_regclass(format('%I.%I', view_schema, v)) IS NOT NULL), false) FROM unnest(views) v
$$;

-- Change a campaign's stored parameters (arguments left NULL keep their
-- value.
CREATE FUNCTION customer_analytics.alter_campaign(name text, routes text[] DEFAULT NULL::text[], spend_window daterange DEFAULT NULL::daterange, min_spend numeric DEFAULT NULL::numeric, low_ticket_window daterange DEFAULT NULL::daterange, low_ticket_below numeric DEFAULT NULL::numeric, min_low_tickets integer DEFAULT NULL::integer, base_window daterange DEFAULT NULL::daterange, recent_window daterange DEFAULT NULL::daterange, decline_pct numeric DEFAULT NULL::numeric, exclude_closed boolean DEFAULT NULL::boolean, route_source text DEFAULT NULL::text, revenue_window daterange DEFAULT NULL::daterange, readers text[] DEFAULT NULL::text[], source_schema text DEFAULT NULL::text, rolling jsonb DEFAULT NULL::jsonb) RETURNS customer_analytics.campaigns
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    old customer_analytics.campaigns := customer_analytics._campaign(name);
    c customer_analytics.campaigns := old;
    changed text[] := '{}';
BEGIN
    -- a launched campaign's targets are frozen as its members
    PERFORM customer_analytics._require_not_launched(old.name, 'alter');
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
    c.rolling := CASE WHEN rolling IS NULL THEN old.rolling
                      WHEN jsonb_typeof(rolling) = 'null' THEN NULL ELSE rolling END;
    PERFORM customer_analytics._check_campaign(c);

    SELECT array_agg(n.key ORDER BY n.key) INTO changed
      FROM jsonb_each(to_jsonb(c)) n JOIN jsonb_each(to_jsonb(old)) o USING (key)
     WHERE n.value IS DISTINCT FROM o.value;
    IF changed IS NULL THEN
        RAISE NOTICE 'campaign "%" unchanged', c.name;
        RETURN old;
    END IF;
    RETURN customer_analytics._as_owner(old.owner,
        format('SELECT customer_analytics._alter_campaign_as_owner(%L::customer_analytics.campaigns, %L::customer_analytics.campaigns, %L::text[])',
               old, c, changed))::customer_analytics.campaigns;
END $$;

COMMENT ON FUNCTION customer_analytics.alter_campaign(name text, routes text[], spend_window daterange, min_spend numeric, low_ticket_window daterange, low_ticket_below numeric, min_low_tickets integer, base_window daterange, recent_window daterange, decline_pct numeric, exclude_closed boolean, route_source text, revenue_window daterange, readers text[], source_schema text, rolling jsonb) IS 'Change a campaign''s stored parameters (arguments left NULL keep their value; rolling => ''null'' returns to fixed windows) and refresh its views; new month columns rebuild the monthly view and its plain view';

-- monthly_revenue() for a campaign's current targets over its pivot window.
CREATE FUNCTION customer_analytics.campaign_monthly_revenue(campaign text, OUT customer_code text, OUT month date, OUT revenue numeric, OUT orders bigint) RETURNS SETOF record
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    c customer_analytics.campaigns := customer_analytics._campaign_resolved(customer_analytics._campaign_to_run(campaign));
BEGIN
    RETURN QUERY SELECT * FROM customer_analytics.monthly_revenue(
        ARRAY(SELECT t.customer_code FROM customer_analytics.campaign_targets(c.name) t),
        c.revenue_window, c.source_schema);
END $$;

COMMENT ON FUNCTION customer_analytics.campaign_monthly_revenue(campaign text, OUT customer_code text, OUT month date, OUT revenue numeric, OUT orders bigint) IS 'monthly_revenue() of the campaign''s targets over its revenue_window, computed now';

-- The targets of a campaign, computed now from its stored definition.  The
-- <name>_targets view selects from this, so a plain REFRESH recomputes it.
CREATE FUNCTION customer_analytics.campaign_targets(campaign text) RETURNS TABLE(customer_code text, trade_name text, delivery_route text, shipping_address text, csm text, total_spend numeric, total_orders bigint, low_ticket_count bigint, base_sales numeric, recent_sales numeric, pct_change numeric, target_reason text, is_low_ticket boolean, is_declining boolean, last_order_date date, avg_ticket_size numeric)
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    SET row_security TO 'on'
    AS $_$
DECLARE
    c customer_analytics.campaigns := customer_analytics._campaign_resolved(customer_analytics._campaign_to_run(campaign));
    d record := customer_analytics._campaign_changes(c);
BEGIN
    IF d.usable THEN
        -- unchanged customers keep their rows; changed ones are recomputed
        RETURN QUERY EXECUTE format('SELECT * FROM %I.%I t WHERE NOT (t.customer_code = ANY ($1))',
                                    c.view_schema, c.name || '_targets') USING d.changed;
        IF cardinality(d.changed) = 0 THEN
            RETURN;
        END IF;
    END IF;
    RETURN QUERY SELECT * FROM customer_analytics.target_customers(
        routes => c.routes, spend_window => c.spend_window, min_spend => c.min_spend,
        low_ticket_window => c.low_ticket_window, low_ticket_below => c.low_ticket_below,
        min_low_tickets => c.min_low_tickets, base_window => c.base_window,
        recent_window => c.recent_window, decline_pct => c.decline_pct,
        exclude_closed => c.exclude_closed, route_source => c.route_source,
        source_schema => c.source_schema,
        customers => CASE WHEN d.usable THEN d.changed END);
END $_$;

COMMENT ON FUNCTION customer_analytics.campaign_targets(campaign text) IS 'target_customers() with the parameters stored for the campaign';

-- Store a named campaign (fixed windows, or rolling => relative to the
-- refresh date) and build its materialized views <name>_targets,
-- <name>_monthly and <name>_monthly_long in view_schema.
CREATE FUNCTION customer_analytics.create_campaign(name text, view_schema text, routes text[] DEFAULT '{K1,K2,PS}'::text[], spend_window daterange DEFAULT '[2025-01-01,2026-01-01)'::daterange, min_spend numeric DEFAULT 1000, low_ticket_window daterange DEFAULT '[2025-09-15,2026-01-08)'::daterange, low_ticket_below numeric DEFAULT 3000, min_low_tickets integer DEFAULT 3, base_window daterange DEFAULT '[2025-08-31,2025-10-31)'::daterange, recent_window daterange DEFAULT '[2025-10-31,2026-01-01)'::daterange, decline_pct numeric DEFAULT 30, exclude_closed boolean DEFAULT false, route_source text DEFAULT 'customer'::text, revenue_window daterange DEFAULT '[2025-09-01,2026-01-08)'::daterange, readers text[] DEFAULT '{}'::text[], source_schema text DEFAULT NULL::text, rolling jsonb DEFAULT NULL::jsonb) RETURNS customer_analytics.campaigns
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    c customer_analytics.campaigns;
    started timestamptz := clock_timestamp();
BEGIN
    c.name := name; c.view_schema := view_schema;
    c.source_schema := customer_analytics._source_schema(source_schema);
    c.routes := routes; c.spend_window := spend_window; c.min_spend := min_spend;
    c.low_ticket_window := low_ticket_window; c.low_ticket_below := low_ticket_below;
    c.min_low_tickets := min_low_tickets; c.base_window := base_window; c.recent_window := recent_window;
    c.decline_pct := decline_pct; c.exclude_closed := exclude_closed; c.route_source := route_source;
    c.revenue_window := revenue_window; c.readers := readers; c.owner := current_user; c.created_at := now();
    c.rolling := CASE WHEN jsonb_typeof(rolling) = 'null' THEN NULL ELSE rolling END;
    PERFORM customer_analytics._check_campaign(c);
    BEGIN
        INSERT INTO customer_analytics.campaigns SELECT c.*;
    EXCEPTION WHEN unique_violation THEN
        RAISE EXCEPTION 'campaign "%" already exists', c.name
            USING ERRCODE = 'duplicate_object',
                  HINT = 'Change it with customer_analytics.alter_campaign(), or drop it first with customer_analytics.drop_campaign().';
    END;
    IF customer_analytics._views_taken(c.view_schema, customer_analytics._campaign_views(c.name)
                                       || ARRAY(SELECT customer_analytics._bi_view_name(v)
                                                  FROM unnest(customer_analytics._campaign_views(c.name)) v)) THEN
        RAISE EXCEPTION 'schema "%" already has a relation named %_targets, %_monthly or %_monthly_long (or their _v views)',
                        c.view_schema, c.name, c.name, c.name
            USING ERRCODE = 'duplicate_table',
                  HINT = 'Pick another campaign name or view schema; customer_analytics never replaces relations it did not build.';
    END IF;
    RETURN customer_analytics._as_owner(c.owner,
        format('SELECT customer_analytics._build_campaign_as_owner(%L, %L)', c.name, started))::customer_analytics.campaigns;
END $$;

COMMENT ON FUNCTION customer_analytics.create_campaign(name text, view_schema text, routes text[], spend_window daterange, min_spend numeric, low_ticket_window daterange, low_ticket_below numeric, min_low_tickets integer, base_window daterange, recent_window daterange, decline_pct numeric, exclude_closed boolean, route_source text, revenue_window daterange, readers text[], source_schema text, rolling jsonb) IS 'Store a named campaign (fixed windows, or rolling => relative to the refresh date) and build its materialized views <name>_targets, <name>_monthly and <name>_monthly_long in view_schema';

-- Drop a campaign, its two views and its scheduled refresh.
CREATE FUNCTION customer_analytics.drop_campaign(campaign text) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    c customer_analytics.campaigns := customer_analytics._campaign(campaign);
BEGIN
    IF customer_analytics._cron_job('campaign', c.name) IS NOT NULL THEN
        PERFORM customer_analytics.unschedule_campaign_refresh(c.name);
    END IF;
    PERFORM customer_analytics._as_owner(c.owner, format('SELECT customer_analytics._drop_campaign_as_owner(%L)', c.name));
END $$;

COMMENT ON FUNCTION customer_analytics.drop_campaign(campaign text) IS 'Drop a campaign, its two views and its scheduled refresh';

-- The campaigns, their views, windows (rolling ones resolved now), schedule
-- and next run (and, for a rolling campaign, the as_of and windows that run
-- will use), last refresh and refresh status (last_status,
-- last_success_at, last_error from refresh_history).
CREATE FUNCTION customer_analytics.list_campaigns() RETURNS TABLE(name text, view_schema text, targets_view text, monthly_view text, source_schema text, revenue_window daterange, owner name, schedule text, refreshed_at timestamp with time zone, refresh_ms numeric, target_rows bigint, monthly_rows bigint, last_status text, last_success_at timestamp with time zone, last_error text, last_error_at timestamp with time zone, monthly_long_view text, rolling jsonb, as_of date, spend_window daterange, low_ticket_window daterange, base_window daterange, recent_window daterange, next_run timestamp with time zone, schedule_runner text, next_run_as_of date, next_run_windows jsonb, launched_on date, ended_on date, treatment_members bigint, holdout_members bigint, lift_view text)
    LANGUAGE sql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
    SELECT c.name, c.view_schema, c.name || '_targets', c.name || '_monthly', c.source_schema,
           w.revenue_window, c.owner, r.schedule,
           c.refreshed_at, c.refresh_ms, c.target_rows, c.monthly_rows,
           l.last_status, l.last_success_at, l.last_error, l.last_error_at,
           c.name || '_monthly_long', c.rolling, w.as_of, w.spend_window,
           w.low_ticket_window, w.base_window, w.recent_window,
           r.next_run, r.runner, n.as_of,
           CASE WHEN n.as_of IS NOT NULL THEN
               jsonb_build_object('spend_window', n.spend_window, 'low_ticket_window', n.low_ticket_window,
                                  'base_window', n.base_window, 'recent_window', n.recent_window,
                                  'revenue_window', n.revenue_window) END,
           la.launched_on, la.ended_on, la.treatment_members, la.holdout_members,
           CASE WHEN la.campaign IS NOT NULL THEN c.name || '_lift' END
      FROM customer_analytics.campaigns c
      LEFT JOIN customer_analytics.campaign_launches la ON la.campaign = c.name
      CROSS JOIN LATERAL customer_analytics._campaign_windows(c) w
      CROSS JOIN LATERAL customer_analytics._last_refresh('campaign', c.name, c.owner) l
      LEFT JOIN LATERAL customer_analytics._schedule_status('campaign', c.name) r ON true
      -- what the next scheduled run will use: its own date, not the caller's
      -- "today" (nor the caller's as_of_date)
      LEFT JOIN LATERAL customer_analytics._campaign_windows(c, customer_analytics._next_run_as_of(c.rolling, r.next_run)) n
        ON customer_analytics._next_run_as_of(c.rolling, r.next_run) IS NOT NULL
     ORDER BY c.name
$$;

COMMENT ON FUNCTION customer_analytics.list_campaigns() IS 'The campaigns, their views, windows (rolling ones resolved now), schedule and next run (with the as_of date and windows a rolling campaign''s next run will use), last refresh and refresh status (last_status, last_success_at, last_error from refresh_history), and for a launched campaign its launch and end dates, arms and lift view';

-- Check the caller may refresh the campaign, then refresh it as its owner.
CREATE FUNCTION customer_analytics.refresh_campaign(campaign text, "concurrently" boolean DEFAULT true) RETURNS customer_analytics.campaigns
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    c customer_analytics.campaigns := customer_analytics._campaign(campaign);
BEGIN
    IF refresh_campaign.concurrently IS NULL THEN
        RAISE EXCEPTION 'concurrently must not be NULL' USING ERRCODE = 'null_value_not_allowed',
            HINT = 'true (the default) keeps the views readable during the refresh.';
    END IF;
    RETURN customer_analytics._as_owner(c.owner,
        format('SELECT customer_analytics._refresh_campaign_as_owner(%L, %L)', c.name, refresh_campaign.concurrently)
    )::customer_analytics.campaigns;
END $$;

COMMENT ON FUNCTION customer_analytics.refresh_campaign(campaign text, "concurrently" boolean) IS 'Recompute a campaign''s views (CONCURRENTLY by default: readers are never blocked) and record the refresh; a rolling campaign whose revenue months moved gets its sheet rebuilt';
