-- rollup.sql
--	The order rollup: one row per confirmed order, kept by triggers as the rollup's owner (rollup_trigger.c, order_rollup.c).

-- the whole data contract of a source, with the reading functions' errors;
-- true when order_date is a date column
CREATE FUNCTION customer_analytics._check_rollup_source(source_schema text) RETURNS boolean
    LANGUAGE c STABLE STRICT
    AS 'MODULE_PATHNAME', 'check_rollup_source';

-- disable_rollup()'s work, as the rollup's owner.
CREATE FUNCTION customer_analytics._disable_rollup_as_owner(source_schema text) RETURNS customer_analytics.rollups
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    r customer_analytics.rollups := customer_analytics._rollup(source_schema);
BEGIN
    PERFORM customer_analytics._require_owner_context('rollup', r.source_schema, r.owner);
    PERFORM customer_analytics._rollup_drop_triggers(r);
    UPDATE customer_analytics.rollups x SET state = 'disabled', disabled_reason = 'disable_rollup() was run'
     WHERE x.id = r.id RETURNING * INTO r;
    RAISE NOTICE 'order rollup of "%" disabled: functions read the source tables until customer_analytics.rebuild_rollup(%)',
        r.source_schema, quote_literal(r.source_schema);
    RETURN r;
END $$;

-- drop_rollup()'s work, as the rollup's owner.
CREATE FUNCTION customer_analytics._drop_rollup_as_owner(source_schema text) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    r customer_analytics.rollups := customer_analytics._rollup(source_schema);
    views text;
BEGIN
    PERFORM customer_analytics._require_owner_context('rollup', r.source_schema, r.owner);
    -- a shard's view of its changes (create_rollup_changes_view) reads the
    -- table of changes: say so rather than DROP's dependency error
    SELECT string_agg(DISTINCT w.ev_class::regclass::text, ', ') INTO views
      FROM pg_depend d JOIN pg_rewrite w ON w.oid = d.objid
     WHERE d.classid = 'pg_rewrite'::regclass AND d.refclassid = 'pg_class'::regclass
       AND d.refobjid = to_regclass(customer_analytics._rollup_dirty_table(r.id));
    IF views IS NOT NULL THEN
        RAISE EXCEPTION 'cannot drop the order rollup of "%": view % reads its recorded changes', r.source_schema, views
            USING ERRCODE = 'dependent_objects_still_exist',
                  HINT = format('Drop the view first (DROP VIEW %s), or make it read rollup_order_changes(%L) instead.', views, r.source_schema);
    END IF;
    PERFORM customer_analytics._rollup_drop_triggers(r);
    EXECUTE format('DROP TABLE IF EXISTS %s, %s, %s', customer_analytics._rollup_table(r.id),
                   customer_analytics._rollup_dirty_table(r.id), customer_analytics._rollup_keys_table(r.id));
    DELETE FROM customer_analytics.rollups x WHERE x.id = r.id;
    -- the campaigns' incremental states described this rollup: gone with it
    DELETE FROM customer_analytics.campaign_refresh_state s
     USING customer_analytics.campaigns c
     WHERE c.name = s.campaign AND c.source_schema = r.source_schema;
END $$;

-- DROP EXTENSION customer_analytics unschedules its pg_cron jobs first
-- (extension_drop.c): they would otherwise fail on every run.
CREATE FUNCTION customer_analytics._drop_watch() RETURNS event_trigger
    LANGUAGE c
    AS 'MODULE_PATHNAME', 'extension_drop_watch';

