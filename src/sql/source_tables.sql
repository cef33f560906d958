-- source_tables.sql
--	The data contract of the ERP's source tables: the default schema, the order-date rules, settings read through the library's checks.

-- The extension's settings as the library accepted them (issue 21, item 5):
-- current_setting() for customer_analytics.* names, but read with the
-- library loaded, so that its check hooks have refused a value stored where
-- it may not come from (an as_of_date from ALTER DATABASE or ALTER ROLE, a
-- source_schema from ALTER DATABASE by an owner the session's user does not
-- trust; src/customer_analytics.c).  Before the library is loaded,
-- current_setting() returns such a value unchecked.
CREATE FUNCTION customer_analytics._checked_setting(name text) RETURNS text
    LANGUAGE c STABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'ca_checked_setting';

COMMENT ON FUNCTION customer_analytics._checked_setting(name text) IS 'internal: current_setting(name, true) of a customer_analytics.* setting, read with the library (and its check hooks) loaded';

-- The number of rows of a relation (the views' row counts recorded after a
-- refresh).
CREATE FUNCTION customer_analytics._count_rows(view_schema text, view text) RETURNS bigint
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    n bigint;
BEGIN
    EXECUTE format('SELECT count(*) FROM %I.%I', view_schema, view) INTO n;
    RETURN n;
END $$;

-- order_date as a date, or NULL where it is not one (the triggers must not
-- refuse an ERP write; the reading functions raise on such rows instead)
CREATE FUNCTION customer_analytics._order_date_or_null(order_date date) RETURNS date
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'order_date_or_null_date';

-- order_date as a date, or NULL where it is not one (the triggers must not
-- refuse an ERP write; the reading functions raise on such rows instead)
CREATE FUNCTION customer_analytics._order_date_or_null(order_date text) RETURNS date
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'order_date_or_null_text';

