-- catalogs.sql
--	The extension's catalogs: stored definitions, rollups, refresh state, schedules and history (tables, sequences, indexes, grants, comments).

CREATE TABLE customer_analytics.campaigns (
    name text NOT NULL,
    view_schema text NOT NULL,
    source_schema text NOT NULL,
    routes text[] NOT NULL,
    spend_window daterange NOT NULL,
    min_spend numeric NOT NULL,
    low_ticket_window daterange NOT NULL,
    low_ticket_below numeric NOT NULL,
    min_low_tickets integer NOT NULL,
    base_window daterange NOT NULL,
    recent_window daterange NOT NULL,
    decline_pct numeric NOT NULL,
    exclude_closed boolean NOT NULL,
    route_source text NOT NULL,
    revenue_window daterange NOT NULL,
    readers text[] DEFAULT '{}'::text[] NOT NULL,
    owner name DEFAULT CURRENT_USER NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    refreshed_at timestamp with time zone,
    refresh_ms numeric,
    target_rows bigint,
    monthly_rows bigint,
    rolling jsonb,
    CONSTRAINT campaign_name_format CHECK ((name ~ '^[a-z][a-z0-9_]{0,39}$'::text))
);

COMMENT ON TABLE customer_analytics.campaigns IS 'Promo campaigns: targeting parameters, pivot window, where their views live, last refresh';

COMMENT ON COLUMN customer_analytics.campaigns.rolling IS 'Rolling windows: {"as_of": "today" | date, "<window>": {"from": bound, "to": bound}}, a bound being as_of or month_start with an optional signed interval; NULL: fixed windows';

CREATE TABLE customer_analytics.campaign_launches (
    campaign text NOT NULL,
    holdout_share numeric NOT NULL,
    launched_on date NOT NULL,
    ended_on date,
    seed text NOT NULL,
    stratify_by text[] NOT NULL,
    launched_at timestamp with time zone DEFAULT now() NOT NULL,
    launched_by name DEFAULT CURRENT_USER NOT NULL,
    treatment_members bigint NOT NULL,
    holdout_members bigint NOT NULL,
    mde_baseline_window daterange,
    baseline_revenue_sd double precision,
    revenue_mde double precision,
    CONSTRAINT campaign_launch_holdout_share CHECK (((holdout_share > (0)::numeric) AND (holdout_share < (1)::numeric))),
    CONSTRAINT campaign_launch_end CHECK (((ended_on IS NULL) OR (ended_on > launched_on)))
);

COMMENT ON TABLE customer_analytics.campaign_launches IS 'Launched campaigns: the holdout design (share, seed, strata), the measurement dates and the minimum detectable effect on revenue computed at launch; every role reads it, only the campaign''s owner writes it';

COMMENT ON COLUMN customer_analytics.campaign_launches.mde_baseline_window IS 'the window of baseline revenue whose standard deviation gave revenue_mde: as many days just before launched_on as the campaign''s revenue_window';

COMMENT ON COLUMN customer_analytics.campaign_launches.revenue_mde IS 'minimum detectable effect on revenue per member (5 % two-sided, 80 % power) for the arms'' sizes and baseline_revenue_sd';

CREATE TABLE customer_analytics.campaign_members (
    campaign text NOT NULL,
    customer_code text NOT NULL,
    arm text NOT NULL,
    strata text[] NOT NULL,
    trade_name text,
    delivery_route text,
    csm text,
    target_reason text,
    is_low_ticket boolean,
    is_declining boolean,
    CONSTRAINT campaign_member_arm CHECK ((arm = ANY (ARRAY['treatment'::text, 'holdout'::text])))
);

COMMENT ON TABLE customer_analytics.campaign_members IS 'The frozen members of each launched campaign and their arm (treatment or holdout), with their stratify_by values (strata, in stratify_by order; NULL as the empty string) and the sheet''s columns as at launch; only the campaign''s owner reads them (readers read the <name>_contact_list view: the treatment arm only)';

CREATE TABLE customer_analytics.campaign_launch_state (
    campaign text NOT NULL,
    measure_window daterange NOT NULL,
    baseline_window daterange NOT NULL,
    response_view oid NOT NULL,
    response_filenode oid NOT NULL,
    state_snapshot pg_snapshot,
    applied_members bigint
);

