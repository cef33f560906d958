-- sharding.sql
--	Sharded sources over postgres_fdw: the contract check, per-shard rollups and the coordinator's incremental refresh.

-- The orders of coordinator schema source_schema in data_window as a
-- campaign's state reads them (_campaign_build_state_from's relation:
-- customer_code, amount, d), from its order_totals: the confirmed orders
-- with a customer, dated by checked_order_date and chosen by
-- order_date_in_window as target_customers() does on the shards (whose
-- errors the full computation raises; the latter's selectivity estimate
-- lets the planner send the per-customer grouping to the shards, and so
-- does the amount's CASE, which postgres_fdw ships where it does not ship
-- COALESCE: the state's build groups on the shards, one row per customer
-- back).  keys:
-- SQL of a text[] of customer codes to restrict them to (NULL: every
-- customer).
CREATE FUNCTION customer_analytics._shard_orders_sql(source_schema text, data_window daterange, keys text) RETURNS text
    LANGUAGE sql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
    SELECT format('(SELECT o.customer_code, CASE WHEN o.order_total IS NULL THEN 0::numeric ELSE o.order_total::numeric END AS amount,'
                  ' customer_analytics.checked_order_date(o.order_date%1$s, o.order_type::text, o.order_number::text) AS d'
                  ' FROM %2$I.order_totals o WHERE o.confirmed_code = ''Y'' AND o.customer_code IS NOT NULL'
                  ' AND customer_analytics.order_date_in_window(o.order_date%1$s, %3$L::daterange, o.order_type::text, o.order_number::text)%4$s)',
                  CASE WHEN (SELECT a.atttypid FROM pg_attribute a
                              WHERE a.attrelid = to_regclass(format('%I.order_totals', source_schema))
                                AND a.attname = 'order_date' AND NOT a.attisdropped) = 'date'::regtype
                       THEN '' ELSE '::text' END,
                  source_schema, data_window,
                  CASE WHEN keys IS NOT NULL THEN format(' AND o.customer_code::text = ANY (%s)', keys) ELSE '' END)
$_$;

-- Build a campaign's per-customer state on a coordinator schema from the
-- shards (_campaign_build_state_from over its orders, the per-customer sums
-- grouped on the shards: partitionwise, one row per customer back), as of
-- the snapshot each shard's connection reads in this transaction.  c has
-- its windows resolved.
CREATE FUNCTION customer_analytics._campaign_shard_build_state(c customer_analytics.campaigns, OUT state regclass, OUT month_state regclass, OUT snapshot pg_snapshot) RETURNS record
    LANGUAGE sql
    SET search_path TO 'pg_catalog', 'pg_temp'
    SET enable_partitionwise_aggregate TO 'on'
    SET enable_partitionwise_join TO 'on'
    AS $$
    SELECT * FROM customer_analytics._campaign_build_state_from(c,
        customer_analytics._shard_orders_sql(c.source_schema, customer_analytics._campaign_data_window(c), NULL))
$$;

-- The order changes fetched from the shards of coordinator schema
-- source_schema with their status (_shard_changes_since's
-- pg_temp.customer_analytics_shard_fetch), as SQL of a relation in the
-- shape of a rollup's dirty rows (_campaign_delta_changes_sql: what
-- _campaign_delta_apply takes), counted; and, for the changed customers
-- whose latest order in data_window the changes leave unknown (the delta's
-- rule, _campaign_last_order_unknown, over the last order date the
-- campaign's state holds for them), that order's date computed on their
-- shards, one statement whose grouped foreign scans run at once (none when
-- no customer needs it), added to that table as rows with no server
-- (_shard_delta_orders_sql: the delta's orders).
-- Every read goes through the connection the shard's status was read on
-- (one snapshot per shard).  NULL when the shards' changes carry no order
-- rows (rollup_changes lacks their columns), else how many order changes
-- were fetched.
CREATE FUNCTION customer_analytics._shard_land_changes(source_schema text, data_window daterange, state regclass) RETURNS bigint
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    SET enable_partitionwise_aggregate TO 'on'
    AS $_$
DECLARE
    n bigint;
    keys text[];
    changes text := customer_analytics._shard_delta_changes_sql();
BEGIN
    IF customer_analytics._shard_order_columns_missing(to_regclass(format('%I.rollup_changes', source_schema))) IS NOT NULL THEN
        RETURN NULL;
    END IF;
    EXECUTE format('SELECT count(*) FROM %s x', changes) INTO n;
    IF n > 0 THEN
        -- the changed customers whose latest order the changes leave
        -- unknown, by the delta's own rule (_campaign_last_order_unknown:
        -- the C pass looks up exactly these, or fewer where it deletes the
        -- customer's row): their latest order in the window looked up on
        -- their shards; the others' the pass knows from the state and the
        -- changes
        EXECUTE format('SELECT array_agg(c.customer_code) FROM ('
                       ' SELECT w.customer_code, min(w.added_last) AS added_last,'
                       '        (sum(w.added) FILTER (WHERE w.order_date = w.added_last))::bigint AS added_at_last,'
                       '        min(w.removed_last) AS removed_last,'
                       '        (sum(w.removed) FILTER (WHERE w.order_date = w.removed_last))::bigint AS removed_at_last'
                       '   FROM (SELECT d.*,'
                       '                max(d.order_date) FILTER (WHERE d.added IS NOT NULL) OVER (PARTITION BY d.customer_code) AS added_last,'
                       '                max(d.order_date) FILTER (WHERE d.removed IS NOT NULL) OVER (PARTITION BY d.customer_code) AS removed_last'
                       '           FROM (SELECT x.customer_code, x.order_date,'
                       '                        sum(x.sign) FILTER (WHERE x.sign > 0) AS added,'
                       '                        -sum(x.sign) FILTER (WHERE x.sign < 0) AS removed'
                       '                   FROM %s x'
                       '                  WHERE x.sign IS NOT NULL AND x.customer_code IS NOT NULL AND x.order_date <@ %L::daterange'
                       '                  GROUP BY x.customer_code, x.order_date) d) w'
                       '  GROUP BY w.customer_code'
                       '  HAVING min(w.removed_last) IS NOT NULL) c'
                       ' LEFT JOIN %s s ON s.customer_code = c.customer_code'
                       ' WHERE customer_analytics._campaign_last_order_unknown(s.last_order, c.added_last, c.added_at_last,'
                       '                                                      c.removed_last, c.removed_at_last)',
                       changes, data_window, state)
           INTO keys;
        IF keys IS NOT NULL THEN
            EXECUTE format('INSERT INTO pg_temp.customer_analytics_shard_fetch (server, customer_code, order_date)'
                           ' SELECT NULL, o.customer_code, max(o.d) FROM %s o GROUP BY o.customer_code',
                           customer_analytics._shard_orders_sql(source_schema, data_window, '$1'))
              USING keys;
        END IF;
    END IF;
    RETURN n;
END $_$;

-- SQL of the order changes fetched from the shards
-- (pg_temp.customer_analytics_shard_fetch) as _campaign_delta_apply takes
-- them, in the shape of a rollup's dirty rows (xid NULL: a shard's
-- transaction ids mean nothing here).
CREATE FUNCTION customer_analytics._shard_delta_changes_sql() RETURNS text
    LANGUAGE sql IMMUTABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
    SELECT '(SELECT f.customer_code, NULL::xid8 AS xid, f.order_date, f.total, f.quantity, f.sign'
           ' FROM pg_temp.customer_analytics_shard_fetch f WHERE f.xid IS NOT NULL AND f.customer_code IS NOT NULL)'
$$;

-- SQL of the latest order dates _shard_land_changes added to
-- pg_temp.customer_analytics_shard_fetch (the delta's orders: customer_code,
-- order_date).
CREATE FUNCTION customer_analytics._shard_delta_orders_sql() RETURNS text
    LANGUAGE sql IMMUTABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
    SELECT '(SELECT f.customer_code, f.order_date FROM pg_temp.customer_analytics_shard_fetch f WHERE f.server IS NULL)'
$$;

-- Which of the order-row columns of rollup_order_changes() the coordinator
-- table rollup_changes lacks (NULL: none lacks, or no such table).
CREATE FUNCTION customer_analytics._shard_order_columns_missing(changes regclass) RETURNS text
    LANGUAGE sql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
    SELECT string_agg(x.col, ', ' ORDER BY x.n)
      FROM unnest(ARRAY['order_date', 'total', 'quantity', 'sign']) WITH ORDINALITY x(col, n)
     WHERE changes IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = changes AND a.attname = x.col
                          AND a.attnum > 0 AND NOT a.attisdropped)
