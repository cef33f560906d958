-- campaign_launch.sql
--	Launched campaigns: frozen members with a random holdout, the contact list, and the response views.

-- A launched campaign's views, in refresh order (the lift reads the response).
CREATE FUNCTION customer_analytics._launch_views(campaign text) RETURNS text[]
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT ARRAY[campaign || '_contact_list', campaign || '_response', campaign || '_lift', campaign || '_response_monthly'] $$;

-- The launch row of a campaign, or NULL (a row of NULLs) when it was never launched.
CREATE FUNCTION customer_analytics._campaign_launch(campaign text) RETURNS customer_analytics.campaign_launches
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    SET row_security TO 'on'
    AS $$
#variable_conflict use_column
BEGIN
    RETURN (
    SELECT l FROM customer_analytics.campaign_launches l WHERE l.campaign = _campaign_launch.campaign);
END
$$;

-- The launch row of a campaign that must have been launched (55000 otherwise).
CREATE FUNCTION customer_analytics._require_launched(campaign text) RETURNS customer_analytics.campaign_launches
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    l customer_analytics.campaign_launches := customer_analytics._campaign_launch(campaign);
BEGIN
    IF l.campaign IS NULL THEN
        RAISE EXCEPTION 'campaign "%" has not been launched', campaign
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = format('Launch it first: SELECT * FROM customer_analytics.launch_campaign(%L);', campaign);
    END IF;
    RETURN l;
END $$;

-- The refusal of what a launched campaign no longer allows (its targets are
-- frozen as members): launching again, changing its parameters.
CREATE FUNCTION customer_analytics._require_not_launched(campaign text, action text) RETURNS void
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    l customer_analytics.campaign_launches := customer_analytics._campaign_launch(campaign);
BEGIN
    IF l.campaign IS NOT NULL THEN
        RAISE EXCEPTION 'cannot % campaign "%": it was launched on %', action, campaign, to_char(l.launched_on, 'YYYY-MM-DD')
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = format('Its %s members (%s in the holdout) are frozen so that its response can be measured.',
                                  l.treatment_members + l.holdout_members, l.holdout_members),
                  HINT = 'Create a new campaign (customer_analytics.create_campaign) for other targets or parameters; '
                         'end this one with customer_analytics.end_campaign().';
    END IF;
END $$;

-- The measurement and baseline windows of a launched campaign: the given
-- ones, or by default [launched_on, ended_on) (up to today, excluded, while
-- it runs) and as many days just before launched_on.
CREATE FUNCTION customer_analytics._launch_windows(l customer_analytics.campaign_launches, measure_window daterange, baseline_window daterange, OUT measure daterange, OUT baseline daterange) RETURNS record
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
    IF measure_window IS NOT NULL AND (isempty(measure_window) OR lower_inf(measure_window) OR upper_inf(measure_window)) THEN
        RAISE EXCEPTION 'measure_window must be a bounded, non-empty daterange'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = format('For example measure_window => ''[%s,%s)'', or NULL for the default [launched_on, ended_on).',
                                to_char(l.launched_on, 'YYYY-MM-DD'), to_char(l.launched_on + 28, 'YYYY-MM-DD'));
    END IF;
    IF baseline_window IS NOT NULL AND (isempty(baseline_window) OR lower_inf(baseline_window) OR upper_inf(baseline_window)) THEN
        RAISE EXCEPTION 'baseline_window must be a bounded, non-empty daterange'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Or NULL: as many days as the measure window, just before launched_on.';
    END IF;
    measure := COALESCE(measure_window,
                        daterange(l.launched_on, GREATEST(l.launched_on, COALESCE(l.ended_on, current_date)), '[)'));
    baseline := COALESCE(baseline_window,
                         CASE WHEN isempty(measure) THEN 'empty'::daterange
                              ELSE daterange(l.launched_on - (upper(measure) - lower(measure)), l.launched_on, '[)') END);
END $$;

-- Refuse a launch's arguments (22004, 22023, 42703) before anything is stored.
CREATE FUNCTION customer_analytics._check_launch(c customer_analytics.campaigns, holdout_share numeric, launched_on date, seed text, stratify_by text[]) RETURNS void
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    targets regclass := to_regclass(format('%I.%I', c.view_schema, c.name || '_targets'));
    columns text[];
    col text;