COMMENT ON TABLE customer_analytics.campaign_launch_state IS 'Per launched campaign: what its <name>_response view was computed for (the windows, the view and its file), so that refresh_campaign() recomputes only the changed members'' rows after a delta refresh; not dumped (a restore recomputes the views in full)';

COMMENT ON COLUMN customer_analytics.campaign_launch_state.state_snapshot IS 'the campaign''s state snapshot (campaign_refresh_state.state_snapshot) whose order changes the response rows include; NULL: none (the next refresh recomputes them in full)';

COMMENT ON COLUMN customer_analytics.campaign_launch_state.applied_members IS 'members whose response rows the last refresh replaced in place (NULL: the views were recomputed in full; negative during a refresh: too many, recomputed in full)';

CREATE TABLE customer_analytics.segmentations (
    name text NOT NULL,
    view_schema text NOT NULL,
    source_schema text NOT NULL,
    segment text NOT NULL,
    k integer NOT NULL,
    feature_window daterange NOT NULL,
    as_of date NOT NULL,
    options jsonb NOT NULL,
    k_from integer NOT NULL,
    k_to integer NOT NULL,
    silhouette_sample integer NOT NULL,
    readers text[] DEFAULT '{}'::text[] NOT NULL,
    owner name DEFAULT CURRENT_USER NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    refreshed_at timestamp with time zone,
    refresh_ms numeric,
    member_rows bigint,
    rolling jsonb,
    CONSTRAINT segmentation_name_format CHECK ((name ~ '^[a-z][a-z0-9_]{0,39}$'::text))
);

COMMENT ON TABLE customer_analytics.segmentations IS 'k-means segmentations: which customers, k, features window, where their views live, last refresh';

COMMENT ON COLUMN customer_analytics.segmentations.rolling IS 'Rolling feature window: {"as_of": "today" | date, "feature_window": {"from": bound, "to": bound}}, as for campaigns; NULL: the fixed feature_window and as_of';

CREATE TABLE customer_analytics.rollups (
    source_schema text NOT NULL,
    id integer NOT NULL,
    order_date_is_date boolean NOT NULL,
    state text NOT NULL,
    generation bigint DEFAULT 1 NOT NULL,
    readers text[] DEFAULT '{}'::text[] NOT NULL,
    writers text[] DEFAULT '{}'::text[] NOT NULL,
    owner name DEFAULT CURRENT_USER NOT NULL,
    enabled_at timestamp with time zone DEFAULT now() NOT NULL,
    rebuilt_at timestamp with time zone,
    rebuild_ms numeric,
    rollup_rows bigint,
    rebuild_phases jsonb,
    disabled_reason text,
    CONSTRAINT rollup_state CHECK ((state = ANY (ARRAY['current'::text, 'disabled'::text])))
);

COMMENT ON TABLE customer_analytics.rollups IS 'Order rollups: per source schema, one row per confirmed order kept current by triggers; state, generation, last rebuild';

COMMENT ON COLUMN customer_analytics.rollups.rebuild_phases IS 'milliseconds per phase of the last rebuild: lock_ms (waiting for writers), triggers_ms, copy_ms (one scan of the lines), analyze_ms';

COMMENT ON COLUMN customer_analytics.rollups.disabled_reason IS 'why the rollup was disabled (a write path its triggers could not follow, a restore, disable_rollup()), and what to run; NULL when current';

CREATE TABLE customer_analytics.campaign_refresh_state (
    campaign text NOT NULL,
    fingerprint text NOT NULL,
    targets_view oid NOT NULL,
    generation bigint NOT NULL,
    snapshot pg_snapshot NOT NULL,
    monthly_view oid,
    state_table oid,
    month_state_table oid,
    state_snapshot pg_snapshot,
    shard_snapshots jsonb,
    view_rows jsonb
);

COMMENT ON TABLE customer_analytics.campaign_refresh_state IS 'Per campaign: the snapshot its targets view reflects, for incremental refresh';

COMMENT ON COLUMN customer_analytics.campaign_refresh_state.monthly_view IS 'the monthly view whose rows the snapshot describes (rebuilt view: new oid)';