$$;

-- Why the order changes fetched from the shards (changes: SQL of their
-- relation) cannot be applied as a delta (NULL: they can), as _rollup_delta_refused says it on one server:
-- an order total or quantity that is not a finite number, or a customer
-- left with more order rows whose date the shard's rollup could not read
-- than before (the full recompute raises its error, naming the order; a
-- date broken and corrected again since is no such row: its +1 and -1
-- cancel, and the delta goes on, as on one server).
CREATE FUNCTION customer_analytics._shard_changes_refused(changes text) RETURNS text
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    why text;
BEGIN
    EXECUTE format('SELECT CASE WHEN bool_or(x.total IN (''NaN'', ''Infinity'', ''-Infinity'')'
                   '                         OR x.quantity IN (''NaN'', ''Infinity'', ''-Infinity''))'
                   ' THEN ''an order total or quantity among the changes is not a finite number'''
                   ' WHEN EXISTS (SELECT 1 FROM %1$s u'
                   '               WHERE u.order_date IS NULL AND u.sign IS NOT NULL GROUP BY u.customer_code HAVING sum(u.sign) > 0)'
                   ' THEN ''an order among the changes has a date that cannot be read'' END'
                   ' FROM %1$s x', changes) INTO why;
    RETURN why;
END $$;

-- refresh_campaign() of a campaign on a coordinator schema with per-shard
-- rollups (a rollup_changes table): the shards' order changes since their
-- recorded snapshots landed here (_shard_land_changes) and applied to the
-- campaign's per-customer state and views by the delta of one server
-- (_campaign_delta_apply) when they can be followed, else the views
-- recomputed (CONCURRENTLY when asked) and the state built again from the
-- shards, with every shard's snapshot recorded when each has a usable
-- rollup.  The caller holds the refresh lock; c as stored, resolved with its
-- windows resolved; rebuild: a rolling sheet's months moved (old_columns
-- its columns).
CREATE FUNCTION customer_analytics._refresh_sharded_campaign(c customer_analytics.campaigns, resolved customer_analytics.campaigns, s customer_analytics.campaign_refresh_state, "concurrently" boolean, started timestamp with time zone, rebuild boolean, old_columns text) RETURNS customer_analytics.campaigns
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    sh record;
    mode text;
    landed bigint;
    delta record;
    problem text;
    launch_mode text;
    no_state text := customer_analytics._campaign_state_unsupported(resolved);