BEGIN
    IF holdout_share IS NULL OR launched_on IS NULL OR seed IS NULL OR stratify_by IS NULL
       OR array_position(stratify_by, NULL) IS NOT NULL THEN
        RAISE EXCEPTION 'holdout_share, launched_on, seed and stratify_by must not be NULL'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Leave them out for the defaults: holdout_share => 0.10, launched_on => current_date, '
                         'seed => '''', stratify_by => ''{target_reason,delivery_route}'' (''{}'' for no strata).';
    END IF;
    IF holdout_share <= 0 OR holdout_share >= 1 THEN
        RAISE EXCEPTION 'holdout_share must be greater than 0 and less than 1, not %', holdout_share
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'It is the share of each stratum held out from the promo, for example 0.10; '
                         'without a holdout the response cannot be measured.';
    END IF;
    IF cardinality(stratify_by) <> (SELECT count(DISTINCT s) FROM unnest(stratify_by) s) THEN
        RAISE EXCEPTION 'stratify_by names a column twice: %', stratify_by
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Name each column once.';
    END IF;
    columns := ARRAY(SELECT a.attname::text FROM pg_attribute a
                      WHERE a.attrelid = targets AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum);
    FOREACH col IN ARRAY stratify_by LOOP
        IF col IN ('customer_code', 'arm', 'stratum', 'baseline_revenue', 'revenue', 'baseline_orders', 'orders',
                   'baseline_low_tickets', 'low_tickets') THEN
            RAISE EXCEPTION 'cannot stratify by "%"', col
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Stratify by the targets'' attributes, for example target_reason, delivery_route or csm.';
        END IF;
        IF NOT col = ANY (columns) THEN
            RAISE EXCEPTION 'campaign "%" has no target column "%" to stratify by', c.name, col
                USING ERRCODE = 'undefined_column',
                      HINT = 'The columns of ' || targets::text || ': ' || array_to_string(columns, ', ') || '.';
        END IF;
    END LOOP;
END $$;

-- launch_campaign()'s work, as the campaign's owner: the targets of
-- <name>_targets frozen as members (the assignment of the README, in one
-- query), the minimum detectable effect, the four views.
CREATE FUNCTION customer_analytics._launch_campaign_as_owner(campaign text, holdout_share numeric, launched_on date, seed text, stratify_by text[]) RETURNS customer_analytics.campaign_launches
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    SET row_security TO 'on'
    AS $_$
DECLARE
    c customer_analytics.campaigns := customer_analytics._campaign(campaign);
    l customer_analytics.campaign_launches;
    strata text;
    nt bigint;
    nh bigint;
BEGIN
    PERFORM customer_analytics._require_owner_context('campaign', c.name, c.owner);
    -- launches and refreshes of one source take turns: the members are the
    -- targets of one refresh
    PERFORM pg_advisory_xact_lock(hashtext('customer_analytics.refresh'), hashtext(c.source_schema));
    PERFORM customer_analytics._require_not_launched(c.name, 'launch');
    PERFORM customer_analytics._check_launch(c, holdout_share, launched_on, seed, stratify_by);
    IF customer_analytics._views_taken(c.view_schema, customer_analytics._launch_views(c.name)
                                       || ARRAY(SELECT customer_analytics._bi_view_name(v)
                                                  FROM unnest(customer_analytics._launch_views(c.name)) v)) THEN
        RAISE EXCEPTION 'schema "%" already has a relation named %_contact_list, %_response, %_lift or %_response_monthly (or their _v views)',
                        c.view_schema, c.name, c.name, c.name, c.name
            USING ERRCODE = 'duplicate_table',
                  HINT = 'Drop or rename it first; customer_analytics never replaces relations it did not build.';
    END IF;
    BEGIN
        INSERT INTO customer_analytics.campaign_launches
               (campaign, holdout_share, launched_on, seed, stratify_by, treatment_members, holdout_members)
        VALUES (c.name, holdout_share, launched_on, seed, stratify_by, 0, 0);
    EXCEPTION WHEN unique_violation THEN
        -- a launch that committed while this one waited
        PERFORM customer_analytics._require_not_launched(c.name, 'launch');
        RAISE;
    END;
    SELECT COALESCE(string_agg(format('COALESCE(t.%I::text, %L)', s, ''), ', ' ORDER BY i), '')
      INTO strata FROM unnest(stratify_by) WITH ORDINALITY u(s, i);
    -- within each stratum: ordered by md5(seed:code), then code (bytewise);
    -- the first round(share x size) (halves up) are the holdout
    EXECUTE format(
        'INSERT INTO customer_analytics.campaign_members AS m '
        '(campaign, customer_code, arm, strata, trade_name, delivery_route, csm, target_reason, is_low_ticket, is_declining) '
        'SELECT $1, x.customer_code, CASE WHEN x.rank <= x.holdout THEN ''holdout'' ELSE ''treatment'' END, x.strata, '
        '       x.trade_name, x.delivery_route, x.csm, x.target_reason, x.is_low_ticket, x.is_declining '
        '  FROM (SELECT y.*, row_number() OVER (PARTITION BY y.strata ORDER BY md5($2 || '':'' || y.customer_code), '
        '                                                                     y.customer_code COLLATE "C") AS rank, '
        '               round($3 * count(*) OVER (PARTITION BY y.strata)) AS holdout '
        '          FROM (SELECT t.customer_code, t.trade_name, t.delivery_route, t.csm, t.target_reason, t.is_low_ticket, '
        '                       t.is_declining, ARRAY[%s]::text[] AS strata FROM %I.%I t) y) x',
        strata, c.view_schema, c.name || '_targets') USING c.name, seed, holdout_share;
    SELECT count(*) FILTER (WHERE m.arm = 'treatment'), count(*) FILTER (WHERE m.arm = 'holdout') INTO nt, nh
      FROM customer_analytics.campaign_members m WHERE m.campaign = c.name;
    IF nt + nh = 0 THEN
        RAISE EXCEPTION 'campaign "%" has no targets to launch', c.name
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = format('Refresh it (customer_analytics.refresh_campaign(%L)) or widen its parameters first.', c.name);
    END IF;
    IF nh = 0 OR nt = 0 THEN
        RAISE EXCEPTION 'a holdout share of % leaves the % arm of campaign "%" empty (% targets)', holdout_share,
                        CASE WHEN nh = 0 THEN 'holdout' ELSE 'treatment' END, c.name, nt + nh
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Each stratum holds out round(holdout_share x its size): choose another holdout_share, '
                         'or stratify by fewer columns (stratify_by => ''{}'' for none).';
    END IF;
    UPDATE customer_analytics.campaign_launches x SET treatment_members = nt, holdout_members = nh
     WHERE x.campaign = c.name;
    l := customer_analytics._launch_mde(c, customer_analytics._campaign_launch(c.name));
    PERFORM customer_analytics._build_launch_views(c, l);
    PERFORM customer_analytics._launch_record_state(c,
        (SELECT x.state_snapshot FROM customer_analytics.campaign_refresh_state x WHERE x.campaign = c.name));
    PERFORM customer_analytics._grant_readers(c.view_schema, customer_analytics._launch_views(c.name), c.readers);
    RAISE NOTICE 'campaign "%" launched on %: % in treatment, % in holdout; revenue MDE % (baseline sd %, %)',
        c.name, to_char(l.launched_on, 'YYYY-MM-DD'), nt, nh, round(l.revenue_mde::numeric, 2), round(l.baseline_revenue_sd::numeric, 2),
        customer_analytics._window_text(l.mde_baseline_window);
    RETURN l;
END $_$;

-- The minimum detectable effect on revenue per member, stored in the launch
-- row: sd of the members' revenue in the baseline window of as many days as
-- the campaign's revenue_window (the measurement window is still open).
CREATE FUNCTION customer_analytics._launch_mde(c customer_analytics.campaigns, l customer_analytics.campaign_launches) RETURNS customer_analytics.campaign_launches
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    SET row_security TO 'on'
    AS $$
DECLARE
    rw daterange := (customer_analytics._campaign_resolved(c)).revenue_window;
    bw daterange := daterange(l.launched_on - (upper(rw) - lower(rw)), l.launched_on, '[)');
    sd float8;
BEGIN
    SELECT stddev_samp(COALESCE(o.revenue, 0)::float8) INTO sd
      FROM customer_analytics.campaign_members m
      LEFT JOIN customer_analytics._member_orders(c.source_schema,
                    ARRAY(SELECT x.customer_code FROM customer_analytics.campaign_members x WHERE x.campaign = c.name),
                    ARRAY[bw], c.low_ticket_below) o ON o.customer_code = m.customer_code
     WHERE m.campaign = c.name;
    UPDATE customer_analytics.campaign_launches x
       SET mde_baseline_window = bw, baseline_revenue_sd = sd,
           revenue_mde = customer_analytics.minimum_detectable_effect(sd, l.treatment_members, l.holdout_members)
     WHERE x.campaign = c.name
    RETURNING * INTO l;
    RETURN l;
END $$;

-- The contact list's rows: the treatment arm with the sheet's columns.
CREATE FUNCTION customer_analytics._campaign_contacts(campaign text) RETURNS TABLE(customer_code text, trade_name text, delivery_route text, csm text, target_reason text, is_low_ticket boolean, is_declining boolean)
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    SET row_security TO 'on'
    AS $$
DECLARE
    c customer_analytics.campaigns := customer_analytics._campaign_to_run(campaign);
BEGIN
    RETURN QUERY SELECT m.customer_code, m.trade_name, m.delivery_route, COALESCE(m.csm, ''), m.target_reason,
                        m.is_low_ticket, m.is_declining
                   FROM customer_analytics.campaign_members m
                  WHERE m.campaign = c.name AND m.arm = 'treatment'
                  ORDER BY m.customer_code;
END $$;

-- Each member's metrics in the baseline and measurement windows (zeros
-- included: intention to treat), from _member_orders().
CREATE FUNCTION customer_analytics._campaign_member_response(campaign text, measure_window daterange, baseline_window daterange) RETURNS TABLE(customer_code text, arm text, strata text[], stratum text, baseline_revenue numeric, revenue numeric, baseline_orders bigint, orders bigint, baseline_low_tickets bigint, low_tickets bigint)
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    SET row_security TO 'on'
    AS $$
BEGIN
    RETURN QUERY SELECT * FROM customer_analytics._campaign_member_rows(campaign, measure_window, baseline_window, NULL);
END $$;

-- _campaign_member_response()'s rows of the members among codes (NULL: of
-- every member), computed the same way: what the delta refresh of a
-- launched campaign puts in place of its changed members' rows.
CREATE FUNCTION customer_analytics._campaign_member_rows(campaign text, measure_window daterange, baseline_window daterange, codes text[]) RETURNS TABLE(customer_code text, arm text, strata text[], stratum text, baseline_revenue numeric, revenue numeric, baseline_orders bigint, orders bigint, baseline_low_tickets bigint, low_tickets bigint)
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    SET row_security TO 'on'
    AS $$
DECLARE
    c customer_analytics.campaigns := customer_analytics._campaign_to_run(campaign);
    l customer_analytics.campaign_launches := customer_analytics._require_launched(c.name);
    w record := customer_analytics._launch_windows(l, measure_window, baseline_window);
    -- the members listed, each probed through the members' key
    members text[] := CASE WHEN codes IS NULL
                           THEN ARRAY(SELECT x.customer_code FROM customer_analytics.campaign_members x WHERE x.campaign = c.name)
                           ELSE ARRAY(SELECT x.customer_code FROM unnest(codes) k(code)
                                        JOIN customer_analytics.campaign_members x ON x.campaign = c.name AND x.customer_code = k.code) END;
BEGIN
    -- every member (codes NULL) or the members listed: members holds their
    -- codes.  _member_orders gives one row per member and window; folded
    -- to one row per member, each probes the members' key (a join of the
    -- members against the window rows, whose count the planner cannot
    -- know, ran as a nested loop over every pair at scale 10: 3.3 s for
    -- 5,108 members)
    RETURN QUERY
    SELECT m.customer_code, m.arm, m.strata, array_to_string(m.strata, '/'),
           COALESCE(o.baseline_revenue, 0), COALESCE(o.revenue, 0), COALESCE(o.baseline_orders, 0),
           COALESCE(o.orders, 0), COALESCE(o.baseline_low_tickets, 0), COALESCE(o.low_tickets, 0)
      FROM (SELECT x.customer_code,
                   max(x.revenue) FILTER (WHERE x.window_index = 1) AS baseline_revenue,
                   max(x.revenue) FILTER (WHERE x.window_index = 2) AS revenue,
                   max(x.orders) FILTER (WHERE x.window_index = 1) AS baseline_orders,
                   max(x.orders) FILTER (WHERE x.window_index = 2) AS orders,
                   max(x.low_tickets) FILTER (WHERE x.window_index = 1) AS baseline_low_tickets,
                   max(x.low_tickets) FILTER (WHERE x.window_index = 2) AS low_tickets
              FROM customer_analytics._member_orders(c.source_schema, members,
                       ARRAY[w.baseline, w.measure], c.low_ticket_below) x
             GROUP BY x.customer_code) o
      JOIN customer_analytics.campaign_members m ON m.campaign = c.name AND m.customer_code = o.customer_code
     ORDER BY m.customer_code;
END $$;

-- The comparison of the arms over a relation of member rows (rel: a
-- <name>_response view or a call of _campaign_member_response): one row per
-- metric, for all members and per stratum, through arm_comparison().
CREATE FUNCTION customer_analytics._launch_comparison_sql(stratified boolean, rel text) RETURNS text
    LANGUAGE sql IMMUTABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
    SELECT format(
        'SELECT s.metric, CASE WHEN s.overall THEN ''all'' ELSE s.stratum END AS stratum, s.overall, '
        '(s.a).n_treatment, (s.a).n_holdout, (s.a).mean_treatment, (s.a).mean_holdout, (s.a).sd_treatment, '
        '(s.a).sd_holdout, (s.a).lift, (s.a).lift_pct, (s.a).se, (s.a).df, (s.a).ci_low, (s.a).ci_high, '
        '(s.a).p_value, (s.a).cuped_theta, (s.a).cuped_lift, (s.a).cuped_se, (s.a).cuped_ci_low, '
        '(s.a).cuped_ci_high, (s.a).cuped_p_value, (s.a).balance_p_value '
        'FROM (SELECT v.i, v.metric, %s, '
        '             customer_analytics.arm_comparison(v.y::float8, v.x::float8, r.arm = ''treatment'' '
        '                                               ORDER BY r.customer_code COLLATE "C") AS a '
        '        FROM %s r CROSS JOIN LATERAL (VALUES (1, ''revenue''::text, r.revenue, r.baseline_revenue), '
        '                                              (2, ''orders'', r.orders::numeric, r.baseline_orders::numeric), '
        '                                              (3, ''low_tickets'', r.low_tickets::numeric, r.baseline_low_tickets::numeric)) v(i, metric, y, x) '
        '       GROUP BY GROUPING SETS ((v.i, v.metric)%s)) s '
        'ORDER BY s.i, s.overall DESC, s.stratum COLLATE "C"',
        CASE WHEN stratified THEN 'r.stratum, GROUPING(r.stratum) = 1 AS overall' ELSE 'NULL::text AS stratum, true AS overall' END,
        rel, CASE WHEN stratified THEN ', (v.i, v.metric, r.stratum)' ELSE '' END)
$_$;

-- Revenue per month of each arm, from the baseline's first month to the
-- measurement's last (monthly_revenue(): months cut to the windows): from
-- the members' months that refresh_campaign() keeps (_launch_months_relation(),
-- as of its last refresh, as the lift is as of the response view), or from
-- the orders when that table is missing.
CREATE FUNCTION customer_analytics._campaign_response_monthly(campaign text) RETURNS TABLE(month date, arm text, members bigint, revenue numeric, mean_revenue numeric, in_measure_window boolean)
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    SET row_security TO 'on'
    AS $_$
DECLARE
    c customer_analytics.campaigns := customer_analytics._campaign_to_run(campaign);
    l customer_analytics.campaign_launches := customer_analytics._require_launched(c.name);
    w record := customer_analytics._launch_windows(l, NULL, NULL);
    months regclass := customer_analytics._launch_months_relation(c);
BEGIN
    IF isempty(w.measure) THEN
        RETURN;
    END IF;
    RETURN QUERY EXECUTE format(
        'SELECT r.month, m.arm, count(*), sum(r.revenue), sum(r.revenue) / count(*), r.month >= date_trunc(''month'', $2)::date'
        '  FROM customer_analytics.campaign_members m JOIN %s r ON r.customer_code = m.customer_code'
        ' WHERE m.campaign = $1 GROUP BY r.month, m.arm ORDER BY r.month, m.arm',
        COALESCE(months::text, format('customer_analytics.monthly_revenue(ARRAY(SELECT x.customer_code FROM customer_analytics.campaign_members x'
                                      ' WHERE x.campaign = $1), %L::daterange, %L)',
                                      customer_analytics._launch_months_range(w.measure, w.baseline), c.source_schema)))
        USING c.name, l.launched_on;
END $_$;

-- The months of <name>_response_monthly: from the baseline's first day to
-- the measurement's last.
CREATE FUNCTION customer_analytics._launch_months_range(measure daterange, baseline daterange) RETURNS daterange
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT daterange(lower(baseline), upper(measure), '[)') $$;

-- The comment that marks a table as a launched campaign's per-member months.
CREATE FUNCTION customer_analytics._launch_months_marker(c customer_analytics.campaigns) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT 'customer_analytics: per-member months of launched campaign ' || c.name $$;

-- The name of a launched campaign's per-member months table (in the state
-- schema, _state_schema(); prefixed as the campaign's state tables are).
CREATE FUNCTION customer_analytics._launch_months_name(c customer_analytics.campaigns) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT 'launch_months_' || c.name $$;

-- A launched campaign's per-member months table (_launch_months_name() in
-- the state schema, with its marker), or NULL when missing.
CREATE FUNCTION customer_analytics._launch_months_relation(c customer_analytics.campaigns) RETURNS regclass
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
#variable_conflict use_column
BEGIN
    RETURN (
    SELECT t FROM customer_analytics._marked_tables(customer_analytics._state_schema(),
                                                    ARRAY[customer_analytics._launch_months_name(c)],
                                                    customer_analytics._launch_months_marker(c)) t);
END
$$;

-- Create a launched campaign's per-member months table (_launch_months_name()
-- in the state schema: customer_code, month, revenue of each member as
-- monthly_revenue() gives them) unless it exists; error when another
-- relation has the name.  Returns it.
CREATE FUNCTION customer_analytics._launch_months_table(c customer_analytics.campaigns) RETURNS regclass
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    marker text := customer_analytics._launch_months_marker(c);
BEGIN
    PERFORM customer_analytics._require_state_schema('{USAGE,CREATE}');
    PERFORM customer_analytics._require_marked_or_absent(customer_analytics._state_schema(),
                                                         ARRAY[customer_analytics._launch_months_name(c)], marker,
                                                         'campaign', c.name, 'members'' months');
    RETURN customer_analytics._create_marked_table(customer_analytics._state_schema(), customer_analytics._launch_months_name(c),
        '(customer_code text, month date, revenue numeric, PRIMARY KEY (customer_code, month))', marker);
END $$;

-- Create a launched campaign's four materialized views (and their plain _v
-- views) with their comments.
CREATE FUNCTION customer_analytics._build_launch_views(c customer_analytics.campaigns, l customer_analytics.campaign_launches) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
DECLARE
    v text;
    refresh text := format('Refresh: SELECT customer_analytics.refresh_campaign(%L).', c.name);
    windows text := format('measurement window [launched_on %s, ended_on or today), baseline the same number of days just before',
                           to_char(l.launched_on, 'YYYY-MM-DD'));
    col record;
BEGIN
    v := c.name || '_contact_list';
    EXECUTE format('CREATE MATERIALIZED VIEW %I.%I AS SELECT * FROM customer_analytics._campaign_contacts(%L)',
                   c.view_schema, v, c.name);
    EXECUTE format('CREATE UNIQUE INDEX %I ON %I.%I (customer_code)', v || '_key', c.view_schema, v);
    EXECUTE format('COMMENT ON MATERIALIZED VIEW %I.%I IS %L', c.view_schema, v,
        format('Who to contact for campaign %s: its treatment arm (frozen at launch on %s; the holdout is not listed), '
               'with the sheet''s columns as at launch. %s', c.name, to_char(l.launched_on, 'YYYY-MM-DD'), refresh));

    v := c.name || '_response';
    EXECUTE format('CREATE MATERIALIZED VIEW %I.%I AS %s ORDER BY r.customer_code', c.view_schema, v,
                   customer_analytics._launch_response_sql(l, format('customer_analytics._campaign_member_response(%L, NULL, NULL)', c.name)));
    EXECUTE format('CREATE UNIQUE INDEX %I ON %I.%I (customer_code)', v || '_key', c.view_schema, v);
    EXECUTE format('COMMENT ON MATERIALIZED VIEW %I.%I IS %L', c.view_schema, v,
        format('Response of each member of campaign %s (both arms, members without orders as 0): %s. %s',
               c.name, windows, refresh));

    v := c.name || '_lift';
    EXECUTE format('CREATE MATERIALIZED VIEW %I.%I AS %s', c.view_schema, v,
                   customer_analytics._launch_comparison_sql(cardinality(l.stratify_by) > 0,
                                                             format('%I.%I', c.view_schema, c.name || '_response')));
    EXECUTE format('CREATE UNIQUE INDEX %I ON %I.%I (metric, overall, stratum)', v || '_key', c.view_schema, v);
    EXECUTE format('COMMENT ON MATERIALIZED VIEW %I.%I IS %L', c.view_schema, v,
        format('Did campaign %s work? Treatment against holdout per metric, for all members and per stratum (%s): '
               'Welch''s t-test, and after CUPED with the baseline; %s. %s',
               c.name, COALESCE(NULLIF(array_to_string(l.stratify_by, '/'), ''), 'none'), windows, refresh));

    v := c.name || '_response_monthly';
    PERFORM customer_analytics._launch_fill_months(c, NULL);
    EXECUTE format('CREATE MATERIALIZED VIEW %I.%I AS SELECT * FROM customer_analytics._campaign_response_monthly(%L)',
                   c.view_schema, v, c.name);
    EXECUTE format('CREATE UNIQUE INDEX %I ON %I.%I (month, arm)', v || '_key', c.view_schema, v);
    EXECUTE format('COMMENT ON MATERIALIZED VIEW %I.%I IS %L', c.view_schema, v,
        format('Revenue per month of each arm of campaign %s, from the baseline''s first month to the measurement''s last '
               '(first and last months cut to the windows). %s', c.name, refresh));

    FOR col IN SELECT * FROM (VALUES
        ('_contact_list', 'customer_code', 'customer code'),
        ('_contact_list', 'trade_name', 'trade name (at launch)'),
        ('_contact_list', 'delivery_route', 'delivery route (at launch)'),
        ('_contact_list', 'csm', 'customer success manager ('''' when none; at launch)'),
        ('_contact_list', 'target_reason', '低客單 (many low tickets) before 業績下滑 (declining sales), at launch'),
        ('_contact_list', 'is_low_ticket', 'met the low-ticket rule at launch'),
        ('_contact_list', 'is_declining', 'met the decline rule at launch'),
        ('_response', 'customer_code', 'customer code'),
        ('_response', 'arm', 'treatment or holdout'),
        ('_response', 'stratum', 'the stratify_by values joined by /'),
        ('_response', 'baseline_revenue', 'revenue of confirmed orders in the baseline window'),
        ('_response', 'revenue', 'revenue of confirmed orders in the measurement window'),
        ('_response', 'baseline_orders', 'confirmed orders in the baseline window'),
        ('_response', 'orders', 'confirmed orders in the measurement window'),
        ('_response', 'baseline_low_tickets', format('confirmed orders below %s in the baseline window', c.low_ticket_below)),
        ('_response', 'low_tickets', format('confirmed orders below %s in the measurement window', c.low_ticket_below)),
        ('_lift', 'metric', 'revenue, orders or low_tickets'),
        ('_lift', 'stratum', 'all, or the stratify_by values joined by /'),
        ('_lift', 'overall', 'true on the rows of all members'),
        ('_lift', 'lift', 'mean of treatment minus mean of holdout'),
        ('_lift', 'lift_pct', '100 x lift / mean of holdout; NULL when that is 0'),
        ('_lift', 'se', 'Welch''s standard error of the lift'),
        ('_lift', 'df', 'Welch-Satterthwaite degrees of freedom'),
        ('_lift', 'ci_low', 'lower bound of the 95 % confidence interval of the lift'),
        ('_lift', 'ci_high', 'upper bound of the 95 % confidence interval of the lift'),
        ('_lift', 'p_value', 'two-sided p-value of Welch''s t-test'),
        ('_lift', 'cuped_theta', 'CUPED theta = cov(baseline, metric) / var(baseline) over the row''s members (0 when var = 0)'),
        ('_lift', 'cuped_lift', 'lift of the metric after CUPED (Y - theta (X - mean X), X its baseline)'),
        ('_lift', 'balance_p_value', 'Welch''s p-value of the baseline metric between the arms (small: the arms differed before)'),
        ('_response_monthly', 'month', 'first day of the month'),
        ('_response_monthly', 'arm', 'treatment or holdout'),
        ('_response_monthly', 'members', 'members of the arm'),
        ('_response_monthly', 'revenue', 'revenue of the arm''s confirmed orders in the month'),
        ('_response_monthly', 'mean_revenue', 'revenue per member of the arm'),
        ('_response_monthly', 'in_measure_window', 'the month is that of launched_on or later')) AS t(view, name, text)
    LOOP
        EXECUTE format('COMMENT ON COLUMN %I.%I.%I IS %L', c.view_schema, c.name || col.view, col.name,
                       col.text || ' (campaign ' || c.name || ')');
    END LOOP;
    FOREACH v IN ARRAY customer_analytics._launch_views(c.name) LOOP
        PERFORM customer_analytics._build_bi_view(c.view_schema, v);
    END LOOP;