COMMENT ON COLUMN customer_analytics.campaign_refresh_state.state_snapshot IS 'the snapshot the campaign''s per-customer state tables are exact as of (NULL: no state)';

COMMENT ON COLUMN customer_analytics.campaign_refresh_state.shard_snapshots IS 'sharded source with per-shard rollups: {"<server>": {"generation": g, "snapshot": "<the shard''s pg_snapshot>", "system_identifier": "<its cluster''s>"}}, what the views reflect on each shard (NULL: none)';

COMMENT ON COLUMN customer_analytics.campaign_refresh_state.view_rows IS 'the row counts recorded for the targets view and the sheet at the last refresh, each with the version of the view''s catalog row they hold for: {"targets": {"rows": n, "version": "..."}, "monthly": {...}} (NULL: counted again)';

CREATE TABLE customer_analytics.segmentation_refresh_state (
    segmentation text NOT NULL,
    feature_window daterange NOT NULL,
    state_table oid NOT NULL,
    sku_table oid,
    generation bigint,
    snapshot pg_snapshot,
    features_xid xid8,
    as_of date,
    shard_snapshots jsonb
);

COMMENT ON TABLE customer_analytics.segmentation_refresh_state IS 'Per segmentation: its per-customer feature state tables, the window and snapshot they are exact for (not dumped: the first refresh after a restore rebuilds the state)';

COMMENT ON COLUMN customer_analytics.segmentation_refresh_state.shard_snapshots IS 'sharded source with per-shard rollups: {"<server>": {"generation": g, "snapshot": "<the shard''s pg_snapshot>", "system_identifier": "<its cluster''s>"}}, what the feature state reflects on each shard (NULL: none)';

CREATE TABLE customer_analytics.dispatcher_runs (
    role name NOT NULL,
    last_run_at timestamp with time zone NOT NULL
);

COMMENT ON TABLE customer_analytics.dispatcher_runs IS 'When run_due_refreshes() last ran as each role in this database';

CREATE TABLE customer_analytics.refresh_history (
    id bigint NOT NULL,
    kind text NOT NULL,
    name text NOT NULL,
    owner name NOT NULL,
    started_at timestamp with time zone NOT NULL,
    duration_ms numeric NOT NULL,
    via text NOT NULL,
    mode text,
    rows bigint,
    succeeded boolean NOT NULL,
    error text,
    phases jsonb,
    CONSTRAINT refresh_history_check CHECK ((succeeded = (error IS NULL))),
    CONSTRAINT refresh_history_kind_check CHECK ((kind = ANY (ARRAY['campaign'::text, 'segmentation'::text]))),
    CONSTRAINT refresh_history_via_check CHECK ((via = ANY (ARRAY['function'::text, 'scheduled'::text])))
);

COMMENT ON TABLE customer_analytics.refresh_history IS 'One row per refresh of a campaign or segmentation (the last customer_analytics.refresh_history_keep, default 100, per definition); list_campaigns() and list_segmentations() show the last one';

COMMENT ON COLUMN customer_analytics.refresh_history.via IS 'function: refresh_campaign/refresh_segmentation/alter_campaign; scheduled: run_scheduled_refresh (pg_cron)';

COMMENT ON COLUMN customer_analytics.refresh_history.mode IS 'build, full or incremental or delta, and why (NULL for a failed refresh)';

COMMENT ON COLUMN customer_analytics.refresh_history.rows IS 'rows of <name>_targets (campaign) or <name>_members (segmentation)';

COMMENT ON COLUMN customer_analytics.refresh_history.error IS 'SQLSTATE: message of a failed refresh, or ''interrupted: ...'' for a dispatcher''s run whose process ended before it finished; NULL when it succeeded';

COMMENT ON COLUMN customer_analytics.refresh_history.phases IS 'what took the time: each phase of the build or refresh (as pg_stat_activity showed it while it ran) and its duration, [{"phase": ..., "ms": ...}]';

CREATE SEQUENCE customer_analytics.refresh_history_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE customer_analytics.refresh_history_id_seq OWNED BY customer_analytics.refresh_history.id;

