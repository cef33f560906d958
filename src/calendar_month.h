/*
 * calendar_month.h
 *		Calendar months as consecutive integers (year * 12 + month - 1), for
 *		per-month arrays over a date window.
 */
#ifndef CALENDAR_MONTH_H
#define CALENDAR_MONTH_H

#include "utils/date.h"
#include "utils/datetime.h"

/* the month a finite date falls in */
static inline int
calendar_month(DateADT d)
{
	int			year,
				month,
				day;

	j2date(d + POSTGRES_EPOCH_JDATE, &year, &month, &day);
	return year * 12 + month - 1;
}

/*
 * the first day of a month.  Years before 1 BC are negative (j2date counts
 * 1 BC as year 0), so the division must round down, not toward zero.
 */
static inline DateADT
calendar_month_start(int month)
{
	int			year = month >= 0 ? month / 12 : -((-month + 11) / 12);

	return date2j(year, month - year * 12 + 1, 1) - POSTGRES_EPOCH_JDATE;
}

#endif
