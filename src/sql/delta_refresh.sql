-- delta_refresh.sql
--	Campaign refresh from the order changes: per-customer state, the changes applied at one snapshot, rows replaced in place.

-- Internal: run statements as of one snapshot (unless guard returns true)
-- and return it.
CREATE FUNCTION customer_analytics._at_one_snapshot(guard text, statements text[]) RETURNS pg_snapshot
    LANGUAGE c
    AS 'MODULE_PATHNAME', 'at_one_snapshot';

COMMENT ON FUNCTION customer_analytics._at_one_snapshot(guard text, statements text[]) IS 'internal: run statements as of one snapshot (unless guard returns true) and return it';

-- Build a campaign's state from the rollup, as of one snapshot, which it
-- returns.  c has its windows resolved; the caller records the result.
CREATE FUNCTION customer_analytics._campaign_build_state(c customer_analytics.campaigns, r customer_analytics.rollups, OUT state regclass, OUT month_state regclass, OUT snapshot pg_snapshot) RETURNS record
    LANGUAGE sql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
    SELECT * FROM customer_analytics._campaign_build_state_from(c,
        format('(SELECT i.* FROM (SELECT r.customer_code, COALESCE(r.total, 0) AS amount,'
               ' customer_analytics._rollup_order_date(r.order_date, r.order_date_raw, r.order_type, r.order_number) AS d'
               ' FROM %s r WHERE r.customer_code IS NOT NULL) i WHERE i.d <@ %L::daterange)',
               customer_analytics._rollup_table(r.id), customer_analytics._campaign_data_window(c)))
$$;

-- Build a campaign's state from orders (SQL of a relation of one row per
-- confirmed order with a customer in the campaign's data window
-- (_campaign_data_window): customer_code, amount (its total, 0 without
-- lines), d (its date, an unreadable one raising the full computation's
-- error)) and the route customers' rows of the customers
-- (_campaign_route_customers_sql), as of one snapshot, which it returns: one
-- server's rollup (_campaign_build_state) or a coordinator's shards
-- (_campaign_shard_build_state).  c has its windows resolved; the caller
-- records the result.
CREATE FUNCTION customer_analytics._campaign_build_state_from(c customer_analytics.campaigns, orders text, OUT state regclass, OUT month_state regclass, OUT snapshot pg_snapshot) RETURNS record
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    t record := customer_analytics._campaign_state_tables(c);
BEGIN
    state := t.state;
    month_state := t.month_state;
    snapshot := customer_analytics._at_one_snapshot(NULL, ARRAY[
        format('TRUNCATE %s, %s', state, month_state),
        format('INSERT INTO %s (customer_code, %s, last_order, route_customer, trade_name, delivery_route,'
               ' shipping_address, csm)'
               ' SELECT g.*, a.customer_code IS NOT NULL, a.trade_name, a.delivery_route, a.shipping_address, a.csm'
               ' FROM (SELECT o.customer_code, %s, max(o.d)'
               '       FROM (SELECT i.customer_code, i.d, %s FROM %s i) o'
               '       GROUP BY o.customer_code) g'
               ' LEFT JOIN (%s) a ON a.customer_code = g.customer_code',
               state, customer_analytics._campaign_state_columns(),
               customer_analytics._campaign_state_aggregates(false), customer_analytics._campaign_state_flags(c, false),
               orders, customer_analytics._campaign_route_customers_sql(c)),
        format('INSERT INTO %s SELECT * FROM customer_analytics.monthly_revenue(ARRAY(SELECT t.customer_code FROM (%s) t), %L::daterange, %L)',
               month_state, customer_analytics._campaign_state_targets_sql(c, state, 'NULL'), c.revenue_window, c.source_schema)]);
END $$;

-- Can the campaign's kept rows be reused (usable, else the reason), and
-- which customers changed since the views' snapshot?  With list_changed
-- false the check alone (changed NULL, no scan of the dirty rows; a
-- TRUNCATE's mark is then left to the delta refresh's own guard).  As 1.3's
-- _campaign_changes(c), which is now this with list_changed true; the dirty
-- rows are read through their xid index.
CREATE FUNCTION customer_analytics._campaign_changes(c customer_analytics.campaigns, OUT usable boolean, OUT changed text[], OUT reason text) RETURNS record
    LANGUAGE sql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$ SELECT * FROM customer_analytics._campaign_changes(c, true) $$;

-- Can the campaign's kept rows be reused (usable, else the reason), and
-- which customers changed since the views' snapshot?  With list_changed
-- false the check alone (changed NULL, no scan of the dirty rows; a
-- TRUNCATE's mark is then left to the delta refresh's own guard).  As 1.3's
-- _campaign_changes(c), which is now this with list_changed true; the dirty
-- rows are read through their xid index.
CREATE FUNCTION customer_analytics._campaign_changes(c customer_analytics.campaigns, list_changed boolean, OUT usable boolean, OUT changed text[], OUT reason text) RETURNS record
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
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
            reason := customer_analytics._rollup_full_reason(r, s.snapshot);
            changed := NULL;
        ELSE
            usable := true;
        END IF;
    END IF;
END $_$;