-- Forget the dirty rows every campaign and segmentation of the source has
-- seen: in the snapshot of a campaign's views and, when it keeps state, of
-- its state; in the snapshot of a segmentation's feature state.  By an
-- index scan whatever the estimates: it marks the index entries of rows
-- dead to everyone (an aborted bulk write's, say) as such, so the next
-- refresh's prune steps over them; a bitmap or sequential scan would visit
-- their heap pages again at every refresh until a VACUUM.
CREATE FUNCTION customer_analytics._prune_dirty(r customer_analytics.rollups) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    SET enable_seqscan TO 'off'
    SET enable_bitmapscan TO 'off'
    AS $_$
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
END $_$;

-- rebuild_rollup()'s work, as the rollup's owner: the keys table, the
-- triggers, the copy, the privileges reset.
CREATE FUNCTION customer_analytics._rebuild_rollup_as_owner(source_schema text) RETURNS customer_analytics.rollups
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
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
       SET state = 'current', disabled_reason = NULL,
           generation = nextval('customer_analytics.rollup_generation_seq'), rebuilt_at = now(),
           rebuild_ms = round(extract(epoch FROM clock_timestamp() - started) * 1000, 1),
           rollup_rows = n, rebuild_phases = phases
     WHERE x.id = r.id
    RETURNING * INTO r;
    -- its phases are in rebuild_phases; a refresh later in the transaction
    -- has its own
    PERFORM customer_analytics._progress_phases();
    RAISE NOTICE 'order rollup of "%" rebuilt: % orders in %', r.source_schema, n, customer_analytics._rollup_table(r.id);
    RETURN r;
END $_$;

-- The owner's checks before a rollup is built, as errors: the triggers
-- would otherwise disable it at the first write.
CREATE FUNCTION customer_analytics._require_rollup_source(source_schema text) RETURNS void
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
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
CREATE FUNCTION customer_analytics._reset_rollup_changes_as_owner(source_schema text) RETURNS bigint
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
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

-- A source's rollup (NULL: the GUC's source), or an error that says how to create it.
CREATE FUNCTION customer_analytics._rollup(source_schema text) RETURNS customer_analytics.rollups
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    r customer_analytics.rollups;
BEGIN
    source_schema := customer_analytics._source_schema(source_schema);
    SELECT * INTO r FROM customer_analytics.rollups x WHERE x.source_schema = _rollup.source_schema;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'source schema "%" has no order rollup', source_schema
            USING ERRCODE = 'undefined_object',
                  HINT = 'Create it with SELECT customer_analytics.enable_rollup(''' || source_schema || ''').';
    END IF;
    RETURN r;
END $$;

-- The dirty table's order rows: the old (-1) and new (+1) row of each
-- changed order, as the rollup held it (date, total, quantity, codes), and
-- the cause of a row marking every customer changed.  Added to existing
-- rollups here, and by rebuild_rollup to any that lacks them.
CREATE FUNCTION customer_analytics._rollup_add_delta_columns(r customer_analytics.rollups) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
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
    -- why every customer is marked changed (new in 1.6; NULL before)
    IF NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = customer_analytics._rollup_dirty_table(r.id)::regclass
                      AND a.attname = 'cause' AND NOT a.attisdropped) THEN
        EXECUTE format('ALTER TABLE %s ADD COLUMN cause text', customer_analytics._rollup_dirty_table(r.id));
        EXECUTE format('COMMENT ON COLUMN %s.cause IS %L', customer_analytics._rollup_dirty_table(r.id),
                       'for a row marking every customer changed (customer_code NULL): truncate (TRUNCATE of a source table) '
                       'or rewrite (ALTER TABLE changed its rows); NULL: recorded before 1.6, or a customer''s or order''s row');
    END IF;
END $$;

-- (Re)create the keys table a rollup's triggers lock orders in, owned by the
-- rollup's owner like its other tables, and give the dirty table its
-- order-row columns; rebuild_rollup (and so enable_rollup) calls it.
CREATE FUNCTION customer_analytics._rollup_create_keys_table(r customer_analytics.rollups) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
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

-- (Re)create a rollup's triggers on every watched relation.
CREATE FUNCTION customer_analytics._rollup_create_triggers(r customer_analytics.rollups) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    stmt text;
BEGIN
    PERFORM customer_analytics._rollup_drop_triggers(r);
    FOREACH stmt IN ARRAY customer_analytics._rollup_missing_triggers_sql(r) LOOP
        EXECUTE stmt;
    END LOOP;
END $$;

-- The event trigger (rollup_trigger.c): after CREATE TABLE or ALTER TABLE
-- on a current rollup's source table or one of its partitions, the new
-- partitions get the triggers and, after ALTER TABLE, every order is
-- recomputed, as the rollup's owner.  ENABLE ALWAYS: DDL applied with
-- session_replication_role = replica is followed too.
CREATE FUNCTION customer_analytics._rollup_ddl_watch() RETURNS event_trigger
    LANGUAGE c
    AS 'MODULE_PATHNAME', 'rollup_ddl_watch';

-- The name of a rollup's table of recorded order changes, rollup_dirty_<id>.
CREATE FUNCTION customer_analytics._rollup_dirty_table(id integer) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT 'customer_analytics.rollup_dirty_' || id $$;

-- Drop a rollup's triggers wherever they are, partitions detached since
-- included (the row trigger's clones go with their parent's).
CREATE FUNCTION customer_analytics._rollup_drop_triggers(r customer_analytics.rollups) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
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

-- Is the rollup usable by this caller, instead of the source tables?  The
-- reading functions ask this (C, order_rollup.c) and say which at DEBUG1.
-- The rollup bypasses the source tables' privileges and row-level security,
-- so it is read only by callers who could read the same rows there.
CREATE FUNCTION customer_analytics._rollup_for_reading(source_schema text, OUT rollup text, OUT reason text) RETURNS record
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
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
        reason := 'the rollup is ' || r.state || COALESCE(' (' || r.disabled_reason || ')', '')
                  || ': customer_analytics.rebuild_rollup() makes it current';
        RETURN;
    END IF;
    -- every rule below plainly met, read from the catalog caches
    -- (_rollup_changes_intact: the same rules and SELECT on the table of
    -- changes; a refresh asks this up to three times): no query per rule
    IF customer_analytics._rollup_changes_intact(r.source_schema) THEN
        rollup := customer_analytics._rollup_table(r.id);
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

-- The name of a rollup's keys table, rollup_keys_<id>, on which writers of
-- one order take turns.
CREATE FUNCTION customer_analytics._rollup_keys_table(id integer) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT 'customer_analytics.rollup_keys_' || id $$;

-- The statements creating the rollup's triggers that are missing: on every
-- watched relation one statement trigger per kind of write (a write that
-- names a partition fires only the partition's statement triggers), ENABLE
-- ALWAYS so that session_replication_role = replica does not skip them; on
-- each source table one row trigger for logical replication's apply worker
-- (which fires row triggers only), ENABLE REPLICA, which PostgreSQL clones
-- onto every partition, present and future.
CREATE FUNCTION customer_analytics._rollup_missing_triggers_sql(r customer_analytics.rollups) RETURNS text[]
    LANGUAGE sql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
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

-- Set the privileges on a rollup's tables to what 1.5 gives: its owner
-- keeps its own; readers get SELECT on the rollup and dirty tables; no
-- other role may write any of them (INSERT, UPDATE, DELETE, TRUNCATE,
-- REFERENCES and TRIGGER are revoked from every other role and PUBLIC,
-- column privileges included), writers that are not readers keep nothing,
-- and the keys table is the owner's alone.  SELECT given by hand to other
-- roles stays: it changes nothing anyone else reads.  Run by the rollup's
-- owner (rebuild_rollup) or a superuser.
CREATE FUNCTION customer_analytics._rollup_reset_grants(r customer_analytics.rollups) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
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

COMMENT ON FUNCTION customer_analytics._rollup_reset_grants(r customer_analytics.rollups) IS 'Reset the privileges on a rollup''s tables to what enable_rollup gives (SELECT for readers; no role but the owner may write them)';

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
CREATE FUNCTION customer_analytics._rollup_resync_sql(r customer_analytics.rollups, keys text) RETURNS text[]
    LANGUAGE sql IMMUTABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
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
$_$;

-- The rollup's rows for the confirmed orders whose keys the relation `keys`
-- (SQL text with columns order_type, order_number in the source's types)
-- lists; every confirmed order when keys is NULL.  The same sums as the
-- reading functions' source query.  A full build joins and groups in bulk;
-- a set of keys sums each order's lines through the lines' key index.
CREATE FUNCTION customer_analytics._rollup_rows_sql(r customer_analytics.rollups, keys text) RETURNS text
    LANGUAGE sql IMMUTABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
    SELECT CASE WHEN keys IS NULL THEN format(
        'SELECT o.order_type::text, o.order_number::text, o.customer_code::text, o.delivery_route::text,'
        ' customer_analytics._order_date_or_null(o.order_date%1$s),'
        ' CASE WHEN customer_analytics._order_date_or_null(o.order_date%1$s) IS NULL THEN o.order_date::text END,'
        ' sum(l.pretax_subtotal)::numeric, count(l.order_number)::int, sum(l.quantity)::numeric,'
        ' array_agg(l.product_code::text) FILTER (WHERE l.product_code IS NOT NULL)'
        ' FROM %2$I.sales_orders o'
        ' LEFT JOIN %2$I.sales_order_lines l ON l.order_type = o.order_type AND l.order_number = o.order_number'
        ' WHERE o.confirmed_code = ''Y'''
        ' GROUP BY o.order_type, o.order_number, o.customer_code, o.delivery_route, o.order_date',
        CASE WHEN r.order_date_is_date THEN '' ELSE '::text' END, r.source_schema)
    ELSE format(
        'SELECT o.order_type::text, o.order_number::text, o.customer_code::text, o.delivery_route::text,'
        ' customer_analytics._order_date_or_null(o.order_date%1$s),'
        ' CASE WHEN customer_analytics._order_date_or_null(o.order_date%1$s) IS NULL THEN o.order_date::text END,'
        ' l.total, l.line_count, l.quantity, l.product_codes'
        ' FROM %2$I.sales_orders o'
        ' JOIN (SELECT DISTINCT order_type, order_number FROM (%3$s) k0) k'
        ' ON o.order_type = k.order_type AND o.order_number = k.order_number,'
        ' LATERAL (SELECT sum(l.pretax_subtotal)::numeric AS total, count(*)::int AS line_count,'
        ' sum(l.quantity)::numeric AS quantity,'
        ' array_agg(l.product_code::text) FILTER (WHERE l.product_code IS NOT NULL) AS product_codes'
        ' FROM %2$I.sales_order_lines l WHERE l.order_type = o.order_type AND l.order_number = o.order_number) l'
        ' WHERE o.confirmed_code = ''Y''',
        CASE WHEN r.order_date_is_date THEN '' ELSE '::text' END, r.source_schema, keys) END
