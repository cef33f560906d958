-- customer_analytics 1.0: promo targeting over the ERP tables
\echo Use "CREATE EXTENSION customer_analytics" to load this file. \quit

-- The ERP stores order_date as text YYYYMMDD.  These turn it into a date and
-- refuse values that are not one (naming the order), instead of letting a
-- text comparison skip them.  COST keeps the planner evaluating cheap
-- filters such as confirmed_code = 'Y' first.
CREATE FUNCTION checked_order_date(order_date text, order_type text, order_number text)
RETURNS date
AS 'MODULE_PATHNAME', 'checked_order_date_text'
LANGUAGE C IMMUTABLE PARALLEL SAFE COST 10;

CREATE FUNCTION checked_order_date(order_date date, order_type text, order_number text)
RETURNS date
AS 'MODULE_PATHNAME', 'checked_order_date_date'
LANGUAGE C IMMUTABLE PARALLEL SAFE COST 10;

COMMENT ON FUNCTION checked_order_date(text, text, text) IS
'order_date text YYYYMMDD as a date; an error naming the order for anything else';
COMMENT ON FUNCTION checked_order_date(date, text, text) IS
'order_date as a date; an error naming the order when it is NULL or infinite';

-- The funnel functions read tables through SPI (so the caller's privileges
-- and row-level security apply) and run the order scan as a query of its
-- own, which may use parallel workers.  They are STABLE: one snapshot, same
-- answer within a statement.  PARALLEL RESTRICTED keeps them in the leader:
-- as a parallel-safe function scan every worker would redo the whole pass.
CREATE FUNCTION target_customers(
    routes            text[]    DEFAULT '{K1,K2,PS}',
    spend_window      daterange DEFAULT '[2025-01-01,2025-12-31]',
    min_spend         numeric   DEFAULT 1000,
    low_ticket_window daterange DEFAULT '[2025-09-15,2026-01-07]',
    low_ticket_below  numeric   DEFAULT 3000,
    min_low_tickets   int       DEFAULT 3,
    base_window       daterange DEFAULT '[2025-08-31,2025-10-30]',
    recent_window     daterange DEFAULT '[2025-10-31,2025-12-31]',
    decline_pct       numeric   DEFAULT 30,
    exclude_closed    boolean   DEFAULT false,
    route_source      text      DEFAULT 'customer',
    source_schema     text      DEFAULT NULL,
    OUT customer_code    text,
    OUT trade_name       text,
    OUT delivery_route   text,
    OUT shipping_address text,
    OUT csm              text,
    OUT total_spend      numeric,
    OUT total_orders     bigint,
    OUT low_ticket_count bigint,
    OUT base_sales       numeric,
    OUT recent_sales     numeric,
    OUT pct_change       numeric,
    OUT target_reason    text,
    OUT is_low_ticket    boolean,
    OUT is_declining     boolean,
    OUT last_order_date  date,
    OUT avg_ticket_size  numeric)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'target_customers'
LANGUAGE C STABLE PARALLEL RESTRICTED SECURITY INVOKER ROWS 500;

COMMENT ON FUNCTION target_customers IS
'Promo targets: customers on the routes whose spend reaches min_spend and who have many low-value orders or declining sales; one row each with the reason';

CREATE FUNCTION targeting_funnel(
    routes            text[]    DEFAULT '{K1,K2,PS}',
    spend_window      daterange DEFAULT '[2025-01-01,2025-12-31]',
    min_spend         numeric   DEFAULT 1000,
    low_ticket_window daterange DEFAULT '[2025-09-15,2026-01-07]',
    low_ticket_below  numeric   DEFAULT 3000,
    min_low_tickets   int       DEFAULT 3,
    base_window       daterange DEFAULT '[2025-08-31,2025-10-30]',
    recent_window     daterange DEFAULT '[2025-10-31,2025-12-31]',
    decline_pct       numeric   DEFAULT 30,
    exclude_closed    boolean   DEFAULT false,
    route_source      text      DEFAULT 'customer',
    source_schema     text      DEFAULT NULL,
    OUT step_no     int,
    OUT step        text,
    OUT description text,
    OUT customers   bigint,
    OUT orders      bigint)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'targeting_funnel'
LANGUAGE C STABLE PARALLEL RESTRICTED SECURITY INVOKER ROWS 6;

COMMENT ON FUNCTION targeting_funnel IS
'The promo funnel step by step (geo, spend, low_ticket, decline, either, both): customers and their orders in the data window';

-- The order scan's date filter: checks the date like checked_order_date and
-- tests it against the window.  The support function estimates it from the
-- order_date column's statistics, so the planner sizes the scan correctly.
CREATE FUNCTION order_date_in_window_support(internal)
RETURNS internal
AS 'MODULE_PATHNAME', 'order_date_in_window_support'
LANGUAGE C STRICT;

CREATE FUNCTION order_date_in_window(order_date text, order_window daterange, order_type text, order_number text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'order_date_in_window_text'
LANGUAGE C IMMUTABLE PARALLEL SAFE COST 10 SUPPORT order_date_in_window_support;

CREATE FUNCTION order_date_in_window(order_date date, order_window daterange, order_type text, order_number text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'order_date_in_window_date'
LANGUAGE C IMMUTABLE PARALLEL SAFE COST 10 SUPPORT order_date_in_window_support;

COMMENT ON FUNCTION order_date_in_window(text, daterange, text, text) IS
'is the checked order_date (text YYYYMMDD) inside the window? errors like checked_order_date';
COMMENT ON FUNCTION order_date_in_window(date, daterange, text, text) IS
'is the order_date inside the window? errors like checked_order_date';

-- Revenue per customer and calendar month, long form, every customer and
-- month present (0 where nothing was ordered).  Months are cut to the window,
-- so the first and last may be partial.
CREATE FUNCTION monthly_revenue(
    customer_codes text[],
    revenue_window daterange DEFAULT '[2025-09-01,2026-01-07]',
    source_schema  text      DEFAULT NULL,
    OUT customer_code text,
    OUT month         date,
    OUT revenue       numeric,
    OUT orders        bigint)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'monthly_revenue'
LANGUAGE C STABLE PARALLEL RESTRICTED SECURITY INVOKER;

COMMENT ON FUNCTION monthly_revenue IS
'Revenue and confirmed orders per customer and month over revenue_window (partial first/last months cut to the window); one row per customer and month, 0 where nothing was ordered';