BEGIN
    SELECT NULL::pg_snapshot AS snapshot, NULL::bigint AS changed_customers, NULL::bigint AS order_changes INTO delta;
    PERFORM customer_analytics._report_progress(format('refresh_campaign(%L): reading the shards'' status and changes', c.name));
    -- why the views or the state cannot follow the changes, whatever the
    -- shards say (the changes are then not fetched)
    problem := COALESCE(customer_analytics._shard_views_problem(c, s),
                        CASE WHEN rebuild THEN 'the sheet''s months moved' END,
                        no_state, customer_analytics._campaign_state_problem(resolved, s));
    sh := customer_analytics._shard_changes_since(
              format('campaign "%s"', c.name), c.source_schema,
              (SELECT relowner FROM pg_class WHERE oid = to_regclass(format('%I.%I', c.view_schema, c.name || '_targets'))),
              s.shard_snapshots, problem);
    -- (no share of the customers past which a full refresh is cheaper, as
    -- for segmentations: the delta reads the order changes, not the changed
    -- customers' histories; at scale 10, 7,887 changed customers (7.7 %)
    -- took 765 ms, a full refresh 7.4 s and 10.9 s with the state's build)
    IF sh.usable THEN
        PERFORM customer_analytics._report_progress(format('refresh_campaign(%L): landing the order changes', c.name));
        landed := customer_analytics._shard_land_changes(c.source_schema, customer_analytics._campaign_data_window(resolved),
                                                         s.state_table);
        IF landed IS NULL THEN
            sh.reason := format('%I.rollup_changes has no order rows (it lacks %s)', c.source_schema,
                                customer_analytics._shard_order_columns_missing(format('%I.rollup_changes', c.source_schema)::regclass));
        ELSE
            sh.reason := customer_analytics._shard_changes_refused(customer_analytics._shard_delta_changes_sql());
        END IF;
        sh.usable := sh.reason IS NULL;
    END IF;
    IF sh.usable THEN
        PERFORM customer_analytics._report_progress(format('refresh_campaign(%L): applying the order changes', c.name));
        delta := customer_analytics._campaign_delta_apply(resolved, s, customer_analytics._shard_delta_changes_sql(),
                                                          customer_analytics._shard_delta_orders_sql(), 'false', '{}');
        IF delta.snapshot IS NULL THEN
            sh.usable := false;
            sh.reason := 'an order total or quantity among the changes is not a finite number';
        ELSE
            mode := format('delta (%s changed customers, %s order changes from %s shard rollups)',
                           delta.changed_customers, delta.order_changes, sh.shards);
        END IF;
    END IF;
    PERFORM customer_analytics._drop_temp_tables('customer_analytics_shard_fetch');
    IF NOT sh.usable THEN
        PERFORM customer_analytics._campaign_recompute_views(c, rebuild, old_columns, _refresh_sharded_campaign.concurrently);
        mode := 'full (' || sh.reason || ')';
    END IF;
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
        IF delta.snapshot IS NOT NULL THEN
            UPDATE customer_analytics.campaign_refresh_state x SET state_snapshot = delta.snapshot WHERE x.campaign = c.name;
        ELSIF no_state IS NULL THEN
            -- the state built again from the shards, as of the snapshots
            -- recorded (each shard's reads share its connection's)
            PERFORM customer_analytics._campaign_keep_built_state(c, resolved, NULL);
        ELSE
            PERFORM customer_analytics._forget_campaign_state(c);
        END IF;
    ELSE
        PERFORM customer_analytics._forget_campaign_state(c);
        DELETE FROM customer_analytics.campaign_refresh_state x WHERE x.campaign = c.name;
    END IF;
    -- a launched campaign's response views: from the changed members when
    -- the delta replaced their rows, else in full
    launch_mode := customer_analytics._refresh_launch_views(c, _refresh_sharded_campaign.concurrently, s, delta.snapshot,
        (SELECT x.state_snapshot FROM customer_analytics.campaign_refresh_state x WHERE x.campaign = c.name));
    RETURN customer_analytics._campaign_record_refresh(c.name, started, _refresh_sharded_campaign.concurrently, mode || launch_mode);
END $$;

-- Why a refresh on the coordinator schema source_schema should not recompute
-- its changed customers from the shards (NULL: it should): they are more
-- than customer_analytics.shard_incremental_max_fraction of the customers,
-- where a full refresh is cheaper.  (Segmentations ask it: their refresh
-- recomputes the changed customers' features; a campaign's applies the
-- order changes as a delta, and does not.)  The customers are counted on the
-- shards, one pushed-down count each, only when the changed customers could
-- be past a limit of at least 100: below that the incremental path is
-- always cheaper (measured in bench/README.md).  changed: how many
-- customers changed.
CREATE FUNCTION customer_analytics._shard_incremental_refusal(source_schema text, changed bigint) RETURNS text
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    -- the setting before the library defines it: its default
    fraction float8 := COALESCE(current_setting('customer_analytics.shard_incremental_max_fraction', true), '0.05')::float8;
    customers bigint;
    lim bigint;
BEGIN
    IF changed = 0 OR fraction >= 1 OR (fraction > 0 AND changed <= 100) THEN
        RETURN NULL;
    END IF;
    EXECUTE format('SELECT count(*) FROM %I.customers', source_schema) INTO customers;
    lim := CASE WHEN fraction > 0 THEN greatest(100, floor(customers * fraction)::bigint) ELSE 0 END;
    IF changed <= lim THEN
        RETURN NULL;
    END IF;
    RETURN format('%s changed customers, more than %s (customer_analytics.shard_incremental_max_fraction of the customers): a full refresh is cheaper',
                  changed, lim);
END $$;

-- Why a campaign's views cannot be followed from the shards' changes, whatever
-- the shards say (NULL: they can): s, its refresh state, has no shard
-- snapshots (or is NULL), the campaign or its views changed, or the shards
-- recorded are not all among the current ones.
CREATE FUNCTION customer_analytics._shard_views_problem(c customer_analytics.campaigns, s customer_analytics.campaign_refresh_state) RETURNS text
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    v regclass := to_regclass(format('%I.%I', c.view_schema, c.name || '_targets'));
    sheet regclass := to_regclass(format('%I.%I', c.view_schema, c.name || '_monthly'));
    long regclass := to_regclass(format('%I.%I', c.view_schema, c.name || '_monthly_long'));
BEGIN
    IF s IS NULL OR s.shard_snapshots IS NULL THEN
        RETURN 'no incremental state yet';
    ELSIF s.fingerprint <> customer_analytics._campaign_fingerprint(c) THEN
        RETURN 'the campaign changed';
    ELSIF NOT customer_analytics._view_reusable(v, s.targets_view) THEN
        RETURN 'the targets view was rebuilt or cannot be read';
    ELSIF NOT customer_analytics._view_reusable(sheet, s.monthly_view) OR long IS NULL THEN
        RETURN 'the monthly views were rebuilt';
    ELSIF EXISTS (SELECT 1 FROM jsonb_object_keys(s.shard_snapshots) k
                   WHERE k NOT IN (SELECT x.server FROM customer_analytics._shard_rollups(c.source_schema) x)) THEN
        RETURN 'the shards changed';
    END IF;
    RETURN NULL;
END $$;

-- The customers changed on a shard (server srv_name, oid srv, of
-- coordinator schema source_schema) since a definition's views or state
-- (what, e.g. campaign "c2", for messages) were computed: its rows of
-- pg_temp.customer_analytics_shard_fetch that are changes (the ones its
-- recorded status `old` (generation, snapshot, system_identifier; NULL:
-- none) did not see, fetched with its status), given its status now
-- (generation, snapshot, system_identifier); or why they cannot be followed
-- (reason, codes then NULL).  Customers whose customer_code belongs on
-- another shard are one such reason, with a WARNING.  astray: those of its
-- changed codes whose partition of the coordinator's customers is on
-- another server (NULL or empty: none; _shard_changes_since finds them for
-- every shard in one statement), of which _shard_misplaced keeps the ones
-- the shard still holds.
CREATE FUNCTION customer_analytics._shard_changed_customers(what text, source_schema text, srv_name text, srv oid,
                                                            old jsonb, generation bigint, snapshot text, system_identifier bigint,
                                                            astray text[], OUT reason text, OUT codes text[]) RETURNS record
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    found_codes text[];
    truncated boolean;
    misplaced text[];
BEGIN
    IF old IS NULL THEN
        reason := format('server %s is new to the %s', srv_name, split_part(what, ' ', 1));
    ELSIF (old ->> 'generation')::bigint IS DISTINCT FROM generation THEN
        reason := format('the rollup on server %s was rebuilt', srv_name);
    ELSIF (old ->> 'system_identifier') IS DISTINCT FROM system_identifier::text
          OR pg_snapshot_xmax((old ->> 'snapshot')::pg_snapshot) > pg_snapshot_xmax(snapshot::pg_snapshot) THEN
        -- a restored or replaced shard: its transaction ids do not
        -- continue the ones the snapshot was taken among
        reason := format('server %s is another cluster or went back in time (restored?)', srv_name);
    ELSE
        -- the changes its snapshot then did not see (filtered on the shard)
        SELECT array_agg(DISTINCT x.customer_code) FILTER (WHERE x.customer_code IS NOT NULL),
               COALESCE(bool_or(x.customer_code IS NULL), false)
          INTO found_codes, truncated
          FROM pg_temp.customer_analytics_shard_fetch x WHERE x.server = srv_name AND x.xid IS NOT NULL;
        IF cardinality(astray) > 0 THEN
            misplaced := customer_analytics._shard_misplaced(source_schema, srv, astray);
        END IF;
        IF truncated THEN
            reason := format('a source table was truncated or rewritten on server %s', srv_name);
        ELSIF cardinality(misplaced) > 0 THEN
            RAISE WARNING '%: % customer(s) changed on server % whose customer_code belongs on another shard: %',
                what, cardinality(misplaced), srv_name, array_to_string(misplaced[1:5], ', ')
                USING HINT = 'Move a customer between shards by deleting its rows on the old shard and inserting them on the new one '
                             'in one transaction (an UPDATE of customer_code through the coordinator''s partitioned tables does that): '
                             'rows of one customer on two shards are counted apart (docs/sharding.md).';
            reason := format('customer %s changed on server %s, which does not hold its customer_code',
                             misplaced[1], srv_name);
        ELSE
            codes := COALESCE(found_codes, '{}');
        END IF;
    END IF;
END $$;

-- What changed on each shard of coordinator schema source_schema since the
-- shards' snapshots recorded (recorded: {"<server>": {generation,
-- snapshot, system_identifier}}) for a definition (what, for messages),
-- whose views' owner is views_owner: usable (else why the refresh is a
-- full one), the changed customers, the shards, and every shard's snapshot
-- and rollup generation now, for the refresh to record (NULL when some
-- shard's changes cannot be followed).  problem: why the definition's
-- views or state cannot be followed whatever the shards say (NULL: they
-- can).  One statement reads every shard at once (_shard_fetch_sql): its
-- status row, which fixes the snapshot the refresh then reads that shard
-- with, and, unless problem, its changes since its recorded snapshot,
-- which stay in pg_temp.customer_analytics_shard_fetch for the caller
-- (_shard_land_changes).  A shard is not read when the views' owner would
-- reach it through another user mapping than the current role's (the
-- refresh's reads of a shard must share this read's connection).  Then,
-- per shard: its rollup is current and has no campaigns of its own (whose
-- refreshes prune its changes), and its changes can be followed
-- (_shard_changed_customers).
CREATE FUNCTION customer_analytics._shard_changes_since(what text, source_schema text, views_owner oid, recorded jsonb, problem text,
                                                        OUT usable boolean, OUT reason text, OUT changed text[], OUT snapshots jsonb,
                                                        OUT shards integer) RETURNS record
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    sh record;
    st record;
    d record;
    me oid := (SELECT oid FROM pg_roles WHERE rolname = current_user);
    readable text[] := '{}'::text[];
    readable_ids oid[] := '{}'::oid[];
    keytype text;
    astray jsonb;
    since jsonb := '{}'::jsonb;
    shard_reason text;
