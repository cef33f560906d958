-- rolling_windows.sql
--	Rolling windows: definitions whose windows are relative to an as_of date, resolved at each computation.

-- What "today" is for rolling windows: customer_analytics.as_of_date when
-- set (in the session: the setting refuses stored values), else the
-- current date.
CREATE FUNCTION customer_analytics._as_of_today() RETURNS date
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    s text := customer_analytics._checked_setting('customer_analytics.as_of_date');
    d date;
BEGIN
    IF s IS NULL OR btrim(s) = '' THEN
        RETURN current_date;
    END IF;
    BEGIN
        d := s::date;
    EXCEPTION WHEN data_exception THEN
        d := NULL;
    END;
    IF d IS NULL OR NOT isfinite(d) THEN
        RAISE EXCEPTION 'customer_analytics.as_of_date must be a finite date, not "%"', s
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'For example SET customer_analytics.as_of_date = ''2026-01-07''; RESET it to use the current date.';
    END IF;
    RETURN d;
END $$;

-- The campaign with its windows resolved: what every computation reads.
CREATE FUNCTION customer_analytics._campaign_resolved(c customer_analytics.campaigns) RETURNS customer_analytics.campaigns
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    w record;
BEGIN
    IF c.rolling IS NULL THEN
        RETURN c;
    END IF;
    w := customer_analytics._campaign_windows(c);
    c.spend_window := w.spend_window;
    c.low_ticket_window := w.low_ticket_window;
    c.base_window := w.base_window;
    c.recent_window := w.recent_window;
    c.revenue_window := w.revenue_window;
    RETURN c;
END $$;

