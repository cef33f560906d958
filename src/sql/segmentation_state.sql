-- segmentation_state.sql
--	Segmentation feature state: per-customer features kept from the rollup's order changes.

-- Internal: customer_features() derived from a segmentation's per-customer
-- feature state table.
CREATE FUNCTION customer_analytics._customer_features_from_state(state regclass, feature_window daterange, as_of date) RETURNS TABLE(customer_code text, visits bigint, total_spend numeric, ticket_size numeric, skus bigint, total_quantity numeric, first_order date, last_order date, recency_days integer, tenure_days integer, span_days integer, quantity_per_visit double precision, days_per_visit double precision, skus_per_visit double precision, diff double precision, is_repeat boolean, features double precision[])
    LANGUAGE c STABLE
    AS 'MODULE_PATHNAME', 'customer_features_from_state';

COMMENT ON FUNCTION customer_analytics._customer_features_from_state(state regclass, feature_window daterange, as_of date) IS 'internal: customer_features() derived from a segmentation''s per-customer feature state table';

-- Internal: customer_features() of some customers only, their codes in the
-- query that reads the orders (over a sharded source each shard reads and
-- folds only theirs).
CREATE FUNCTION customer_analytics._customer_features_of(feature_window daterange, as_of date, source_schema text, customers text[]) RETURNS TABLE(customer_code text, visits bigint, total_spend numeric, ticket_size numeric, skus bigint, total_quantity numeric, first_order date, last_order date, recency_days integer, tenure_days integer, span_days integer, quantity_per_visit double precision, days_per_visit double precision, skus_per_visit double precision, diff double precision, is_repeat boolean, features double precision[])
    LANGUAGE c STABLE
    AS 'MODULE_PATHNAME', 'customer_features_of';

COMMENT ON FUNCTION customer_analytics._customer_features_of(feature_window daterange, as_of date, source_schema text, customers text[]) IS 'internal: customer_features() of these customers only, read from the source with their codes (a sharded segmentation''s feature state follows the shards'' changes with it)';

-- Drop the segmentation delta refresh's temporary tables if this session has them.
CREATE FUNCTION customer_analytics._drop_segmentation_scratch() RETURNS void
    LANGUAGE sql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
    SELECT customer_analytics._drop_temp_tables('customer_analytics_seg_changed', 'customer_analytics_seg_skus',
                                                'customer_analytics_seg_sku_counts', 'customer_analytics_seg_member_keys',
                                                'customer_analytics_seg_features')
$$;

-- Drop a segmentation's state tables (those that carry its marker); returns how many.
CREATE FUNCTION customer_analytics._drop_segmentation_state(s customer_analytics.segmentations) RETURNS integer
    LANGUAGE sql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
    SELECT customer_analytics._require_state_schema('{USAGE}');
    SELECT customer_analytics._drop_marked_tables(customer_analytics._state_schema(), ARRAY[n.state, n.sku_state],
                                                  customer_analytics._segmentation_state_marker(s))
      FROM customer_analytics._segmentation_state_names(s) n
$$;

-- Build a segmentation's state in full.  From the rollup (r not NULL), as
-- of one snapshot, which it returns: the state then follows the order
-- changes.  Otherwise from customer_features() (the source tables), with
-- no snapshot and no sku rows: into the kept tables when the segmentation
-- has them, else into a temporary table (no state tables kept for the views
-- of a source without a rollup).  A relation that has a state table's name
-- and is not it: a WARNING, and the temporary table.  s is resolved.
CREATE FUNCTION customer_analytics._segmentation_build_state(s customer_analytics.segmentations, r customer_analytics.rollups, OUT state regclass, OUT sku_state regclass, OUT snapshot pg_snapshot) RETURNS record
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
DECLARE
    t record;
BEGIN
    PERFORM customer_analytics._require_state_schema('{USAGE}');
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
END $_$;

