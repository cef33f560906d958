-- target_customers() on the hand-built fixture (see 00_setup).  Expected rows,
-- worked out by hand with the notebook's rules and the default campaign:
--   0001001 spend 200+100+300+400 = 1000.00 exactly (kept); 3 orders below 3000
--           in 09-15..01-07; base 300+300 = 600, recent 400: -33.3 %  -> 低客單, also declining
--   0001002 spend 999.99 (dropped, though it has 3 low tickets)
--   0001003 orders of 3000.00 (not low), 2999.99, 100: only 2 low tickets; -18 % -> not a target
--   0001004 no base sales: pct_change NULL, never declining; 3 low tickets -> 低客單
--   0001005 base 1000, recent 700: exactly -30 % is not a decline -> not a target
--   0001006 base 10000, recent 6999: -30.01 % -> 業績下滑
--   0001007 three orders below 3000 but unconfirmed ('N', NULL) -> not a target
--   0001008 totals 5000, 0 (no lines), 0 (NULL amounts), 100 -> 3 low tickets; base 5100, recent 0
--   0001009 20241231 and 20260108 fall outside every window; 20251231 is in spend
--           (1000 exactly), 20251231/20260101/20260107 are the 3 low tickets
--   0001010 customer route T1: not on the routes (its orders' route is K1)
--   0001011 closed, kept unless exclude_closed; 0001012 has closure_date ''
--   0012    leading zeros matter: order 1124 of customer '12' is not theirs
--   0001015 on K1 with no orders: in the geo step only
SELECT * FROM customer_analytics.target_customers(source_schema => 'fx');

-- the defaults are the notebook's campaign: spelling them out changes nothing
SELECT count(*) AS differences FROM (
  (SELECT * FROM customer_analytics.target_customers(source_schema => 'fx')
   EXCEPT
   SELECT * FROM customer_analytics.target_customers(
       routes => '{K1,K2,PS}',
       spend_window => '[2025-01-01,2025-12-31]', min_spend => 1000,
       low_ticket_window => '[2025-09-15,2026-01-07]', low_ticket_below => 3000, min_low_tickets => 3,
       base_window => '[2025-08-31,2025-10-30]', recent_window => '[2025-10-31,2025-12-31]',
       decline_pct => 30, exclude_closed => false, route_source => 'customer',
       source_schema => 'fx'))
) d;

-- the source schema comes from the GUC when the argument is left out
SET customer_analytics.source_schema = 'fx';
SELECT customer_code, total_spend, target_reason FROM customer_analytics.target_customers();
RESET customer_analytics.source_schema;

-- thresholds move customers in and out exactly at the boundary
SELECT customer_code, total_spend FROM customer_analytics.target_customers(source_schema => 'fx', min_spend => 1000.01);
SELECT customer_code, low_ticket_count FROM customer_analytics.target_customers(source_schema => 'fx', min_low_tickets => 2, low_ticket_below => 3000.01)
 WHERE customer_code IN ('0001002', '0001003', '0001005');
-- a drop of exactly 30 % qualifies once the bar is 29.99
SELECT customer_code, pct_change, target_reason FROM customer_analytics.target_customers(source_schema => 'fx', decline_pct => 29.99)
 WHERE is_declining;

-- route_source => 'order': the order's route decides.  0001001 loses order 1003
-- (route T9) and falls to 600 spend; 0001010 qualifies on its K1 orders and is
-- shown with its own route T1.
SELECT customer_code, delivery_route, total_spend, total_orders, low_ticket_count, target_reason
  FROM customer_analytics.target_customers(source_schema => 'fx', route_source => 'order');

-- exclude_closed drops 0001011 (closure_date 20251215) but keeps 0001012 ('')
SELECT customer_code FROM customer_analytics.target_customers(source_schema => 'fx', exclude_closed => true);
SELECT customer_code FROM customer_analytics.target_customers(source_schema => 'fx', exclude_closed => true, route_source => 'order');

-- windows are ordinary dateranges: any bounds work, here only the last quarter
SELECT customer_code, total_spend, total_orders FROM customer_analytics.target_customers(
    source_schema => 'fx', spend_window => '[2025-10-01,2026-01-01)');