-- The smallest window covering the four targeting windows: the orders the
-- state counts (target_customers()'s data window).
CREATE FUNCTION customer_analytics._campaign_data_window(c customer_analytics.campaigns) RETURNS daterange
    LANGUAGE sql IMMUTABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
    SELECT range_merge(range_merge(c.spend_window, c.low_ticket_window), range_merge(c.base_window, c.recent_window))
$$;

-- Apply the order changes committed since the state's snapshot to a
-- campaign's state and views, from its rollup r: _campaign_delta_apply over
-- the rollup's dirty rows that the state's snapshot does not see.  (The
-- first test of `since`, implied by the second, lets the xid index skip
-- older rows, dead ones included.)
CREATE FUNCTION customer_analytics._campaign_delta_refresh(c customer_analytics.campaigns, s customer_analytics.campaign_refresh_state, r customer_analytics.rollups, OUT snapshot pg_snapshot, OUT changed_customers bigint, OUT order_changes bigint) RETURNS record
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
DECLARE
    since text := format('x.xid >= pg_catalog.pg_snapshot_xmin(%1$L::pg_snapshot)'
                         ' AND NOT pg_catalog.pg_visible_in_snapshot(x.xid, %1$L::pg_snapshot)', s.state_snapshot);
BEGIN
    SELECT d.snapshot, d.changed_customers, d.order_changes INTO snapshot, changed_customers, order_changes
      FROM customer_analytics._campaign_delta_apply(c, s,
               format('(SELECT * FROM %s x WHERE %s)', customer_analytics._rollup_dirty_table(r.id), since),
               customer_analytics._rollup_table(r.id),
               format('(SELECT r.generation <> %s OR r.state <> ''current'' FROM customer_analytics.rollups r WHERE r.id = %s)',
                      r.generation, r.id),
               ARRAY[customer_analytics._rollup_changes_check_sql(r, since)]) d;
END $_$;

-- Apply signed order changes to a campaign's state and views (from its
-- refresh state s), as of one new snapshot, which it returns (NULL,
-- nothing done, when there is a change it cannot follow: see
-- _rollup_delta_guard_sql).  The one implementation of the delta, for one
-- server's rollup (_campaign_delta_refresh) and for a coordinator over the
-- shards' rollups (_refresh_sharded_campaign).  changes: SQL of a relation
-- of the order changes, in the rollup's dirty table's shape (customer_code,
-- xid, order_date, total, quantity, sign: -1 an order's row before, +1
-- after; NULL: the customer's own row changed), read under alias x;
-- orders: SQL of a relation (customer_code, order_date) holding the dates
-- of the changed customers' orders (at least the latest in the data
-- window of each that lost an order); stale: SQL of a boolean, true when
-- the changes can no longer be followed (a rollup rebuilt since the caller
-- looked); checks: statements run first, as of the snapshot (the changed
-- orders read as the full computation reads them).  An order among the changes that the full
-- computation refuses (a date it cannot read) raises its error, and
-- nothing is applied.  c has its windows resolved; the caller holds the
-- refresh lock.  The steps, each a builder of its statements: the
-- changed customers, their state, targets and months in one pass
-- (_campaign_delta_targets_sql), the long form and the sheet
-- (_campaign_delta_views_sql).  Every statement on a state table, the
-- customers or a view is keyed by the changed customers as an array
-- (customer_code = ANY (ARRAY(SELECT ... FROM pg_temp...))), which the
-- planner turns into probes of the customer key whatever its estimates: the
-- cost follows the change, not the number of customers, targets or rows
-- of a view.
CREATE FUNCTION customer_analytics._campaign_delta_apply(c customer_analytics.campaigns, s customer_analytics.campaign_refresh_state, changes text, orders text, stale text, checks text[], OUT snapshot pg_snapshot, OUT changed_customers bigint, OUT order_changes bigint) RETURNS record
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    SET jit TO 'off'
    AS $_$
DECLARE
    state regclass := s.state_table;
    month_state regclass := s.month_state_table;
    targets regclass := format('%I.%I', c.view_schema, c.name || '_targets')::regclass;
    sheet regclass := format('%I.%I', c.view_schema, c.name || '_monthly')::regclass;
    long regclass := format('%I.%I', c.view_schema, c.name || '_monthly_long')::regclass;
    -- a launched campaign's response rows of its changed members (hook:
    -- no statement when not launched or recomputed in full after)
    launch text[] := customer_analytics._launch_delta_sql(c, s);
    as_recorded boolean;