BEGIN
    changed := '{}';
    snapshots := '{}';
    shards := 0;
    reason := problem;
    usable := reason IS NULL;
    PERFORM customer_analytics._drop_temp_tables('customer_analytics_shard_fetch');
    PERFORM customer_analytics._scratch_table('customer_analytics_shard_fetch',
        '(server text, customer_code text, xid xid8, generation bigint, rollup_state text, snapshot text, campaigns bigint,'
        ' system_identifier bigint, order_date date, total numeric, quantity numeric, sign smallint)');
    FOR sh IN SELECT r.server, r.server_id,
                     customer_analytics._shard_user_mapping(r.server_id, me)
                         IS DISTINCT FROM customer_analytics._shard_user_mapping(r.server_id, views_owner) AS other_mapping
                FROM customer_analytics._shard_rollups(source_schema) r LOOP
        shards := shards + 1;
        IF sh.other_mapping THEN
            shard_reason := COALESCE(shard_reason, format('server %s: the views'' owner reaches it through another user mapping than %s',
                                                          sh.server, current_user));
            snapshots := NULL;
        ELSE
            readable := readable || sh.server;
            readable_ids := readable_ids || sh.server_id;
            IF usable AND recorded -> sh.server ->> 'snapshot' IS NOT NULL THEN
                since := since || jsonb_build_object(sh.server, recorded -> sh.server ->> 'snapshot');
            END IF;
        END IF;
    END LOOP;
    IF cardinality(readable) > 0 THEN
        EXECUTE customer_analytics._shard_fetch_sql(source_schema, readable, since);
    END IF;
    IF usable AND cardinality(readable) > 0 THEN
        -- each shard's changed codes whose partition of the coordinator's
        -- customers is on another server, for every shard in one
        -- statement: {"<server>": [codes]} (_shard_misplaced keeps those
        -- the shard still holds)
        SELECT format_type(a.atttypid, a.atttypmod) INTO keytype
          FROM pg_attribute a
         WHERE a.attrelid = to_regclass(format('%I.customers', source_schema)) AND a.attname = 'customer_code'
           AND NOT a.attisdropped;
    END IF;
    IF keytype IS NOT NULL THEN
        EXECUTE format('SELECT jsonb_object_agg(s.server, s.codes) FROM ('
                       ' SELECT f.server, jsonb_agg(DISTINCT f.customer_code) AS codes'
                       '   FROM pg_temp.customer_analytics_shard_fetch f'
                       '   JOIN unnest($1, $2) r(server, server_id) ON r.server = f.server'
                       '  WHERE f.xid IS NOT NULL AND f.customer_code IS NOT NULL'
                       '    AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_inherits i'
                       '      JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid'
                       '      JOIN pg_catalog.pg_foreign_table ft ON ft.ftrelid = c.oid'
                       '      CROSS JOIN LATERAL pg_catalog.regexp_match(pg_catalog.pg_get_expr(c.relpartbound, c.oid),'
                       '                                                 ''modulus (\d+), remainder (\d+)'') b'
                       '     WHERE i.inhparent = $3 AND ft.ftserver = r.server_id'
                       '       AND pg_catalog.satisfies_hash_partition($3, b[1]::int, b[2]::int, f.customer_code::%s))'
                       '  GROUP BY f.server) s', keytype)
           INTO astray USING readable, readable_ids, to_regclass(format('%I.customers', source_schema));
    END IF;
    FOR st IN SELECT r.server, r.server_id, f.generation, f.rollup_state, f.snapshot, f.campaigns, f.system_identifier
                FROM unnest(readable, readable_ids) r(server, server_id)
                LEFT JOIN pg_temp.customer_analytics_shard_fetch f ON f.server = r.server AND f.xid IS NULL
               ORDER BY r.server LOOP
        IF st.rollup_state IS DISTINCT FROM 'current' THEN
            shard_reason := COALESCE(shard_reason, format('server %s: %s', st.server, COALESCE(st.rollup_state, 'no status row')));
            snapshots := NULL;
        ELSIF st.campaigns > 0 THEN
            shard_reason := COALESCE(shard_reason,
                format('server %s has campaigns of its own on its rollup, whose refreshes prune its changes', st.server));
            snapshots := NULL;
        ELSE
            snapshots := snapshots || jsonb_build_object(st.server, jsonb_build_object('generation', st.generation,
                                                                                       'snapshot', st.snapshot,
                                                                                       'system_identifier', st.system_identifier::text));
            IF usable THEN
                d := customer_analytics._shard_changed_customers(what, source_schema, st.server, st.server_id,
                                                                 recorded -> st.server,
                                                                 st.generation, st.snapshot, st.system_identifier,
                                                                 ARRAY(SELECT jsonb_array_elements_text(astray -> st.server)));
                reason := d.reason;
                changed := changed || d.codes;
                usable := reason IS NULL;
            END IF;
        END IF;
    END LOOP;
    IF shards = 0 THEN
        shard_reason := format('%I.rollup_changes has no foreign partitions', source_schema);
        snapshots := NULL;
    END IF;
    reason := COALESCE(shard_reason, reason);
    usable := reason IS NULL;
    changed := CASE WHEN usable THEN ARRAY(SELECT DISTINCT x FROM unnest(changed) x ORDER BY x) END;
END $$;

-- Of the customer codes a shard (server srv) reported as changed whose
-- partition of the coordinator's customers is on another server (codes:
-- _shard_changes_since finds them for every shard in one statement), those
-- the shard still holds: rows the coordinator's pushdown counts apart from
-- the customer's other rows (a customer_code changed on the shard itself,
-- or rows written on the wrong shard); their rows deleted there are the
-- cure, not the problem.
CREATE FUNCTION customer_analytics._shard_misplaced(source_schema text, srv oid, codes text[]) RETURNS text[]
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
DECLARE
    customers regclass := to_regclass(format('%I.customers', source_schema));
    part regclass;
    found text[];
    held text[] := '{}';
BEGIN
    FOR part IN SELECT i.inhrelid::regclass FROM pg_inherits i JOIN pg_foreign_table ft ON ft.ftrelid = i.inhrelid
                 WHERE ft.ftserver = srv
                   AND i.inhparent IN (customers, to_regclass(format('%I.sales_orders', source_schema))) LOOP
        EXECUTE format('SELECT array_agg(DISTINCT x.customer_code::text) FROM %s x WHERE x.customer_code::text = ANY ($1)', part)
           INTO found USING codes;
        held := held || COALESCE(found, '{}');
    END LOOP;
    RETURN ARRAY(SELECT DISTINCT x FROM unnest(held) x ORDER BY x);
END $_$;

-- The foreign partitions of a coordinator schema's rollup_changes, with
-- their servers (none when the schema has no such table).
CREATE FUNCTION customer_analytics._shard_rollups(source_schema text) RETURNS TABLE(changes regclass, server text, server_id oid)
    LANGUAGE sql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
    SELECT i.inhrelid::regclass, s.srvname::text, s.oid
      FROM pg_inherits i
      JOIN pg_foreign_table ft ON ft.ftrelid = i.inhrelid
      JOIN pg_foreign_server s ON s.oid = ft.ftserver
     WHERE i.inhparent = to_regclass(format('%I.rollup_changes', source_schema))
     ORDER BY s.srvname
$$;

-- The user mapping postgres_fdw uses for role on server srv (NULL: none).
CREATE FUNCTION customer_analytics._shard_user_mapping(srv oid, role oid) RETURNS oid
    LANGUAGE sql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
    SELECT m.umid FROM pg_user_mappings m WHERE m.srvid = srv AND m.umuser IN (role, 0)
     ORDER BY m.umuser DESC LIMIT 1