CREATE TABLE customer_analytics.refresh_schedules (
    kind text NOT NULL,
    name text NOT NULL,
    owner name NOT NULL,
    schedule text NOT NULL,
    runner text NOT NULL,
    run_as name NOT NULL,
    job_id bigint,
    next_run timestamp with time zone,
    scheduled_at timestamp with time zone DEFAULT now() NOT NULL,
    claimed_at timestamp with time zone,
    claimed_pid integer,
    campaign text GENERATED ALWAYS AS (
CASE
    WHEN (kind = 'campaign'::text) THEN name
    ELSE NULL::text
END) STORED,
    segmentation text GENERATED ALWAYS AS (
CASE
    WHEN (kind = 'segmentation'::text) THEN name
    ELSE NULL::text
END) STORED,
    CONSTRAINT refresh_schedules_check CHECK (((runner = 'pg_cron'::text) = (job_id IS NOT NULL))),
    CONSTRAINT refresh_schedules_claim_check CHECK (((claimed_at IS NULL) = (claimed_pid IS NULL))),
    CONSTRAINT refresh_schedules_kind_check CHECK ((kind = ANY (ARRAY['campaign'::text, 'segmentation'::text]))),
    CONSTRAINT refresh_schedules_runner_check CHECK ((runner = ANY (ARRAY['pg_cron'::text, 'dispatcher'::text])))
);

COMMENT ON TABLE customer_analytics.refresh_schedules IS 'Each scheduled refresh: its cron schedule, who runs it (a pg_cron job here, or the dispatcher run_due_refreshes() as role run_as) and, for the dispatcher, when it is next due and the run in progress';

COMMENT ON COLUMN customer_analytics.refresh_schedules.runner IS 'pg_cron: a pg_cron job in this database (job_id); dispatcher: customer_analytics.run_due_refreshes() run as run_as';

COMMENT ON COLUMN customer_analytics.refresh_schedules.run_as IS 'the role the refresh runs as: the role that scheduled it (its pg_cron job''s user, or the dispatcher''s role)';

COMMENT ON COLUMN customer_analytics.refresh_schedules.job_id IS 'pg_cron: the id of the job schedule_*_refresh() made (checked against cron.job when written, and again before it is unscheduled)';

COMMENT ON COLUMN customer_analytics.refresh_schedules.next_run IS 'dispatcher: when the refresh is next due (in the past: no dispatcher has run since); pg_cron: NULL (list_campaigns() computes it)';

COMMENT ON COLUMN customer_analytics.refresh_schedules.claimed_at IS 'when the run now in progress started (process claimed_pid: a dispatcher, or a pg_cron job''s run_scheduled_refresh); NULL when none runs.  A claim whose process is gone is an interrupted run: list_*() show it, the next run of the role (dispatcher or run_scheduled_refresh) records it';

CREATE SEQUENCE customer_analytics.rollup_generation_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER TABLE ONLY customer_analytics.refresh_history ALTER COLUMN id SET DEFAULT nextval('customer_analytics.refresh_history_id_seq'::regclass);

ALTER TABLE ONLY customer_analytics.campaign_launches
    ADD CONSTRAINT campaign_launches_pkey PRIMARY KEY (campaign);

ALTER TABLE ONLY customer_analytics.campaign_members
    ADD CONSTRAINT campaign_members_pkey PRIMARY KEY (campaign, customer_code);

ALTER TABLE ONLY customer_analytics.campaign_launch_state
    ADD CONSTRAINT campaign_launch_state_pkey PRIMARY KEY (campaign);

ALTER TABLE ONLY customer_analytics.campaign_refresh_state
    ADD CONSTRAINT campaign_refresh_state_pkey PRIMARY KEY (campaign);

ALTER TABLE ONLY customer_analytics.campaigns
    ADD CONSTRAINT campaigns_name_owner_key UNIQUE (name, owner);

ALTER TABLE ONLY customer_analytics.campaigns
    ADD CONSTRAINT campaigns_pkey PRIMARY KEY (name);

ALTER TABLE ONLY customer_analytics.dispatcher_runs
    ADD CONSTRAINT dispatcher_runs_pkey PRIMARY KEY (role);