BEGIN
    -- what REFRESH ... CONCURRENTLY takes, before the snapshot: readers go
    -- on; a plain REFRESH of a view waits instead of slipping in between
    PERFORM customer_analytics._matview_lock(targets);
    PERFORM customer_analytics._matview_lock(sheet);
    PERFORM customer_analytics._matview_lock(long);
    -- (once locked) the targets view and the sheet as the last refresh left
    -- them, no REFRESH by hand since: their rows follow only the targets
    -- that change (_campaign_delta_targets_sql, _campaign_delta_views_sql)
    as_recorded := customer_analytics._campaign_views_as_recorded(s, targets, sheet);
    -- (changes: the customer's order changes, old and new rows.  One row per
    -- customer, as the guard groups them; no index: every statement reads
    -- the list whole, as an array of keys or a hashed join, and an index
    -- written row by row cost as much as the guard's read of the changes
    -- (8,246 customers: 40-70 ms against 18-27 without, under load))
    -- (the scratch tables are kept for the session, emptied here and at
    -- commit: _session_scratch_table)
    PERFORM customer_analytics._session_scratch_table('customer_analytics_changed',
                                              '(customer_code text COLLATE "C" NOT NULL, changes bigint)');

    -- The guard (_at_one_snapshot's) reads the changes once: it lists the
    -- customers whose orders or own row changed, with their number of
    -- order changes, into the scratch table as it tests them for a change
    -- the state cannot follow.  Its test is _rollup_delta_guard_sql's
    -- (which the segmentations' refresh uses as is): stale (the rollup rebuilt),
    -- a TRUNCATE's mark (no customer), a total or quantity that is not a
    -- finite number, a row of this transaction.  When it refuses, the
    -- list is left unused (and dropped below).  The change rows are read
    -- in one aggregate per customer that also tests them (a customer_code
    -- NULL is a group of its own), not kept in a CTE read three times; a
    -- number is finite when it has a scale (scale() is NULL for NaN and
    -- the infinities: one look at its header, not three comparisons); this
    -- transaction's id is read once.  (Grouping by customer in
    -- the "C" collation throughout: the same groups, without the database
    -- collation's slower comparisons; the list is written in the order of
    -- the customer keys' indexes, so that each statement's array of keys
    -- below comes already sorted to the index scans, which sort it.  The
    -- list is not ANALYZEd: a temporary table never analyzed is estimated
    -- from its pages.)  Its second column, nothing to do:
    -- no change at all (and no launch statements, which record their count
    -- of changed members even when it is 0): then none of the statements
    -- below is planned or run, and the snapshot is returned all the same.
    snapshot := customer_analytics._at_one_snapshot(
        format('WITH g AS (SELECT x.customer_code COLLATE "C" AS customer_code,'
               '   count(*) FILTER (WHERE x.sign IS NOT NULL) AS changes,'
               '   bool_or(x.customer_code IS NULL'
               '     OR pg_catalog.scale(x.total) IS NULL AND x.total IS NOT NULL'
               '     OR pg_catalog.scale(x.quantity) IS NULL AND x.quantity IS NOT NULL'
               '     OR x.xid = (SELECT pg_catalog.pg_current_xact_id_if_assigned())) AS refused'
               '   FROM %1$s x GROUP BY 1),'
               ' listed AS (INSERT INTO pg_temp.customer_analytics_changed (customer_code, changes)'
               '   SELECT g.customer_code, g.changes FROM g WHERE g.customer_code IS NOT NULL'
               '    ORDER BY g.customer_code COLLATE "default")'
               ' SELECT %2$s'
               '     OR COALESCE((SELECT bool_or(g.refused) FROM g), false),'
               '   %3$L::boolean AND NOT EXISTS (SELECT 1 FROM g)',
               changes, stale, cardinality(launch) = 0),
        -- the scratch tables of the statements below, created only when
        -- there is something to do: the targets whose months changed,
        -- entered or left (the long form's keys), and the changed
        -- customers' verdicts
        ARRAY['SELECT customer_analytics._session_scratch_table(''customer_analytics_long_keys'', ''(customer_code text COLLATE "C" PRIMARY KEY)'')',
              format('SELECT customer_analytics._session_scratch_table(''customer_analytics_targets'', %L)', format('(LIKE %s)', targets))]
        -- the changed orders, read as the full computation reads them
        || checks
        -- their state (counts, sums and last order dates adjusted), their
        -- verdicts on it and their months, in one pass; into the targets view
        || customer_analytics._campaign_delta_targets_sql(c, changes, orders, state, month_state, targets, as_recorded)
        -- the long form and the sheet, from the months
        || customer_analytics._campaign_delta_views_sql(c, state, month_state, long, sheet,
               CASE WHEN as_recorded THEN targets END)
        -- a launched campaign's response rows of its changed members
        || launch);
    IF snapshot IS NOT NULL THEN
        SELECT count(*), COALESCE(sum(k.changes), 0)::bigint INTO changed_customers, order_changes
          FROM pg_temp.customer_analytics_changed k;
    END IF;
END $_$;

-- The delta refresh's statements on the state, the targets and the months
-- of a campaign's changed customers (pg_temp.customer_analytics_changed):
-- one C pass (_campaign_delta_state_targets) that reads their order
-- changes (changes: SQL of a relation of the signed order changes, as
-- _campaign_delta_apply takes it; those of the data window and of the
-- revenue window) and their state rows once, adjusts the counts and sums
-- in memory, looks a customer's last order date up again (in orders, a
-- relation of (customer_code, order_date)) only when a removed order may
-- have been it, writes back the rows that changed (new customers added,
-- customers left with no order deleted), decides on the new rows, then
-- reads their rows of month_state once and writes back their months
-- (dropped for customers no longer targets, adjusted by the changes of
-- each month, computed for new targets; each customer whose months
-- changed, entered or left listed in pg_temp.customer_analytics_long_keys)
-- and returns the route customers' verdicts (into
-- pg_temp.customer_analytics_targets); then their rows of the targets view
-- replaced, of the changed customers the pass found may have a row there
-- (_campaign_delta_view_keys): with as_recorded (the targets view as the
-- last refresh left it, _campaign_views_as_recorded), those that were or
-- became targets; else (a REFRESH by hand since: the view holds the targets
-- of its own snapshot) those that may have been route customers since.  A
-- changed customer that is neither has no row before or after, and is not
-- looked up.
CREATE FUNCTION customer_analytics._campaign_delta_targets_sql(c customer_analytics.campaigns, changes text, orders text,
                                                               state regclass, month_state regclass,
                                                               targets regclass, as_recorded boolean) RETURNS text[]
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
#variable_conflict use_column
BEGIN
    RETURN (
    SELECT ARRAY[
        format('INSERT INTO pg_temp.customer_analytics_targets'
               ' SELECT * FROM customer_analytics._campaign_delta_state_targets(%L::text[], %L::daterange, %L::numeric,'
               ' %L::daterange, %L::numeric, %L::int, %L::daterange, %L::daterange, %L::numeric, %L::boolean,'
               ' %L::text, %L::text, ARRAY(SELECT k.customer_code FROM pg_temp.customer_analytics_changed k),'
               ' %L::regclass, %L, %L, %L::regclass, %L::daterange, ''pg_temp.customer_analytics_long_keys''::regclass)',
               c.routes, c.spend_window, c.min_spend, c.low_ticket_window, c.low_ticket_below,
               c.min_low_tickets, c.base_window, c.recent_window, c.decline_pct, c.exclude_closed,
               c.route_source, c.source_schema, state::oid, changes, orders, month_state::oid, c.revenue_window),
        -- (the keys taken from the list of changed customers, in its order,
        -- which is the view's index's order)
        format('SELECT customer_analytics._matview_apply(%L::regclass, %s, %L)',
               targets::oid,
               format('COALESCE(customer_analytics._campaign_delta_view_keys(%L::regclass, %L::boolean),'
                      ' ARRAY(SELECT k.customer_code FROM pg_temp.customer_analytics_changed k))', state::oid, as_recorded),
               'SELECT * FROM pg_temp.customer_analytics_targets')]);
END
$$;

