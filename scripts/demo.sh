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

if [ "${KEEP:-0}" = 1 ]; then
    ca_log "Cluster left running: psql -h $PGHOST -p $PGPORT -U postgres postgres
    stop it with: runuser -u postgres -- $PG_BIN/pg_ctl -D $CA_CLUSTER_DIR/data stop"
fi