-- The state table the views of segmentation s (resolved) read their
-- features from, or NULL (they compute them): one made current by this
-- transaction's refresh for this window, a table of the caller's (its
-- <name>_features_state, or this session's temporary one).
CREATE FUNCTION customer_analytics._segmentation_current_state(s customer_analytics.segmentations) RETURNS regclass
    LANGUAGE sql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
    SELECT x.state_table::regclass
      FROM customer_analytics.segmentation_refresh_state x
     WHERE x.segmentation = s.name
       AND x.features_xid = pg_current_xact_id_if_assigned()
       AND x.feature_window = s.feature_window
       AND x.state_table IN (to_regclass(format('%I.%I', customer_analytics._state_schema(),
                                                (customer_analytics._segmentation_state_names(s)).state)),
                             to_regclass('pg_temp.customer_analytics_seg_state'))
       AND obj_description(x.state_table, 'pg_class') = customer_analytics._segmentation_state_marker(s)
       AND pg_has_role((SELECT c.relowner FROM pg_class c WHERE c.oid = x.state_table), 'USAGE')
$$;

-- Apply the order changes committed since the state's snapshot to a
-- segmentation's state, as of one new snapshot, which it returns (NULL,
-- nothing done, when there is a change it cannot follow: see
-- _rollup_delta_guard_sql).  An order among the changes that the full
-- computation refuses (a date it cannot read) raises its error, and
-- nothing is applied.  s is resolved; the caller holds the refresh
-- lock.  The steps, each a builder of its statements: the changed
-- customers, their product codes (_segmentation_delta_skus_sql), their
-- features (_segmentation_delta_state_sql).
CREATE FUNCTION customer_analytics._segmentation_delta_refresh(s customer_analytics.segmentations, x customer_analytics.segmentation_refresh_state, r customer_analytics.rollups, OUT snapshot pg_snapshot, OUT changed_customers bigint, OUT order_changes bigint) RETURNS record
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    SET jit TO 'off'
    AS $_$
DECLARE
    dirty text := customer_analytics._rollup_dirty_table(r.id);
    since text := format('x.xid >= pg_catalog.pg_snapshot_xmin(%1$L::pg_snapshot)'
                         ' AND NOT pg_catalog.pg_visible_in_snapshot(x.xid, %1$L::pg_snapshot)', x.snapshot);
    -- the changed orders' rows in the window
    rows text := format('x.sign IS NOT NULL AND %s AND x.order_date <@ %L::daterange', since, s.feature_window);
    state regclass := x.state_table;
    sku regclass := x.sku_table;
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
        -- the changed customers
        format('INSERT INTO pg_temp.customer_analytics_seg_changed SELECT DISTINCT x.customer_code FROM %s x WHERE %s',
               dirty, rows),
        'ANALYZE pg_temp.customer_analytics_seg_changed']
        -- their product codes
        || customer_analytics._segmentation_delta_skus_sql(r, sku, rows)
        -- their features
        || customer_analytics._segmentation_delta_state_sql(s, r, state, rows));
    IF snapshot IS NOT NULL THEN
        SELECT count(*) INTO changed_customers FROM pg_temp.customer_analytics_seg_changed;
        EXECUTE format('SELECT count(*) FROM %s x WHERE x.sign IS NOT NULL AND %s AND pg_visible_in_snapshot(x.xid, %L::pg_snapshot)',
                       dirty, since, snapshot) INTO order_changes;
    END IF;
    -- the changed customers' table kept for the members view
    -- (_refresh_segmentation_as_owner drops it)
    PERFORM customer_analytics._drop_temp_tables('customer_analytics_seg_skus', 'customer_analytics_seg_sku_counts');
END $_$;