-- The one place a campaign's windows are resolved: the rolling ones from
-- their spec at as_of (the campaign's as_of when NULL), the others as stored.
CREATE FUNCTION customer_analytics._campaign_windows(c customer_analytics.campaigns, at date DEFAULT NULL::date, OUT as_of date, OUT spend_window daterange, OUT low_ticket_window daterange, OUT base_window daterange, OUT recent_window daterange, OUT revenue_window daterange) RETURNS record
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
    spend_window := c.spend_window;
    low_ticket_window := c.low_ticket_window;
    base_window := c.base_window;
    recent_window := c.recent_window;
    revenue_window := c.revenue_window;
    IF c.rolling IS NULL THEN
        as_of := NULL;
        RETURN;
    END IF;
    PERFORM customer_analytics._check_rolling(c.rolling);
    as_of := customer_analytics._rolling_as_of(c.rolling, at);
    -- in _rolling_window_names() order, so that the first bad window is reported
    spend_window := COALESCE(customer_analytics._rolling_window(c.rolling, 'spend_window', as_of), spend_window);
    low_ticket_window := COALESCE(customer_analytics._rolling_window(c.rolling, 'low_ticket_window', as_of), low_ticket_window);
    base_window := COALESCE(customer_analytics._rolling_window(c.rolling, 'base_window', as_of), base_window);
    recent_window := COALESCE(customer_analytics._rolling_window(c.rolling, 'recent_window', as_of), recent_window);
    revenue_window := COALESCE(customer_analytics._rolling_window(c.rolling, 'revenue_window', as_of), revenue_window);
END $$;

COMMENT ON FUNCTION customer_analytics._campaign_windows(c customer_analytics.campaigns, at date, OUT as_of date, OUT spend_window daterange, OUT low_ticket_window daterange, OUT base_window daterange, OUT recent_window daterange, OUT revenue_window daterange) IS 'A campaign''s windows resolved at as_of (rolling windows from their spec, the others as stored)';

-- A campaign's rolling spec: the shared check with the campaign windows.
CREATE FUNCTION customer_analytics._check_rolling(rolling jsonb) RETURNS void
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
    PERFORM customer_analytics._check_rolling_spec(rolling, customer_analytics._rolling_window_names(),
        '{"as_of": "today", "spend_window": {"from": "as_of -12 months +1 day", "to": "as_of"}}');
END $$;

COMMENT ON FUNCTION customer_analytics._check_rolling(rolling jsonb) IS 'Refuse a malformed campaign rolling spec (22023 with a HINT); _check_rolling_spec() with the campaign windows';

-- Refuse a malformed rolling spec (NULL: fixed windows) with 22023 and a
-- hint: an object of "as_of" and at least one of `windows`, each
-- {"from": bound, "to": bound}.  `example` is the spec the hint shows.
CREATE FUNCTION customer_analytics._check_rolling_spec(rolling jsonb, windows text[], example text) RETURNS void
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
DECLARE
    k text;
    w jsonb;
    hint text := format('For example rolling => %s; windows: %s.', quote_literal(example), array_to_string(windows, ', '));
BEGIN
    IF rolling IS NULL THEN
        RETURN;
    END IF;
    IF jsonb_typeof(rolling) <> 'object' THEN
        RAISE EXCEPTION 'rolling must be a JSON object, not %', rolling
            USING ERRCODE = 'invalid_parameter_value', HINT = hint;
    END IF;
    FOR k IN SELECT jsonb_object_keys(rolling) LOOP
        IF k <> 'as_of' AND NOT k = ANY (windows) THEN
            RAISE EXCEPTION 'unknown key "%" in rolling', k USING ERRCODE = 'invalid_parameter_value', HINT = hint;
        END IF;
    END LOOP;
    IF NOT EXISTS (SELECT 1 FROM jsonb_object_keys(rolling) x WHERE x <> 'as_of') THEN
        RAISE EXCEPTION 'rolling defines no window' USING ERRCODE = 'invalid_parameter_value', HINT = hint;
    END IF;
    IF rolling ? 'as_of' THEN
        IF jsonb_typeof(rolling -> 'as_of') <> 'string'
           OR (rolling ->> 'as_of' <> 'today' AND rolling ->> 'as_of' !~ '^\d{4}-\d{2}-\d{2}$') THEN
            RAISE EXCEPTION 'rolling as_of must be "today" or a date written YYYY-MM-DD, not %', rolling -> 'as_of'
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = '"today" is the date of each refresh (or customer_analytics.as_of_date when set); a fixed date pins the windows.';
        END IF;
        IF rolling ->> 'as_of' <> 'today' THEN
            BEGIN
                PERFORM (rolling ->> 'as_of')::date;
            EXCEPTION WHEN data_exception THEN
                RAISE EXCEPTION 'rolling as_of "%" is not a valid date', rolling ->> 'as_of'
                    USING ERRCODE = 'invalid_parameter_value', HINT = 'Write it YYYY-MM-DD, for example "2026-01-07".';
            END;
        END IF;
    END IF;
    FOREACH k IN ARRAY windows LOOP
        w := rolling -> k;
        CONTINUE WHEN w IS NULL;
        IF jsonb_typeof(w) <> 'object' OR jsonb_typeof(w -> 'from') IS DISTINCT FROM 'string'
           OR jsonb_typeof(w -> 'to') IS DISTINCT FROM 'string'
           OR EXISTS (SELECT 1 FROM jsonb_object_keys(w) x WHERE x NOT IN ('from', 'to')) THEN
            RAISE EXCEPTION 'rolling % must be {"from": bound, "to": bound}, not %', k, w
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Both bounds are included, for example {"from": "month_start -2 months", "to": "month_start -1 day"} (the last 2 full months).';
        END IF;
    END LOOP;
END $_$;

COMMENT ON FUNCTION customer_analytics._check_rolling_spec(rolling jsonb, windows text[], example text) IS 'Refuse a malformed rolling spec (campaigns and segmentations) with 22023 and a HINT naming the windows it may define';

-- A segmentation's rolling spec: the shared check with its one window.
CREATE FUNCTION customer_analytics._check_segmentation_rolling(rolling jsonb) RETURNS void
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
    PERFORM customer_analytics._check_rolling_spec(rolling, '{feature_window}',
        '{"as_of": "today", "feature_window": {"from": "as_of -12 months +1 day", "to": "as_of"}}');
END $$;

COMMENT ON FUNCTION customer_analytics._check_segmentation_rolling(rolling jsonb) IS 'Refuse a malformed segmentation rolling spec (22023 with a HINT); _check_rolling_spec() with feature_window';

-- The as_of of a rolling spec: `at` when given, else the spec's pinned
-- date, else "today" (customer_analytics.as_of_date or the current date).
CREATE FUNCTION customer_analytics._rolling_as_of(rolling jsonb, at date DEFAULT NULL::date) RETURNS date
    LANGUAGE sql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
    SELECT COALESCE(at,
                    CASE WHEN rolling ->> 'as_of' IS NOT NULL AND rolling ->> 'as_of' <> 'today'
                         THEN (rolling ->> 'as_of')::date
                         ELSE customer_analytics._as_of_today() END)
$$;

COMMENT ON FUNCTION customer_analytics._rolling_as_of(rolling jsonb, at date) IS 'The as_of date of a rolling spec: at when given, else its pinned date, else today (customer_analytics.as_of_date when set)';

-- The as_of a rolling definition's next scheduled run will use: the date of
-- next_run in UTC (pg_cron reads schedules in UTC) when the spec follows
-- "today", its pinned date otherwise; NULL for fixed windows or no next
-- run.  (A job's command or dispatcher session that SETs
-- customer_analytics.as_of_date computes at that date instead.)
CREATE FUNCTION customer_analytics._next_run_as_of(rolling jsonb, next_run timestamp with time zone) RETURNS date
    LANGUAGE sql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
    SELECT CASE WHEN rolling IS NULL OR jsonb_typeof(rolling) <> 'object' OR next_run IS NULL OR NOT isfinite(next_run) THEN NULL
                WHEN COALESCE(rolling ->> 'as_of', 'today') = 'today' THEN (next_run AT TIME ZONE 'UTC')::date
                ELSE customer_analytics._rolling_as_of(rolling) END
$$;

COMMENT ON FUNCTION customer_analytics._next_run_as_of(rolling jsonb, next_run timestamp with time zone) IS 'internal: the as_of date a rolling definition''s next scheduled run (at next_run) will use: next_run''s date in UTC for "today", else the pinned date; NULL without a rolling spec or a next run';

-- One bound of a rolling window: "as_of" or "month_start", optionally
-- followed by a signed interval of whole days, months or years.
CREATE FUNCTION customer_analytics._rolling_bound(spec text, as_of date, what text DEFAULT 'bound'::text) RETURNS date
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
DECLARE
    m text[] := regexp_match(spec, '^\s*(as_of|month_start)\s*(([+-]).*)?$');
    anchor date;
    offs interval := '0 days';
    hint text := 'A bound is as_of or month_start (the first day of as_of''s month), optionally followed by '
                 'a signed interval, for example "as_of", "as_of -12 months +1 day", "month_start -1 day".';
    result date;
BEGIN
    IF as_of IS NULL OR NOT isfinite(as_of) THEN
        RAISE EXCEPTION 'as_of must be a finite date' USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Pass a date such as ''2026-01-07''.';
    END IF;
    IF m IS NULL THEN
        RAISE EXCEPTION 'invalid rolling % "%"', what, spec USING ERRCODE = 'invalid_parameter_value', HINT = hint;
    END IF;
    anchor := CASE m[1] WHEN 'as_of' THEN as_of ELSE date_trunc('month', as_of)::date END;
    IF m[2] IS NOT NULL THEN
        BEGIN
            offs := m[2]::interval;
        EXCEPTION WHEN data_exception THEN
            RAISE EXCEPTION 'invalid interval "%" in rolling % "%"', m[2], what, spec
                USING ERRCODE = 'invalid_parameter_value', HINT = hint;
        END;
        IF offs <> date_trunc('day', offs) THEN
            RAISE EXCEPTION 'rolling % "%" has a time of day in its interval', what, spec
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Use whole days, months or years: windows are dates. ' || hint;
        END IF;
    END IF;
    BEGIN
        result := (anchor + offs)::date;
    EXCEPTION WHEN data_exception THEN
        result := NULL;
    END;
    IF result IS NULL OR NOT isfinite(result) OR result < '0001-01-01' OR result > '9999-12-31' THEN
        RAISE EXCEPTION 'rolling % "%" is out of range for as_of %', what, spec, as_of
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Use an offset of at most a few hundred years.';
    END IF;
    RETURN result;
END $_$;

-- One window of a (checked) rolling spec resolved at as_of, both bounds
-- included; NULL when the spec does not name it.
CREATE FUNCTION customer_analytics._rolling_window(rolling jsonb, window_name text, as_of date) RETURNS daterange
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    w jsonb := rolling -> window_name;
    f date;
    t date;
BEGIN
    IF w IS NULL THEN
        RETURN NULL;
    END IF;
    f := customer_analytics._rolling_bound(w ->> 'from', as_of, window_name || ' bound');
    t := customer_analytics._rolling_bound(w ->> 'to', as_of, window_name || ' bound');
    IF f > t THEN
        RAISE EXCEPTION 'rolling % is empty at as_of %: from % is after to %', window_name, as_of, f, t
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Both bounds are included; "from" must not come after "to", for example {"from": "as_of -3 months", "to": "as_of"}.';
    END IF;
    RETURN daterange(f, t, '[]');
END $$;

COMMENT ON FUNCTION customer_analytics._rolling_window(rolling jsonb, window_name text, as_of date) IS 'One window of a rolling spec resolved at as_of (both bounds included), NULL when the spec does not name it';

-- The windows a rolling spec may define.
CREATE FUNCTION customer_analytics._rolling_window_names() RETURNS text[]
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT '{spend_window,low_ticket_window,base_window,recent_window,revenue_window}'::text[] $$;

-- The segmentation with its window and as_of resolved: what every computation reads.
CREATE FUNCTION customer_analytics._segmentation_resolved(s customer_analytics.segmentations) RETURNS customer_analytics.segmentations
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    w record;
BEGIN
    IF s.rolling IS NULL THEN
        RETURN s;
    END IF;
    w := customer_analytics._segmentation_windows(s);
    s.feature_window := w.feature_window;
    s.as_of := w.as_of;
    RETURN s;
END $$;

COMMENT ON FUNCTION customer_analytics._segmentation_resolved(s customer_analytics.segmentations) IS 'A segmentation''s catalog row with its rolling feature window and as_of resolved now';

-- The one place a segmentation's feature window and as_of are resolved:
-- a rolling one from its spec at `at` (its as_of when NULL), a fixed one as
-- stored.
CREATE FUNCTION customer_analytics._segmentation_windows(s customer_analytics.segmentations, at date DEFAULT NULL::date, OUT as_of date, OUT feature_window daterange) RETURNS record
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
    IF s.rolling IS NULL THEN
        as_of := s.as_of;
        feature_window := s.feature_window;
        RETURN;
    END IF;
    PERFORM customer_analytics._check_segmentation_rolling(s.rolling);
    as_of := customer_analytics._rolling_as_of(s.rolling, at);
    feature_window := COALESCE(customer_analytics._rolling_window(s.rolling, 'feature_window', as_of),
                               s.feature_window);
END $$;

COMMENT ON FUNCTION customer_analytics._segmentation_windows(s customer_analytics.segmentations, at date, OUT as_of date, OUT feature_window daterange) IS 'A segmentation''s feature window and as_of resolved at as_of (from its rolling spec, or as stored)';