END $_$;

-- The <name>_response view's rows from a relation of member rows (rel:
-- a call of _campaign_member_response or _campaign_member_rows, alias r):
-- its columns, the strata as columns.
CREATE FUNCTION customer_analytics._launch_response_sql(l customer_analytics.campaign_launches, rel text) RETURNS text
    LANGUAGE sql IMMUTABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
    SELECT format('SELECT r.customer_code, r.arm%s, r.stratum, r.baseline_revenue, r.revenue, r.baseline_orders, r.orders,'
                  ' r.baseline_low_tickets, r.low_tickets FROM %s r',
                  (SELECT COALESCE(string_agg(format(', r.strata[%s] AS %I', i, s), '' ORDER BY i), '')
                     FROM unnest(l.stratify_by) WITH ORDINALITY u(s, i)), rel)
$$;

-- Fill a launched campaign's per-member months (created if missing) for its
-- current windows: of every member (codes NULL: the table emptied first) or
-- of the members among codes (their rows replaced).
CREATE FUNCTION customer_analytics._launch_fill_months(c customer_analytics.campaigns, codes text[]) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    months regclass := customer_analytics._launch_months_table(c);
    w record := customer_analytics._launch_windows(customer_analytics._require_launched(c.name), NULL, NULL);
BEGIN
    IF codes IS NULL THEN
        EXECUTE format('TRUNCATE %s', months);
    ELSE
        EXECUTE format('DELETE FROM %s m WHERE m.customer_code = ANY ($1)', months) USING codes;
    END IF;
    IF NOT isempty(w.measure) THEN
        EXECUTE format('INSERT INTO %s SELECT r.customer_code, r.month, r.revenue'
                       ' FROM customer_analytics.monthly_revenue($1, %L::daterange, %L) r',
                       months, customer_analytics._launch_months_range(w.measure, w.baseline), c.source_schema)
          USING COALESCE(codes, ARRAY(SELECT x.customer_code FROM customer_analytics.campaign_members x WHERE x.campaign = c.name));
    END IF;