-- The delta refresh's statements on a campaign's long form and sheet: the
-- rows of the customers whose months changed, entered or left
-- (pg_temp.customer_analytics_long_keys) replaced in the long form from
-- the month rows the pass left in memory (_campaign_delta_month_rows: the
-- changed targets' rows as it read, adjusted or inserted them, without a
-- second read of month_state; month_state read by key only when the pass
-- kept none, _campaign_delta_months_kept); in the sheet, from the same
-- month rows, from their targets and months, the rows of
-- the changed customers that may have been route customers since the
-- state's snapshot (the pass over state's, _campaign_delta_view_keys; else
-- every one, pg_temp.customer_analytics_changed) or, with
-- targets (the targets view, applied before these statements and, like
-- the sheet, as the last refresh left it), only those of the customers
-- whose targets row was written or deleted (_matview_touched) or whose
-- months changed, entered or left: a sheet row is its target's row and
-- months, so the other changed customers' rows are as they were (non-
-- targets have none; a target whose orders changed outside the revenue
-- window with the same targets row keeps its row) and are neither read nor
-- computed.
CREATE FUNCTION customer_analytics._campaign_delta_views_sql(c customer_analytics.campaigns, state regclass, month_state regclass,
                                                             long_form regclass, sheet regclass,
                                                             targets regclass) RETURNS text[]
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
#variable_conflict use_column
BEGIN
    RETURN (
    SELECT ARRAY[
        format('SELECT customer_analytics._matview_apply(%L::regclass, %s, %L)',
               long_form::oid, 'ARRAY(SELECT k.customer_code FROM pg_temp.customer_analytics_long_keys k)',
               format('SELECT r.customer_code, r.month, r.revenue, r.orders FROM customer_analytics._campaign_delta_month_rows(%2$L::regclass, true) r'
                      ' UNION ALL SELECT m.customer_code, m.month, m.revenue, m.orders FROM %1$s m'
                      ' WHERE NOT customer_analytics._campaign_delta_months_kept(%2$L::regclass)'
                      ' AND m.customer_code = ANY (ARRAY(SELECT k.customer_code FROM pg_temp.customer_analytics_long_keys k))',
                      month_state, state::oid)),
        CASE WHEN targets IS NULL THEN
        format('SELECT customer_analytics._matview_apply(%L::regclass, %s, %L)',
               sheet::oid, format('COALESCE(customer_analytics._campaign_delta_view_keys(%L::regclass, false),'
                                  ' ARRAY(SELECT k.customer_code FROM pg_temp.customer_analytics_changed k))', state::oid),
               customer_analytics._campaign_delta_sheet_rows_sql(c, 'pg_temp.customer_analytics_targets', state, month_state,
                   'ARRAY(SELECT t.customer_code FROM pg_temp.customer_analytics_targets t)'))
        ELSE
        -- (the keys are the rows' $1: the new targets among them by a
        -- hashed semi-join, their months by the join to the targets.  They
        -- are taken from the list of changed customers, in its order, which
        -- is the views' indexes' order: the index scans sort their array of
        -- keys, and a sorted one costs them one pass, not a sort in the
        -- database's collation)
        format('SELECT customer_analytics._matview_apply(%L::regclass, ARRAY(SELECT k.customer_code FROM pg_temp.customer_analytics_changed k'
               ' WHERE k.customer_code IN (SELECT pg_catalog.unnest(customer_analytics._matview_touched(%L::regclass))'
               ' UNION ALL SELECT l.customer_code FROM pg_temp.customer_analytics_long_keys l)), %L)',
               sheet::oid, targets::oid,
               customer_analytics._campaign_delta_sheet_rows_sql(c,
                   '(SELECT t.* FROM pg_temp.customer_analytics_targets t WHERE t.customer_code IN (SELECT pg_catalog.unnest($1::pg_catalog.text[])))',
                   state, month_state, 'ARRAY(SELECT pg_catalog.unnest($1::pg_catalog.text[]))'))
        END]);
END
$$;

-- Are a campaign's targets view and sheet the versions of their catalog
-- rows its last refresh recorded (s.view_rows; _view_version)?  Then no
-- REFRESH ran on either since, and the sheet's rows are those of the
-- targets view's rows and the months as that refresh left them: the delta
-- refresh's sheet need only follow the targets rows it writes and the
-- months that change (_campaign_delta_views_sql).  false when not recorded.
CREATE FUNCTION customer_analytics._campaign_views_as_recorded(s customer_analytics.campaign_refresh_state,
                                                               targets regclass, sheet regclass) RETURNS boolean
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
#variable_conflict use_column
BEGIN
    RETURN (
    SELECT COALESCE(s.view_rows -> 'targets' ->> 'version' = customer_analytics._view_version(targets)
                    AND s.view_rows -> 'monthly' ->> 'version' = customer_analytics._view_version(sheet), false));
END
$$;

-- The sheet's rows (one per target, a column per month) from a relation of
-- target rows (one per customer) and one of (customer_code, month, revenue)
-- rows, at most one per customer and month (month_state's key), with the
-- values the sheet's own definition computes.  The revenue rows are pivoted
-- per customer first, then joined to the targets by key: grouping the join
-- by the targets' five columns kept an aggregate state per target and month
-- in a hash table (12 MB and half of the sheet's delta for 5,000 targets).
-- A month's value is its one row's revenue, taken with max(): the same
-- value as sum() over that row, without sum()'s numeric accumulator per
-- customer and month (12 MB for 5,000 targets; 3-4 ms of 28).
CREATE FUNCTION customer_analytics._campaign_sheet_rows_sql(c customer_analytics.campaigns, targets text, revenue text) RETURNS text
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    sums text := '';
    columns text := '';
    m record;
    i int := 0;
BEGIN
    FOR m IN SELECT * FROM customer_analytics.pivot_months(c.revenue_window) LOOP
        i := i + 1;
        sums := sums || format(', max(m.revenue) FILTER (WHERE m.month = %L::date) AS m%s', m.month, i);
        columns := columns || format(', COALESCE(p.m%s, 0)::numeric AS %I', i, m.column_name);
    END LOOP;
    RETURN format('SELECT t.customer_code, t.trade_name, t.delivery_route, COALESCE(t.csm, '''') AS csm, t.avg_ticket_size%s'
                  ' FROM %s t LEFT JOIN (SELECT m.customer_code%s FROM %s m GROUP BY m.customer_code) p USING (customer_code)',
                  columns, targets, sums, revenue);
END $$;

-- The delta refresh's new rows of a campaign's sheet (the values and
-- columns of _campaign_sheet_rows_sql) from a relation of target rows (one
-- per customer) and the month rows the delta pass over state left in
-- memory for its changed targets, pivoted there
-- (_campaign_delta_sheet_months: one array of the months' revenue per
-- target, NULL where max() FILTER found none), without a read of
-- month_state or a grouping; when the pass kept none
-- (_campaign_delta_months_kept), month_state's rows of the customers in
-- keys (SQL of a text[]) pivoted by the same aggregates as
-- _campaign_sheet_rows_sql.
CREATE FUNCTION customer_analytics._campaign_delta_sheet_rows_sql(c customer_analytics.campaigns, targets text, state regclass,
                                                                  month_state regclass, keys text) RETURNS text
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    sums text := '';
    columns text := '';
    months date[] := '{}'::date[];
    m record;
    i int := 0;
BEGIN
    FOR m IN SELECT * FROM customer_analytics.pivot_months(c.revenue_window) LOOP
        i := i + 1;
        months := months || m.month;
        sums := sums || format('%s max(m.revenue) FILTER (WHERE m.month = %L::date)', CASE WHEN i > 1 THEN ',' END, m.month);
        columns := columns || format(', COALESCE(p.r[%s], 0)::numeric AS %I', i, m.column_name);
    END LOOP;
    RETURN format('SELECT t.customer_code, t.trade_name, t.delivery_route, COALESCE(t.csm, '''') AS csm, t.avg_ticket_size%s'
                  ' FROM %s t LEFT JOIN (SELECT p.customer_code, p.revenue AS r FROM customer_analytics._campaign_delta_sheet_months(%L::regclass, %L::date[]) p'
                  ' UNION ALL SELECT m.customer_code, ARRAY[%s]::numeric[] FROM %s m'
                  ' WHERE NOT customer_analytics._campaign_delta_months_kept(%L::regclass) AND m.customer_code = ANY (%s)'
                  ' GROUP BY m.customer_code) p USING (customer_code)',
                  columns, targets, state::oid, months, sums, month_state, state::oid, keys);
END $$;

-- The state's columns (orders, total, spend_orders, spend, low_tickets,
-- base_orders, base, recent_orders, recent) as aggregates over order rows
-- o(sign, samount, in_spend, in_low, in_base, in_recent) that
-- _campaign_state_flags() computes: counted once each, or with their sign
-- (-1 removed, +1 added).  A sum over no order is NULL, as targeting_stats
-- leaves it.
CREATE FUNCTION customer_analytics._campaign_state_aggregates(signed boolean) RETURNS text
    LANGUAGE sql IMMUTABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
    SELECT format('sum(%1$s) AS orders, sum(o.samount) AS total,'
                  ' COALESCE(sum(%1$s) FILTER (WHERE o.in_spend), 0) AS spend_orders,'
                  ' sum(o.samount) FILTER (WHERE o.in_spend) AS spend,'
                  ' COALESCE(sum(%1$s) FILTER (WHERE o.in_low), 0) AS low_tickets,'
                  ' COALESCE(sum(%1$s) FILTER (WHERE o.in_base), 0) AS base_orders,'
                  ' sum(o.samount) FILTER (WHERE o.in_base) AS base,'
                  ' COALESCE(sum(%1$s) FILTER (WHERE o.in_recent), 0) AS recent_orders,'
                  ' sum(o.samount) FILTER (WHERE o.in_recent) AS recent',
                  CASE WHEN signed THEN 'o.sign' ELSE '1' END)
$_$;

-- The state's columns in the order _campaign_state_aggregates() gives them.
CREATE FUNCTION customer_analytics._campaign_state_columns() RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT 'orders, total, spend_orders, spend, low_tickets, base_orders, base, recent_orders, recent' $$;

-- SQL of the campaign's route customers (on its routes, and open where it
-- excludes closed customers), one row per customer code: customer_code,
-- trade_name, delivery_route, shipping_address, csm, as target_customers()
-- reads them (its customers query, targeting.c); the attributes the state
-- keeps per customer.  A code found twice is kept once here: the build's
-- decisions, which run after it, raise target_customers()'s error for it.
CREATE FUNCTION customer_analytics._campaign_route_customers_sql(c customer_analytics.campaigns) RETURNS text
    LANGUAGE sql IMMUTABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
    SELECT format('SELECT DISTINCT ON (1) c.customer_code::text AS customer_code, c.trade_name::text AS trade_name,'
                  ' c.delivery_route::text AS delivery_route, c.shipping_address::text AS shipping_address,'
                  ' c.csm::text AS csm FROM %I.customers c'
                  ' WHERE c.customer_code IS NOT NULL AND c.delivery_route::text = ANY (%L::text[])%s',
                  c.source_schema, c.routes,
                  CASE WHEN c.exclude_closed THEN ' AND COALESCE(pg_catalog.btrim(c.closure_date::text), '''') = ''''' ELSE '' END)
$$;

-- What _campaign_state_aggregates() reads of an order row i(d date, amount
-- numeric[, sign]): its (signed) amount and the campaign's windows it falls
-- in.  Computed once per row (the delta refresh keeps them in a subquery
-- with OFFSET 0) rather than once per aggregate.
CREATE FUNCTION customer_analytics._campaign_state_flags(c customer_analytics.campaigns, signed boolean) RETURNS text
    LANGUAGE sql IMMUTABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
    SELECT format('%s AS samount, i.d <@ %L::daterange AS in_spend,'
                  ' (i.d <@ %L::daterange AND i.amount < %L::numeric) AS in_low,'
                  ' i.d <@ %L::daterange AS in_base, i.d <@ %L::daterange AS in_recent',
                  CASE WHEN signed THEN 'i.sign * i.amount' ELSE 'i.amount' END,
                  c.spend_window, c.low_ticket_window, c.low_ticket_below, c.base_window, c.recent_window)
$$;

-- The comment that marks a table as a campaign's state (a restore brings
-- it back with the tables).
CREATE FUNCTION customer_analytics._campaign_state_marker(c customer_analytics.campaigns) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT 'customer_analytics: per-customer state of campaign ' || c.name $$;