$_$;

-- Why the current role (the rollup's owner, in the trigger) could not keep
-- the rollup exact, or NULL: it must read every row of the three source
-- tables, and reading them must run no code of a role it does not trust.
CREATE FUNCTION customer_analytics._rollup_source_problem(source_schema text) RETURNS text
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
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

-- Which of the source's three tables a relation is, or belongs to as a
-- partition at any depth; NULL for anything else (a detached partition).
CREATE FUNCTION customer_analytics._rollup_source_table(r customer_analytics.rollups, rel oid) RETURNS text
    LANGUAGE sql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
    SELECT t FROM unnest(ARRAY['customers', 'sales_orders', 'sales_order_lines']) t
     WHERE to_regclass(format('%I.%I', r.source_schema, t)) IN
           (SELECT rel UNION ALL SELECT relid FROM pg_partition_ancestors(rel))  -- none for a plain table
$$;

-- The source table a current rollup lost (renamed, or moved to another
-- schema) whose triggers relation rel carries: the name its source schema
-- no longer has, or NULL.
CREATE FUNCTION customer_analytics._rollup_lost_table(r customer_analytics.rollups, rel oid) RETURNS text
    LANGUAGE sql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
    SELECT t FROM unnest(ARRAY['customers', 'sales_orders', 'sales_order_lines']) WITH ORDINALITY AS x(t, n)
     WHERE to_regclass(format('%I.%I', r.source_schema, x.t)) IS NULL
       AND EXISTS (SELECT 1 FROM pg_trigger g WHERE g.tgrelid = rel AND g.tgname LIKE 'customer\_analytics\_rollup\_%')
     ORDER BY x.n LIMIT 1
$$;

-- The triggers: same name and signature as 1.1's plpgsql function for the
-- statement trigger, so existing triggers keep pointing at it.
CREATE FUNCTION customer_analytics._rollup_sync() RETURNS trigger
    LANGUAGE c
    AS 'MODULE_PATHNAME', 'rollup_sync_trigger';

-- The deferred row trigger that brings the rollup up to date for the rows
-- logical replication applied (rollup_trigger.c).
CREATE FUNCTION customer_analytics._rollup_sync_flush() RETURNS trigger
    LANGUAGE c
    AS 'MODULE_PATHNAME', 'rollup_sync_flush_trigger';

-- The row trigger that remembers the keys of rows logical replication
-- applies (rollup_trigger.c).
CREATE FUNCTION customer_analytics._rollup_sync_row() RETURNS trigger
    LANGUAGE c
    AS 'MODULE_PATHNAME', 'rollup_sync_row_trigger';

-- The upkeep's statements after DDL on a source relation (op the command
-- tag, CREATE TABLE or ALTER TABLE): a new partition gets the triggers; an
-- ALTER TABLE (ATTACH, DETACH, a rewrite that changes values) changed rows
-- no trigger saw: every order is recomputed and every customer marked
-- changed.
CREATE FUNCTION customer_analytics._rollup_sync_ddl_sql(r customer_analytics.rollups, op text) RETURNS text[]
    LANGUAGE sql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
    SELECT customer_analytics._rollup_missing_triggers_sql(r)
        || CASE WHEN op = 'ALTER TABLE' THEN ARRAY[
               format('DELETE FROM %s', customer_analytics._rollup_table(r.id)),
               format('INSERT INTO %s %s', customer_analytics._rollup_table(r.id),
                      customer_analytics._rollup_rows_sql(r, NULL)),
               format('INSERT INTO %s (customer_code, cause) VALUES (NULL, ''rewrite'')',
                      customer_analytics._rollup_dirty_table(r.id))]
           ELSE '{}' END