$$;

-- The statement that reads every shard of coordinator schema source_schema
-- at once (async foreign scans under one Append): from each partition of
-- rollup_changes its status row and, for the shards in since (server ->
-- the snapshot recorded for it), the changes that snapshot did not see,
-- filtered on the shard; into pg_temp.customer_analytics_shard_fetch, each
-- row with its server.  The order rows' columns are NULL when
-- rollup_changes lacks them (1.5's contract).  servers: the shards to read.
CREATE FUNCTION customer_analytics._shard_fetch_sql(source_schema text, servers text[], since jsonb) RETURNS text
    LANGUAGE sql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
    SELECT 'INSERT INTO pg_temp.customer_analytics_shard_fetch '
           || string_agg(format('SELECT %L::text, x.customer_code, x.xid, x.generation, x.rollup_state, x.snapshot::text,'
                                ' x.campaigns, x.system_identifier, %s FROM %s x WHERE x.xid IS NULL%s',
                                sh.server,
                                CASE WHEN m.complete
                                     THEN 'x.order_date, x.total, x.quantity, x.sign'
                                     ELSE 'NULL::date, NULL::numeric, NULL::numeric, NULL::smallint' END,
                                sh.changes,
                                CASE WHEN since ->> sh.server IS NOT NULL
                                     THEN format(' OR (x.xid >= pg_catalog.pg_snapshot_xmin(%1$L::pg_catalog.pg_snapshot)'
                                                 ' AND NOT pg_catalog.pg_visible_in_snapshot(x.xid, %1$L::pg_catalog.pg_snapshot))',
                                                 since ->> sh.server)
                                     ELSE '' END),
                         ' UNION ALL ' ORDER BY sh.server)
      FROM customer_analytics._shard_rollups(source_schema) sh
           -- once for every shard (the partitions share the parent's columns)
     CROSS JOIN (SELECT customer_analytics._shard_order_columns_missing(
                            to_regclass(format('%I.rollup_changes', source_schema))) IS NULL AS complete) m
     WHERE sh.server = ANY (servers)
$_$;

-- The coordinator's four contract relations (customers, sales_orders,
-- sales_order_lines, order_totals) in schema nsp, with their partitioning,
-- and order_lines (1.6) when the schema has one: optional (targeting reads
-- order_totals without it), it is checked like the others when present.
CREATE FUNCTION customer_analytics._shard_relations(nsp oid, schema_name text)
RETURNS TABLE(ord integer, name text, qname text, relid oid, relkind "char", partstrat "char", partnatts smallint, keycol text)
    LANGUAGE sql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
    SELECT t.ord, t.name, format('%I.%I', schema_name, t.name), c.oid, c.relkind, p.partstrat, p.partnatts,
           (SELECT a.attname::text FROM pg_attribute a
             WHERE a.attrelid = c.oid AND a.attnum = p.partattrs[0] AND a.attnum > 0)
      FROM (VALUES (1, 'customers'), (2, 'sales_orders'), (3, 'sales_order_lines'), (4, 'order_totals'),
                   (6, 'order_lines')) t(ord, name)
      LEFT JOIN pg_class c ON c.relnamespace = nsp AND c.relname = t.name
      LEFT JOIN pg_partitioned_table p ON p.partrelid = c.oid
     WHERE t.name <> 'order_lines' OR c.oid IS NOT NULL
$$;

-- The partitions of those relations, each with its bound and, for a
-- foreign table, its options and its server's.
CREATE FUNCTION customer_analytics._shard_partitions(nsp oid, schema_name text)
RETURNS TABLE(ord integer, name text, partid oid, partname text, relkind "char", bound text, ftoptions text[],
              srvid oid, srvname text, srvoptions text[], fdwname name)
    LANGUAGE sql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
    SELECT r.ord, r.name, c.oid, format('%I.%I', pn.nspname, c.relname), c.relkind,
           pg_get_expr(c.relpartbound, c.oid), ft.ftoptions, s.oid, s.srvname::text, s.srvoptions, w.fdwname
      FROM customer_analytics._shard_relations(nsp, schema_name) r
      JOIN pg_inherits i ON i.inhparent = r.relid
      JOIN pg_class c ON c.oid = i.inhrelid
      JOIN pg_namespace pn ON pn.oid = c.relnamespace
      LEFT JOIN pg_foreign_table ft ON ft.ftrelid = c.oid
      LEFT JOIN pg_foreign_server s ON s.oid = ft.ftserver
      LEFT JOIN pg_foreign_data_wrapper w ON w.oid = s.srvfdw
$$;

-- The postgres_fdw servers of the partitions, with what postgres_fdw reads
-- of each foreign partition's options (the table's own, else the server's,
-- else its default): the partitions without remote estimates, without
-- asynchronous scans, with a fetch_size below 1000; and whether the current
-- role has a user mapping there.
CREATE FUNCTION customer_analytics._shard_servers(nsp oid, schema_name text)
RETURNS TABLE(srvid oid, srvname text, extensions text, no_estimate text, no_async text, small_fetch text, mapped boolean)
    LANGUAGE sql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
    WITH eff AS (
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
          FROM customer_analytics._shard_partitions(nsp, schema_name) p
         WHERE p.srvid IS NOT NULL AND p.fdwname = 'postgres_fdw')
    SELECT e.srvid, e.srvname,
           min(e.extensions),
           string_agg(e.partname, ', ' ORDER BY e.partname) FILTER (WHERE lower(e.remote_estimate) NOT IN ('true', 'on', '1')),
           string_agg(e.partname, ', ' ORDER BY e.partname) FILTER (WHERE lower(e.async) NOT IN ('true', 'on', '1')),
           string_agg(e.partname || ' (' || e.fetch || ')', ', ' ORDER BY e.partname)
               FILTER (WHERE CASE WHEN e.fetch ~ '^\s*[0-9]{1,9}\s*$' THEN e.fetch::int < 1000 ELSE true END),
           EXISTS (SELECT 1 FROM pg_user_mappings m
                    WHERE m.srvid = e.srvid
                      AND (m.umuser = 0 OR m.umuser = (SELECT ro.oid FROM pg_roles ro WHERE ro.rolname = current_user)))
      FROM eff e GROUP BY e.srvid, e.srvname
$_$;

-- Check: each relation is hash-partitioned by customer_code alone.
CREATE FUNCTION customer_analytics._shard_check_partition_keys(nsp oid, schema_name text)
RETURNS TABLE(o1 integer, o2 integer, check_name text, ok boolean, detail text, hint text)
    LANGUAGE sql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
    SELECT 1, r.ord, 'partition key'::text,
           COALESCE(r.relkind = 'p' AND r.partstrat = 'h' AND r.partnatts = 1 AND r.keycol = 'customer_code', false),
           CASE WHEN r.relid IS NULL THEN r.qname || ' does not exist'
                WHEN r.relkind <> 'p' THEN r.qname || ' is not a partitioned table'
                WHEN r.partstrat <> 'h' THEN r.qname || ' is partitioned by ' || CASE r.partstrat WHEN 'l' THEN 'list' ELSE 'range' END || ', not by hash'
                WHEN r.partnatts <> 1 OR r.keycol IS NULL THEN r.qname || ' is not partitioned by one column'
                ELSE format('%s is hash-partitioned by %s, %s partitions', r.qname, r.keycol,
                            (SELECT count(*) FROM customer_analytics._shard_partitions(nsp, schema_name) p WHERE p.ord = r.ord)) END,
           CASE r.name
                WHEN 'order_totals' THEN 'Create the order_totals view on every shard and, here, a table PARTITION BY HASH (customer_code) of foreign tables over them (docs/sharding.md).'
                WHEN 'order_lines' THEN 'Make order_lines a table PARTITION BY HASH (customer_code) of foreign tables over the order_lines view of every shard (docs/sharding.md), or drop it: targeting then reads order_totals.'
                WHEN 'sales_order_lines' THEN 'Give the lines their order''s customer_code and make the table PARTITION BY HASH (customer_code), with the same partitions as customers.'
                ELSE format('Make %s a table PARTITION BY HASH (customer_code) whose partitions are foreign tables on the shards.', r.qname) END
      FROM customer_analytics._shard_relations(nsp, schema_name) r
