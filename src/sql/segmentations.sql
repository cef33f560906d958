-- segmentations.sql
--	Segmentations: stored k-means definitions and their views (model, members, profiles, elbow).

-- Change a segmentation's dates: its rolling spec ('null' returns to the
-- fixed dates), or its fixed feature_window / as_of; then refresh it.
-- Other parameters (k, segment, options, readers): drop and create again.
-- alter_segmentation()'s work, as the segmentation's owner: its catalog
-- row changed from old to s, then a refresh.
CREATE FUNCTION customer_analytics._alter_segmentation_as_owner(old customer_analytics.segmentations, s customer_analytics.segmentations) RETURNS customer_analytics.segmentations
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
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

-- create_segmentation()'s build, as the segmentation's owner (its
-- creator): the feature state, the four views, readers' grants and the
-- first record.
CREATE FUNCTION customer_analytics._build_segmentation_as_owner(segmentation text, started timestamp with time zone) RETURNS customer_analytics.segmentations
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    s customer_analytics.segmentations := customer_analytics._segmentation(segmentation);
BEGIN
    PERFORM customer_analytics._require_owner_context('segmentation', s.name, s.owner);
    -- the features once, into the feature state the four views then read
    -- (under the refreshes' lock: the order changes are pruned meanwhile)
    PERFORM pg_advisory_xact_lock(hashtext('customer_analytics.refresh'), hashtext(s.source_schema));
    PERFORM customer_analytics._segmentation_update_state(s);
    PERFORM customer_analytics._drop_segmentation_scratch();
    PERFORM customer_analytics._build_segmentation_views(s);
    PERFORM customer_analytics._grant_readers(s.view_schema, customer_analytics._segmentation_views(s.name), s.readers);
    s := customer_analytics._record_segmentation_refresh(s.name, started);
    PERFORM customer_analytics._record_history('segmentation', s.name, s.owner, started, 'build', s.member_rows, NULL);
    RAISE NOTICE 'segmentation "%" built: % with % customers in % clusters', s.name,
        format('%I.%I', s.view_schema, s.name || '_members'), s.member_rows, s.k;
    RETURN s;
END $$;

-- The query of a segmentation's members view (without its ORDER BY):
-- each customer's features (alias f) and its cluster under model, SQL of
-- the model's jsonb.  The view's definition (_build_segmentation_matviews)
-- and its rows brought up to date in place (_segmentation_apply_members).
CREATE FUNCTION customer_analytics._segmentation_members_sql(s customer_analytics.segmentations, model text) RETURNS text
    LANGUAGE sql IMMUTABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
    SELECT format('SELECT f.customer_code, customer_analytics.kmeans_predict(%s, f.features) AS cluster, '
                  'f.visits, f.total_spend, f.ticket_size, f.skus, f.total_quantity, f.first_order, f.last_order, '
                  'f.recency_days, f.tenure_days, f.span_days, f.quantity_per_visit, f.days_per_visit, '
                  'f.skus_per_visit, f.diff, f.features '
                  'FROM customer_analytics.segmentation_features(%L) f', model, s.name)
$_$;

COMMENT ON FUNCTION customer_analytics._segmentation_members_sql(s customer_analytics.segmentations, model text) IS 'internal: the query of a segmentation''s members view over a model';

-- Create a segmentation's four materialized views (model, members, profiles,
-- elbow), then their keys and comments (_segmentation_matview_keys) and
-- their columns' comments (_segmentation_column_comments).
CREATE FUNCTION customer_analytics._build_segmentation_matviews(s customer_analytics.segmentations) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
DECLARE
    model text := format('(SELECT model FROM %I.%I)', s.view_schema, s.name || '_model');
