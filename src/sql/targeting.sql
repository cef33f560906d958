-- targeting.sql
--	The promo funnel: target customers, the funnel counts, monthly revenue and its pivot, and their aggregates (targeting.c, monthly_revenue.c).

CREATE TYPE customer_analytics.targeting_stats AS (
	orders bigint,
	total numeric,
	last_order date,
	spend_orders bigint,
	spend numeric,
	low_tickets bigint,
	base numeric,
	recent numeric
);

COMMENT ON TYPE customer_analytics.targeting_stats IS 'what the targeting_stats aggregate returns: order counts and exact totals per targeting window';


SET default_tablespace = '';

SET default_table_access_method = heap;

CREATE TYPE customer_analytics.monthly_revenue_stats AS (
	months date[],
	revenue numeric[],
	orders bigint[]
);

COMMENT ON TYPE customer_analytics.monthly_revenue_stats IS 'what the monthly_revenue_stats aggregate returns: per month of the window, its first day, revenue and order count';

-- The longest pivot a campaign may ask for (one column per month).
CREATE FUNCTION customer_analytics._max_pivot_months() RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$SELECT 120$$;

-- The combine function of aggregate monthly_revenue_stats.
CREATE FUNCTION customer_analytics._monthly_revenue_stats_combine(internal, internal) RETURNS internal
    LANGUAGE c IMMUTABLE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'monthly_revenue_stats_combine';

-- The deserialize function of aggregate monthly_revenue_stats.
CREATE FUNCTION customer_analytics._monthly_revenue_stats_deserialize(bytea, internal) RETURNS internal
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'monthly_revenue_stats_deserialize';

-- The final function of aggregate monthly_revenue_stats.
CREATE FUNCTION customer_analytics._monthly_revenue_stats_final(internal) RETURNS customer_analytics.monthly_revenue_stats
    LANGUAGE c IMMUTABLE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'monthly_revenue_stats_final';

-- The serialize function of aggregate monthly_revenue_stats.
CREATE FUNCTION customer_analytics._monthly_revenue_stats_serialize(internal) RETURNS bytea
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'monthly_revenue_stats_serialize';

-- The transition function of aggregate monthly_revenue_stats.
CREATE FUNCTION customer_analytics._monthly_revenue_stats_sfunc(internal, date, numeric, daterange) RETURNS internal
    LANGUAGE c IMMUTABLE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'monthly_revenue_stats_sfunc';

-- The combine function of aggregate _order_line_totals.
CREATE FUNCTION customer_analytics._order_line_totals_combine(internal, internal) RETURNS internal
    LANGUAGE c IMMUTABLE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'order_line_totals_combine';

-- The deserialize function of aggregate _order_line_totals.
CREATE FUNCTION customer_analytics._order_line_totals_deserialize(bytea, internal) RETURNS internal
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'order_line_totals_deserialize';

-- The final function of aggregate _order_line_totals.
CREATE FUNCTION customer_analytics._order_line_totals_final(internal) RETURNS bytea
    LANGUAGE c IMMUTABLE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'order_line_totals_final';

-- The serialize function of aggregate _order_line_totals.
CREATE FUNCTION customer_analytics._order_line_totals_serialize(internal) RETURNS bytea
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'order_line_totals_serialize';

-- The transition function of aggregate _order_line_totals.
CREATE FUNCTION customer_analytics._order_line_totals_sfunc(internal, text, text, numeric, bytea) RETURNS internal
    LANGUAGE c IMMUTABLE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'order_line_totals_sfunc';

-- Is code one of the listed codes (a bytea as the full recompute builds it:
-- an int32 count, then per code an int32 length and its bytes, the integers
-- as int4send() writes them)?  The route test of target_customers()' scan
-- of the scoped orders; its cost keeps it after order_date_in_window()
-- (COST 10) in a scan's filter, so that every confirmed order's date is
-- still checked.
CREATE FUNCTION customer_analytics._code_listed(code text, codes bytea) RETURNS boolean
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE COST 20
    AS 'MODULE_PATHNAME', 'code_listed';

COMMENT ON FUNCTION customer_analytics._code_listed(code text, codes bytea) IS 'internal: is code one of the codes listed in codes (an int32 count, then per code an int32 length and its bytes, the integers as int4send writes them; the same value on every row)? bytewise';

