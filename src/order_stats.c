/*
 * order_stats.c
 *		Per-customer order counts and sums by window (see order_stats.h).
 */
#include "postgres.h"

#include "libpq/pqformat.h"

#include "numeric_acc.h"
#include "order_stats.h"

void
order_stats_add(MemoryContext context, OrderStats *stats,
				const OrderWindows *windows, DateADT order_date, Numeric total)
{
	if (total == NULL)
		total = int64_to_numeric(0);

	if (stats->orders == 0 || order_date > stats->last_order)
		stats->last_order = order_date;
	stats->orders++;
	numeric_accumulate(context, &stats->total, total);

	if (date_in_window(order_date, windows->spend))
	{
		stats->spend_orders++;
		numeric_accumulate(context, &stats->spend, total);
	}
	if (date_in_window(order_date, windows->low_ticket) &&
		numeric_compare(total, windows->low_ticket_below) < 0)
		stats->low_tickets++;
	if (date_in_window(order_date, windows->base))
		numeric_accumulate(context, &stats->base, total);
	if (date_in_window(order_date, windows->recent))
		numeric_accumulate(context, &stats->recent, total);
}

static void
add_sum(MemoryContext context, Numeric *sum, Numeric other)
{
	if (other)
		numeric_accumulate(context, sum, other);
}

void
order_stats_combine(MemoryContext context, OrderStats *stats, const OrderStats *other)
{
	if (other->orders == 0)
		return;
	if (stats->orders == 0 || other->last_order > stats->last_order)
		stats->last_order = other->last_order;
	stats->orders += other->orders;
	stats->spend_orders += other->spend_orders;
	stats->low_tickets += other->low_tickets;
	add_sum(context, &stats->total, other->total);
	add_sum(context, &stats->spend, other->spend);
	add_sum(context, &stats->base, other->base);
	add_sum(context, &stats->recent, other->recent);
}

void
order_stats_serialize(StringInfo buf, const OrderStats *stats)
{
	pq_sendint64(buf, stats->orders);
	pq_sendint64(buf, stats->spend_orders);
	pq_sendint64(buf, stats->low_tickets);
	pq_sendint32(buf, stats->last_order);
	numeric_send_sum(buf, stats->total);
	numeric_send_sum(buf, stats->spend);
	numeric_send_sum(buf, stats->base);
	numeric_send_sum(buf, stats->recent);
}

void
order_stats_deserialize(StringInfo buf, MemoryContext context, OrderStats *stats)
{
	stats->orders = pq_getmsgint64(buf);
	stats->spend_orders = pq_getmsgint64(buf);
	stats->low_tickets = pq_getmsgint64(buf);
	stats->last_order = (DateADT) pq_getmsgint(buf, 4);
	stats->total = numeric_get_sum(buf, context);
	stats->spend = numeric_get_sum(buf, context);
	stats->base = numeric_get_sum(buf, context);
	stats->recent = numeric_get_sum(buf, context);
}
