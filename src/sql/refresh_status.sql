-- refresh_status.sql
--	What every build and refresh records: the catalog row's counters, refresh_history, progress shown in pg_stat_activity.

-- How many rows each definition keeps (the C module defines the setting,
-- 1 to 1,000,000; before it is loaded an unset or malformed value is 100).
CREATE FUNCTION customer_analytics._history_keep() RETURNS integer
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
#variable_conflict use_column
BEGIN
    RETURN (
    SELECT CASE WHEN v ~ '^\s*[0-9]{1,7}\s*$' AND v::int >= 1 THEN v::int ELSE 100 END
      FROM (SELECT current_setting('customer_analytics.refresh_history_keep', true) AS v) s);
END
$_$;

-- A row may be written only for an existing definition, by its owner.
CREATE FUNCTION customer_analytics._history_writable(kind text, name text, owner name) RETURNS boolean
    LANGUAGE sql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
    SELECT customer_analytics._is_definition_owner(owner)
       AND owner IN (SELECT c.owner FROM customer_analytics.campaigns c WHERE kind = 'campaign' AND c.name = $2
                     UNION ALL
                     SELECT s.owner FROM customer_analytics.segmentations s WHERE kind = 'segmentation' AND s.name = $2)
$_$;

-- The last refresh of a definition, and the last successful one: its
-- status is succeeded, failed or interrupted (a dispatcher's run whose
-- process ended before it finished), and while a dispatcher's claim of it
-- is open, running (or interrupted, once that process is gone, before the
-- next dispatcher records it).
CREATE FUNCTION customer_analytics._last_refresh(kind text, name text, owner name, OUT last_status text, OUT last_success_at timestamp with time zone, OUT last_error text, OUT last_error_at timestamp with time zone) RETURNS record
    LANGUAGE sql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
    SELECT COALESCE(c.state,
                    (SELECT CASE WHEN h.succeeded THEN 'succeeded'
                                 WHEN h.error LIKE 'interrupted:%' THEN 'interrupted' ELSE 'failed' END
                       FROM customer_analytics.refresh_history h
                      WHERE h.kind = $1 AND h.name = $2 AND h.owner = $3 ORDER BY h.id DESC LIMIT 1)),
           (SELECT max(h.started_at) FROM customer_analytics.refresh_history h
             WHERE h.kind = $1 AND h.name = $2 AND h.owner = $3 AND h.succeeded),
           CASE WHEN c.state = 'interrupted' THEN c.error ELSE f.error END,
           CASE WHEN c.state = 'interrupted' THEN c.claimed_at ELSE f.started_at END
      FROM (SELECT 1) one
      LEFT JOIN LATERAL (SELECT h.error, h.started_at FROM customer_analytics.refresh_history h
                          WHERE h.kind = $1 AND h.name = $2 AND h.owner = $3 AND NOT h.succeeded
                          ORDER BY h.id DESC LIMIT 1) f ON true
      LEFT JOIN LATERAL customer_analytics._schedule_claim($1, $2, $3) c ON true
$_$;

-- What a refresh record says when the session pinned "today": a
-- definition whose rolling windows follow "today", refreshed or built while
-- customer_analytics.as_of_date is set, was computed at that date, not the
-- current one (a scheduled run too: run_scheduled_refresh and the
-- dispatcher refresh in the session that calls them).  NULL otherwise.
CREATE FUNCTION customer_analytics._pinned_today_note(kind text, name text) RETURNS text
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    spec jsonb;
BEGIN
    IF btrim(COALESCE(customer_analytics._checked_setting('customer_analytics.as_of_date'), '')) = '' THEN
        RETURN NULL;
    END IF;
    SELECT c.rolling INTO spec FROM customer_analytics.campaigns c
     WHERE kind = 'campaign' AND c.name = _pinned_today_note.name
    UNION ALL
    SELECT s.rolling FROM customer_analytics.segmentations s
     WHERE kind = 'segmentation' AND s.name = _pinned_today_note.name;
    IF spec IS NULL OR COALESCE(spec ->> 'as_of', 'today') <> 'today' THEN
        RETURN NULL;
    END IF;
    RETURN format('today pinned to %s (customer_analytics.as_of_date)', to_char(customer_analytics._as_of_today(), 'YYYY-MM-DD'));
END $$;

COMMENT ON FUNCTION customer_analytics._pinned_today_note(kind text, name text) IS 'internal: what refresh_history.mode adds when a rolling definition following "today" was computed with customer_analytics.as_of_date set, else NULL';

-- What a refresh record says when a window holds no orders at all: a
-- campaign's or segmentation's windows, resolved as the build or refresh
-- just did (a rolling window whose "today" lies after the source's last
-- order gives 0 rows without a word otherwise), each checked for one
-- confirmed order of the stored source by _window_has_orders(), which reads
-- it as the refresh did (its trust checks, the rollup when readable, and
-- their errors: the refresh has just read the same source); a WARNING with
-- a HINT, and "no orders in spend_window, recent_window" for
-- refresh_history.mode.  NULL when every window holds orders.
CREATE FUNCTION customer_analytics._empty_windows_note(kind text, name text) RETURNS text
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    c customer_analytics.campaigns;
    s customer_analytics.segmentations;
    src text;
    as_of date;
    windows jsonb;
    names text[];
    ranges daterange[];
    has_orders boolean[];
    empty text[];
    last_order date;