-- The combine function of aggregate targeting_line_stats.
CREATE FUNCTION customer_analytics._targeting_line_stats_combine(internal, internal) RETURNS internal
    LANGUAGE c IMMUTABLE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'targeting_line_stats_combine';

-- The deserialize function of aggregate targeting_line_stats.
CREATE FUNCTION customer_analytics._targeting_line_stats_deserialize(bytea, internal) RETURNS internal
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'targeting_line_stats_deserialize';

-- The final function of aggregate targeting_line_stats.
CREATE FUNCTION customer_analytics._targeting_line_stats_final(internal) RETURNS customer_analytics.targeting_stats
    LANGUAGE c IMMUTABLE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'targeting_line_stats_final';

-- The serialize function of aggregate targeting_line_stats.
CREATE FUNCTION customer_analytics._targeting_line_stats_serialize(internal) RETURNS bytea
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'targeting_line_stats_serialize';

-- The transition function of aggregate targeting_line_stats.
CREATE FUNCTION customer_analytics._targeting_line_stats_sfunc(internal, text, text, date, numeric, daterange, daterange, daterange, daterange, numeric) RETURNS internal
    LANGUAGE c IMMUTABLE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'targeting_line_stats_sfunc';

-- The combine function of aggregate targeting_stats.
CREATE FUNCTION customer_analytics._targeting_stats_combine(internal, internal) RETURNS internal
    LANGUAGE c IMMUTABLE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'targeting_stats_combine';

-- The deserialize function of aggregate targeting_stats.
CREATE FUNCTION customer_analytics._targeting_stats_deserialize(bytea, internal) RETURNS internal
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'targeting_stats_deserialize';

-- The final function of aggregate targeting_stats.
CREATE FUNCTION customer_analytics._targeting_stats_final(internal) RETURNS customer_analytics.targeting_stats
    LANGUAGE c IMMUTABLE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'targeting_stats_final';

-- The serialize function of aggregate targeting_stats.
CREATE FUNCTION customer_analytics._targeting_stats_serialize(internal) RETURNS bytea
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'targeting_stats_serialize';

-- The transition function of aggregate targeting_stats.
CREATE FUNCTION customer_analytics._targeting_stats_sfunc(internal, date, numeric, daterange, daterange, daterange, daterange, numeric) RETURNS internal
    LANGUAGE c IMMUTABLE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'targeting_stats_sfunc';

-- Revenue per customer and calendar month, long form, every customer and
-- month present (0 where nothing was ordered).  Months are cut to the window,
-- so the first and last may be partial.
CREATE FUNCTION customer_analytics.monthly_revenue(customer_codes text[], revenue_window daterange DEFAULT '[2025-09-01,2026-01-08)'::daterange, source_schema text DEFAULT NULL::text, OUT customer_code text, OUT month date, OUT revenue numeric, OUT orders bigint) RETURNS SETOF record
    LANGUAGE c STABLE PARALLEL RESTRICTED
    AS 'MODULE_PATHNAME', 'monthly_revenue';

COMMENT ON FUNCTION customer_analytics.monthly_revenue(customer_codes text[], revenue_window daterange, source_schema text, OUT customer_code text, OUT month date, OUT revenue numeric, OUT orders bigint) IS 'Revenue and confirmed orders per customer and month over revenue_window (partial first/last months cut to the window); one row per customer and month, 0 where nothing was ordered';

-- pivot_months() with an infinite bound never ended (a month series to
-- infinity); a window is now refused unless both bounds are finite, and
-- beyond the 1,200 months monthly_revenue() accepts.  NULL, empty and
-- unbounded windows still give no months, as before.
CREATE FUNCTION customer_analytics.pivot_months(revenue_window daterange) RETURNS TABLE(month date, first_day date, last_day date, column_name text, partial boolean)
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
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

COMMENT ON FUNCTION customer_analytics.pivot_months(revenue_window daterange) IS 'The calendar months of revenue_window, one row each: the month, its first and last day inside the window, the sheet''s column name for it and whether it is partial (no rows for a NULL, empty or unbounded window)';