-- The segmentation delta refresh's statements on the product codes of the
-- changed customers: the net change of lines per (customer, product code)
-- among the changed orders' rows (changed_rows, SQL over alias x of the
-- rollup's dirty rows), with their signs, into
-- pg_temp.customer_analytics_seg_skus; the change of each customer's
-- distinct codes (a code whose count reaches 0 leaves the customer's codes,
-- a new one joins them) into pg_temp.customer_analytics_seg_sku_counts; the
-- sku state table (sku) adjusted.
CREATE FUNCTION customer_analytics._segmentation_delta_skus_sql(r customer_analytics.rollups, sku regclass,
                                                                changed_rows text) RETURNS text[]
    LANGUAGE sql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
    SELECT ARRAY[
        -- the rows first netted per (customer, codes): an order changed
        -- without a change of its codes (its old and new rows) cancels out
        -- before its codes are unnested
        format('INSERT INTO pg_temp.customer_analytics_seg_skus'
               ' SELECT g.customer_code, p.code, sum(g.lines)::bigint'
               ' FROM (SELECT x.customer_code, x.product_codes, sum(x.sign) AS lines FROM %s x'
               '       WHERE %s GROUP BY 1, 2 HAVING sum(x.sign) <> 0) g, unnest(g.product_codes) p(code)'
               ' WHERE p.code IS NOT NULL GROUP BY 1, 2 HAVING sum(g.lines) <> 0',
               customer_analytics._rollup_dirty_table(r.id), changed_rows),
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
               sku)]
$_$;

