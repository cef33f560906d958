#!/usr/bin/env bash
# The main job end to end:  bash scripts/demo.sh
# Installs what is missing, builds and installs the extension, starts a
# throwaway cluster, loads the demo ERP data (SCALE, default 1), and prints
# the promo funnel and the top 20 targets by spend, then builds the notebook's
# campaign as materialized views and prints the first rows of its monthly
# sheet, then segments the repeat customers: elbow table, k = 4 profiles, RFM.
# KEEP=1 leaves the cluster running and prints how to connect to it.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
SCALE=${SCALE:-1}

ca_install_deps
ca_build_install
ca_start_cluster
if [ "${KEEP:-0}" = 1 ]; then trap - EXIT; fi

ca_log "Loading the demo data at scale $SCALE into schema cosmos_sync"
ca_psql -v scale="$SCALE" -f "$CA_ROOT/test/demo_data.sql"
ca_psql -c "CREATE EXTENSION customer_analytics"

ca_log "The promo funnel (the notebook's campaign: routes K1/K2/PS, 2025 spend >= 1000, ...)"
ca_psql -c "SELECT step_no, step, customers, orders, description FROM customer_analytics.targeting_funnel()"

ca_log "Top 20 targets by 2025 spend"
ca_psql -c "SELECT customer_code, trade_name, delivery_route AS route, total_spend, total_orders,
                   low_ticket_count AS low_tickets, round(pct_change, 1) AS pct_change, target_reason
              FROM customer_analytics.target_customers()
             ORDER BY total_spend DESC, customer_code
             LIMIT 20"

ca_log "Building the campaign promo2 as materialized views in schema bi"
ca_psql -c "CREATE SCHEMA bi" \
        -c "SELECT name, view_schema, target_rows, monthly_rows FROM customer_analytics.create_campaign('promo2', 'bi')"

ca_log "The campaign sheet bi.promo2_monthly (first 20 rows of $(ca_psql -At -c 'SELECT count(*) FROM bi.promo2_monthly'))"
ca_psql -c "SELECT * FROM bi.promo2_monthly ORDER BY customer_code LIMIT 20"
cat >&2 <<'HINT'
Export the sheet to CSV from psql:
    \copy (SELECT * FROM bi.promo2_monthly ORDER BY customer_code) TO 'promo2_monthly.csv' CSV HEADER
Refresh it after the ERP sync (readers are not blocked):
    SELECT customer_analytics.refresh_campaign('promo2');
HINT

ca_log "Segmentation of repeat customers, built as views in schema segments (k = 4, as the notebook)"
ca_psql -c "CREATE SCHEMA segments" \
        -c "SELECT name, view_schema, segment, k, member_rows FROM customer_analytics.create_segmentation('repeat4', 'segments')"

ca_log "The elbow table segments.repeat4_elbow (k = 1..10, kneedle and silhouette picks)"
ca_psql -c "SELECT k, round(inertia::numeric, 1) AS inertia, round(silhouette::numeric, 4) AS silhouette,
                   kneedle_pick, silhouette_pick
              FROM segments.repeat4_elbow ORDER BY k"

ca_log "The k = 4 cluster profiles segments.repeat4_profiles (means; ranks 1 = highest)"
ca_psql -c "SELECT cluster, customers, share, round(visits::numeric, 1) AS visits,
                   round(total_spend::numeric) AS total_spend, round(ticket_size::numeric) AS ticket_size,
                   round(skus::numeric, 1) AS skus, round(recency_days::numeric, 1) AS recency_days,
                   round(days_per_visit::numeric, 1) AS days_per_visit, ranks->>'total_spend' AS spend_rank,
                   ranks->>'recency_days' AS recency_rank
              FROM segments.repeat4_profiles ORDER BY cluster"

ca_log "RFM segments"
ca_psql -c "SELECT segment, count(*) AS customers, round(avg(total_spend)) AS avg_spend
              FROM customer_analytics.rfm_segments() GROUP BY segment ORDER BY customers DESC"

ca_log "Launching promo2 on 2025-12-01 with a 10 % holdout per stratum (target reason x route)"
ca_psql -c "SELECT launched_on, treatment_members, holdout_members, round(baseline_revenue_sd::numeric) AS baseline_sd,
                   round(revenue_mde::numeric) AS revenue_mde
              FROM customer_analytics.launch_campaign('promo2', launched_on => '2025-12-01', seed => 'demo')"
ca_log "Who to contact: bi.promo2_contact_list (treatment arm only; first 10 of $(ca_psql -At -c 'SELECT count(*) FROM bi.promo2_contact_list'))"
ca_psql -c "SELECT * FROM bi.promo2_contact_list ORDER BY customer_code LIMIT 10"

ca_log "SIMULATION (not in the demo data): the promo works on about 40 % of the treatment arm,
who each place two extra orders of 5,000 between 2025-12-01 and 2026-01-31 (order type PR)"
ca_psql -c "INSERT INTO cosmos_sync.sales_orders
            SELECT 'PR', 'SIM' || lpad(m.n::text, 6, '0') || x.suffix, m.customer_code, m.delivery_route,
                   to_char(date '2025-12-01' + (abs(hashtext(m.customer_code)) % 40) + x.days, 'YYYYMMDD'), 'Y'
              FROM (SELECT c.*, row_number() OVER (ORDER BY c.customer_code) AS n FROM bi.promo2_contact_list c
                     WHERE abs(hashtext('promo works:' || c.customer_code)) % 5 < 2) m
             CROSS JOIN (VALUES ('A', 0), ('B', 20)) x(suffix, days)" \
        -c "INSERT INTO cosmos_sync.sales_order_lines
            SELECT o.order_type, o.order_number, 1, 'PROMO', 1, 5000
              FROM cosmos_sync.sales_orders o WHERE o.order_type = 'PR' AND o.order_number LIKE 'SIM%'"

ca_log "Ending promo2 on 2026-02-01 and refreshing: measured over [2025-12-01, 2026-02-01), baseline the 62 days before"
ca_psql -c "SELECT launched_on, ended_on FROM customer_analytics.end_campaign('promo2', '2026-02-01')" \
        -c "SELECT name, target_rows FROM customer_analytics.refresh_campaign('promo2')"

ca_log "Did the promo work? bi.promo2_lift (all members and per stratum; CUPED uses the baseline)"
ca_psql -c "SELECT metric, stratum, n_treatment AS n_t, n_holdout AS n_h, round(mean_treatment::numeric, 1) AS mean_t,
                   round(mean_holdout::numeric, 1) AS mean_h, round(lift::numeric, 1) AS lift,
                   round(lift_pct::numeric, 1) AS lift_pct, round(ci_low::numeric, 1) AS ci_low,
                   round(ci_high::numeric, 1) AS ci_high, round(p_value::numeric, 4) AS p,
                   round(cuped_lift::numeric, 1) AS cuped_lift, round(cuped_ci_low::numeric, 1) AS cuped_ci_low,
                   round(cuped_ci_high::numeric, 1) AS cuped_ci_high, round(cuped_p_value::numeric, 4) AS cuped_p,
                   round(balance_p_value::numeric, 4) AS balance_p
              FROM bi.promo2_lift ORDER BY metric DESC, overall DESC, stratum"

if [ "${KEEP:-0}" = 1 ]; then
    ca_log "Cluster left running: psql -h $PGHOST -p $PGPORT -U postgres postgres
    stop it with: runuser -u postgres -- $PG_BIN/pg_ctl -D $CA_CLUSTER_DIR/data stop"
fi