$$;

-- The upkeep's answer to a rollup it can no longer keep exact (problem, and
-- a hint saying what to do): disabled, with a warning, rather than
-- refusing the write.
CREATE FUNCTION customer_analytics._rollup_sync_disable(r customer_analytics.rollups, problem text, hint text) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
    UPDATE customer_analytics.rollups x SET state = 'disabled', disabled_reason = problem WHERE x.id = r.id;
    RAISE WARNING 'order rollup of "%" disabled: %', r.source_schema, problem
        USING HINT = hint;
END $$;

-- The upkeep's statements for rows written in source table tab (op INSERT,
-- UPDATE or DELETE; rows_sql, from the row trigger, lists the keys of the
-- row written, else the statement trigger's transition tables do).
CREATE FUNCTION customer_analytics._rollup_sync_rows_sql(r customer_analytics.rollups, op text, tab text, rows_sql text) RETURNS text[]
    LANGUAGE sql IMMUTABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
    SELECT CASE
        -- the rollup keeps no customer data; changed customers are dirty
        WHEN tab = 'customers' THEN
            ARRAY[format('INSERT INTO %s (customer_code) SELECT DISTINCT c FROM (%s) k WHERE c IS NOT NULL',
                         customer_analytics._rollup_dirty_table(r.id),
                         CASE WHEN rows_sql IS NULL THEN customer_analytics._transition_rows(op, 'customer_code::text AS c')
                              ELSE format('SELECT customer_code::text AS c FROM (%s) x', rows_sql) END)]
        -- orders or lines: the orders they name are recomputed from the source
        ELSE customer_analytics._rollup_resync_sql(r,
                 CASE WHEN rows_sql IS NULL THEN customer_analytics._transition_rows(op, 'order_type, order_number')
                      ELSE format('SELECT order_type, order_number FROM (%s) x', rows_sql) END)
    END
