-- upgrade.sql
--	Bringing objects built by older versions to what this version builds, and what DROP EXTENSION removes.

-- Bring a campaign's views to what 1.5 builds, as its owner: the sheet
-- built before 1.5 (its months unchecked) is built again, the long form
-- and the plain _v views are added, readers get SELECT on all of them.
-- The targets view is kept: 1.5 builds it the same way (its rows, and the
-- incremental refresh that reuses them, stay).  Returns the relations made.
CREATE FUNCTION customer_analytics._campaign_upgrade_views(c customer_analytics.campaigns) RETURNS SETOF regclass
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
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

-- DROP EXTENSION (its event trigger, before anything is dropped) takes the
-- tables the extension created outside its script: every rollup's tables
-- and every campaign's and segmentation's state tables.  Returns how many it
-- dropped, for the NOTICE at commit (src/extension_drop.c).
CREATE FUNCTION customer_analytics._drop_extension_tables() RETURNS integer
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
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
    -- the event trigger reports the count when the DROP commits
    RETURN n;
END $$;

-- Refuse (2BP01) to rebuild the views `rebuild` of a definition while an
-- object of a user depends on one of them or on its plain view.
CREATE FUNCTION customer_analytics._require_no_user_dependents(kind text, name text, schema text, rebuild text[]) RETURNS void
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    deps text := customer_analytics._user_dependents(schema, rebuild);
BEGIN
    IF deps IS NOT NULL THEN
        RAISE EXCEPTION 'cannot rebuild the views % of % "%" as 1.6 builds them: % depends on them',
                        array_to_string(rebuild, ', '), kind, name, deps
            USING ERRCODE = 'dependent_objects_still_exist',
                  HINT = 'Drop it (customer_analytics never drops your objects), run SELECT customer_analytics.upgrade_views(); '
                         'as the ' || kind || '''s owner, then create it again.';
    END IF;
END $$;

-- The same for a segmentation: its four views built otherwise than this
-- version builds them are built again, with their plain views; like a
-- refresh, from the orders as they are now (recorded in the catalog and the
-- refresh history).  Before 1.5 they read the catalog without the owner
-- check; 1.5's model view passed (_segmentation_to_run(name)).k and
-- .options to kmeans_fit, two PL/pgSQL calls per customer, where 1.6's reads
-- _segmentation_model().  Returns the relations made.
CREATE FUNCTION customer_analytics._segmentation_upgrade_views(s customer_analytics.segmentations) RETURNS SETOF regclass
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
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
                                             'customer_analytics._segmentation_model(text)'::regprocedure)
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
                                                   'build (views built by an older version, built again)', s.member_rows, NULL);
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
        RAISE NOTICE 'segmentation "%": built % as 1.6 builds them', s.name, array_to_string(made, ', ');
    END IF;
    RETURN QUERY SELECT unnest(made);
END $$;

-- The objects of users that depend on any of the relations schema.names or
-- their plain views (those relations excluded), described for a message;
-- NULL when none.  What stops a rebuild, which never cascades.
CREATE FUNCTION customer_analytics._user_dependents(schema text, names text[]) RETURNS text
    LANGUAGE sql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
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

-- Does a view's query use function fn?  How the updates tell a view an
-- older version built from one this version's builders make.
CREATE FUNCTION customer_analytics._view_reads(view regclass, fn regprocedure) RETURNS boolean
    LANGUAGE sql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
    SELECT EXISTS (SELECT 1 FROM pg_rewrite r
                     JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid
                    WHERE r.ev_class = view AND d.refclassid = 'pg_proc'::regclass AND d.refobjid = fn)
$$;

-- The relations (materialized views and plain views) of views and their
-- plain views that exist in schema.
CREATE FUNCTION customer_analytics._view_relations(schema text, views text[]) RETURNS oid[]
    LANGUAGE sql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
    SELECT ARRAY(SELECT x FROM unnest(ARRAY(SELECT to_regclass(format('%I.%I', schema, v))::oid FROM unnest(views) v)
                                      || ARRAY(SELECT customer_analytics._bi_view(schema, v)::oid FROM unnest(views) v)) x
                  WHERE x IS NOT NULL)
$$;

-- What the update could not rebuild (a user's object on a view, a build
-- that failed), the owner finishes with this once the cause is gone.
CREATE FUNCTION customer_analytics.upgrade_views() RETURNS SETOF regclass
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
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

COMMENT ON FUNCTION customer_analytics.upgrade_views() IS 'Build, as this version builds them, the current role''s campaign and segmentation views built by an older version that ALTER EXTENSION ... UPDATE could not (a user''s object depended on them, or the build failed); returns the relations made';