$$;

-- Check: order_totals has every column of the data contract (src/source_tables.c).
CREATE FUNCTION customer_analytics._shard_check_order_totals(nsp oid, schema_name text)
RETURNS TABLE(o1 integer, o2 integer, check_name text, ok boolean, detail text, hint text)
    LANGUAGE sql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
    SELECT 1, 5, 'order_totals columns'::text, m.missing IS NULL,
           CASE WHEN m.missing IS NULL THEN r.qname || ' has the columns the functions read'
                ELSE r.qname || ' lacks ' || m.missing END,
           'Add the missing columns to the order_totals view on every shard and to the coordinator''s table (docs/sharding.md): customer_features() reads quantity and product_codes.'
      FROM customer_analytics._shard_relations(nsp, schema_name) r,
           LATERAL (SELECT string_agg(x.col, ', ' ORDER BY x.n) AS missing
                      FROM unnest(customer_analytics._contract_columns('order_totals')) WITH ORDINALITY x(col, n)
                     WHERE NOT EXISTS (SELECT 1 FROM pg_attribute a
                                        WHERE a.attrelid = r.relid AND a.attname = x.col
                                          AND a.attnum > 0 AND NOT a.attisdropped)) m
     WHERE r.name = 'order_totals' AND r.relid IS NOT NULL
$$;

-- Check: every partition of a partitioned relation is a postgres_fdw foreign table.
CREATE FUNCTION customer_analytics._shard_check_foreign_partitions(nsp oid, schema_name text)
RETURNS TABLE(o1 integer, o2 integer, check_name text, ok boolean, detail text, hint text)
    LANGUAGE sql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
    SELECT 2, r.ord, 'foreign partitions'::text,
           count(p.partid) > 0 AND bool_and(p.relkind = 'f' AND p.fdwname IS NOT DISTINCT FROM 'postgres_fdw'),
           CASE WHEN count(p.partid) = 0 THEN r.qname || ' has no partitions'
                WHEN bool_and(p.relkind = 'f' AND p.fdwname IS NOT DISTINCT FROM 'postgres_fdw')
                THEN format('%s: %s postgres_fdw foreign tables on %s', r.qname, count(p.partid),
                            string_agg(DISTINCT p.srvname, ', '))
                ELSE r.qname || ': not postgres_fdw foreign tables: ' ||
                     string_agg(p.partname, ', ' ORDER BY p.partname) FILTER (WHERE p.relkind <> 'f' OR p.fdwname IS DISTINCT FROM 'postgres_fdw') END,
           'Attach foreign tables (CREATE FOREIGN TABLE ... PARTITION OF ... SERVER shard_n) of postgres_fdw servers as the partitions.'
      FROM customer_analytics._shard_relations(nsp, schema_name) r
      LEFT JOIN customer_analytics._shard_partitions(nsp, schema_name) p ON p.ord = r.ord
     WHERE r.relkind = 'p' GROUP BY r.ord, r.qname
$$;

-- Check: every relation has the customers' partition bounds, each bound's
-- partition on the customers' server.
CREATE FUNCTION customer_analytics._shard_check_colocation(nsp oid, schema_name text)
RETURNS TABLE(o1 integer, o2 integer, check_name text, ok boolean, detail text, hint text)
    LANGUAGE sql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
    WITH parts AS (SELECT * FROM customer_analytics._shard_partitions(nsp, schema_name)),
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
          FROM customer_analytics._shard_relations(nsp, schema_name) r WHERE r.ord > 1 AND r.relkind = 'p')
    SELECT 3, c.ord, 'co-location'::text, c.mismatch IS NULL,
           CASE WHEN c.mismatch IS NULL
                THEN c.qname || ': the same partition bounds as customers, each on the customers'' server'
                     || CASE c.name WHEN 'sales_order_lines' THEN ' (each line must carry its order''s customer_code)' ELSE '' END
                ELSE c.qname || ': ' || c.mismatch END,
           'Partition every table with the same modulus and remainders as customers, and put each remainder''s partitions on one server.'
      FROM coloc c
$$;

-- Check, on the shards (the one check that connects to them): every line
-- of sales_order_lines is on the shard of its order.  A line whose order is
-- not in the sales_orders partition of the same bound (written on another
-- shard than its order, or with no order at all) is left out of its order's
-- total by the shard's order_totals view and by the shard's rollup, with no
-- error anywhere.  One row per shard: the count, and one such line's order
-- key for an example; a shard that cannot be reached, or that the caller
-- has no user mapping for, is reported as not checked.  The count is one
-- outer join of the shard's lines and orders, run on the shard
-- (postgres_fdw ships the join and the aggregates: one row travels).
CREATE FUNCTION customer_analytics._shard_check_line_placement(nsp oid, schema_name text)
RETURNS TABLE(o1 integer, o2 integer, check_name text, ok boolean, detail text, hint text)
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
DECLARE
    p record;
    n bigint;
    example text;
BEGIN
    FOR p IN SELECT l.partid AS lines, l.partname AS lines_name, o.partid AS orders, o.partname AS orders_name,
                    l.srvid, l.srvname
               FROM customer_analytics._shard_partitions(nsp, schema_name) l
               JOIN customer_analytics._shard_partitions(nsp, schema_name) o
                 ON o.ord = 2 AND o.bound = l.bound AND o.srvid = l.srvid
              WHERE l.ord = 3 AND l.fdwname = 'postgres_fdw'
              ORDER BY l.srvname, l.partname LOOP
        o1 := 3; o2 := 9; check_name := 'lines on their order''s shard';
        hint := NULL;
        IF customer_analytics._shard_user_mapping(p.srvid, (SELECT ro.oid FROM pg_roles ro WHERE ro.rolname = current_user)) IS NULL THEN
            ok := false;
            detail := format('server %s: not checked: no user mapping for %s', p.srvname, current_user);
            hint := format('CREATE USER MAPPING FOR %I SERVER %I, then run the check again.', current_user, p.srvname);
            RETURN NEXT;
            CONTINUE;
        END IF;
        BEGIN
            -- the filter inside the aggregates: a WHERE ... IS NULL would
            -- make an anti-join, which postgres_fdw 15 does not ship, and
            -- every line would travel
            EXECUTE format('SELECT count(*) FILTER (WHERE o.order_number IS NULL),'
                           ' min(l.order_type::text || '' '' || l.order_number::text) FILTER (WHERE o.order_number IS NULL)'
                           ' FROM %s l LEFT JOIN %s o ON o.order_type = l.order_type AND o.order_number = l.order_number',
                           p.lines::regclass, p.orders::regclass)
               INTO n, example;
        EXCEPTION WHEN connection_exception THEN
            ok := false;
            detail := format('server %s: not checked: %s', p.srvname, SQLERRM);
            hint := format('Make server %I reachable, then run the check again.', p.srvname);
            RETURN NEXT;
            CONTINUE;
        END;
        ok := n = 0;
        IF ok THEN
            detail := format('server %s: every line of %s has its order in %s', p.srvname, p.lines_name, p.orders_name);
        ELSE
            detail := format('server %s: %s line(s) of %s whose order is not in %s (e.g. order %s): '
                             'no order total counts them', p.srvname, n, p.lines_name, p.orders_name, example);
            hint := format('Move each such line to the shard of its order, in one transaction: INSERT it through %I.sales_order_lines '
                           'with its order''s customer_code, and DELETE it from %s; delete the lines whose order exists nowhere.',
                           schema_name, p.lines_name);
        END IF;
        RETURN NEXT;
    END LOOP;
