-- customer_analytics 1.1 -> 1.2: the per-customer targeting computation as a
-- parallel aggregate
\echo Use "ALTER EXTENSION customer_analytics UPDATE TO '1.2'" to load this file. \quit

------------------------------------------------------------------------------
-- targeting_stats: one customer's confirmed orders folded into what the
-- promo funnel decides on.  target_customers() and targeting_funnel() group
-- their order rows by customer with it, so parallel workers build partial
-- states and the leader combines them.  Rows with a NULL order_date are
-- skipped; a NULL order_total counts as 0.
------------------------------------------------------------------------------
CREATE TYPE targeting_stats AS (
    orders       bigint,    -- every order aggregated
    total        numeric,   -- their totals
    last_order   date,
    spend_orders bigint,    -- orders in spend_window
    spend        numeric,   -- their totals
    low_tickets  bigint,    -- orders in low_ticket_window below low_ticket_below
    base         numeric,   -- totals in base_window
    recent       numeric    -- totals in recent_window
);
COMMENT ON TYPE targeting_stats IS
'what the targeting_stats aggregate returns: order counts and exact totals per targeting window';

CREATE FUNCTION _targeting_stats_sfunc(internal, date, numeric, daterange, daterange,
                                       daterange, daterange, numeric) RETURNS internal
AS 'MODULE_PATHNAME', 'targeting_stats_sfunc' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION _targeting_stats_combine(internal, internal) RETURNS internal
AS 'MODULE_PATHNAME', 'targeting_stats_combine' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION _targeting_stats_serialize(internal) RETURNS bytea
AS 'MODULE_PATHNAME', 'targeting_stats_serialize' LANGUAGE C IMMUTABLE PARALLEL SAFE STRICT;
CREATE FUNCTION _targeting_stats_deserialize(bytea, internal) RETURNS internal
AS 'MODULE_PATHNAME', 'targeting_stats_deserialize' LANGUAGE C IMMUTABLE PARALLEL SAFE STRICT;
CREATE FUNCTION _targeting_stats_final(internal) RETURNS targeting_stats
AS 'MODULE_PATHNAME', 'targeting_stats_final' LANGUAGE C IMMUTABLE PARALLEL SAFE;

CREATE AGGREGATE targeting_stats(
    order_date        date,
    order_total       numeric,
    spend_window      daterange,
    low_ticket_window daterange,
    base_window       daterange,
    recent_window     daterange,
    low_ticket_below  numeric) (
    SFUNC = _targeting_stats_sfunc, STYPE = internal, SSPACE = 160,
    FINALFUNC = _targeting_stats_final,
    COMBINEFUNC = _targeting_stats_combine,
    SERIALFUNC = _targeting_stats_serialize, DESERIALFUNC = _targeting_stats_deserialize,
    PARALLEL = SAFE);
COMMENT ON AGGREGATE targeting_stats(date, numeric, daterange, daterange, daterange, daterange, numeric) IS
'per-customer order counts and totals by targeting window (one row per order; windows and bar constant); what target_customers() decides on';
