/*
 * order_stats.h
 *		What the targeting funnel keeps of one customer's confirmed orders:
 *		counts and exact sums per window.  One implementation serves both the
 *		targeting_stats aggregate (whose partial states parallel workers
 *		build and the leader combines) and the per-order fold that remains
 *		for SQL objects older than the aggregate.
 */
#ifndef ORDER_STATS_H
#define ORDER_STATS_H

#include "lib/stringinfo.h"
#include "utils/date.h"
#include "utils/numeric.h"

#include "sql_args.h"

/* The windows an order is counted in, and the low-ticket bar. */
typedef struct OrderWindows
{
	DateWindow	spend;
	DateWindow	low_ticket;
	DateWindow	base;
	DateWindow	recent;
	Numeric		low_ticket_below;
} OrderWindows;

/* Sums are NULL until the first order adds to them (NULL means 0). */
typedef struct OrderStats
{
	int64		orders;			/* every order given */
	int64		spend_orders;	/* ... in the spend window */
	int64		low_tickets;	/* ... in the low-ticket window below the bar */
	Numeric		total;
	Numeric		spend;
	Numeric		base;
	Numeric		recent;
	DateADT		last_order;		/* valid when orders > 0 */
} OrderStats;

/* Count one order (its total NULL means 0); sums are allocated in context. */
extern void order_stats_add(MemoryContext context, OrderStats *stats,
							const OrderWindows *windows, DateADT order_date,
							Numeric total);

/* stats += other, as if other's orders had been added one by one. */
extern void order_stats_combine(MemoryContext context, OrderStats *stats,
								const OrderStats *other);

/* A byte image for parallel workers, and back (sums allocated in context). */
extern void order_stats_serialize(StringInfo buf, const OrderStats *stats);
extern void order_stats_deserialize(StringInfo buf, MemoryContext context,
									OrderStats *stats);

#endif