ALTER TABLE ONLY customer_analytics.refresh_history
    ADD CONSTRAINT refresh_history_pkey PRIMARY KEY (id);

ALTER TABLE ONLY customer_analytics.refresh_schedules
    ADD CONSTRAINT refresh_schedules_pkey PRIMARY KEY (kind, name);

ALTER TABLE ONLY customer_analytics.rollups
    ADD CONSTRAINT rollups_id_key UNIQUE (id);

ALTER TABLE ONLY customer_analytics.rollups
    ADD CONSTRAINT rollups_pkey PRIMARY KEY (source_schema);

ALTER TABLE ONLY customer_analytics.segmentation_refresh_state
    ADD CONSTRAINT segmentation_refresh_state_pkey PRIMARY KEY (segmentation);

ALTER TABLE ONLY customer_analytics.segmentations
    ADD CONSTRAINT segmentations_name_owner_key UNIQUE (name, owner);

ALTER TABLE ONLY customer_analytics.segmentations
    ADD CONSTRAINT segmentations_pkey PRIMARY KEY (name);

CREATE INDEX refresh_history_definition ON customer_analytics.refresh_history USING btree (kind, name, id);

ALTER TABLE ONLY customer_analytics.campaign_launches
    ADD CONSTRAINT campaign_launches_campaign_fkey FOREIGN KEY (campaign) REFERENCES customer_analytics.campaigns(name) ON UPDATE CASCADE ON DELETE CASCADE;

ALTER TABLE ONLY customer_analytics.campaign_members
    ADD CONSTRAINT campaign_members_campaign_fkey FOREIGN KEY (campaign) REFERENCES customer_analytics.campaign_launches(campaign) ON UPDATE CASCADE ON DELETE CASCADE;

ALTER TABLE ONLY customer_analytics.campaign_launch_state
    ADD CONSTRAINT campaign_launch_state_campaign_fkey FOREIGN KEY (campaign) REFERENCES customer_analytics.campaign_launches(campaign) ON UPDATE CASCADE ON DELETE CASCADE;

ALTER TABLE ONLY customer_analytics.campaign_refresh_state
    ADD CONSTRAINT campaign_refresh_state_campaign_fkey FOREIGN KEY (campaign) REFERENCES customer_analytics.campaigns(name) ON UPDATE CASCADE ON DELETE CASCADE;

ALTER TABLE ONLY customer_analytics.refresh_schedules
    ADD CONSTRAINT refresh_schedules_campaign_owner_fkey FOREIGN KEY (campaign, owner) REFERENCES customer_analytics.campaigns(name, owner) ON DELETE CASCADE;

ALTER TABLE ONLY customer_analytics.refresh_schedules
    ADD CONSTRAINT refresh_schedules_segmentation_owner_fkey FOREIGN KEY (segmentation, owner) REFERENCES customer_analytics.segmentations(name, owner) ON DELETE CASCADE;

ALTER TABLE ONLY customer_analytics.segmentation_refresh_state
    ADD CONSTRAINT segmentation_refresh_state_segmentation_fkey FOREIGN KEY (segmentation) REFERENCES customer_analytics.segmentations(name) ON UPDATE CASCADE ON DELETE CASCADE;

GRANT USAGE ON SCHEMA customer_analytics TO PUBLIC;

-- The campaigns' and segmentations' per-customer state tables live here,
-- out of the view schemas BI users browse (issue 24): a member of the
-- extension, no privilege for PUBLIC; a definition's owner needs USAGE and
-- CREATE on it (the DBA grants them, as for a view schema).
CREATE SCHEMA customer_analytics_state;

COMMENT ON SCHEMA customer_analytics_state IS 'customer_analytics: the per-customer state of campaigns and segmentations (internal tables, owned by each definition''s owner, granted to no one; dropped with their definition); a definition''s owner needs USAGE and CREATE here';

-- The schema of every definition's state tables.
CREATE FUNCTION customer_analytics._state_schema() RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT 'customer_analytics_state'::text $$;

COMMENT ON FUNCTION customer_analytics._state_schema() IS 'internal: the schema of the campaigns'' and segmentations'' state tables (customer_analytics_state)';