-- The funnel functions read tables through SPI (so the caller's privileges
-- and row-level security apply) and run the order scan as a query of its
-- own, which may use parallel workers.  They are STABLE: one snapshot, same
-- answer within a statement.  PARALLEL RESTRICTED keeps them in the leader:
-- as a parallel-safe function scan every worker would redo the whole pass.
CREATE FUNCTION customer_analytics.target_customers(routes text[] DEFAULT '{K1,K2,PS}'::text[], spend_window daterange DEFAULT '[2025-01-01,2026-01-01)'::daterange, min_spend numeric DEFAULT 1000, low_ticket_window daterange DEFAULT '[2025-09-15,2026-01-08)'::daterange, low_ticket_below numeric DEFAULT 3000, min_low_tickets integer DEFAULT 3, base_window daterange DEFAULT '[2025-08-31,2025-10-31)'::daterange, recent_window daterange DEFAULT '[2025-10-31,2026-01-01)'::daterange, decline_pct numeric DEFAULT 30, exclude_closed boolean DEFAULT false, route_source text DEFAULT 'customer'::text, source_schema text DEFAULT NULL::text, customers text[] DEFAULT NULL::text[], OUT customer_code text, OUT trade_name text, OUT delivery_route text, OUT shipping_address text, OUT csm text, OUT total_spend numeric, OUT total_orders bigint, OUT low_ticket_count bigint, OUT base_sales numeric, OUT recent_sales numeric, OUT pct_change numeric, OUT target_reason text, OUT is_low_ticket boolean, OUT is_declining boolean, OUT last_order_date date, OUT avg_ticket_size numeric) RETURNS SETOF record
    LANGUAGE c STABLE ROWS 500 PARALLEL RESTRICTED
    AS 'MODULE_PATHNAME', 'target_customers';

COMMENT ON FUNCTION customer_analytics.target_customers(routes text[], spend_window daterange, min_spend numeric, low_ticket_window daterange, low_ticket_below numeric, min_low_tickets integer, base_window daterange, recent_window daterange, decline_pct numeric, exclude_closed boolean, route_source text, source_schema text, customers text[], OUT customer_code text, OUT trade_name text, OUT delivery_route text, OUT shipping_address text, OUT csm text, OUT total_spend numeric, OUT total_orders bigint, OUT low_ticket_count bigint, OUT base_sales numeric, OUT recent_sales numeric, OUT pct_change numeric, OUT target_reason text, OUT is_low_ticket boolean, OUT is_declining boolean, OUT last_order_date date, OUT avg_ticket_size numeric) IS 'Promo targets: customers on the routes whose spend reaches min_spend and who have many low-value orders or declining sales; one row each with the reason (customers: only these codes)';

-- The promo funnel step by step (geo, spend, low_ticket, decline, either,
-- both): customers and their orders in the data window.
CREATE FUNCTION customer_analytics.targeting_funnel(routes text[] DEFAULT '{K1,K2,PS}'::text[], spend_window daterange DEFAULT '[2025-01-01,2026-01-01)'::daterange, min_spend numeric DEFAULT 1000, low_ticket_window daterange DEFAULT '[2025-09-15,2026-01-08)'::daterange, low_ticket_below numeric DEFAULT 3000, min_low_tickets integer DEFAULT 3, base_window daterange DEFAULT '[2025-08-31,2025-10-31)'::daterange, recent_window daterange DEFAULT '[2025-10-31,2026-01-01)'::daterange, decline_pct numeric DEFAULT 30, exclude_closed boolean DEFAULT false, route_source text DEFAULT 'customer'::text, source_schema text DEFAULT NULL::text, customers text[] DEFAULT NULL::text[], OUT step_no integer, OUT step text, OUT description text, OUT customers bigint, OUT orders bigint) RETURNS SETOF record
    LANGUAGE c STABLE ROWS 6 PARALLEL RESTRICTED
    AS 'MODULE_PATHNAME', 'targeting_funnel';

COMMENT ON FUNCTION customer_analytics.targeting_funnel(routes text[], spend_window daterange, min_spend numeric, low_ticket_window daterange, low_ticket_below numeric, min_low_tickets integer, base_window daterange, recent_window daterange, decline_pct numeric, exclude_closed boolean, route_source text, source_schema text, customers text[], OUT step_no integer, OUT step text, OUT description text, OUT customers bigint, OUT orders bigint) IS 'The promo funnel step by step (geo, spend, low_ticket, decline, either, both): customers and their orders in the data window';