$$;

-- The upkeep's statements after a TRUNCATE of source table tab: every
-- order may be affected: resync them all, and mark every customer dirty (a
-- NULL code) so that campaigns recompute in full.
CREATE FUNCTION customer_analytics._rollup_sync_truncate_sql(r customer_analytics.rollups, tab text) RETURNS text[]
    LANGUAGE sql IMMUTABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
    SELECT CASE WHEN tab <> 'customers' THEN ARRAY[
               format('DELETE FROM %s', customer_analytics._rollup_table(r.id)),
               format('INSERT INTO %s %s', customer_analytics._rollup_table(r.id),
                      customer_analytics._rollup_rows_sql(r, NULL))] ELSE '{}' END
           || format('INSERT INTO %s (customer_code, cause) VALUES (NULL, ''truncate'')',
                     customer_analytics._rollup_dirty_table(r.id))
$$;

-- Why every customer of rollup r counts as changed since the snapshot
-- `since`, in the words of a refresh's mode ("full (<this>)"): the causes
-- of the dirty rows with no customer that `since` does not see, TRUNCATE
-- (_rollup_sync_truncate_sql) or an ALTER TABLE that changed rows
-- (_rollup_sync_ddl_sql).  The one place these words are made: the
-- campaigns' and segmentations' refreshes call it.
CREATE FUNCTION customer_analytics._rollup_full_reason(r customer_analytics.rollups, since pg_snapshot) RETURNS text
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
DECLARE
    causes text[];
BEGIN
    EXECUTE format('SELECT array_agg(DISTINCT COALESCE(x.cause, ''unknown'') ORDER BY COALESCE(x.cause, ''unknown'')) FROM %s x'
                   ' WHERE x.customer_code IS NULL AND x.xid >= pg_snapshot_xmin($1) AND NOT pg_visible_in_snapshot(x.xid, $1)',
                   customer_analytics._rollup_dirty_table(r.id))
       INTO causes USING since;
    RETURN CASE
        WHEN causes = '{truncate}' THEN 'a source table was truncated'
        WHEN causes = '{rewrite}' THEN 'a source table was rewritten: ALTER TABLE ... changed its rows'
        WHEN causes = '{rewrite,truncate}'
            THEN 'a source table was truncated, and one rewritten: ALTER TABLE ... changed its rows'
        -- marks recorded before 1.6 say no cause
        ELSE 'a source table was truncated or rewritten (TRUNCATE, or ALTER TABLE attaching or detaching a partition or changing a column''s type)'
    END;
END $_$;