END $$;

-- Record what a launched campaign's response views were just computed in
-- full for: its current windows, the response view and its file, and
-- base, the campaign's state snapshot whose changes they include (NULL:
-- none; the next refresh recomputes them in full).
CREATE FUNCTION customer_analytics._launch_record_state(c customer_analytics.campaigns, base pg_snapshot) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    w record := customer_analytics._launch_windows(customer_analytics._require_launched(c.name), NULL, NULL);
    v regclass := format('%I.%I', c.view_schema, c.name || '_response')::regclass;
BEGIN
    INSERT INTO customer_analytics.campaign_launch_state AS x
           (campaign, measure_window, baseline_window, response_view, response_filenode, state_snapshot, applied_members)
    VALUES (c.name, w.measure, w.baseline, v, pg_relation_filenode(v), base, NULL)
    ON CONFLICT ON CONSTRAINT campaign_launch_state_pkey DO UPDATE
       SET measure_window = excluded.measure_window, baseline_window = excluded.baseline_window,
           response_view = excluded.response_view, response_filenode = excluded.response_filenode,
           state_snapshot = excluded.state_snapshot, applied_members = NULL;
END $$;

-- Why a launched campaign's response views cannot follow the delta refresh
-- of the campaign from its state s (NULL: they can): they must have been
-- computed for the current windows (a running campaign's measurement
-- window ends today; end_campaign() closes it), by refresh_campaign() (not
-- refreshed or rebuilt by hand: the same view, file and per-member months),
-- as of the state's snapshot.
CREATE FUNCTION customer_analytics._launch_delta_problem(c customer_analytics.campaigns, s customer_analytics.campaign_refresh_state) RETURNS text
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    l customer_analytics.campaign_launches := customer_analytics._campaign_launch(c.name);
    x customer_analytics.campaign_launch_state;
    w record;
    v regclass := to_regclass(format('%I.%I', c.view_schema, c.name || '_response'));