-- The segmentation delta refresh's statements on the feature state (state)
-- of the changed customers: visits and sums adjusted by the changed orders'
-- rows (changed_rows, SQL over alias x of the rollup's dirty rows), a sum
-- NULL again when no order has one; new customers added; a customer's
-- first or last order looked up again in the rollup (lookup) only when a
-- removed order may have been it; the counts of distinct product codes
-- adjusted (pg_temp.customer_analytics_seg_sku_counts); customers left with
-- no visit deleted.
CREATE FUNCTION customer_analytics._segmentation_delta_state_sql(s customer_analytics.segmentations, r customer_analytics.rollups,
                                                                 state regclass, changed_rows text) RETURNS text[]
    LANGUAGE sql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
    SELECT ARRAY[
        -- the rows netted per (customer, order date) first: the dates
        -- added and removed are those whose count of orders rose or fell
        -- (an order changed on the same date is neither, and needs no
        -- lookup of the customer's first or last order)
        format('WITH e AS (SELECT x.customer_code, x.order_date, sum(x.sign) AS visits, sum(x.sign * x.total) AS spend,'
               '   COALESCE(sum(x.sign) FILTER (WHERE x.total IS NOT NULL), 0) AS spend_orders,'
               '   sum(x.sign * x.quantity) AS quantity,'
               '   COALESCE(sum(x.sign) FILTER (WHERE x.quantity IS NOT NULL), 0) AS quantity_orders'
               '   FROM %2$s x WHERE %3$s GROUP BY 1, 2),'
               ' d AS (SELECT e.customer_code, sum(e.visits)::bigint AS visits, sum(e.spend) AS spend,'
               '   sum(e.spend_orders)::bigint AS spend_orders, sum(e.quantity) AS quantity,'
               '   sum(e.quantity_orders)::bigint AS quantity_orders,'
               '   min(e.order_date) FILTER (WHERE e.visits > 0) AS added_first,'
               '   max(e.order_date) FILTER (WHERE e.visits > 0) AS added_last,'
               '   min(e.order_date) FILTER (WHERE e.visits < 0) AS removed_first,'
               '   max(e.order_date) FILTER (WHERE e.visits < 0) AS removed_last'
               '   FROM e GROUP BY 1),'
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
               state, customer_analytics._rollup_dirty_table(r.id), changed_rows,
               format(o.lookup, 'min', 's.customer_code'), format(o.lookup, 'max', 's.customer_code'),
               format(o.lookup, 'min', 'd.customer_code'), format(o.lookup, 'max', 'd.customer_code')),
        format('UPDATE %s s SET skus = s.skus + c.skus FROM pg_temp.customer_analytics_seg_sku_counts c'
               ' WHERE s.customer_code = c.customer_code', state),
        format('DELETE FROM %s s USING pg_temp.customer_analytics_seg_changed c'
               ' WHERE s.customer_code = c.customer_code AND s.visits <= 0', state)]
      FROM (SELECT format('(SELECT %%s(r.order_date) FROM %s r WHERE r.customer_code = %%s AND r.order_date <@ %L::daterange)',
                          customer_analytics._rollup_table(r.id), s.feature_window) AS lookup) o
$_$;

-- The rollup's orders in the feature window as rows o(customer_code, d,
-- total, quantity, product_codes): the orders customer_features() reads.
CREATE FUNCTION customer_analytics._segmentation_rollup_orders_sql(s customer_analytics.segmentations, r customer_analytics.rollups) RETURNS text
    LANGUAGE sql IMMUTABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
    SELECT format('(SELECT o.* FROM (SELECT r.customer_code,'
                  ' customer_analytics._rollup_order_date(r.order_date, r.order_date_raw, r.order_type, r.order_number) AS d,'
                  ' r.total, r.quantity, r.product_codes FROM %s r WHERE r.customer_code IS NOT NULL) o'
                  ' WHERE o.d <@ %L::daterange)', customer_analytics._rollup_table(r.id), s.feature_window)
$$;

-- _segmentation_update_state() of a segmentation on a coordinator schema
-- with per-shard rollups (a rollup_changes table): its feature state (the
-- kept tables, rows as customer_features() gives them) follows the shards'
-- changes: the customers changed on the shards since the shards' snapshots
-- recorded with the state have their rows recomputed, the per-customer
-- work on their shards (_customer_features_of), and replaced; else the
-- state is computed in full from the shards (the same rows as
-- customer_features()).  Every shard's status is read first: it fixes the
-- snapshot the recomputation reads that shard with, recorded for the next
-- refresh.  Past customer_analytics.shard_incremental_max_fraction of the
-- customers, in full (the snapshots kept).  s as stored, resolved its
-- resolved form, x its refresh state (no row: NULL fields).
CREATE FUNCTION customer_analytics._segmentation_shard_state(s customer_analytics.segmentations, resolved customer_analytics.segmentations,
                                                             x customer_analytics.segmentation_refresh_state,
                                                             OUT mode text, OUT delta boolean, OUT unchanged boolean) RETURNS record
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    SET jit TO 'off'
    AS $_$
DECLARE
    kept regclass := to_regclass(format('%I.%I', customer_analytics._state_schema(),
                                        (customer_analytics._segmentation_state_names(resolved)).state));
    problem text;
    sh record;
    t record;
    state regclass;
BEGIN
    delta := false;
    unchanged := false;
    problem := CASE WHEN x.segmentation IS NULL OR x.shard_snapshots IS NULL THEN 'no incremental state yet'
                    WHEN x.feature_window <> resolved.feature_window
                        THEN CASE WHEN resolved.rolling IS NOT NULL THEN 'the feature window moved' ELSE 'the feature window changed' END
                    WHEN kept IS NULL OR x.state_table IS DISTINCT FROM kept
                         OR obj_description(kept, 'pg_class') IS DISTINCT FROM customer_analytics._segmentation_state_marker(resolved)
                         OR NOT pg_has_role((SELECT relowner FROM pg_class WHERE oid = kept), 'USAGE')
                        THEN 'the per-customer state tables were changed' END;
    PERFORM customer_analytics._report_progress(format('refresh_segmentation(%L): reading the shards'' changes', s.name));
    sh := customer_analytics._shard_changes_since(format('segmentation "%s"', s.name), s.source_schema,
                                                  (SELECT oid FROM pg_roles WHERE rolname = current_user),
                                                  x.shard_snapshots, problem);
    -- past a share of the customers, recomputing them costs more than
    -- computing every customer's features (the snapshots are kept)
    IF sh.usable THEN
        sh.reason := customer_analytics._shard_incremental_refusal(s.source_schema, cardinality(sh.changed));
        sh.usable := sh.reason IS NULL;
    END IF;
    IF sh.usable THEN
        PERFORM customer_analytics._report_progress(format('refresh_segmentation(%L): applying the changed customers', s.name));
        state := x.state_table;
        IF cardinality(sh.changed) > 0 THEN
            EXECUTE format('DELETE FROM %s s WHERE s.customer_code = ANY ($1)', state) USING sh.changed;
            EXECUTE format('INSERT INTO %s SELECT f.customer_code, f.visits, f.total_spend, NULL, f.total_quantity,'
                           ' NULL, f.skus, f.first_order, f.last_order'
                           ' FROM customer_analytics._customer_features_of($1, $2, $3, $4) f', state)
              USING resolved.feature_window, resolved.as_of, s.source_schema, sh.changed;
        END IF;
        delta := true;
        unchanged := cardinality(sh.changed) = 0 AND x.as_of IS NOT DISTINCT FROM resolved.as_of;
        mode := format('delta (%s changed customers from %s shard rollups%s)', cardinality(sh.changed), sh.shards,
                       CASE WHEN unchanged THEN '; views unchanged' ELSE '' END);
        UPDATE customer_analytics.segmentation_refresh_state y
           SET shard_snapshots = sh.snapshots, features_xid = pg_current_xact_id(), as_of = resolved.as_of
         WHERE y.segmentation = s.name;
        RETURN;
    END IF;
    mode := format('full (%s)', sh.reason);
    PERFORM customer_analytics._report_progress(format('refresh_segmentation(%L): computing the features', s.name));
    BEGIN
        t := customer_analytics._segmentation_state_tables(resolved, false);
    EXCEPTION WHEN duplicate_table THEN
        RAISE WARNING 'segmentation "%" keeps no per-customer feature state: %', s.name, SQLERRM
            USING HINT = 'Its refreshes compute the features in full until this is fixed.';
        t := customer_analytics._segmentation_state_tables(resolved, true);
        sh.snapshots := NULL;
    END;
    EXECUTE format('TRUNCATE %s', t.state);
    EXECUTE format('INSERT INTO %s SELECT f.customer_code, f.visits, f.total_spend, NULL, f.total_quantity,'
                   ' NULL, f.skus, f.first_order, f.last_order'
                   ' FROM customer_analytics.customer_features($1, $2, $3) f', t.state)
      USING resolved.feature_window, resolved.as_of, s.source_schema;
    INSERT INTO customer_analytics.segmentation_refresh_state AS y
           (segmentation, feature_window, state_table, sku_table, generation, snapshot, features_xid, as_of, shard_snapshots)
    VALUES (s.name, resolved.feature_window, t.state, NULL, NULL, NULL, pg_current_xact_id(), resolved.as_of, sh.snapshots)
    ON CONFLICT (segmentation) DO UPDATE
        SET feature_window = excluded.feature_window, state_table = excluded.state_table,
            sku_table = excluded.sku_table, generation = excluded.generation,
            snapshot = excluded.snapshot, features_xid = excluded.features_xid, as_of = excluded.as_of,
            shard_snapshots = excluded.shard_snapshots;
END $_$;

-- The columns of a feature state table: spend_orders, quantity_orders are
-- the orders with a total, a quantity (NULL in a state copied from
-- customer_features(), which does not tell: its sums are taken as they are).
CREATE FUNCTION customer_analytics._segmentation_state_columns() RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT '(customer_code text PRIMARY KEY, visits bigint NOT NULL, spend numeric, spend_orders bigint,'
          ' quantity numeric, quantity_orders bigint, skus bigint NOT NULL, first_order date, last_order date)' $$;

-- The comment that marks a table as a segmentation's state.
CREATE FUNCTION customer_analytics._segmentation_state_marker(s customer_analytics.segmentations) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT 'customer_analytics: per-customer feature state of segmentation ' || s.name $$;

-- The names of a segmentation's two state tables (in the state schema,
-- _state_schema()): a prefix per kind of table before the name, which is
-- unique among segmentations, so that no two definitions' names meet.
CREATE FUNCTION customer_analytics._segmentation_state_names(s customer_analytics.segmentations, OUT state text, OUT sku_state text) RETURNS record
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT 'segment_features_' || s.name, 'segment_skus_' || s.name $$;