BEGIN
    IF kind = 'campaign' THEN
        SELECT * INTO c FROM customer_analytics.campaigns x WHERE x.name = _empty_windows_note.name;
        IF NOT FOUND THEN
            RETURN NULL;
        END IF;
        SELECT r.as_of, jsonb_build_object('spend_window', r.spend_window, 'low_ticket_window', r.low_ticket_window,
                                           'base_window', r.base_window, 'recent_window', r.recent_window,
                                           'revenue_window', r.revenue_window)
          INTO as_of, windows FROM customer_analytics._campaign_windows(c) r;
        src := c.source_schema;
    ELSE
        SELECT * INTO s FROM customer_analytics.segmentations x WHERE x.name = _empty_windows_note.name;
        IF NOT FOUND THEN
            RETURN NULL;
        END IF;
        SELECT r.as_of, jsonb_build_object('feature_window', r.feature_window)
          INTO as_of, windows FROM customer_analytics._segmentation_windows(s) r;
        src := s.source_schema;
    END IF;
    SELECT array_agg(n.key ORDER BY n.ord), array_agg((windows ->> n.key)::daterange ORDER BY n.ord)
      INTO names, ranges
      FROM unnest(customer_analytics._rolling_window_names() || 'feature_window'::text) WITH ORDINALITY n(key, ord)
     WHERE windows ->> n.key IS NOT NULL;
    IF names IS NULL THEN
        RETURN NULL;
    END IF;
    SELECT o.has_orders, o.last_order INTO has_orders, last_order
      FROM customer_analytics._window_has_orders(src, ranges) o;
    SELECT array_agg(names[i] ORDER BY i) INTO empty
      FROM generate_subscripts(names, 1) i WHERE NOT has_orders[i];
    IF empty IS NULL THEN
        RETURN NULL;
    END IF;
    RAISE WARNING '% "%": no orders in %', kind, name, array_to_string(empty, ', ')
        USING DETAIL = format('%s last confirmed order in %I.sales_orders is of %s.',
                              COALESCE('The windows were resolved as of ' || to_char(as_of, 'YYYY-MM-DD') || '; the', 'The'), src,
                              COALESCE(to_char(last_order, 'YYYY-MM-DD'), '(none)')),
              HINT = CASE WHEN as_of IS NOT NULL AND (kind = 'campaign' AND c.rolling IS NOT NULL OR kind = 'segmentation' AND s.rolling IS NOT NULL)
                          THEN 'A rolling window after the last order holds none until newer orders are loaded; to compute at an earlier date, SET customer_analytics.as_of_date in the session (for a scheduled run: in the job''s command or the dispatcher''s session), or give the definition a rolling spec with a pinned as_of.'
                          ELSE format('Give it windows that hold orders (customer_analytics.alter_%s()), or load the orders of these windows.', kind) END;
    RETURN 'no orders in ' || array_to_string(empty, ', ');
END $$;

COMMENT ON FUNCTION customer_analytics._empty_windows_note(kind text, name text) IS 'internal: at a build or refresh, warn (with a HINT) and say for refresh_history.mode which of a definition''s resolved windows hold no confirmed order at all ("no orders in spend_window"), else NULL';

-- What took the time: every phase a build or refresh reports (the
-- progress shown in pg_stat_activity) is timed, and the refresh history
-- keeps them with the refresh.
CREATE FUNCTION customer_analytics._progress_phases() RETURNS jsonb
    LANGUAGE c
    AS 'MODULE_PATHNAME', 'progress_phases';

COMMENT ON FUNCTION customer_analytics._progress_phases() IS 'internal: the phases reported in this transaction since the last call, with their durations ([{"phase", "ms"}]), then forgotten';

-- Record one refresh and prune the definition's older rows.  Its phases:
-- those reported in this transaction, unless given (a failure recorded
-- after its transaction was rolled back).
CREATE FUNCTION customer_analytics._record_history(kind text, name text, owner name, started timestamp with time zone, mode text, rows bigint, error text, phases jsonb DEFAULT NULL::jsonb) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    keep int := customer_analytics._history_keep();
BEGIN
    INSERT INTO customer_analytics.refresh_history
           (kind, name, owner, started_at, duration_ms, via, mode, rows, succeeded, error, phases)
    VALUES (kind, name, owner, started, round(extract(epoch FROM clock_timestamp() - started) * 1000, 1),
            COALESCE(NULLIF(current_setting('customer_analytics.refresh_via', true), ''), 'function'),
            -- a pinned "today" is said, never silent (NULL mode: a failure)
            mode || COALESCE('; ' || customer_analytics._pinned_today_note(kind, name), '')
                 -- (at a build or full refresh, which read every order anyway: a
                 -- refresh from the changes keeps the windows it was built with)
                 || CASE WHEN mode = 'build' OR mode LIKE 'full%'
                         THEN COALESCE('; ' || customer_analytics._empty_windows_note(kind, name), '') ELSE '' END,
            rows, error IS NULL, error, COALESCE(_record_history.phases, customer_analytics._progress_phases()));
    DELETE FROM customer_analytics.refresh_history h
     WHERE h.kind = _record_history.kind AND h.name = _record_history.name
       AND h.id < (SELECT min(x.id) FROM (SELECT y.id FROM customer_analytics.refresh_history y
                                            WHERE y.kind = _record_history.kind AND y.name = _record_history.name
                                            ORDER BY y.id DESC LIMIT keep) x);