END $_$;

-- Checks of each foreign server: it ships the extension's functions,
-- estimates remotely, scans asynchronously, fetches in large batches, and
-- maps the current role.
CREATE FUNCTION customer_analytics._shard_check_servers(nsp oid, schema_name text)
RETURNS TABLE(o1 integer, o2 integer, check_name text, ok boolean, detail text, hint text)
    LANGUAGE sql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
    WITH servers AS (SELECT * FROM customer_analytics._shard_servers(nsp, schema_name))
    SELECT 4, 1, 'extensions'::text,
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
$$;

-- Check: rollup_changes, when the schema has one, is partitioned over every
-- server of the customers with the columns of rollup_order_changes() (the
-- order rows are what a campaign's refresh applies).
CREATE FUNCTION customer_analytics._shard_check_rollup_changes(nsp oid, schema_name text)
RETURNS TABLE(o1 integer, o2 integer, check_name text, ok boolean, detail text, hint text)
    LANGUAGE sql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
    SELECT 5, 0, 'per-shard rollups'::text, rc.problem IS NULL,
           CASE WHEN rc.problem IS NOT NULL THEN format('%I.rollup_changes: %s', schema_name, rc.problem)
                WHEN rc.relid IS NULL THEN format('no %I.rollup_changes: campaign refreshes recompute in full', schema_name)
                ELSE format('%I.rollup_changes on %s: campaign refreshes read each shard''s changes', schema_name, rc.servers) END,
           'On each shard: SELECT customer_analytics.enable_rollup(''cosmos_sync''); CREATE OR REPLACE VIEW cosmos_sync.rollup_changes AS '
           'SELECT * FROM customer_analytics.rollup_order_changes(''cosmos_sync''). Here: a table rollup_changes PARTITION BY HASH (customer_code) '
           'with the customers'' bounds, each partition a foreign table over that view on the customers'' server (docs/sharding.md).'
      FROM (SELECT c.oid AS relid,
                   (SELECT string_agg(DISTINCT s.srvname::text, ', ' ORDER BY s.srvname::text)
                      FROM pg_inherits i JOIN pg_foreign_table ft ON ft.ftrelid = i.inhrelid
                      JOIN pg_foreign_server s ON s.oid = ft.ftserver WHERE i.inhparent = c.oid) AS servers,
                   CASE WHEN c.oid IS NULL THEN NULL
                        WHEN c.relkind <> 'p' THEN 'not a partitioned table'
                        WHEN m.missing IS NOT NULL THEN 'lacks ' || m.missing
                        ELSE (SELECT 'no partition on server ' || string_agg(DISTINCT p.srvname, ', ' ORDER BY p.srvname)
                                FROM customer_analytics._shard_partitions(nsp, schema_name) p
                               WHERE p.ord = 1 AND p.srvid IS NOT NULL
                                 AND p.srvid NOT IN (SELECT ft.ftserver FROM pg_inherits i
                                                       JOIN pg_foreign_table ft ON ft.ftrelid = i.inhrelid
                                                      WHERE i.inhparent = c.oid)) END AS problem
              FROM (SELECT 1) one
              LEFT JOIN pg_class c ON c.relnamespace = nsp AND c.relname = 'rollup_changes'
              LEFT JOIN LATERAL (
                  SELECT string_agg(x.col, ', ' ORDER BY x.n) AS missing
                    FROM unnest(ARRAY['customer_code', 'xid', 'generation', 'rollup_state', 'snapshot', 'campaigns',
                                      'system_identifier', 'order_date', 'total', 'quantity', 'sign']) WITH ORDINALITY x(col, n)
                   WHERE NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = x.col
                                        AND a.attnum > 0 AND NOT a.attisdropped)) m ON true) rc
$$;

-- Sharded sources (issue 14): check a coordinator schema against the data
-- contract of docs/sharding.md.  customers, sales_orders,
-- sales_order_lines and order_totals (one row per order, a view on each
-- shard) hash-partitioned by customer_code with the same bounds, each bound's
-- partitions postgres_fdw foreign tables on one server; the servers ship the
-- extension's functions (extensions 'customer_analytics'), estimate
-- remotely, scan asynchronously, fetch in large batches and have a user
-- mapping for the caller; and, on the shards themselves, every line is on
-- its order's shard (_shard_check_line_placement, the only check that
-- connects to them).  One row per check (one function each).
CREATE FUNCTION customer_analytics.check_sharded_source(source_schema text DEFAULT NULL::text) RETURNS TABLE(check_name text, ok boolean, detail text, hint text)
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
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
    SELECT c.check_name, c.ok, c.detail, CASE WHEN NOT c.ok THEN c.hint END
      FROM (SELECT * FROM customer_analytics._shard_check_partition_keys(nsp, schema_name)
            UNION ALL SELECT * FROM customer_analytics._shard_check_order_totals(nsp, schema_name)
            UNION ALL SELECT * FROM customer_analytics._shard_check_foreign_partitions(nsp, schema_name)
            UNION ALL SELECT * FROM customer_analytics._shard_check_colocation(nsp, schema_name)
            UNION ALL SELECT * FROM customer_analytics._shard_check_line_placement(nsp, schema_name)
            UNION ALL SELECT * FROM customer_analytics._shard_check_servers(nsp, schema_name)
            UNION ALL SELECT * FROM customer_analytics._shard_check_rollup_changes(nsp, schema_name)
            UNION ALL
            SELECT 5, 1, 'pushdown', pushdown,
                   'customer_analytics.shard_pushdown is ' || CASE WHEN pushdown THEN 'on' ELSE 'off' END,
                   'SET customer_analytics.shard_pushdown = on: with it off the functions read the sharded tables as on one server.'
           ) c
     ORDER BY c.o1, c.o2, c.detail;
END $_$;

COMMENT ON FUNCTION customer_analytics.check_sharded_source(source_schema text) IS 'Check a coordinator schema sharded by customer_code over postgres_fdw (partitioning, co-location, foreign servers'' options, user mappings): one row per check, with a hint for each problem';

-- On a shard: why the current role cannot read the recorded changes of
-- source_schema's rollup (NULL: it can): the rollup is not current, or the
-- role may not read its table of changes.
CREATE FUNCTION customer_analytics._rollup_changes_problem(source_schema text) RETURNS text
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    id integer := (SELECT x.id FROM customer_analytics.rollups x WHERE x.source_schema = _rollup_changes_problem.source_schema);
    why text := (customer_analytics._rollup_for_reading(source_schema)).reason;
BEGIN
    IF why IS NULL AND NOT has_table_privilege(customer_analytics._rollup_dirty_table(id), 'SELECT') THEN
        why := 'no SELECT privilege on ' || customer_analytics._rollup_dirty_table(id);
    END IF;
    RETURN why;
END $$;

-- True when every rule of _rollup_changes_problem(source_schema) is
-- plainly met (it would return NULL), read from the catalog caches without
-- planning a query per rule (src/rollup_changes_status.c); false when one
-- may not be: the callers then ask _rollup_changes_problem(), the rules'
-- one statement, which says why.  On a shard, for its status row; on any
-- server, _rollup_for_reading's shortcut (its rules are a subset).
CREATE FUNCTION customer_analytics._rollup_changes_intact(source_schema text) RETURNS boolean
    LANGUAGE c STABLE STRICT
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS 'MODULE_PATHNAME', 'rollup_changes_intact';