BEGIN
    IF l.campaign IS NULL THEN
        RETURN 'not launched';
    END IF;
    SELECT * INTO x FROM customer_analytics.campaign_launch_state y WHERE y.campaign = c.name;
    w := customer_analytics._launch_windows(l, NULL, NULL);
    IF x.campaign IS NULL THEN
        RETURN 'no record of the response views';
    ELSIF x.measure_window <> w.measure OR x.baseline_window <> w.baseline THEN
        RETURN 'the measurement window moved';
    ELSIF v IS DISTINCT FROM x.response_view::regclass OR pg_relation_filenode(v) IS DISTINCT FROM x.response_filenode
          OR NOT (SELECT relispopulated FROM pg_class WHERE oid = v) THEN
        RETURN 'the response view was refreshed or rebuilt by hand';
    ELSIF customer_analytics._launch_months_relation(c) IS NULL THEN
        RETURN 'the members'' months are missing';
    ELSIF x.state_snapshot IS NULL OR s.state_snapshot IS NULL OR x.state_snapshot::text <> s.state_snapshot::text THEN
        RETURN 'the response views are not as of the campaign''s state';
    END IF;
    RETURN NULL;
END $$;

-- The hook of the campaign's delta refresh (_campaign_delta_refresh, from
-- its state s): the statements that bring a launched campaign's response up
-- to date at the delta's snapshot, run after the delta's own, or none when
-- they cannot (_launch_delta_problem: refresh_campaign then recomputes the
-- views in full).  The members among the changed customers
-- (pg_temp.customer_analytics_changed) get their <name>_response rows
-- recomputed (_campaign_member_rows) and replaced in place
-- (_matview_apply), and their months replaced in _launch_months_relation();
-- their count goes to campaign_launch_state.applied_members (negative, and
-- nothing replaced, past _launch_delta_max_fraction of the members), with
-- state_snapshot NULL until _refresh_launch_views records the delta's
-- snapshot or recomputes the views.
CREATE FUNCTION customer_analytics._launch_delta_sql(c customer_analytics.campaigns, s customer_analytics.campaign_refresh_state) RETURNS text[]
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    l customer_analytics.campaign_launches := customer_analytics._campaign_launch(c.name);
    w record;
    months regclass := customer_analytics._launch_months_relation(c);
    changed text := format('ARRAY(SELECT m.customer_code FROM pg_temp.customer_analytics_changed k'
                           ' JOIN customer_analytics.campaign_members m ON m.campaign = %L AND m.customer_code = k.customer_code)',
                           c.name);
