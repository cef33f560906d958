/*
 * source_tables.h
 *		Locating and checking the ERP source tables (data contract).
 */
#ifndef SOURCE_TABLES_H
#define SOURCE_TABLES_H

/*
 * What the checks learnt about one source schema: the quoted,
 * schema-qualified table names ready to paste into SQL, and how order_date
 * is stored.
 */
typedef struct SourceTables
{
	const char *schema;			/* unquoted, for messages */
	const char *customers;		/* quoted "schema"."customers" */
	const char *orders;			/* quoted "schema"."sales_orders" */
	const char *lines;			/* quoted "schema"."sales_order_lines" */
	bool		order_date_is_date; /* false: text YYYYMMDD */
	const char *rollup;			/* quoted order rollup to read instead, or NULL */
	const char *order_totals;	/* sharded source: quoted "schema"."order_totals",
								 * one row per order, else NULL (sharded_source.c) */
	bool		totals_date_is_date;	/* order_totals.order_date is a date */
	const char *order_lines;	/* sharded source: quoted "schema"."order_lines",
								 * one row per line with its order's header,
								 * or NULL when the schema has none (1.5's
								 * contract): targeting then reads order_totals */
	bool		order_lines_date_is_date;	/* order_lines.order_date is a date */
} SourceTables;

/*
 * Resolve the schema (argument, else the GUC) and check that every table and
 * column the extension reads exists with a usable type; ereport(ERROR) with
 * a hint otherwise.
 */
extern SourceTables *source_tables_open(const char *schema_arg);

/* As source_tables_open(), without looking for a rollup: always the tables. */
extern SourceTables *source_tables_open_tables(const char *schema_arg);

/*
 * Check the line-item columns of sales_order_lines (product_code, quantity)
 * that only customer_features() reads, and over a sharded source those of
 * order_totals (quantity, product_codes); ereport(ERROR) as above.
 */
extern void source_tables_check_line_items(const SourceTables *src);

/* SQL expression turning o.order_date into a checked date */
extern const char *source_order_date_expr(const SourceTables *src, const char *alias);

/* SQL condition: is o.order_date (checked) inside the daterange window? */
extern const char *source_order_window_expr(const SourceTables *src, const char *alias,
											const char *window);

/*
 * Query text: confirmed orders in the window $1 (daterange) satisfying scope,
 * as (customer_code text, order date, order total numeric).
 */
extern char *source_order_totals_query(const SourceTables *src, const char *scope);

/*
 * Query text: one row per line of the confirmed orders in the window $1
 * satisfying scope (over alias o): customer_code, order_type, order_number,
 * the order's checked date, the line's amount (NULL for an order without
 * lines).  Source tables only (no rollup, not sharded).
 */
extern char *source_order_lines_query(const SourceTables *src, const char *scope);

/*
 * The scoped confirmed orders without their lines, and one scan of the lines
 * totalled per listed order (targeting.c's pass over the source tables).
 */
extern char *source_scoped_orders_query(const SourceTables *src, const char *scope);
extern char *source_line_totals_query(const SourceTables *src);

/*
 * Query text: as source_order_totals_query(), plus the order's quantity
 * (numeric) and its lines' product codes (text[], may repeat).
 */
extern char *source_order_items_query(const SourceTables *src, const char *scope);

/*
 * Sharded sources (sharded_source.c): whether schema's customers,
 * sales_orders and order_totals are partitioned tables (the data contract of
 * docs/sharding.md), and the order_totals relation checked; and whether it
 * has a partitioned order_lines too (checked when it has).
 */
extern void source_tables_open_sharded(SourceTables *src);

#endif
