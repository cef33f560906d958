/*
 * cron_schedule.c
 *		The next time a cron schedule fires, as pg_cron 1.4 reads schedules.
 *
 * Scheduled refreshes keep their cron expression in
 * customer_analytics.refresh_schedules, so that list_campaigns() can show the
 * next run to every role without reading pg_cron's tables, and so that
 * run_due_refreshes() (the dispatcher that runs refreshes in databases
 * pg_cron does not run in) can tell which are due.
 *
 * The grammar is pg_cron 1.4's (Vixie cron's): five fields, minute (0-59),
 * hour (0-23), day of month (1-31), month (1-12 or jan-dec) and day of week
 * (0-7 or sun-sat, 7 being Sunday); each a comma-separated list of "*",
 * "N", "N-M", optionally followed by "/STEP" after "*" or a range; or one
 * of @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly,
 * @reboot, @restart, in lower case only (pg_cron 1.4 compares them with
 * strcmp: it refuses @HOURLY; month and day names are read in any case, as
 * there).  As in cron, when both day fields are restricted (neither
 * starts with "*") a day matches if either does.  pg_cron 1.4 evaluates
 * schedules in UTC, and so does this, whatever the session's TimeZone.
 */
#include "postgres.h"

#include <ctype.h>

#include "datatype/timestamp.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/timestamp.h"

PG_FUNCTION_INFO_V1(cron_next_run);

#define CRON_HINT "A schedule is five fields: minute hour day-of-month month day-of-week, " \
	"for example '*/5 * * * *' (every five minutes) or '0 6 * * 1-5' (06:00 UTC on weekdays); " \
	"or one of @hourly, @daily, @weekly, @monthly, @yearly."

/* One parsed schedule: which values of each field fire. */
typedef struct CronSchedule
{
	bool		minute[60];
	bool		hour[24];
	bool		dom[32];		/* 1..31 */
	bool		month[13];		/* 1..12 */
	bool		dow[8];			/* 0..7, 7 folded into 0 */
	bool		dom_star;		/* the field began with '*' */
	bool		dow_star;
	bool		reboot;			/* @reboot: never by the clock */
} CronSchedule;

/* A field's bounds, name and optional value names (index 0 = value lo). */
typedef struct CronField
{
	const char *name;
	int			lo;
	int			hi;
	const char *const *names;
} CronField;

static const char *const month_names[] = {"jan", "feb", "mar", "apr", "may", "jun",
"jul", "aug", "sep", "oct", "nov", "dec", NULL};
static const char *const dow_names[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat", NULL};

static const CronField fields[5] = {
	{"minute", 0, 59, NULL},
	{"hour", 0, 23, NULL},
	{"day of month", 1, 31, NULL},
	{"month", 1, 12, month_names},
	{"day of week", 0, 7, dow_names},
};

/* Report a schedule that cannot be read, saying which part and why. */
static void
bad_schedule(const char *schedule, const char *why)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid cron schedule \"%s\"", schedule),
			 errdetail("%s", why),
			 errhint(CRON_HINT)));
}

/* Read one value (a number or, where the field has them, a name) at *p. */
static int
read_value(const char *schedule, const CronField *f, const char **p)
{
	const char *s = *p;
	int			v = 0;
	int			digits = 0;

	if (f->names != NULL && isalpha((unsigned char) *s))
	{
		for (int i = 0; f->names[i] != NULL; i++)
		{
			if (pg_strncasecmp(s, f->names[i], 3) == 0 && !isalpha((unsigned char) s[3]))
			{
				*p = s + 3;
				return f->lo + i;
			}
		}
		bad_schedule(schedule, psprintf("The %s field has a name it does not know.", f->name));
	}
	while (isdigit((unsigned char) *s))
	{
		if (++digits > 3)
			bad_schedule(schedule, psprintf("A %s value has too many digits.", f->name));
		v = v * 10 + (*s++ - '0');
	}
	if (digits == 0)
		bad_schedule(schedule, psprintf("The %s field needs a number, a range, a list or \"*\".", f->name));
	if (v < f->lo || v > f->hi)
		bad_schedule(schedule, psprintf("%d is out of range for the %s field (%d-%d).", v, f->name, f->lo, f->hi));
	*p = s;
	return v;
}

