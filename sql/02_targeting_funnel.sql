-- targeting_funnel() on the fixture.  By hand (see 01_target_customers):
--   geo        13 customers on K1/K2/PS (0001015 without orders counts), 34 confirmed
--              orders of theirs dated 2025-01-01..2026-01-07
--   spend      11 (all but 0001002 and 0001015), 31 orders
--   low_ticket  7 (0001001, 0001004, 0001008, 0001009, 0001011, 0001012, 0012), 22 orders
--   decline     3 (0001001, 0001006, 0001008), 9 orders
--   either      8, 24 orders;  both 2 (0001001, 0001008), 7 orders
SELECT * FROM customer_analytics.targeting_funnel(source_schema => 'fx');

-- without the closed customer 0001011 (3 orders)
SELECT step, customers, orders FROM customer_analytics.targeting_funnel(source_schema => 'fx', exclude_closed => true);

-- with the order's route: customers who ordered on K1/K2/PS.  0001010 and the
-- unknown customer '12' join, 0001015 (no orders) leaves, 0001001 keeps 2 orders.
SELECT step, customers, orders FROM customer_analytics.targeting_funnel(source_schema => 'fx', route_source => 'order');

-- the funnel's either step is exactly target_customers()
SELECT (SELECT customers FROM customer_analytics.targeting_funnel(source_schema => 'fx') WHERE step = 'either')
     = (SELECT count(*) FROM customer_analytics.target_customers(source_schema => 'fx')) AS either_is_targets;
