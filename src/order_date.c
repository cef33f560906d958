/*
 * order_date.c
 *		checked_order_date(): the ERP's text YYYYMMDD order dates as real
 *		dates, refusing anything that is not one.
 *
 * The notebook compared order_date as text, so a value like '2025-1-5' or ''
 * silently fell outside every window.  We convert instead, and a value that
 * is not a calendar date stops the query with the order's key and the value,
 * so the user can fix the row rather than get a quietly wrong answer.
 *
 * This is the one place that decides what a confirmed order's date is:
 * every reader of orders calls order_date_arg() through one of the SQL
 * functions below, whether it reads the source tables (checked_order_date(),
 * order_date_in_window()), the rollup in full or the rollup's rows of the
 * orders changed since a refresh (_rollup_order_date()).  So a build and a
 * refresh from the order changes refuse the same rows with the same error.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datetime.h"

#include "order_date.h"

PG_FUNCTION_INFO_V1(checked_order_date_text);
PG_FUNCTION_INFO_V1(checked_order_date_date);
PG_FUNCTION_INFO_V1(order_date_or_null_text);
PG_FUNCTION_INFO_V1(order_date_or_null_date);
PG_FUNCTION_INFO_V1(rollup_order_date);

static const char *
key_part(FunctionCallInfo fcinfo, int argno)
{
	if (PG_ARGISNULL(argno))
		return "NULL";
	return text_to_cstring(PG_GETARG_TEXT_PP(argno));
}

static void
report_null_date(FunctionCallInfo fcinfo, int keyarg)
{
	ereport(ERROR,
			(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
			 errmsg("order_date is NULL in sales_orders for confirmed order (%s, %s)",
					key_part(fcinfo, keyarg), key_part(fcinfo, keyarg + 1)),
			 errhint("Give the order a date, or un-confirm it; confirmed orders without a date cannot be placed in any window.")));
}

static void
report_bad_date(FunctionCallInfo fcinfo, int keyarg, const char *value)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_DATETIME_FORMAT),
			 errmsg("malformed order_date \"%s\" in sales_orders for confirmed order (%s, %s)",
					value, key_part(fcinfo, keyarg), key_part(fcinfo, keyarg + 1)),
			 errdetail("order_date must be a calendar date written as eight digits YYYYMMDD, such as 20250131."),
			 errhint("Correct the row in the source table; customer_analytics does not skip orders it cannot date.")));
}

/* Parse exactly eight digits forming a valid Gregorian date. */
static bool
parse_yyyymmdd(const char *s, int len, DateADT *result)
{
	int			year = 0,
				month = 0,
				day = 0;

	if (len != 8)
		return false;
	for (int i = 0; i < 8; i++)
	{
		int			digit;

		if (s[i] < '0' || s[i] > '9')
			return false;
		digit = s[i] - '0';
		if (i < 4)
			year = year * 10 + digit;
		else if (i < 6)
			month = month * 10 + digit;
		else
			day = day * 10 + digit;
	}
	if (year < 1 || month < 1 || month > 12 || day < 1 ||
		day > day_tab[isleap(year)][month - 1])
		return false;

	*result = date2j(year, month, day) - POSTGRES_EPOCH_JDATE;
	return true;
}

/*
 * The date in argument valarg (text YYYYMMDD or date), or an error naming
 * the order whose key is in arguments keyarg and keyarg + 1.
 */
DateADT
order_date_arg(FunctionCallInfo fcinfo, int valarg, Oid argtype, int keyarg)
{
	DateADT		result;

	if (PG_ARGISNULL(valarg))
		report_null_date(fcinfo, keyarg);

	if (argtype == DATEOID)
	{
		result = PG_GETARG_DATEADT(valarg);
		if (DATE_NOT_FINITE(result))
			report_bad_date(fcinfo, keyarg,
							DatumGetCString(DirectFunctionCall1(date_out, DateADTGetDatum(result))));
	}
	else
	{
		text	   *value = PG_GETARG_TEXT_PP(valarg);

		if (!parse_yyyymmdd(VARDATA_ANY(value), VARSIZE_ANY_EXHDR(value), &result))
			report_bad_date(fcinfo, keyarg, text_to_cstring(value));
	}
	return result;
}

/* checked_order_date(order_date text, order_type text, order_number text) */
Datum
checked_order_date_text(PG_FUNCTION_ARGS)
{
	PG_RETURN_DATEADT(order_date_arg(fcinfo, 0, TEXTOID, 1));
}

/* checked_order_date(order_date date, order_type text, order_number text) */
Datum
checked_order_date_date(PG_FUNCTION_ARGS)
{
	PG_RETURN_DATEADT(order_date_arg(fcinfo, 0, DATEOID, 1));
}

/*
 * _order_date_or_null(order_date text): the date, or NULL when the text is
 * not one.  The rollup triggers use it: a malformed date must not stop the
 * ERP's write, so the rollup keeps the raw text and the reading functions
 * raise checked_order_date()'s error instead.
 */
Datum
order_date_or_null_text(PG_FUNCTION_ARGS)
{
	text	   *value = PG_GETARG_TEXT_PP(0);
	DateADT		result;

	if (!parse_yyyymmdd(VARDATA_ANY(value), VARSIZE_ANY_EXHDR(value), &result))
		PG_RETURN_NULL();
	PG_RETURN_DATEADT(result);
}

/* _order_date_or_null(order_date date): NULL for infinite dates */
Datum
order_date_or_null_date(PG_FUNCTION_ARGS)
{
	DateADT		d = PG_GETARG_DATEADT(0);

	if (DATE_NOT_FINITE(d))
		PG_RETURN_NULL();
	PG_RETURN_DATEADT(d);
}

/*
 * _rollup_order_date(order_date date, order_date_raw text, order_type text,
 * order_number text): the date of one of the rollup's order rows, checked as
 * checked_order_date() checks the source's.  The rollup's triggers must not
 * refuse the ERP's write, so where the source's value is not a date they
 * store order_date NULL and the value as text in order_date_raw (NULL for a
 * NULL value, which is refused as NULL; an infinite date as 'infinity',
 * refused as the date column's is).  Every reader of the rollup (the
 * reading functions, the builds of a campaign's or a segmentation's state,
 * and their refreshes from the order changes) takes the date from here, so
 * each raises the error the source tables would have raised.
 */
Datum
rollup_order_date(PG_FUNCTION_ARGS)
{
	if (!PG_ARGISNULL(0))
		PG_RETURN_DATEADT(PG_GETARG_DATEADT(0));
	PG_RETURN_DATEADT(order_date_arg(fcinfo, 1, TEXTOID, 2));
}