-- The names of a campaign's two state tables (in the state schema,
-- _state_schema()): a prefix per kind of table before the name, which is
-- unique among campaigns, so that no two definitions' names meet.
CREATE FUNCTION customer_analytics._campaign_state_names(c customer_analytics.campaigns, OUT state text, OUT month_state text) RETURNS record
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT 'campaign_state_' || c.name, 'campaign_months_' || c.name $$;

-- Why the state tables cannot be used for this refresh (NULL: they can):
-- they must be the ones recorded, plain tables of the caller.
CREATE FUNCTION customer_analytics._campaign_state_problem(c customer_analytics.campaigns, s customer_analytics.campaign_refresh_state) RETURNS text
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    n record := customer_analytics._campaign_state_names(c);
    st regclass;
    mt regclass;
BEGIN
    PERFORM customer_analytics._require_state_schema('{USAGE}');
    st := to_regclass(format('%I.%I', customer_analytics._state_schema(), n.state));
    mt := to_regclass(format('%I.%I', customer_analytics._state_schema(), n.month_state));
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

-- Do the state tables key their customer codes in the "C" collation (as
-- _campaign_state_tables makes them: every descent of their key indexes,
-- every sort and merge of their codes compares bytes, not strings in the
-- database's collation)?  false for tables made before 1.6 (the update
-- leaves them as they are: it would alter them as the updating role): the
-- delta refresh works on them all the same (its statements compare codes for equality only,
-- the same in every deterministic collation), and the next build of the
-- state converts them (_campaign_state_tables).  Not tested at every
-- refresh: a catalog query there cost 50-75 us, more than the bytewise
-- keys save a refresh of few customers.
CREATE FUNCTION customer_analytics._campaign_state_bytewise(state regclass, month_state regclass) RETURNS boolean
    LANGUAGE sql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
    SELECT count(*) = 2 FROM pg_attribute a
     WHERE a.attrelid IN (state, month_state) AND a.attname = 'customer_code' AND NOT a.attisdropped
       AND a.attcollation = 'pg_catalog."C"'::regcollation
$$;

COMMENT ON FUNCTION customer_analytics._campaign_state_bytewise(state regclass, month_state regclass) IS 'internal: do a campaign''s state tables key their customer codes in the "C" collation?';

-- Those of the campaign's two state tables that exist and carry its marker.
CREATE FUNCTION customer_analytics._campaign_state_relations(c customer_analytics.campaigns) RETURNS SETOF regclass
    LANGUAGE sql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
    SELECT customer_analytics._marked_tables(customer_analytics._state_schema(), ARRAY[n.state, n.month_state],
                                             customer_analytics._campaign_state_marker(c))
      FROM customer_analytics._campaign_state_names(c) n
$$;

-- Create the state tables if missing (or take back the ones a restore
-- brought), as the campaign's owner.  Error when another relation has the
-- name.  Returns them.
CREATE FUNCTION customer_analytics._campaign_state_tables(c customer_analytics.campaigns, OUT state regclass, OUT month_state regclass) RETURNS record
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    n record := customer_analytics._campaign_state_names(c);
    marker text := customer_analytics._campaign_state_marker(c);