-- What the upkeep runs for one event (rollup_trigger.c calls it as the
-- rollup's owner and executes the statements where a statement trigger's
-- transition tables new_rows / old_rows are visible).  op is the write
-- (INSERT, UPDATE, DELETE, TRUNCATE), the DDL's command tag, ALTER TABLE
-- TRIGGERS, RENAME COLUMN or RENAME TABLE (rollup_trigger.c's
-- alter_table_effect); rel is the
-- relation written or altered; rows_sql, from the row trigger, lists the
-- keys of the row written, instead of the transition tables.  A rollup whose
-- owner cannot keep it exact is disabled, with a warning, rather than
-- refusing the write (_rollup_sync_disable).  The statements, by event:
-- _rollup_sync_ddl_sql, _rollup_sync_truncate_sql, _rollup_sync_rows_sql.
CREATE FUNCTION customer_analytics._rollup_sync_sql(rollup_id integer, op text, rel oid, rows_sql text) RETURNS text[]
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    SET row_security TO 'on'
    AS $$
DECLARE
    r customer_analytics.rollups;
    problem text;
    tab text;
BEGIN
    SELECT * INTO r FROM customer_analytics.rollups WHERE id = rollup_id;
    IF NOT FOUND OR r.state <> 'current' THEN
        RETURN '{}';
    END IF;
    IF op = 'RENAME TABLE' THEN
        -- a source table renamed or moved to another schema (a partition's
        -- new name is nothing to the rollup): the source lacks it, and the
        -- writes to it under its new name would go unseen; the rename
        -- itself goes through
        tab := customer_analytics._rollup_lost_table(r, rel);
        IF tab IS NOT NULL THEN
            PERFORM customer_analytics._rollup_sync_disable(r,
                format('source table %I.%I, which the data contract requires, was renamed or moved (it is now %s): '
                       'rename or move it back, then run SELECT customer_analytics.rebuild_rollup(%L)',
                       r.source_schema, tab, rel::regclass, r.source_schema),
                'The functions read the source tables meanwhile, and report the missing table. '
                'Rename or move the table back, then SELECT customer_analytics.rebuild_rollup('
                || quote_literal(r.source_schema) || ').');
        END IF;
        RETURN '{}';
    END IF;
    tab := customer_analytics._rollup_source_table(r, rel);
    IF tab IS NULL THEN
        RETURN '{}';            -- no longer part of the source (detached)
    END IF;
    problem := customer_analytics._rollup_source_problem(r.source_schema);
    IF problem IS NOT NULL THEN
        PERFORM customer_analytics._rollup_sync_disable(r, problem,
            'The functions read the source tables meanwhile. Fix the cause, then SELECT customer_analytics.rebuild_rollup('
            || quote_literal(r.source_schema) || ').');
        RETURN '{}';
    END IF;

    IF op = 'ALTER TABLE TRIGGERS' THEN
        -- triggers enabled or disabled by hand: if one of the rollup's no
        -- longer fires, writes from now on could go unseen, and enabling it
        -- later would not bring them back: the rollup waits for a rebuild
        problem := customer_analytics._rollup_trigger_problem(r);
        IF problem IS NOT NULL THEN
            -- a restore (pg_restore, or a dump's script: both run with
            -- check_function_bodies off) creates the triggers one by one
            -- after the rollup's rows and enables each ALWAYS: the first
            -- finds the others missing.  Rows and triggers were not kept
            -- together, so the rollup waits for a rebuild, and says why.
            IF problem LIKE '% is missing' AND current_setting('check_function_bodies') = 'off' THEN
                problem := format('restored from a dump: its triggers were recreated after its rows were loaded; '
                                  'run SELECT customer_analytics.rebuild_rollup(%L) as role %I',
                                  r.source_schema, r.owner);
            END IF;
            PERFORM customer_analytics._rollup_sync_disable(r, problem,
                'Writes while a rollup trigger is off are not seen. The functions read the source tables until '
                'SELECT customer_analytics.rebuild_rollup(' || quote_literal(r.source_schema) || ').');
        END IF;
        RETURN '{}';
    ELSIF op = 'RENAME COLUMN' THEN
        -- a column the rollup and the reading functions read renamed away
        -- (the contract was complete while the rollup was current): the
        -- next write could not be followed; the rename itself goes through
        SELECT format('column %I of source table %I.%I, which the data contract requires, was renamed: '
                      'rename it back, then run SELECT customer_analytics.rebuild_rollup(%L)',
                      c, r.source_schema, tab, r.source_schema)
          INTO problem
          FROM unnest(customer_analytics._contract_columns(tab)) WITH ORDINALITY AS x(c, n)
         WHERE NOT EXISTS (SELECT 1 FROM pg_attribute a
                            WHERE a.attrelid = to_regclass(format('%I.%I', r.source_schema, tab))
                              AND a.attname = x.c AND a.attnum > 0 AND NOT a.attisdropped)
         ORDER BY x.n LIMIT 1;
        IF problem IS NOT NULL THEN
            PERFORM customer_analytics._rollup_sync_disable(r, problem,
                'The functions read the source tables meanwhile, and report the missing column. '
                'Rename the column back, then SELECT customer_analytics.rebuild_rollup('
                || quote_literal(r.source_schema) || ').');
        END IF;
        RETURN '{}';
    ELSIF op IN ('CREATE TABLE', 'ALTER TABLE') THEN
        RETURN customer_analytics._rollup_sync_ddl_sql(r, op);
    ELSIF op = 'TRUNCATE' THEN
        RETURN customer_analytics._rollup_sync_truncate_sql(r, tab);
    END IF;
    RETURN customer_analytics._rollup_sync_rows_sql(r, op, tab, rows_sql);
