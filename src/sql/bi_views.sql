-- bi_views.sql
--	Plain BI views (<view>_v) beside each materialized view, for tools that list only tables and views.

-- The plain BI view of a materialized view, when it exists and is ours (a
-- view that reads that materialized view), else NULL.
CREATE FUNCTION customer_analytics._bi_view(view_schema text, matview text) RETURNS regclass
    LANGUAGE sql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
    SELECT c.oid::regclass FROM pg_class c
      JOIN pg_rewrite r ON r.ev_class = c.oid
      JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid
                      AND d.refclassid = 'pg_class'::regclass
                      AND d.refobjid = to_regclass(format('%I.%I', view_schema, matview))
     WHERE c.oid = to_regclass(format('%I.%I', view_schema, customer_analytics._bi_view_name(matview)))
       AND c.relkind = 'v'
     LIMIT 1
$$;

-- The plain BI view's name for a materialized view's.
CREATE FUNCTION customer_analytics._bi_view_name(matview text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT matview || '_v' $$;

-- Create the plain view over one materialized view, with comments copied
-- (and noted where a column is rounded or replaced).  Columns keep their
-- order; numeric money columns become numeric(18,2) (rounded half away from
-- zero where a source has more than 2 decimals), pct_change numeric(18,2)
-- (NULL if its magnitude reaches 10^16, possible only over sources with
-- more than 2 decimals), target_reason becomes target_reason_code.
CREATE FUNCTION customer_analytics._build_bi_view(view_schema text, matview text) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
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
        IF a.name = 'target_reason' AND EXISTS (SELECT 1 FROM pg_attribute x WHERE x.attrelid = mv
                                                   AND x.attname IN ('is_low_ticket', 'is_declining') HAVING count(*) = 2) THEN
            -- the notebook's precedence (customer_target_reason() in targeting.c)
            items := array_append(items, 'CASE WHEN m.is_low_ticket THEN ''low_ticket''::text '
                                          'WHEN m.is_declining THEN ''declining''::text END AS target_reason_code');
        ELSIF a.name = 'target_reason' THEN
            -- a launched campaign's response: the label only (its stratum)
            items := array_append(items, 'CASE m.target_reason WHEN ''低客單'' THEN ''low_ticket''::text '
                                          'WHEN ''業績下滑'' THEN ''declining''::text END AS target_reason_code');
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
END $_$;

-- Campaigns and segmentations built before 1.5 have no plain views, and the
-- extension's script must not create them (they would become part of the
-- extension and be left out of dumps): their owner adds them with this.
CREATE FUNCTION customer_analytics.add_bi_views() RETURNS SETOF regclass
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
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

COMMENT ON FUNCTION customer_analytics.add_bi_views() IS 'Create the plain BI views (<view>_v) missing beside the current role''s campaign and segmentation materialized views (those built before 1.5)';