BEGIN
    PERFORM customer_analytics._require_state_schema('{USAGE,CREATE}');
    PERFORM customer_analytics._require_marked_or_absent(customer_analytics._state_schema(), ARRAY[n.state, n.month_state],
                                                         marker, 'campaign', c.name, 'per-customer state');
    -- (route_customer and the attributes: what the delta refresh decides
    -- on of the customers (_campaign_route_customers_sql), NULL: to be read
    -- from the customers (a row kept by 1.5); the fillfactor leaves room on
    -- each page for the delta refresh's updates to stay HOT: they change no
    -- indexed column)
    state := customer_analytics._create_marked_table(customer_analytics._state_schema(), n.state,
        '(customer_code text COLLATE "C" PRIMARY KEY, orders bigint NOT NULL, total numeric, last_order date,'
        ' spend_orders bigint NOT NULL, spend numeric, low_tickets bigint NOT NULL, base_orders bigint NOT NULL,'
        ' base numeric, recent_orders bigint NOT NULL, recent numeric, route_customer boolean, trade_name text,'
        ' delivery_route text, shipping_address text, csm text) WITH (fillfactor = 75)', marker);
    month_state := customer_analytics._create_marked_table(customer_analytics._state_schema(), n.month_state,
        format('(customer_code text COLLATE "C", month date, revenue numeric, orders bigint, PRIMARY KEY (customer_code, month))'
               ' WITH (fillfactor = %L)', customer_analytics._campaign_view_fillfactor()), marker);
    -- (the customer codes keyed in the "C" collation, bytewise: the state
    -- is internal, no user reads its order; its statements compare the
    -- codes for equality only, which is the same in every deterministic
    -- collation.  Tables of an older shape (keyed in the database's
    -- collation) taken back here are converted in place: no rewrite of the
    -- rows, the key indexes rebuilt, before the build empties and fills them)
    IF NOT customer_analytics._campaign_state_bytewise(state, month_state) THEN
        EXECUTE format('ALTER TABLE %s ALTER COLUMN customer_code TYPE text COLLATE "C"', state);
        EXECUTE format('ALTER TABLE %s ALTER COLUMN customer_code TYPE text COLLATE "C"', month_state);
    END IF;
END $$;

-- The target_customers() call of a campaign over its state (customers
-- from the SQL array expression given).
CREATE FUNCTION customer_analytics._campaign_state_targets_sql(c customer_analytics.campaigns, state regclass, customers text) RETURNS text
    LANGUAGE sql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
    SELECT format('SELECT * FROM customer_analytics._target_customers_from_state(%L::text[], %L::daterange, %L::numeric,'
                  ' %L::daterange, %L::numeric, %L::int, %L::daterange, %L::daterange, %L::numeric, %L::boolean,'
                  ' %L::text, %L::text, %s, %L::regclass)',
                  c.routes, c.spend_window, c.min_spend, c.low_ticket_window, c.low_ticket_below,
                  c.min_low_tickets, c.base_window, c.recent_window, c.decline_pct, c.exclude_closed,
                  c.route_source, c.source_schema, customers, state::oid)
$$;

-- Why the campaign's views cannot be kept from per-customer state at all
-- (NULL: they can).  c has its windows resolved.
CREATE FUNCTION customer_analytics._campaign_state_unsupported(c customer_analytics.campaigns) RETURNS text
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
#variable_conflict use_column
BEGIN
    RETURN (
    SELECT CASE
        WHEN c.route_source = 'order' THEN 'routes come from the orders'
        WHEN NOT EXISTS (
            SELECT 1 FROM pg_attribute a
             WHERE a.attrelid = to_regclass(format('%I.sales_order_lines', c.source_schema))
               AND a.attname = 'pretax_subtotal' AND NOT a.attisdropped
               AND (a.atttypid IN ('int2'::regtype, 'int4'::regtype, 'int8'::regtype)
                    OR (a.atttypid = 'numeric'::regtype AND a.atttypmod >= 0)))
        THEN 'the line amounts have no fixed scale (pretax_subtotal is not numeric(p,s) or an integer)'
    END);
END
$$;

-- Create the table schema.name (columns: a column list in parentheses)
-- with the marker, unless it exists; returns it.  Its primary key is
-- named pk_<name>: the state tables' names (_campaign_state_names() and
-- the like) never start so, so no key takes the name of another
-- definition's table.
CREATE FUNCTION customer_analytics._create_marked_table(schema text, name text, columns text, marker text) RETURNS regclass
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    k regclass;
BEGIN
    IF to_regclass(format('%I.%I', schema, name)) IS NULL THEN
        EXECUTE format('CREATE TABLE %I.%I %s', schema, name, columns);
        EXECUTE format('COMMENT ON TABLE %I.%I IS %L', schema, name, marker);
        FOR k IN SELECT i.indexrelid::regclass FROM pg_index i
                  WHERE i.indrelid = format('%I.%I', schema, name)::regclass AND i.indisprimary LOOP
            EXECUTE format('ALTER INDEX %s RENAME TO %I', k, 'pk_' || name);
        END LOOP;
    END IF;
    RETURN format('%I.%I', schema, name)::regclass;
END $$;

-- Drop a campaign's state tables (those that carry its marker); returns how many.
CREATE FUNCTION customer_analytics._drop_campaign_state(c customer_analytics.campaigns) RETURNS integer
    LANGUAGE sql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
    SELECT customer_analytics._require_state_schema('{USAGE}');
    SELECT customer_analytics._drop_marked_tables(customer_analytics._state_schema(), ARRAY[n.state, n.month_state],
                                                  customer_analytics._campaign_state_marker(c))
      FROM customer_analytics._campaign_state_names(c) n
$$;

-- Drop those of the tables schema.names that carry the marker; returns how many.
CREATE FUNCTION customer_analytics._drop_marked_tables(schema text, names text[], marker text) RETURNS integer
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
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

-- Drop those of the named temporary tables this session has.
CREATE FUNCTION customer_analytics._drop_temp_tables(VARIADIC tables text[]) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY tables LOOP
        IF to_regclass('pg_temp.' || quote_ident(t)) IS NOT NULL THEN
            EXECUTE format('DROP TABLE pg_temp.%I', t);
        END IF;
    END LOOP;
END $$;

-- Empty a campaign's state tables (those that carry its marker) and record
-- that it has none: what they held no longer follows the orders.
CREATE FUNCTION customer_analytics._forget_campaign_state(c customer_analytics.campaigns) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
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

-- Those of the tables schema.names that exist, carry the marker and
-- belong to the current role (or one it can act as): in a schema where
-- several roles may create tables, another role's table with the same
-- name and comment is not a definition's state.
CREATE FUNCTION customer_analytics._marked_tables(schema text, names text[], marker text) RETURNS SETOF regclass
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    SELECT t FROM (SELECT to_regclass(format('%I.%I', schema, n)) AS t FROM unnest(names) n) x
     WHERE obj_description(t, 'pg_class') = marker
       AND pg_has_role((SELECT c.relowner FROM pg_class c WHERE c.oid = x.t), 'USAGE');