BEGIN
    IF customer_analytics._launch_delta_problem(c, s) IS NOT NULL THEN
        RETURN '{}'::text[];
    END IF;
    w := customer_analytics._launch_windows(l, NULL, NULL);
    -- (SQL statements and STABLE functions only: they all read as of the
    -- delta's snapshot.)  First the count of the changed members, recorded
    -- negative past the share of the members where the full recompute is
    -- cheaper (_launch_delta_max_fraction): the statements after it then
    -- do nothing, and _refresh_launch_views recomputes the views.
    RETURN ARRAY[
        format('UPDATE customer_analytics.campaign_launch_state x SET state_snapshot = NULL,'
               ' applied_members = CASE WHEN n.n <= %s * (%s + %s) THEN n.n ELSE -greatest(n.n, 1) END'
               ' FROM (SELECT cardinality(%s)::bigint AS n) n WHERE x.campaign = %L',
               customer_analytics._launch_delta_max_fraction(), l.treatment_members, l.holdout_members, changed, c.name),
        format('SELECT customer_analytics._matview_apply(%L::regclass, %s, %L) FROM customer_analytics.campaign_launch_state x'
               ' WHERE x.campaign = %L AND x.applied_members >= 0',
               format('%I.%I', c.view_schema, c.name || '_response'), changed,
               customer_analytics._launch_response_sql(l,
                   format('customer_analytics._campaign_member_rows(%L, NULL, NULL, %s)', c.name, changed)), c.name),
        format('DELETE FROM %s m WHERE m.customer_code = ANY (%s) AND EXISTS (SELECT 1 FROM customer_analytics.campaign_launch_state x'
               ' WHERE x.campaign = %L AND x.applied_members >= 0)', months, changed, c.name)]
        || CASE WHEN isempty(w.measure) THEN '{}'::text[] ELSE ARRAY[
        format('INSERT INTO %s SELECT r.customer_code, r.month, r.revenue FROM customer_analytics.campaign_launch_state x,'
               ' customer_analytics.monthly_revenue(%s, %L::daterange, %L) r WHERE x.campaign = %L AND x.applied_members >= 0',
               months, changed, customer_analytics._launch_months_range(w.measure, w.baseline), c.source_schema, c.name)] END;
END $$;

-- Past this share of a launched campaign's members changed, its response
-- views are recomputed in full rather than from the changed members: on
-- the demo data at scale 10 (5,107 members), 330 changed members (6 %) took
-- a quarter of the full recompute's time and 2,215 (43 %) longer than it
-- (bench/README.md); both passes read the members' orders by date range
-- once the list is long.
CREATE FUNCTION customer_analytics._launch_delta_max_fraction() RETURNS numeric
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT 0.25 $$;

-- refresh_campaign()'s last step for a launched campaign (after its
-- state is kept), returning what the refresh mode says of it: when the
-- delta refresh (delta_snapshot, from the state s) replaced the changed
-- members' rows (_launch_delta_sql), the lift and the monthly response
-- are recomputed from them and the snapshot recorded; otherwise the four
-- views are recomputed in full and base recorded (the campaign's state
-- snapshot now: they include its changes).  The contact list never changes
-- after the launch: refreshed with the full recompute only.
CREATE FUNCTION customer_analytics._refresh_launch_views(c customer_analytics.campaigns, "concurrently" boolean, s customer_analytics.campaign_refresh_state, delta_snapshot pg_snapshot, base pg_snapshot) RETURNS text
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    x customer_analytics.campaign_launch_state;
    why text;