/* Parse one field's text [s, end) into the values it selects. */
static void
parse_field(const char *schedule, const CronField *f, const char *s, const char *end,
			bool *set, bool *star)
{
	*star = (*s == '*');
	for (;;)
	{
		int			lo,
					hi,
					step = 1;
		bool		is_range;

		if (*s == '*')
		{
			lo = f->lo;
			hi = f->hi;
			s++;
			is_range = true;
		}
		else
		{
			lo = hi = read_value(schedule, f, &s);
			is_range = false;
			if (*s == '-')
			{
				s++;
				hi = read_value(schedule, f, &s);
				is_range = true;
				if (hi < lo)
					bad_schedule(schedule, psprintf("The %s range %d-%d runs backwards.", f->name, lo, hi));
			}
		}
		if (*s == '/')
		{
			int			digits = 0;

			if (!is_range)
				bad_schedule(schedule, psprintf("A step in the %s field must follow \"*\" or a range.", f->name));
			s++;
			step = 0;
			while (isdigit((unsigned char) *s))
			{
				if (++digits > 3)
					bad_schedule(schedule, psprintf("A %s step has too many digits.", f->name));
				step = step * 10 + (*s++ - '0');
			}
			if (step == 0)
				bad_schedule(schedule, psprintf("A step in the %s field must be a number of at least 1.", f->name));
		}
		for (int v = lo; v <= hi; v += step)
			set[v] = true;
		if (s == end)
			break;
		if (*s != ',')
			bad_schedule(schedule, psprintf("Unexpected \"%c\" in the %s field.", *s, f->name));
		s++;
	}
}

