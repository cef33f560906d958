-- customer_analytics 1.3 -> 1.4: monthly_revenue() as a parallel aggregate
\echo Use "ALTER EXTENSION customer_analytics UPDATE TO '1.4'" to load this file. \quit

------------------------------------------------------------------------------
-- monthly_revenue_stats: one customer's confirmed orders summed per calendar
-- month of a revenue window, every month present (0 without orders).
-- monthly_revenue() groups its order rows by customer with it, so parallel
-- workers, partitionwise plans and shards co-located by customer build
-- partial states that combine.  A NULL or out-of-window date adds nothing,
-- a NULL total counts as an order with revenue 0; no rows give NULL.
------------------------------------------------------------------------------
CREATE TYPE monthly_revenue_stats AS (
    months  date[],     -- the first day of each month the window touches
    revenue numeric[],  -- order totals per month (0 without any)
    orders  bigint[]    -- orders per month
);
COMMENT ON TYPE monthly_revenue_stats IS
'what the monthly_revenue_stats aggregate returns: per month of the window, its first day, revenue and order count';

CREATE FUNCTION _monthly_revenue_stats_sfunc(internal, date, numeric, daterange) RETURNS internal
AS 'MODULE_PATHNAME', 'monthly_revenue_stats_sfunc' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION _monthly_revenue_stats_combine(internal, internal) RETURNS internal
AS 'MODULE_PATHNAME', 'monthly_revenue_stats_combine' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION _monthly_revenue_stats_serialize(internal) RETURNS bytea
AS 'MODULE_PATHNAME', 'monthly_revenue_stats_serialize' LANGUAGE C IMMUTABLE PARALLEL SAFE STRICT;
CREATE FUNCTION _monthly_revenue_stats_deserialize(bytea, internal) RETURNS internal
AS 'MODULE_PATHNAME', 'monthly_revenue_stats_deserialize' LANGUAGE C IMMUTABLE PARALLEL SAFE STRICT;
CREATE FUNCTION _monthly_revenue_stats_final(internal) RETURNS monthly_revenue_stats
AS 'MODULE_PATHNAME', 'monthly_revenue_stats_final' LANGUAGE C IMMUTABLE PARALLEL SAFE;

-- SSPACE: a window of five months, as a campaign's sheet usually has
CREATE AGGREGATE monthly_revenue_stats(
    order_date     date,
    order_total    numeric,
    revenue_window daterange) (
    SFUNC = _monthly_revenue_stats_sfunc, STYPE = internal, SSPACE = 256,
    FINALFUNC = _monthly_revenue_stats_final,
    COMBINEFUNC = _monthly_revenue_stats_combine,
    SERIALFUNC = _monthly_revenue_stats_serialize, DESERIALFUNC = _monthly_revenue_stats_deserialize,
    PARALLEL = SAFE);
COMMENT ON AGGREGATE monthly_revenue_stats(date, numeric, daterange) IS
'per-customer revenue and order count for every calendar month of revenue_window (one row per order); what monthly_revenue() pivots from';