BEGIN
    PERFORM customer_analytics._report_progress(format('building %I.%I (segmentation %s: features and k-means model, 1 of 4)',
                                                       s.view_schema, s.name || '_model', s.name));
    -- the fit through _segmentation_model(), which reads k and options once
    -- (through the owner check): 1.5's query passed
    -- (_segmentation_to_run(name)).k and .options to kmeans_fit, two
    -- PL/pgSQL calls per customer
    EXECUTE format('CREATE MATERIALIZED VIEW %I.%I AS '
                   'SELECT %L::text AS segmentation, customer_analytics._segmentation_model(%L) AS model',
                   s.view_schema, s.name || '_model', s.name, s.name);
    PERFORM customer_analytics._report_progress(format('building %I.%I (segmentation %s: members, 2 of 4)',
                                                       s.view_schema, s.name || '_members', s.name));
    EXECUTE format('CREATE MATERIALIZED VIEW %I.%I AS %s ORDER BY f.customer_code',
                   s.view_schema, s.name || '_members', customer_analytics._segmentation_members_sql(s, model));
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

    PERFORM customer_analytics._segmentation_matview_keys(s);
    PERFORM customer_analytics._segmentation_column_comments(s);
END $_$;

-- Each of a segmentation's four views: its unique key (which REFRESH ...
-- CONCURRENTLY needs) and its comment.
CREATE FUNCTION customer_analytics._segmentation_matview_keys(s customer_analytics.segmentations) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
DECLARE
    col record;
BEGIN
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
END $_$;

-- The comments of a segmentation's views' columns.
CREATE FUNCTION customer_analytics._segmentation_column_comments(s customer_analytics.segmentations) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
DECLARE
    col record;
BEGIN
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
END $_$;

-- Build the four views.  Each reads the stored definition, so a plain
-- REFRESH from any client recomputes it; members and profiles apply the
-- model view, so they always agree with it and with each other.
CREATE FUNCTION customer_analytics._build_segmentation_views(s customer_analytics.segmentations) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
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

COMMENT ON FUNCTION customer_analytics._build_segmentation_views(s customer_analytics.segmentations) IS 'Build a segmentation''s four materialized views and their plain _v views for BI tools';

