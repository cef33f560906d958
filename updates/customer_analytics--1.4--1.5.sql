-- customer_analytics 1.4 -> 1.5: trust.  Stored definitions belong to their
-- owners, a refresh runs only its owner's definition over sources its owner
-- trusts, and the rollup is kept by its owner whoever writes the ERP tables.
\echo Use "ALTER EXTENSION customer_analytics UPDATE TO '1.5'" to load this file. \quit

------------------------------------------------------------------------------
-- Who owns a definition.  The catalogs (campaigns, segmentations, rollups,
-- campaign_refresh_state) are written only by the row's owner, a role that
-- can act as it, or the extension's owner (the tables' owner, to whom
-- row-level security does not apply).  Everyone may read them.
------------------------------------------------------------------------------

-- May the current role change a definition stored for `owner`?  Its owner
-- and roles that can SET ROLE to it may; superusers bypass the policies.
CREATE FUNCTION _is_definition_owner(owner name) RETURNS boolean
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT owner = current_user
        OR COALESCE(pg_has_role(current_user, to_regrole(quote_ident(owner)), 'MEMBER'), false)
$$;
COMMENT ON FUNCTION _is_definition_owner IS
'true when the current role owns a stored definition of this owner (or can SET ROLE to it): the catalogs'' row-level security';

ALTER TABLE campaigns ENABLE ROW LEVEL SECURITY;
CREATE POLICY catalog_read ON campaigns FOR SELECT USING (true);
CREATE POLICY owner_inserts ON campaigns FOR INSERT WITH CHECK (customer_analytics._is_definition_owner(owner));
CREATE POLICY owner_updates ON campaigns FOR UPDATE
    USING (customer_analytics._is_definition_owner(owner)) WITH CHECK (customer_analytics._is_definition_owner(owner));
CREATE POLICY owner_deletes ON campaigns FOR DELETE USING (customer_analytics._is_definition_owner(owner));

ALTER TABLE segmentations ENABLE ROW LEVEL SECURITY;
CREATE POLICY catalog_read ON segmentations FOR SELECT USING (true);
CREATE POLICY owner_inserts ON segmentations FOR INSERT WITH CHECK (customer_analytics._is_definition_owner(owner));
CREATE POLICY owner_updates ON segmentations FOR UPDATE
    USING (customer_analytics._is_definition_owner(owner)) WITH CHECK (customer_analytics._is_definition_owner(owner));
CREATE POLICY owner_deletes ON segmentations FOR DELETE USING (customer_analytics._is_definition_owner(owner));

ALTER TABLE rollups ENABLE ROW LEVEL SECURITY;
CREATE POLICY catalog_read ON rollups FOR SELECT USING (true);
CREATE POLICY owner_inserts ON rollups FOR INSERT WITH CHECK (customer_analytics._is_definition_owner(owner));
CREATE POLICY owner_updates ON rollups FOR UPDATE
    USING (customer_analytics._is_definition_owner(owner)) WITH CHECK (customer_analytics._is_definition_owner(owner));
CREATE POLICY owner_deletes ON rollups FOR DELETE USING (customer_analytics._is_definition_owner(owner));

-- a campaign's incremental state is its owner's too
ALTER TABLE campaign_refresh_state ENABLE ROW LEVEL SECURITY;
CREATE POLICY catalog_read ON campaign_refresh_state FOR SELECT USING (true);
CREATE POLICY owner_writes ON campaign_refresh_state FOR ALL
    USING (EXISTS (SELECT 1 FROM customer_analytics.campaigns c
                    WHERE c.name = campaign AND customer_analytics._is_definition_owner(c.owner)))
    WITH CHECK (EXISTS (SELECT 1 FROM customer_analytics.campaigns c
                         WHERE c.name = campaign AND customer_analytics._is_definition_owner(c.owner)));