-- Why the recorded state cannot be adjusted by this refresh (NULL: it
-- can).  s is resolved.
CREATE FUNCTION customer_analytics._segmentation_state_problem(s customer_analytics.segmentations, x customer_analytics.segmentation_refresh_state, r customer_analytics.rollups) RETURNS text
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    n record := customer_analytics._segmentation_state_names(s);
    st regclass;
    kt regclass;
BEGIN
    PERFORM customer_analytics._require_state_schema('{USAGE}');
    st := to_regclass(format('%I.%I', customer_analytics._state_schema(), n.state));
    kt := to_regclass(format('%I.%I', customer_analytics._state_schema(), n.sku_state));
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

-- Those of the segmentation's two state tables that exist and carry its marker.
CREATE FUNCTION customer_analytics._segmentation_state_relations(s customer_analytics.segmentations) RETURNS SETOF regclass
    LANGUAGE sql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
    SELECT customer_analytics._marked_tables(customer_analytics._state_schema(), ARRAY[n.state, n.sku_state],
                                             customer_analytics._segmentation_state_marker(s))
      FROM customer_analytics._segmentation_state_names(s) n
$$;

-- Create the state tables if missing (or take back the ones a restore
-- brought), as the caller (the segmentation's owner).  Error when another
-- relation has the name.  Returns them.  With temporary, a state table of
-- this transaction only (pg_temp.customer_analytics_seg_state, created
-- again) and no sku table: the features computed once for this refresh
-- when no order changes are to be applied later.
CREATE FUNCTION customer_analytics._segmentation_state_tables(s customer_analytics.segmentations, temporary boolean, OUT state regclass, OUT sku_state regclass) RETURNS record
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
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
    PERFORM customer_analytics._require_state_schema('{USAGE,CREATE}');
    PERFORM customer_analytics._require_marked_or_absent(customer_analytics._state_schema(), ARRAY[n.state, n.sku_state],
                                                         marker, 'segmentation', s.name, 'per-customer feature state');
    state := customer_analytics._create_marked_table(customer_analytics._state_schema(), n.state,
                                                     customer_analytics._segmentation_state_columns(), marker);
    sku_state := customer_analytics._create_marked_table(customer_analytics._state_schema(), n.sku_state,
        '(customer_code text, product_code text, lines bigint NOT NULL, PRIMARY KEY (customer_code, product_code))', marker);
END $$;

-- Why the features cannot be kept from order changes (NULL: they can): the
-- sums must keep one scale, so the line amounts and quantities must have
-- a fixed one.
CREATE FUNCTION customer_analytics._segmentation_state_unsupported(s customer_analytics.segmentations) RETURNS text
    LANGUAGE sql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
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
CREATE FUNCTION customer_analytics._segmentation_update_state(s customer_analytics.segmentations, OUT mode text, OUT delta boolean, OUT unchanged boolean) RETURNS record
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
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
    SELECT * INTO x FROM customer_analytics.segmentation_refresh_state y WHERE y.segmentation = s.name;
    -- a coordinator schema with per-shard rollups: the state follows the shards' changes
    IF EXISTS (SELECT 1 FROM customer_analytics._shard_rollups(s.source_schema)) THEN
        SELECT u.mode, u.delta, u.unchanged INTO mode, delta, unchanged
          FROM customer_analytics._segmentation_shard_state(s, resolved, x) u;
        RETURN;
    END IF;
    SELECT * INTO r FROM customer_analytics.rollups y WHERE y.source_schema = s.source_schema;
    usable := r.id IS NOT NULL AND (customer_analytics._rollup_for_reading(s.source_schema)).rollup IS NOT NULL;
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