-- Refuse a bad segmentation definition (k, segment, options, rolling spec)
-- with 22023 and a HINT.
CREATE FUNCTION customer_analytics._check_segmentation(s customer_analytics.segmentations) RETURNS void
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
    PERFORM customer_analytics._check_view_owner('segmentation', s.name, s.view_schema, s.readers,
        '<name>_model, <name>_members, <name>_profiles and <name>_elbow');
    PERFORM customer_analytics._check_view_grants('segmentation', s.owner, s.view_schema, s.readers);
    PERFORM customer_analytics._segment_filter(s.segment, true);
    IF s.k IS NULL OR s.k < 1 OR s.k > 50 OR s.k_from IS NULL OR s.k_to IS NULL
       OR s.k_from < 1 OR s.k_to < s.k_from OR s.k_to > 50 THEN
        RAISE EXCEPTION 'need 1 <= k <= 50 and 1 <= k_from <= k_to <= 50, not k = %, k_from = %, k_to = %',
                        COALESCE(s.k::text, 'NULL'), COALESCE(s.k_from::text, 'NULL'), COALESCE(s.k_to::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'A segmentation has at most 50 segments, and its elbow tries k up to 50; the notebook uses k = 4 and looks at k = 1 .. 10.';
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

COMMENT ON FUNCTION customer_analytics._check_segmentation(s customer_analytics.segmentations) IS 'Refuse a bad segmentation definition (k, segment, options, rolling spec) with 22023 and a HINT, missing grants on the view schema with 42501';

-- drop_segmentation()'s work, as the segmentation's owner: its views,
-- feature state, history and catalog row.
CREATE FUNCTION customer_analytics._drop_segmentation_as_owner(segmentation text) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
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

-- refresh_segmentation()'s work, as the segmentation's owner: the feature
-- state brought up to date, the views refreshed unless nothing changed, the
-- refresh recorded.
CREATE FUNCTION customer_analytics._refresh_segmentation_as_owner(segmentation text, "concurrently" boolean) RETURNS customer_analytics.segmentations
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    s customer_analytics.segmentations := customer_analytics._segmentation(segmentation);
    started timestamptz := clock_timestamp();
    u record;
    -- views left unpopulated (by a restore): refreshed without CONCURRENTLY
    unpopulated text := customer_analytics._unpopulated_views(s.view_schema, customer_analytics._segmentation_views(s.name));
    requested boolean := _refresh_segmentation_as_owner.concurrently;
    previous_as_of date;
BEGIN
    PERFORM customer_analytics._require_owner_context('segmentation', s.name, s.owner);
    IF unpopulated IS NOT NULL THEN
        _refresh_segmentation_as_owner.concurrently := false;
    END IF;
    -- refreshes of one source take turns (as campaigns'): the state's
    -- snapshot and the pruning of the order changes stay in step
    PERFORM pg_advisory_xact_lock(hashtext('customer_analytics.refresh'), hashtext(s.source_schema));
    SELECT x.as_of INTO previous_as_of FROM customer_analytics.segmentation_refresh_state x WHERE x.segmentation = s.name;
    u := customer_analytics._segmentation_update_state(s);
    -- (no customer's features changed since the views were computed, nor
    -- as_of: they would come out the same)
    IF NOT u.unchanged OR unpopulated IS NOT NULL THEN
        -- the features read from the state once for the four views
        PERFORM customer_analytics._segmentation_features_scratch(s);
        -- after a delta with the same as_of, only the changed customers'
        -- features changed: the members view's rows replaced in place for
        -- them and for the members whose label the new model changes
        -- (_segmentation_apply_members), instead of a REFRESH ...
        -- CONCURRENTLY's whole result and diff
        IF u.delta AND unpopulated IS NULL AND _refresh_segmentation_as_owner.concurrently
           AND previous_as_of IS NOT DISTINCT FROM (customer_analytics._segmentation_resolved(s)).as_of
           AND to_regclass('pg_temp.customer_analytics_seg_changed') IS NOT NULL THEN
            -- the elbow first: its fits of k = k_from .. k_to (one pool of
            -- restarts) include the model's k, which kmeans_fit() then
            -- takes from the transaction's fit cache, bit for bit the same
            -- model; the model view first would fit its k alone, in a pool
            -- of its own (~60 ms at scale 10 realistic), for the elbow to
            -- take it from the cache in a pool that finishes no sooner
            PERFORM customer_analytics._refresh_views(s.view_schema, ARRAY[s.name || '_elbow', s.name || '_model'], true);
            PERFORM customer_analytics._segmentation_apply_members(s);
            PERFORM customer_analytics._refresh_views(s.view_schema, ARRAY[s.name || '_profiles'], true);
        ELSE
            -- (the elbow first, as above)
            PERFORM customer_analytics._refresh_views(s.view_schema,
                ARRAY[s.name || '_elbow'] || (customer_analytics._segmentation_views(s.name))[1:3],
                _refresh_segmentation_as_owner.concurrently);
        END IF;
    END IF;
    PERFORM customer_analytics._drop_segmentation_scratch();
    IF unpopulated IS NOT NULL THEN
        u.mode := left(u.mode, -1) || format('; not populated: %s%s)', unpopulated,
                      CASE WHEN requested THEN '; refreshed without CONCURRENTLY' ELSE '' END);
    END IF;
    s := customer_analytics._record_segmentation_refresh(s.name, started);
    PERFORM customer_analytics._record_history('segmentation', s.name, s.owner, started, u.mode, s.member_rows, NULL);
    RAISE NOTICE 'segmentation "%" refreshed% %: % customers', s.name,
        CASE WHEN _refresh_segmentation_as_owner.concurrently THEN ' concurrently' ELSE '' END,
        CASE WHEN u.delta THEN 'from its order changes' || substr(u.mode, length('delta') + 1) ELSE 'in ' || u.mode END,
        s.member_rows;
    RETURN s;
END $$;

-- During refresh_segmentation(), after its feature state was brought up to
-- date: the segmentation's features read from the state once, into a
-- scratch table (dropped with the refresh's other scratch tables) that
-- segmentation_features() returns for the rest of the transaction while
-- its marker matches; the model, members, profiles and elbow views would
-- otherwise each read them from the state again.  The rows come in the
-- state's order, as segmentation_features() returned them.  Returns the
-- number of rows, or NULL (nothing done) when the state is not current.
CREATE FUNCTION customer_analytics._segmentation_features_scratch(s customer_analytics.segmentations) RETURNS bigint
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
DECLARE
    r customer_analytics.segmentations := customer_analytics._segmentation_resolved(s);
    n bigint;
BEGIN
    PERFORM customer_analytics._drop_temp_tables('customer_analytics_seg_features');
    IF customer_analytics._segmentation_current_state(r) IS NULL THEN
        RETURN NULL;
    END IF;
    PERFORM customer_analytics._scratch_table('customer_analytics_seg_features',
        '(customer_code text, visits bigint, total_spend numeric, ticket_size numeric, skus bigint,'
        ' total_quantity numeric, first_order date, last_order date, recency_days integer, tenure_days integer,'
        ' span_days integer, quantity_per_visit double precision, days_per_visit double precision,'
        ' skus_per_visit double precision, diff double precision, is_repeat boolean, features double precision[])');
    -- (no marker yet: this read is the state's)
    INSERT INTO pg_temp.customer_analytics_seg_features SELECT * FROM customer_analytics.segmentation_features(r.name);
    GET DIAGNOSTICS n = ROW_COUNT;
    -- the marker segmentation_features() checks (the same format there)
    EXECUTE format('COMMENT ON TABLE pg_temp.customer_analytics_seg_features IS %L',
                   format('customer_analytics: features of segmentation %s (%s, as of %s, segment %s)',
                          r.name, r.feature_window, r.as_of, r.segment));
    RETURN n;
END $_$;

COMMENT ON FUNCTION customer_analytics._segmentation_features_scratch(s customer_analytics.segmentations) IS 'internal: during refresh_segmentation(), the segmentation''s features read from its current feature state once into a scratch table that segmentation_features() returns for the four views; NULL when the state is not current';

-- The members view of a segmentation brought up to date in place after a
-- delta refresh of its feature state (the model view already refreshed):
-- its rows replaced (_matview_apply: readers not blocked, a row that is the
-- same left alone) for the changed customers
-- (pg_temp.customer_analytics_seg_changed: those entering, leaving or whose
-- features changed) and for the members whose label under the new model
-- differs from their row's (the model moves with any change: each member's
-- stored features, unchanged for the others, predicted again); every other
-- row is what a REFRESH would compute. Returns the number of keys replaced.
CREATE FUNCTION customer_analytics._segmentation_apply_members(s customer_analytics.segmentations) RETURNS bigint
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
DECLARE
    members regclass := format('%I.%I', s.view_schema, s.name || '_members')::regclass;
    model text := format('(SELECT v.model FROM %I.%I v)', s.view_schema, s.name || '_model');
    keys bigint;
BEGIN
    PERFORM customer_analytics._report_progress(format('refreshing %s in place (segmentation %s: changed customers and changed labels)',
                                                       members, s.name));
    PERFORM customer_analytics._scratch_table('customer_analytics_seg_member_keys', '(customer_code text PRIMARY KEY)');
    EXECUTE format('INSERT INTO pg_temp.customer_analytics_seg_member_keys'
                   ' SELECT c.customer_code FROM pg_temp.customer_analytics_seg_changed c'
                   ' UNION SELECT m.customer_code FROM %s m'
                   ' WHERE m.cluster IS DISTINCT FROM customer_analytics.kmeans_predict(%s, m.features)',
                   members, model);
    GET DIAGNOSTICS keys = ROW_COUNT;
    PERFORM customer_analytics._matview_apply(members,
        ARRAY(SELECT k.customer_code FROM pg_temp.customer_analytics_seg_member_keys k),
        -- the view's query for those keys (a hashed semi-join: = ANY of
        -- an array of thousands of keys compares each customer with each key)
        customer_analytics._segmentation_members_sql(s, model)
        || ' WHERE f.customer_code IN (SELECT k.customer_code FROM pg_temp.customer_analytics_seg_member_keys k)');
    RETURN keys;
END $_$;

-- The features query of customer_features() for a segment.
CREATE FUNCTION customer_analytics._segment_features_sql(segment text, feature_window daterange, as_of date, source_schema text) RETURNS text
    LANGUAGE sql IMMUTABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
    SELECT format('SELECT cf.features FROM customer_analytics.customer_features(%L::daterange, %L::date, %L::text) cf'
                  ' WHERE customer_analytics._segment_filter(%L::text, cf.is_repeat)',
                  feature_window, as_of, source_schema, segment)
$$;

-- Which customers a segmentation looks at: the notebook segments repeat
-- customers and one-visit customers separately.
CREATE FUNCTION customer_analytics._segment_filter(segment text, is_repeat boolean) RETURNS boolean
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
    IF segment = 'all' THEN
        RETURN true;
    ELSIF segment = 'repeat' THEN
        RETURN is_repeat;
    ELSIF segment = 'one_visit' THEN
        RETURN NOT is_repeat;
    END IF;
    RAISE EXCEPTION 'segment must be ''all'', ''repeat'' or ''one_visit'', not %', quote_nullable(segment)
        USING ERRCODE = 'invalid_parameter_value',
              HINT = 'The notebook clusters repeat customers (2+ visits) and one-visit customers separately.';
END $$;

-- One segmentation's catalog row for a management call (its owner, a member
-- or a superuser), or an error.
CREATE FUNCTION customer_analytics._segmentation(segmentation text) RETURNS customer_analytics.segmentations
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
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

-- Internal: kmeans_elbow() over a segmentation's features with its stored k
-- range, options and sample (what <name>_elbow holds).
CREATE FUNCTION customer_analytics._segmentation_elbow(segmentation text) RETURNS TABLE(k integer, inertia double precision, silhouette double precision, kneedle_pick boolean, silhouette_pick boolean)
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    SET row_security TO 'on'
    AS $$
DECLARE
    s customer_analytics.segmentations := customer_analytics._segmentation_to_run(segmentation);
BEGIN
    RETURN QUERY SELECT * FROM customer_analytics._kmeans_elbow_over(s.k_from, s.k_to, s.options, s.silhouette_sample,
        format('SELECT f.features FROM customer_analytics.segmentation_features(%L) f', s.name));
END $$;

COMMENT ON FUNCTION customer_analytics._segmentation_elbow(segmentation text) IS 'internal: kmeans_elbow() over a segmentation''s features with its stored k range, options and sample (what <name>_elbow holds)';

-- Internal: kmeans_fit() over a segmentation's features with its stored k
-- and options, read once (what <name>_model holds).
CREATE FUNCTION customer_analytics._segmentation_model(segmentation text) RETURNS jsonb
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    SET row_security TO 'on'
    AS $$
DECLARE
    s customer_analytics.segmentations := customer_analytics._segmentation_to_run(segmentation);
BEGIN
    RETURN (SELECT customer_analytics.kmeans_fit(f.features, s.k, s.options)
              FROM customer_analytics.segmentation_features(s.name) f);
END $$;

COMMENT ON FUNCTION customer_analytics._segmentation_model(segmentation text) IS 'internal: kmeans_fit() over a segmentation''s features with its stored k and options, read once (what <name>_model holds)';

-- A segmentation's profiles and elbow over segmentation_features(): what
-- its _profiles and _elbow views read (from the state during a refresh).
CREATE FUNCTION customer_analytics._segmentation_profiles(segmentation text, model jsonb) RETURNS TABLE(cluster integer, customers bigint, share numeric, visits double precision, total_spend double precision, ticket_size double precision, skus double precision, total_quantity double precision, recency_days double precision, tenure_days double precision, quantity_per_visit double precision, days_per_visit double precision, skus_per_visit double precision, diff double precision, ranks jsonb)
    LANGUAGE sql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    SET row_security TO 'on'
    AS $$
    SELECT * FROM customer_analytics._kmeans_profiles_over(model,
        format('SELECT f.features FROM customer_analytics.segmentation_features(%L) f', segmentation))
$$;

COMMENT ON FUNCTION customer_analytics._segmentation_profiles(segmentation text, model jsonb) IS 'internal: kmeans_profiles() of a segmentation''s model over its features (what <name>_profiles holds)';

-- One segmentation to compute, only as its owner, with its rolling window
-- and as_of resolved now.
CREATE FUNCTION customer_analytics._segmentation_to_run(segmentation text) RETURNS customer_analytics.segmentations
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    SET row_security TO 'on'
    AS $$
DECLARE
    s customer_analytics.segmentations := customer_analytics._segmentation(segmentation);
BEGIN
    PERFORM customer_analytics._require_definition_runner('segmentation', s.name, s.owner);
    RETURN customer_analytics._segmentation_resolved(s);
END $$;

COMMENT ON FUNCTION customer_analytics._segmentation_to_run(segmentation text) IS 'One segmentation to compute, only as its owner, with its rolling window and as_of resolved now';

-- The views of a segmentation, in refresh order: the model first (members
-- and profiles apply it), then members, profiles and the elbow table.
CREATE FUNCTION customer_analytics._segmentation_views(segmentation text) RETURNS text[]
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
    SELECT ARRAY[segmentation || '_model', segmentation || '_members',
                 segmentation || '_profiles', segmentation || '_elbow']
$$;

-- Change a segmentation's feature window and as_of (rolling => spec, 'null'
-- for fixed dates again.
CREATE FUNCTION customer_analytics.alter_segmentation(name text, rolling jsonb DEFAULT NULL::jsonb, feature_window daterange DEFAULT NULL::daterange, as_of date DEFAULT NULL::date) RETURNS customer_analytics.segmentations
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
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

COMMENT ON FUNCTION customer_analytics.alter_segmentation(name text, rolling jsonb, feature_window daterange, as_of date) IS 'Change a segmentation''s feature window and as_of (rolling => spec, ''null'' for fixed dates again; feature_window, as_of) and refresh its views; other parameters: drop and create again';

-- Store a named k-means segmentation (fixed feature window and as_of, or
-- rolling => relative to the refresh date) and build its views <name>_model,
-- <name>_members, <name>_profiles and <name>_elbow in view_schema.
CREATE FUNCTION customer_analytics.create_segmentation(name text, view_schema text, k integer DEFAULT 4, segment text DEFAULT 'repeat'::text, feature_window daterange DEFAULT '[2025-01-01,2026-01-01)'::daterange, as_of date DEFAULT '2026-01-07'::date, options jsonb DEFAULT '{"seed": 0, "n_init": 10}'::jsonb, k_from integer DEFAULT 1, k_to integer DEFAULT 10, silhouette_sample integer DEFAULT 2000, readers text[] DEFAULT '{}'::text[], source_schema text DEFAULT NULL::text, rolling jsonb DEFAULT NULL::jsonb) RETURNS customer_analytics.segmentations
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
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

COMMENT ON FUNCTION customer_analytics.create_segmentation(name text, view_schema text, k integer, segment text, feature_window daterange, as_of date, options jsonb, k_from integer, k_to integer, silhouette_sample integer, readers text[], source_schema text, rolling jsonb) IS 'Store a named k-means segmentation (fixed feature window and as_of, or rolling => relative to the refresh date) and build its views <name>_model, <name>_members, <name>_profiles and <name>_elbow in view_schema';

-- Drop a segmentation, its four views and its scheduled refresh.
CREATE FUNCTION customer_analytics.drop_segmentation(segmentation text) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    s customer_analytics.segmentations := customer_analytics._segmentation(segmentation);
BEGIN
    IF customer_analytics._cron_job('segmentation', s.name) IS NOT NULL THEN
        PERFORM customer_analytics._unschedule_refresh('segmentation', s.name);
    END IF;
    PERFORM customer_analytics._as_owner(s.owner, format('SELECT customer_analytics._drop_segmentation_as_owner(%L)', s.name));
END $$;

COMMENT ON FUNCTION customer_analytics.drop_segmentation(segmentation text) IS 'Drop a segmentation, its four views and its scheduled refresh';

-- The segmentations, their views, feature window and as_of (rolling ones
-- resolved now), rolling spec, schedule, last refresh and refresh status.
CREATE FUNCTION customer_analytics.list_segmentations() RETURNS TABLE(name text, view_schema text, views text[], segment text, k integer, feature_window daterange, as_of date, source_schema text, owner name, schedule text, refreshed_at timestamp with time zone, refresh_ms numeric, member_rows bigint, last_status text, last_success_at timestamp with time zone, last_error text, last_error_at timestamp with time zone, rolling jsonb, next_run timestamp with time zone, schedule_runner text, next_run_as_of date, next_run_feature_window daterange)
    LANGUAGE sql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
    SELECT s.name, s.view_schema, customer_analytics._segmentation_views(s.name), s.segment, s.k,
           w.feature_window, w.as_of, s.source_schema, s.owner,
           r.schedule, s.refreshed_at, s.refresh_ms, s.member_rows,
           l.last_status, l.last_success_at, l.last_error, l.last_error_at, s.rolling,
           r.next_run, r.runner, n.as_of, n.feature_window
      FROM customer_analytics.segmentations s
      CROSS JOIN LATERAL customer_analytics._segmentation_windows(s) w
      CROSS JOIN LATERAL customer_analytics._last_refresh('segmentation', s.name, s.owner) l
      LEFT JOIN LATERAL customer_analytics._schedule_status('segmentation', s.name) r ON true
      -- what the next scheduled run will use (see list_campaigns())
      LEFT JOIN LATERAL customer_analytics._segmentation_windows(s, customer_analytics._next_run_as_of(s.rolling, r.next_run)) n
        ON customer_analytics._next_run_as_of(s.rolling, r.next_run) IS NOT NULL
     ORDER BY s.name
$$;

COMMENT ON FUNCTION customer_analytics.list_segmentations() IS 'The segmentations, their views, feature window and as_of (rolling ones resolved now), rolling spec, schedule and next run (with the as_of date and feature window a rolling segmentation''s next run will use), last refresh and refresh status';

-- Check the caller may refresh the segmentation, then refresh it as its owner.
CREATE FUNCTION customer_analytics.refresh_segmentation(segmentation text, "concurrently" boolean DEFAULT true) RETURNS customer_analytics.segmentations
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
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

COMMENT ON FUNCTION customer_analytics.refresh_segmentation(segmentation text, "concurrently" boolean) IS 'Recompute the model, members, profiles and elbow views (CONCURRENTLY by default) and record the refresh';

-- The features of a segmentation's customers, from its stored definition.
CREATE FUNCTION customer_analytics.segmentation_features(segmentation text) RETURNS TABLE(customer_code text, visits bigint, total_spend numeric, ticket_size numeric, skus bigint, total_quantity numeric, first_order date, last_order date, recency_days integer, tenure_days integer, span_days integer, quantity_per_visit double precision, days_per_visit double precision, skus_per_visit double precision, diff double precision, is_repeat boolean, features double precision[])
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    SET row_security TO 'on'
    AS $$
DECLARE
    s customer_analytics.segmentations := customer_analytics._segmentation_to_run(segmentation);
    state regclass := customer_analytics._segmentation_current_state(s);
BEGIN
    -- the segment checked once (an unknown one raises _segment_filter's
    -- error), then filtered by an expression: _segment_filter() per
    -- customer (PL/pgSQL with its own search_path) cost about 1.5 us each,
    -- a fifth of reading the features from the state
    PERFORM customer_analytics._segment_filter(s.segment, true);
    -- during refresh_segmentation() (its transaction): from the feature
    -- state it brought up to date, computed once for the four views
    IF state IS NOT NULL THEN
        -- read from the state once per refresh: the scratch table
        -- _segmentation_features_scratch() filled, when its marker (the same
        -- format there) says it holds these features
        IF obj_description(to_regclass('pg_temp.customer_analytics_seg_features'), 'pg_class')
           = format('customer_analytics: features of segmentation %s (%s, as of %s, segment %s)',
                    s.name, s.feature_window, s.as_of, s.segment) THEN
            RETURN QUERY SELECT cf.* FROM pg_temp.customer_analytics_seg_features cf;
            RETURN;
        END IF;
        RETURN QUERY SELECT cf.* FROM customer_analytics._customer_features_from_state(state, s.feature_window, s.as_of) cf
                      WHERE CASE s.segment WHEN 'all' THEN true WHEN 'repeat' THEN cf.is_repeat ELSE NOT cf.is_repeat END;
        RETURN;
    END IF;
    RETURN QUERY SELECT cf.* FROM customer_analytics.customer_features(s.feature_window, s.as_of, s.source_schema) cf
                  WHERE CASE s.segment WHEN 'all' THEN true WHEN 'repeat' THEN cf.is_repeat ELSE NOT cf.is_repeat END;
END $$;

COMMENT ON FUNCTION customer_analytics.segmentation_features(segmentation text) IS 'customer_features() of the segmentation''s customers (repeat, one-visit or all), from its stored definition';