-- With the policies in place, every role may keep campaigns and
-- segmentations of its own; rollups stay with whoever can create tables in
-- the extension's schema.  The schema is usable by everyone, as an
-- extension installed in public would be: every function is SECURITY
-- INVOKER, so this lends no right; a DBA who wants fewer users revokes it.
GRANT USAGE ON SCHEMA customer_analytics TO PUBLIC;
GRANT INSERT, UPDATE, DELETE ON campaigns, segmentations, campaign_refresh_state TO PUBLIC;
-- a rollup's triggers run as its owner, which may have to disable it; and
-- its owner may forget its recorded changes (reset_rollup_changes: a new
-- generation).  The policies keep both to the owner's own row, whose
-- contents it is trusted with already (it owns the rollup's tables).
GRANT UPDATE (state, generation) ON rollups TO PUBLIC;

------------------------------------------------------------------------------
-- Schedules the extension keeps itself (issue 13).  Every scheduled
-- refresh has a row here, whoever runs it:
--   runner 'pg_cron':    a pg_cron job in this database (pg_cron is
--                        installed here), job_id its id;
--   runner 'dispatcher': run by customer_analytics.run_due_refreshes(),
--                        which one pg_cron job per role runs every minute in
--                        this database (scheduled once with
--                        cron.schedule_in_database from pg_cron's database:
--                        dispatcher_command() prints the call), or any other
--                        scheduler; next_run says when it is due.
-- So list_campaigns() shows schedule and next run to every role without
-- reading cron.*, and databases pg_cron does not run in can schedule.
------------------------------------------------------------------------------

-- The next time a cron schedule fires after `after`, in UTC as pg_cron 1.4
-- reads schedules (src/cron_schedule.c); NULL for @reboot; 22023 for a
-- schedule that cannot be read.
CREATE FUNCTION _cron_next_run(schedule text, after timestamptz) RETURNS timestamptz
AS 'MODULE_PATHNAME', 'cron_next_run'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION _cron_next_run IS
'The first minute after `after` at which a cron schedule (pg_cron 1.4 grammar, UTC) fires; NULL for @reboot';

-- A schedule belongs to one definition: the row of that kind, name and
-- owner (issue 21, item 4).  The foreign keys hold that for every writer:
-- a definition deleted by any route takes its schedule with it (and the
-- schedule's pg_cron job: _schedule_row_release below), and a definition
-- cannot be renamed or given to another owner while it is scheduled.  So a
-- schedule never outlives its definition, and never attaches to another
-- role's definition made later under the same name.
ALTER TABLE campaigns ADD CONSTRAINT campaigns_name_owner_key UNIQUE (name, owner);
ALTER TABLE segmentations ADD CONSTRAINT segmentations_name_owner_key UNIQUE (name, owner);

CREATE TABLE refresh_schedules (
    kind         text NOT NULL CHECK (kind IN ('campaign', 'segmentation')),
    name         text NOT NULL,
    owner        name NOT NULL,
    schedule     text NOT NULL,
    runner       text NOT NULL CHECK (runner IN ('pg_cron', 'dispatcher')),
    run_as       name NOT NULL,
    job_id       bigint,
    next_run     timestamptz,
    scheduled_at timestamptz NOT NULL DEFAULT now(),
    -- a dispatcher's claim, committed before it runs the refresh and
    -- cleared when the outcome is recorded: the process that runs it
    -- (holding the claim's advisory lock while it lives, _claim_lock)
    claimed_at   timestamptz,
    claimed_pid  int,
    -- the definition, for the foreign keys
    campaign     text GENERATED ALWAYS AS (CASE WHEN kind = 'campaign' THEN name END) STORED,
    segmentation text GENERATED ALWAYS AS (CASE WHEN kind = 'segmentation' THEN name END) STORED,
    PRIMARY KEY (kind, name),
    CHECK ((runner = 'pg_cron') = (job_id IS NOT NULL)),
    CONSTRAINT refresh_schedules_claim_check CHECK ((claimed_at IS NULL) = (claimed_pid IS NULL)),
    FOREIGN KEY (campaign, owner) REFERENCES campaigns (name, owner) ON DELETE CASCADE,
    FOREIGN KEY (segmentation, owner) REFERENCES segmentations (name, owner) ON DELETE CASCADE
);
COMMENT ON TABLE refresh_schedules IS
'Each scheduled refresh: its cron schedule, who runs it (a pg_cron job here, or the dispatcher run_due_refreshes() as role run_as) and, for the dispatcher, when it is next due and the run in progress';
COMMENT ON COLUMN refresh_schedules.runner IS
'pg_cron: a pg_cron job in this database (job_id); dispatcher: customer_analytics.run_due_refreshes() run as run_as';
COMMENT ON COLUMN refresh_schedules.run_as IS
'the role the refresh runs as: the role that scheduled it (its pg_cron job''s user, or the dispatcher''s role)';
COMMENT ON COLUMN refresh_schedules.job_id IS
'pg_cron: the id of the job schedule_*_refresh() made (checked against cron.job when written, and again before it is unscheduled)';
COMMENT ON COLUMN refresh_schedules.next_run IS
'dispatcher: when the refresh is next due (in the past: no dispatcher has run since); pg_cron: NULL (list_campaigns() computes it)';
COMMENT ON COLUMN refresh_schedules.claimed_at IS
'dispatcher: when a dispatcher (process claimed_pid) started the refresh now running; NULL when none runs.  A claim whose process is gone is an interrupted run: list_*() show it, the next dispatcher records it';
SELECT pg_catalog.pg_extension_config_dump('refresh_schedules', '');

-- May the current role write this schedule row?  Only for a definition of
-- that kind and name owned by `owner`, which the role can act as, and to be
-- run as a role it can act as: no one schedules (or blocks the schedule of)
-- another role's definition, or has another role's dispatcher run it.
-- (_schedule_row_guard, below, narrows run_as and job_id to facts.)
CREATE FUNCTION _schedule_row_ok(kind text, name text, owner name, run_as name) RETURNS boolean
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT customer_analytics._is_definition_owner(owner)
       AND customer_analytics._is_definition_owner(run_as)
       AND EXISTS (SELECT 1 FROM customer_analytics.campaigns c
                    WHERE kind = 'campaign' AND c.name = _schedule_row_ok.name AND c.owner = _schedule_row_ok.owner
                   UNION ALL
                   SELECT 1 FROM customer_analytics.segmentations s
                    WHERE kind = 'segmentation' AND s.name = _schedule_row_ok.name AND s.owner = _schedule_row_ok.owner)
$$;

ALTER TABLE refresh_schedules ENABLE ROW LEVEL SECURITY;
CREATE POLICY catalog_read ON refresh_schedules FOR SELECT USING (true);
CREATE POLICY owner_writes ON refresh_schedules FOR ALL
    USING (customer_analytics._is_definition_owner(owner))
    WITH CHECK (customer_analytics._schedule_row_ok(kind, name, owner, run_as));
-- the dispatcher a schedule names may claim it (move its next run, record
-- its claim) even when it can no longer act as the definition's owner: it
-- then skips it and records why (run_due_refreshes).  The guard trigger
-- keeps such a dispatcher to those columns.
CREATE POLICY dispatcher_claims ON refresh_schedules FOR UPDATE
    USING (runner = 'dispatcher' AND run_as = current_user)
    WITH CHECK (runner = 'dispatcher' AND run_as = current_user);
GRANT SELECT, INSERT, UPDATE, DELETE ON refresh_schedules TO PUBLIC;

-- When each role's dispatcher last ran in this database: scheduling warns
-- when none has run lately, for the refresh would then never run.
CREATE TABLE dispatcher_runs (
    role        name PRIMARY KEY,
    last_run_at timestamptz NOT NULL
);
COMMENT ON TABLE dispatcher_runs IS
'When run_due_refreshes() last ran as each role in this database';
ALTER TABLE dispatcher_runs ENABLE ROW LEVEL SECURITY;
CREATE POLICY catalog_read ON dispatcher_runs FOR SELECT USING (true);
CREATE POLICY own_row ON dispatcher_runs FOR ALL USING (role = current_user) WITH CHECK (role = current_user);
GRANT SELECT, INSERT, UPDATE, DELETE ON dispatcher_runs TO PUBLIC;

-- The error every management function raises for someone else's definition.
CREATE FUNCTION _require_definition_owner(kind text, name text, owner name) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    -- pg_has_role() is true for superusers: they may manage every definition
    IF NOT customer_analytics._is_definition_owner(owner) THEN
        RAISE EXCEPTION 'must be owner of % "%"', kind, name
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = format('%s "%s" belongs to role "%s".', initcap(kind), name, owner),
                  HINT = format('Only its owner (or a role that can SET ROLE %I) may change, refresh or drop it%s.',
                                owner, CASE WHEN kind = 'rollup' THEN '' ELSE '; others read its views' END);
    END IF;
END $$;

-- A definition is computed only as its owner: by the owner's own call, or
-- by REFRESH of its views, which PostgreSQL runs as the views' owner.  A
-- view whose owner is not the definition's (an ALTER ... OWNER TO, or a
-- definition dropped and another role's created under the same name) is
-- refused instead of running someone else's definition with its rights.
CREATE FUNCTION _require_definition_runner(kind text, name text, owner name) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF owner IS DISTINCT FROM current_user THEN
        RAISE EXCEPTION '% "%" belongs to role "%", not to "%"', kind, name, owner, current_user
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = format('A stored %s is computed only with its owner''s rights; a view refresh runs as the view''s owner.', kind),
                  HINT = format('Refresh it as %I, or make %I own the views again (ALTER MATERIALIZED VIEW ... OWNER TO %I).',
                                owner, owner, owner);
    END IF;
END $$;

-- Work on a definition's objects runs as the definition's owner inside a
-- security-restricted operation, whoever asked (src/owner_context.c): the
-- public functions check the caller's right to ask, then run their
-- _*_as_owner step through _as_owner(); those steps refuse to run
-- otherwise (_require_owner_context).
CREATE FUNCTION _as_owner(owner name, command text) RETURNS text
LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'as_owner';
COMMENT ON FUNCTION _as_owner(name, text) IS
'Run one of the extension''s statements as owner (a role the caller can act as) inside a security-restricted operation; the first column of its first row as text';

-- true when the current user is owner inside a security-restricted operation
CREATE FUNCTION _in_owner_context(owner name) RETURNS boolean
LANGUAGE c STABLE AS 'MODULE_PATHNAME', 'in_owner_context';

-- A scratch table for this transaction that a security-restricted
-- operation may create (a column list that runs no code).
CREATE FUNCTION _scratch_table(name text, definition text) RETURNS regclass
LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'scratch_table';

-- REFRESH MATERIALIZED VIEW [CONCURRENTLY] that a security-restricted
-- operation may run (REFRESH becomes the view's owner itself).
CREATE FUNCTION _refresh_matview(view regclass, concurrently boolean) RETURNS void
LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'refresh_matview';

-- The error of a step on a definition's objects called other than through
-- its public function (which runs it as the owner).
CREATE FUNCTION _require_owner_context(kind text, name text, owner name) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NOT customer_analytics._in_owner_context(owner) THEN
        RAISE EXCEPTION 'work on % "%" runs only as its owner "%"', kind, name, owner
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = 'The extension works on a definition''s objects as their owner, in a security-restricted operation.',
                  HINT = format('Call the public function (for example customer_analytics.refresh_%s), which does that.', kind);
    END IF;
END $$;

-- One campaign's catalog row for a management call (owner, member or superuser).
CREATE OR REPLACE FUNCTION _campaign(campaign text) RETURNS campaigns
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
    PERFORM customer_analytics._require_definition_owner('campaign', c.name, c.owner);
    RETURN c;
END $$;

-- One campaign's catalog row to compute from: only its owner computes it.
CREATE FUNCTION _campaign_to_run(campaign text) RETURNS campaigns
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    c customer_analytics.campaigns := customer_analytics._campaign(campaign);
BEGIN
    PERFORM customer_analytics._require_definition_runner('campaign', c.name, c.owner);
    RETURN c;
END $$;

CREATE OR REPLACE FUNCTION _segmentation(segmentation text) RETURNS segmentations
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
    PERFORM customer_analytics._require_definition_owner('segmentation', s.name, s.owner);
    RETURN s;
END $$;

CREATE FUNCTION _segmentation_to_run(segmentation text) RETURNS segmentations
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    s customer_analytics.segmentations := customer_analytics._segmentation(segmentation);
BEGIN
    PERFORM customer_analytics._require_definition_runner('segmentation', s.name, s.owner);
    RETURN s;
END $$;

-- The schedule of a definition's refresh, or NULL, from the extension's own
-- record of schedules (refresh_schedules), which every role may read:
-- list_campaigns() works for every role without reading cron.*.  A job
-- made under the definition's job name outside schedule_*_refresh (by hand,
-- or before 1.5 and not recorded) counts too, for its owner.
CREATE OR REPLACE FUNCTION _cron_job(kind text, name text) RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    schedule text;
BEGIN
    SELECT r.schedule INTO schedule FROM customer_analytics.refresh_schedules r WHERE r.kind = $1 AND r.name = $2;
    IF schedule IS NULL AND customer_analytics._cron_job_id(kind, name) IS NOT NULL THEN
        EXECUTE 'SELECT schedule FROM cron.job WHERE jobid = $1' INTO schedule
          USING customer_analytics._cron_job_id(kind, name);
    END IF;
    RETURN schedule;
END $$;

-- The caller's pg_cron job for the definition's refresh, as pg_cron's own
-- row shows it: the definition's job name, run as the caller, running the
-- command schedule_*_refresh() gives it; or NULL (none, no pg_cron here,
-- or cron.job not readable by this role).
CREATE FUNCTION _cron_job_id(kind text, name text) RETURNS bigint
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    job bigint;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_cron')
       OR NOT has_schema_privilege('cron', 'USAGE')
       OR NOT has_table_privilege('cron.job', 'SELECT') THEN
        RETURN NULL;
    END IF;
    EXECUTE 'SELECT jobid FROM cron.job WHERE jobname = $1 AND username = current_user AND command = $2'
       INTO job USING customer_analytics._cron_job_name(kind, name), customer_analytics._refresh_job_command(kind, name);
    RETURN job;
END $$;

------------------------------------------------------------------------------
-- The functions that compute a stored definition read it through
-- _campaign_to_run / _segmentation_to_run; otherwise as in 1.4.
------------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION campaign_targets(campaign text)
RETURNS TABLE (customer_code text, trade_name text, delivery_route text, shipping_address text,
               csm text, total_spend numeric, total_orders bigint, low_ticket_count bigint,
               base_sales numeric, recent_sales numeric, pct_change numeric, target_reason text,
               is_low_ticket boolean, is_declining boolean, last_order_date date,
               avg_ticket_size numeric)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    c customer_analytics.campaigns := customer_analytics._campaign_to_run(campaign);
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
END $$;

CREATE OR REPLACE FUNCTION campaign_monthly_revenue(campaign text,
    OUT customer_code text, OUT month date, OUT revenue numeric, OUT orders bigint)
RETURNS SETOF record
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    c customer_analytics.campaigns := customer_analytics._campaign_to_run(campaign);
BEGIN
    RETURN QUERY SELECT * FROM customer_analytics.monthly_revenue(
        ARRAY(SELECT t.customer_code FROM customer_analytics.campaign_targets(c.name) t),
        c.revenue_window, c.source_schema);
END $$;

CREATE OR REPLACE FUNCTION _campaign_sheet_revenue(campaign text)
RETURNS TABLE (customer_code text, month date, revenue numeric)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    c customer_analytics.campaigns := customer_analytics._campaign_to_run(campaign);
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

-- As in 1.4, read through the owner check; during refresh_segmentation()
-- from the segmentation's feature state (see "Segmentation refresh from
-- per-customer feature state" below).
CREATE OR REPLACE FUNCTION segmentation_features(segmentation text)
RETURNS TABLE (customer_code text, visits bigint, total_spend numeric, ticket_size numeric, skus bigint,
               total_quantity numeric, first_order date, last_order date, recency_days int,
               tenure_days int, span_days int, quantity_per_visit float8, days_per_visit float8,
               skus_per_visit float8, diff float8, is_repeat boolean, features float8[])
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    s customer_analytics.segmentations := customer_analytics._segmentation_to_run(segmentation);
    state regclass := customer_analytics._segmentation_current_state(s);
BEGIN
    -- during refresh_segmentation() (its transaction): from the feature
    -- state it brought up to date, computed once for the four views
    IF state IS NOT NULL THEN
        RETURN QUERY SELECT cf.* FROM customer_analytics._customer_features_from_state(state, s.feature_window, s.as_of) cf
                      WHERE customer_analytics._segment_filter(s.segment, cf.is_repeat);
        RETURN;
    END IF;
    RETURN QUERY SELECT cf.* FROM customer_analytics.customer_features(s.feature_window, s.as_of, s.source_schema) cf
                  WHERE customer_analytics._segment_filter(s.segment, cf.is_repeat);
END $$;

CREATE OR REPLACE FUNCTION _build_segmentation_views(s segmentations) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    -- read through the owner check, as segmentation_features() does
    catalog_value text := '(customer_analytics._segmentation_to_run(%2$L)).%1$s';
    model text := format('(SELECT model FROM %I.%I)', s.view_schema, s.name || '_model');
    col record;
BEGIN
    PERFORM customer_analytics._report_progress(format('building %I.%I (segmentation %s: features and k-means model, 1 of 4)',
                                                       s.view_schema, s.name || '_model', s.name));
    EXECUTE format('CREATE MATERIALIZED VIEW %I.%I AS '
                   'SELECT %L::text AS segmentation, customer_analytics.kmeans_fit(f.features, %s, %s) AS model '
                   'FROM customer_analytics.segmentation_features(%L) f',
                   s.view_schema, s.name || '_model', s.name,
                   format(catalog_value, 'k', s.name), format(catalog_value, 'options', s.name), s.name);
    PERFORM customer_analytics._report_progress(format('building %I.%I (segmentation %s: members, 2 of 4)',
                                                       s.view_schema, s.name || '_members', s.name));
    EXECUTE format('CREATE MATERIALIZED VIEW %I.%I AS '
                   'SELECT f.customer_code, customer_analytics.kmeans_predict(%s, f.features) AS cluster, '
                   'f.visits, f.total_spend, f.ticket_size, f.skus, f.total_quantity, f.first_order, f.last_order, '
                   'f.recency_days, f.tenure_days, f.span_days, f.quantity_per_visit, f.days_per_visit, '
                   'f.skus_per_visit, f.diff, f.features '
                   'FROM customer_analytics.segmentation_features(%L) f ORDER BY f.customer_code',
                   s.view_schema, s.name || '_members', model, s.name);
    PERFORM customer_analytics._report_progress(format('building %I.%I (segmentation %s: cluster profiles, 3 of 4)',
                                                       s.view_schema, s.name || '_profiles', s.name));
    -- profiles and elbow over segmentation_features() too: during
    -- refresh_segmentation() every view reads the features it computed once
    EXECUTE format('CREATE MATERIALIZED VIEW %I.%I AS '
                   'SELECT * FROM customer_analytics._segmentation_profiles(%L, %s)',
                   s.view_schema, s.name || '_profiles', s.name, model);
    PERFORM customer_analytics._report_progress(format('building %I.%I (segmentation %s: elbow (k-means for each k), 4 of 4)',
                                                       s.view_schema, s.name || '_elbow', s.name));
    EXECUTE format('CREATE MATERIALIZED VIEW %I.%I AS '
                   'SELECT * FROM customer_analytics._segmentation_elbow(%L)',
                   s.view_schema, s.name || '_elbow', s.name);

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

------------------------------------------------------------------------------
-- The rollup under every writer.  The trigger is C (rollup_trigger.c): it
-- runs the statements below as the rollup's owner, so writers need no
-- privilege on the extension's schema, and their row-level security does
-- not hide orders from the recomputation.  Two transactions that touch one
-- order (a header in one, its lines in the other, in any order) take turns
-- at the order's row in rollup_keys_<id>: the second waits for the first to
-- commit and recomputes the order with a snapshot that sees it.
------------------------------------------------------------------------------

-- Long work publishes its phase in pg_stat_activity.query (progress.c).
CREATE FUNCTION _report_progress(phase text) RETURNS void
AS 'MODULE_PATHNAME', 'report_progress'
LANGUAGE C STRICT;
COMMENT ON FUNCTION _report_progress IS
'Show "customer_analytics: <phase> | <statement>" as this session''s activity in pg_stat_activity';

-- what each phase of the last rebuild took (lock, triggers, copy, analyze)
ALTER TABLE rollups ADD COLUMN rebuild_phases jsonb;
COMMENT ON COLUMN rollups.rebuild_phases IS
'milliseconds per phase of the last rebuild: lock_ms (waiting for writers), triggers_ms, copy_ms (one scan of the lines), analyze_ms';

CREATE FUNCTION _rollup_keys_table(id int) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT 'customer_analytics.rollup_keys_' || id $$;

-- The date of a rollup row, checked: order_date when the triggers could
-- read the source's value, else the error checked_order_date() gives on the
-- source (the value is in order_date_raw).  Every reader of the rollup, in
-- full or from the order changes, dates its orders through this one
-- function (C, order_date.c, with checked_order_date()'s own check).
CREATE FUNCTION _rollup_order_date(order_date date, order_date_raw text, order_type text, order_number text)
RETURNS date
AS 'MODULE_PATHNAME', 'rollup_order_date'
LANGUAGE C IMMUTABLE PARALLEL SAFE COST 10;
COMMENT ON FUNCTION _rollup_order_date(date, text, text, text) IS
'internal: a rollup row''s order date, or the error checked_order_date() raises on the source''s value';

CREATE FUNCTION _source_trust_problem(source_schema text) RETURNS text
AS 'MODULE_PATHNAME', 'source_trust_problem'
LANGUAGE C STABLE STRICT;
COMMENT ON FUNCTION _source_trust_problem IS
'NULL when reading the source''s tables runs no code of a role the current role does not trust; else why';

-- Why the current role (the rollup's owner, in the trigger) could not keep
-- the rollup exact, or NULL: it must read every row of the three source
-- tables, and reading them must run no code of a role it does not trust.
CREATE FUNCTION _rollup_source_problem(source_schema text) RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    t text;
    rel regclass;
BEGIN
    FOREACH t IN ARRAY ARRAY['customers', 'sales_orders', 'sales_order_lines'] LOOP
        rel := to_regclass(format('%I.%I', source_schema, t));
        IF rel IS NULL THEN
            RETURN format('source table %I.%I does not exist', source_schema, t);
        ELSIF NOT has_table_privilege(rel, 'SELECT') THEN
            RETURN format('role %I has no SELECT privilege on %s', current_user, rel);
        ELSIF row_security_active(rel) THEN
            RETURN format('row-level security applies to role %I on %s, so it cannot see every order', current_user, rel);
        END IF;
    END LOOP;
    RETURN customer_analytics._source_trust_problem(source_schema);
END $$;

-- The statements that bring the rollup rows of the orders listed by `keys`
-- up to date, recording in the dirty table each recomputed order's old row
-- (sign -1) and new row (+1, with the quantity and product codes a
-- segmentation's feature state needs), which name the customers they touch.  The first
-- takes the orders' rows in the keys table, in key order: an order whose
-- header or lines another open transaction wrote (even one that inserted it,
-- invisible to this one) makes this one wait for that commit, and the
-- recomputation that follows takes a new snapshot (each statement does, in
-- READ COMMITTED), so it sees both.  Replaces 1.1's lock on the header
-- row, which could not see a header inserted by an open transaction.
CREATE OR REPLACE FUNCTION _rollup_resync_sql(r rollups, keys text) RETURNS text[]
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT ARRAY[
        -- one upsert takes every order's row, in key order, through the
        -- primary key: an insert waits for another transaction inserting the
        -- same key, an update for one holding it (a join against the keys
        -- table instead was planned as a nested loop rescanning the
        -- statement's transition table, minutes for a 1 % reload)
        format('INSERT INTO %1$s AS x (order_type, order_number)'
               ' SELECT DISTINCT order_type::text, order_number::text FROM (%2$s) k0'
               ' WHERE order_type IS NOT NULL AND order_number IS NOT NULL ORDER BY 1, 2'
               ' ON CONFLICT (order_type, order_number) DO UPDATE SET order_type = excluded.order_type',
               customer_analytics._rollup_keys_table(r.id), keys),
        format('WITH gone AS (DELETE FROM %1$s r USING (SELECT DISTINCT order_type::text AS t, order_number::text AS n FROM (%3$s) k0) k'
               ' WHERE r.order_type = k.t AND r.order_number = k.n'
               ' RETURNING r.customer_code, r.order_date, r.order_date_raw, r.total, r.quantity, r.product_codes)'
               ' INSERT INTO %2$s (customer_code, order_date, order_date_raw, total, quantity, product_codes, sign)'
               ' SELECT customer_code, order_date, order_date_raw, total, quantity, product_codes, -1 FROM gone'
               ' WHERE customer_code IS NOT NULL',
               customer_analytics._rollup_table(r.id), customer_analytics._rollup_dirty_table(r.id), keys),
        format('WITH added AS (INSERT INTO %1$s %3$s'
               ' RETURNING customer_code, order_date, order_date_raw, total, quantity, product_codes)'
               ' INSERT INTO %2$s (customer_code, order_date, order_date_raw, total, quantity, product_codes, sign)'
               ' SELECT customer_code, order_date, order_date_raw, total, quantity, product_codes, 1 FROM added'
               ' WHERE customer_code IS NOT NULL',
               customer_analytics._rollup_table(r.id), customer_analytics._rollup_dirty_table(r.id),
               customer_analytics._rollup_rows_sql(r, keys))]
$$;

-- Which of the source's three tables a relation is, or belongs to as a
-- partition at any depth; NULL for anything else (a detached partition).
CREATE FUNCTION _rollup_source_table(r rollups, rel oid) RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT t FROM unnest(ARRAY['customers', 'sales_orders', 'sales_order_lines']) t
     WHERE to_regclass(format('%I.%I', r.source_schema, t)) IN
           (SELECT rel UNION ALL SELECT relid FROM pg_partition_ancestors(rel))  -- none for a plain table
$$;

-- Every relation whose writes the rollup must see: each source table and,
-- when it is partitioned, every partition at every depth.
CREATE FUNCTION _rollup_watched_relations(r rollups)
RETURNS TABLE (tab text, rel regclass, is_root boolean)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT t, x.rel, x.rel = x.root
      FROM unnest(ARRAY['customers', 'sales_orders', 'sales_order_lines']) t,
           LATERAL (SELECT to_regclass(format('%I.%I', r.source_schema, t)) AS root) s,
           -- pg_partition_tree gives no row for a plain table
           LATERAL (SELECT s.root AS rel, s.root
                    UNION SELECT p.relid, s.root FROM pg_partition_tree(s.root) p) x
     WHERE s.root IS NOT NULL
$$;

-- The statements creating the rollup's triggers that are missing: on every
-- watched relation one statement trigger per kind of write (a write that
-- names a partition fires only the partition's statement triggers), ENABLE
-- ALWAYS so that session_replication_role = replica does not skip them; on
-- each source table one row trigger for logical replication's apply worker
-- (which fires row triggers only), ENABLE REPLICA, which PostgreSQL clones
-- onto every partition, present and future.
CREATE FUNCTION _rollup_missing_triggers_sql(r rollups) RETURNS text[]
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT COALESCE(array_agg(u.stmt ORDER BY m.rel::text, m.name, u.i), '{}')
      FROM (SELECT w.rel, 'customer_analytics_rollup_' || lower(o) AS name,
                   ARRAY[format('CREATE TRIGGER %I AFTER %s ON %s %s FOR EACH STATEMENT '
                                'EXECUTE FUNCTION customer_analytics._rollup_sync(%L)',
                                'customer_analytics_rollup_' || lower(o), o, w.rel,
                                CASE o WHEN 'INSERT' THEN 'REFERENCING NEW TABLE AS new_rows'
                                       WHEN 'UPDATE' THEN 'REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows'
                                       WHEN 'DELETE' THEN 'REFERENCING OLD TABLE AS old_rows'
                                       ELSE '' END, r.id),
                         format('ALTER TABLE %s ENABLE ALWAYS TRIGGER %I', w.rel,
                                'customer_analytics_rollup_' || lower(o))] AS stmts
              FROM customer_analytics._rollup_watched_relations(r) w,
                   unnest(ARRAY['INSERT', 'UPDATE', 'DELETE', 'TRUNCATE']) o
            UNION ALL
            SELECT w.rel, 'customer_analytics_rollup_apply',
                   ARRAY[format('CREATE TRIGGER customer_analytics_rollup_apply AFTER INSERT OR UPDATE OR DELETE ON %s '
                                'FOR EACH ROW EXECUTE FUNCTION customer_analytics._rollup_sync_row(%L)', w.rel, r.id),
                         format('ALTER TABLE %s ENABLE REPLICA TRIGGER customer_analytics_rollup_apply', w.rel)]
              FROM customer_analytics._rollup_watched_relations(r) w
             WHERE w.is_root
            UNION ALL
            -- the apply worker's batch, brought up to date at its commit
            SELECT w.rel, 'customer_analytics_rollup_apply_flush',
                   ARRAY[format('CREATE CONSTRAINT TRIGGER customer_analytics_rollup_apply_flush '
                                'AFTER INSERT OR UPDATE OR DELETE ON %s DEFERRABLE INITIALLY DEFERRED '
                                'FOR EACH ROW EXECUTE FUNCTION customer_analytics._rollup_sync_flush(%L)', w.rel, r.id),
                         format('ALTER TABLE %s ENABLE REPLICA TRIGGER customer_analytics_rollup_apply_flush', w.rel)]
              FROM customer_analytics._rollup_watched_relations(r) w
             WHERE w.is_root) m,
           unnest(m.stmts) WITH ORDINALITY AS u(stmt, i)
     WHERE NOT EXISTS (SELECT 1 FROM pg_trigger g WHERE g.tgrelid = m.rel AND g.tgname = m.name)
$$;

-- Why the rollup's triggers do not see every write, or NULL: a watched
-- relation (a partition created or attached while the event trigger could
-- not add them) lacks one, or one is disabled.
CREATE FUNCTION _rollup_trigger_problem(r rollups) RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT format('the rollup trigger %s on %s is %s', n, w.rel,
                  CASE WHEN g.oid IS NULL THEN 'missing' WHEN g.tgenabled = 'D' THEN 'disabled'
                       WHEN g.tgenabled = 'R' THEN 'enabled for replica sessions only'
                       ELSE 'not enabled for replica sessions' END)
      FROM customer_analytics._rollup_watched_relations(r) w
     CROSS JOIN unnest(ARRAY['customer_analytics_rollup_insert', 'customer_analytics_rollup_update',
                             'customer_analytics_rollup_delete', 'customer_analytics_rollup_truncate',
                             'customer_analytics_rollup_apply', 'customer_analytics_rollup_apply_flush']) n
      LEFT JOIN pg_trigger g ON g.tgrelid = w.rel AND g.tgname = n
     WHERE g.oid IS NULL OR g.tgenabled = 'D'
        -- statement triggers fire in every session (ALWAYS); the apply
        -- worker's in replica sessions (REPLICA, or ALWAYS)
        OR (n LIKE 'customer_analytics_rollup_apply%' AND g.tgenabled = 'O')
        OR (n NOT LIKE 'customer_analytics_rollup_apply%' AND g.tgenabled <> 'A')
     ORDER BY w.rel::text, n LIMIT 1
$$;

-- What the upkeep runs for one event (rollup_trigger.c calls it as the
-- rollup's owner and executes the statements where a statement trigger's
-- transition tables new_rows / old_rows are visible).  op is the write
-- (INSERT, UPDATE, DELETE, TRUNCATE) or the DDL's command tag; rel is the
-- relation written or altered; rows_sql, from the row trigger, lists the
-- keys of the row written, instead of the transition tables.  A rollup whose
-- owner cannot keep it exact is disabled, with a warning, rather than
-- refusing the write.
CREATE FUNCTION _rollup_sync_sql(rollup_id int, op text, rel oid, rows_sql text) RETURNS text[]
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r customer_analytics.rollups;
    problem text;
    tab text;
    keys text;
BEGIN
    SELECT * INTO r FROM customer_analytics.rollups WHERE id = rollup_id;
    IF NOT FOUND OR r.state <> 'current' THEN
        RETURN '{}';
    END IF;
    tab := customer_analytics._rollup_source_table(r, rel);
    IF tab IS NULL THEN
        RETURN '{}';            -- no longer part of the source (detached)
    END IF;
    problem := customer_analytics._rollup_source_problem(r.source_schema);
    IF problem IS NOT NULL THEN
        UPDATE customer_analytics.rollups x SET state = 'disabled' WHERE x.id = r.id;
        RAISE WARNING 'order rollup of "%" disabled: %', r.source_schema, problem
            USING HINT = 'The functions read the source tables meanwhile. Fix the cause, then SELECT customer_analytics.rebuild_rollup('
                         || quote_literal(r.source_schema) || ').';
        RETURN '{}';
    END IF;

    IF op = 'ALTER TABLE TRIGGERS' THEN
        -- triggers enabled or disabled by hand: if one of the rollup's no
        -- longer fires, writes from now on could go unseen, and enabling it
        -- later would not bring them back: the rollup waits for a rebuild
        problem := customer_analytics._rollup_trigger_problem(r);
        IF problem IS NOT NULL THEN
            UPDATE customer_analytics.rollups x SET state = 'disabled' WHERE x.id = r.id;
            RAISE WARNING 'order rollup of "%" disabled: %', r.source_schema, problem
                USING HINT = 'Writes while a rollup trigger is off are not seen. The functions read the source tables until '
                             'SELECT customer_analytics.rebuild_rollup(' || quote_literal(r.source_schema) || ').';
        END IF;
        RETURN '{}';
    END IF;
    IF op IN ('CREATE TABLE', 'ALTER TABLE') THEN
        -- a new partition gets the triggers; an ALTER TABLE (ATTACH, DETACH,
        -- a rewrite that changes values) changed rows no trigger saw: every
        -- order is recomputed and every customer marked changed
        RETURN customer_analytics._rollup_missing_triggers_sql(r)
            || CASE WHEN op = 'ALTER TABLE' THEN ARRAY[
                   format('DELETE FROM %s', customer_analytics._rollup_table(r.id)),
                   format('INSERT INTO %s %s', customer_analytics._rollup_table(r.id),
                          customer_analytics._rollup_rows_sql(r, NULL)),
                   format('INSERT INTO %s (customer_code) VALUES (NULL)', customer_analytics._rollup_dirty_table(r.id))]
               ELSE '{}' END;
    END IF;
    IF op = 'TRUNCATE' THEN
        -- every order may be affected: resync them all, and mark every
        -- customer dirty (a NULL code) so that campaigns recompute in full
        RETURN CASE WHEN tab <> 'customers' THEN ARRAY[
                   format('DELETE FROM %s', customer_analytics._rollup_table(r.id)),
                   format('INSERT INTO %s %s', customer_analytics._rollup_table(r.id),
                          customer_analytics._rollup_rows_sql(r, NULL))] ELSE '{}' END
               || format('INSERT INTO %s (customer_code) VALUES (NULL)', customer_analytics._rollup_dirty_table(r.id));
    END IF;
    IF tab = 'customers' THEN
        -- the rollup keeps no customer data; changed customers are dirty
        keys := CASE WHEN rows_sql IS NULL THEN customer_analytics._transition_rows(op, 'customer_code::text AS c')
                     ELSE format('SELECT customer_code::text AS c FROM (%s) x', rows_sql) END;
        RETURN ARRAY[format('INSERT INTO %s (customer_code) SELECT DISTINCT c FROM (%s) k WHERE c IS NOT NULL',
                            customer_analytics._rollup_dirty_table(r.id), keys)];
    END IF;
    -- orders or lines: the orders they name are recomputed from the source
    keys := CASE WHEN rows_sql IS NULL THEN customer_analytics._transition_rows(op, 'order_type, order_number')
                 ELSE format('SELECT order_type, order_number FROM (%s) x', rows_sql) END;
    RETURN customer_analytics._rollup_resync_sql(r, keys);
END $$;

-- The triggers: same name and signature as 1.1's plpgsql function for the
-- statement trigger, so existing triggers keep pointing at it.
CREATE OR REPLACE FUNCTION _rollup_sync() RETURNS trigger
AS 'MODULE_PATHNAME', 'rollup_sync_trigger'
LANGUAGE C;
CREATE FUNCTION _rollup_sync_row() RETURNS trigger
AS 'MODULE_PATHNAME', 'rollup_sync_row_trigger'
LANGUAGE C;
CREATE FUNCTION _rollup_sync_flush() RETURNS trigger
AS 'MODULE_PATHNAME', 'rollup_sync_flush_trigger'
LANGUAGE C;

-- (Re)create a rollup's triggers on every watched relation.
CREATE OR REPLACE FUNCTION _rollup_create_triggers(r rollups) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    stmt text;
BEGIN
    PERFORM customer_analytics._rollup_drop_triggers(r);
    FOREACH stmt IN ARRAY customer_analytics._rollup_missing_triggers_sql(r) LOOP
        EXECUTE stmt;
    END LOOP;
END $$;

-- Drop a rollup's triggers wherever they are, partitions detached since
-- included (the row trigger's clones go with their parent's).
CREATE OR REPLACE FUNCTION _rollup_drop_triggers(r rollups) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    g record;
BEGIN
    FOR g IN SELECT t.tgname, t.tgrelid::regclass AS rel FROM pg_trigger t
              WHERE t.tgname LIKE 'customer\_analytics\_rollup\_%' AND t.tgparentid = 0
                AND t.tgfoid IN ('customer_analytics._rollup_sync()'::regprocedure,
                                 'customer_analytics._rollup_sync_row()'::regprocedure,
                                 'customer_analytics._rollup_sync_flush()'::regprocedure)
                AND encode(t.tgargs, 'escape') = r.id || '\000'
    LOOP
        EXECUTE format('DROP TRIGGER %I ON %s', g.tgname, g.rel);
    END LOOP;
END $$;

-- The event trigger (rollup_trigger.c): after CREATE TABLE or ALTER TABLE
-- on a current rollup's source table or one of its partitions, the new
-- partitions get the triggers and, after ALTER TABLE, every order is
-- recomputed, as the rollup's owner.  ENABLE ALWAYS: DDL applied with
-- session_replication_role = replica is followed too.
CREATE FUNCTION _rollup_ddl_watch() RETURNS event_trigger
AS 'MODULE_PATHNAME', 'rollup_ddl_watch'
LANGUAGE C;
CREATE EVENT TRIGGER customer_analytics_rollup_ddl ON ddl_command_end
    WHEN TAG IN ('CREATE TABLE', 'ALTER TABLE')
    EXECUTE FUNCTION _rollup_ddl_watch();
ALTER EVENT TRIGGER customer_analytics_rollup_ddl ENABLE ALWAYS;

-- Rollup generations never repeat, not across drop_rollup and enable_rollup,
-- nor a dump and restore (the sequence is dumped): a campaign's incremental
-- state names the generation it was computed from.
CREATE SEQUENCE rollup_generation_seq;
SELECT pg_catalog.pg_extension_config_dump('rollup_generation_seq', '');
SELECT setval('rollup_generation_seq', GREATEST(COALESCE((SELECT max(generation) FROM rollups), 0), 1));
GRANT USAGE ON SEQUENCE rollup_generation_seq TO PUBLIC;

-- As in 1.1, with the triggers checked on every partition too.
CREATE OR REPLACE FUNCTION _rollup_for_reading(source_schema text, OUT rollup text, OUT reason text)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r customer_analytics.rollups;
    t text;
    problem text;
BEGIN
    SELECT * INTO r FROM customer_analytics.rollups x WHERE x.source_schema = _rollup_for_reading.source_schema;
    IF NOT FOUND THEN
        reason := 'no rollup: customer_analytics.enable_rollup() creates one';
        RETURN;
    END IF;
    IF r.state <> 'current' THEN
        reason := 'the rollup is ' || r.state || ': customer_analytics.rebuild_rollup() makes it current';
        RETURN;
    END IF;
    problem := customer_analytics._rollup_trigger_problem(r);
    IF problem IS NOT NULL THEN
        reason := problem || ': customer_analytics.rebuild_rollup() restores the triggers';
        RETURN;
    END IF;
    IF NOT has_table_privilege(customer_analytics._rollup_table(r.id), 'SELECT') THEN
        reason := 'no SELECT privilege on ' || customer_analytics._rollup_table(r.id);
        RETURN;
    END IF;
    FOREACH t IN ARRAY ARRAY['customers', 'sales_orders', 'sales_order_lines'] LOOP
        IF NOT has_table_privilege(format('%I.%I', r.source_schema, t), 'SELECT') THEN
            reason := format('no SELECT privilege on %I.%I', r.source_schema, t);
            RETURN;
        END IF;
        IF row_security_active(format('%I.%I', r.source_schema, t)) THEN
            reason := format('row-level security applies to %I.%I', r.source_schema, t);
            RETURN;
        END IF;
    END LOOP;
    rollup := customer_analytics._rollup_table(r.id);
END $$;

-- (Re)create the keys table a rollup's triggers lock orders in, owned by the
-- rollup's owner like its other tables, and give the dirty table its
-- order-row columns; rebuild_rollup (and so enable_rollup) calls it.
CREATE FUNCTION _rollup_create_keys_table(r rollups) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF to_regclass(customer_analytics._rollup_keys_table(r.id)) IS NULL THEN
        EXECUTE format('CREATE TABLE %s (order_type text, order_number text, PRIMARY KEY (order_type, order_number))',
                       customer_analytics._rollup_keys_table(r.id));
        EXECUTE format('COMMENT ON TABLE %s IS %L', customer_analytics._rollup_keys_table(r.id),
                       format('Order keys of source schema %s the rollup triggers lock, so that writers of one order take turns', r.source_schema));
        EXECUTE format('ALTER TABLE %s OWNER TO %I', customer_analytics._rollup_keys_table(r.id),
                       (SELECT pg_get_userbyid(relowner) FROM pg_class
                         WHERE oid = customer_analytics._rollup_table(r.id)::regclass));
    END IF;
    -- and the dirty table's order-row columns (older rollups lack them)
    PERFORM customer_analytics._rollup_add_delta_columns(r);
END $$;

-- The owner's checks before a rollup is built, as errors: the triggers
-- would otherwise disable it at the first write.
CREATE FUNCTION _require_rollup_source(source_schema text) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    problem text := customer_analytics._rollup_source_problem(source_schema);
BEGIN
    IF problem IS NOT NULL THEN
        RAISE EXCEPTION 'the order rollup of "%" cannot be kept exact: %', source_schema, problem
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'Run enable_rollup and rebuild_rollup as a role that reads every row of the three tables '
                         '(their owner, a superuser or a BYPASSRLS role) and trusts their owners; its triggers run as that role.';
    END IF;
END $$;
-- rebuild_rollup()'s work, as the rollup's owner: the keys table, the
-- triggers, the copy, the privileges reset.
CREATE FUNCTION _rebuild_rollup_as_owner(source_schema text) RETURNS rollups
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r customer_analytics.rollups := customer_analytics._rollup(source_schema);
    started timestamptz := clock_timestamp();
    phase_start timestamptz;
    phases jsonb := '{}';
    n bigint;
    what text;
BEGIN
    PERFORM customer_analytics._require_owner_context('rollup', r.source_schema, r.owner);
    PERFORM customer_analytics._check_rollup_source(r.source_schema);
    PERFORM customer_analytics._require_rollup_source(r.source_schema);
    what := format('rebuild_rollup(%L)', r.source_schema);
    -- writers wait for the rebuild (readers of the source do not), so no
    -- write slips between the copy and the triggers
    phase_start := clock_timestamp();
    PERFORM customer_analytics._report_progress(what || ' phase 1/4: waiting for the source tables'' writers (SHARE lock)');
    EXECUTE format('LOCK TABLE %1$I.customers, %1$I.sales_orders, %1$I.sales_order_lines IN SHARE MODE',
                   r.source_schema);
    phases := phases || jsonb_build_object('lock_ms', round(extract(epoch FROM clock_timestamp() - phase_start) * 1000, 1));
    phase_start := clock_timestamp();
    PERFORM customer_analytics._report_progress(what || ' phase 2/4: creating the triggers');
    PERFORM customer_analytics._rollup_create_keys_table(r);
    -- the privileges on its tables as enable_rollup gives them: a grant
    -- left from before (1.4's writers) or made since does not survive
    PERFORM customer_analytics._rollup_reset_grants(r);
    -- not current while its triggers are recreated: the event trigger
    -- leaves the rollup's own ALTER TABLE ... ENABLE ALWAYS TRIGGER alone
    UPDATE customer_analytics.rollups x SET state = 'disabled' WHERE x.id = r.id;
    PERFORM customer_analytics._rollup_create_triggers(r);
    phases := phases || jsonb_build_object('triggers_ms', round(extract(epoch FROM clock_timestamp() - phase_start) * 1000, 1));
    phase_start := clock_timestamp();
    PERFORM customer_analytics._report_progress(what || ' phase 3/4: copying every confirmed order (one scan of the lines)');
    EXECUTE format('TRUNCATE %s, %s, %s', customer_analytics._rollup_table(r.id),
                   customer_analytics._rollup_dirty_table(r.id), customer_analytics._rollup_keys_table(r.id));
    -- stored in customer order: refreshing a set of customers then reads
    -- few pages of the rollup
    EXECUTE format('INSERT INTO %s SELECT * FROM (%s) x ORDER BY 3', customer_analytics._rollup_table(r.id),
                   customer_analytics._rollup_rows_sql(r, NULL));
    GET DIAGNOSTICS n = ROW_COUNT;
    phases := phases || jsonb_build_object('copy_ms', round(extract(epoch FROM clock_timestamp() - phase_start) * 1000, 1));
    phase_start := clock_timestamp();
    PERFORM customer_analytics._report_progress(what || format(' phase 4/4: ANALYZE of %s orders', n));
    EXECUTE format('ANALYZE %s', customer_analytics._rollup_table(r.id));
    phases := phases || jsonb_build_object('analyze_ms', round(extract(epoch FROM clock_timestamp() - phase_start) * 1000, 1));
    UPDATE customer_analytics.rollups x
       SET state = 'current', generation = nextval('customer_analytics.rollup_generation_seq'), rebuilt_at = now(),
           rebuild_ms = round(extract(epoch FROM clock_timestamp() - started) * 1000, 1),
           rollup_rows = n, rebuild_phases = phases
     WHERE x.id = r.id
    RETURNING * INTO r;
    -- its phases are in rebuild_phases; a refresh later in the transaction
    -- has its own
    PERFORM customer_analytics._progress_phases();
    RAISE NOTICE 'order rollup of "%" rebuilt: % orders in %', r.source_schema, n, customer_analytics._rollup_table(r.id);
    RETURN r;
END $$;

-- Check the caller may rebuild the rollup, then do it as the rollup's owner.
CREATE OR REPLACE FUNCTION rebuild_rollup(source_schema text DEFAULT NULL) RETURNS rollups
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r customer_analytics.rollups := customer_analytics._rollup(source_schema);
BEGIN
    PERFORM customer_analytics._require_definition_owner('rollup', r.source_schema, r.owner);
    RETURN customer_analytics._as_owner(r.owner,
        format('SELECT customer_analytics._rebuild_rollup_as_owner(%L)', r.source_schema))::customer_analytics.rollups;
END $$;

-- As in 1.1, with the owner's checks up front and no grants to writers
-- (the triggers run as the rollup's owner; the argument is kept for
-- compatibility and still checks the roles exist).
CREATE OR REPLACE FUNCTION enable_rollup(source_schema text DEFAULT NULL,
                              readers text[] DEFAULT '{}',
                              writers text[] DEFAULT '{}')
RETURNS rollups
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    src text := customer_analytics._source_schema(source_schema);
    is_date boolean := customer_analytics._check_rollup_source(src);
    r customer_analytics.rollups;
    t text;
    role text;
BEGIN
    FOREACH t IN ARRAY ARRAY['customers', 'sales_orders', 'sales_order_lines'] LOOP
        IF (SELECT relkind FROM pg_class WHERE oid = format('%I.%I', src, t)::regclass) NOT IN ('r', 'p') THEN
            RAISE EXCEPTION 'source "%.%" is not a table', src, t
                USING ERRCODE = 'wrong_object_type',
                      HINT = 'The rollup is kept by triggers on the tables the ERP writes; enable it on the schema that holds the tables, not views over them.';
        END IF;
    END LOOP;
    FOREACH role IN ARRAY readers || writers LOOP
        IF to_regrole(quote_ident(role)) IS NULL THEN
            RAISE EXCEPTION 'role "%" does not exist', role
                USING ERRCODE = 'undefined_object', HINT = 'readers and writers list existing roles.';
        END IF;
    END LOOP;
    PERFORM customer_analytics._require_rollup_source(src);
    -- the table lock serialises concurrent enables
    LOCK TABLE customer_analytics.rollups IN SHARE ROW EXCLUSIVE MODE;
    IF EXISTS (SELECT 1 FROM customer_analytics.rollups x WHERE x.source_schema = src) THEN
        RAISE EXCEPTION 'source schema "%" already has an order rollup', src
            USING ERRCODE = 'duplicate_object',
                  HINT = 'customer_analytics.rebuild_rollup() recomputes it; customer_analytics.drop_rollup() removes it.';
    END IF;
    INSERT INTO customer_analytics.rollups (source_schema, id, order_date_is_date, state, readers, writers)
    VALUES (src, (SELECT COALESCE(max(id), 0) + 1 FROM customer_analytics.rollups), is_date, 'current',
            readers, writers)
    RETURNING * INTO r;

    EXECUTE format('CREATE TABLE %s (order_type text NOT NULL, order_number text NOT NULL,'
                   ' customer_code text, delivery_route text, order_date date, order_date_raw text,'
                   ' total numeric, line_count int NOT NULL, quantity numeric, product_codes text[])',
                   customer_analytics._rollup_table(r.id));
    EXECUTE format('CREATE INDEX ON %s (order_type, order_number)', customer_analytics._rollup_table(r.id));
    EXECUTE format('CREATE INDEX ON %s (customer_code)', customer_analytics._rollup_table(r.id));
    EXECUTE format('COMMENT ON TABLE %s IS %L', customer_analytics._rollup_table(r.id),
                   format('Order rollup of source schema %s: one row per confirmed order, kept by triggers. '
                          'Check: SELECT * FROM customer_analytics.check_rollup(%L).', src, src));
    EXECUTE format('CREATE TABLE %s (customer_code text, xid xid8 NOT NULL DEFAULT pg_current_xact_id())',
                   customer_analytics._rollup_dirty_table(r.id));
    EXECUTE format('COMMENT ON TABLE %s IS %L', customer_analytics._rollup_dirty_table(r.id),
                   format('Customers of source schema %s changed by each transaction (NULL: all), for incremental campaign refresh', src));
    FOREACH role IN ARRAY readers LOOP
        EXECUTE format('GRANT SELECT ON %s, %s TO %I', customer_analytics._rollup_table(r.id),
                       customer_analytics._rollup_dirty_table(r.id), role);
    END LOOP;
    -- writers need nothing here: the triggers run as the rollup's owner
    RETURN customer_analytics.rebuild_rollup(src);
END $$;

-- disable_rollup()'s work, as the rollup's owner.
CREATE FUNCTION _disable_rollup_as_owner(source_schema text) RETURNS rollups
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r customer_analytics.rollups := customer_analytics._rollup(source_schema);
BEGIN
    PERFORM customer_analytics._require_owner_context('rollup', r.source_schema, r.owner);
    PERFORM customer_analytics._rollup_drop_triggers(r);
    UPDATE customer_analytics.rollups x SET state = 'disabled' WHERE x.id = r.id RETURNING * INTO r;
    RAISE NOTICE 'order rollup of "%" disabled: functions read the source tables until customer_analytics.rebuild_rollup(%)',
        r.source_schema, quote_literal(r.source_schema);
    RETURN r;
END $$;

-- Check the caller may disable the rollup, then do it as the rollup's owner.
CREATE OR REPLACE FUNCTION disable_rollup(source_schema text DEFAULT NULL) RETURNS rollups
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r customer_analytics.rollups := customer_analytics._rollup(source_schema);
BEGIN
    PERFORM customer_analytics._require_definition_owner('rollup', r.source_schema, r.owner);
    RETURN customer_analytics._as_owner(r.owner,
        format('SELECT customer_analytics._disable_rollup_as_owner(%L)', r.source_schema))::customer_analytics.rollups;
END $$;

-- drop_rollup()'s work, as the rollup's owner.
CREATE FUNCTION _drop_rollup_as_owner(source_schema text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r customer_analytics.rollups := customer_analytics._rollup(source_schema);
BEGIN
    PERFORM customer_analytics._require_owner_context('rollup', r.source_schema, r.owner);
    PERFORM customer_analytics._rollup_drop_triggers(r);
    EXECUTE format('DROP TABLE IF EXISTS %s, %s, %s', customer_analytics._rollup_table(r.id),
                   customer_analytics._rollup_dirty_table(r.id), customer_analytics._rollup_keys_table(r.id));
    DELETE FROM customer_analytics.rollups x WHERE x.id = r.id;
    -- the campaigns' incremental states described this rollup: gone with it
    DELETE FROM customer_analytics.campaign_refresh_state s
     USING customer_analytics.campaigns c
     WHERE c.name = s.campaign AND c.source_schema = r.source_schema;
END $$;

-- Check the caller may drop the rollup, then do it as the rollup's owner.
CREATE OR REPLACE FUNCTION drop_rollup(source_schema text DEFAULT NULL) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r customer_analytics.rollups := customer_analytics._rollup(source_schema);
BEGIN
    PERFORM customer_analytics._require_definition_owner('rollup', r.source_schema, r.owner);
    PERFORM customer_analytics._as_owner(r.owner,
        format('SELECT customer_analytics._drop_rollup_as_owner(%L)', r.source_schema));
END $$;

-- Rollups enabled before 1.5 have no keys table, and the extension's script
-- must not create one (it would become part of the extension, and be left
-- out of dumps): they read as disabled until their owner rebuilds them.
DO $$
DECLARE
    n int;
BEGIN
    UPDATE customer_analytics.rollups SET state = 'disabled' WHERE state = 'current';
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n > 0 THEN
        -- a WARNING: an extension script shows nothing quieter
        RAISE WARNING '% order rollup(s) disabled by the update to 1.5: the functions read the source tables until '
                      'SELECT customer_analytics.rebuild_rollup(source_schema) FROM customer_analytics.rollups; is run', n;
    END IF;
END $$;

-- pivot_months() with an infinite bound never ended (a month series to
-- infinity); a window is now refused unless both bounds are finite, and
-- beyond the 1,200 months monthly_revenue() accepts.  NULL, empty and
-- unbounded windows still give no months, as before.
CREATE OR REPLACE FUNCTION pivot_months(revenue_window daterange)
RETURNS TABLE (month date, first_day date, last_day date, column_name text, partial boolean)
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF revenue_window IS NULL OR isempty(revenue_window) OR lower_inf(revenue_window) OR upper_inf(revenue_window) THEN
        RETURN;
    END IF;
    IF NOT isfinite(lower(revenue_window)) OR NOT isfinite(upper(revenue_window)) THEN
        RAISE EXCEPTION 'revenue_window must have finite bounds, not %', revenue_window
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'For example revenue_window => ''[2025-09-01,2026-01-07]''.';
    END IF;
    IF (extract(year FROM upper(revenue_window) - 1) - extract(year FROM lower(revenue_window))) * 12
       + extract(month FROM upper(revenue_window) - 1) - extract(month FROM lower(revenue_window)) + 1 > 1200 THEN
        RAISE EXCEPTION 'revenue_window spans more than 1200 months'
            USING ERRCODE = 'program_limit_exceeded',
                  DETAIL = format('The window %s touches more months than monthly_revenue() accepts.', revenue_window),
                  HINT = 'Split the window, or aggregate by year.';
    END IF;
    RETURN QUERY
    SELECT m::date,
           greatest(m::date, lower(revenue_window)),
           least((m + interval '1 month')::date, upper(revenue_window)) - 1,
           to_char(m, '"rev_"YYYY_MM'),
           lower(revenue_window) > m::date OR upper(revenue_window) < (m + interval '1 month')::date
      FROM generate_series(date_trunc('month', lower(revenue_window)),
                           date_trunc('month', upper(revenue_window) - 1),
                           interval '1 month') AS m;
END $$;

------------------------------------------------------------------------------
-- Refresh status and history.  Every refresh by refresh_campaign(),
-- refresh_segmentation() (alter_campaign() calls the first) and every
-- scheduled run records a row: when, how long, full or incremental and why,
-- rows, and success or the error.  A failed refresh rolls back with its
-- transaction, so pg_cron jobs CALL run_scheduled_refresh(), a procedure
-- that catches the error, records it, COMMITs, then raises it again (pg_cron
-- then marks the run failed too).  A plain REFRESH MATERIALIZED VIEW is not
-- recorded.  Everyone may read the history (like the catalogs); only a
-- definition's owner writes its rows.  Each definition keeps its last
-- customer_analytics.refresh_history_keep rows (100 unless set).
------------------------------------------------------------------------------
CREATE TABLE refresh_history (
    id          bigserial PRIMARY KEY,
    kind        text NOT NULL CHECK (kind IN ('campaign', 'segmentation')),
    name        text NOT NULL,
    owner       name NOT NULL,
    started_at  timestamptz NOT NULL,
    duration_ms numeric NOT NULL,
    via         text NOT NULL CHECK (via IN ('function', 'scheduled')),
    mode        text,
    rows        bigint,
    succeeded   boolean NOT NULL,
    error       text,
    phases      jsonb,
    CHECK (succeeded = (error IS NULL))
);
CREATE INDEX refresh_history_definition ON refresh_history (kind, name, id);
COMMENT ON TABLE refresh_history IS
'One row per refresh of a campaign or segmentation (the last customer_analytics.refresh_history_keep, default 100, per definition); list_campaigns() and list_segmentations() show the last one';
COMMENT ON COLUMN refresh_history.via IS 'function: refresh_campaign/refresh_segmentation/alter_campaign; scheduled: run_scheduled_refresh (pg_cron)';
COMMENT ON COLUMN refresh_history.mode IS 'build, full or incremental or delta, and why (NULL for a failed refresh)';
COMMENT ON COLUMN refresh_history.phases IS
'what took the time: each phase of the build or refresh (as pg_stat_activity showed it while it ran) and its duration, [{"phase": ..., "ms": ...}]';
COMMENT ON COLUMN refresh_history.rows IS 'rows of <name>_targets (campaign) or <name>_members (segmentation)';
COMMENT ON COLUMN refresh_history.error IS 'SQLSTATE: message of a failed refresh, or ''interrupted: ...'' for a dispatcher''s run whose process ended before it finished; NULL when it succeeded';

-- A row may be written only for an existing definition, by its owner.
CREATE FUNCTION _history_writable(kind text, name text, owner name) RETURNS boolean
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT customer_analytics._is_definition_owner(owner)
       AND owner IN (SELECT c.owner FROM customer_analytics.campaigns c WHERE kind = 'campaign' AND c.name = $2
                     UNION ALL
                     SELECT s.owner FROM customer_analytics.segmentations s WHERE kind = 'segmentation' AND s.name = $2)
$$;

ALTER TABLE refresh_history ENABLE ROW LEVEL SECURITY;
CREATE POLICY status_read ON refresh_history FOR SELECT USING (true);
CREATE POLICY owner_inserts ON refresh_history FOR INSERT
    WITH CHECK (customer_analytics._history_writable(kind, name, owner));
CREATE POLICY owner_deletes ON refresh_history FOR DELETE USING (customer_analytics._is_definition_owner(owner));
-- A dispatcher records the runs it could not do (or that were interrupted)
-- of the schedules it runs, also when it cannot act as their owner: only
-- failures, only scheduled ones, and only for a schedule that names it.
CREATE FUNCTION _dispatches(kind text, name text, owner name) RETURNS boolean
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT EXISTS (SELECT 1 FROM customer_analytics.refresh_schedules r
                    WHERE r.kind = $1 AND r.name = $2 AND r.owner = $3
                      AND r.runner = 'dispatcher' AND r.run_as = current_user)
$$;
CREATE POLICY dispatcher_records ON refresh_history FOR INSERT
    WITH CHECK (NOT succeeded AND via = 'scheduled' AND customer_analytics._dispatches(kind, name, owner));
GRANT SELECT, INSERT, DELETE ON refresh_history TO PUBLIC;
GRANT USAGE ON SEQUENCE refresh_history_id_seq TO PUBLIC;

-- How many rows each definition keeps (the C module defines the setting,
-- 1 to 1,000,000; before it is loaded an unset or malformed value is 100).
CREATE FUNCTION _history_keep() RETURNS int
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE WHEN v ~ '^\s*[0-9]{1,7}\s*$' AND v::int >= 1 THEN v::int ELSE 100 END
      FROM (SELECT current_setting('customer_analytics.refresh_history_keep', true) AS v) s
$$;

-- Record one refresh and prune the definition's older rows.
CREATE FUNCTION _record_history(kind text, name text, owner name, started timestamptz,
                                mode text, rows bigint, error text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    keep int := customer_analytics._history_keep();
BEGIN
    INSERT INTO customer_analytics.refresh_history
           (kind, name, owner, started_at, duration_ms, via, mode, rows, succeeded, error, phases)
    VALUES (kind, name, owner, started, round(extract(epoch FROM clock_timestamp() - started) * 1000, 1),
            COALESCE(NULLIF(current_setting('customer_analytics.refresh_via', true), ''), 'function'),
            -- a pinned "today" is said, never silent (NULL mode: a failure)
            mode || COALESCE('; ' || customer_analytics._pinned_today_note(kind, name), ''),
            rows, error IS NULL, error, customer_analytics._progress_phases());
    DELETE FROM customer_analytics.refresh_history h
     WHERE h.kind = _record_history.kind AND h.name = _record_history.name
       AND h.id < (SELECT min(x.id) FROM (SELECT y.id FROM customer_analytics.refresh_history y
                                            WHERE y.kind = _record_history.kind AND y.name = _record_history.name
                                            ORDER BY y.id DESC LIMIT keep) x);
END $$;

-- As in 1.0, and the refresh is recorded in refresh_history; the features
-- are computed once, into the segmentation's feature state, from the order
-- changes when the state allows (see "Segmentation refresh from
-- per-customer feature state" below), and the four views read them.
CREATE FUNCTION _refresh_segmentation_as_owner(segmentation text, concurrently boolean)
RETURNS segmentations
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    s customer_analytics.segmentations := customer_analytics._segmentation(segmentation);
    started timestamptz := clock_timestamp();
    u record;
BEGIN
    PERFORM customer_analytics._require_owner_context('segmentation', s.name, s.owner);
    -- refreshes of one source take turns (as campaigns'): the state's
    -- snapshot and the pruning of the order changes stay in step
    PERFORM pg_advisory_xact_lock(hashtext('customer_analytics.refresh'), hashtext(s.source_schema));
    u := customer_analytics._segmentation_update_state(s);
    -- (no customer's features changed since the views were computed, nor
    -- as_of: they would come out the same)
    IF NOT u.unchanged THEN
        PERFORM customer_analytics._refresh_views(s.view_schema, customer_analytics._segmentation_views(s.name),
                                                  _refresh_segmentation_as_owner.concurrently);
    END IF;
    s := customer_analytics._record_segmentation_refresh(s.name, started);
    PERFORM customer_analytics._record_history('segmentation', s.name, s.owner, started, u.mode, s.member_rows, NULL);
    RAISE NOTICE 'segmentation "%" refreshed% %: % customers', s.name,
        CASE WHEN _refresh_segmentation_as_owner.concurrently THEN ' concurrently' ELSE '' END,
        CASE WHEN u.delta THEN 'from its order changes' || substr(u.mode, length('delta') + 1) ELSE 'in ' || u.mode END,
        s.member_rows;
    RETURN s;
END $$;

-- Check the caller may refresh the segmentation, then refresh it as its owner.
CREATE OR REPLACE FUNCTION refresh_segmentation(segmentation text, concurrently boolean DEFAULT true)
RETURNS segmentations
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    s customer_analytics.segmentations := customer_analytics._segmentation(segmentation);
BEGIN
    IF refresh_segmentation.concurrently IS NULL THEN
        RAISE EXCEPTION 'concurrently must not be NULL' USING ERRCODE = 'null_value_not_allowed',
            HINT = 'true (the default) keeps the views readable during the refresh.';
    END IF;
    RETURN customer_analytics._as_owner(s.owner,
        format('SELECT customer_analytics._refresh_segmentation_as_owner(%L, %L)', s.name, refresh_segmentation.concurrently)
    )::customer_analytics.segmentations;
END $$;

-- Run one refresh; on failure, record it (in this transaction: the
-- refresh's own work is rolled back to the block) and return the error.
CREATE FUNCTION _refresh_recording_failure(kind text, name text, OUT err_state text, OUT err_message text)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    started timestamptz := clock_timestamp();
    definer name;
BEGIN
    IF kind IS NULL OR kind NOT IN ('campaign', 'segmentation') THEN
        RAISE EXCEPTION 'kind must be ''campaign'' or ''segmentation'', not %', COALESCE(quote_literal(kind), 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    BEGIN
        PERFORM set_config('customer_analytics.refresh_via', 'scheduled', true);
        IF kind = 'campaign' THEN
            PERFORM customer_analytics.refresh_campaign(_refresh_recording_failure.name);
        ELSE
            PERFORM customer_analytics.refresh_segmentation(_refresh_recording_failure.name);
        END IF;
        PERFORM set_config('customer_analytics.refresh_via', '', true);
        RETURN;
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS err_state = RETURNED_SQLSTATE, err_message = MESSAGE_TEXT;
    END;
    -- only the owner's runs are recorded (a dropped definition has none)
    SELECT c.owner INTO definer FROM customer_analytics.campaigns c
     WHERE kind = 'campaign' AND c.name = _refresh_recording_failure.name
    UNION ALL
    SELECT s.owner FROM customer_analytics.segmentations s
     WHERE kind = 'segmentation' AND s.name = _refresh_recording_failure.name;
    IF definer IS NOT NULL AND customer_analytics._history_writable(kind, name, definer) THEN
        PERFORM set_config('customer_analytics.refresh_via', 'scheduled', true);
        PERFORM customer_analytics._record_history(kind, name, definer, started, NULL, NULL, err_state || ': ' || err_message);
        PERFORM set_config('customer_analytics.refresh_via', '', true);
    END IF;
END $$;

-- What a pg_cron job runs.  A procedure, called with CALL outside a
-- transaction block (as pg_cron does), so that it can COMMIT the failure's
-- record before raising the error again: the job then fails in
-- cron.job_run_details and the failure stays in refresh_history.  No SET
-- clause (a procedure with one cannot COMMIT); the work is in the function.
CREATE PROCEDURE run_scheduled_refresh(kind text, name text)
LANGUAGE plpgsql AS $$
DECLARE
    failure record := customer_analytics._refresh_recording_failure(kind, name);
BEGIN
    IF failure.err_state IS NOT NULL THEN
        COMMIT;
        RAISE EXCEPTION 'scheduled refresh of % "%" failed: %', kind, name, failure.err_message
            USING ERRCODE = failure.err_state,
                  HINT = 'The failure is recorded: customer_analytics.list_' || kind || 's() shows the last status, '
                         'customer_analytics.refresh_history every run.';
    END IF;
END $$;
COMMENT ON PROCEDURE run_scheduled_refresh IS
'What scheduled refreshes run: CALL customer_analytics.run_scheduled_refresh(''campaign'' or ''segmentation'', name) refreshes and records the outcome, a failure included (it commits the record, then raises the error again)';

-- The command and job name pg_cron runs for a definition.
CREATE FUNCTION _refresh_job_command(kind text, name text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    SELECT format('CALL customer_analytics.run_scheduled_refresh(%L, %L)', kind, name)
$$;

-- Why pg_cron's jobs cannot connect to this server, or NULL: without
-- background workers a job connects through libpq to cron.host (default
-- localhost, by TCP), which a server with listen_addresses = '' refuses.
-- NULL arguments (settings the caller may not read) mean "unknown".
CREATE FUNCTION _cron_connection_problem(use_background_workers text, host text, listen_addresses text)
RETURNS text
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE WHEN use_background_workers IN ('off', 'false') AND btrim(listen_addresses) = ''
                     AND host NOT LIKE '/%'
                THEN format('cron.use_background_workers is off and the server listens on no TCP address (listen_addresses = ''''), '
                            'so pg_cron cannot connect to cron.host "%s" to run the job', host) END
$$;

-- A setting's value, or NULL when it does not exist or this role may not read it.
CREATE FUNCTION _setting(setting text) RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RETURN current_setting(setting, true);
EXCEPTION WHEN insufficient_privilege THEN
    RETURN NULL;
END $$;

-- Schedule a definition's refresh (scheduling again replaces the schedule)
-- and record it in refresh_schedules.  With pg_cron installed in this
-- database: a pg_cron job under the definition's job name, run as the
-- caller.  Elsewhere (pg_cron runs in another database, or is not used):
-- the dispatcher runs it; a WARNING says how to start one when none has run
-- for the caller lately.  Returns the pg_cron job id, or NULL.
CREATE OR REPLACE FUNCTION _schedule_refresh(kind text, name text, schedule text, command text) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    job bigint;
    runner text;
    next_run timestamptz;
    problem text;
    stale_owner name;
    owner name := (SELECT c.owner FROM customer_analytics.campaigns c WHERE kind = 'campaign' AND c.name = _schedule_refresh.name
                   UNION ALL
                   SELECT s.owner FROM customer_analytics.segmentations s WHERE kind = 'segmentation' AND s.name = _schedule_refresh.name);
BEGIN
    IF schedule IS NULL THEN
        RAISE EXCEPTION 'schedule must not be NULL' USING ERRCODE = 'null_value_not_allowed',
            HINT = 'A cron expression such as ''*/5 * * * *'' (every five minutes).';
    END IF;
    -- the same grammar either way: refused here, with the field at fault
    PERFORM customer_analytics._cron_next_run(schedule, now());
    -- a schedule of another owner's definition of that name (the foreign
    -- keys make one only by bypassing them, as session_replication_role =
    -- replica does): not ours to replace, and not to be attached to this one
    SELECT r.owner INTO stale_owner FROM customer_analytics.refresh_schedules r
     WHERE r.kind = _schedule_refresh.kind AND r.name = _schedule_refresh.name;
    IF stale_owner IS NOT NULL AND stale_owner IS DISTINCT FROM owner THEN
        RAISE EXCEPTION '% "%" has a schedule left from a former % of that name owned by role %',
            kind, name, kind, stale_owner
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = 'A schedule belongs to the definition it was made for, not to a later one of the same name.',
                  HINT = format('Role %I (or a superuser) removes it: DELETE FROM customer_analytics.refresh_schedules WHERE kind = %L AND name = %L;',
                                stale_owner, kind, name);
    END IF;
    -- what the job runs: the procedure that records failures too
    command := customer_analytics._refresh_job_command(kind, name);
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_cron') THEN
        runner := 'pg_cron';
        EXECUTE 'SELECT cron.schedule($1, $2, $3)' INTO job
          USING customer_analytics._cron_job_name(kind, name), schedule, command;
    ELSE
        runner := 'dispatcher';
        next_run := customer_analytics._cron_next_run(schedule, now());
    END IF;
    INSERT INTO customer_analytics.refresh_schedules AS r
           (kind, name, owner, schedule, runner, run_as, job_id, next_run, scheduled_at)
    VALUES (kind, name, owner, schedule, runner, current_user, job, next_run, now())
    ON CONFLICT ON CONSTRAINT refresh_schedules_pkey DO UPDATE
       SET owner = excluded.owner, schedule = excluded.schedule, runner = excluded.runner,
           run_as = excluded.run_as, job_id = excluded.job_id, next_run = excluded.next_run,
           scheduled_at = excluded.scheduled_at;
    IF runner = 'pg_cron' THEN
        RAISE NOTICE '% "%" refresh scheduled: % (pg_cron job %)', kind, name, schedule, job;
        problem := customer_analytics._cron_connection_problem(customer_analytics._setting('cron.use_background_workers'),
                                                                customer_analytics._setting('cron.host'),
                                                                customer_analytics._setting('listen_addresses'));
        IF problem IS NOT NULL THEN
            RAISE WARNING '% "%": its scheduled refresh will fail: %', kind, name, problem
                USING HINT = 'Set cron.use_background_workers = on (and restart), or cron.host to the server''s socket directory '
                             '(unix_socket_directories), or listen on localhost.';
        END IF;
    ELSE
        RAISE NOTICE '% "%" refresh scheduled: % (by the dispatcher, customer_analytics.run_due_refreshes(); next run %)',
            kind, name, schedule, to_char(next_run AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI "UTC"');
        IF NOT EXISTS (SELECT 1 FROM customer_analytics.dispatcher_runs d
                        WHERE d.role = current_user AND d.last_run_at > now() - interval '5 minutes') THEN
            RAISE WARNING '% "%" will not be refreshed until a dispatcher runs as role % in database %',
                kind, name, quote_ident(current_user), quote_ident(current_database())
                USING DETAIL = customer_analytics._dispatcher_detail(),
                      HINT = customer_analytics._dispatcher_hint(current_user);
        END IF;
    END IF;
    RETURN job;
END $$;

-- Why there is no pg_cron here, for the dispatcher WARNING.
CREATE FUNCTION _dispatcher_detail() RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    cron_db text;
BEGIN
    BEGIN
        cron_db := current_setting('cron.database_name', true);
    EXCEPTION WHEN insufficient_privilege THEN
        RETURN 'pg_cron is not installed in this database. No run_due_refreshes() has run as this role here in the last 5 minutes.';
    END;
    IF cron_db IS NULL THEN
        RETURN 'pg_cron is not loaded (shared_preload_libraries). No run_due_refreshes() has run as this role here in the last 5 minutes.';
    END IF;
    RETURN format('pg_cron runs jobs from database %s (cron.database_name), not this one. '
                  'No run_due_refreshes() has run as this role here in the last 5 minutes.', quote_ident(cron_db));
END $$;

-- How to start a dispatcher for `role` in this database.
CREATE FUNCTION _dispatcher_hint(role name) RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    cron_db text;
BEGIN
    BEGIN
        cron_db := current_setting('cron.database_name', true);
    EXCEPTION WHEN insufficient_privilege THEN
        RETURN format('Once per role and database, a superuser connected to pg_cron''s database (cron.database_name) runs: %s',
                      customer_analytics.dispatcher_command(role));
    END;
    IF cron_db IS NULL THEN
        RETURN format('Run CALL customer_analytics.run_due_refreshes(); every minute as role %s in this database '
                      'from any scheduler (cron, a systemd timer), or load pg_cron.', quote_ident(role));
    END IF;
    RETURN format('Once per role and database, a superuser connected to database %s runs: %s',
                  quote_ident(cron_db), customer_analytics.dispatcher_command(role));
END $$;

-- The pg_cron call that starts role's dispatcher in this database.
CREATE FUNCTION dispatcher_command(role name DEFAULT current_user) RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT format('SELECT cron.schedule_in_database(%L, %L, %L, %L, %L);',
                  'customer_analytics dispatcher ' || current_database() || ' ' || role, '* * * * *',
                  -- a no-op once the extension is dropped from the database:
                  -- it calls the procedure only while it is the extension's
                  -- own (not one a role with CREATE made in a new schema of
                  -- that name, which the job would run as its role)
                  'DO $dispatch$ BEGIN IF EXISTS (SELECT FROM pg_catalog.pg_depend d, pg_catalog.pg_extension e'
                  ' WHERE d.classid OPERATOR(pg_catalog.=) ''pg_catalog.pg_proc''::pg_catalog.regclass'
                  ' AND d.objid OPERATOR(pg_catalog.=) pg_catalog.to_regprocedure(''customer_analytics.run_due_refreshes()'')'
                  ' AND d.refobjid OPERATOR(pg_catalog.=) e.oid AND e.extname OPERATOR(pg_catalog.=) ''customer_analytics'''
                  ' AND d.deptype OPERATOR(pg_catalog.=) ''e'') '
                  'THEN CALL customer_analytics.run_due_refreshes(); END IF; END $dispatch$',
                  current_database(), role)
$$;
COMMENT ON FUNCTION dispatcher_command IS
'The cron.schedule_in_database() call (to run in pg_cron''s database, by a superuser, once per role and database) that has pg_cron run customer_analytics.run_due_refreshes() every minute here as the role';

------------------------------------------------------------------------------
-- What a schedule row may say (issue 21, item 2).  The extension acts on
-- a schedule's job_id (it unschedules that pg_cron job) and on its run_as
-- (the dispatcher of that role runs it), and the functions that write the
-- rows run as the caller.  So neither is taken on trust from the row:
--   - when a row is written (the guard trigger below), a role that is not
--     a superuser can only write facts: run_as is the writing role itself,
--     and a pg_cron schedule's job_id and schedule are those of the writing
--     role's own job for this definition as pg_cron's own row shows it
--     (cron.job: the definition's job name, run as that role, the command
--     schedule_*_refresh() gives it).  pg_cron lets a role make jobs only
--     as itself (cron.schedule_in_database and cron.alter_job are granted
--     to no one), so no such row can name another role's job;
--   - before a job is unscheduled (_release_refresh_job), pg_cron's row is
--     checked again against the schedule: the definition's job name, run
--     as the schedule's run_as, its command.  Any other job, whoever wrote
--     the row (a superuser, a restored dump, a row from before this check)
--     and whoever acts on it (a DBA dropping another role's campaign), is
--     left alone with a WARNING naming it.
------------------------------------------------------------------------------

-- The pg_cron job a schedule row names, checked against pg_cron's own row
-- before it is unscheduled: unscheduled only when it is the job the
-- extension makes for this definition's refresh, run as run_as; otherwise
-- left alone, saying so.  Nothing when there is no job or no pg_cron.
CREATE FUNCTION _release_refresh_job(kind text, name text, run_as name, job bigint) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    job_name text;
    job_user text;
    job_command text;
    our_name text := customer_analytics._cron_job_name(kind, name);
    our_command text := customer_analytics._refresh_job_command(kind, name);
BEGIN
    IF job IS NULL OR NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_cron') THEN
        RETURN;   -- no job, or pg_cron (and every job with it) dropped since
    END IF;
    IF NOT has_schema_privilege('cron', 'USAGE') OR NOT has_table_privilege('cron.job', 'SELECT') THEN
        RAISE WARNING 'pg_cron job % of % "%" was left alone: this role may not read pg_cron''s jobs', job, kind, name
            USING HINT = format('As role %I (or a superuser): SELECT cron.unschedule(%s);', run_as, job);
        RETURN;
    END IF;
    EXECUTE 'SELECT jobname, username, command FROM cron.job WHERE jobid = $1'
       INTO job_name, job_user, job_command USING job;
    IF job_user IS NULL THEN
        -- cron.job shows a role only its own jobs (row-level security)
        IF run_as = current_user OR NOT row_security_active('cron.job') THEN
            RAISE NOTICE 'pg_cron job % of % "%" was already gone', job, kind, name;
        ELSE
            RAISE WARNING 'pg_cron job % of % "%" runs as role %: left alone', job, kind, name, quote_ident(run_as)
                USING DETAIL = 'pg_cron shows each role only its own jobs, so this role cannot check that it is the job made for this refresh.',
                      HINT = format('As role %I (or a superuser): SELECT cron.unschedule(%s);', run_as, job);
        END IF;
        RETURN;
    END IF;
    IF job_name IS DISTINCT FROM our_name OR job_user IS DISTINCT FROM run_as::text
       OR job_command IS DISTINCT FROM our_command THEN
        RAISE WARNING 'pg_cron job % (%) is not the refresh job of % "%": left alone',
            job, COALESCE(quote_literal(job_name), 'unnamed'), kind, name
            USING DETAIL = format('It runs as role %s: %s. The refresh job of %s "%s" is named %L and runs as role %s: %s.',
                                  quote_ident(job_user), job_command, kind, name, our_name, quote_ident(run_as), our_command);
        RETURN;
    END IF;
    BEGIN
        EXECUTE 'SELECT cron.unschedule($1)' USING job;
    EXCEPTION WHEN internal_error THEN
        RAISE NOTICE 'pg_cron job % of % "%" was already gone', job, kind, name;
    END;
END $$;

-- A schedule row's pg_cron job goes with the row, whoever deletes it (the
-- unschedule and drop functions, the foreign keys' cascade when the
-- definition's catalog row is deleted, its owner by hand), or when the row
-- names another job; _release_refresh_job checks it first.  AFTER
-- triggers run as the role whose statement fired them (a cascade's too).
CREATE FUNCTION _schedule_row_release() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF OLD.runner = 'pg_cron' AND (TG_OP = 'DELETE' OR OLD.job_id IS DISTINCT FROM NEW.job_id) THEN
        PERFORM customer_analytics._release_refresh_job(OLD.kind, OLD.name, OLD.run_as, OLD.job_id);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER release_job AFTER DELETE OR UPDATE OF job_id ON refresh_schedules
    FOR EACH ROW EXECUTE FUNCTION _schedule_row_release();

-- Refuse a schedule row (or change) whose run_as, job_id or schedule is
-- not the writer's own fact (see above).  Superusers are trusted here as
-- row-level security trusts them: the update to 1.5 records other roles'
-- jobs, pg_restore loads the rows.  The dispatcher a row names, when it
-- cannot act as the definition's owner (policy dispatcher_claims), may
-- only claim its runs.  A row that only moves its next run or its claim
-- passes as it is.
CREATE FUNCTION _schedule_row_guard() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    job bigint;
    job_schedule text;
BEGIN
    IF (SELECT r.rolsuper FROM pg_roles r WHERE r.rolname = current_user) THEN
        RETURN NEW;
    END IF;
    IF TG_OP = 'UPDATE' THEN
        IF NOT customer_analytics._is_definition_owner(OLD.owner) THEN
            IF (NEW.kind, NEW.name, NEW.owner, NEW.schedule, NEW.runner, NEW.run_as, NEW.job_id, NEW.scheduled_at)
               IS DISTINCT FROM (OLD.kind, OLD.name, OLD.owner, OLD.schedule, OLD.runner, OLD.run_as, OLD.job_id, OLD.scheduled_at) THEN
                RAISE EXCEPTION 'must be owner of % "%"', OLD.kind, OLD.name
                    USING ERRCODE = 'insufficient_privilege',
                          DETAIL = format('%s "%s" belongs to role "%s"; the dispatcher that runs its schedule may only claim its runs.',
                                          initcap(OLD.kind), OLD.name, OLD.owner);
            END IF;
            RETURN NEW;
        END IF;
        IF (NEW.kind, NEW.name, NEW.owner, NEW.schedule, NEW.runner, NEW.run_as, NEW.job_id)
           IS NOT DISTINCT FROM (OLD.kind, OLD.name, OLD.owner, OLD.schedule, OLD.runner, OLD.run_as, OLD.job_id) THEN
            RETURN NEW;
        END IF;
    END IF;
    IF NEW.run_as IS DISTINCT FROM current_user THEN
        RAISE EXCEPTION 'a schedule of % "%" written by role % runs as %, not as %',
            NEW.kind, NEW.name, quote_ident(current_user), quote_ident(current_user), COALESCE(quote_ident(NEW.run_as), 'NULL')
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = 'A schedule runs as the role that makes it: its pg_cron job runs as that role, and so does its dispatcher.',
                  HINT = format('To have it run as role %s, that role schedules it: customer_analytics.schedule_%s_refresh(%L, ...).',
                                COALESCE(quote_ident(NEW.run_as), 'NULL'), NEW.kind, NEW.name);
    END IF;
    IF NEW.runner = 'pg_cron' THEN
        job := customer_analytics._cron_job_id(NEW.kind, NEW.name);
        IF job IS NOT NULL THEN
            EXECUTE 'SELECT schedule FROM cron.job WHERE jobid = $1' INTO job_schedule USING job;
        END IF;
        IF NEW.job_id IS DISTINCT FROM job THEN
            RAISE EXCEPTION 'pg_cron job % is not the refresh job of % "%"', COALESCE(NEW.job_id::text, 'NULL'), NEW.kind, NEW.name
                USING ERRCODE = 'insufficient_privilege',
                      DETAIL = CASE WHEN job IS NULL
                                    THEN format('Role %s has no pg_cron job named %L running %L.', quote_ident(current_user),
                                                customer_analytics._cron_job_name(NEW.kind, NEW.name),
                                                customer_analytics._refresh_job_command(NEW.kind, NEW.name))
                                    ELSE format('Its refresh job for role %s is job %s.', quote_ident(current_user), job) END,
                      HINT = format('customer_analytics.schedule_%s_refresh() schedules it and records its job.', NEW.kind);
        END IF;
        IF NEW.schedule IS DISTINCT FROM job_schedule THEN
            RAISE EXCEPTION 'the schedule of % "%" is its pg_cron job''s, %, not %', NEW.kind, NEW.name,
                quote_literal(job_schedule), COALESCE(quote_literal(NEW.schedule), 'NULL')
                USING ERRCODE = 'insufficient_privilege',
                      HINT = format('customer_analytics.schedule_%s_refresh(%L, %L) changes both.', NEW.kind, NEW.name, NEW.schedule);
        END IF;
    END IF;
    IF TG_OP = 'INSERT' OR NEW.schedule IS DISTINCT FROM OLD.schedule THEN
        -- one the dispatcher can read (22023 naming the field)
        PERFORM customer_analytics._cron_next_run(NEW.schedule, now());
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER guard BEFORE INSERT OR UPDATE ON refresh_schedules
    FOR EACH ROW EXECUTE FUNCTION _schedule_row_guard();

-- Unschedule a definition's refresh: its row in refresh_schedules (its
-- pg_cron job goes with it, _schedule_row_release), and the caller's own
-- job for this refresh made outside schedule_*_refresh (by hand, or before
-- 1.5 and not recorded).
CREATE OR REPLACE FUNCTION _unschedule_refresh(kind text, name text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r customer_analytics.refresh_schedules;
    job bigint := customer_analytics._cron_job_id(kind, name);
BEGIN
    SELECT * INTO r FROM customer_analytics.refresh_schedules s WHERE s.kind = $1 AND s.name = $2;
    IF NOT FOUND AND job IS NULL THEN
        RAISE EXCEPTION '% "%" has no scheduled refresh', kind, name
            USING ERRCODE = 'undefined_object',
                  HINT = 'customer_analytics.list_' || kind || 's() shows each ' || kind || '''s schedule.';
    END IF;
    DELETE FROM customer_analytics.refresh_schedules s WHERE s.kind = $1 AND s.name = $2;
    IF job IS NOT NULL AND job IS DISTINCT FROM r.job_id THEN
        EXECUTE 'SELECT cron.unschedule($1)' USING job;
    END IF;
    RAISE NOTICE '% "%" refresh unscheduled', kind, name;
END $$;

-- The dispatcher's steps, each in a function with a fixed search_path (the
-- procedure cannot have one: it commits between refreshes).

-- Record that the caller's dispatcher runs.
CREATE FUNCTION _dispatcher_heartbeat() RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    INSERT INTO customer_analytics.dispatcher_runs AS d (role, last_run_at) VALUES (current_user, now())
    ON CONFLICT (role) DO UPDATE SET last_run_at = excluded.last_run_at
$$;

-- Claims (issue 21, item 4).  A dispatcher commits its claim of a refresh
-- (claimed_at, claimed_pid) before running it, holding a session-level
-- advisory lock for it until the outcome is recorded and the claim cleared.
-- So a claim whose process no longer holds that lock belongs to a run that
-- ended without recording anything (the process was killed, crashed or
-- lost its connection): list_campaigns() and list_segmentations() show it
-- as 'interrupted' at once (pg_locks is readable by every role), and the
-- next dispatcher of that role records it in refresh_history.

-- The claim's advisory lock: two int4 keys.
CREATE FUNCTION _claim_lock(kind text, name text, OUT key1 int, OUT key2 int)
LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    SELECT hashtext('customer_analytics.dispatch'), hashtext(kind || ' ' || name)
$$;

-- Does process `pid` hold the claim lock of this schedule (here)?
CREATE FUNCTION _claim_alive(kind text, name text, pid int) RETURNS boolean
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT EXISTS (SELECT 1 FROM pg_locks l, customer_analytics._claim_lock($1, $2) k
                    WHERE l.locktype = 'advisory' AND l.database = (SELECT d.oid FROM pg_database d WHERE d.datname = current_database())
                      AND l.classid = k.key1::oid AND l.objid = k.key2::oid AND l.objsubid = 2
                      AND l.pid = $3 AND l.granted)
$$;

-- What an interrupted run records as its error.
CREATE FUNCTION _interrupted_error(run_as name, pid int) RETURNS text
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT format('interrupted: the dispatcher (run_due_refreshes as %s, process %s) ended before the refresh finished',
                  quote_ident(run_as), pid)
$$;

-- A schedule's claim: 'running' while the dispatcher that claimed it runs
-- it, 'interrupted' once that process is gone (with the error it records);
-- no row when no dispatcher has claimed it.
CREATE FUNCTION _schedule_claim(kind text, name text, owner name,
    OUT state text, OUT error text, OUT claimed_at timestamptz)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE WHEN customer_analytics._claim_alive(r.kind, r.name, r.claimed_pid) THEN 'running' ELSE 'interrupted' END,
           customer_analytics._interrupted_error(r.run_as, r.claimed_pid), r.claimed_at
      FROM customer_analytics.refresh_schedules r
     WHERE r.kind = $1 AND r.name = $2 AND r.owner = $3 AND r.claimed_pid IS NOT NULL
$$;

-- Record a scheduled run's failure that no refresh recorded (a run the
-- dispatcher could not do, or an interrupted one) in refresh_history.
CREATE FUNCTION _record_dispatch_failure(kind text, name text, owner name, started timestamptz, error text)
RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM set_config('customer_analytics.refresh_via', 'scheduled', true);
    PERFORM customer_analytics._record_history(kind, name, owner, started, NULL, NULL, error);
    PERFORM set_config('customer_analytics.refresh_via', '', true);
END $$;

-- Record the caller's interrupted runs (claims whose process is gone) and
-- clear their claims; returns how many.  SKIP LOCKED: a claim being made
-- or cleared right now is not one.
CREATE FUNCTION _record_interrupted_runs() RETURNS int
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r record;
    n int := 0;
BEGIN
    FOR r IN SELECT d.kind, d.name, d.owner, d.run_as, d.claimed_at, d.claimed_pid
               FROM customer_analytics.refresh_schedules d
              WHERE d.runner = 'dispatcher' AND d.run_as = current_user AND d.claimed_pid IS NOT NULL
              ORDER BY d.kind, d.name
                FOR UPDATE SKIP LOCKED
    LOOP
        CONTINUE WHEN customer_analytics._claim_alive(r.kind, r.name, r.claimed_pid);
        PERFORM customer_analytics._record_dispatch_failure(r.kind, r.name, r.owner, r.claimed_at,
                                                            customer_analytics._interrupted_error(r.run_as, r.claimed_pid));
        UPDATE customer_analytics.refresh_schedules d SET claimed_at = NULL, claimed_pid = NULL
         WHERE d.kind = r.kind AND d.name = r.name;
        n := n + 1;
    END LOOP;
    RETURN n;
END $$;

-- Claim the caller's most overdue refresh due by `until` and not in
-- `passed` (those this dispatcher call has had already), moving its
-- next_run past `until` (so each is claimed at most once per dispatcher
-- call, and missed runs are not caught up one by one, as cron does not);
-- SKIP LOCKED: two dispatchers at once never claim the same refresh.
-- claimed: this process now holds its claim (committed with the caller's
-- transaction) and its lock; false when a run of it by another dispatcher
-- of the role is still in progress (not a second one at once), or when the
-- claim could not be recorded (problem: SQLSTATE: message).
CREATE FUNCTION _claim_due_refresh(until timestamptz, passed text[] DEFAULT '{}',
    OUT kind text, OUT name text, OUT owner name, OUT claimed boolean, OUT problem text)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    k record;
    err_state text;
    err_message text;
BEGIN
    SELECT d.kind, d.name, d.owner INTO kind, name, owner
      FROM customer_analytics.refresh_schedules d
     WHERE d.runner = 'dispatcher' AND d.run_as = current_user AND d.next_run <= until
       AND d.kind || ' ' || d.name <> ALL (COALESCE(passed, '{}'))
     ORDER BY d.next_run, d.kind, d.name
     LIMIT 1 FOR UPDATE SKIP LOCKED;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    k := customer_analytics._claim_lock(kind, name);
    claimed := pg_try_advisory_lock(k.key1, k.key2);
    BEGIN
        UPDATE customer_analytics.refresh_schedules r
           SET next_run = customer_analytics._cron_next_run(r.schedule, until),
               claimed_at = CASE WHEN claimed THEN clock_timestamp() ELSE r.claimed_at END,
               claimed_pid = CASE WHEN claimed THEN pg_backend_pid() ELSE r.claimed_pid END
         WHERE r.kind = _claim_due_refresh.kind AND r.name = _claim_due_refresh.name;
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS err_state = RETURNED_SQLSTATE, err_message = MESSAGE_TEXT;
        problem := err_state || ': ' || err_message;
        IF claimed THEN
            PERFORM pg_advisory_unlock(k.key1, k.key2);
            claimed := false;
        END IF;
    END;
END $$;

-- Why the caller's dispatcher cannot run this schedule (SQLSTATE and
-- message), or NULLs when it can: its definition is gone (a schedule left
-- by bypassing the foreign keys), or the dispatcher's role can no longer
-- act as the definition's owner.
CREATE FUNCTION _dispatch_problem(kind text, name text, owner name, OUT err_state text, OUT err_message text)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM customer_analytics.campaigns c
                    WHERE $1 = 'campaign' AND c.name = $2 AND c.owner = $3
                   UNION ALL
                   SELECT 1 FROM customer_analytics.segmentations s
                    WHERE $1 = 'segmentation' AND s.name = $2 AND s.owner = $3) THEN
        err_state := '42704';
        err_message := format('%s "%s" of role %s no longer exists: its schedule is removed', kind, name, quote_ident(owner));
    ELSIF NOT customer_analytics._is_definition_owner(owner) THEN
        err_state := '42501';
        err_message := format('the dispatcher runs as role %s, which cannot act as role %s, the owner of %s "%s": '
                              'skipped until role %s schedules it again', quote_ident(current_user), quote_ident(owner),
                              kind, name, quote_ident(owner));
    END IF;
END $$;

-- Skip a schedule the caller's dispatcher cannot run: record why, and
-- remove a schedule whose definition is gone.
CREATE FUNCTION _skip_schedule(kind text, name text, owner name, err_state text, err_message text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM customer_analytics._record_dispatch_failure(kind, name, owner, clock_timestamp(), err_state || ': ' || err_message);
    IF err_state = '42704' THEN
        DELETE FROM customer_analytics.refresh_schedules r WHERE r.kind = $1 AND r.name = $2 AND r.owner = $3;
    END IF;
END $$;

-- The run is over (its outcome recorded): clear the claim.  The lock goes
-- after the COMMIT (_claim_unlock), so that no one sees the claim without it.
CREATE FUNCTION _claim_clear(kind text, name text) RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    UPDATE customer_analytics.refresh_schedules r SET claimed_at = NULL, claimed_pid = NULL
     WHERE r.kind = $1 AND r.name = $2 AND r.claimed_pid = pg_backend_pid()
$$;

CREATE FUNCTION _claim_unlock(kind text, name text) RETURNS boolean
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    SELECT pg_advisory_unlock(k.key1, k.key2) FROM customer_analytics._claim_lock($1, $2) k
$$;

-- The dispatcher: runs every refresh of the caller's that the dispatcher
-- schedules and that is due, each in its own transaction, and records
-- each outcome as run_scheduled_refresh() does; then raises an error
-- naming the ones that failed, so that the job that called it fails too.
-- Refreshes of other roles are left to their own dispatchers.  A schedule
-- it cannot run is skipped and recorded, and the others still run; each
-- claim is committed before its refresh runs, so an interrupted run shows
-- (see "Claims" above), and this records the caller's interrupted runs
-- first.
CREATE PROCEDURE run_due_refreshes()
LANGUAGE plpgsql AS $$
DECLARE
    until timestamptz := pg_catalog.clock_timestamp() OPERATOR(pg_catalog.+) interval '5 seconds';
    claim record;
    failure record;
    problem record;
    err_message text;
    passed text[] := '{}';
    failed text[] := '{}';
BEGIN
    PERFORM customer_analytics._dispatcher_heartbeat();
    PERFORM customer_analytics._record_interrupted_runs();
    COMMIT;
    LOOP
        SELECT * INTO claim FROM customer_analytics._claim_due_refresh(until, passed) d;
        EXIT WHEN claim.kind IS NULL;
        passed := pg_catalog.array_append(passed, claim.kind OPERATOR(pg_catalog.||) ' ' OPERATOR(pg_catalog.||) claim.name);
        COMMIT;
        err_message := NULL;
        BEGIN
            IF claim.claimed THEN
                problem := customer_analytics._dispatch_problem(claim.kind, claim.name, claim.owner);
                IF problem.err_state IS NULL THEN
                    failure := customer_analytics._refresh_recording_failure(claim.kind, claim.name);
                    err_message := failure.err_message;
                ELSE
                    PERFORM customer_analytics._skip_schedule(claim.kind, claim.name, claim.owner,
                                                              problem.err_state, problem.err_message);
                    err_message := problem.err_message;
                END IF;
            ELSIF claim.problem IS NOT NULL THEN
                -- its claim failed: recorded, not claimed again by this call
                err_message := claim.problem;
                PERFORM customer_analytics._record_dispatch_failure(claim.kind, claim.name, claim.owner,
                                                                    pg_catalog.clock_timestamp(), claim.problem);
            END IF;
        EXCEPTION WHEN OTHERS THEN
            -- (recording failed: said in the error this raises at the end)
            GET STACKED DIAGNOSTICS err_message = MESSAGE_TEXT;
        END;
        IF claim.claimed THEN
            PERFORM customer_analytics._claim_clear(claim.kind, claim.name);
        END IF;
        IF err_message IS NOT NULL THEN
            failed := pg_catalog.array_append(failed, pg_catalog.format('%s "%s": %s', claim.kind, claim.name, err_message));
        END IF;
        COMMIT;
        IF claim.claimed THEN
            PERFORM customer_analytics._claim_unlock(claim.kind, claim.name);
        END IF;
    END LOOP;
    IF pg_catalog.cardinality(failed) OPERATOR(pg_catalog.>) 0 THEN
        RAISE EXCEPTION 'scheduled refresh failed: %', pg_catalog.array_to_string(failed, '; ')
            USING ERRCODE = 'external_routine_exception',
                  HINT = 'The failures are recorded: customer_analytics.list_campaigns() and list_segmentations() show the last status, '
                         'customer_analytics.refresh_history every run.';
    END IF;
END $$;
COMMENT ON PROCEDURE run_due_refreshes IS
'The dispatcher: CALL customer_analytics.run_due_refreshes() every minute (pg_cron: see dispatcher_command()) runs the caller''s scheduled refreshes that are due, each in its own transaction after committing its claim, records every outcome (a schedule it cannot run and an earlier run that was interrupted too) and fails if any failed';

-- At DROP EXTENSION (src/extension_drop.c): the dispatcher jobs that ran
-- here live in pg_cron's database, which this one cannot reach; they do
-- nothing from now on, and this says how to remove them.
CREATE FUNCTION _dispatcher_drop_notice() RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    calls text;
BEGIN
    SELECT string_agg(format('SELECT cron.unschedule(%L);',
                             'customer_analytics dispatcher ' || current_database() || ' ' || d.role), ' ' ORDER BY d.role)
      INTO calls FROM customer_analytics.dispatcher_runs d;
    IF calls IS NOT NULL THEN
        RAISE NOTICE 'customer_analytics: the dispatcher jobs for this database in pg_cron''s database now do nothing'
            USING HINT = 'A superuser connected to pg_cron''s database removes them: ' || calls;
    END IF;
END $$;

-- A schedule's next run, NULL when unknown (a schedule a later pg_cron
-- accepts but _cron_next_run does not read).
CREATE FUNCTION _next_run_or_null(schedule text, after timestamptz) RETURNS timestamptz
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RETURN customer_analytics._cron_next_run(schedule, after);
EXCEPTION WHEN invalid_parameter_value THEN
    RETURN NULL;
END $$;

-- Schedules made before 1.5 were pg_cron jobs only: record them.
CREATE FUNCTION _record_existing_cron_jobs() RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n bigint := 0;
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_cron') AND has_table_privilege('cron.job', 'SELECT') THEN
        EXECUTE $sql$
            WITH recorded AS (
                INSERT INTO customer_analytics.refresh_schedules (kind, name, owner, schedule, runner, run_as, job_id)
                SELECT d.kind, d.name, d.owner, j.schedule, 'pg_cron', j.username, j.jobid
                  FROM cron.job j
                  JOIN (SELECT 'campaign' AS kind, c.name, c.owner FROM customer_analytics.campaigns c
                        UNION ALL
                        SELECT 'segmentation', s.name, s.owner FROM customer_analytics.segmentations s) d
                    ON j.jobname = customer_analytics._cron_job_name(d.kind, d.name)
                   -- the definition's refresh job (_upgrade_cron_jobs ran first), not another job of that name
                   AND j.command = customer_analytics._refresh_job_command(d.kind, d.name)
                ON CONFLICT DO NOTHING
                RETURNING 1)
            SELECT count(*) FROM recorded
        $sql$ INTO n;
    END IF;
    RETURN n;
END $$;

-- The last refresh of a definition, and the last successful one: its
-- status is succeeded, failed or interrupted (a dispatcher's run whose
-- process ended before it finished), and while a dispatcher's claim of it
-- is open, running (or interrupted, once that process is gone, before the
-- next dispatcher records it).
CREATE FUNCTION _last_refresh(kind text, name text, owner name,
    OUT last_status text, OUT last_success_at timestamptz, OUT last_error text, OUT last_error_at timestamptz)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
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
$$;

-- list_campaigns() and list_segmentations() gain the status columns (a
-- change of result columns: dropped and created again; nothing depends on them).
DROP FUNCTION list_campaigns();
CREATE FUNCTION list_campaigns()
RETURNS TABLE (name text, view_schema text, targets_view text, monthly_view text,
               source_schema text, revenue_window daterange, owner name, schedule text,
               refreshed_at timestamptz, refresh_ms numeric, target_rows bigint, monthly_rows bigint,
               last_status text, last_success_at timestamptz, last_error text, last_error_at timestamptz)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT c.name, c.view_schema, c.name || '_targets', c.name || '_monthly', c.source_schema,
           c.revenue_window, c.owner, customer_analytics._cron_job('campaign', c.name),
           c.refreshed_at, c.refresh_ms, c.target_rows, c.monthly_rows,
           l.last_status, l.last_success_at, l.last_error, l.last_error_at
      FROM customer_analytics.campaigns c,
           LATERAL customer_analytics._last_refresh('campaign', c.name, c.owner) l
     ORDER BY c.name
$$;
COMMENT ON FUNCTION list_campaigns IS
'The campaigns, their views, schedule, last refresh and refresh status (last_status, last_success_at, last_error from refresh_history)';

DROP FUNCTION list_segmentations();
CREATE FUNCTION list_segmentations()
RETURNS TABLE (name text, view_schema text, views text[], segment text, k int, feature_window daterange,
               as_of date, source_schema text, owner name, schedule text,
               refreshed_at timestamptz, refresh_ms numeric, member_rows bigint,
               last_status text, last_success_at timestamptz, last_error text, last_error_at timestamptz)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT s.name, s.view_schema, customer_analytics._segmentation_views(s.name), s.segment, s.k,
           s.feature_window, s.as_of, s.source_schema, s.owner,
           customer_analytics._cron_job('segmentation', s.name), s.refreshed_at, s.refresh_ms, s.member_rows,
           l.last_status, l.last_success_at, l.last_error, l.last_error_at
      FROM customer_analytics.segmentations s,
           LATERAL customer_analytics._last_refresh('segmentation', s.name, s.owner) l
     ORDER BY s.name
$$;
COMMENT ON FUNCTION list_segmentations IS
'The segmentations, their views, schedule, last refresh and refresh status (last_status, last_success_at, last_error from refresh_history)';

-- Jobs scheduled before 1.5 ran the refresh function, whose failures left
-- no trace: they now run the procedure.  Returns how many jobs changed.
CREATE FUNCTION _upgrade_cron_jobs() RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n bigint := 0;
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_cron') THEN
        EXECUTE $sql$
            WITH changed AS (
                UPDATE cron.job j
                   SET command = customer_analytics._refresh_job_command(x.m[1], x.m[2])
                  FROM (SELECT jobid, regexp_match(command,
                               '^SELECT customer_analytics\.refresh_(campaign|segmentation)\(''([a-z0-9_]+)''\)$') AS m
                          FROM cron.job) x
                 WHERE j.jobid = x.jobid AND x.m IS NOT NULL
                   AND j.jobname = customer_analytics._cron_job_name(x.m[1], x.m[2])
                RETURNING 1)
            SELECT count(*) FROM changed
        $sql$ INTO n;
    END IF;
    RETURN n;
END $$;
SELECT _upgrade_cron_jobs();
SELECT _record_existing_cron_jobs();

-- As in 1.0, and the definition's refresh history goes with it (and a
-- segmentation's feature state).
CREATE OR REPLACE FUNCTION drop_campaign(campaign text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    c customer_analytics.campaigns := customer_analytics._campaign(campaign);
BEGIN
    IF customer_analytics._cron_job('campaign', c.name) IS NOT NULL THEN
        PERFORM customer_analytics.unschedule_campaign_refresh(c.name);
    END IF;
    PERFORM customer_analytics._drop_views(c.view_schema, ARRAY[c.name || '_monthly', c.name || '_targets']);
    DELETE FROM customer_analytics.refresh_history h WHERE h.kind = 'campaign' AND h.name = c.name;
    DELETE FROM customer_analytics.campaigns WHERE name = c.name;
    RAISE NOTICE 'campaign "%" dropped with its views % and %', c.name,
        format('%I.%I', c.view_schema, c.name || '_targets'), format('%I.%I', c.view_schema, c.name || '_monthly');
END $$;

-- drop_segmentation()'s work, as the segmentation's owner: its views,
-- feature state, history and catalog row.
CREATE FUNCTION _drop_segmentation_as_owner(segmentation text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    s customer_analytics.segmentations := customer_analytics._segmentation(segmentation);
BEGIN
    PERFORM customer_analytics._require_owner_context('segmentation', s.name, s.owner);
    PERFORM customer_analytics._drop_views(s.view_schema,
        ARRAY[s.name || '_elbow', s.name || '_profiles', s.name || '_members', s.name || '_model']);
    -- its feature state (the tables carrying its marker; defined below)
    PERFORM customer_analytics._drop_segmentation_state(s);
    DELETE FROM customer_analytics.refresh_history h WHERE h.kind = 'segmentation' AND h.name = s.name;
    DELETE FROM customer_analytics.segmentations WHERE name = s.name;
    RAISE NOTICE 'segmentation "%" dropped with its views', s.name;
END $$;

CREATE OR REPLACE FUNCTION drop_segmentation(segmentation text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    s customer_analytics.segmentations := customer_analytics._segmentation(segmentation);
BEGIN
    IF customer_analytics._cron_job('segmentation', s.name) IS NOT NULL THEN
        PERFORM customer_analytics._unschedule_refresh('segmentation', s.name);
    END IF;
    PERFORM customer_analytics._as_owner(s.owner, format('SELECT customer_analytics._drop_segmentation_as_owner(%L)', s.name));
END $$;
-- Views every BI tool finds (issue 13, item 4).  Tools that list only tables
-- and views (pgjdbc's getTables(..., {"TABLE","VIEW"}), information_schema)
-- never see a materialized view.  Beside each campaign and segmentation
-- materialized view <view> (names unchanged: dashboards and REFRESH
-- MATERIALIZED VIEW keep working) a plain view <view>_v selects its rows
-- with BI-friendly types: money as numeric(18,2), pct_change as
-- numeric(18,2), and target_reason (Chinese) replaced by the ASCII
-- target_reason_code, so that every client encoding can read every row.
-- The materialized views keep their exact numeric values: their column
-- types are what SELECT * returned until now, and the incremental refresh
-- reads them back.  The plain view is created, granted and dropped with its
-- materialized view, and needs no refresh of its own.
------------------------------------------------------------------------------

-- The plain BI view's name for a materialized view's.
CREATE FUNCTION _bi_view_name(matview text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT matview || '_v' $$;

-- Create the plain view over one materialized view, with comments copied
-- (and noted where a column is rounded or replaced).  Columns keep their
-- order; numeric money columns become numeric(18,2) (rounded half away from
-- zero where a source has more than 2 decimals), pct_change numeric(18,2)
-- (NULL if its magnitude reaches 10^16, possible only over sources with
-- more than 2 decimals), target_reason becomes target_reason_code.
CREATE FUNCTION _build_bi_view(view_schema text, matview text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    mv regclass := format('%I.%I', view_schema, matview)::regclass;
    v text := customer_analytics._bi_view_name(matview);
    a record;
    items text[] := '{}';
    notes jsonb := '{}';
    money_note text := 'numeric(18,2): rounded to 2 decimals where the source has more';
BEGIN
    FOR a IN SELECT x.attname::text AS name, x.atttypid FROM pg_attribute x
              WHERE x.attrelid = mv AND x.attnum > 0 AND NOT x.attisdropped ORDER BY x.attnum LOOP
        IF a.name = 'target_reason' THEN
            -- the notebook's precedence (customer_target_reason() in targeting.c)
            items := array_append(items, 'CASE WHEN m.is_low_ticket THEN ''low_ticket''::text '
                                          'WHEN m.is_declining THEN ''declining''::text END AS target_reason_code');
        ELSIF a.name = 'pct_change' AND a.atttypid = 'numeric'::regtype THEN
            items := array_append(items, '(CASE WHEN abs(m.pct_change) < 1e16 THEN m.pct_change END)::numeric(18,2) AS pct_change');
            notes := notes || jsonb_build_object(a.name, 'numeric(18,2): rounded to 2 decimals');
        ELSIF a.atttypid = 'numeric'::regtype
              AND (a.name IN ('total_spend', 'base_sales', 'recent_sales', 'avg_ticket_size', 'ticket_size')
                   OR a.name ~ '^rev_[0-9]{4}_[0-9]{2}$') THEN
            items := array_append(items, format('m.%1$I::numeric(18,2) AS %1$I', a.name));
            notes := notes || jsonb_build_object(a.name, money_note);
        ELSE
            items := array_append(items, format('m.%I', a.name));
        END IF;
    END LOOP;
    EXECUTE format('CREATE VIEW %I.%I AS SELECT %s FROM %s m', view_schema, v, array_to_string(items, ', '), mv);
    EXECUTE format('COMMENT ON VIEW %I.%I IS %L', view_schema, v,
        format('For BI tools: the rows of materialized view %s as a plain view (money numeric(18,2); '
               'ASCII codes instead of Chinese labels). %s', mv, obj_description(mv, 'pg_class')));
    FOR a IN SELECT x.attname::text AS name, col_description(mv, x.attnum) AS remark FROM pg_attribute x
              WHERE x.attrelid = mv AND x.attnum > 0 AND NOT x.attisdropped LOOP
        IF a.name = 'target_reason' THEN
            EXECUTE format('COMMENT ON COLUMN %I.%I.target_reason_code IS %L', view_schema, v,
                format('why the customer is a target: low_ticket (many low tickets; wins when both rules hold) '
                       'or declining (declining sales); the Chinese label is target_reason in %s', mv));
        ELSIF a.remark IS NOT NULL THEN
            EXECUTE format('COMMENT ON COLUMN %I.%I.%I IS %L', view_schema, v, a.name,
                           a.remark || COALESCE(' [' || (notes ->> a.name) || ']', ''));
        END IF;
    END LOOP;
END $$;

-- The plain BI view of a materialized view, when it exists and is ours (a
-- view that reads that materialized view), else NULL.
CREATE FUNCTION _bi_view(view_schema text, matview text) RETURNS regclass
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT c.oid::regclass FROM pg_class c
      JOIN pg_rewrite r ON r.ev_class = c.oid
      JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid
                      AND d.refclassid = 'pg_class'::regclass
                      AND d.refobjid = to_regclass(format('%I.%I', view_schema, matview))
     WHERE c.oid = to_regclass(format('%I.%I', view_schema, customer_analytics._bi_view_name(matview)))
       AND c.relkind = 'v'
     LIMIT 1
$$;

-- The materialized view builders keep their code under new names; the
-- builders the campaign and segmentation functions call add the plain views.
ALTER FUNCTION _build_targets_view(campaigns) RENAME TO _build_targets_matview;
ALTER FUNCTION _build_monthly_view(campaigns) RENAME TO _build_monthly_matview;
ALTER FUNCTION _build_segmentation_views(segmentations) RENAME TO _build_segmentation_matviews;

CREATE FUNCTION _build_targets_view(c campaigns) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM customer_analytics._build_targets_matview(c);
    PERFORM customer_analytics._build_bi_view(c.view_schema, c.name || '_targets');
END $$;

CREATE FUNCTION _build_monthly_view(c campaigns) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM customer_analytics._report_progress(format('building %I.%I (campaign %s: monthly sheet, 2 of 3)',
                                                       c.view_schema, c.name || '_monthly', c.name));
    PERFORM customer_analytics._build_monthly_matview(c);
    PERFORM customer_analytics._build_bi_view(c.view_schema, c.name || '_monthly');
END $$;

CREATE FUNCTION _build_segmentation_views(s segmentations) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v text;
BEGIN
    PERFORM customer_analytics._build_segmentation_matviews(s);
    FOREACH v IN ARRAY customer_analytics._segmentation_views(s.name) LOOP
        PERFORM customer_analytics._build_bi_view(s.view_schema, v);
    END LOOP;
END $$;

-- As in 1.0, and the readers get (or lose) SELECT on the plain views too.
CREATE OR REPLACE FUNCTION _grant_readers(view_schema text, views text[], readers text[],
                                          revoke_from text[] DEFAULT '{}') RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r text;
    v text;
    rel text;
    bi regclass;
BEGIN
    -- readers need the schema too; it is not revoked later, other objects may need it
    FOREACH r IN ARRAY readers LOOP
        EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', view_schema, r);
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

-- As in 1.0 (RESTRICT: a user's own view on top of ours stops the drop),
-- each materialized view's plain BI view first.
CREATE OR REPLACE FUNCTION _drop_views(view_schema text, views text[]) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
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

-- As in 1.0, with the sheet and its plain view dropped together before a new
-- revenue_window rebuilds both.
CREATE OR REPLACE FUNCTION alter_campaign(
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
        -- new columns: rebuild the sheet (and its plain view) in this
        -- transaction; readers wait for the commit and then see the new
        -- views, never a missing one
        PERFORM customer_analytics._drop_views(c.view_schema, ARRAY[c.name || '_monthly']);
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
'Change a campaign''s stored parameters (arguments left NULL keep their value) and refresh its views; a new revenue_window rebuilds the monthly view and its plain view';

-- Campaigns and segmentations built before 1.5 have no plain views, and the
-- extension's script must not create them (they would become part of the
-- extension and be left out of dumps): their owner adds them with this.
CREATE FUNCTION add_bi_views() RETURNS SETOF regclass
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    d record;
    v text;
BEGIN
    FOR d IN SELECT c.view_schema, c.readers, customer_analytics._campaign_views(c.name) AS views
               FROM customer_analytics.campaigns c WHERE c.owner = current_user
             UNION ALL
             SELECT s.view_schema, s.readers, customer_analytics._segmentation_views(s.name)
               FROM customer_analytics.segmentations s WHERE s.owner = current_user LOOP
        FOREACH v IN ARRAY d.views LOOP
            IF to_regclass(format('%I.%I', d.view_schema, v)) IS NOT NULL
               AND customer_analytics._bi_view(d.view_schema, v) IS NULL THEN
                PERFORM customer_analytics._build_bi_view(d.view_schema, v);
                PERFORM customer_analytics._grant_readers(d.view_schema, ARRAY[v], d.readers);
                RETURN NEXT customer_analytics._bi_view(d.view_schema, v);
            END IF;
        END LOOP;
    END LOOP;
END $$;
COMMENT ON FUNCTION add_bi_views IS
'Create the plain BI views (<view>_v) missing beside the current role''s campaign and segmentation materialized views (those built before 1.5)';

-- As in 1.0, and each view's refresh shows in pg_stat_activity.query
-- ("refreshing <view> (2 of 4)") while it runs.
CREATE OR REPLACE FUNCTION _refresh_views(view_schema text, views text[], concurrently boolean) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
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
                                                    _refresh_views.concurrently);
    END LOOP;
END $$;
------------------------------------------------------------------------------
-- Rolling windows (issue 13, item 2).  A campaign's windows may be given
-- relative to an as_of date, resolved each time the campaign is computed:
--   rolling => '{"as_of": "today",
--                "spend_window":   {"from": "as_of -12 months +1 day", "to": "as_of"},
--                "revenue_window": {"from": "month_start -4 months",   "to": "as_of"}}'
-- Each bound is an anchor, as_of (the as_of date) or month_start (the first
-- day of its month), optionally followed by a signed interval; both bounds
-- are included.  as_of is "today" (the current date, or the setting
-- customer_analytics.as_of_date when set) or a fixed date.  Windows the spec
-- leaves out keep the catalog's fixed dates, which rolling windows ignore.
-- _campaign_windows() is the one place windows are resolved; everything
-- that computes a campaign reads _campaign_resolved(c).
-- The sheet <name>_monthly has one column per month: when a refresh finds
-- that the resolved months changed, refresh_campaign rebuilds it (refusing
-- with 2BP01 when a user's object depends on it).  <name>_monthly_long
-- (customer_code, month, revenue, orders) has columns that never change.
------------------------------------------------------------------------------

ALTER TABLE campaigns ADD COLUMN rolling jsonb;
COMMENT ON COLUMN campaigns.rolling IS
'Rolling windows: {"as_of": "today" | date, "<window>": {"from": bound, "to": bound}}, a bound being as_of or month_start with an optional signed interval; NULL: fixed windows';

-- The extension's settings as the library accepted them (issue 21, item 5):
-- current_setting() for customer_analytics.* names, but read with the
-- library loaded, so that its check hooks have refused a value stored where
-- it may not come from (an as_of_date from ALTER DATABASE or ALTER ROLE, a
-- source_schema from ALTER DATABASE by an owner the session's user does not
-- trust; src/customer_analytics.c).  Before the library is loaded,
-- current_setting() returns such a value unchecked.
CREATE FUNCTION _checked_setting(name text) RETURNS text
AS 'MODULE_PATHNAME', 'ca_checked_setting' LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION _checked_setting(text) IS
'internal: current_setting(name, true) of a customer_analytics.* setting, read with the library (and its check hooks) loaded';

-- The source schema a call means: the argument, else the setting, else the default.
CREATE OR REPLACE FUNCTION _source_schema(source_schema text) RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT COALESCE(source_schema, customer_analytics._checked_setting('customer_analytics.source_schema'), 'cosmos_sync')
$$;
COMMENT ON FUNCTION _source_schema(text) IS
'internal: the source schema a call means (the argument, else customer_analytics.source_schema as the library accepted it)';

-- What "today" is for rolling windows: customer_analytics.as_of_date when
-- set (in the session: the setting refuses stored values), else the
-- current date.
CREATE FUNCTION _as_of_today() RETURNS date
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
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

-- What a refresh record says when the session pinned "today": a
-- definition whose rolling windows follow "today", refreshed or built while
-- customer_analytics.as_of_date is set, was computed at that date, not the
-- current one (a scheduled run too: run_scheduled_refresh and the
-- dispatcher refresh in the session that calls them).  NULL otherwise.
CREATE FUNCTION _pinned_today_note(kind text, name text) RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
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
COMMENT ON FUNCTION _pinned_today_note(text, text) IS
'internal: what refresh_history.mode adds when a rolling definition following "today" was computed with customer_analytics.as_of_date set, else NULL';

-- One bound of a rolling window: "as_of" or "month_start", optionally
-- followed by a signed interval of whole days, months or years.
CREATE FUNCTION _rolling_bound(spec text, as_of date, what text DEFAULT 'bound') RETURNS date
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
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
END $$;

-- The windows a rolling spec may define.
CREATE FUNCTION _rolling_window_names() RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$$ SELECT '{spend_window,low_ticket_window,base_window,recent_window,revenue_window}'::text[] $$;

-- Refuse a malformed rolling spec (NULL: fixed windows) with 22023 and a hint.
CREATE FUNCTION _check_rolling(rolling jsonb) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    k text;
    w jsonb;
    hint text := 'For example rolling => ''{"as_of": "today", "spend_window": {"from": "as_of -12 months +1 day", "to": "as_of"}}''; '
                 'windows: spend_window, low_ticket_window, base_window, recent_window, revenue_window.';
BEGIN
    IF rolling IS NULL THEN
        RETURN;
    END IF;
    IF jsonb_typeof(rolling) <> 'object' THEN
        RAISE EXCEPTION 'rolling must be a JSON object, not %', rolling
            USING ERRCODE = 'invalid_parameter_value', HINT = hint;
    END IF;
    FOR k IN SELECT jsonb_object_keys(rolling) LOOP
        IF k <> 'as_of' AND NOT k = ANY (customer_analytics._rolling_window_names()) THEN
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
    FOREACH k IN ARRAY customer_analytics._rolling_window_names() LOOP
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
END $$;

-- The as_of date of a campaign: its pinned date, else "today".
CREATE FUNCTION _campaign_as_of(c campaigns) RETURNS date
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE WHEN c.rolling ->> 'as_of' IS NOT NULL AND c.rolling ->> 'as_of' <> 'today'
                THEN (c.rolling ->> 'as_of')::date
                ELSE customer_analytics._as_of_today() END
$$;

-- The one place a campaign's windows are resolved: the rolling ones from
-- their spec at as_of (the campaign's as_of when NULL), the others as stored.
CREATE FUNCTION _campaign_windows(c campaigns, at date DEFAULT NULL,
    OUT as_of date, OUT spend_window daterange, OUT low_ticket_window daterange,
    OUT base_window daterange, OUT recent_window daterange, OUT revenue_window daterange)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    k text;
    w jsonb;
    f date;
    t date;
    resolved jsonb := '{}';
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
    as_of := COALESCE(at, customer_analytics._campaign_as_of(c));
    FOREACH k IN ARRAY customer_analytics._rolling_window_names() LOOP
        w := c.rolling -> k;
        CONTINUE WHEN w IS NULL;
        f := customer_analytics._rolling_bound(w ->> 'from', as_of, k || ' bound');
        t := customer_analytics._rolling_bound(w ->> 'to', as_of, k || ' bound');
        IF f > t THEN
            RAISE EXCEPTION 'rolling % is empty at as_of %: from % is after to %', k, as_of, f, t
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Both bounds are included; "from" must not come after "to", for example {"from": "as_of -3 months", "to": "as_of"}.';
        END IF;
        resolved := resolved || jsonb_build_object(k, daterange(f, t, '[]')::text);
    END LOOP;
    spend_window := COALESCE((resolved ->> 'spend_window')::daterange, spend_window);
    low_ticket_window := COALESCE((resolved ->> 'low_ticket_window')::daterange, low_ticket_window);
    base_window := COALESCE((resolved ->> 'base_window')::daterange, base_window);
    recent_window := COALESCE((resolved ->> 'recent_window')::daterange, recent_window);
    revenue_window := COALESCE((resolved ->> 'revenue_window')::daterange, revenue_window);
END $$;
COMMENT ON FUNCTION _campaign_windows IS
'A campaign''s windows resolved at as_of (rolling windows from their spec, the others as stored)';

-- The campaign with its windows resolved: what every computation reads.
CREATE FUNCTION _campaign_resolved(c campaigns) RETURNS campaigns
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
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

-- As in 1.0, with the rolling spec checked and the revenue window checked
-- as resolved now.
CREATE OR REPLACE FUNCTION _check_campaign(c campaigns) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM customer_analytics._check_view_owner('campaign', c.name, c.view_schema, c.readers,
                                                 '<name>_targets, <name>_monthly and <name>_monthly_long');
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

-- The fingerprint of a campaign's incremental state covers its revenue
-- window too, fixed or rolling: the sheet and the long form reuse the
-- months of unchanged targets, which are only right for the same window
-- (a window whose last day moved within the same month keeps the months
-- but not their sums).
CREATE OR REPLACE FUNCTION _campaign_fingerprint(c campaigns) RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r customer_analytics.campaigns := customer_analytics._campaign_resolved(c);
BEGIN
    RETURN md5(ROW(r.source_schema, r.routes, r.spend_window, r.min_spend, r.low_ticket_window,
                   r.low_ticket_below, r.min_low_tickets, r.base_window, r.recent_window,
                   r.decline_pct, r.exclude_closed, r.route_source)::text
               || ' ' || r.revenue_window::text);
END $$;

-- A campaign's views, in refresh order: the sheet and the long form read the targets.
CREATE OR REPLACE FUNCTION _campaign_views(campaign text) RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$$ SELECT ARRAY[campaign || '_targets', campaign || '_monthly', campaign || '_monthly_long'] $$;

-- As in 1.5 above, with the windows resolved.
CREATE OR REPLACE FUNCTION campaign_targets(campaign text)
RETURNS TABLE (customer_code text, trade_name text, delivery_route text, shipping_address text,
               csm text, total_spend numeric, total_orders bigint, low_ticket_count bigint,
               base_sales numeric, recent_sales numeric, pct_change numeric, target_reason text,
               is_low_ticket boolean, is_declining boolean, last_order_date date,
               avg_ticket_size numeric)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
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
END $$;

CREATE OR REPLACE FUNCTION campaign_monthly_revenue(campaign text,
    OUT customer_code text, OUT month date, OUT revenue numeric, OUT orders bigint)
RETURNS SETOF record
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    c customer_analytics.campaigns := customer_analytics._campaign_resolved(customer_analytics._campaign_to_run(campaign));
BEGIN
    RETURN QUERY SELECT * FROM customer_analytics.monthly_revenue(
        ARRAY(SELECT t.customer_code FROM customer_analytics.campaign_targets(c.name) t),
        c.revenue_window, c.source_schema);
END $$;

-- The sheet's revenue; sheet_months (baked into sheets built since 1.5) are
-- the months its columns are for: when the resolved revenue window no
-- longer has those months (a rolling window moved), a plain REFRESH of the
-- sheet is refused instead of filling the old columns wrongly.
CREATE FUNCTION _campaign_sheet_revenue(campaign text, sheet_months date[])
RETURNS TABLE (customer_code text, month date, revenue numeric)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
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
END $$;
COMMENT ON FUNCTION _campaign_sheet_revenue(text, date[]) IS
'revenue per target and month for a campaign''s monthly sheet built for sheet_months, recomputing only targets changed since the last refresh';

-- Sheets built before: no months to check.
CREATE OR REPLACE FUNCTION _campaign_sheet_revenue(campaign text)
RETURNS TABLE (customer_code text, month date, revenue numeric)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT * FROM customer_analytics._campaign_sheet_revenue(campaign, NULL::date[])
$$;

-- The long form, incrementally like the sheet: the rows of targets whose
-- data did not change since the last refresh are read back from
-- <name>_monthly_long, only the changed targets' months are computed again
-- (it has a row per target and month: recomputed in full, it would cost
-- every refresh what the sheet saves).  The rows are reused only when the
-- incremental state holds,
-- the sheet is the one it describes, and the long form holds the months of
-- the current window.
CREATE FUNCTION _campaign_long_revenue(campaign text, customer_codes text[])
RETURNS TABLE (customer_code text, month date, revenue numeric, orders bigint)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
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
END $$;

-- As in 1.3, with the windows resolved and the sheet's months baked in.
CREATE OR REPLACE FUNCTION _build_monthly_matview(c campaigns) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
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
        'CREATE MATERIALIZED VIEW %1$I.%2$I AS '
        'SELECT t.customer_code, t.trade_name, t.delivery_route, COALESCE(t.csm, '''') AS csm, t.avg_ticket_size%3$s '
        'FROM %1$I.%4$I t LEFT JOIN customer_analytics._campaign_sheet_revenue(%5$L, %6$L::date[]) m USING (customer_code) '
        'GROUP BY t.customer_code, t.trade_name, t.delivery_route, t.csm, t.avg_ticket_size '
        'ORDER BY t.customer_code',
        c.view_schema, v, columns, t, c.name, months);
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
END $$;

-- The long-form materialized view <name>_monthly_long: one row per target
-- and month of the revenue window, columns that never change.
CREATE FUNCTION _build_long_matview(c campaigns) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v text := c.name || '_monthly_long';
BEGIN
    EXECUTE format('CREATE MATERIALIZED VIEW %1$I.%2$I AS SELECT r.customer_code, r.month, r.revenue, r.orders '
                   'FROM customer_analytics._campaign_long_revenue(%3$L, ARRAY(SELECT t.customer_code FROM %1$I.%4$I t)) r '
                   'ORDER BY r.customer_code, r.month',
                   c.view_schema, v, c.name, c.name || '_targets');
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
END $$;

CREATE FUNCTION _build_long_view(c campaigns) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM customer_analytics._report_progress(format('building %I.%I (campaign %s: long-form sheet, 3 of 3)',
                                                       c.view_schema, c.name || '_monthly_long', c.name));
    PERFORM customer_analytics._build_long_matview(c);
    PERFORM customer_analytics._build_bi_view(c.view_schema, c.name || '_monthly_long');
END $$;

-- Campaigns built before the long form get it at their next refresh (or
-- alter), as their owner.  true when it was built.
CREATE FUNCTION _ensure_long_view(c campaigns) RETURNS boolean
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF to_regclass(format('%I.%I', c.view_schema, c.name || '_monthly_long')) IS NOT NULL THEN
        RETURN false;
    END IF;
    PERFORM customer_analytics._build_long_view(c);
    PERFORM customer_analytics._grant_readers(c.view_schema, ARRAY[c.name || '_monthly_long'], c.readers);
    RETURN true;
END $$;

-- The builders the campaign functions call: windows resolved.
CREATE OR REPLACE FUNCTION _build_targets_view(c campaigns) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM customer_analytics._report_progress(format('building %I.%I (campaign %s: targets, 1 of 3)',
                                                       c.view_schema, c.name || '_targets', c.name));
    PERFORM customer_analytics._build_targets_matview(customer_analytics._campaign_resolved(c));
    PERFORM customer_analytics._build_bi_view(c.view_schema, c.name || '_targets');
END $$;

-- As above, with the long form's revenue as numeric(18,2) in its plain view.
CREATE OR REPLACE FUNCTION _build_bi_view(view_schema text, matview text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    mv regclass := format('%I.%I', view_schema, matview)::regclass;
    v text := customer_analytics._bi_view_name(matview);
    a record;
    items text[] := '{}';
    notes jsonb := '{}';
    money_note text := 'numeric(18,2): rounded to 2 decimals where the source has more';
BEGIN
    FOR a IN SELECT x.attname::text AS name, x.atttypid FROM pg_attribute x
              WHERE x.attrelid = mv AND x.attnum > 0 AND NOT x.attisdropped ORDER BY x.attnum LOOP
        IF a.name = 'target_reason' THEN
            -- the notebook's precedence (customer_target_reason() in targeting.c)
            items := array_append(items, 'CASE WHEN m.is_low_ticket THEN ''low_ticket''::text '
                                          'WHEN m.is_declining THEN ''declining''::text END AS target_reason_code');
        ELSIF a.name = 'pct_change' AND a.atttypid = 'numeric'::regtype THEN
            items := array_append(items, '(CASE WHEN abs(m.pct_change) < 1e16 THEN m.pct_change END)::numeric(18,2) AS pct_change');
            notes := notes || jsonb_build_object(a.name, 'numeric(18,2): rounded to 2 decimals');
        ELSIF a.atttypid = 'numeric'::regtype
              AND (a.name IN ('total_spend', 'base_sales', 'recent_sales', 'avg_ticket_size', 'ticket_size')
                   OR a.name ~ '^rev_[0-9]{4}_[0-9]{2}$'
                   OR (a.name = 'revenue' AND matview ~ '_monthly_long$')) THEN
            items := array_append(items, format('m.%1$I::numeric(18,2) AS %1$I', a.name));
            notes := notes || jsonb_build_object(a.name, money_note);
        ELSE
            items := array_append(items, format('m.%I', a.name));
        END IF;
    END LOOP;
    EXECUTE format('CREATE VIEW %I.%I AS SELECT %s FROM %s m', view_schema, v, array_to_string(items, ', '), mv);
    EXECUTE format('COMMENT ON VIEW %I.%I IS %L', view_schema, v,
        format('For BI tools: the rows of materialized view %s as a plain view (money numeric(18,2); '
               'ASCII codes instead of Chinese labels). %s', mv, obj_description(mv, 'pg_class')));
    FOR a IN SELECT x.attname::text AS name, col_description(mv, x.attnum) AS remark FROM pg_attribute x
              WHERE x.attrelid = mv AND x.attnum > 0 AND NOT x.attisdropped LOOP
        IF a.name = 'target_reason' THEN
            EXECUTE format('COMMENT ON COLUMN %I.%I.target_reason_code IS %L', view_schema, v,
                format('why the customer is a target: low_ticket (many low tickets; wins when both rules hold) '
                       'or declining (declining sales); the Chinese label is target_reason in %s', mv));
        ELSIF a.remark IS NOT NULL THEN
            EXECUTE format('COMMENT ON COLUMN %I.%I.%I IS %L', view_schema, v, a.name,
                           a.remark || COALESCE(' [' || (notes ->> a.name) || ']', ''));
        END IF;
    END LOOP;
END $$;

-- The user objects that depend on a campaign's sheet or its plain view
-- (ours excluded), described for a message; NULL when none.
CREATE FUNCTION _sheet_dependents(c campaigns) RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
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

-- Rebuild a campaign's sheet (and its plain view) for new month columns,
-- refusing while a user's object depends on it: never CASCADE.
CREATE FUNCTION _rebuild_sheet(c campaigns, old_columns text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
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

-- The sheet's month columns as they are, and as the resolved window wants
-- them; NULL when there is no sheet.
CREATE FUNCTION _sheet_columns(c campaigns, OUT current_columns text, OUT wanted_columns text)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT (SELECT string_agg(a.attname::text, ', ' ORDER BY a.attnum) FROM pg_attribute a
             WHERE a.attrelid = to_regclass(format('%I.%I', c.view_schema, c.name || '_monthly'))
               AND a.attnum > 0 AND NOT a.attisdropped AND a.attname ~ '^rev_[0-9]{4}_[0-9]{2}$'),
           (SELECT string_agg(p.column_name, ', ' ORDER BY p.month)
              FROM customer_analytics.pivot_months((customer_analytics._campaign_resolved(c)).revenue_window) p)
$$;

-- As in 1.3, and: the refresh is recorded in refresh_history; the long
-- form is built if missing; a campaign whose
-- resolved revenue window has other months than its sheet's columns gets
-- its sheet rebuilt (refused with 2BP01 while a user's object depends on
-- it); the long form is refreshed after the sheet.
CREATE FUNCTION _refresh_campaign_as_owner(campaign text, concurrently boolean)
RETURNS campaigns
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    c customer_analytics.campaigns := customer_analytics._campaign(campaign);
    resolved customer_analytics.campaigns;
    started timestamptz := clock_timestamp();
    snap pg_snapshot;
    d record;
    r customer_analytics.rollups;
    s customer_analytics.campaign_refresh_state;
    delta record;
    state record;
    no_delta text;
    mode text;
    cols record;
    rebuild boolean := false;
    rollup_usable boolean;
    old_columns text;
BEGIN
    PERFORM customer_analytics._require_owner_context('campaign', c.name, c.owner);
    SELECT NULL::pg_snapshot AS snapshot, NULL::bigint AS changed_customers, NULL::bigint AS order_changes INTO delta;
    SELECT NULL::regclass AS state, NULL::regclass AS month_state, NULL::pg_snapshot AS snapshot INTO state;
    -- refreshes of one source take turns (readers never wait): the dirty
    -- set is pruned below, and no other refresh may be between snapshot
    -- and state
    PERFORM pg_advisory_xact_lock(hashtext('customer_analytics.refresh'), hashtext(c.source_schema));
    -- taken before the views are computed: every change it sees, they see
    SELECT pg_current_snapshot() INTO snap;
    -- whether the kept rows can be reused; the changed customers are listed
    -- (a scan of the dirty rows) only if the delta path is not taken
    d := customer_analytics._campaign_changes(c, false);
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
    rollup_usable := r IS NOT NULL AND (customer_analytics._rollup_for_reading(c.source_schema)).rollup IS NOT NULL;
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
        PERFORM customer_analytics._ensure_long_view(c);
        IF rebuild THEN
            PERFORM customer_analytics._refresh_views(c.view_schema, ARRAY[c.name || '_targets'], _refresh_campaign_as_owner.concurrently);
            PERFORM customer_analytics._rebuild_sheet(c, cols.current_columns);
            PERFORM customer_analytics._refresh_views(c.view_schema, ARRAY[c.name || '_monthly_long'], _refresh_campaign_as_owner.concurrently);
        ELSE
            PERFORM customer_analytics._refresh_views(c.view_schema, customer_analytics._campaign_views(c.name),
                                                      _refresh_campaign_as_owner.concurrently);
        END IF;
    END IF;

    IF rollup_usable THEN
        INSERT INTO customer_analytics.campaign_refresh_state AS x
        VALUES (c.name, customer_analytics._campaign_fingerprint(c),
                format('%I.%I', c.view_schema, c.name || '_targets')::regclass, r.generation,
                COALESCE(delta.snapshot, snap),
                format('%I.%I', c.view_schema, c.name || '_monthly')::regclass)
        ON CONFLICT ON CONSTRAINT campaign_refresh_state_pkey DO UPDATE
            SET fingerprint = excluded.fingerprint, targets_view = excluded.targets_view,
                generation = excluded.generation, snapshot = excluded.snapshot,
                monthly_view = excluded.monthly_view;
        IF delta.snapshot IS NOT NULL THEN
            UPDATE customer_analytics.campaign_refresh_state x SET state_snapshot = delta.snapshot
             WHERE x.campaign = c.name;
        ELSIF customer_analytics._campaign_state_unsupported(resolved) IS NULL
              AND NOT customer_analytics._rollup_written_here(r) THEN
            -- (re)built from the rollup, for the next refresh
            PERFORM customer_analytics._report_progress(format('refresh_campaign(%L): building the per-customer state', c.name));
            BEGIN
                state := customer_analytics._campaign_build_state(resolved, r);
            EXCEPTION WHEN duplicate_table OR insufficient_privilege THEN
                RAISE WARNING 'campaign "%" keeps no per-customer state: %', c.name, SQLERRM
                    USING HINT = 'Its refreshes recompute the changed customers'' histories until this is fixed.';
            END;
            UPDATE customer_analytics.campaign_refresh_state x
               SET state_table = state.state, month_state_table = state.month_state, state_snapshot = state.snapshot
             WHERE x.campaign = c.name;
        ELSE
            -- no state for now: what the tables hold is stale
            PERFORM customer_analytics._forget_campaign_state(c);
        END IF;
        PERFORM customer_analytics._prune_dirty(r);
    ELSE
        PERFORM customer_analytics._forget_campaign_state(c);
        DELETE FROM customer_analytics.campaign_refresh_state x WHERE x.campaign = c.name;
    END IF;

    c := customer_analytics._record_refresh(c.name, started);
    mode := CASE WHEN r IS NULL THEN 'full (no rollup)'
                 WHEN delta.snapshot IS NOT NULL
                     THEN format('delta (%s changed customers, %s order changes)', delta.changed_customers, delta.order_changes)
                 WHEN d.usable THEN format('incremental (%s changed customers; histories recomputed: %s)',
                                           cardinality(d.changed), no_delta)
                 ELSE 'full (' || d.reason || ')' END;
    PERFORM customer_analytics._record_history('campaign', c.name, c.owner, started, mode, c.target_rows, NULL);
    -- the duration goes to the catalog (refresh_ms), not the message
    RAISE NOTICE 'campaign "%" refreshed%: % targets, % monthly rows',
        c.name, CASE WHEN delta.snapshot IS NOT NULL
                     THEN format(' from its order changes (%s changed customers, %s order changes)',
                                 delta.changed_customers, delta.order_changes)
                     ELSE CASE WHEN _refresh_campaign_as_owner.concurrently THEN ' concurrently' ELSE '' END
                          || CASE WHEN r IS NULL THEN ''
                                  WHEN d.usable THEN format(' incrementally (%s changed customers; histories recomputed: %s)',
                                                            cardinality(d.changed), no_delta)
                                  ELSE ' in full (' || d.reason || ')' END END,
        c.target_rows, c.monthly_rows;
    RETURN c;
END $$;

-- Check the caller may refresh the campaign, then refresh it as its owner.
CREATE OR REPLACE FUNCTION refresh_campaign(campaign text, concurrently boolean DEFAULT true)
RETURNS campaigns
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
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
COMMENT ON FUNCTION refresh_campaign IS
'Recompute a campaign''s views (CONCURRENTLY by default: readers are never blocked) and record the refresh; a rolling campaign whose revenue months moved gets its sheet rebuilt';

-- As in 1.0, with the rolling spec, and the long form built beside the sheet.
DROP FUNCTION create_campaign(text, text, text[], daterange, numeric, daterange, numeric, int, daterange,
                              daterange, numeric, boolean, text, daterange, text[], text);
-- create_campaign()'s build, as the campaign's owner (its creator): the
-- three views, readers' grants and the first record.
CREATE FUNCTION _build_campaign_as_owner(campaign text, started timestamptz) RETURNS campaigns
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
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
    source_schema     text      DEFAULT NULL,
    rolling           jsonb     DEFAULT NULL)
RETURNS campaigns
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
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
COMMENT ON FUNCTION create_campaign IS
'Store a named campaign (fixed windows, or rolling => relative to the refresh date) and build its materialized views <name>_targets, <name>_monthly and <name>_monthly_long in view_schema';

-- As above (1.5), with rolling (''null'' removes it: fixed windows again);
-- the sheet is rebuilt when the resolved months change, refused with 2BP01
-- while a user's object depends on it.
DROP FUNCTION alter_campaign(text, text[], daterange, numeric, daterange, numeric, int, daterange,
                             daterange, numeric, boolean, text, daterange, text[], text);
-- alter_campaign()'s work on the campaign's objects, as its owner: the
-- catalog row changed from old to c (the fields named in changed), the
-- sheet rebuilt when its columns move, readers' grants, then a refresh.
CREATE FUNCTION _alter_campaign_as_owner(old campaigns, c campaigns, changed text[])
RETURNS campaigns
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
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
    source_schema     text      DEFAULT NULL,
    rolling           jsonb     DEFAULT NULL)
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
COMMENT ON FUNCTION alter_campaign IS
'Change a campaign''s stored parameters (arguments left NULL keep their value; rolling => ''null'' returns to fixed windows) and refresh its views; new month columns rebuild the monthly view and its plain view';

-- As above (1.5), the long form dropped first.
-- drop_campaign()'s work, as the campaign's owner: its views, state,
-- history and catalog row.
CREATE FUNCTION _drop_campaign_as_owner(campaign text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    c customer_analytics.campaigns := customer_analytics._campaign(campaign);
BEGIN
    PERFORM customer_analytics._require_owner_context('campaign', c.name, c.owner);
    PERFORM customer_analytics._drop_views(c.view_schema,
        ARRAY[c.name || '_monthly_long', c.name || '_monthly', c.name || '_targets']);
    PERFORM customer_analytics._drop_campaign_state(c);
    DELETE FROM customer_analytics.refresh_history h WHERE h.kind = 'campaign' AND h.name = c.name;
    DELETE FROM customer_analytics.campaigns WHERE name = c.name;
    RAISE NOTICE 'campaign "%" dropped with its views %, % and %', c.name,
        format('%I.%I', c.view_schema, c.name || '_targets'), format('%I.%I', c.view_schema, c.name || '_monthly'),
        format('%I.%I', c.view_schema, c.name || '_monthly_long');
END $$;

CREATE OR REPLACE FUNCTION drop_campaign(campaign text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    c customer_analytics.campaigns := customer_analytics._campaign(campaign);
BEGIN
    IF customer_analytics._cron_job('campaign', c.name) IS NOT NULL THEN
        PERFORM customer_analytics.unschedule_campaign_refresh(c.name);
    END IF;
    PERFORM customer_analytics._as_owner(c.owner, format('SELECT customer_analytics._drop_campaign_as_owner(%L)', c.name));
END $$;

-- A definition's schedule, who runs it, and its next run: the
-- dispatcher's due time, or the next time pg_cron's job fires.
CREATE FUNCTION _schedule_status(kind text, name text, OUT schedule text, OUT next_run timestamptz, OUT runner text)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT r.schedule,
           CASE r.runner WHEN 'dispatcher' THEN r.next_run
                ELSE customer_analytics._next_run_or_null(r.schedule, now()) END,
           CASE r.runner WHEN 'dispatcher' THEN 'dispatcher (run_due_refreshes as ' || quote_ident(r.run_as) || ')'
                ELSE 'pg_cron job ' || r.job_id END
      FROM customer_analytics.refresh_schedules r
     WHERE r.kind = $1 AND r.name = $2
       -- made for this definition (its owner's), never a former one of that name
       AND r.owner IN (SELECT c.owner FROM customer_analytics.campaigns c WHERE $1 = 'campaign' AND c.name = $2
                       UNION ALL
                       SELECT s.owner FROM customer_analytics.segmentations s WHERE $1 = 'segmentation' AND s.name = $2)
$$;

-- list_campaigns() shows the windows as resolved now (what the next
-- refresh uses), the rolling spec and its as_of.
DROP FUNCTION list_campaigns();
CREATE FUNCTION list_campaigns()
RETURNS TABLE (name text, view_schema text, targets_view text, monthly_view text,
               source_schema text, revenue_window daterange, owner name, schedule text,
               refreshed_at timestamptz, refresh_ms numeric, target_rows bigint, monthly_rows bigint,
               last_status text, last_success_at timestamptz, last_error text, last_error_at timestamptz,
               monthly_long_view text, rolling jsonb, as_of date, spend_window daterange,
               low_ticket_window daterange, base_window daterange, recent_window daterange,
               next_run timestamptz, schedule_runner text)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT c.name, c.view_schema, c.name || '_targets', c.name || '_monthly', c.source_schema,
           w.revenue_window, c.owner, r.schedule,
           c.refreshed_at, c.refresh_ms, c.target_rows, c.monthly_rows,
           l.last_status, l.last_success_at, l.last_error, l.last_error_at,
           c.name || '_monthly_long', c.rolling, w.as_of, w.spend_window,
           w.low_ticket_window, w.base_window, w.recent_window,
           r.next_run, r.runner
      FROM customer_analytics.campaigns c
      CROSS JOIN LATERAL customer_analytics._campaign_windows(c) w
      CROSS JOIN LATERAL customer_analytics._last_refresh('campaign', c.name, c.owner) l
      LEFT JOIN LATERAL customer_analytics._schedule_status('campaign', c.name) r ON true
     ORDER BY c.name
$$;
COMMENT ON FUNCTION list_campaigns IS
'The campaigns, their views, windows (rolling ones resolved now), schedule and next run, last refresh and refresh status (last_status, last_success_at, last_error from refresh_history)';

-- DROP EXTENSION customer_analytics unschedules its pg_cron jobs first
-- (extension_drop.c): they would otherwise fail on every run.
CREATE FUNCTION _drop_watch() RETURNS event_trigger
AS 'MODULE_PATHNAME', 'extension_drop_watch'
LANGUAGE C;
CREATE EVENT TRIGGER customer_analytics_drop ON ddl_command_start
    WHEN TAG IN ('DROP EXTENSION')
    EXECUTE FUNCTION _drop_watch();

------------------------------------------------------------------------------
-- Rolling segmentations (issue 13, item 2): a segmentation's feature window
-- and as_of relative to the refresh date, in the campaigns' spec language:
--   rolling => '{"as_of": "today",
--                "feature_window": {"from": "as_of -12 months +1 day", "to": "as_of"}}'
-- The spec check and the resolution of as_of and of one window are shared
-- with campaigns (_check_rolling_spec, _rolling_as_of, _rolling_window);
-- _segmentation_windows() is the one place a segmentation's window and
-- as_of are resolved, and _segmentation_to_run() returns the resolved row,
-- so segmentation_features() and the four views (which read the definition
-- through it at refresh time) compute with the dates of each refresh.
------------------------------------------------------------------------------

-- Refuse a malformed rolling spec (NULL: fixed windows) with 22023 and a
-- hint: an object of "as_of" and at least one of `windows`, each
-- {"from": bound, "to": bound}.  `example` is the spec the hint shows.
CREATE FUNCTION _check_rolling_spec(rolling jsonb, windows text[], example text) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
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
END $$;
COMMENT ON FUNCTION _check_rolling_spec IS
'Refuse a malformed rolling spec (campaigns and segmentations) with 22023 and a HINT naming the windows it may define';

-- A campaign's rolling spec: the shared check with the campaign windows.
CREATE OR REPLACE FUNCTION _check_rolling(rolling jsonb) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM customer_analytics._check_rolling_spec(rolling, customer_analytics._rolling_window_names(),
        '{"as_of": "today", "spend_window": {"from": "as_of -12 months +1 day", "to": "as_of"}}');
END $$;
COMMENT ON FUNCTION _check_rolling IS
'Refuse a malformed campaign rolling spec (22023 with a HINT); _check_rolling_spec() with the campaign windows';

-- The as_of of a rolling spec: `at` when given, else the spec's pinned
-- date, else "today" (customer_analytics.as_of_date or the current date).
CREATE FUNCTION _rolling_as_of(rolling jsonb, at date DEFAULT NULL) RETURNS date
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT COALESCE(at,
                    CASE WHEN rolling ->> 'as_of' IS NOT NULL AND rolling ->> 'as_of' <> 'today'
                         THEN (rolling ->> 'as_of')::date
                         ELSE customer_analytics._as_of_today() END)
$$;
COMMENT ON FUNCTION _rolling_as_of IS
'The as_of date of a rolling spec: at when given, else its pinned date, else today (customer_analytics.as_of_date when set)';

-- One window of a (checked) rolling spec resolved at as_of, both bounds
-- included; NULL when the spec does not name it.
CREATE FUNCTION _rolling_window(rolling jsonb, window_name text, as_of date) RETURNS daterange
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
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
COMMENT ON FUNCTION _rolling_window IS
'One window of a rolling spec resolved at as_of (both bounds included), NULL when the spec does not name it';

-- As above (1.5), through the shared resolver.
CREATE OR REPLACE FUNCTION _campaign_as_of(c campaigns) RETURNS date
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT customer_analytics._rolling_as_of(c.rolling)
$$;
COMMENT ON FUNCTION _campaign_as_of IS
'The as_of date of a rolling campaign: its pinned date, else today';

-- As above (1.5), each window through the shared resolver.
CREATE OR REPLACE FUNCTION _campaign_windows(c campaigns, at date DEFAULT NULL,
    OUT as_of date, OUT spend_window daterange, OUT low_ticket_window daterange,
    OUT base_window daterange, OUT recent_window daterange, OUT revenue_window daterange)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
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
COMMENT ON FUNCTION _campaign_windows IS
'A campaign''s windows resolved at as_of (rolling windows from their spec, the others as stored)';

ALTER TABLE segmentations ADD COLUMN rolling jsonb;
COMMENT ON COLUMN segmentations.rolling IS
'Rolling feature window: {"as_of": "today" | date, "feature_window": {"from": bound, "to": bound}}, as for campaigns; NULL: the fixed feature_window and as_of';

-- A segmentation's rolling spec: the shared check with its one window.
CREATE FUNCTION _check_segmentation_rolling(rolling jsonb) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM customer_analytics._check_rolling_spec(rolling, '{feature_window}',
        '{"as_of": "today", "feature_window": {"from": "as_of -12 months +1 day", "to": "as_of"}}');
END $$;
COMMENT ON FUNCTION _check_segmentation_rolling IS
'Refuse a malformed segmentation rolling spec (22023 with a HINT); _check_rolling_spec() with feature_window';

-- The one place a segmentation's feature window and as_of are resolved:
-- a rolling one from its spec at `at` (its as_of when NULL), a fixed one as
-- stored.
CREATE FUNCTION _segmentation_windows(s segmentations, at date DEFAULT NULL,
    OUT as_of date, OUT feature_window daterange)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
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
COMMENT ON FUNCTION _segmentation_windows IS
'A segmentation''s feature window and as_of resolved at as_of (from its rolling spec, or as stored)';

-- The segmentation with its window and as_of resolved: what every computation reads.
CREATE FUNCTION _segmentation_resolved(s segmentations) RETURNS segmentations
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
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
COMMENT ON FUNCTION _segmentation_resolved IS
'A segmentation''s catalog row with its rolling feature window and as_of resolved now';

-- As above (1.5, owner check kept), the row resolved: segmentation_features()
-- and the views read their window and as_of here at each refresh.
CREATE OR REPLACE FUNCTION _segmentation_to_run(segmentation text) RETURNS segmentations
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    s customer_analytics.segmentations := customer_analytics._segmentation(segmentation);
BEGIN
    PERFORM customer_analytics._require_definition_runner('segmentation', s.name, s.owner);
    RETURN customer_analytics._segmentation_resolved(s);
END $$;
COMMENT ON FUNCTION _segmentation_to_run IS
'One segmentation to compute, only as its owner, with its rolling window and as_of resolved now';

-- As in 1.0, with the rolling spec checked and resolved now.
CREATE OR REPLACE FUNCTION _check_segmentation(s segmentations) RETURNS void
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
    -- a malformed spec, or a window empty now, is refused here; the
    -- resolved window and as_of are checked by customer_features() when the
    -- views are built
    PERFORM customer_analytics._segmentation_windows(s);
END $$;
COMMENT ON FUNCTION _check_segmentation IS
'Refuse a bad segmentation definition (k, segment, options, rolling spec) with 22023 and a HINT';

-- As above (1.5); a rolling segmentation's model comment names its spec.
CREATE OR REPLACE FUNCTION _build_segmentation_views(s segmentations) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v text;
    model regclass;
BEGIN
    PERFORM customer_analytics._report_progress(format(
        'building segmentation %s: %I.%I, %I.%I, %I.%I, %I.%I (model, members, profiles, elbow for k = %s .. %s)',
        s.name, s.view_schema, s.name || '_model', s.view_schema, s.name || '_members',
        s.view_schema, s.name || '_profiles', s.view_schema, s.name || '_elbow', s.k_from, s.k_to));
    -- the comments show the window and as_of resolved at build time
    PERFORM customer_analytics._build_segmentation_matviews(customer_analytics._segmentation_resolved(s));
    IF s.rolling IS NOT NULL THEN
        model := format('%I.%I', s.view_schema, s.name || '_model')::regclass;
        EXECUTE format('COMMENT ON MATERIALIZED VIEW %s IS %L', model,
            obj_description(model, 'pg_class')
            || format(' Rolling: %s, resolved at each refresh (the dates above are those of the build; '
                      'customer_analytics.list_segmentations() shows the current ones).', s.rolling));
    END IF;
    FOREACH v IN ARRAY customer_analytics._segmentation_views(s.name) LOOP
        PERFORM customer_analytics._build_bi_view(s.view_schema, v);
    END LOOP;
END $$;
COMMENT ON FUNCTION _build_segmentation_views IS
'Build a segmentation''s four materialized views and their plain _v views for BI tools';

-- As in 1.0, with rolling => (a feature window and as_of relative to the
-- refresh date; feature_window and as_of are then kept but not used).
DROP FUNCTION create_segmentation(text, text, int, text, daterange, date, jsonb, int, int, int, text[], text);
-- create_segmentation()'s build, as the segmentation's owner (its
-- creator): the feature state, the four views, readers' grants and the
-- first record.
CREATE FUNCTION _build_segmentation_as_owner(segmentation text, started timestamptz) RETURNS segmentations
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    s customer_analytics.segmentations := customer_analytics._segmentation(segmentation);
BEGIN
    PERFORM customer_analytics._require_owner_context('segmentation', s.name, s.owner);
    -- the features once, into the feature state the four views then read
    -- (under the refreshes' lock: the order changes are pruned meanwhile)
    PERFORM pg_advisory_xact_lock(hashtext('customer_analytics.refresh'), hashtext(s.source_schema));
    PERFORM customer_analytics._segmentation_update_state(s);
    PERFORM customer_analytics._build_segmentation_views(s);
    PERFORM customer_analytics._grant_readers(s.view_schema, customer_analytics._segmentation_views(s.name), s.readers);
    s := customer_analytics._record_segmentation_refresh(s.name, started);
    PERFORM customer_analytics._record_history('segmentation', s.name, s.owner, started, 'build', s.member_rows, NULL);
    RAISE NOTICE 'segmentation "%" built: % with % customers in % clusters', s.name,
        format('%I.%I', s.view_schema, s.name || '_members'), s.member_rows, s.k;
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
    source_schema     text      DEFAULT NULL,
    rolling           jsonb     DEFAULT NULL)
RETURNS segmentations
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    s customer_analytics.segmentations;
    started timestamptz := clock_timestamp();
BEGIN
    s.name := name; s.view_schema := view_schema;
    s.source_schema := customer_analytics._source_schema(source_schema);
    s.segment := segment; s.k := k; s.feature_window := feature_window; s.as_of := as_of;
    s.options := options; s.k_from := k_from; s.k_to := k_to; s.silhouette_sample := silhouette_sample;
    s.readers := readers; s.owner := current_user; s.created_at := now();
    s.rolling := CASE WHEN jsonb_typeof(rolling) = 'null' THEN NULL ELSE rolling END;
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
    RETURN customer_analytics._as_owner(s.owner,
        format('SELECT customer_analytics._build_segmentation_as_owner(%L, %L)', s.name, started))::customer_analytics.segmentations;
END $$;
COMMENT ON FUNCTION create_segmentation IS
'Store a named k-means segmentation (fixed feature window and as_of, or rolling => relative to the refresh date) and build its views <name>_model, <name>_members, <name>_profiles and <name>_elbow in view_schema';

-- Change a segmentation's dates: its rolling spec ('null' returns to the
-- fixed dates), or its fixed feature_window / as_of; then refresh it.
-- Other parameters (k, segment, options, readers): drop and create again.
-- alter_segmentation()'s work, as the segmentation's owner: its catalog
-- row changed from old to s, then a refresh.
CREATE FUNCTION _alter_segmentation_as_owner(old segmentations, s segmentations)
RETURNS segmentations
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM customer_analytics._require_owner_context('segmentation', old.name, old.owner);
    UPDATE customer_analytics.segmentations
       SET rolling = s.rolling, feature_window = s.feature_window, as_of = s.as_of
     WHERE segmentations.name = s.name;
    RAISE NOTICE 'segmentation "%" changed: %', s.name,
        concat_ws(', ', CASE WHEN s.as_of IS DISTINCT FROM old.as_of THEN 'as_of' END,
                        CASE WHEN s.feature_window IS DISTINCT FROM old.feature_window THEN 'feature_window' END,
                        CASE WHEN s.rolling IS DISTINCT FROM old.rolling THEN 'rolling' END);
    RETURN customer_analytics._refresh_segmentation_as_owner(s.name, true);
END $$;

CREATE FUNCTION alter_segmentation(
    name           text,
    rolling        jsonb     DEFAULT NULL,
    feature_window daterange DEFAULT NULL,
    as_of          date      DEFAULT NULL)
RETURNS segmentations
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    old customer_analytics.segmentations := customer_analytics._segmentation(name);
    s customer_analytics.segmentations := old;
BEGIN
    s.rolling := CASE WHEN rolling IS NULL THEN old.rolling
                      WHEN jsonb_typeof(rolling) = 'null' THEN NULL ELSE rolling END;
    s.feature_window := COALESCE(feature_window, old.feature_window);
    s.as_of := COALESCE(as_of, old.as_of);
    PERFORM customer_analytics._check_segmentation(s);
    IF ROW(s.rolling, s.feature_window, s.as_of) IS NOT DISTINCT FROM ROW(old.rolling, old.feature_window, old.as_of) THEN
        RAISE NOTICE 'segmentation "%" unchanged', s.name;
        RETURN old;
    END IF;
    RETURN customer_analytics._as_owner(old.owner,
        format('SELECT customer_analytics._alter_segmentation_as_owner(%L::customer_analytics.segmentations, %L::customer_analytics.segmentations)',
               old, s))::customer_analytics.segmentations;
END $$;
COMMENT ON FUNCTION alter_segmentation IS
'Change a segmentation''s feature window and as_of (rolling => spec, ''null'' for fixed dates again; feature_window, as_of) and refresh its views; other parameters: drop and create again';

-- list_segmentations() shows the feature window and as_of as resolved now
-- (what the next refresh uses) and the rolling spec (a change of result
-- columns: dropped and created again; no object depends on it).
DROP FUNCTION list_segmentations();
CREATE FUNCTION list_segmentations()
RETURNS TABLE (name text, view_schema text, views text[], segment text, k int, feature_window daterange,
               as_of date, source_schema text, owner name, schedule text,
               refreshed_at timestamptz, refresh_ms numeric, member_rows bigint,
               last_status text, last_success_at timestamptz, last_error text, last_error_at timestamptz,
               rolling jsonb, next_run timestamptz, schedule_runner text)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT s.name, s.view_schema, customer_analytics._segmentation_views(s.name), s.segment, s.k,
           w.feature_window, w.as_of, s.source_schema, s.owner,
           r.schedule, s.refreshed_at, s.refresh_ms, s.member_rows,
           l.last_status, l.last_success_at, l.last_error, l.last_error_at, s.rolling,
           r.next_run, r.runner
      FROM customer_analytics.segmentations s
      CROSS JOIN LATERAL customer_analytics._segmentation_windows(s) w
      CROSS JOIN LATERAL customer_analytics._last_refresh('segmentation', s.name, s.owner) l
      LEFT JOIN LATERAL customer_analytics._schedule_status('segmentation', s.name) r ON true
     ORDER BY s.name
$$;
COMMENT ON FUNCTION list_segmentations IS
'The segmentations, their views, feature window and as_of (rolling ones resolved now), rolling spec, schedule, last refresh and refresh status';


------------------------------------------------------------------------------
-- Delta refresh: per-customer state adjusted from order changes.
--
-- The rollup's triggers record, besides the customers they touch, each
-- changed order's old row (sign -1) and new row (sign +1) in the dirty
-- table.  A campaign keeps, in two tables of its own next to its views,
-- the per-customer counts and sums the funnel decides on (<name>_state)
-- and the months of its targets (<name>_month_state), both exact as of a
-- snapshot.  refresh_campaign() then reads only the order changes
-- committed since that snapshot: it adds them to the state, decides again
-- for the customers whose state or attributes changed, and replaces those
-- customers' rows in the three views in place (_matview_apply), instead of
-- recomputing their whole histories and diffing whole views.  Every
-- statement of it runs as of one snapshot (_at_one_snapshot), which becomes
-- the state's.  Whatever the deltas cannot follow (a rebuilt rollup, a
-- TRUNCATE, a changed campaign or window, routes from the orders, amounts
-- without a fixed scale) falls back to the previous ways, and the refresh
-- status says why.
------------------------------------------------------------------------------
CREATE FUNCTION _at_one_snapshot(guard text, statements text[]) RETURNS pg_snapshot
AS 'MODULE_PATHNAME', 'at_one_snapshot' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION _at_one_snapshot(text, text[]) IS
'internal: run statements as of one snapshot (unless guard returns true) and return it';

CREATE FUNCTION _matview_apply(matview regclass, keys text[], rows_sql text) RETURNS bigint
AS 'MODULE_PATHNAME', 'matview_apply' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION _matview_apply(regclass, text[], text) IS
'internal: replace the rows of the given customers in a materialized view the caller owns, without blocking readers';

CREATE FUNCTION _matview_lock(matview regclass) RETURNS void
AS 'MODULE_PATHNAME', 'matview_lock' LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION _matview_lock(regclass) IS
'internal: lock a materialized view the caller owns as _matview_apply does, until the end of the transaction';

CREATE FUNCTION _target_customers_from_state(
    routes text[], spend_window daterange, min_spend numeric, low_ticket_window daterange,
    low_ticket_below numeric, min_low_tickets int, base_window daterange, recent_window daterange,
    decline_pct numeric, exclude_closed boolean, route_source text, source_schema text,
    customers text[], state regclass,
    OUT customer_code text, OUT trade_name text, OUT delivery_route text, OUT shipping_address text,
    OUT csm text, OUT total_spend numeric, OUT total_orders bigint, OUT low_ticket_count bigint,
    OUT base_sales numeric, OUT recent_sales numeric, OUT pct_change numeric, OUT target_reason text,
    OUT is_low_ticket boolean, OUT is_declining boolean, OUT last_order_date date,
    OUT avg_ticket_size numeric)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'target_customers_from_state' LANGUAGE C STABLE;
COMMENT ON FUNCTION _target_customers_from_state IS
'internal: target_customers() deciding on a campaign''s per-customer state table instead of the orders';

-- The dirty table's order rows: the old (-1) and new (+1) row of each
-- changed order, as the rollup held it (date, total, quantity, codes).  Added to existing rollups here,
-- and by rebuild_rollup to any that lacks them.
CREATE FUNCTION _rollup_add_delta_columns(r rollups) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    -- the refreshes read the rows of recent transactions through it
    IF to_regclass(customer_analytics._rollup_dirty_table(r.id) || '_xid') IS NULL THEN
        EXECUTE format('CREATE INDEX %I ON %s (xid)', format('rollup_dirty_%s_xid', r.id),
                       customer_analytics._rollup_dirty_table(r.id));
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = customer_analytics._rollup_dirty_table(r.id)::regclass
                      AND a.attname = 'sign' AND NOT a.attisdropped) THEN
        EXECUTE format('ALTER TABLE %s ADD COLUMN order_date date, ADD COLUMN order_date_raw text,'
                       ' ADD COLUMN total numeric, ADD COLUMN sign smallint',
                       customer_analytics._rollup_dirty_table(r.id));
        EXECUTE format('COMMENT ON COLUMN %s.sign IS %L', customer_analytics._rollup_dirty_table(r.id),
                       'for an order''s row: -1 the row the rollup held before the transaction, +1 the row after; NULL: the customer changed');
    END IF;
    -- what a segmentation's feature state adds up besides the totals
    IF NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = customer_analytics._rollup_dirty_table(r.id)::regclass
                      AND a.attname = 'product_codes' AND NOT a.attisdropped) THEN
        EXECUTE format('ALTER TABLE %s ADD COLUMN quantity numeric, ADD COLUMN product_codes text[]',
                       customer_analytics._rollup_dirty_table(r.id));
    END IF;
END $$;
DO $$
DECLARE
    r customer_analytics.rollups;
BEGIN
    FOR r IN SELECT * FROM customer_analytics.rollups LOOP
        IF to_regclass(customer_analytics._rollup_dirty_table(r.id)) IS NOT NULL THEN
            PERFORM customer_analytics._rollup_add_delta_columns(r);
        END IF;
    END LOOP;
END $$;



ALTER TABLE campaign_refresh_state
    ADD COLUMN state_table oid,             -- <name>_state when the campaign keeps per-customer state
    ADD COLUMN month_state_table oid,       -- <name>_month_state
    ADD COLUMN state_snapshot pg_snapshot,  -- what both tables are exact as of
    ADD COLUMN shard_snapshots jsonb;       -- sharded source: per shard server, what the views reflect
COMMENT ON COLUMN campaign_refresh_state.state_snapshot IS
'the snapshot the campaign''s per-customer state tables are exact as of (NULL: no state)';
COMMENT ON COLUMN campaign_refresh_state.shard_snapshots IS
'sharded source with per-shard rollups: {"<server>": {"generation": g, "snapshot": "<the shard''s pg_snapshot>", "system_identifier": "<its cluster''s>"}}, what the views reflect on each shard (NULL: none)';

-- Forget the dirty rows every campaign and segmentation of the source has
-- seen: in the snapshot of a campaign's views and, when it keeps state, of
-- its state; in the snapshot of a segmentation's feature state.
CREATE OR REPLACE FUNCTION _prune_dirty(r rollups) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    oldest xid8;
BEGIN
    IF has_table_privilege(customer_analytics._rollup_dirty_table(r.id), 'DELETE') THEN
        -- below the oldest snapshot's xmin every row is seen by all (an
        -- index range on xid); above it, row by row
        SELECT min(o.xmin) INTO oldest FROM (
            SELECT LEAST(pg_snapshot_xmin(s.snapshot), pg_snapshot_xmin(COALESCE(s.state_snapshot, s.snapshot))) AS xmin
              FROM customer_analytics.campaign_refresh_state s
              JOIN customer_analytics.campaigns c ON c.name = s.campaign
             WHERE c.source_schema = r.source_schema AND s.generation = r.generation
            UNION ALL
            SELECT pg_snapshot_xmin(x.snapshot)
              FROM customer_analytics.segmentation_refresh_state x
              JOIN customer_analytics.segmentations g ON g.name = x.segmentation
             WHERE g.source_schema = r.source_schema AND x.generation = r.generation AND x.snapshot IS NOT NULL) o;
        IF oldest IS NULL THEN
            EXECUTE format('DELETE FROM %s', customer_analytics._rollup_dirty_table(r.id));
            RETURN;
        END IF;
        EXECUTE format('DELETE FROM %s d WHERE d.xid < $1', customer_analytics._rollup_dirty_table(r.id)) USING oldest;
        EXECUTE format('DELETE FROM %s d WHERE d.xid >= $3 AND NOT EXISTS ('
                       'SELECT 1 FROM customer_analytics.campaign_refresh_state s'
                       ' JOIN customer_analytics.campaigns c ON c.name = s.campaign'
                       ' WHERE c.source_schema = $1 AND s.generation = $2'
                       ' AND (NOT pg_visible_in_snapshot(d.xid, s.snapshot)'
                       '      OR NOT pg_visible_in_snapshot(d.xid, COALESCE(s.state_snapshot, s.snapshot))))'
                       ' AND NOT EXISTS (SELECT 1 FROM customer_analytics.segmentation_refresh_state x'
                       ' JOIN customer_analytics.segmentations g ON g.name = x.segmentation'
                       ' WHERE g.source_schema = $1 AND x.generation = $2 AND x.snapshot IS NOT NULL'
                       ' AND NOT pg_visible_in_snapshot(d.xid, x.snapshot))',
                       customer_analytics._rollup_dirty_table(r.id))
        USING r.source_schema, r.generation, oldest;
    END IF;
END $$;

-- Per-customer state tables (a campaign's, a segmentation's) are ordinary
-- tables of the owner next to the views, recognised by a marker comment
-- (which a restore brings back with them).  These serve both kinds.

-- Those of the tables schema.names that exist and carry the marker.
CREATE FUNCTION _marked_tables(schema text, names text[], marker text) RETURNS SETOF regclass
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT t FROM (SELECT to_regclass(format('%I.%I', schema, n)) AS t FROM unnest(names) n) x
     WHERE obj_description(t, 'pg_class') = marker
$$;

-- Refuse to take over a relation named like a state table that is not one:
-- each of schema.names must be absent or carry the marker.
CREATE FUNCTION _require_marked_or_absent(schema text, names text[], marker text, kind text, name text,
                                          what text) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY names LOOP
        IF to_regclass(format('%I.%I', schema, t)) IS NOT NULL
           AND obj_description(to_regclass(format('%I.%I', schema, t)), 'pg_class') IS DISTINCT FROM marker THEN
            RAISE EXCEPTION 'relation %.% exists and is not the state of % "%"', schema, t, kind, name
                USING ERRCODE = 'duplicate_table',
                      HINT = format('Rename or drop that relation; the %s keeps its %s under this name.', kind, what);
        END IF;
    END LOOP;
END $$;

-- Create the table schema.name (columns: a column list in parentheses)
-- with the marker, unless it exists; returns it.
CREATE FUNCTION _create_marked_table(schema text, name text, columns text, marker text) RETURNS regclass
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF to_regclass(format('%I.%I', schema, name)) IS NULL THEN
        EXECUTE format('CREATE TABLE %I.%I %s', schema, name, columns);
        EXECUTE format('COMMENT ON TABLE %I.%I IS %L', schema, name, marker);
    END IF;
    RETURN format('%I.%I', schema, name)::regclass;
END $$;

-- Drop those of the tables schema.names that carry the marker; returns how many.
CREATE FUNCTION _drop_marked_tables(schema text, names text[], marker text) RETURNS int
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    t regclass;
    n int := 0;
BEGIN
    FOR t IN SELECT * FROM customer_analytics._marked_tables(schema, names, marker) LOOP
        EXECUTE format('DROP TABLE %s', t);
        n := n + 1;
    END LOOP;
    RETURN n;
END $$;

-- The names of a campaign's two state tables (in its view schema).
CREATE FUNCTION _campaign_state_names(c campaigns, OUT state text, OUT month_state text)
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$$ SELECT c.name || '_state', c.name || '_month_state' $$;

-- The comment that marks a table as a campaign's state (a restore brings
-- it back with the tables).
CREATE FUNCTION _campaign_state_marker(c campaigns) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$$ SELECT 'customer_analytics: per-customer state of campaign ' || c.name $$;

-- Those of the campaign's two state tables that exist and carry its marker.
CREATE FUNCTION _campaign_state_relations(c campaigns) RETURNS SETOF regclass
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT customer_analytics._marked_tables(c.view_schema, ARRAY[n.state, n.month_state],
                                             customer_analytics._campaign_state_marker(c))
      FROM customer_analytics._campaign_state_names(c) n
$$;

-- The smallest window covering the four targeting windows: the orders the
-- state counts (target_customers()'s data window).
CREATE FUNCTION _campaign_data_window(c campaigns) RETURNS daterange
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT range_merge(range_merge(c.spend_window, c.low_ticket_window), range_merge(c.base_window, c.recent_window))
$$;

-- Why the campaign's views cannot be kept from per-customer state at all
-- (NULL: they can).  c has its windows resolved.
CREATE FUNCTION _campaign_state_unsupported(c campaigns) RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE
        WHEN c.route_source = 'order' THEN 'routes come from the orders'
        WHEN NOT EXISTS (
            SELECT 1 FROM pg_attribute a
             WHERE a.attrelid = to_regclass(format('%I.sales_order_lines', c.source_schema))
               AND a.attname = 'pretax_subtotal' AND NOT a.attisdropped
               AND (a.atttypid IN ('int2'::regtype, 'int4'::regtype, 'int8'::regtype)
                    OR (a.atttypid = 'numeric'::regtype AND a.atttypmod >= 0)))
        THEN 'the line amounts have no fixed scale (pretax_subtotal is not numeric(p,s) or an integer)'
    END
$$;

-- Why the state tables cannot be used for this refresh (NULL: they can):
-- they must be the ones recorded, plain tables of the caller.
CREATE FUNCTION _campaign_state_problem(c campaigns, s campaign_refresh_state) RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n record := customer_analytics._campaign_state_names(c);
    st regclass := to_regclass(format('%I.%I', c.view_schema, n.state));
    mt regclass := to_regclass(format('%I.%I', c.view_schema, n.month_state));
BEGIN
    IF s.state_snapshot IS NULL THEN
        RETURN 'no per-customer state yet';
    ELSIF st IS DISTINCT FROM s.state_table OR mt IS DISTINCT FROM s.month_state_table
          OR NOT pg_has_role((SELECT relowner FROM pg_class WHERE oid = st), 'USAGE')
          OR NOT pg_has_role((SELECT relowner FROM pg_class WHERE oid = mt), 'USAGE') THEN
        RETURN 'the per-customer state tables were changed';
    ELSIF NOT customer_analytics._view_reusable(to_regclass(format('%I.%I', c.view_schema, c.name || '_monthly')),
                                                s.monthly_view)
          OR to_regclass(format('%I.%I', c.view_schema, c.name || '_monthly_long')) IS NULL THEN
        RETURN 'the monthly views were rebuilt';
    END IF;
    RETURN NULL;
END $$;

-- Create the state tables if missing (or take back the ones a restore
-- brought), as the campaign's owner.  Error when another relation has the
-- name.  Returns them.
CREATE FUNCTION _campaign_state_tables(c campaigns, OUT state regclass, OUT month_state regclass)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n record := customer_analytics._campaign_state_names(c);
    marker text := customer_analytics._campaign_state_marker(c);
BEGIN
    PERFORM customer_analytics._require_marked_or_absent(c.view_schema, ARRAY[n.state, n.month_state], marker,
                                                         'campaign', c.name, 'per-customer state');
    state := customer_analytics._create_marked_table(c.view_schema, n.state,
        '(customer_code text PRIMARY KEY, orders bigint NOT NULL, total numeric, last_order date,'
        ' spend_orders bigint NOT NULL, spend numeric, low_tickets bigint NOT NULL, base_orders bigint NOT NULL,'
        ' base numeric, recent_orders bigint NOT NULL, recent numeric)', marker);
    month_state := customer_analytics._create_marked_table(c.view_schema, n.month_state,
        '(customer_code text, month date, revenue numeric, orders bigint, PRIMARY KEY (customer_code, month))', marker);
END $$;

-- The state's columns (orders, total, spend_orders, spend, low_tickets,
-- base_orders, base, recent_orders, recent) as aggregates over order rows
-- o(sign, samount, in_spend, in_low, in_base, in_recent) that
-- _campaign_state_flags() computes: counted once each, or with their sign
-- (-1 removed, +1 added).  A sum over no order is NULL, as targeting_stats
-- leaves it.
CREATE FUNCTION _campaign_state_aggregates(signed boolean) RETURNS text
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT format('sum(%1$s) AS orders, sum(o.samount) AS total,'
                  ' COALESCE(sum(%1$s) FILTER (WHERE o.in_spend), 0) AS spend_orders,'
                  ' sum(o.samount) FILTER (WHERE o.in_spend) AS spend,'
                  ' COALESCE(sum(%1$s) FILTER (WHERE o.in_low), 0) AS low_tickets,'
                  ' COALESCE(sum(%1$s) FILTER (WHERE o.in_base), 0) AS base_orders,'
                  ' sum(o.samount) FILTER (WHERE o.in_base) AS base,'
                  ' COALESCE(sum(%1$s) FILTER (WHERE o.in_recent), 0) AS recent_orders,'
                  ' sum(o.samount) FILTER (WHERE o.in_recent) AS recent',
                  CASE WHEN signed THEN 'o.sign' ELSE '1' END)
$$;

-- What _campaign_state_aggregates() reads of an order row i(d date, amount
-- numeric[, sign]): its (signed) amount and the campaign's windows it falls
-- in.  Computed once per row (the delta refresh keeps them in a subquery
-- with OFFSET 0) rather than once per aggregate.
CREATE FUNCTION _campaign_state_flags(c campaigns, signed boolean) RETURNS text
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT format('%s AS samount, i.d <@ %L::daterange AS in_spend,'
                  ' (i.d <@ %L::daterange AND i.amount < %L::numeric) AS in_low,'
                  ' i.d <@ %L::daterange AS in_base, i.d <@ %L::daterange AS in_recent',
                  CASE WHEN signed THEN 'i.sign * i.amount' ELSE 'i.amount' END,
                  c.spend_window, c.low_ticket_window, c.low_ticket_below, c.base_window, c.recent_window)
$$;

-- The state's columns in the order _campaign_state_aggregates() gives them.
CREATE FUNCTION _campaign_state_columns() RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$$ SELECT 'orders, total, spend_orders, spend, low_tickets, base_orders, base, recent_orders, recent' $$;

-- The sheet's rows (one per target, a column per month) from a relation of
-- target rows and one of (customer_code, month, revenue) rows, as the
-- sheet's own definition computes them.
CREATE FUNCTION _campaign_sheet_rows_sql(c campaigns, targets text, revenue text) RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    columns text := '';
    m record;
BEGIN
    FOR m IN SELECT * FROM customer_analytics.pivot_months(c.revenue_window) LOOP
        columns := columns || format(', COALESCE(sum(m.revenue) FILTER (WHERE m.month = %L::date), 0)::numeric AS %I',
                                     m.month, m.column_name);
    END LOOP;
    RETURN format('SELECT t.customer_code, t.trade_name, t.delivery_route, COALESCE(t.csm, '''') AS csm, t.avg_ticket_size%s'
                  ' FROM %s t LEFT JOIN %s m USING (customer_code)'
                  ' GROUP BY t.customer_code, t.trade_name, t.delivery_route, t.csm, t.avg_ticket_size',
                  columns, targets, revenue);
END $$;

-- The target_customers() call of a campaign over its state (customers
-- from the SQL array expression given).
CREATE FUNCTION _campaign_state_targets_sql(c campaigns, state regclass, customers text) RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT format('SELECT * FROM customer_analytics._target_customers_from_state(%L::text[], %L::daterange, %L::numeric,'
                  ' %L::daterange, %L::numeric, %L::int, %L::daterange, %L::daterange, %L::numeric, %L::boolean,'
                  ' %L::text, %L::text, %s, %L::regclass)',
                  c.routes, c.spend_window, c.min_spend, c.low_ticket_window, c.low_ticket_below,
                  c.min_low_tickets, c.base_window, c.recent_window, c.decline_pct, c.exclude_closed,
                  c.route_source, c.source_schema, customers, state::oid)
$$;

-- Build a campaign's state from the rollup, as of one snapshot, which it
-- returns.  c has its windows resolved; the caller records the result.
CREATE FUNCTION _campaign_build_state(c campaigns, r rollups, OUT state regclass, OUT month_state regclass,
                                      OUT snapshot pg_snapshot)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    t record := customer_analytics._campaign_state_tables(c);
BEGIN
    state := t.state;
    month_state := t.month_state;
    snapshot := customer_analytics._at_one_snapshot(NULL, ARRAY[
        format('TRUNCATE %s, %s', state, month_state),
        format('INSERT INTO %s (customer_code, %s, last_order)'
               ' SELECT o.customer_code, %s, max(o.d)'
               ' FROM (SELECT i.customer_code, i.d, %s'
               '       FROM (SELECT r.customer_code, COALESCE(r.total, 0) AS amount,'
               '             customer_analytics._rollup_order_date(r.order_date, r.order_date_raw, r.order_type, r.order_number) AS d'
               '             FROM %s r WHERE r.customer_code IS NOT NULL) i'
               '       WHERE i.d <@ %L::daterange) o'
               ' GROUP BY o.customer_code',
               state, customer_analytics._campaign_state_columns(),
               customer_analytics._campaign_state_aggregates(false), customer_analytics._campaign_state_flags(c, false),
               customer_analytics._rollup_table(r.id), customer_analytics._campaign_data_window(c)),
        format('INSERT INTO %s SELECT * FROM customer_analytics.monthly_revenue(ARRAY(SELECT t.customer_code FROM (%s) t), %L::daterange, %L)',
               month_state, customer_analytics._campaign_state_targets_sql(c, state, 'NULL'), c.revenue_window, c.source_schema)]);
END $$;

-- The guard of a delta refresh (_at_one_snapshot's): true, and nothing is
-- applied, when there is a change the state cannot follow among the dirty
-- rows `since` selects (SQL over alias x): a TRUNCATE or rebuild committed
-- since the caller looked, an order total or quantity that is not a finite
-- number (a sum that took in NaN cannot give it back when the row is
-- corrected: the state is computed afresh instead, as long as such a row is
-- among the changes), or a write of the refreshing transaction itself,
-- whose rows no snapshot can tell apart before and after this refresh.
-- Orders whose date the triggers could not read are not a reason: the
-- refresh raises on them what the full computation raises
-- (_rollup_changes_check_sql), and a date corrected since is followed.
CREATE FUNCTION _rollup_delta_guard_sql(r rollups, since text) RETURNS text
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT format('SELECT (SELECT x.generation <> %s OR x.state <> ''current'' FROM customer_analytics.rollups x WHERE x.id = %s)'
                  ' OR EXISTS (SELECT 1 FROM %s x WHERE %s AND (x.customer_code IS NULL'
                  ' OR x.total IN (''NaN'', ''Infinity'', ''-Infinity'') OR x.quantity IN (''NaN'', ''Infinity'', ''-Infinity'')'
                  ' OR x.xid = pg_catalog.pg_current_xact_id_if_assigned()))',
                  r.generation, r.id, customer_analytics._rollup_dirty_table(r.id), since)
$$;

-- The first statement of a delta refresh (run as of the snapshot it applies
-- the changes at): the orders changed since the state's snapshot (the
-- dirty rows `since` selects, SQL over alias x) read as the full
-- computation reads them.  Every order the rollup now holds without a
-- readable date, of a customer that one of the changes' new rows (sign +1)
-- gave such an order, is dated by _rollup_order_date(), which raises the
-- error target_customers(), customer_features() and the state's build
-- raise on it (the same SQLSTATE and message, naming the order).  That is
-- every such order of the rollup with a customer: when the state was built
-- or last adjusted there was none (the build dates every order, and so did
-- the refreshes since), and a new one comes with a new row in the dirty
-- table.  An order whose date was broken and corrected again since then is
-- no longer one: the refresh then goes on.  The ERP's writes are never
-- refused; the refresh fails, and its views and state stay as they were.
-- (Each such customer's orders are read through the rollup's customer
-- index, OFFSET 0 keeping the planner from a scan of the whole rollup: a
-- refresh with no such change reads nothing more than its dirty rows.)
CREATE FUNCTION _rollup_changes_check_sql(r rollups, since text) RETURNS text
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT format('SELECT count(customer_analytics._rollup_order_date(o.order_date, o.order_date_raw, o.order_type, o.order_number))'
                  ' FROM (SELECT DISTINCT x.customer_code FROM %2$s x WHERE %3$s AND x.sign > 0 AND x.order_date IS NULL) k,'
                  ' LATERAL (SELECT r.order_date, r.order_date_raw, r.order_type, r.order_number FROM %1$s r'
                  '          WHERE r.customer_code = k.customer_code AND r.order_date IS NULL OFFSET 0) o',
                  customer_analytics._rollup_table(r.id), customer_analytics._rollup_dirty_table(r.id), since)
$$;

-- Apply the order changes committed since the state's snapshot to a
-- campaign's state and views, as of one new snapshot, which it returns
-- (NULL, nothing done, when there is a change it cannot follow: see
-- _rollup_delta_guard_sql).  An order among the changes that the full
-- computation refuses (a date it cannot read) raises its error, and
-- nothing is applied.  c has its windows resolved; the caller holds the
-- refresh lock.
CREATE FUNCTION _campaign_delta_refresh(c campaigns, s campaign_refresh_state, r rollups,
                                        OUT snapshot pg_snapshot, OUT changed_customers bigint,
                                        OUT order_changes bigint)
-- jit: the estimates over the dirty rows and the state make the planner
-- compile statements that then touch a few thousand rows
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET jit = off AS $$
DECLARE
    dirty text := customer_analytics._rollup_dirty_table(r.id);
    -- rows of transactions the state's snapshot does not see; the first
    -- test (implied by the second) lets the xid index skip older rows,
    -- dead ones included
    since text := format('x.xid >= pg_catalog.pg_snapshot_xmin(%1$L::pg_snapshot)'
                         ' AND NOT pg_catalog.pg_visible_in_snapshot(x.xid, %1$L::pg_snapshot)', s.state_snapshot);
    state regclass := s.state_table;
    month_state regclass := s.month_state_table;
    targets regclass := format('%I.%I', c.view_schema, c.name || '_targets')::regclass;
    sheet regclass := format('%I.%I', c.view_schema, c.name || '_monthly')::regclass;
    long regclass := format('%I.%I', c.view_schema, c.name || '_monthly_long')::regclass;
    changed_keys text := 'ARRAY(SELECT k.customer_code FROM pg_temp.customer_analytics_changed k)';
BEGIN
    -- what REFRESH ... CONCURRENTLY takes, before the snapshot: readers go
    -- on; a plain REFRESH of a view waits instead of slipping in between
    PERFORM customer_analytics._matview_lock(targets);
    PERFORM customer_analytics._matview_lock(sheet);
    PERFORM customer_analytics._matview_lock(long);
    PERFORM customer_analytics._drop_delta_scratch();
    PERFORM customer_analytics._scratch_table('customer_analytics_changed', '(customer_code text PRIMARY KEY)');
    -- the targets whose months changed, entered or left: the long form's keys
    PERFORM customer_analytics._scratch_table('customer_analytics_long_keys', '(customer_code text PRIMARY KEY)');
    PERFORM customer_analytics._scratch_table('customer_analytics_targets', format('(LIKE %s)', targets));

    snapshot := customer_analytics._at_one_snapshot(customer_analytics._rollup_delta_guard_sql(r, since),
        ARRAY[
        -- the changed orders, read as the full computation reads them
        customer_analytics._rollup_changes_check_sql(r, since),
        -- the customers whose orders or own row changed
        -- (grouping by customer in the "C" collation throughout: the same
        -- groups, without the database collation's slower comparisons)
        format('INSERT INTO pg_temp.customer_analytics_changed SELECT DISTINCT x.customer_code COLLATE "C" FROM %s x WHERE %s',
               dirty, since),
        -- (the planner's estimates for the statements below)
        'ANALYZE pg_temp.customer_analytics_changed',
        -- their state: counts and sums adjusted; a customer's last order
        -- date is looked up again only when a removed order may have been it
        format('WITH d AS (SELECT o.customer_code COLLATE "default" AS customer_code, %2$s,'
               '   max(o.d) FILTER (WHERE o.sign > 0) AS added_last, max(o.d) FILTER (WHERE o.sign < 0) AS removed_last'
               '   FROM (SELECT i.customer_code COLLATE "C" AS customer_code, i.d, i.sign, %6$s'
               '         FROM (SELECT x.customer_code, x.order_date AS d, COALESCE(x.total, 0) AS amount, x.sign FROM %3$s x'
               '               WHERE x.sign IS NOT NULL AND %4$s) i'
               '         WHERE i.d <@ %5$L::daterange OFFSET 0) o'
               '   GROUP BY o.customer_code),'
               ' upd AS (UPDATE %1$s s SET orders = s.orders + d.orders, total = s.total + d.total,'
               '   spend_orders = s.spend_orders + d.spend_orders,'
               '   spend = CASE WHEN s.spend_orders + d.spend_orders > 0 THEN COALESCE(s.spend, 0) + COALESCE(d.spend, 0) END,'
               '   low_tickets = s.low_tickets + d.low_tickets,'
               '   base_orders = s.base_orders + d.base_orders,'
               '   base = CASE WHEN s.base_orders + d.base_orders > 0 THEN COALESCE(s.base, 0) + COALESCE(d.base, 0) END,'
               '   recent_orders = s.recent_orders + d.recent_orders,'
               '   recent = CASE WHEN s.recent_orders + d.recent_orders > 0 THEN COALESCE(s.recent, 0) + COALESCE(d.recent, 0) END,'
               '   last_order = CASE WHEN s.orders + d.orders <= 0 THEN NULL'
               '     WHEN d.removed_last >= GREATEST(s.last_order, d.added_last) THEN'
               '       (SELECT max(r.order_date) FROM %7$s r WHERE r.customer_code = s.customer_code AND r.order_date <@ %5$L::daterange)'
               '     ELSE GREATEST(s.last_order, d.added_last) END'
               '   FROM d WHERE s.customer_code = d.customer_code)'
               ' INSERT INTO %1$s (customer_code, %8$s, last_order)'
               ' SELECT d.customer_code, d.orders, d.total, d.spend_orders,'
               '   CASE WHEN d.spend_orders > 0 THEN d.spend END, d.low_tickets,'
               '   d.base_orders, CASE WHEN d.base_orders > 0 THEN d.base END,'
               '   d.recent_orders, CASE WHEN d.recent_orders > 0 THEN d.recent END,'
               '   CASE WHEN d.removed_last >= d.added_last THEN'
               '   (SELECT max(r.order_date) FROM %7$s r WHERE r.customer_code = d.customer_code AND r.order_date <@ %5$L::daterange)'
               '   ELSE d.added_last END'
               -- new customers: those the state had no row for (this
               -- statement's snapshot does not see the UPDATE above); a
               -- probe of the state's key, whatever the estimates say
               ' FROM d WHERE NOT EXISTS (SELECT 1 FROM %1$s s WHERE s.customer_code = d.customer_code)',
               state, customer_analytics._campaign_state_aggregates(true), dirty, since,
               customer_analytics._campaign_data_window(c), customer_analytics._campaign_state_flags(c, true),
               customer_analytics._rollup_table(r.id), customer_analytics._campaign_state_columns()),
        format('DELETE FROM %s s USING pg_temp.customer_analytics_changed k WHERE s.customer_code = k.customer_code AND s.orders <= 0',
               state),
        -- their verdicts, on the state
        format('INSERT INTO pg_temp.customer_analytics_targets %s',
               customer_analytics._campaign_state_targets_sql(c, state, changed_keys)),
        'ANALYZE pg_temp.customer_analytics_targets',
        format('SELECT customer_analytics._matview_apply(%L::regclass, %s, %L)',
               targets::oid, changed_keys, 'SELECT * FROM pg_temp.customer_analytics_targets'),
        -- the months: dropped for customers no longer targets, adjusted for
        -- the others, computed for new targets
        format('WITH gone AS (DELETE FROM %s m USING pg_temp.customer_analytics_changed k WHERE m.customer_code = k.customer_code'
               ' AND NOT EXISTS (SELECT 1 FROM pg_temp.customer_analytics_targets t WHERE t.customer_code = m.customer_code)'
               ' RETURNING m.customer_code)'
               ' INSERT INTO pg_temp.customer_analytics_long_keys SELECT DISTINCT customer_code FROM gone',
               month_state),
        format('WITH adjusted AS (UPDATE %1$s m SET revenue = CASE WHEN m.orders + d.orders > 0 THEN m.revenue + d.revenue ELSE 0 END,'
               ' orders = m.orders + d.orders'
               ' FROM (SELECT g.customer_code COLLATE "default" AS customer_code, g.month, g.revenue, g.orders'
               '       FROM (SELECT x.customer_code COLLATE "C" AS customer_code, date_trunc(''month'', x.order_date)::date AS month,'
               '                    sum(x.sign * COALESCE(x.total, 0)) AS revenue, sum(x.sign) AS orders'
               '             FROM %2$s x'
               '            WHERE x.sign IS NOT NULL AND %4$s AND x.order_date <@ %3$L::daterange GROUP BY 1, 2) g) d'
               ' WHERE m.customer_code = d.customer_code AND m.month = d.month RETURNING m.customer_code)'
               ' INSERT INTO pg_temp.customer_analytics_long_keys SELECT DISTINCT customer_code FROM adjusted'
               ' ON CONFLICT DO NOTHING',
               month_state, dirty, c.revenue_window, since),
        format('WITH added AS (INSERT INTO %s SELECT * FROM customer_analytics.monthly_revenue(ARRAY('
               'SELECT t.customer_code FROM pg_temp.customer_analytics_targets t'
               ' WHERE NOT EXISTS (SELECT 1 FROM %s m WHERE m.customer_code = t.customer_code)), %L::daterange, %L)'
               ' RETURNING customer_code)'
               ' INSERT INTO pg_temp.customer_analytics_long_keys SELECT DISTINCT customer_code FROM added'
               ' ON CONFLICT DO NOTHING',
               month_state, month_state, c.revenue_window, c.source_schema),
        format('SELECT customer_analytics._matview_apply(%L::regclass, %s, %L)',
               long::oid, 'ARRAY(SELECT k.customer_code FROM pg_temp.customer_analytics_long_keys k)',
               format('SELECT m.customer_code, m.month, m.revenue, m.orders FROM %s m'
                      ' JOIN pg_temp.customer_analytics_long_keys k USING (customer_code)', month_state)),
        format('SELECT customer_analytics._matview_apply(%L::regclass, %s, %L)',
               sheet::oid, changed_keys,
               customer_analytics._campaign_sheet_rows_sql(c, 'pg_temp.customer_analytics_targets',
                   format('(SELECT m.customer_code, m.month, m.revenue FROM %s m'
                          ' JOIN pg_temp.customer_analytics_targets t USING (customer_code))', month_state)))]);
    IF snapshot IS NOT NULL THEN
        SELECT count(*) INTO changed_customers FROM pg_temp.customer_analytics_changed;
        EXECUTE format('SELECT count(*) FROM %s x WHERE x.sign IS NOT NULL AND %s AND pg_visible_in_snapshot(x.xid, %L::pg_snapshot)',
                       dirty, since, snapshot) INTO order_changes;
    END IF;
    PERFORM customer_analytics._drop_delta_scratch();
END $$;

-- Drop those of the named temporary tables this session has.
CREATE FUNCTION _drop_temp_tables(VARIADIC tables text[]) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY tables LOOP
        IF to_regclass('pg_temp.' || quote_ident(t)) IS NOT NULL THEN
            EXECUTE format('DROP TABLE pg_temp.%I', t);
        END IF;
    END LOOP;
END $$;

-- Drop the delta refresh's temporary tables if this session has them.
CREATE FUNCTION _drop_delta_scratch() RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    SELECT customer_analytics._drop_temp_tables('customer_analytics_changed', 'customer_analytics_targets',
                                                'customer_analytics_long_keys', 'customer_analytics_months')
$$;

-- Drop a campaign's state tables (those that carry its marker); returns how many.
CREATE FUNCTION _drop_campaign_state(c campaigns) RETURNS int
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    SELECT customer_analytics._drop_marked_tables(c.view_schema, ARRAY[n.state, n.month_state],
                                                  customer_analytics._campaign_state_marker(c))
      FROM customer_analytics._campaign_state_names(c) n
$$;

-- Has this transaction written to the source tables of rollup r (its
-- triggers recorded rows under its xid)?  Its rows are then in the state
-- whatever snapshot is taken, and no snapshot tells them apart later.
CREATE FUNCTION _rollup_written_here(r rollups) RETURNS boolean
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    written boolean;
BEGIN
    IF pg_current_xact_id_if_assigned() IS NULL THEN
        RETURN false;
    END IF;
    EXECUTE format('SELECT EXISTS (SELECT 1 FROM %s x WHERE x.xid = pg_current_xact_id_if_assigned())',
                   customer_analytics._rollup_dirty_table(r.id)) INTO written;
    RETURN written;
END $$;

-- Why a delta refresh from the snapshot `since` refused (the guard of
-- _rollup_delta_guard_sql), in words.
CREATE FUNCTION _rollup_delta_refused(r rollups, since pg_snapshot) RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    truncated boolean;
BEGIN
    IF customer_analytics._rollup_written_here(r) THEN
        RETURN 'this transaction wrote to the source tables';
    ELSIF (SELECT x.generation <> r.generation OR x.state <> 'current'
             FROM customer_analytics.rollups x WHERE x.id = r.id) THEN
        RETURN 'the rollup was rebuilt';
    END IF;
    EXECUTE format('SELECT EXISTS (SELECT 1 FROM %s x WHERE x.customer_code IS NULL'
                   ' AND NOT pg_visible_in_snapshot(x.xid, $1))', customer_analytics._rollup_dirty_table(r.id))
       INTO truncated USING since;
    RETURN CASE WHEN truncated THEN 'a source table was truncated'
                ELSE 'an order total or quantity among the changes is not a finite number' END;
END $$;

-- Empty a campaign's state tables (those that carry its marker) and record
-- that it has none: what they held no longer follows the orders.
CREATE FUNCTION _forget_campaign_state(c campaigns) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    t regclass;
BEGIN
    FOR t IN SELECT * FROM customer_analytics._campaign_state_relations(c) LOOP
        EXECUTE format('TRUNCATE %s', t);
    END LOOP;
    UPDATE customer_analytics.campaign_refresh_state x
       SET state_table = NULL, month_state_table = NULL, state_snapshot = NULL
     WHERE x.campaign = c.name;
END $$;

-------------------------------------------------------------------------------
-- Sharded sources (issue 14): check a coordinator schema against the data
-- contract of README, "Past one server".  customers, sales_orders,
-- sales_order_lines and order_totals (one row per order, a view on each
-- shard) hash-partitioned by customer_code with the same bounds, each bound's
-- partitions postgres_fdw foreign tables on one server; the servers ship the
-- extension's functions (extensions 'customer_analytics'), estimate
-- remotely, scan asynchronously, fetch in large batches and have a user
-- mapping for the caller.  One row per check; nothing is connected to.
CREATE FUNCTION check_sharded_source(source_schema text DEFAULT NULL)
RETURNS TABLE (check_name text, ok boolean, detail text, hint text)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    schema_name text := customer_analytics._source_schema(source_schema);
    -- the setting before the library defines it: its default
    pushdown boolean := COALESCE(current_setting('customer_analytics.shard_pushdown', true), 'on')::boolean;
    nsp oid;
BEGIN
    SELECT n.oid INTO nsp FROM pg_namespace n WHERE n.nspname = schema_name;
    IF nsp IS NULL THEN
        RAISE EXCEPTION 'source schema "%" does not exist', schema_name
            USING ERRCODE = 'invalid_schema_name',
                  HINT = 'Pass the coordinator schema holding the partitioned customers, sales_orders, sales_order_lines and order_totals.';
    END IF;
    RETURN QUERY
    WITH tabs(ord, name) AS (
        VALUES (1, 'customers'), (2, 'sales_orders'), (3, 'sales_order_lines'), (4, 'order_totals')),
    rels AS (
        SELECT t.ord, t.name, format('%I.%I', schema_name, t.name) AS qname, c.oid AS relid, c.relkind,
               p.partstrat, p.partnatts,
               (SELECT a.attname::text FROM pg_attribute a
                 WHERE a.attrelid = c.oid AND a.attnum = p.partattrs[0] AND a.attnum > 0) AS keycol
          FROM tabs t
          LEFT JOIN pg_class c ON c.relnamespace = nsp AND c.relname = t.name
          LEFT JOIN pg_partitioned_table p ON p.partrelid = c.oid),
    parts AS (
        SELECT r.ord, r.name, c.oid AS partid, format('%I.%I', pn.nspname, c.relname) AS partname, c.relkind,
               pg_get_expr(c.relpartbound, c.oid) AS bound, ft.ftoptions, s.oid AS srvid, s.srvname::text AS srvname,
               s.srvoptions, w.fdwname
          FROM rels r
          JOIN pg_inherits i ON i.inhparent = r.relid
          JOIN pg_class c ON c.oid = i.inhrelid
          JOIN pg_namespace pn ON pn.oid = c.relnamespace
          LEFT JOIN pg_foreign_table ft ON ft.ftrelid = c.oid
          LEFT JOIN pg_foreign_server s ON s.oid = ft.ftserver
          LEFT JOIN pg_foreign_data_wrapper w ON w.oid = s.srvfdw),
    -- each foreign partition's options as postgres_fdw reads them: the
    -- table's own, else the server's, else postgres_fdw's default
    eff AS (
        SELECT p.*,
               COALESCE((SELECT substr(o, 21) FROM unnest(p.ftoptions) o WHERE o LIKE 'use\_remote\_estimate=%'),
                        (SELECT substr(o, 21) FROM unnest(p.srvoptions) o WHERE o LIKE 'use\_remote\_estimate=%'),
                        'false') AS remote_estimate,
               COALESCE((SELECT substr(o, 15) FROM unnest(p.ftoptions) o WHERE o LIKE 'async\_capable=%'),
                        (SELECT substr(o, 15) FROM unnest(p.srvoptions) o WHERE o LIKE 'async\_capable=%'),
                        'false') AS async,
               COALESCE((SELECT substr(o, 12) FROM unnest(p.ftoptions) o WHERE o LIKE 'fetch\_size=%'),
                        (SELECT substr(o, 12) FROM unnest(p.srvoptions) o WHERE o LIKE 'fetch\_size=%'),
                        '100') AS fetch,
               (SELECT substr(o, 12) FROM unnest(p.srvoptions) o WHERE o LIKE 'extensions=%') AS extensions
          FROM parts p WHERE p.srvid IS NOT NULL AND p.fdwname = 'postgres_fdw'),
    servers AS (
        SELECT e.srvid, e.srvname,
               min(e.extensions) AS extensions,
               string_agg(e.partname, ', ' ORDER BY e.partname) FILTER (WHERE lower(e.remote_estimate) NOT IN ('true', 'on', '1')) AS no_estimate,
               string_agg(e.partname, ', ' ORDER BY e.partname) FILTER (WHERE lower(e.async) NOT IN ('true', 'on', '1')) AS no_async,
               string_agg(e.partname || ' (' || e.fetch || ')', ', ' ORDER BY e.partname)
                   FILTER (WHERE CASE WHEN e.fetch ~ '^\s*[0-9]{1,9}\s*$' THEN e.fetch::int < 1000 ELSE true END) AS small_fetch,
               EXISTS (SELECT 1 FROM pg_user_mappings m
                        WHERE m.srvid = e.srvid
                          AND (m.umuser = 0 OR m.umuser = (SELECT ro.oid FROM pg_roles ro WHERE ro.rolname = current_user))) AS mapped
          FROM eff e GROUP BY e.srvid, e.srvname),
    -- partition bounds and servers that differ from the customers' ones
    coloc AS (
        SELECT r.ord, r.name, r.qname,
               (SELECT string_agg(CASE WHEN x.partid IS NULL
                                       THEN format('no partition %s (customers'' is on %s)', y.bound,
                                                   COALESCE('server ' || y.srvname, 'this server'))
                                       WHEN y.partid IS NULL
                                       THEN format('%s %s matches no partition of customers', x.partname, x.bound)
                                       ELSE format('%s %s on %s, customers'' on %s', x.partname, x.bound,
                                                   COALESCE('server ' || x.srvname, 'this server'),
                                                   COALESCE('server ' || y.srvname, 'this server')) END,
                                  '; ' ORDER BY COALESCE(x.bound, y.bound))
                  FROM (SELECT * FROM parts p WHERE p.ord = r.ord) x
                  FULL JOIN (SELECT * FROM parts p WHERE p.ord = 1) y ON x.bound = y.bound
                 WHERE x.srvid IS DISTINCT FROM y.srvid OR x.bound IS NULL OR y.bound IS NULL) AS mismatch
          FROM rels r WHERE r.ord > 1 AND r.relkind = 'p')
    SELECT c.check_name, c.ok, c.detail, CASE WHEN NOT c.ok THEN c.hint END
      FROM (
        SELECT 1 AS o1, r.ord AS o2, 'partition key'::text AS check_name,
               COALESCE(r.relkind = 'p' AND r.partstrat = 'h' AND r.partnatts = 1 AND r.keycol = 'customer_code', false) AS ok,
               CASE WHEN r.relid IS NULL THEN r.qname || ' does not exist'
                    WHEN r.relkind <> 'p' THEN r.qname || ' is not a partitioned table'
                    WHEN r.partstrat <> 'h' THEN r.qname || ' is partitioned by ' || CASE r.partstrat WHEN 'l' THEN 'list' ELSE 'range' END || ', not by hash'
                    WHEN r.partnatts <> 1 OR r.keycol IS NULL THEN r.qname || ' is not partitioned by one column'
                    ELSE format('%s is hash-partitioned by %s, %s partitions', r.qname, r.keycol,
                                (SELECT count(*) FROM parts p WHERE p.ord = r.ord)) END AS detail,
               CASE r.name
                    WHEN 'order_totals' THEN 'Create the order_totals view on every shard and, here, a table PARTITION BY HASH (customer_code) of foreign tables over them (README, "Past one server").'
                    WHEN 'sales_order_lines' THEN 'Give the lines their order''s customer_code and make the table PARTITION BY HASH (customer_code), with the same partitions as customers.'
                    ELSE format('Make %s a table PARTITION BY HASH (customer_code) whose partitions are foreign tables on the shards.', r.qname) END AS hint
          FROM rels r
        UNION ALL
        SELECT 1, 5, 'order_totals columns', m.missing IS NULL,
               CASE WHEN m.missing IS NULL THEN r.qname || ' has the columns the functions read'
                    ELSE r.qname || ' lacks ' || m.missing END,
               'Add the missing columns to the order_totals view on every shard and to the coordinator''s table (README, "Past one server"): customer_features() reads quantity and product_codes.'
          FROM rels r,
               LATERAL (SELECT string_agg(x.col, ', ' ORDER BY x.n) AS missing
                          FROM unnest(ARRAY['customer_code', 'order_type', 'order_number', 'delivery_route', 'order_date',
                                            'confirmed_code', 'order_total', 'quantity', 'product_codes']) WITH ORDINALITY x(col, n)
                         WHERE NOT EXISTS (SELECT 1 FROM pg_attribute a
                                            WHERE a.attrelid = r.relid AND a.attname = x.col
                                              AND a.attnum > 0 AND NOT a.attisdropped)) m
         WHERE r.name = 'order_totals' AND r.relid IS NOT NULL
        UNION ALL
        SELECT 2, r.ord, 'foreign partitions',
               count(p.partid) > 0 AND bool_and(p.relkind = 'f' AND p.fdwname IS NOT DISTINCT FROM 'postgres_fdw'),
               CASE WHEN count(p.partid) = 0 THEN r.qname || ' has no partitions'
                    WHEN bool_and(p.relkind = 'f' AND p.fdwname IS NOT DISTINCT FROM 'postgres_fdw')
                    THEN format('%s: %s postgres_fdw foreign tables on %s', r.qname, count(p.partid),
                                string_agg(DISTINCT p.srvname, ', '))
                    ELSE r.qname || ': not postgres_fdw foreign tables: ' ||
                         string_agg(p.partname, ', ' ORDER BY p.partname) FILTER (WHERE p.relkind <> 'f' OR p.fdwname IS DISTINCT FROM 'postgres_fdw') END,
               'Attach foreign tables (CREATE FOREIGN TABLE ... PARTITION OF ... SERVER shard_n) of postgres_fdw servers as the partitions.'
          FROM rels r LEFT JOIN parts p ON p.ord = r.ord
         WHERE r.relkind = 'p' GROUP BY r.ord, r.qname
        UNION ALL
        SELECT 3, c.ord, 'co-location', c.mismatch IS NULL,
               CASE WHEN c.mismatch IS NULL
                    THEN c.qname || ': the same partition bounds as customers, each on the customers'' server'
                         || CASE c.name WHEN 'sales_order_lines' THEN ' (each line must carry its order''s customer_code)' ELSE '' END
                    ELSE c.qname || ': ' || c.mismatch END,
               'Partition every table with the same modulus and remainders as customers, and put each remainder''s partitions on one server.'
          FROM coloc c
        UNION ALL
        SELECT 4, 1, 'extensions',
               COALESCE('customer_analytics' = ANY (SELECT btrim(x) FROM unnest(string_to_array(s.extensions, ',')) x), false),
               format('server %s: extensions %s', s.srvname, COALESCE(quote_literal(s.extensions), 'not set')),
               format('ALTER SERVER %I OPTIONS (ADD extensions ''customer_analytics'') (SET if it is set), after CREATE EXTENSION customer_analytics on that shard: without it no aggregate is pushed down.', s.srvname)
          FROM servers s
        UNION ALL
        SELECT 4, 2, 'use_remote_estimate', s.no_estimate IS NULL,
               format('server %s: %s', s.srvname, COALESCE('no remote estimates for ' || s.no_estimate, 'remote estimates')),
               format('ALTER SERVER %I OPTIONS (ADD use_remote_estimate ''true''), so that the planner knows the shards'' row counts.', s.srvname)
          FROM servers s
        UNION ALL
        SELECT 4, 3, 'async_capable', s.no_async IS NULL,
               format('server %s: %s', s.srvname, COALESCE('synchronous scans of ' || s.no_async, 'asynchronous scans')),
               format('ALTER SERVER %I OPTIONS (ADD async_capable ''true''), so that the shards work at the same time.', s.srvname)
          FROM servers s
        UNION ALL
        SELECT 4, 4, 'fetch_size', s.small_fetch IS NULL,
               format('server %s: %s', s.srvname, COALESCE('fetch_size below 1000 for ' || s.small_fetch, 'fetch_size at least 1000')),
               format('ALTER SERVER %I OPTIONS (ADD fetch_size ''10000''): postgres_fdw''s default of 100 rows costs a round trip per 100 customers.', s.srvname)
          FROM servers s
        UNION ALL
        SELECT 4, 5, 'user mapping', s.mapped,
               format('server %s: %s', s.srvname, CASE WHEN s.mapped THEN 'a user mapping for ' || current_user ELSE 'no user mapping for ' || current_user || ' or PUBLIC' END),
               format('CREATE USER MAPPING FOR %I SERVER %I OPTIONS (user ''...'', password ''...'').', current_user, s.srvname)
          FROM servers s
        UNION ALL
        SELECT 5, 0, 'per-shard rollups', rc.problem IS NULL,
               CASE WHEN rc.problem IS NOT NULL THEN format('%I.rollup_changes: %s', schema_name, rc.problem)
                    WHEN rc.relid IS NULL THEN format('no %I.rollup_changes: campaign refreshes recompute in full', schema_name)
                    ELSE format('%I.rollup_changes on %s: campaign refreshes read each shard''s changes', schema_name, rc.servers) END,
               'On each shard: SELECT customer_analytics.enable_rollup(''cosmos_sync''); CREATE VIEW cosmos_sync.rollup_changes AS '
               'SELECT * FROM customer_analytics.rollup_changes(''cosmos_sync''). Here: a table rollup_changes PARTITION BY HASH (customer_code) '
               'with the customers'' bounds, each partition a foreign table over that view on the customers'' server (README, "Past one server").'
          FROM (SELECT c.oid AS relid,
                       (SELECT string_agg(DISTINCT s.srvname::text, ', ' ORDER BY s.srvname::text)
                          FROM pg_inherits i JOIN pg_foreign_table ft ON ft.ftrelid = i.inhrelid
                          JOIN pg_foreign_server s ON s.oid = ft.ftserver WHERE i.inhparent = c.oid) AS servers,
                       CASE WHEN c.oid IS NULL THEN NULL
                            WHEN c.relkind <> 'p' THEN 'not a partitioned table'
                            WHEN EXISTS (SELECT 1 FROM unnest(ARRAY['customer_code', 'xid', 'generation', 'rollup_state', 'snapshot', 'campaigns',
                                                                  'system_identifier']) x(col)
                                          WHERE NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = x.col
                                                               AND a.attnum > 0 AND NOT a.attisdropped))
                            THEN 'lacks ' || (SELECT string_agg(x.col, ', ' ORDER BY x.n)
                                                FROM unnest(ARRAY['customer_code', 'xid', 'generation', 'rollup_state', 'snapshot', 'campaigns',
                                                                  'system_identifier'])
                                                     WITH ORDINALITY x(col, n)
                                               WHERE NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = x.col
                                                                    AND a.attnum > 0 AND NOT a.attisdropped))
                            ELSE (SELECT 'no partition on server ' || string_agg(DISTINCT p.srvname, ', ' ORDER BY p.srvname)
                                    FROM parts p
                                   WHERE p.ord = 1 AND p.srvid IS NOT NULL
                                     AND p.srvid NOT IN (SELECT ft.ftserver FROM pg_inherits i
                                                           JOIN pg_foreign_table ft ON ft.ftrelid = i.inhrelid
                                                          WHERE i.inhparent = c.oid)) END AS problem
                  FROM (SELECT 1) one LEFT JOIN pg_class c ON c.relnamespace = nsp AND c.relname = 'rollup_changes') rc
        UNION ALL
        SELECT 5, 1, 'pushdown', pushdown,
               'customer_analytics.shard_pushdown is ' || CASE WHEN pushdown THEN 'on' ELSE 'off' END,
               'SET customer_analytics.shard_pushdown = on: with it off the functions read the sharded tables as on one server.'
      ) c
     ORDER BY c.o1, c.o2, c.detail;
END $$;
COMMENT ON FUNCTION check_sharded_source IS
'Check a coordinator schema sharded by customer_code over postgres_fdw (partitioning, co-location, foreign servers'' options, user mappings): one row per check, with a hint for each problem';

-------------------------------------------------------------------------------
-- Per-shard rollups (issue 14).  Each shard keeps the rollup of its own
-- source schema (enable_rollup there) and exposes what its triggers recorded
-- through rollup_changes(); a coordinator schema reads it through its table
-- rollup_changes, hash-partitioned by customer_code like the other tables,
-- one foreign partition per shard over a view of rollup_changes() there
-- (README, "Past one server").  A campaign refresh on the coordinator then
-- reads each shard's changes since that shard's snapshot (kept per server in
-- campaign_refresh_state.shard_snapshots), recomputes only those customers
-- (the per-customer work on the shards) and replaces their rows in place.
-- Every read of one shard in a coordinator transaction goes through one
-- postgres_fdw connection in a REPEATABLE READ remote transaction: the
-- snapshot rollup_changes() reports is the one the recomputation reads the
-- shard with, so a write committed there meanwhile is left to the next
-- refresh, and recomputing a customer twice is harmless.
-------------------------------------------------------------------------------

-- On a shard: one status row (customer_code and xid NULL): the rollup's
-- generation, 'current' or why it cannot be followed, this transaction's
-- snapshot, how many campaigns of this server read the source (their
-- refreshes prune the recorded changes), the cluster's system identifier
-- (transaction ids are only comparable within one cluster); then, when the
-- rollup is current,
-- every recorded change (the customer, the writing transaction's id;
-- customer_code NULL: a TRUNCATE).
CREATE FUNCTION rollup_changes(source_schema text DEFAULT NULL)
RETURNS TABLE (customer_code text, xid xid8, generation bigint, rollup_state text,
               snapshot pg_snapshot, campaigns bigint, system_identifier bigint)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    src text := customer_analytics._source_schema(source_schema);
    r customer_analytics.rollups;
    why text;
BEGIN
    SELECT * INTO r FROM customer_analytics.rollups x WHERE x.source_schema = src;
    why := (customer_analytics._rollup_for_reading(src)).reason;
    IF why IS NULL AND NOT has_table_privilege(customer_analytics._rollup_dirty_table(r.id), 'SELECT') THEN
        why := 'no SELECT privilege on ' || customer_analytics._rollup_dirty_table(r.id);
    END IF;
    RETURN QUERY SELECT NULL::text, NULL::xid8, r.generation, COALESCE(why, 'current'), pg_current_snapshot(),
                        (SELECT count(*) FROM customer_analytics.campaigns c WHERE c.source_schema = src),
                        (SELECT x.system_identifier FROM pg_control_system() x);
    IF why IS NULL THEN
        RETURN QUERY EXECUTE format('SELECT x.customer_code, x.xid, NULL::bigint, NULL::text, NULL::pg_snapshot, NULL::bigint,'
                                    ' NULL::bigint FROM %s x', customer_analytics._rollup_dirty_table(r.id));
    END IF;
END $$;
COMMENT ON FUNCTION rollup_changes(text) IS
'On a shard: the state of the source''s rollup and the customers its triggers recorded as changed, for a coordinator''s incremental campaign refresh (README, "Past one server")';

-- Forget the order changes a rollup's triggers recorded.  Campaign
-- refreshes on this server prune the changes they have applied; nothing
-- prunes those a coordinator reads (per-shard rollups) or those of a
-- rollup no campaign refreshes from, so without this they grow with every
-- write.  Cheaper than rebuild_rollup (the rollup itself is kept), with
-- the same effect on readers: a new generation, so every campaign that
-- follows these changes, here or on a coordinator, refreshes in full once
-- ("the rollup was rebuilt") and incrementally again after.  Owner only.
-- Returns how many recorded changes were deleted.
-- reset_rollup_changes()'s work, as the rollup's owner.
CREATE FUNCTION _reset_rollup_changes_as_owner(source_schema text) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r customer_analytics.rollups := customer_analytics._rollup(source_schema);
    n bigint;
BEGIN
    PERFORM customer_analytics._require_owner_context('rollup', r.source_schema, r.owner);
    -- after the refreshes of this source's campaigns under way (they prune
    -- these rows too); writers are not held up
    PERFORM pg_advisory_xact_lock(hashtext('customer_analytics.refresh'), hashtext(r.source_schema));
    UPDATE customer_analytics.rollups x SET generation = nextval('customer_analytics.rollup_generation_seq')
     WHERE x.id = r.id;
    -- changes committed after this statement's snapshot stay: they belong
    -- to the new generation, whose readers start from a full refresh
    EXECUTE format('DELETE FROM %s', customer_analytics._rollup_dirty_table(r.id));
    GET DIAGNOSTICS n = ROW_COUNT;
    RAISE NOTICE 'order rollup of "%": % recorded change(s) forgotten; campaigns that follow them refresh in full once',
        r.source_schema, n;
    RETURN n;
END $$;

-- Check the caller may reset the changes of the rollup, then do it as the rollup's owner.
CREATE FUNCTION reset_rollup_changes(source_schema text DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r customer_analytics.rollups := customer_analytics._rollup(source_schema);
BEGIN
    PERFORM customer_analytics._require_definition_owner('rollup', r.source_schema, r.owner);
    RETURN customer_analytics._as_owner(r.owner,
        format('SELECT customer_analytics._reset_rollup_changes_as_owner(%L)', r.source_schema))::bigint;
END $$;
COMMENT ON FUNCTION reset_rollup_changes(text) IS
'Forget the order changes a rollup recorded (on a shard, nothing else prunes those a coordinator reads); campaigns that follow them refresh in full once';

-- The foreign partitions of a coordinator schema's rollup_changes, with
-- their servers (none when the schema has no such table).
CREATE FUNCTION _shard_rollups(source_schema text)
RETURNS TABLE (changes regclass, server text, server_id oid)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT i.inhrelid::regclass, s.srvname::text, s.oid
      FROM pg_inherits i
      JOIN pg_foreign_table ft ON ft.ftrelid = i.inhrelid
      JOIN pg_foreign_server s ON s.oid = ft.ftserver
     WHERE i.inhparent = to_regclass(format('%I.rollup_changes', source_schema))
     ORDER BY s.srvname
$$;

-- The user mapping postgres_fdw uses for role on server srv (NULL: none).
CREATE FUNCTION _shard_user_mapping(srv oid, role oid) RETURNS oid
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT m.umid FROM pg_user_mappings m WHERE m.srvid = srv AND m.umuser IN (role, 0)
     ORDER BY m.umuser DESC LIMIT 1
$$;

-- Those of the customer codes a shard (server srv) reported as changed whose
-- partition of the coordinator's customers is on another server: rows the
-- shard holds that the coordinator's pushdown counts apart from the
-- customer's other rows (a customer_code changed on the shard itself, or
-- rows written on the wrong shard).
CREATE FUNCTION _shard_misplaced(source_schema text, srv oid, codes text[]) RETURNS text[]
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    customers regclass := to_regclass(format('%I.customers', source_schema));
    keytype text;
    misplaced text[];
    part regclass;
    found text[];
    held text[] := '{}';
BEGIN
    SELECT format_type(a.atttypid, a.atttypmod) INTO keytype
      FROM pg_attribute a WHERE a.attrelid = customers AND a.attname = 'customer_code' AND NOT a.attisdropped;
    EXECUTE format('SELECT array_agg(x.code ORDER BY x.code) FROM unnest($1) x(code)'
                   ' WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_inherits i'
                   '   JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid'
                   '   JOIN pg_catalog.pg_foreign_table ft ON ft.ftrelid = c.oid'
                   '   CROSS JOIN LATERAL pg_catalog.regexp_match(pg_catalog.pg_get_expr(c.relpartbound, c.oid),'
                   '                                              ''modulus (\d+), remainder (\d+)'') b'
                   '  WHERE i.inhparent = $2 AND ft.ftserver = $3'
                   '    AND pg_catalog.satisfies_hash_partition($2, b[1]::int, b[2]::int, x.code::%s))', keytype)
       INTO misplaced USING codes, customers, srv;
    IF misplaced IS NULL THEN
        RETURN NULL;
    END IF;
    -- of those, the ones the shard still holds (their rows deleted there
    -- are the cure, not the problem)
    FOR part IN SELECT i.inhrelid::regclass FROM pg_inherits i JOIN pg_foreign_table ft ON ft.ftrelid = i.inhrelid
                 WHERE ft.ftserver = srv
                   AND i.inhparent IN (customers, to_regclass(format('%I.sales_orders', source_schema))) LOOP
        EXECUTE format('SELECT array_agg(DISTINCT x.customer_code::text) FROM %s x WHERE x.customer_code::text = ANY ($1)', part)
           INTO found USING misplaced;
        held := held || COALESCE(found, '{}');
    END LOOP;
    RETURN ARRAY(SELECT DISTINCT x FROM unnest(held) x ORDER BY x);
END $$;

-- What changed on each shard since the campaign's views were computed:
-- usable (else why the refresh is a full one), the changed customers, the
-- shards, and every shard's snapshot and rollup generation now, for the
-- refresh to record (NULL when some shard's changes cannot be followed).
-- s is the campaign's refresh state (NULL: none).  The status of every
-- shard is read even when the views are recomputed in full, and first:
-- it fixes the snapshot the refresh then reads that shard with.
CREATE FUNCTION _shard_changes(c campaigns, s campaign_refresh_state,
                               OUT usable boolean, OUT reason text, OUT changed text[],
                               OUT snapshots jsonb, OUT shards int)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v regclass := to_regclass(format('%I.%I', c.view_schema, c.name || '_targets'));
    sheet regclass := to_regclass(format('%I.%I', c.view_schema, c.name || '_monthly'));
    long regclass := to_regclass(format('%I.%I', c.view_schema, c.name || '_monthly_long'));
    owner oid := (SELECT relowner FROM pg_class WHERE oid = v);
    sh record;
    st record;
    old jsonb;
    codes text[];
    truncated boolean;
    misplaced text[];
    shard_reason text;
BEGIN
    usable := true;
    changed := '{}';
    snapshots := '{}';
    shards := 0;
    IF s IS NULL OR s.shard_snapshots IS NULL THEN
        reason := 'no incremental state yet';
    ELSIF s.fingerprint <> customer_analytics._campaign_fingerprint(c) THEN
        reason := 'the campaign changed';
    ELSIF NOT customer_analytics._view_reusable(v, s.targets_view) THEN
        reason := 'the targets view was rebuilt or cannot be read';
    ELSIF NOT customer_analytics._view_reusable(sheet, s.monthly_view) OR long IS NULL THEN
        reason := 'the monthly views were rebuilt';
    ELSIF EXISTS (SELECT 1 FROM jsonb_object_keys(s.shard_snapshots) k
                   WHERE k NOT IN (SELECT x.server FROM customer_analytics._shard_rollups(c.source_schema) x)) THEN
        reason := 'the shards changed';
    END IF;
    usable := reason IS NULL;
    FOR sh IN SELECT * FROM customer_analytics._shard_rollups(c.source_schema) LOOP
        shards := shards + 1;
        -- the refresh's reads of a shard must share this read's connection
        IF customer_analytics._shard_user_mapping(sh.server_id, (SELECT oid FROM pg_roles WHERE rolname = current_user))
           IS DISTINCT FROM customer_analytics._shard_user_mapping(sh.server_id, owner) THEN
            shard_reason := COALESCE(shard_reason, format('server %s: the views'' owner reaches it through another user mapping than %s',
                                                          sh.server, current_user));
            snapshots := NULL;
            CONTINUE;
        END IF;
        EXECUTE format('SELECT x.generation, x.rollup_state, x.snapshot::text AS snapshot, x.campaigns, x.system_identifier'
                       ' FROM %s x WHERE x.xid IS NULL', sh.changes) INTO st;
        IF st.rollup_state IS DISTINCT FROM 'current' THEN
            shard_reason := COALESCE(shard_reason, format('server %s: %s', sh.server, COALESCE(st.rollup_state, 'no status row')));
            snapshots := NULL;
        ELSIF st.campaigns > 0 THEN
            shard_reason := COALESCE(shard_reason, format('server %s has campaigns of its own on its rollup, whose refreshes prune its changes',
                                                          sh.server));
            snapshots := NULL;
        ELSE
            snapshots := snapshots || jsonb_build_object(sh.server, jsonb_build_object('generation', st.generation,
                                                                                       'snapshot', st.snapshot,
                                                                                       'system_identifier', st.system_identifier::text));
            old := s.shard_snapshots -> sh.server;
            IF usable AND old IS NULL THEN
                reason := COALESCE(reason, format('server %s is new to the campaign', sh.server));
            ELSIF usable AND (old ->> 'generation')::bigint IS DISTINCT FROM st.generation THEN
                reason := COALESCE(reason, format('the rollup on server %s was rebuilt', sh.server));
            ELSIF usable AND ((old ->> 'system_identifier') IS DISTINCT FROM st.system_identifier::text
                              OR pg_snapshot_xmax((old ->> 'snapshot')::pg_snapshot) > pg_snapshot_xmax(st.snapshot::pg_snapshot)) THEN
                -- a restored or replaced shard: its transaction ids do not
                -- continue the ones the snapshot was taken among
                reason := COALESCE(reason, format('server %s is another cluster or went back in time (restored?)', sh.server));
            ELSIF usable THEN
                -- the changes its snapshot then did not see
                EXECUTE format('SELECT array_agg(DISTINCT x.customer_code) FILTER (WHERE x.customer_code IS NOT NULL),'
                               ' COALESCE(bool_or(x.customer_code IS NULL), false) FROM %s x'
                               ' WHERE x.xid >= pg_catalog.pg_snapshot_xmin(%L::pg_catalog.pg_snapshot)'
                               ' AND NOT pg_catalog.pg_visible_in_snapshot(x.xid, %L::pg_catalog.pg_snapshot)',
                               sh.changes, old ->> 'snapshot', old ->> 'snapshot') INTO codes, truncated;
                misplaced := customer_analytics._shard_misplaced(c.source_schema, sh.server_id, codes);
                IF truncated THEN
                    reason := COALESCE(reason, format('a source table was truncated on server %s', sh.server));
                ELSIF cardinality(misplaced) > 0 THEN
                    RAISE WARNING 'campaign "%": % customer(s) changed on server % whose customer_code belongs on another shard: %',
                        c.name, cardinality(misplaced), sh.server, array_to_string(misplaced[1:5], ', ')
                        USING HINT = 'Move a customer between shards by deleting its rows on the old shard and inserting them on the new one '
                                     'in one transaction (an UPDATE of customer_code through the coordinator''s partitioned tables does that): '
                                     'rows of one customer on two shards are counted apart (README, "Past one server").';
                    reason := COALESCE(reason, format('customer %s changed on server %s, which does not hold its customer_code',
                                                      misplaced[1], sh.server));
                ELSE
                    changed := changed || COALESCE(codes, '{}');
                END IF;
            END IF;
            usable := reason IS NULL;
        END IF;
    END LOOP;
    IF shards = 0 THEN
        shard_reason := format('%I.rollup_changes has no foreign partitions', c.source_schema);
        snapshots := NULL;
    END IF;
    reason := COALESCE(shard_reason, reason);
    usable := reason IS NULL;
    changed := CASE WHEN usable THEN ARRAY(SELECT DISTINCT x FROM unnest(changed) x ORDER BY x) END;
END $$;

-- Replace, in place, the rows of the changed customers in a campaign's
-- three views with their rows recomputed from the sharded source (the
-- per-customer work on the shards, one row per customer back), under the
-- lock REFRESH ... CONCURRENTLY takes: readers go on reading, other
-- refreshes of the views wait.  c has its windows resolved.
CREATE FUNCTION _campaign_shard_apply(c campaigns, changed text[]) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET jit = off AS $$
DECLARE
    targets regclass := format('%I.%I', c.view_schema, c.name || '_targets')::regclass;
    sheet regclass := format('%I.%I', c.view_schema, c.name || '_monthly')::regclass;
    long regclass := format('%I.%I', c.view_schema, c.name || '_monthly_long')::regclass;
BEGIN
    PERFORM customer_analytics._matview_lock(targets);
    PERFORM customer_analytics._matview_lock(sheet);
    PERFORM customer_analytics._matview_lock(long);
    IF cardinality(changed) = 0 THEN
        RETURN;
    END IF;
    PERFORM customer_analytics._drop_delta_scratch();
    PERFORM customer_analytics._scratch_table('customer_analytics_targets', format('(LIKE %s)', targets));
    EXECUTE 'INSERT INTO pg_temp.customer_analytics_targets SELECT * FROM customer_analytics.target_customers('
            'routes => $1, spend_window => $2, min_spend => $3, low_ticket_window => $4, low_ticket_below => $5,'
            ' min_low_tickets => $6, base_window => $7, recent_window => $8, decline_pct => $9,'
            ' exclude_closed => $10, route_source => $11, source_schema => $12, customers => $13)'
        USING c.routes, c.spend_window, c.min_spend, c.low_ticket_window, c.low_ticket_below,
              c.min_low_tickets, c.base_window, c.recent_window, c.decline_pct,
              c.exclude_closed, c.route_source, c.source_schema, changed;
    PERFORM customer_analytics._scratch_table('customer_analytics_months',
                                              '(customer_code text, month date, revenue numeric, orders bigint)');
    EXECUTE 'INSERT INTO pg_temp.customer_analytics_months'
            ' SELECT * FROM customer_analytics.monthly_revenue(ARRAY(SELECT t.customer_code FROM pg_temp.customer_analytics_targets t), $1, $2)'
        USING c.revenue_window, c.source_schema;
    PERFORM customer_analytics._matview_apply(targets, changed, 'SELECT * FROM pg_temp.customer_analytics_targets');
    PERFORM customer_analytics._matview_apply(long, changed,
        'SELECT m.customer_code, m.month, m.revenue, m.orders FROM pg_temp.customer_analytics_months m');
    PERFORM customer_analytics._matview_apply(sheet, changed,
        customer_analytics._campaign_sheet_rows_sql(c, 'pg_temp.customer_analytics_targets',
            '(SELECT m.customer_code, m.month, m.revenue FROM pg_temp.customer_analytics_months m)'));
    PERFORM customer_analytics._drop_delta_scratch();
END $$;

-- refresh_campaign() of a campaign on a coordinator schema with per-shard
-- rollups (a rollup_changes table): incremental from the shards' changes
-- when they can be followed, else the views recomputed (CONCURRENTLY when
-- asked), with every shard's snapshot recorded when each has a usable
-- rollup.  The caller holds the refresh lock; c as stored, resolved with its
-- windows resolved; rebuild: a rolling sheet's months moved (old_columns
-- its columns).
CREATE FUNCTION _refresh_sharded_campaign(c campaigns, resolved campaigns, s campaign_refresh_state,
                                          concurrently boolean, started timestamptz,
                                          rebuild boolean, old_columns text) RETURNS campaigns
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    sh record;
    mode text;
BEGIN
    PERFORM customer_analytics._report_progress(format('refresh_campaign(%L): reading the shards'' changes', c.name));
    sh := customer_analytics._shard_changes(c, s);
    IF rebuild AND sh.usable THEN
        sh.usable := false;
        sh.reason := 'the sheet''s months moved';
    END IF;
    IF sh.usable THEN
        PERFORM customer_analytics._report_progress(format('refresh_campaign(%L): applying the changed customers', c.name));
        PERFORM customer_analytics._campaign_shard_apply(resolved, sh.changed);
        mode := format('incremental (%s changed customers from %s shard rollups)', cardinality(sh.changed), sh.shards);
    ELSE
        PERFORM customer_analytics._ensure_long_view(c);
        IF rebuild THEN
            PERFORM customer_analytics._refresh_views(c.view_schema, ARRAY[c.name || '_targets'], _refresh_sharded_campaign.concurrently);
            PERFORM customer_analytics._rebuild_sheet(c, old_columns);
            PERFORM customer_analytics._refresh_views(c.view_schema, ARRAY[c.name || '_monthly_long'], _refresh_sharded_campaign.concurrently);
        ELSE
            PERFORM customer_analytics._refresh_views(c.view_schema, customer_analytics._campaign_views(c.name), _refresh_sharded_campaign.concurrently);
        END IF;
        mode := 'full (' || sh.reason || ')';
    END IF;
    PERFORM customer_analytics._forget_campaign_state(c);
    IF sh.snapshots IS NOT NULL THEN
        INSERT INTO customer_analytics.campaign_refresh_state AS x
               (campaign, fingerprint, targets_view, generation, snapshot, monthly_view, shard_snapshots)
        VALUES (c.name, customer_analytics._campaign_fingerprint(c),
                format('%I.%I', c.view_schema, c.name || '_targets')::regclass, 0, pg_current_snapshot(),
                format('%I.%I', c.view_schema, c.name || '_monthly')::regclass, sh.snapshots)
        ON CONFLICT ON CONSTRAINT campaign_refresh_state_pkey DO UPDATE
            SET fingerprint = excluded.fingerprint, targets_view = excluded.targets_view,
                generation = excluded.generation, snapshot = excluded.snapshot,
                monthly_view = excluded.monthly_view, shard_snapshots = excluded.shard_snapshots;
    ELSE
        DELETE FROM customer_analytics.campaign_refresh_state x WHERE x.campaign = c.name;
    END IF;
    c := customer_analytics._record_refresh(c.name, started);
    PERFORM customer_analytics._record_history('campaign', c.name, c.owner, started, mode, c.target_rows, NULL);
    RAISE NOTICE 'campaign "%" refreshed%: % targets, % monthly rows',
        c.name, CASE WHEN sh.usable
                     THEN format(' from the shards'' changes (%s changed customers, %s shards)', cardinality(sh.changed), sh.shards)
                     ELSE CASE WHEN _refresh_sharded_campaign.concurrently THEN ' concurrently' ELSE '' END || ' in full (' || sh.reason || ')' END,
        c.target_rows, c.monthly_rows;
    RETURN c;
END $$;

-- Can the campaign's kept rows be reused (usable, else the reason), and
-- which customers changed since the views' snapshot?  With list_changed
-- false the check alone (changed NULL, no scan of the dirty rows; a
-- TRUNCATE's mark is then left to the delta refresh's own guard).  As 1.3's
-- _campaign_changes(c), which is now this with list_changed true; the dirty
-- rows are read through their xid index.
CREATE FUNCTION _campaign_changes(c campaigns, list_changed boolean,
                                  OUT usable boolean, OUT changed text[], OUT reason text)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    s customer_analytics.campaign_refresh_state;
    r customer_analytics.rollups;
    v regclass := to_regclass(format('%I.%I', c.view_schema, c.name || '_targets'));
    everything boolean;
BEGIN
    usable := false;
    SELECT * INTO s FROM customer_analytics.campaign_refresh_state x WHERE x.campaign = c.name;
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
    ELSIF NOT list_changed THEN
        usable := true;
    ELSE
        EXECUTE format('SELECT COALESCE(array_agg(d.customer_code) FILTER (WHERE d.customer_code IS NOT NULL), ''{}''),'
                       ' COALESCE(bool_or(d.customer_code IS NULL), false)'
                       ' FROM (SELECT DISTINCT customer_code FROM %s x'
                       '        WHERE x.xid >= pg_snapshot_xmin($1) AND NOT pg_visible_in_snapshot(x.xid, $1)) d',
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

CREATE OR REPLACE FUNCTION _campaign_changes(c campaigns, OUT usable boolean, OUT changed text[], OUT reason text)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS
$$ SELECT * FROM customer_analytics._campaign_changes(c, true) $$;

-- What took the time: every phase a build or refresh reports (the
-- progress shown in pg_stat_activity) is timed, and the refresh history
-- keeps them with the refresh.
CREATE FUNCTION _progress_phases() RETURNS jsonb
AS 'MODULE_PATHNAME', 'progress_phases' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION _progress_phases() IS
'internal: the phases reported in this transaction since the last call, with their durations ([{"phase", "ms"}]), then forgotten';



------------------------------------------------------------------------------
-- Segmentation refresh from per-customer feature state (issue 15).
--
-- refresh_segmentation() first brings the segmentation's per-customer
-- feature state up to date, in two tables of its owner next to its views:
-- <name>_features_state (per customer with a confirmed order in the
-- feature window: visits, the exact sums of the order totals and
-- quantities with how many orders have one, the number of distinct product
-- codes, first and last order) and <name>_sku_state (per customer and
-- product code: the lines of its orders with that code).  With a current
-- rollup the state is adjusted from the order changes the rollup's
-- triggers recorded since the state's snapshot, as a campaign's is;
-- otherwise it is computed again in full, once.  Then the four views are
-- refreshed (CONCURRENTLY by default), and each reads the features from
-- the state through segmentation_features(), which derives them (as_of
-- included) with customer_features()'s own code.  The state is read only
-- by the transaction that made it current (segmentation_refresh_state
-- .features_xid): a plain REFRESH of a view elsewhere computes the
-- features from the orders, as before, and a dump restores views that
-- depend on no state.  k-means, the elbow and the silhouettes still run
-- over every customer of the segment.
------------------------------------------------------------------------------
CREATE TABLE segmentation_refresh_state (
    segmentation   text PRIMARY KEY REFERENCES segmentations (name) ON DELETE CASCADE ON UPDATE CASCADE,
    feature_window daterange NOT NULL,  -- the resolved window the state counts
    state_table    oid NOT NULL,        -- <name>_features_state
    sku_table      oid,                 -- <name>_sku_state (NULL: the state follows no order changes)
    generation     bigint,              -- the rollup generation it was built from (NULL: from the source tables)
    snapshot       pg_snapshot,         -- what the state is exact as of (NULL: no order changes can be applied)
    features_xid   xid8,                -- the transaction whose refresh made it current; only it reads the state
    as_of          date                 -- the resolved as_of the views were last computed with
);
GRANT SELECT ON segmentation_refresh_state TO PUBLIC;
GRANT INSERT, UPDATE, DELETE ON segmentation_refresh_state TO PUBLIC;
COMMENT ON TABLE segmentation_refresh_state IS
'Per segmentation: its per-customer feature state tables, the window and snapshot they are exact for (not dumped: the first refresh after a restore rebuilds the state)';
ALTER TABLE segmentation_refresh_state ENABLE ROW LEVEL SECURITY;
CREATE POLICY catalog_read ON segmentation_refresh_state FOR SELECT USING (true);
CREATE POLICY owner_writes ON segmentation_refresh_state FOR ALL
    USING (EXISTS (SELECT 1 FROM customer_analytics.segmentations s
                    WHERE s.name = segmentation AND customer_analytics._is_definition_owner(s.owner)))
    WITH CHECK (EXISTS (SELECT 1 FROM customer_analytics.segmentations s
                         WHERE s.name = segmentation AND customer_analytics._is_definition_owner(s.owner)));

CREATE FUNCTION _customer_features_from_state(state regclass, feature_window daterange, as_of date)
RETURNS TABLE (customer_code text, visits bigint, total_spend numeric, ticket_size numeric, skus bigint,
               total_quantity numeric, first_order date, last_order date, recency_days int,
               tenure_days int, span_days int, quantity_per_visit float8, days_per_visit float8,
               skus_per_visit float8, diff float8, is_repeat boolean, features float8[])
AS 'MODULE_PATHNAME', 'customer_features_from_state' LANGUAGE C STABLE;
COMMENT ON FUNCTION _customer_features_from_state(regclass, daterange, date) IS
'internal: customer_features() derived from a segmentation''s per-customer feature state table';

-- The names of a segmentation's two state tables (in its view schema).
CREATE FUNCTION _segmentation_state_names(s segmentations, OUT state text, OUT sku_state text)
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$$ SELECT s.name || '_features_state', s.name || '_sku_state' $$;

-- The comment that marks a table as a segmentation's state.
CREATE FUNCTION _segmentation_state_marker(s segmentations) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$$ SELECT 'customer_analytics: per-customer feature state of segmentation ' || s.name $$;

-- Those of the segmentation's two state tables that exist and carry its marker.
CREATE FUNCTION _segmentation_state_relations(s segmentations) RETURNS SETOF regclass
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT customer_analytics._marked_tables(s.view_schema, ARRAY[n.state, n.sku_state],
                                             customer_analytics._segmentation_state_marker(s))
      FROM customer_analytics._segmentation_state_names(s) n
$$;

-- Drop a segmentation's state tables (those that carry its marker); returns how many.
CREATE FUNCTION _drop_segmentation_state(s segmentations) RETURNS int
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    SELECT customer_analytics._drop_marked_tables(s.view_schema, ARRAY[n.state, n.sku_state],
                                                  customer_analytics._segmentation_state_marker(s))
      FROM customer_analytics._segmentation_state_names(s) n
$$;

-- The state table the views of segmentation s (resolved) read their
-- features from, or NULL (they compute them): one made current by this
-- transaction's refresh for this window, a table of the caller's (its
-- <name>_features_state, or this session's temporary one).
CREATE FUNCTION _segmentation_current_state(s segmentations) RETURNS regclass
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT x.state_table::regclass
      FROM customer_analytics.segmentation_refresh_state x
     WHERE x.segmentation = s.name
       AND x.features_xid = pg_current_xact_id_if_assigned()
       AND x.feature_window = s.feature_window
       AND x.state_table IN (to_regclass(format('%I.%I', s.view_schema,
                                                (customer_analytics._segmentation_state_names(s)).state)),
                             to_regclass('pg_temp.customer_analytics_seg_state'))
       AND obj_description(x.state_table, 'pg_class') = customer_analytics._segmentation_state_marker(s)
       AND pg_has_role((SELECT c.relowner FROM pg_class c WHERE c.oid = x.state_table), 'USAGE')
$$;

-- Why the features cannot be kept from order changes (NULL: they can): the
-- sums must keep one scale, so the line amounts and quantities must have
-- a fixed one.
CREATE FUNCTION _segmentation_state_unsupported(s segmentations) RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT format('the line %s have no fixed scale (%s is not numeric(p,s) or an integer)',
                  CASE c WHEN 'pretax_subtotal' THEN 'amounts' ELSE 'quantities' END, c)
      FROM unnest(ARRAY['pretax_subtotal', 'quantity']) c
     WHERE NOT EXISTS (
            SELECT 1 FROM pg_attribute a
             WHERE a.attrelid = to_regclass(format('%I.sales_order_lines', s.source_schema))
               AND a.attname = c AND NOT a.attisdropped
               AND (a.atttypid IN ('int2'::regtype, 'int4'::regtype, 'int8'::regtype)
                    OR (a.atttypid = 'numeric'::regtype AND a.atttypmod >= 0)))
     LIMIT 1
$$;

-- Why the recorded state cannot be adjusted by this refresh (NULL: it
-- can).  s is resolved.
CREATE FUNCTION _segmentation_state_problem(s segmentations, x segmentation_refresh_state, r rollups)
RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n record := customer_analytics._segmentation_state_names(s);
    st regclass := to_regclass(format('%I.%I', s.view_schema, n.state));
    kt regclass := to_regclass(format('%I.%I', s.view_schema, n.sku_state));
BEGIN
    IF x IS NULL OR x.snapshot IS NULL THEN
        RETURN 'no per-customer state yet';
    ELSIF x.generation IS DISTINCT FROM r.generation THEN
        RETURN 'the rollup was rebuilt';
    ELSIF x.feature_window <> s.feature_window THEN
        RETURN CASE WHEN s.rolling IS NOT NULL THEN 'the feature window moved' ELSE 'the feature window changed' END;
    ELSIF st IS DISTINCT FROM x.state_table OR kt IS DISTINCT FROM x.sku_table
          OR NOT pg_has_role((SELECT relowner FROM pg_class WHERE oid = st), 'USAGE')
          OR NOT pg_has_role((SELECT relowner FROM pg_class WHERE oid = kt), 'USAGE') THEN
        RETURN 'the per-customer state tables were changed';
    END IF;
    RETURN NULL;
END $$;

-- The columns of a feature state table: spend_orders, quantity_orders are
-- the orders with a total, a quantity (NULL in a state copied from
-- customer_features(), which does not tell: its sums are taken as they are).
CREATE FUNCTION _segmentation_state_columns() RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$$ SELECT '(customer_code text PRIMARY KEY, visits bigint NOT NULL, spend numeric, spend_orders bigint,'
          ' quantity numeric, quantity_orders bigint, skus bigint NOT NULL, first_order date, last_order date)' $$;

-- Create the state tables if missing (or take back the ones a restore
-- brought), as the caller (the segmentation's owner).  Error when another
-- relation has the name.  Returns them.  With temporary, a state table of
-- this transaction only (pg_temp.customer_analytics_seg_state, created
-- again) and no sku table: the features computed once for this refresh
-- when no order changes are to be applied later.
CREATE FUNCTION _segmentation_state_tables(s segmentations, temporary boolean,
                                           OUT state regclass, OUT sku_state regclass)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n record := customer_analytics._segmentation_state_names(s);
    marker text := customer_analytics._segmentation_state_marker(s);
BEGIN
    IF temporary THEN
        PERFORM customer_analytics._drop_temp_tables('customer_analytics_seg_state');
        PERFORM customer_analytics._scratch_table('customer_analytics_seg_state',
                                                  customer_analytics._segmentation_state_columns());
        EXECUTE format('COMMENT ON TABLE pg_temp.customer_analytics_seg_state IS %L', marker);
        state := 'pg_temp.customer_analytics_seg_state'::regclass;
        sku_state := NULL;
        RETURN;
    END IF;
    PERFORM customer_analytics._require_marked_or_absent(s.view_schema, ARRAY[n.state, n.sku_state], marker,
                                                         'segmentation', s.name, 'per-customer feature state');
    state := customer_analytics._create_marked_table(s.view_schema, n.state,
                                                     customer_analytics._segmentation_state_columns(), marker);
    sku_state := customer_analytics._create_marked_table(s.view_schema, n.sku_state,
        '(customer_code text, product_code text, lines bigint NOT NULL, PRIMARY KEY (customer_code, product_code))', marker);
END $$;

-- The rollup's orders in the feature window as rows o(customer_code, d,
-- total, quantity, product_codes): the orders customer_features() reads.
CREATE FUNCTION _segmentation_rollup_orders_sql(s segmentations, r rollups) RETURNS text
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT format('(SELECT o.* FROM (SELECT r.customer_code,'
                  ' customer_analytics._rollup_order_date(r.order_date, r.order_date_raw, r.order_type, r.order_number) AS d,'
                  ' r.total, r.quantity, r.product_codes FROM %s r WHERE r.customer_code IS NOT NULL) o'
                  ' WHERE o.d <@ %L::daterange)', customer_analytics._rollup_table(r.id), s.feature_window)
$$;

-- Build a segmentation's state in full.  From the rollup (r not NULL), as
-- of one snapshot, which it returns: the state then follows the order
-- changes.  Otherwise from customer_features() (the source tables), with
-- no snapshot and no sku rows: into the kept tables when the segmentation
-- has them, else into a temporary table (no state tables beside the views
-- of a source without a rollup).  A relation that has a state table's name
-- and is not it: a WARNING, and the temporary table.  s is resolved.
CREATE FUNCTION _segmentation_build_state(s segmentations, r rollups, OUT state regclass,
                                          OUT sku_state regclass, OUT snapshot pg_snapshot)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    t record;
BEGIN
    BEGIN
        t := customer_analytics._segmentation_state_tables(s,
                 r IS NULL AND NOT EXISTS (SELECT 1 FROM customer_analytics._segmentation_state_relations(s)));
    EXCEPTION WHEN duplicate_table THEN
        RAISE WARNING 'segmentation "%" keeps no per-customer feature state: %', s.name, SQLERRM
            USING HINT = 'Its refreshes compute the features in full until this is fixed.';
        t := customer_analytics._segmentation_state_tables(s, true);
        r := NULL;
    END;
    state := t.state;
    sku_state := t.sku_state;
    IF r IS NULL THEN
        EXECUTE format('TRUNCATE %s', concat_ws(', ', state::text, sku_state::text));
        -- the sums as customer_features() gives them (0 for none), without
        -- the order counts it does not give: no order changes are applied
        -- to this state
        EXECUTE format('INSERT INTO %s SELECT f.customer_code, f.visits, f.total_spend, NULL, f.total_quantity,'
                       ' NULL, f.skus, f.first_order, f.last_order'
                       ' FROM customer_analytics.customer_features($1, $2, $3) f', state)
          USING s.feature_window, s.as_of, s.source_schema;
        snapshot := NULL;
        RETURN;
    END IF;
    snapshot := customer_analytics._at_one_snapshot(NULL, ARRAY[
        format('TRUNCATE %s, %s', state, sku_state),
        format('INSERT INTO %s SELECT o.customer_code, p.code, count(*) FROM %s o, unnest(o.product_codes) p(code)'
               ' WHERE p.code IS NOT NULL GROUP BY 1, 2',
               sku_state, customer_analytics._segmentation_rollup_orders_sql(s, r)),
        format('INSERT INTO %s SELECT g.customer_code, g.visits, g.spend, g.spend_orders, g.quantity, g.quantity_orders,'
               ' COALESCE(k.skus, 0), g.first_order, g.last_order FROM'
               ' (SELECT o.customer_code, count(*) AS visits, sum(o.total) AS spend, count(o.total) AS spend_orders,'
               '  sum(o.quantity) AS quantity, count(o.quantity) AS quantity_orders,'
               '  min(o.d) AS first_order, max(o.d) AS last_order FROM %s o GROUP BY 1) g'
               ' LEFT JOIN (SELECT k.customer_code, count(*) AS skus FROM %s k GROUP BY 1) k USING (customer_code)',
               state, customer_analytics._segmentation_rollup_orders_sql(s, r), sku_state)]);
END $$;

-- Apply the order changes committed since the state's snapshot to a
-- segmentation's state, as of one new snapshot, which it returns (NULL,
-- nothing done, when there is a change it cannot follow: see
-- _rollup_delta_guard_sql).  An order among the changes that the full
-- computation refuses (a date it cannot read) raises its error, and
-- nothing is applied.  s is resolved; the caller holds the refresh
-- lock.  A customer's first or last order is looked up again only when a
-- removed order may have been it.
CREATE FUNCTION _segmentation_delta_refresh(s segmentations, x segmentation_refresh_state, r rollups,
                                            OUT snapshot pg_snapshot, OUT changed_customers bigint,
                                            OUT order_changes bigint)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET jit = off AS $$
DECLARE
    dirty text := customer_analytics._rollup_dirty_table(r.id);
    since text := format('x.xid >= pg_catalog.pg_snapshot_xmin(%1$L::pg_snapshot)'
                         ' AND NOT pg_catalog.pg_visible_in_snapshot(x.xid, %1$L::pg_snapshot)', x.snapshot);
    -- the changed orders' rows in the window
    rows text := format('x.sign IS NOT NULL AND %s AND x.order_date <@ %L::daterange', since, s.feature_window);
    state regclass := x.state_table;
    sku regclass := x.sku_table;
    lookup text := format('(SELECT %%s(r.order_date) FROM %s r WHERE r.customer_code = %%s AND r.order_date <@ %L::daterange)',
                          customer_analytics._rollup_table(r.id), s.feature_window);
BEGIN
    PERFORM customer_analytics._drop_segmentation_scratch();
    PERFORM customer_analytics._scratch_table('customer_analytics_seg_changed', '(customer_code text PRIMARY KEY)');
    -- the net change of lines per (customer, product code), and of each
    -- changed customer's distinct codes
    PERFORM customer_analytics._scratch_table('customer_analytics_seg_skus',
        '(customer_code text, product_code text, lines bigint, PRIMARY KEY (customer_code, product_code))');
    PERFORM customer_analytics._scratch_table('customer_analytics_seg_sku_counts', '(customer_code text PRIMARY KEY, skus bigint)');
    snapshot := customer_analytics._at_one_snapshot(customer_analytics._rollup_delta_guard_sql(r, since), ARRAY[
        -- the changed orders, read as the full computation reads them
        customer_analytics._rollup_changes_check_sql(r, since),
        format('INSERT INTO pg_temp.customer_analytics_seg_changed SELECT DISTINCT x.customer_code FROM %s x WHERE %s',
               dirty, rows),
        'ANALYZE pg_temp.customer_analytics_seg_changed',
        -- lines per product code, with their signs; a code whose count
        -- reaches 0 leaves the customer's codes, a new one joins them
        format('INSERT INTO pg_temp.customer_analytics_seg_skus'
               ' SELECT x.customer_code, p.code, sum(x.sign) FROM %s x, unnest(x.product_codes) p(code)'
               ' WHERE %s AND p.code IS NOT NULL GROUP BY 1, 2 HAVING sum(x.sign) <> 0', dirty, rows),
        'ANALYZE pg_temp.customer_analytics_seg_skus',
        format('INSERT INTO pg_temp.customer_analytics_seg_sku_counts'
               ' SELECT z.customer_code, sum(CASE WHEN k.lines IS NULL THEN 1 WHEN k.lines + z.lines <= 0 THEN -1 ELSE 0 END)'
               ' FROM pg_temp.customer_analytics_seg_skus z LEFT JOIN %s k'
               ' ON k.customer_code = z.customer_code AND k.product_code = z.product_code'
               ' GROUP BY 1 HAVING sum(CASE WHEN k.lines IS NULL THEN 1 WHEN k.lines + z.lines <= 0 THEN -1 ELSE 0 END) <> 0',
               sku),
        format('DELETE FROM %s k USING pg_temp.customer_analytics_seg_skus z'
               ' WHERE k.customer_code = z.customer_code AND k.product_code = z.product_code AND k.lines + z.lines <= 0',
               sku),
        format('INSERT INTO %1$s AS k (customer_code, product_code, lines)'
               ' SELECT z.customer_code, z.product_code, z.lines FROM pg_temp.customer_analytics_seg_skus z'
               ' WHERE z.lines > 0 OR EXISTS (SELECT 1 FROM %1$s y'
               '                               WHERE y.customer_code = z.customer_code AND y.product_code = z.product_code)'
               ' ON CONFLICT (customer_code, product_code) DO UPDATE SET lines = k.lines + excluded.lines',
               sku),
        -- visits and sums adjusted; a sum is NULL again when no order has one
        format('WITH d AS (SELECT x.customer_code, sum(x.sign) AS visits, sum(x.sign * x.total) AS spend,'
               '   COALESCE(sum(x.sign) FILTER (WHERE x.total IS NOT NULL), 0) AS spend_orders,'
               '   sum(x.sign * x.quantity) AS quantity,'
               '   COALESCE(sum(x.sign) FILTER (WHERE x.quantity IS NOT NULL), 0) AS quantity_orders,'
               '   min(x.order_date) FILTER (WHERE x.sign > 0) AS added_first,'
               '   max(x.order_date) FILTER (WHERE x.sign > 0) AS added_last,'
               '   min(x.order_date) FILTER (WHERE x.sign < 0) AS removed_first,'
               '   max(x.order_date) FILTER (WHERE x.sign < 0) AS removed_last'
               '   FROM %2$s x WHERE %3$s GROUP BY 1),'
               ' upd AS (UPDATE %1$s s SET visits = s.visits + d.visits,'
               '   spend = CASE WHEN s.spend_orders + d.spend_orders > 0 THEN COALESCE(s.spend, 0) + COALESCE(d.spend, 0) END,'
               '   spend_orders = s.spend_orders + d.spend_orders,'
               '   quantity = CASE WHEN s.quantity_orders + d.quantity_orders > 0'
               '     THEN COALESCE(s.quantity, 0) + COALESCE(d.quantity, 0) END,'
               '   quantity_orders = s.quantity_orders + d.quantity_orders,'
               '   first_order = CASE WHEN s.visits + d.visits <= 0 THEN NULL'
               '     WHEN d.removed_first <= LEAST(s.first_order, d.added_first) THEN %4$s'
               '     ELSE LEAST(s.first_order, d.added_first) END,'
               '   last_order = CASE WHEN s.visits + d.visits <= 0 THEN NULL'
               '     WHEN d.removed_last >= GREATEST(s.last_order, d.added_last) THEN %5$s'
               '     ELSE GREATEST(s.last_order, d.added_last) END'
               '   FROM d WHERE s.customer_code = d.customer_code)'
               ' INSERT INTO %1$s (customer_code, visits, spend, spend_orders, quantity, quantity_orders, skus,'
               '                   first_order, last_order)'
               ' SELECT d.customer_code, d.visits, CASE WHEN d.spend_orders > 0 THEN d.spend END, d.spend_orders,'
               '   CASE WHEN d.quantity_orders > 0 THEN d.quantity END, d.quantity_orders, 0,'
               '   CASE WHEN d.removed_first IS NULL THEN d.added_first ELSE %6$s END,'
               '   CASE WHEN d.removed_last IS NULL THEN d.added_last ELSE %7$s END'
               -- new customers: those the state had no row for (the
               -- statement's snapshot does not see the UPDATE above), found
               -- by the state's key, whatever the estimates of d say
               ' FROM d WHERE NOT EXISTS (SELECT 1 FROM %1$s s WHERE s.customer_code = d.customer_code)',
               state, dirty, rows,
               format(lookup, 'min', 's.customer_code'), format(lookup, 'max', 's.customer_code'),
               format(lookup, 'min', 'd.customer_code'), format(lookup, 'max', 'd.customer_code')),
        format('UPDATE %s s SET skus = s.skus + c.skus FROM pg_temp.customer_analytics_seg_sku_counts c'
               ' WHERE s.customer_code = c.customer_code', state),
        format('DELETE FROM %s s USING pg_temp.customer_analytics_seg_changed c'
               ' WHERE s.customer_code = c.customer_code AND s.visits <= 0', state)]);
    IF snapshot IS NOT NULL THEN
        SELECT count(*) INTO changed_customers FROM pg_temp.customer_analytics_seg_changed;
        EXECUTE format('SELECT count(*) FROM %s x WHERE x.sign IS NOT NULL AND %s AND pg_visible_in_snapshot(x.xid, %L::pg_snapshot)',
                       dirty, since, snapshot) INTO order_changes;
    END IF;
    PERFORM customer_analytics._drop_segmentation_scratch();
END $$;

-- Drop the segmentation delta refresh's temporary tables if this session has them.
CREATE FUNCTION _drop_segmentation_scratch() RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    SELECT customer_analytics._drop_temp_tables('customer_analytics_seg_changed', 'customer_analytics_seg_skus',
                                                'customer_analytics_seg_sku_counts')
$$;

-- Bring a segmentation's feature state up to date for this refresh: from
-- the order changes when the rollup and the state allow, else in full
-- (from the rollup when it is usable, so that the next refresh can apply
-- changes; from the source tables otherwise).  Marks the state current for
-- this transaction, whose views then read it.  mode is what the refresh
-- history records.  Only the owner keeps the state: another role's refresh
-- (a superuser's) leaves the views to compute their features as the owner.
-- unchanged: no customer's features changed and as_of is the one the views
-- were last computed with, so the views, computed from the same features,
-- would come out the same (the caller leaves them).
CREATE FUNCTION _segmentation_update_state(s segmentations, OUT mode text, OUT delta boolean,
                                           OUT unchanged boolean)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    resolved customer_analytics.segmentations := customer_analytics._segmentation_resolved(s);
    r customer_analytics.rollups;
    x customer_analytics.segmentation_refresh_state;
    usable boolean;
    why text;
    d record;
    b record;
BEGIN
    delta := false;
    unchanged := false;
    SELECT * INTO r FROM customer_analytics.rollups y WHERE y.source_schema = s.source_schema;
    usable := r IS NOT NULL AND (customer_analytics._rollup_for_reading(s.source_schema)).rollup IS NOT NULL;
    SELECT * INTO x FROM customer_analytics.segmentation_refresh_state y WHERE y.segmentation = s.name;
    why := CASE WHEN r IS NULL THEN 'no rollup'
                WHEN NOT usable THEN 'the rollup is not usable'
                ELSE COALESCE(customer_analytics._segmentation_state_unsupported(resolved),
                              CASE WHEN customer_analytics._rollup_written_here(r)
                                   THEN 'this transaction wrote to the source tables' END,
                              customer_analytics._segmentation_state_problem(resolved, x, r)) END;
    IF why IS NULL THEN
        PERFORM customer_analytics._report_progress(format('refresh_segmentation(%L): applying the order changes', s.name));
        d := customer_analytics._segmentation_delta_refresh(resolved, x, r);
        IF d.snapshot IS NULL THEN
            why := customer_analytics._rollup_delta_refused(r, x.snapshot);
        ELSE
            delta := true;
            unchanged := d.changed_customers = 0 AND x.as_of IS NOT DISTINCT FROM resolved.as_of;
            mode := format('delta (%s changed customers, %s order changes%s)', d.changed_customers, d.order_changes,
                           CASE WHEN unchanged THEN '; views unchanged' ELSE '' END);
            UPDATE customer_analytics.segmentation_refresh_state y
               SET snapshot = d.snapshot, features_xid = pg_current_xact_id(), as_of = resolved.as_of
             WHERE y.segmentation = s.name;
        END IF;
    END IF;
    IF NOT delta THEN
        mode := format('full (%s)', why);
        PERFORM customer_analytics._report_progress(format('refresh_segmentation(%L): computing the features', s.name));
        -- from the rollup only when its changes can be applied later
        b := customer_analytics._segmentation_build_state(resolved,
                 CASE WHEN usable AND customer_analytics._segmentation_state_unsupported(resolved) IS NULL
                           AND NOT customer_analytics._rollup_written_here(r) THEN r END);
        INSERT INTO customer_analytics.segmentation_refresh_state AS y
        VALUES (s.name, resolved.feature_window, b.state, CASE WHEN b.snapshot IS NOT NULL THEN b.sku_state END,
                CASE WHEN b.snapshot IS NOT NULL THEN r.generation END, b.snapshot, pg_current_xact_id(),
                resolved.as_of)
        ON CONFLICT (segmentation) DO UPDATE
            SET feature_window = excluded.feature_window, state_table = excluded.state_table,
                sku_table = excluded.sku_table, generation = excluded.generation,
                snapshot = excluded.snapshot, features_xid = excluded.features_xid, as_of = excluded.as_of;
    END IF;
    IF usable THEN
        PERFORM customer_analytics._prune_dirty(r);
    END IF;
END $$;

-- A k-means model checked as kmeans_predict() and kmeans_standardize()
-- read it (kmeans_model_parse() in src/kmeans_model.c, the one check of a
-- model): 22023 naming the field at fault.
CREATE FUNCTION _kmeans_model_check(model jsonb) RETURNS void
AS 'MODULE_PATHNAME', 'kmeans_model_check' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION _kmeans_model_check(jsonb) IS
'internal: refuse a k-means model kmeans_predict() would refuse (22023 naming the field), whether or not any features are predicted';

-- The profiles and the elbow of a set of features (features_sql: SQL
-- text of a relation with a float8[] column `features`), shared by
-- kmeans_profiles()/kmeans_elbow() and a segmentation's views.
CREATE FUNCTION _kmeans_profiles_over(model jsonb, features_sql text)
RETURNS TABLE (cluster int, customers bigint, share numeric,
               visits float8, total_spend float8, ticket_size float8, skus float8,
               total_quantity float8, recency_days float8, tenure_days float8,
               quantity_per_visit float8, days_per_visit float8, skus_per_visit float8,
               diff float8, ranks jsonb)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    -- the model is checked as kmeans_predict() reads it, features or none
    PERFORM customer_analytics._kmeans_model_check(model);
    RETURN QUERY EXECUTE format($q$
    WITH m AS (
        SELECT customer_analytics.kmeans_predict($1, cf.features) AS cluster, cf.features AS f
          FROM (%s) cf),
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
      FROM p ORDER BY p.cluster$q$, features_sql) USING model;
END $$;

CREATE FUNCTION _kmeans_elbow_over(k_from int, k_to int, options jsonb, silhouette_sample int, features_sql text)
RETURNS TABLE (k int, inertia float8, silhouette float8, kneedle_pick boolean, silhouette_pick boolean)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RETURN QUERY EXECUTE format($q$
    WITH f AS MATERIALIZED (SELECT cf.features FROM (%s) cf),
    fits AS (
        SELECT g.k, (SELECT customer_analytics.kmeans_fit(f.features, g.k, $3) FROM f) AS model
          FROM generate_series($1, $2) AS g(k)),
    scored AS (
        SELECT fits.k, (fits.model->>'inertia')::float8 AS inertia,
               (SELECT CASE WHEN $4 = 0
                            THEN customer_analytics.silhouette(customer_analytics.kmeans_standardize(fits.model, f.features),
                                                               customer_analytics.kmeans_predict(fits.model, f.features))
                            ELSE customer_analytics.silhouette(customer_analytics.kmeans_standardize(fits.model, f.features),
                                                               customer_analytics.kmeans_predict(fits.model, f.features),
                                                               $4, 0) END
                  FROM f) AS silhouette
          FROM fits WHERE fits.model IS NOT NULL)
    SELECT s.k, s.inertia, s.silhouette,
           s.k = customer_analytics.kneedle((SELECT array_agg(x.k ORDER BY x.k) FROM scored x),
                                           (SELECT array_agg(x.inertia ORDER BY x.k) FROM scored x)),
           s.k = (SELECT x.k FROM scored x WHERE x.silhouette IS NOT NULL ORDER BY x.silhouette DESC, x.k LIMIT 1)
      FROM scored s ORDER BY s.k$q$, features_sql) USING k_from, k_to, options, silhouette_sample;
END $$;

-- The features query of customer_features() for a segment.
CREATE FUNCTION _segment_features_sql(segment text, feature_window daterange, as_of date, source_schema text)
RETURNS text
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT format('SELECT cf.features FROM customer_analytics.customer_features(%L::daterange, %L::date, %L::text) cf'
                  ' WHERE customer_analytics._segment_filter(%L::text, cf.is_repeat)',
                  feature_window, as_of, source_schema, segment)
$$;

-- As in 1.0, through the shared implementation.
CREATE OR REPLACE FUNCTION kmeans_profiles(
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
    SELECT * FROM customer_analytics._kmeans_profiles_over(model,
        customer_analytics._segment_features_sql(segment, feature_window, as_of, source_schema))
$$;

CREATE OR REPLACE FUNCTION kmeans_elbow(
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
    RETURN QUERY SELECT * FROM customer_analytics._kmeans_elbow_over(k_from, k_to, options, silhouette_sample,
        customer_analytics._segment_features_sql(segment, feature_window, as_of, source_schema));
END $$;

-- A segmentation's profiles and elbow over segmentation_features(): what
-- its _profiles and _elbow views read (from the state during a refresh).
CREATE FUNCTION _segmentation_profiles(segmentation text, model jsonb)
RETURNS TABLE (cluster int, customers bigint, share numeric,
               visits float8, total_spend float8, ticket_size float8, skus float8,
               total_quantity float8, recency_days float8, tenure_days float8,
               quantity_per_visit float8, days_per_visit float8, skus_per_visit float8,
               diff float8, ranks jsonb)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT * FROM customer_analytics._kmeans_profiles_over(model,
        format('SELECT f.features FROM customer_analytics.segmentation_features(%L) f', segmentation))
$$;
COMMENT ON FUNCTION _segmentation_profiles(text, jsonb) IS
'internal: kmeans_profiles() of a segmentation''s model over its features (what <name>_profiles holds)';

CREATE FUNCTION _segmentation_elbow(segmentation text)
RETURNS TABLE (k int, inertia float8, silhouette float8, kneedle_pick boolean, silhouette_pick boolean)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    s customer_analytics.segmentations := customer_analytics._segmentation_to_run(segmentation);
BEGIN
    RETURN QUERY SELECT * FROM customer_analytics._kmeans_elbow_over(s.k_from, s.k_to, s.options, s.silhouette_sample,
        format('SELECT f.features FROM customer_analytics.segmentation_features(%L) f', s.name));
END $$;
COMMENT ON FUNCTION _segmentation_elbow(text) IS
'internal: kmeans_elbow() over a segmentation''s features with its stored k range, options and sample (what <name>_elbow holds)';

-- DROP EXTENSION (its event trigger, before anything is dropped) takes the
-- tables the extension created outside its script: every rollup's tables
-- and every campaign's and segmentation's state tables.  Returns how many it dropped.
CREATE FUNCTION _drop_extension_tables() RETURNS int
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r customer_analytics.rollups;
    c customer_analytics.campaigns;
    g customer_analytics.segmentations;
    t text;
    n int := 0;
BEGIN
    FOR c IN SELECT * FROM customer_analytics.campaigns LOOP
        n := n + customer_analytics._drop_campaign_state(c);
    END LOOP;
    FOR g IN SELECT * FROM customer_analytics.segmentations LOOP
        n := n + customer_analytics._drop_segmentation_state(g);
    END LOOP;
    FOR r IN SELECT * FROM customer_analytics.rollups LOOP
        FOREACH t IN ARRAY ARRAY[customer_analytics._rollup_table(r.id), customer_analytics._rollup_dirty_table(r.id),
                                 customer_analytics._rollup_keys_table(r.id)] LOOP
            IF to_regclass(t) IS NOT NULL THEN
                EXECUTE format('DROP TABLE %s', t);
                n := n + 1;
            END IF;
        END LOOP;
    END LOOP;
    IF n > 0 THEN
        RAISE NOTICE 'customer_analytics: dropping % rollup and state table(s) with the extension', n;
    END IF;
    RETURN n;
END $$;

------------------------------------------------------------------------------
-- An updated database keeps nothing a fresh install would not make (issue
-- 21, item 3).  The extension's own objects come out the same either way
-- (a fresh install runs these same scripts); what can differ is what its
-- functions made at run time, before 1.5, for the roles that called them:
--   - a rollup's tables: 1.1 to 1.4 granted SELECT, INSERT and DELETE on
--     order_rollup_<id> and rollup_dirty_<id> to enable_rollup's writers
--     (their trigger ran as the writer).  1.5's trigger runs as the
--     rollup's owner and grants writers nothing; a writer left with them
--     could delete rows of a rollup that stays current.
--   - the views: a campaign's sheet built before 1.5 reads its months
--     without the check that they are still the window's, a
--     segmentation's four views read the catalog directly instead of
--     through the owner check (_segmentation_to_run), and neither has the
--     long form or the plain _v views for BI tools.
-- The update resets the privileges on every rollup's tables (as
-- rebuild_rollup now does at every rebuild) and rebuilds what 1.5 builds
-- differently, as each definition's owner, with the 1.5 builders.
------------------------------------------------------------------------------

-- (the update's work on other roles' objects runs through _as_owner(),
-- which also keeps what it creates out of the extension: owner_context.c)

-- Set the privileges on a rollup's tables to what 1.5 gives: its owner
-- keeps its own; readers get SELECT on the rollup and dirty tables; no
-- other role may write any of them (INSERT, UPDATE, DELETE, TRUNCATE,
-- REFERENCES and TRIGGER are revoked from every other role and PUBLIC,
-- column privileges included), writers that are not readers keep nothing,
-- and the keys table is the owner's alone.  SELECT given by hand to other
-- roles stays: it changes nothing anyone else reads.  Run by the rollup's
-- owner (rebuild_rollup) or a superuser.
CREATE FUNCTION _rollup_reset_grants(r rollups) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    t text;
    rel regclass;
    g record;
    reader text;
BEGIN
    FOREACH t IN ARRAY ARRAY[customer_analytics._rollup_table(r.id), customer_analytics._rollup_dirty_table(r.id),
                             customer_analytics._rollup_keys_table(r.id)] LOOP
        rel := to_regclass(t);
        CONTINUE WHEN rel IS NULL;
        FOR g IN SELECT x.grantee, CASE WHEN x.grantee = 0 THEN 'PUBLIC'
                                        ELSE quote_ident(pg_get_userbyid(x.grantee)) END AS role_sql,
                        CASE WHEN x.grantee <> 0 THEN pg_get_userbyid(x.grantee)::text END AS role_name
                   FROM (SELECT a.grantee FROM pg_class c, aclexplode(c.relacl) a
                          WHERE c.oid = rel AND a.grantee <> c.relowner
                         UNION
                         SELECT a.grantee FROM pg_class c JOIN pg_attribute y ON y.attrelid = c.oid,
                                aclexplode(y.attacl) a
                          WHERE c.oid = rel AND y.attacl IS NOT NULL AND a.grantee <> c.relowner) x
                  ORDER BY x.grantee LOOP
            IF t = customer_analytics._rollup_keys_table(r.id)
               OR (g.role_name = ANY (r.writers) AND NOT g.role_name = ANY (r.readers)) THEN
                EXECUTE format('REVOKE ALL ON %s FROM %s CASCADE', rel, g.role_sql);
            ELSE
                EXECUTE format('REVOKE INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON %s FROM %s CASCADE',
                               rel, g.role_sql);
            END IF;
        END LOOP;
        IF t <> customer_analytics._rollup_keys_table(r.id) THEN
            FOREACH reader IN ARRAY r.readers LOOP
                IF to_regrole(quote_ident(reader)) IS NOT NULL THEN
                    EXECUTE format('GRANT SELECT ON %s TO %I', rel, reader);
                END IF;
            END LOOP;
        END IF;
    END LOOP;
END $$;
COMMENT ON FUNCTION _rollup_reset_grants(rollups) IS
'Reset the privileges on a rollup''s tables to what enable_rollup gives (SELECT for readers; no role but the owner may write them)';

-- Does a view's query use function fn?  How the upgrade tells a view built
-- before 1.5 from one built by the 1.5 builders.
CREATE FUNCTION _view_reads(view regclass, fn regprocedure) RETURNS boolean
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT EXISTS (SELECT 1 FROM pg_rewrite r
                     JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid
                    WHERE r.ev_class = view AND d.refclassid = 'pg_proc'::regclass AND d.refobjid = fn)
$$;

-- The relations (materialized views and plain views) of views and their
-- plain views that exist in schema.
CREATE FUNCTION _view_relations(schema text, views text[]) RETURNS oid[]
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT ARRAY(SELECT x FROM unnest(ARRAY(SELECT to_regclass(format('%I.%I', schema, v))::oid FROM unnest(views) v)
                                      || ARRAY(SELECT customer_analytics._bi_view(schema, v)::oid FROM unnest(views) v)) x
                  WHERE x IS NOT NULL)
$$;

-- The objects of users that depend on any of the relations schema.names or
-- their plain views (those relations excluded), described for a message;
-- NULL when none.  What stops a rebuild, which never cascades.
CREATE FUNCTION _user_dependents(schema text, names text[]) RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    WITH ours AS (
        SELECT x FROM unnest(customer_analytics._view_relations(schema, names)) x)
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

-- Refuse (2BP01) to rebuild the views `rebuild` of a definition while an
-- object of a user depends on one of them or on its plain view.
CREATE FUNCTION _require_no_user_dependents(kind text, name text, schema text, rebuild text[]) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    deps text := customer_analytics._user_dependents(schema, rebuild);
BEGIN
    IF deps IS NOT NULL THEN
        RAISE EXCEPTION 'cannot rebuild the views % of % "%" as 1.5 builds them: % depends on them',
                        array_to_string(rebuild, ', '), kind, name, deps
            USING ERRCODE = 'dependent_objects_still_exist',
                  HINT = 'Drop it (customer_analytics never drops your objects), run SELECT customer_analytics.upgrade_views(); '
                         'as the ' || kind || '''s owner, then create it again.';
    END IF;
END $$;

-- Bring a campaign's views to what 1.5 builds, as its owner: the sheet
-- built before 1.5 (its months unchecked) is built again, the long form
-- and the plain _v views are added, readers get SELECT on all of them.
-- The targets view is kept: 1.5 builds it the same way (its rows, and the
-- incremental refresh that reuses them, stay).  Returns the relations made.
CREATE FUNCTION _campaign_upgrade_views(c campaigns) RETURNS SETOF regclass
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    views text[] := customer_analytics._campaign_views(c.name);
    before oid[] := customer_analytics._view_relations(c.view_schema, views);
    sheet regclass := to_regclass(format('%I.%I', c.view_schema, c.name || '_monthly'));
    rebuild text[] := '{}';
    made regclass[];
    v text;
BEGIN
    PERFORM customer_analytics._require_definition_owner('campaign', c.name, c.owner);
    PERFORM pg_advisory_xact_lock(hashtext('customer_analytics.refresh'), hashtext(c.source_schema));
    IF to_regclass(format('%I.%I', c.view_schema, c.name || '_targets')) IS NULL THEN
        rebuild := views;
    ELSIF NOT customer_analytics._view_reads(sheet, 'customer_analytics._campaign_sheet_revenue(text, date[])'::regprocedure) THEN
        rebuild := ARRAY[c.name || '_monthly'];
    END IF;
    IF cardinality(rebuild) > 0 THEN
        PERFORM customer_analytics._require_no_user_dependents('campaign', c.name, c.view_schema, rebuild);
        PERFORM customer_analytics._drop_views(c.view_schema, ARRAY(SELECT x FROM unnest(rebuild) WITH ORDINALITY u(x, i)
                                                                     ORDER BY i DESC));
        IF c.name || '_targets' = ANY (rebuild) THEN
            PERFORM customer_analytics._build_targets_view(c);
        END IF;
        PERFORM customer_analytics._build_monthly_view(c);
    END IF;
    PERFORM customer_analytics._ensure_long_view(c);
    FOREACH v IN ARRAY views LOOP
        IF to_regclass(format('%I.%I', c.view_schema, v)) IS NOT NULL
           AND customer_analytics._bi_view(c.view_schema, v) IS NULL THEN
            PERFORM customer_analytics._build_bi_view(c.view_schema, v);
        END IF;
    END LOOP;
    made := ARRAY(SELECT x::regclass FROM unnest(customer_analytics._view_relations(c.view_schema, views)) x
                   WHERE x <> ALL (before));
    IF cardinality(made) > 0 THEN
        PERFORM customer_analytics._grant_readers(c.view_schema, views, c.readers);
        RAISE NOTICE 'campaign "%": built % as 1.5 builds them', c.name, array_to_string(made, ', ');
    END IF;
    RETURN QUERY SELECT unnest(made);
END $$;

-- The same for a segmentation: its four views built before 1.5 (they read
-- the catalog without the owner check) are built again, with their plain
-- views; like a refresh, from the orders as they are now (recorded in the
-- catalog and the refresh history).  Returns the relations made.
CREATE FUNCTION _segmentation_upgrade_views(s segmentations) RETURNS SETOF regclass
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    views text[] := customer_analytics._segmentation_views(s.name);
    before oid[] := customer_analytics._view_relations(s.view_schema, views);
    started timestamptz := clock_timestamp();
    made regclass[];
    v text;
BEGIN
    PERFORM customer_analytics._require_definition_owner('segmentation', s.name, s.owner);
    PERFORM pg_advisory_xact_lock(hashtext('customer_analytics.refresh'), hashtext(s.source_schema));
    -- (a missing view reads nothing)
    IF to_regclass(format('%I.%I', s.view_schema, s.name || '_members')) IS NULL
       OR NOT customer_analytics._view_reads(to_regclass(format('%I.%I', s.view_schema, s.name || '_model')),
                                             'customer_analytics._segmentation_to_run(text)'::regprocedure)
       OR NOT customer_analytics._view_reads(to_regclass(format('%I.%I', s.view_schema, s.name || '_profiles')),
                                             'customer_analytics._segmentation_profiles(text, jsonb)'::regprocedure)
       OR NOT customer_analytics._view_reads(to_regclass(format('%I.%I', s.view_schema, s.name || '_elbow')),
                                             'customer_analytics._segmentation_elbow(text)'::regprocedure) THEN
        PERFORM customer_analytics._require_no_user_dependents('segmentation', s.name, s.view_schema, views);
        PERFORM customer_analytics._drop_views(s.view_schema,
            ARRAY[s.name || '_elbow', s.name || '_profiles', s.name || '_members', s.name || '_model']);
        PERFORM customer_analytics._build_segmentation_views(s);
        s := customer_analytics._record_segmentation_refresh(s.name, started);
        PERFORM customer_analytics._record_history('segmentation', s.name, s.owner, started,
                                                   'build (views built before 1.5, built again)', s.member_rows, NULL);
    END IF;
    FOREACH v IN ARRAY views LOOP
        IF customer_analytics._bi_view(s.view_schema, v) IS NULL THEN
            PERFORM customer_analytics._build_bi_view(s.view_schema, v);
        END IF;
    END LOOP;
    made := ARRAY(SELECT x::regclass FROM unnest(customer_analytics._view_relations(s.view_schema, views)) x
                   WHERE x <> ALL (before));
    IF cardinality(made) > 0 THEN
        PERFORM customer_analytics._grant_readers(s.view_schema, views, s.readers);
        RAISE NOTICE 'segmentation "%": built % as 1.5 builds them', s.name, array_to_string(made, ', ');
    END IF;
    RETURN QUERY SELECT unnest(made);
END $$;

-- What the update could not rebuild (a user's object on a view, a build
-- that failed), the owner finishes with this once the cause is gone.
CREATE FUNCTION upgrade_views() RETURNS SETOF regclass
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    c customer_analytics.campaigns;
    s customer_analytics.segmentations;
BEGIN
    FOR c IN SELECT * FROM customer_analytics.campaigns x WHERE x.owner = current_user ORDER BY x.name LOOP
        RETURN QUERY SELECT * FROM customer_analytics._campaign_upgrade_views(c);
    END LOOP;
    FOR s IN SELECT * FROM customer_analytics.segmentations x WHERE x.owner = current_user ORDER BY x.name LOOP
        RETURN QUERY SELECT * FROM customer_analytics._segmentation_upgrade_views(s);
    END LOOP;
END $$;
COMMENT ON FUNCTION upgrade_views() IS
'Build, as 1.5 builds them, the current role''s campaign and segmentation views built before 1.5 that ALTER EXTENSION ... UPDATE could not (a user''s object depended on them, or the build failed); returns the relations made';

-- The update itself.  The rollups' privileges first, as each rollup
-- table's owner (an error stops the update: these let a role falsify what
-- others read); then every definition's views, as its owner, each in a
-- subtransaction: one that cannot be rebuilt keeps its views, with a
-- WARNING saying why and how to finish.
DO $$
DECLARE
    r customer_analytics.rollups;
    d record;
    owner oid;
BEGIN
    FOR r IN SELECT * FROM customer_analytics.rollups ORDER BY id LOOP
        SELECT c.relowner INTO owner FROM pg_class c WHERE c.oid = to_regclass(customer_analytics._rollup_table(r.id));
        IF owner IS NOT NULL THEN
            PERFORM customer_analytics._as_owner(pg_get_userbyid(owner), format(
                'SELECT customer_analytics._rollup_reset_grants(r) FROM customer_analytics.rollups r WHERE r.id = %s', r.id));
        END IF;
    END LOOP;
    FOR d IN SELECT 'campaign' AS kind, x.name, x.owner FROM customer_analytics.campaigns x
             UNION ALL
             SELECT 'segmentation', x.name, x.owner FROM customer_analytics.segmentations x
             ORDER BY 1, 2 LOOP
        BEGIN
            IF to_regrole(quote_ident(d.owner)) IS NULL THEN
                RAISE EXCEPTION 'its owner, role "%", does not exist', d.owner;
            END IF;
            PERFORM customer_analytics._as_owner(d.owner, format(
                'SELECT count(*) FROM customer_analytics.%1$ss x, customer_analytics._%1$s_upgrade_views(x) WHERE x.name = %2$L',
                d.kind, d.name));
        EXCEPTION WHEN OTHERS THEN
            RAISE WARNING '% "%" keeps its views built before 1.5: %', d.kind, d.name, SQLERRM
                USING HINT = format('Once that is fixed, its owner runs SELECT customer_analytics.upgrade_views(); (as %I).', d.owner);
        END;
    END LOOP;
END $$;