END
$$;

-- Internal: replace the rows of the given customers in a materialized view
-- the caller owns, without blocking readers.
CREATE FUNCTION customer_analytics._matview_apply(matview regclass, keys text[], rows_sql text) RETURNS bigint
    LANGUAGE c
    AS 'MODULE_PATHNAME', 'matview_apply';

COMMENT ON FUNCTION customer_analytics._matview_apply(matview regclass, keys text[], rows_sql text) IS 'internal: replace the rows of the given customers in a materialized view the caller owns, without blocking readers';

-- Internal: the rows _matview_apply added to a materialized view (inserted
-- minus deleted) in this transaction since the last call for it (C; a
-- subtransaction rolled back takes its rows, and its reads, with it).
CREATE FUNCTION customer_analytics._matview_applied(matview regclass) RETURNS bigint
    LANGUAGE c
    AS 'MODULE_PATHNAME', 'matview_applied';

COMMENT ON FUNCTION customer_analytics._matview_applied(matview regclass) IS 'internal: the rows _matview_apply() added to a materialized view (inserted minus deleted) in this transaction since the last call for it';

-- Internal: the customer codes whose rows the last _matview_apply on a
-- materialized view in this transaction wrote or deleted (C; NULL when none
-- ran; rows left as they were are not among them).
CREATE FUNCTION customer_analytics._matview_touched(matview regclass) RETURNS text[]
    LANGUAGE c
    AS 'MODULE_PATHNAME', 'matview_touched';

COMMENT ON FUNCTION customer_analytics._matview_touched(matview regclass) IS 'internal: the customer codes whose rows the last _matview_apply() on a materialized view in this transaction wrote or deleted';

-- Internal: lock a materialized view the caller owns as _matview_apply does,
-- until the end of the transaction.
CREATE FUNCTION customer_analytics._matview_lock(matview regclass) RETURNS void
    LANGUAGE c STRICT
    AS 'MODULE_PATHNAME', 'matview_lock';

COMMENT ON FUNCTION customer_analytics._matview_lock(matview regclass) IS 'internal: lock a materialized view the caller owns as _matview_apply does, until the end of the transaction';

-- Refuse to take over a relation named like a state table that is not one:
-- each of schema.names must be absent, or carry the marker and belong to
-- the current role (or one it can act as).
CREATE FUNCTION customer_analytics._require_marked_or_absent(schema text, names text[], marker text, kind text, name text, what text) RETURNS void
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY names LOOP
        IF to_regclass(format('%I.%I', schema, t)) IS NOT NULL
           AND (obj_description(to_regclass(format('%I.%I', schema, t)), 'pg_class') IS DISTINCT FROM marker
                OR NOT pg_has_role((SELECT c.relowner FROM pg_class c WHERE c.oid = to_regclass(format('%I.%I', schema, t))),
                                   'USAGE')) THEN
            RAISE EXCEPTION 'relation %.% exists and is not the state of % "%"', schema, t, kind, name
                USING ERRCODE = 'duplicate_table',
                      HINT = format('Rename or drop that relation; the %s keeps its %s under this name.', kind, what);
        END IF;
    END LOOP;
END $$;

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
CREATE FUNCTION customer_analytics._rollup_changes_check_sql(r customer_analytics.rollups, since text) RETURNS text
    LANGUAGE sql IMMUTABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
    SELECT format('SELECT count(customer_analytics._rollup_order_date(o.order_date, o.order_date_raw, o.order_type, o.order_number))'
                  ' FROM (SELECT DISTINCT x.customer_code FROM %2$s x WHERE %3$s AND x.sign > 0 AND x.order_date IS NULL) k,'
                  ' LATERAL (SELECT r.order_date, r.order_date_raw, r.order_type, r.order_number FROM %1$s r'
                  '          WHERE r.customer_code = k.customer_code AND r.order_date IS NULL OFFSET 0) o',
                  customer_analytics._rollup_table(r.id), customer_analytics._rollup_dirty_table(r.id), since)
$_$;

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
CREATE FUNCTION customer_analytics._rollup_delta_guard_sql(r customer_analytics.rollups, since text) RETURNS text
    LANGUAGE sql IMMUTABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
    SELECT format('SELECT (SELECT x.generation <> %s OR x.state <> ''current'' FROM customer_analytics.rollups x WHERE x.id = %s)'
                  ' OR EXISTS (SELECT 1 FROM %s x WHERE %s AND (x.customer_code IS NULL'
                  ' OR x.total IN (''NaN'', ''Infinity'', ''-Infinity'') OR x.quantity IN (''NaN'', ''Infinity'', ''-Infinity'')'
                  ' OR x.xid = pg_catalog.pg_current_xact_id_if_assigned()))',
                  r.generation, r.id, customer_analytics._rollup_dirty_table(r.id), since)
$$;

-- Why a delta refresh from the snapshot `since` refused (the guard of
-- _rollup_delta_guard_sql), in words.
CREATE FUNCTION customer_analytics._rollup_delta_refused(r customer_analytics.rollups, since pg_snapshot) RETURNS text
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
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
    RETURN CASE WHEN truncated THEN customer_analytics._rollup_full_reason(r, since)
                ELSE 'an order total or quantity among the changes is not a finite number' END;
END $_$;

-- Has this transaction written to the source tables of rollup r (its
-- triggers recorded rows under its xid)?  Its rows are then in the state
-- whatever snapshot is taken, and no snapshot tells them apart later.
CREATE FUNCTION customer_analytics._rollup_written_here(r customer_analytics.rollups) RETURNS boolean
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
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

-- Internal: must a changed customer's last order be looked up again
-- (true), given the last order its campaign state holds, the latest date of
-- an order added and of one removed by the changes (NULL: none) and how
-- many orders were added and removed on those dates?  The rule of the delta
-- refresh's C pass, for a sharded campaign's landing of its shards' changes.
CREATE FUNCTION customer_analytics._campaign_last_order_unknown(state_last date, added_last date, added_at_last bigint, removed_last date, removed_at_last bigint) RETURNS boolean
    LANGUAGE c IMMUTABLE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'campaign_last_order_unknown';

COMMENT ON FUNCTION customer_analytics._campaign_last_order_unknown(state_last date, added_last date, added_at_last bigint, removed_last date, removed_at_last bigint) IS 'internal: must a changed customer''s last order be looked up again after its order changes (the delta refresh''s rule, shared with the sharded landing)';