END $$;

-- Record a campaign's refresh in its catalog row (when, how long, how many
-- rows) and return the row.  Each view's row count is kept from the last
-- refresh's (campaign_refresh_state.view_rows) plus the rows _matview_apply
-- added since, as long as the view's catalog row is the version the count
-- was recorded with (a REFRESH, by this refresh or by hand, writes a new
-- one: the view is then counted again), and as long as the campaign's
-- catalog row holds the same counts (anything that recorded other counts
-- without keeping these, an older version of the extension say, has the
-- views counted again); the counts and versions are kept for the next
-- refresh.
CREATE FUNCTION customer_analytics._record_refresh(campaign text, started timestamp with time zone) RETURNS customer_analytics.campaigns
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    c customer_analytics.campaigns := customer_analytics._campaign(campaign);
    kept jsonb := (SELECT x.view_rows FROM customer_analytics.campaign_refresh_state x WHERE x.campaign = c.name);
    t record := customer_analytics._campaign_view_rows(c.view_schema, c.name || '_targets',
        CASE WHEN kept -> 'targets' ->> 'rows' = c.target_rows::text THEN kept -> 'targets' END);
    m record := customer_analytics._campaign_view_rows(c.view_schema, c.name || '_monthly',
        CASE WHEN kept -> 'monthly' ->> 'rows' = c.monthly_rows::text THEN kept -> 'monthly' END);
BEGIN
    UPDATE customer_analytics.campaigns
       SET refreshed_at = now(),
           refresh_ms = round(extract(epoch FROM clock_timestamp() - started) * 1000, 1),
           target_rows = t.rows, monthly_rows = m.rows
     WHERE name = campaign
    RETURNING * INTO c;
    UPDATE customer_analytics.campaign_refresh_state x
       SET view_rows = jsonb_build_object('targets', jsonb_build_object('rows', t.rows, 'version', t.version),
                                          'monthly', jsonb_build_object('rows', m.rows, 'version', m.version))
     WHERE x.campaign = c.name AND x.view_rows IS DISTINCT FROM
           jsonb_build_object('targets', jsonb_build_object('rows', t.rows, 'version', t.version),
                              'monthly', jsonb_build_object('rows', m.rows, 'version', m.version));
    RETURN c;
END $$;

-- The version of a view's catalog row: its oid, file, and the row's xmin
-- and ctid (a REFRESH, concurrent or not, writes a new one; _matview_apply
-- does not; nor do VACUUM and ANALYZE, which update it in place); NULL
-- when there is no such relation.
CREATE FUNCTION customer_analytics._view_version(v regclass) RETURNS text
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
#variable_conflict use_column
BEGIN
    RETURN (
    SELECT format('%s/%s/%s/%s', x.oid, x.relfilenode, x.xmin, x.ctid) FROM pg_class x WHERE x.oid = v);
END
$$;

-- The row count of a campaign's view, and the version of its catalog row
-- (oid, file, and the row's xmin and ctid: a REFRESH, concurrent or not,
-- writes a new one; _matview_apply does not): kept (kept's rows plus the
-- rows _matview_apply added since, read in every case) when kept holds the
-- same version, else counted.
CREATE FUNCTION customer_analytics._campaign_view_rows(view_schema text, view text, kept jsonb, OUT rows bigint, OUT version text) RETURNS record
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    v regclass := to_regclass(format('%I.%I', view_schema, view));
    added bigint;
BEGIN
    IF v IS NOT NULL THEN
        version := customer_analytics._view_version(v);
        added := customer_analytics._matview_applied(v);
    END IF;
    IF version IS NOT NULL AND kept ->> 'version' = version AND kept ->> 'rows' IS NOT NULL THEN
        rows := (kept ->> 'rows')::bigint + added;
    ELSE
        rows := customer_analytics._count_rows(view_schema, view);
    END IF;
END $$;

-- Record a segmentation's refresh in its catalog row (when, how long, how
-- many members) and return the row.
CREATE FUNCTION customer_analytics._record_segmentation_refresh(segmentation text, started timestamp with time zone) RETURNS customer_analytics.segmentations
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
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

-- Long work publishes its phase in pg_stat_activity.query (progress.c).
CREATE FUNCTION customer_analytics._report_progress(phase text) RETURNS void
    LANGUAGE c STRICT
    AS 'MODULE_PATHNAME', 'report_progress';

COMMENT ON FUNCTION customer_analytics._report_progress(phase text) IS 'Show "customer_analytics: <phase> | <statement>" as this session''s activity in pg_stat_activity';