BEGIN
    IF (customer_analytics._campaign_launch(c.name)).campaign IS NULL THEN
        RETURN '';
    END IF;
    SELECT * INTO x FROM customer_analytics.campaign_launch_state y WHERE y.campaign = c.name;
    IF delta_snapshot IS NOT NULL AND x.state_snapshot IS NULL AND x.applied_members >= 0 THEN
        PERFORM customer_analytics._refresh_views(c.view_schema, ARRAY[c.name || '_lift', c.name || '_response_monthly'],
                                                  _refresh_launch_views.concurrently);
        UPDATE customer_analytics.campaign_launch_state y SET state_snapshot = delta_snapshot WHERE y.campaign = c.name;
        RETURN format('; response views from %s changed members', x.applied_members);
    END IF;
    IF delta_snapshot IS NOT NULL AND x.state_snapshot IS NULL AND x.applied_members < 0 THEN
        why := format('%s changed members, more than %s %% of the members: in full is cheaper',
                      -x.applied_members, round(100 * customer_analytics._launch_delta_max_fraction()));
    ELSIF delta_snapshot IS NOT NULL THEN
        why := customer_analytics._launch_delta_problem(c, s);
    END IF;
    PERFORM customer_analytics._launch_fill_months(c, NULL);
    PERFORM customer_analytics._refresh_views(c.view_schema, customer_analytics._launch_views(c.name),
                                              _refresh_launch_views.concurrently);
    PERFORM customer_analytics._launch_record_state(c, base);
    RETURN '; response views in full' || COALESCE(' (' || why || ')', '');
END $$;

-- end_campaign()'s work, as the campaign's owner.
CREATE FUNCTION customer_analytics._end_campaign_as_owner(campaign text, ended_on date) RETURNS customer_analytics.campaign_launches
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    SET row_security TO 'on'
    AS $$
DECLARE
    c customer_analytics.campaigns := customer_analytics._campaign(campaign);
    l customer_analytics.campaign_launches;
BEGIN
    PERFORM customer_analytics._require_owner_context('campaign', c.name, c.owner);
    -- refreshes of the source take turns with it: the response views are
    -- recomputed after the campaign's last refresh (their record says so)
    PERFORM pg_advisory_xact_lock(hashtext('customer_analytics.refresh'), hashtext(c.source_schema));
    SELECT * INTO l FROM customer_analytics.campaign_launches x WHERE x.campaign = c.name FOR UPDATE;
    IF NOT FOUND THEN
        l := customer_analytics._require_launched(c.name);
    END IF;
    IF l.ended_on IS NOT NULL THEN
        RAISE EXCEPTION 'campaign "%" already ended on %', c.name, to_char(l.ended_on, 'YYYY-MM-DD')
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = format('Its measurement is closed; SELECT * FROM customer_analytics.campaign_response(%L, measure_window => ...) '
                                'measures any other window.', c.name);
    END IF;
    IF ended_on IS NULL THEN
        RAISE EXCEPTION 'ended_on must not be NULL' USING ERRCODE = 'null_value_not_allowed',
            HINT = 'Leave it out for today.';
    END IF;
    IF ended_on <= l.launched_on THEN
        RAISE EXCEPTION 'ended_on % is not after launched_on %', to_char(ended_on, 'YYYY-MM-DD'), to_char(l.launched_on, 'YYYY-MM-DD')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'The measurement window is [launched_on, ended_on): give a later date.';
    END IF;
    UPDATE customer_analytics.campaign_launches x SET ended_on = _end_campaign_as_owner.ended_on
     WHERE x.campaign = c.name RETURNING * INTO l;
    -- the measurement window moved: the views in full
    PERFORM customer_analytics._launch_fill_months(c, NULL);
    PERFORM customer_analytics._refresh_views(c.view_schema, customer_analytics._launch_views(c.name), true);
    PERFORM customer_analytics._launch_record_state(c,
        (SELECT x.state_snapshot FROM customer_analytics.campaign_refresh_state x WHERE x.campaign = c.name));
    RAISE NOTICE 'campaign "%" ended on %: measured over [%, %)', c.name, to_char(l.ended_on, 'YYYY-MM-DD'),
        to_char(l.launched_on, 'YYYY-MM-DD'), to_char(l.ended_on, 'YYYY-MM-DD');
    RETURN l;