-- On a shard: the status row of rollup_order_changes() (customer_code and
-- xid NULL): the rollup's generation, 'current' or why its changes cannot
-- be followed (_rollup_changes_problem, asked only when
-- _rollup_changes_intact is not sure), this transaction's snapshot, how
-- many campaigns of this server read the source, the cluster's system
-- identifier.  C (src/rollup_changes_status.c): a coordinator's refresh
-- reads it in a fresh backend on every shard, where an SQL function's
-- statements were planned at each call.
CREATE FUNCTION customer_analytics._rollup_changes_status(source_schema text) RETURNS TABLE(customer_code text, xid xid8, generation bigint, rollup_state text, snapshot pg_snapshot, campaigns bigint, system_identifier bigint, order_date date, total numeric, quantity numeric, sign smallint)
    LANGUAGE c STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS 'MODULE_PATHNAME', 'rollup_changes_status';

-- On a shard: true when the current role reads the recorded changes of
-- source_schema's rollup and they are kept in table dirty (the view of
-- create_rollup_changes_view tests it once per query, before its scan);
-- _rollup_changes_problem is asked only when _rollup_changes_intact's test
-- is not sure (C, src/rollup_changes_status.c).
CREATE FUNCTION customer_analytics._rollup_changes_readable(source_schema text, dirty regclass) RETURNS boolean
    LANGUAGE c STABLE STRICT
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS 'MODULE_PATHNAME', 'rollup_changes_readable';

-- On a shard: (re)create the view view_name in source_schema that a
-- coordinator's rollup_changes partition reads: the rows of
-- rollup_order_changes(), with the recorded changes read from the rollup's
-- table of changes in the view itself, so that the coordinator's filter
-- (its snapshot of the shard, a WHERE on xid) reaches that table's xid
-- index: a refresh reads the changes since its snapshot, not every change
-- recorded since the last reset_rollup_changes.  The view reads the table
-- as its owner (the caller), and returns the changes only to roles that
-- may read them (else its status row says why, as rollup_order_changes()
-- does).
CREATE FUNCTION customer_analytics.create_rollup_changes_view(source_schema text DEFAULT NULL::text, view_name text DEFAULT 'rollup_changes'::text) RETURNS regclass
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
DECLARE
    src text := customer_analytics._source_schema(source_schema);
    id integer := (SELECT x.id FROM customer_analytics.rollups x WHERE x.source_schema = src);
    dirty regclass;
BEGIN
    IF id IS NULL THEN
        RAISE EXCEPTION 'source schema "%" has no order rollup', src
            USING ERRCODE = 'undefined_object',
                  HINT = format('Run SELECT customer_analytics.enable_rollup(%L) first.', src);
    END IF;
    dirty := customer_analytics._rollup_dirty_table(id)::regclass;
    IF NOT has_table_privilege(dirty, 'SELECT') THEN
        RAISE EXCEPTION 'permission denied to read %, the recorded changes of the rollup of "%"', dirty, src
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'Create the view as the rollup''s owner or one of its readers (enable_rollup''s readers): it reads the changes as its owner.';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = dirty AND a.attname = 'sign' AND NOT a.attisdropped) THEN
        RAISE EXCEPTION 'the rollup of "%" records no order rows (it was built before 1.5)', src
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = format('Run SELECT customer_analytics.rebuild_rollup(%L) first.', src);
    END IF;
    EXECUTE format('CREATE OR REPLACE VIEW %I.%I AS'
                   ' SELECT s.customer_code, s.xid, s.generation, s.rollup_state, s.snapshot, s.campaigns, s.system_identifier,'
                   ' s.order_date, s.total, s.quantity, s.sign FROM customer_analytics._rollup_changes_status(%L) s'
                   ' UNION ALL'
                   ' SELECT d.customer_code, d.xid, NULL::bigint, NULL::text, NULL::pg_catalog.pg_snapshot, NULL::bigint, NULL::bigint,'
                   ' d.order_date, d.total, d.quantity, d.sign FROM %s d'
                   ' WHERE customer_analytics._rollup_changes_readable(%L, %L::regclass)',
                   src, view_name, src, dirty, src, dirty);
    EXECUTE format('COMMENT ON VIEW %I.%I IS %L', src, view_name,
                   format('The rollup''s status and recorded changes, read by a coordinator''s rollup_changes partition '
                          '(customer_analytics.create_rollup_changes_view(%L, %L); docs/sharding.md)', src, view_name));
    RETURN format('%I.%I', src, view_name)::regclass;
END $_$;

COMMENT ON FUNCTION customer_analytics.create_rollup_changes_view(source_schema text, view_name text) IS 'On a shard: create the view of the rollup''s status and recorded changes that a coordinator''s rollup_changes partition reads, with its filter reaching the changes'' xid index (docs/sharding.md)';

-- On a shard: one status row (customer_code and xid NULL): the rollup's
-- generation, 'current' or why it cannot be followed, this transaction's
-- snapshot, how many campaigns of this server read the source (their
-- refreshes prune the recorded changes), the cluster's system identifier
-- (transaction ids are only comparable within one cluster); then, when the
-- rollup is current,
-- every recorded change (the customer, the writing transaction's id;
-- customer_code NULL: a TRUNCATE).  rollup_order_changes() without the
-- order rows' columns.
CREATE FUNCTION customer_analytics.rollup_changes(source_schema text DEFAULT NULL::text) RETURNS TABLE(customer_code text, xid xid8, generation bigint, rollup_state text, snapshot pg_snapshot, campaigns bigint, system_identifier bigint)
    LANGUAGE sql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
    SELECT x.customer_code, x.xid, x.generation, x.rollup_state, x.snapshot, x.campaigns, x.system_identifier
      FROM customer_analytics.rollup_order_changes(source_schema) x
$$;

COMMENT ON FUNCTION customer_analytics.rollup_changes(source_schema text) IS 'On a shard: the state of the source''s rollup and the customers its triggers recorded as changed, for a coordinator''s incremental campaign refresh (docs/sharding.md)';

-- On a shard: rollup_changes() with each recorded change's order row
-- (order_date, total, quantity; sign -1 the order's row before the
-- writing transaction, +1 after; all NULL when the customer's own row
-- changed), what a coordinator's campaign refresh applies as a delta.
CREATE FUNCTION customer_analytics.rollup_order_changes(source_schema text DEFAULT NULL::text) RETURNS TABLE(customer_code text, xid xid8, generation bigint, rollup_state text, snapshot pg_snapshot, campaigns bigint, system_identifier bigint, order_date date, total numeric, quantity numeric, sign smallint)
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    src text := customer_analytics._source_schema(source_schema);
BEGIN
    RETURN QUERY SELECT * FROM customer_analytics._rollup_changes_status(src);
    IF customer_analytics._rollup_changes_problem(src) IS NULL THEN
        RETURN QUERY EXECUTE format('SELECT x.customer_code, x.xid, NULL::bigint, NULL::text, NULL::pg_snapshot, NULL::bigint,'
                                    ' NULL::bigint, x.order_date, x.total, x.quantity, x.sign FROM %s x',
                                    customer_analytics._rollup_dirty_table(
                                        (SELECT r.id FROM customer_analytics.rollups r WHERE r.source_schema = src)));
    END IF;
END $$;

COMMENT ON FUNCTION customer_analytics.rollup_order_changes(source_schema text) IS 'On a shard: rollup_changes() with the order rows of each recorded change (date, total, quantity, sign), which a coordinator''s campaign refresh applies as a delta (docs/sharding.md)';
