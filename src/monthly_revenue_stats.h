/*
 * monthly_revenue_stats.h
 *		Per-month revenue and order counts of one customer over a date
 *		window: the state of the monthly_revenue_stats aggregate.
 */
#ifndef MONTHLY_REVENUE_STATS_H
#define MONTHLY_REVENUE_STATS_H

#include "sql_args.h"

typedef struct MonthlyTotals
{
	DateWindow	window;
	int			first_month;	/* calendar_month() of window.lo */
	int			nmonths;		/* months the window touches */
	Numeric    *revenue;		/* per month; NULL means 0 */
	int64	   *orders;
} MonthlyTotals;

/*
 * The calendar months window touches; a window of more than
 * CA_MAX_REVENUE_MONTHS is refused (54000).
 */
extern int	monthly_window_months(DateWindow window);

/* zero months for window (refused as above), allocated in context */
extern MonthlyTotals *monthly_totals_create(MemoryContext context, DateWindow window);

/*
 * One order: its total (NULL counts as 0) goes to the month of its date;
 * a date outside the window adds nothing.
 */
extern void monthly_totals_add(MemoryContext context, MonthlyTotals *t, DateADT order_date,
							   Numeric total);

#endif