END $$;

-- The name of a rollup's table of orders, order_rollup_<id>.
CREATE FUNCTION customer_analytics._rollup_table(id integer) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT 'customer_analytics.order_rollup_' || id $$;

-- Why the rollup's triggers do not see every write, or NULL: a watched
-- relation (a partition created or attached while the event trigger could
-- not add them) lacks one, or one is disabled.
CREATE FUNCTION customer_analytics._rollup_trigger_problem(r customer_analytics.rollups) RETURNS text
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
#variable_conflict use_column
BEGIN
    RETURN (
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
     ORDER BY w.rel::text, n LIMIT 1);
END
$$;

-- Every relation whose writes the rollup must see: each source table and,
-- when it is partitioned, every partition at every depth.
CREATE FUNCTION customer_analytics._rollup_watched_relations(r customer_analytics.rollups) RETURNS TABLE(tab text, rel regclass, is_root boolean)
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    SELECT t, x.rel, x.rel = x.root
      FROM unnest(ARRAY['customers', 'sales_orders', 'sales_order_lines']) t,
           LATERAL (SELECT to_regclass(format('%I.%I', r.source_schema, t)) AS root) s,
           -- pg_partition_tree gives no row for a plain table
           LATERAL (SELECT s.root AS rel, s.root
                    UNION SELECT p.relid, s.root FROM pg_partition_tree(s.root) p) x
     WHERE s.root IS NOT NULL;
END
$$;

-- Every difference between the rollup and the source tables, one row per
-- order key; no rows when the rollup is exact.
CREATE FUNCTION customer_analytics.check_rollup(source_schema text DEFAULT NULL::text) RETURNS TABLE(order_type text, order_number text, difference text, in_rollup text, in_source text)
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    r customer_analytics.rollups := customer_analytics._rollup(source_schema);
BEGIN
    PERFORM customer_analytics._check_rollup_source(r.source_schema);
    -- product codes compare as sorted lists: array_agg's order is the plan's
    RETURN QUERY EXECUTE format(
        'WITH s AS (%s), '
        'a AS (SELECT x.order_type, x.order_number, '
        '        ROW(x.customer_code, x.delivery_route, x.order_date, x.order_date_raw, x.total, x.line_count, x.quantity,'
        '            ARRAY(SELECT p FROM unnest(x.product_codes) p ORDER BY p COLLATE "C"))::text AS v FROM %s x), '
        'bb AS (SELECT y.order_type, y.order_number, '
        '        ROW(y.customer_code, y.delivery_route, y.order_date, y.order_date_raw, y.total, y.line_count, y.quantity,'
        '            ARRAY(SELECT p FROM unnest(y.product_codes) p ORDER BY p COLLATE "C"))::text AS v '
        '      FROM s AS y (order_type, order_number, customer_code, delivery_route, order_date, order_date_raw,'
        '                   total, line_count, quantity, product_codes)) '
        'SELECT COALESCE(a.order_type, bb.order_type), COALESCE(a.order_number, bb.order_number), '
        '       CASE WHEN a.v IS NULL THEN ''missing from the rollup'' '
        '            WHEN bb.v IS NULL THEN ''not a confirmed order in the source'' '
        '            ELSE ''values differ'' END, a.v, bb.v '
        'FROM a FULL JOIN bb ON a.order_type = bb.order_type AND a.order_number = bb.order_number '
        'WHERE a.v IS DISTINCT FROM bb.v ORDER BY 1, 2',
        customer_analytics._rollup_rows_sql(r, NULL), customer_analytics._rollup_table(r.id));
END $$;

COMMENT ON FUNCTION customer_analytics.check_rollup(source_schema text) IS 'Compare a source''s order rollup with its tables: one row per order that differs; none when exact';