END $$;

-- campaign_response()'s work, as the campaign's owner: the rows as a jsonb
-- array (every float8 digit kept).
CREATE FUNCTION customer_analytics._campaign_response_as_owner(campaign text, measure_window daterange, baseline_window daterange) RETURNS jsonb
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    SET extra_float_digits TO '3'
    SET row_security TO 'on'
    AS $$
DECLARE
    c customer_analytics.campaigns := customer_analytics._campaign(campaign);
    l customer_analytics.campaign_launches := customer_analytics._require_launched(c.name);
    result jsonb;
BEGIN
    PERFORM customer_analytics._require_owner_context('campaign', c.name, c.owner);
    EXECUTE format('SELECT COALESCE(jsonb_agg(to_jsonb(x)), ''[]'') FROM (%s) x',
                   customer_analytics._launch_comparison_sql(cardinality(l.stratify_by) > 0,
                       format('customer_analytics._campaign_member_response(%L, %L, %L)', c.name, measure_window, baseline_window)))
      INTO result;
    RETURN result;
END $$;

-- Measure a launched campaign's response for any windows.
CREATE FUNCTION customer_analytics.campaign_response(name text, measure_window daterange DEFAULT NULL::daterange, baseline_window daterange DEFAULT NULL::daterange) RETURNS TABLE(metric text, stratum text, n_treatment bigint, n_holdout bigint, mean_treatment double precision, mean_holdout double precision, sd_treatment double precision, sd_holdout double precision, lift double precision, lift_pct double precision, se double precision, df double precision, ci_low double precision, ci_high double precision, p_value double precision, cuped_lift double precision, cuped_ci_low double precision, cuped_ci_high double precision, cuped_p_value double precision, balance_p_value double precision, cuped_theta double precision, cuped_se double precision, overall boolean)
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    c customer_analytics.campaigns := customer_analytics._campaign(name);
    l customer_analytics.campaign_launches := customer_analytics._require_launched(c.name);
    w record := customer_analytics._launch_windows(l, measure_window, baseline_window);
BEGIN
    RETURN QUERY
    SELECT x.metric, x.stratum, x.n_treatment, x.n_holdout, x.mean_treatment, x.mean_holdout, x.sd_treatment,
           x.sd_holdout, x.lift, x.lift_pct, x.se, x.df, x.ci_low, x.ci_high, x.p_value, x.cuped_lift,
           x.cuped_ci_low, x.cuped_ci_high, x.cuped_p_value, x.balance_p_value, x.cuped_theta, x.cuped_se, x.overall
      FROM jsonb_to_recordset(customer_analytics._as_owner(c.owner,
               format('SELECT customer_analytics._campaign_response_as_owner(%L, %L, %L)', c.name, w.measure, w.baseline))::jsonb)
           AS x(metric text, stratum text, overall boolean, n_treatment bigint, n_holdout bigint,
                mean_treatment float8, mean_holdout float8, sd_treatment float8, sd_holdout float8, lift float8,
                lift_pct float8, se float8, df float8, ci_low float8, ci_high float8, p_value float8,
                cuped_theta float8, cuped_lift float8, cuped_se float8, cuped_ci_low float8, cuped_ci_high float8,
                cuped_p_value float8, balance_p_value float8);
END $$;

COMMENT ON FUNCTION customer_analytics.campaign_response(name text, measure_window daterange, baseline_window daterange) IS 'Did a launched campaign work? Treatment against holdout for revenue, orders and low_tickets, for all members and per stratum, over any measurement window (default [launched_on, ended_on) or up to today) and baseline (default: as many days just before launched_on): Welch''s t-test, CUPED with the baseline, and a balance check';

-- Close a launched campaign's measurement.
CREATE FUNCTION customer_analytics.end_campaign(name text, ended_on date DEFAULT CURRENT_DATE) RETURNS customer_analytics.campaign_launches
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    c customer_analytics.campaigns := customer_analytics._campaign(name);
BEGIN
    RETURN customer_analytics._as_owner(c.owner,
        format('SELECT customer_analytics._end_campaign_as_owner(%L, %L)', c.name, ended_on))::customer_analytics.campaign_launches;
END $$;

COMMENT ON FUNCTION customer_analytics.end_campaign(name text, ended_on date) IS 'Close a launched campaign''s measurement window at ended_on (excluded) and refresh its response views';

-- Freeze a campaign's targets as members with a random, stratified holdout,
-- and build its contact list and response views.
CREATE FUNCTION customer_analytics.launch_campaign(name text, holdout_share numeric DEFAULT 0.10, launched_on date DEFAULT CURRENT_DATE, seed text DEFAULT ''::text, stratify_by text[] DEFAULT '{target_reason,delivery_route}'::text[]) RETURNS customer_analytics.campaign_launches
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    c customer_analytics.campaigns := customer_analytics._campaign(name);
BEGIN
    PERFORM customer_analytics._require_not_launched(c.name, 'launch');
    PERFORM customer_analytics._check_launch(c, holdout_share, launched_on, seed, stratify_by);
    RETURN customer_analytics._as_owner(c.owner,
        format('SELECT customer_analytics._launch_campaign_as_owner(%L, %L, %L, %L, %L)',
               c.name, holdout_share, launched_on, seed, stratify_by))::customer_analytics.campaign_launches;
END $$;

COMMENT ON FUNCTION customer_analytics.launch_campaign(name text, holdout_share numeric, launched_on date, seed text, stratify_by text[]) IS 'Freeze a campaign''s current targets (<name>_targets) as its members: within each stratum of stratify_by, ordered by md5(seed || '':'' || customer_code) then customer_code, the first round(holdout_share x size) are the holdout; builds <name>_contact_list, <name>_response, <name>_lift and <name>_response_monthly and returns the arms'' sizes and the minimum detectable effect on revenue';