-- The date of a rollup row, checked: order_date when the triggers could
-- read the source's value, else the error checked_order_date() gives on the
-- source (the value is in order_date_raw).  Every reader of the rollup, in
-- full or from the order changes, dates its orders through this one
-- function (C, order_date.c, with checked_order_date()'s own check).
CREATE FUNCTION customer_analytics._rollup_order_date(order_date date, order_date_raw text, order_type text, order_number text) RETURNS date
    LANGUAGE c IMMUTABLE COST 10 PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'rollup_order_date';

COMMENT ON FUNCTION customer_analytics._rollup_order_date(order_date date, order_date_raw text, order_type text, order_number text) IS 'internal: a rollup row''s order date, or the error checked_order_date() raises on the source''s value';

-- A setting's value, or NULL when it does not exist or this role may not read it.
CREATE FUNCTION customer_analytics._setting(setting text) RETURNS text
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
    RETURN current_setting(setting, true);
EXCEPTION WHEN insufficient_privilege THEN
    RETURN NULL;
END $$;

-- The source schema a call means: the argument, else the setting as the
-- library accepted it (src/source_tables.c, the rule the C functions use).
CREATE FUNCTION customer_analytics._source_schema(source_schema text) RETURNS text
    LANGUAGE c STABLE
    AS 'MODULE_PATHNAME', 'source_schema_of';

COMMENT ON FUNCTION customer_analytics._source_schema(source_schema text) IS 'internal: the source schema a call means (the argument, else customer_analytics.source_schema as the library accepted it)';

-- SQL text reading `columns` from the statement's transition tables: the new
-- rows of an INSERT, the old rows of a DELETE, both for an UPDATE.
CREATE FUNCTION customer_analytics._transition_rows(op text, columns text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
    SELECT CASE op WHEN 'INSERT' THEN format('SELECT %s FROM new_rows', columns)
                   WHEN 'DELETE' THEN format('SELECT %s FROM old_rows', columns)
                   ELSE format('SELECT %1$s FROM new_rows UNION ALL SELECT %1$s FROM old_rows', columns) END
$_$;

-- A window as people write it: first and last day, both included.
CREATE FUNCTION customer_analytics._window_text(w daterange) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
    SELECT lower(w) || '..' || (upper(w) - 1)
$$;

-- The ERP stores order_date as text YYYYMMDD.  These turn it into a date and
-- refuse values that are not one (naming the order), instead of letting a
-- text comparison skip them.  COST keeps the planner evaluating cheap
-- filters such as confirmed_code = 'Y' first.
CREATE FUNCTION customer_analytics.checked_order_date(order_date date, order_type text, order_number text) RETURNS date
    LANGUAGE c IMMUTABLE COST 10 PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'checked_order_date_date';

COMMENT ON FUNCTION customer_analytics.checked_order_date(order_date date, order_type text, order_number text) IS 'order_date as a date; an error naming the order when it is NULL or infinite';

-- The ERP stores order_date as text YYYYMMDD.  These turn it into a date and
-- refuse values that are not one (naming the order), instead of letting a
-- text comparison skip them.  COST keeps the planner evaluating cheap
-- filters such as confirmed_code = 'Y' first.
CREATE FUNCTION customer_analytics.checked_order_date(order_date text, order_type text, order_number text) RETURNS date
    LANGUAGE c IMMUTABLE COST 10 PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'checked_order_date_text';

COMMENT ON FUNCTION customer_analytics.checked_order_date(order_date text, order_type text, order_number text) IS 'order_date text YYYYMMDD as a date; an error naming the order for anything else';

-- The order scan's date filter: checks the date like checked_order_date and
-- tests it against the window.  The support function estimates it from the
-- order_date column's statistics, so the planner sizes the scan correctly.
CREATE FUNCTION customer_analytics.order_date_in_window_support(internal) RETURNS internal
    LANGUAGE c STRICT
    AS 'MODULE_PATHNAME', 'order_date_in_window_support';

COMMENT ON FUNCTION customer_analytics.order_date_in_window_support(internal) IS 'planner support of order_date_in_window(): estimates its selectivity from the order_date column''s statistics (not called directly)';

-- Is the order_date inside the window? errors like checked_order_date.
CREATE FUNCTION customer_analytics.order_date_in_window(order_date date, order_window daterange, order_type text, order_number text) RETURNS boolean
    LANGUAGE c IMMUTABLE COST 10 SUPPORT customer_analytics.order_date_in_window_support PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'order_date_in_window_date';

COMMENT ON FUNCTION customer_analytics.order_date_in_window(order_date date, order_window daterange, order_type text, order_number text) IS 'is the order_date inside the window? errors like checked_order_date';

-- Is the order_date inside the window? errors like checked_order_date.
CREATE FUNCTION customer_analytics.order_date_in_window(order_date text, order_window daterange, order_type text, order_number text) RETURNS boolean
    LANGUAGE c IMMUTABLE COST 10 SUPPORT customer_analytics.order_date_in_window_support PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'order_date_in_window_text';

COMMENT ON FUNCTION customer_analytics.order_date_in_window(order_date text, order_window daterange, order_type text, order_number text) IS 'is the checked order_date (text YYYYMMDD) inside the window? errors like checked_order_date';

-- The columns the data contract requires of a source relation, those only
-- customer_features() reads included (src/source_tables.c).
CREATE FUNCTION customer_analytics._contract_columns(relation text) RETURNS text[]
    LANGUAGE c IMMUTABLE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'contract_columns';

-- For each window, whether the source holds a confirmed order dated in it,
-- and the date of its last confirmed order: read as the reading functions
-- read the source (its trust checks and data contract, the rollup when
-- readable, checked dates; src/source_tables.c).  What
-- _empty_windows_note() says after a build or refresh.
CREATE FUNCTION customer_analytics._window_has_orders(source_schema text, windows daterange[], OUT has_orders boolean[], OUT last_order date) RETURNS record
    LANGUAGE c STABLE
    AS 'MODULE_PATHNAME', 'window_has_orders';

COMMENT ON FUNCTION customer_analytics._window_has_orders(source_schema text, windows daterange[], OUT has_orders boolean[], OUT last_order date) IS 'internal: for each window, whether the source holds a confirmed order dated in it, and its last confirmed order''s date, read through the source''s trust checks (the rollup when readable)';