-- Refuse (42501) when role lacks one of privileges on schema, which it
-- needs for purpose (the end of the message: "to build the campaign's
-- views"), with the GRANT its owner runs as HINT.  The one check of a
-- schema grant: the view schemas' (_check_view_grants) and the state
-- schema's (_require_state_schema).  (USAGE and CREATE are granted
-- together: whoever needs one of them on these schemas needs both.)
CREATE FUNCTION customer_analytics._require_schema_privileges(role name, schema text, privileges text[], purpose text) RETURNS void
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    missing text;
BEGIN
    SELECT string_agg(p, ' and ' ORDER BY p DESC) INTO missing
      FROM unnest(privileges) p WHERE NOT has_schema_privilege(role, schema, p);
    IF missing IS NOT NULL THEN
        RAISE EXCEPTION 'role "%" needs % on schema "%" %', role, missing, schema, purpose
            USING ERRCODE = 'insufficient_privilege',
                  HINT = format('The schema''s owner (%s) runs: GRANT USAGE, CREATE ON SCHEMA %I TO %I;',
                                (SELECT n.nspowner::regrole::text FROM pg_namespace n WHERE n.nspname = schema),
                                schema, role);
    END IF;
END $$;

COMMENT ON FUNCTION customer_analytics._require_schema_privileges(role name, schema text, privileges text[], purpose text) IS 'internal: refuse (42501, the GRANT as HINT) when a role lacks one of the privileges on a schema';

-- Refuse (42501) when the current role lacks one of privileges on the
-- state schema, where its definitions keep their state.
CREATE FUNCTION customer_analytics._require_state_schema(privileges text[]) RETURNS void
    LANGUAGE sql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
    SELECT customer_analytics._require_schema_privileges(current_user, customer_analytics._state_schema(), privileges,
                                                         'to keep its campaigns'' and segmentations'' state')
$$;

COMMENT ON FUNCTION customer_analytics._require_state_schema(privileges text[]) IS 'internal: refuse (42501, the GRANT as HINT) when the current role lacks one of the privileges on the state schema';

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE customer_analytics.campaigns TO PUBLIC;

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE customer_analytics.campaign_launches TO PUBLIC;

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE customer_analytics.campaign_members TO PUBLIC;

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE customer_analytics.campaign_launch_state TO PUBLIC;

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE customer_analytics.segmentations TO PUBLIC;

GRANT SELECT ON TABLE customer_analytics.rollups TO PUBLIC;

GRANT UPDATE(state) ON TABLE customer_analytics.rollups TO PUBLIC;

GRANT UPDATE(generation) ON TABLE customer_analytics.rollups TO PUBLIC;

GRANT UPDATE(disabled_reason) ON TABLE customer_analytics.rollups TO PUBLIC;

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE customer_analytics.campaign_refresh_state TO PUBLIC;

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE customer_analytics.segmentation_refresh_state TO PUBLIC;

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE customer_analytics.dispatcher_runs TO PUBLIC;

GRANT SELECT,INSERT,DELETE ON TABLE customer_analytics.refresh_history TO PUBLIC;

GRANT USAGE ON SEQUENCE customer_analytics.refresh_history_id_seq TO PUBLIC;

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE customer_analytics.refresh_schedules TO PUBLIC;

GRANT USAGE ON SEQUENCE customer_analytics.rollup_generation_seq TO PUBLIC;

-- pg_dump dumps the rows of the stored definitions (and the generation
-- sequence) with the extension: a restore brings the definitions back.
SELECT pg_catalog.pg_extension_config_dump('customer_analytics.campaigns', '');
SELECT pg_catalog.pg_extension_config_dump('customer_analytics.segmentations', '');
SELECT pg_catalog.pg_extension_config_dump('customer_analytics.campaign_launches', '');
SELECT pg_catalog.pg_extension_config_dump('customer_analytics.campaign_members', '');
SELECT pg_catalog.pg_extension_config_dump('customer_analytics.rollups', '');
SELECT pg_catalog.pg_extension_config_dump('customer_analytics.refresh_schedules', '');
SELECT pg_catalog.pg_extension_config_dump('customer_analytics.rollup_generation_seq', '');