-- Internal: a campaign's delta refresh over its changed customers
-- (customers): their state rows adjusted by the signed order changes
-- (changes, SQL read under alias x; orders, SQL of (customer_code,
-- order_date) rows for the last orders looked up again) and written back,
-- then the targets among them decided on the new rows, as
-- _target_customers_from_state() decides; with month_state (else NULL),
-- their rows of it adjusted by the same changes in revenue_window (dropped
-- for customers no longer targets, computed for new targets) and the
-- customers whose months changed, entered or left listed in long_keys.
CREATE FUNCTION customer_analytics._campaign_delta_state_targets(routes text[], spend_window daterange, min_spend numeric, low_ticket_window daterange, low_ticket_below numeric, min_low_tickets integer, base_window daterange, recent_window daterange, decline_pct numeric, exclude_closed boolean, route_source text, source_schema text, customers text[], state regclass, changes text, orders text, month_state regclass, revenue_window daterange, long_keys regclass, OUT customer_code text, OUT trade_name text, OUT delivery_route text, OUT shipping_address text, OUT csm text, OUT total_spend numeric, OUT total_orders bigint, OUT low_ticket_count bigint, OUT base_sales numeric, OUT recent_sales numeric, OUT pct_change numeric, OUT target_reason text, OUT is_low_ticket boolean, OUT is_declining boolean, OUT last_order_date date, OUT avg_ticket_size numeric) RETURNS SETOF record
    LANGUAGE c
    AS 'MODULE_PATHNAME', 'campaign_delta_state_targets';

COMMENT ON FUNCTION customer_analytics._campaign_delta_state_targets(routes text[], spend_window daterange, min_spend numeric, low_ticket_window daterange, low_ticket_below numeric, min_low_tickets integer, base_window daterange, recent_window daterange, decline_pct numeric, exclude_closed boolean, route_source text, source_schema text, customers text[], state regclass, changes text, orders text, month_state regclass, revenue_window daterange, long_keys regclass, OUT customer_code text, OUT trade_name text, OUT delivery_route text, OUT shipping_address text, OUT csm text, OUT total_spend numeric, OUT total_orders bigint, OUT low_ticket_count bigint, OUT base_sales numeric, OUT recent_sales numeric, OUT pct_change numeric, OUT target_reason text, OUT is_low_ticket boolean, OUT is_declining boolean, OUT last_order_date date, OUT avg_ticket_size numeric) IS 'internal: a campaign''s delta refresh over its changed customers: their state adjusted by the order changes and written back, the targets among them decided on it, their months adjusted';

-- Internal: the keys of a campaign's views that the last delta pass of this
-- transaction over its state table found may hold rows of its changed
-- customers (targets: its old and new targets; else those that may have
-- been route customers since the state's snapshot), in the order of its
-- list of changed customers; NULL when none is known (C).
CREATE FUNCTION customer_analytics._campaign_delta_view_keys(state regclass, targets boolean) RETURNS text[]
    LANGUAGE c
    AS 'MODULE_PATHNAME', 'campaign_delta_view_keys';

-- Internal: the month rows the last delta pass of this transaction over a
-- campaign's state table left for its changed targets (campaign_delta_state.c)
CREATE FUNCTION customer_analytics._campaign_delta_month_rows(state regclass, listed boolean, OUT customer_code text, OUT month date, OUT revenue numeric, OUT orders bigint) RETURNS SETOF record
    LANGUAGE c
    AS 'MODULE_PATHNAME', 'campaign_delta_month_rows';

COMMENT ON FUNCTION customer_analytics._campaign_delta_month_rows(state regclass, listed boolean, OUT customer_code text, OUT month date, OUT revenue numeric, OUT orders bigint) IS 'internal: the month rows of its changed targets that the last delta pass of this transaction over a campaign''s state table left (listed: only those of the long form''s keys)';

-- Internal: did that pass keep them?  (stable within a statement: a
-- one-time filter of the fallback read of month_state)
CREATE FUNCTION customer_analytics._campaign_delta_months_kept(state regclass) RETURNS boolean
    LANGUAGE c STABLE
    AS 'MODULE_PATHNAME', 'campaign_delta_months_kept';

COMMENT ON FUNCTION customer_analytics._campaign_delta_months_kept(state regclass) IS 'internal: whether the last delta pass of this transaction over a campaign''s state table kept its changed targets'' month rows';

-- Internal: those month rows pivoted per changed target (campaign_delta_state.c)
CREATE FUNCTION customer_analytics._campaign_delta_sheet_months(state regclass, months date[], OUT customer_code text, OUT revenue numeric[]) RETURNS SETOF record
    LANGUAGE c
    AS 'MODULE_PATHNAME', 'campaign_delta_sheet_months';

COMMENT ON FUNCTION customer_analytics._campaign_delta_sheet_months(state regclass, months date[], OUT customer_code text, OUT revenue numeric[]) IS 'internal: the month rows of its changed targets that the last delta pass of this transaction over a campaign''s state table left, one row per target with its revenue of each of months';

COMMENT ON FUNCTION customer_analytics._campaign_delta_view_keys(state regclass, targets boolean) IS 'internal: the keys of a campaign''s views that the last delta pass of this transaction over its state table found may hold rows of its changed customers';

-- Internal: target_customers() deciding on a campaign's per-customer state
-- table instead of the orders.
CREATE FUNCTION customer_analytics._target_customers_from_state(routes text[], spend_window daterange, min_spend numeric, low_ticket_window daterange, low_ticket_below numeric, min_low_tickets integer, base_window daterange, recent_window daterange, decline_pct numeric, exclude_closed boolean, route_source text, source_schema text, customers text[], state regclass, OUT customer_code text, OUT trade_name text, OUT delivery_route text, OUT shipping_address text, OUT csm text, OUT total_spend numeric, OUT total_orders bigint, OUT low_ticket_count bigint, OUT base_sales numeric, OUT recent_sales numeric, OUT pct_change numeric, OUT target_reason text, OUT is_low_ticket boolean, OUT is_declining boolean, OUT last_order_date date, OUT avg_ticket_size numeric) RETURNS SETOF record
    LANGUAGE c STABLE
    AS 'MODULE_PATHNAME', 'target_customers_from_state';

COMMENT ON FUNCTION customer_analytics._target_customers_from_state(routes text[], spend_window daterange, min_spend numeric, low_ticket_window daterange, low_ticket_below numeric, min_low_tickets integer, base_window daterange, recent_window daterange, decline_pct numeric, exclude_closed boolean, route_source text, source_schema text, customers text[], state regclass, OUT customer_code text, OUT trade_name text, OUT delivery_route text, OUT shipping_address text, OUT csm text, OUT total_spend numeric, OUT total_orders bigint, OUT low_ticket_count bigint, OUT base_sales numeric, OUT recent_sales numeric, OUT pct_change numeric, OUT target_reason text, OUT is_low_ticket boolean, OUT is_declining boolean, OUT last_order_date date, OUT avg_ticket_size numeric) IS 'internal: target_customers() deciding on a campaign''s per-customer state table instead of the orders';