-- SSPACE: a window of five months, as a campaign's sheet usually has
CREATE AGGREGATE customer_analytics.monthly_revenue_stats(order_date date, order_total numeric, revenue_window daterange) (
    SFUNC = customer_analytics._monthly_revenue_stats_sfunc,
    STYPE = internal,
    SSPACE = 256,
    FINALFUNC = customer_analytics._monthly_revenue_stats_final,
    COMBINEFUNC = customer_analytics._monthly_revenue_stats_combine,
    SERIALFUNC = customer_analytics._monthly_revenue_stats_serialize,
    DESERIALFUNC = customer_analytics._monthly_revenue_stats_deserialize,
    PARALLEL = safe
);

COMMENT ON AGGREGATE customer_analytics.monthly_revenue_stats(order_date date, order_total numeric, revenue_window daterange) IS 'per-customer revenue and order count for every calendar month of revenue_window (one row per order); what monthly_revenue() pivots from';

-- targeting_stats over the lines of the orders (one row per line, with its
-- order's key and date): what target_customers() reads from the source
-- tables, so that no step groups the lines per order.  SSPACE: about
-- thirty orders a customer in a year's window.
-- The totals of a list of orders from one scan of the lines (target_customers
-- over the source tables).
CREATE AGGREGATE customer_analytics._order_line_totals(order_type text, order_number text, line_amount numeric, orders bytea) (
    SFUNC = customer_analytics._order_line_totals_sfunc,
    STYPE = internal,
    SSPACE = 1048576,
    FINALFUNC = customer_analytics._order_line_totals_final,
    COMBINEFUNC = customer_analytics._order_line_totals_combine,
    SERIALFUNC = customer_analytics._order_line_totals_serialize,
    DESERIALFUNC = customer_analytics._order_line_totals_deserialize,
    PARALLEL = safe
);

COMMENT ON AGGREGATE customer_analytics._order_line_totals(order_type text, order_number text, line_amount numeric, orders bytea) IS 'internal: the sum of line_amount per order of the list orders (order keys sorted, each once; the same value on every row), from the lines in any order, each run of lines of one order looked for in the sorted list from the previous run''s position; a bytea of (position, total) pairs';

CREATE AGGREGATE customer_analytics.targeting_line_stats(order_type text, order_number text, order_date date, line_amount numeric, spend_window daterange, low_ticket_window daterange, base_window daterange, recent_window daterange, low_ticket_below numeric) (
    SFUNC = customer_analytics._targeting_line_stats_sfunc,
    STYPE = internal,
    SSPACE = 1024,
    FINALFUNC = customer_analytics._targeting_line_stats_final,
    FINALFUNC_MODIFY = READ_WRITE,
    COMBINEFUNC = customer_analytics._targeting_line_stats_combine,
    SERIALFUNC = customer_analytics._targeting_line_stats_serialize,
    DESERIALFUNC = customer_analytics._targeting_line_stats_deserialize,
    PARALLEL = safe
);

COMMENT ON AGGREGATE customer_analytics.targeting_line_stats(order_type text, order_number text, order_date date, line_amount numeric, spend_window daterange, low_ticket_window daterange, base_window daterange, recent_window daterange, low_ticket_below numeric) IS 'targeting_stats from the order lines (one row per line with its order''s key and date; an order without lines: one row with a NULL amount); the lines of one order are summed into its total, whatever order they arrive in';

-- Per-customer order counts and totals by targeting window (one row per
-- order.
CREATE AGGREGATE customer_analytics.targeting_stats(order_date date, order_total numeric, spend_window daterange, low_ticket_window daterange, base_window daterange, recent_window daterange, low_ticket_below numeric) (
    SFUNC = customer_analytics._targeting_stats_sfunc,
    STYPE = internal,
    SSPACE = 160,
    FINALFUNC = customer_analytics._targeting_stats_final,
    COMBINEFUNC = customer_analytics._targeting_stats_combine,
    SERIALFUNC = customer_analytics._targeting_stats_serialize,
    DESERIALFUNC = customer_analytics._targeting_stats_deserialize,
    PARALLEL = safe
);

COMMENT ON AGGREGATE customer_analytics.targeting_stats(order_date date, order_total numeric, spend_window daterange, low_ticket_window daterange, base_window daterange, recent_window daterange, low_ticket_below numeric) IS 'per-customer order counts and totals by targeting window (one row per order; windows and bar constant); what target_customers() decides on';