/* Parse a whole schedule, its @-shorthands included. */
static void
parse_schedule(const char *schedule, CronSchedule *cs)
{
	static const struct
	{
		const char *name;
		const char *fields;
	}			shorthands[] = {
		{"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
		{"@weekly", "0 0 * * 0"}, {"@daily", "0 0 * * *"}, {"@midnight", "0 0 * * *"},
		{"@hourly", "0 * * * *"},
	};
	const char *s = schedule;
	int			nfields = 0;

	memset(cs, 0, sizeof(*cs));
	while (isspace((unsigned char) *s))
		s++;
	if (*s == '@')
	{
		size_t		len = strcspn(s, " \t\n\r");
		const char *rest = s + len;

		while (isspace((unsigned char) *rest))
			rest++;
		if (*rest != '\0')
			bad_schedule(schedule, "Nothing may follow an @ shorthand.");
		if ((len == strlen("@reboot") && strncmp(s, "@reboot", len) == 0) ||
			(len == strlen("@restart") && strncmp(s, "@restart", len) == 0))
		{
			cs->reboot = true;
			return;
		}
		for (int i = 0; i < (int) lengthof(shorthands); i++)
		{
			if (strlen(shorthands[i].name) == len && strncmp(s, shorthands[i].name, len) == 0)
			{
				parse_schedule(shorthands[i].fields, cs);
				return;
			}
		}
		bad_schedule(schedule, "Unknown @ shorthand (they are written in lower case, as pg_cron reads them).");
	}
	while (*s != '\0')
	{
		const char *end = s + strcspn(s, " \t\n\r");
		bool		star;

		if (nfields == 5)
			bad_schedule(schedule, "It has more than five fields.");
		switch (nfields)
		{
			case 0:
				parse_field(schedule, &fields[0], s, end, cs->minute, &star);
				break;
			case 1:
				parse_field(schedule, &fields[1], s, end, cs->hour, &star);
				break;
			case 2:
				parse_field(schedule, &fields[2], s, end, cs->dom, &cs->dom_star);
				break;
			case 3:
				parse_field(schedule, &fields[3], s, end, cs->month, &star);
				break;
			default:
				parse_field(schedule, &fields[4], s, end, cs->dow, &cs->dow_star);
				if (cs->dow[7])
					cs->dow[0] = true;
				break;
		}
		nfields++;
		s = end;
		while (isspace((unsigned char) *s))
			s++;
	}
	if (nfields < 5)
		bad_schedule(schedule, psprintf("It has %d field%s; five are needed.", nfields, nfields == 1 ? "" : "s"));
}

/* Does the schedule fire on this day (Julian day number)? */
static bool
day_matches(const CronSchedule *cs, int julian)
{
	int			year,
				month,
				day;
	bool		dom_ok,
				dow_ok;

	j2date(julian, &year, &month, &day);
	if (!cs->month[month])
		return false;
	dom_ok = cs->dom[day];
	dow_ok = cs->dow[j2day(julian)];
	/* cron's rule: both restricted, either will do; otherwise both must */
	if (cs->dom_star || cs->dow_star)
		return dom_ok && dow_ok;
	return dom_ok || dow_ok;
}

/*
 * _cron_next_run(schedule text, after timestamptz) RETURNS timestamptz
 *
 * The first minute strictly after `after` at which the schedule fires, in
 * UTC; NULL for @reboot, and NULL when that minute would be past the end
 * of PostgreSQL's timestamp range (294276 AD): no run PostgreSQL can
 * represent, so never by the clock, as for @reboot (a dispatcher's
 * next_run <= until never picks it; list_campaigns shows no next run).
 * Invalid schedules raise 22023.  Eight years of
 * days are searched, enough for any schedule that fires at all (29 February
 * on a given weekday recurs within 28 years, but cron ORs the two day
 * fields, so such a schedule also fires every 29 February).
 */
Datum
cron_next_run(PG_FUNCTION_ARGS)
{
	char	   *schedule = text_to_cstring(PG_GETARG_TEXT_PP(0));
	TimestampTz after = PG_GETARG_TIMESTAMPTZ(1);
	CronSchedule cs;
	TimestampTz start;
	int64		minutes;
	int			julian,
				start_hour,
				start_minute;

	parse_schedule(schedule, &cs);
	if (cs.reboot)
		PG_RETURN_NULL();
	if (TIMESTAMP_NOT_FINITE(after))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a next run after an infinite time does not exist"),
				 errhint("Pass a finite timestamp, such as now().")));

	/* the next whole minute after `after`, as UTC day and minute of day */
	minutes = after / USECS_PER_MINUTE;
	if (after < 0 && after % USECS_PER_MINUTE != 0)
		minutes--;				/* floor, for times before 2000 */
	minutes++;
	julian = (int) (minutes / MINS_PER_HOUR / HOURS_PER_DAY);
	if (minutes < 0 && minutes % (MINS_PER_HOUR * HOURS_PER_DAY) != 0)
		julian--;
	start_hour = (int) ((minutes - (int64) julian * MINS_PER_HOUR * HOURS_PER_DAY) / MINS_PER_HOUR);
	start_minute = (int) ((minutes - (int64) julian * MINS_PER_HOUR * HOURS_PER_DAY) % MINS_PER_HOUR);
	julian += POSTGRES_EPOCH_JDATE;

	for (int d = 0; d < 366 * 8; d++, julian++)
	{
		CHECK_FOR_INTERRUPTS();
		/* past the last day PostgreSQL's timestamps reach: no next run */
		if (julian >= TIMESTAMP_END_JULIAN)
			PG_RETURN_NULL();
		if (!day_matches(&cs, julian))
			continue;
		for (int h = (d == 0 ? start_hour : 0); h < HOURS_PER_DAY; h++)
		{
			if (!cs.hour[h])
				continue;
			for (int m = (d == 0 && h == start_hour ? start_minute : 0); m < MINS_PER_HOUR; m++)
			{
				if (!cs.minute[m])
					continue;
				start = ((int64) (julian - POSTGRES_EPOCH_JDATE) * HOURS_PER_DAY * MINS_PER_HOUR
						 + h * MINS_PER_HOUR + m) * USECS_PER_MINUTE;
				PG_RETURN_TIMESTAMPTZ(start);
			}
		}
	}
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("cron schedule \"%s\" never fires", schedule),
			 errdetail("No day in the next eight years matches its day-of-month, month and day-of-week fields."),
			 errhint(CRON_HINT)));
	PG_RETURN_NULL();			/* keep the compiler quiet */
}