-- Check the caller may disable the rollup, then do it as the rollup's owner.
CREATE FUNCTION customer_analytics.disable_rollup(source_schema text DEFAULT NULL::text) RETURNS customer_analytics.rollups
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    r customer_analytics.rollups := customer_analytics._rollup(source_schema);
BEGIN
    PERFORM customer_analytics._require_definition_owner('rollup', r.source_schema, r.owner);
    RETURN customer_analytics._as_owner(r.owner,
        format('SELECT customer_analytics._disable_rollup_as_owner(%L)', r.source_schema))::customer_analytics.rollups;
END $$;

COMMENT ON FUNCTION customer_analytics.disable_rollup(source_schema text) IS 'Drop a rollup''s triggers (for a bulk load); functions read the source tables until rebuild_rollup()';

-- Check the caller may drop the rollup, then do it as the rollup's owner.
CREATE FUNCTION customer_analytics.drop_rollup(source_schema text DEFAULT NULL::text) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    r customer_analytics.rollups := customer_analytics._rollup(source_schema);
BEGIN
    PERFORM customer_analytics._require_definition_owner('rollup', r.source_schema, r.owner);
    PERFORM customer_analytics._as_owner(r.owner,
        format('SELECT customer_analytics._drop_rollup_as_owner(%L)', r.source_schema));
END $$;

COMMENT ON FUNCTION customer_analytics.drop_rollup(source_schema text) IS 'Drop a source''s order rollup, its triggers and tables';

-- Create the order rollup of a source schema, its triggers, and fill it.
CREATE FUNCTION customer_analytics.enable_rollup(source_schema text DEFAULT NULL::text, readers text[] DEFAULT '{}'::text[], writers text[] DEFAULT '{}'::text[]) RETURNS customer_analytics.rollups
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
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

COMMENT ON FUNCTION customer_analytics.enable_rollup(source_schema text, readers text[], writers text[]) IS 'Create the order rollup of a source schema, its triggers, and fill it; readers may read it, writers may write the source tables';

-- The order rollups, whether this role's queries read them (and why not),
-- size of the dirty set.
CREATE FUNCTION customer_analytics.list_rollups() RETURNS TABLE(source_schema text, rollup text, state text, usable_here boolean, reason text, rollup_rows bigint, dirty_rows bigint, rebuilt_at timestamp with time zone, rebuild_ms numeric)
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    r customer_analytics.rollups;
    u record;
    n bigint;
BEGIN
    FOR r IN SELECT * FROM customer_analytics.rollups ORDER BY 1 LOOP
        u := customer_analytics._rollup_for_reading(r.source_schema);
        n := NULL;
        IF has_table_privilege(customer_analytics._rollup_dirty_table(r.id), 'SELECT') THEN
            EXECUTE format('SELECT count(*) FROM %s', customer_analytics._rollup_dirty_table(r.id)) INTO n;
        END IF;
        RETURN QUERY SELECT r.source_schema, customer_analytics._rollup_table(r.id), r.state,
                            u.rollup IS NOT NULL, u.reason, r.rollup_rows, n, r.rebuilt_at, r.rebuild_ms;
    END LOOP;
END $$;

COMMENT ON FUNCTION customer_analytics.list_rollups() IS 'The order rollups, whether this role''s queries read them (and why not), size of the dirty set';

-- Check the caller may rebuild the rollup, then do it as the rollup's owner.
CREATE FUNCTION customer_analytics.rebuild_rollup(source_schema text DEFAULT NULL::text) RETURNS customer_analytics.rollups
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    r customer_analytics.rollups := customer_analytics._rollup(source_schema);
BEGIN
    PERFORM customer_analytics._require_definition_owner('rollup', r.source_schema, r.owner);
    RETURN customer_analytics._as_owner(r.owner,
        format('SELECT customer_analytics._rebuild_rollup_as_owner(%L)', r.source_schema))::customer_analytics.rollups;
END $$;

COMMENT ON FUNCTION customer_analytics.rebuild_rollup(source_schema text) IS 'Recompute a source''s order rollup from its tables and (re)enable its triggers; writers wait meanwhile';

-- Check the caller may reset the changes of the rollup, then do it as the rollup's owner.
CREATE FUNCTION customer_analytics.reset_rollup_changes(source_schema text DEFAULT NULL::text) RETURNS bigint
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    r customer_analytics.rollups := customer_analytics._rollup(source_schema);
BEGIN
    PERFORM customer_analytics._require_definition_owner('rollup', r.source_schema, r.owner);
    RETURN customer_analytics._as_owner(r.owner,
        format('SELECT customer_analytics._reset_rollup_changes_as_owner(%L)', r.source_schema))::bigint;
END $$;

COMMENT ON FUNCTION customer_analytics.reset_rollup_changes(source_schema text) IS 'Forget the order changes a rollup recorded (on a shard, nothing else prunes those a coordinator reads); campaigns that follow them refresh in full once';
