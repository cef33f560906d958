// The promo notebook's way, for the benchmark: extract customers and
// confirmed orders with SQL (the notebook's own queries), then compute the
// funnel and the targets in a polars dataframe, as the notebook does.
// Prints "<targets> <milliseconds>" for one run, extract included.
// Connection settings: PGHOST, PGPORT, PGUSER, PGDATABASE.
const pl = require("nodejs-polars");
const { Client } = require("pg");

const ROUTES = ["K1", "K2", "PS"];

async function main() {
  const client = new Client();
  await client.connect();
  const started = process.hrtime.bigint();

  const customers = (await client.query(
    "SELECT customer_code, trade_name, delivery_route, shipping_address, closure_date, csm FROM cosmos_sync.customers")).rows;
  const orders = (await client.query(`
    SELECT so.order_type, so.order_number, so.customer_code, so.delivery_route, so.order_date,
           COALESCE(SUM(sol.pretax_subtotal), 0)::float8 AS order_total
      FROM cosmos_sync.sales_orders so
      LEFT JOIN cosmos_sync.sales_order_lines sol
        ON so.order_type = sol.order_type AND so.order_number = sol.order_number
     WHERE so.confirmed_code = 'Y' AND so.order_date >= '20250101' AND so.order_date <= '20260107'
     GROUP BY so.order_type, so.order_number, so.customer_code, so.delivery_route, so.order_date`)).rows;

  const customersDf = pl.DataFrame(customers);
  const ordersDf = pl.DataFrame(orders);

  const geo = customersDf.filter(pl.col("delivery_route").isIn(ROUTES));
  const geoCodes = geo.getColumn("customer_code").toArray();
  const geoOrders = ordersDf.filter(pl.col("customer_code").isIn(geoCodes));

  const spend = geoOrders
    .filter(pl.col("order_date").ltEq(pl.lit("20251231")))
    .groupBy("customer_code")
    .agg(pl.col("order_total").sum().alias("total_spend"), pl.col("order_total").count().alias("total_orders"))
    .filter(pl.col("total_spend").gtEq(1000));
  const spendCodes = spend.getColumn("customer_code").toArray();

  const low = geoOrders
    .filter(pl.col("customer_code").isIn(spendCodes)
      .and(pl.col("order_date").gtEq(pl.lit("20250915"))).and(pl.col("order_date").ltEq(pl.lit("20260107")))
      .and(pl.col("order_total").lt(3000)))
    .groupBy("customer_code").agg(pl.col("order_total").count().alias("low_ticket_count"))
    .filter(pl.col("low_ticket_count").gt(2));

  const period = (from, to, name) => geoOrders
    .filter(pl.col("customer_code").isIn(spendCodes)
      .and(pl.col("order_date").gtEq(pl.lit(from))).and(pl.col("order_date").ltEq(pl.lit(to))))
    .groupBy("customer_code").agg(pl.col("order_total").sum().alias(name));
  const change = period("20250831", "20251030", "p1")
    .join(period("20251031", "20251231", "p2"), { on: "customer_code", how: "full", coalesce: true })
    .withColumns(pl.col("p1").fillNull(0), pl.col("p2").fillNull(0))
    .filter(pl.col("p1").gt(0))
    .withColumn(pl.col("p2").minus(pl.col("p1")).div(pl.col("p1")).mul(100).alias("pct_change"))
    .filter(pl.col("pct_change").lt(-30));

  const targetCodes = new Set([...low.getColumn("customer_code").toArray(),
                               ...change.getColumn("customer_code").toArray()]);
  const targets = geo.filter(pl.col("customer_code").isIn([...targetCodes]))
    .join(spend, { on: "customer_code", how: "left" });

  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  console.log(`${targets.height} ${ms.toFixed(1)}`);
  await client.end();
}

main().catch((e) => { console.error(e); process.exit(1); });
