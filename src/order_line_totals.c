/*
 * order_line_totals.c
 *		The _order_line_totals aggregate: the totals of a given list of
 *		orders, from one scan of every line, with no join and no probe per
 *		line.
 *
 *	  _order_line_totals(order_type, order_number, line_amount, orders)
 *
 * orders is the same bytea on every row (a query parameter): the keys of
 * the orders whose totals are wanted, as order_key_list_image() builds it:
 * an int32 count, the int32 lengths of the longest order_type and the
 * longest order_number, then per order an int32 length and the bytes of
 * order_type, an int32 length and the bytes of order_number, sorted by
 * (order_type, order_number) bytewise (as COLLATE "C"); no key twice.  The
 * rows are the lines, in any order: a line whose key is the previous line's
 * (one memcmp) adds to the order found for that line, any other key is
 * looked for in the sorted list from where the previous one was found (a
 * cursor: two comparisons when the lines arrive in key order, a galloping
 * search when they jump).  Where the lines arrive grouped by order and in
 * key order (the table's physical order, as the ERP writes an order's lines
 * together) the list is read sequentially, once per process, with no cache
 * miss per order; where they do not, the result is the same.  Lines of
 * orders not listed, and lines with a NULL key part, are skipped.
 *
 * The comparisons are of 16-byte codes: order_type padded with zero bytes
 * to the longest listed one, then order_number likewise, the first 16 bytes
 * as two big-endian integers (text holds no zero byte, so the codes sort as
 * the keys do); keys longer than that are compared in full on equal codes.
 *
 * The state: the listed keys' codes and one running sum per listed order
 * (NULL until a line with an amount); memory grows with the listed orders,
 * not with the lines.  The aggregate is PARALLEL SAFE with combine, serial
 * and deserial functions: each worker scans its share of the lines (an
 * order whose lines straddle two workers' blocks gets two partial sums,
 * added by the combine function), the leader adds the sums of at most one
 * state per worker.  The result, a bytea: an int32 count of listed orders,
 * an int32 count of sums, then per sum the order's position in the sorted
 * list (int32) and the numeric (as numeric_send_sum writes it); NULL
 * without rows.  Sums are exact, so neither the plan nor the lines' order
 * changes a total.
 */
#include "postgres.h"

#include "common/int.h"
#include "fmgr.h"
#include "libpq/pqformat.h"
#include "miscadmin.h"
#include "port/pg_bswap.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include "numeric_acc.h"
#include "order_line_totals.h"
#include "point_buffer.h"

PG_FUNCTION_INFO_V1(order_line_totals_sfunc);
PG_FUNCTION_INFO_V1(order_line_totals_combine);
PG_FUNCTION_INFO_V1(order_line_totals_serialize);
PG_FUNCTION_INFO_V1(order_line_totals_deserialize);
PG_FUNCTION_INFO_V1(order_line_totals_final);

typedef struct OrderKey
{
	const char *type;
	const char *number;
	uint32		tlen;
	uint32		nlen;
} OrderKey;

/* a key's first 16 bytes as its list pads them, as two big-endian integers */
typedef struct KeyCode
{
	uint64		hi;
	uint64		lo;
} KeyCode;

/* the key at offset of a list's bytes: int32 length, order_type, int32 length, order_number */
static inline OrderKey
key_in_image(const char *p)
{
	OrderKey	k;
	int32		len;

	memcpy(&len, p, sizeof(int32));
	k.tlen = len;
	k.type = p + sizeof(int32);
	memcpy(&len, k.type + k.tlen, sizeof(int32));
	k.nlen = len;
	k.number = k.type + k.tlen + sizeof(int32);
	return k;
}

/* a bytewise comparison of two strings, the shorter first on a common prefix */
static inline int
bytes_cmp(const char *a, uint32 alen, const char *b, uint32 blen)
{
	int			r = memcmp(a, b, Min(alen, blen));

	if (r != 0)
		return r;
	return alen < blen ? -1 : alen > blen;
}

/* keys a and b compared: order_type, then order_number, bytewise */
static inline int
order_key_cmp(OrderKey a, OrderKey b)
{
	int			r = bytes_cmp(a.type, a.tlen, b.type, b.tlen);

	return r != 0 ? r : bytes_cmp(a.number, a.nlen, b.number, b.nlen);
}

/*
 * k's code for a list whose longest order_type has maxt bytes (k's parts no
 * longer than the list's longest): order_type, zero bytes to maxt, then
 * order_number, cut at 16 bytes.  Codes compare as the keys do, and equal
 * codes are equal keys when maxt plus the longest order_number fit in 16.
 */
static inline KeyCode
key_code(OrderKey k, uint32 maxt)
{
	unsigned char buf[16] = {0};
	KeyCode		c;
	uint64		v;

	memcpy(buf, k.type, Min(k.tlen, 16));
	if (maxt < 16)
		memcpy(buf + maxt, k.number, Min(k.nlen, 16 - maxt));
	memcpy(&v, buf, sizeof(v));
	c.hi = pg_ntoh64(v);
	memcpy(&v, buf + 8, sizeof(v));
	c.lo = pg_ntoh64(v);
	return c;
}

/* two codes compared as the keys they stand for (ties: see key_code) */
static inline int
key_code_cmp(KeyCode a, KeyCode b)
{
	if (a.hi != b.hi)
		return a.hi < b.hi ? -1 : 1;
	if (a.lo != b.lo)
		return a.lo < b.lo ? -1 : 1;
	return 0;
}

#define FAST_SCALE_DIGITS 2		/* NBASE digits below the point: LINE_SUM_UNIT */

typedef struct LineTotalsState
{
	int32		norders;		/* listed orders */
	LineSum    *sums;			/* per listed order, in the list's order */

	/* the list (NULL codes in states from other processes) */
	KeyCode    *codes;			/* per listed order */
	const char *base;			/* the list's bytes: the aggregate's argument */
	uint32	   *offsets;		/* per listed order: where its key starts in base */
	uint32		maxt;			/* the longest listed order_type, bytes */
	uint32		maxn;			/* the longest listed order_number, bytes */
	bool		exact_codes;	/* maxt + maxn <= 16: equal codes, equal keys */
	int32		cursor;			/* the first listed key >= the last key looked for */
	MemoryContext context;		/* the aggregate's, where the state lives (sfunc) */

	/* the previous line's key and the order it belongs to (-1: none) */
	char	   *run_key;
	uint32		run_tlen;
	uint32		run_nlen;
	Size		run_cap;
	int32		run_idx;
	bool		run_valid;
} LineTotalsState;

#define ARG_ORDER_TYPE		1
#define ARG_ORDER_NUMBER	2
#define ARG_AMOUNT			3
#define ARG_ORDERS			4

/* the list's header: the count, the longest order_type and order_number */
#define IMAGE_HEADER_BYTES	(3 * sizeof(int32))

static void
bad_image(void)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("_order_line_totals: malformed list of orders"),
			 errhint("Pass the list of order keys customer_analytics builds; this aggregate is internal.")));
}

static int32
read_len(const char **p, const char *end)
{
	int32		len;

	if (end - *p < (ptrdiff_t) sizeof(int32))
		bad_image();
	memcpy(&len, *p, sizeof(int32));
	*p += sizeof(int32);
	if (len < 0 || end - *p < len)
		bad_image();
	return len;
}

/*
 * The on-disk numeric format (numeric.c; stable since 9.1, specials since
 * 14): a uint16 header, short (sign, dscale, weight in it) or long (sign and
 * dscale, then an int16 weight), then base-10000 digits.
 */
#define NUMERIC_SIGN_MASK	0xC000
#define NUMERIC_NEG			0x4000
#define NUMERIC_SHORT		0x8000
#define NUMERIC_SPECIAL		0xC000
#define NUMERIC_DSCALE_MASK 0x3FFF
#define NUMERIC_SHORT_SIGN_MASK 0x2000
#define NUMERIC_SHORT_DSCALE_MASK 0x1F80
#define NUMERIC_SHORT_DSCALE_SHIFT 7
#define NUMERIC_SHORT_DSCALE_MAX (NUMERIC_SHORT_DSCALE_MASK >> NUMERIC_SHORT_DSCALE_SHIFT)
#define NUMERIC_SHORT_WEIGHT_SIGN_MASK 0x0040
#define NUMERIC_SHORT_WEIGHT_MASK 0x003F
#define NUMERIC_SHORT_WEIGHT_MAX NUMERIC_SHORT_WEIGHT_MASK
#define NUMERIC_SHORT_WEIGHT_MIN (-(NUMERIC_SHORT_WEIGHT_MASK+1))

static inline uint16
read_uint16(const char *p)
{
	uint16		v;

	memcpy(&v, p, sizeof(v));
	return v;
}

/*
 * amount (a numeric datum, maybe with a short varlena header) as units of
 * 1e-8 in *units and its display scale in *dscale; false when it is NaN or
 * infinite, has a digit below 1e-8, or does not fit.
 */
bool
numeric_to_units(Datum amount, int64 *units, int *dscale)
{
	struct varlena *v = (struct varlena *) PG_DETOAST_DATUM_PACKED(amount);
	const char *p = VARDATA_ANY(v);
	Size		len = VARSIZE_ANY_EXHDR(v);
	uint16		h;
	bool		neg;
	int			weight;
	int			ndigits;
	int64		acc = 0;

	if (len < sizeof(uint16))
		return false;
	h = read_uint16(p);
	if ((h & NUMERIC_SIGN_MASK) == NUMERIC_SPECIAL)
		return false;
	if (h & NUMERIC_SHORT)
	{
		neg = (h & NUMERIC_SHORT_SIGN_MASK) != 0;
		*dscale = (h & NUMERIC_SHORT_DSCALE_MASK) >> NUMERIC_SHORT_DSCALE_SHIFT;
		weight = (h & NUMERIC_SHORT_WEIGHT_MASK);
		if (h & NUMERIC_SHORT_WEIGHT_SIGN_MASK)
			weight -= NUMERIC_SHORT_WEIGHT_MASK + 1;
		p += sizeof(uint16);
		len -= sizeof(uint16);
	}
	else
	{
		if (len < 2 * sizeof(uint16))
			return false;
		neg = (h & NUMERIC_SIGN_MASK) == NUMERIC_NEG;
		*dscale = h & NUMERIC_DSCALE_MASK;
		weight = (int16) read_uint16(p + sizeof(uint16));
		p += 2 * sizeof(uint16);
		len -= 2 * sizeof(uint16);
	}
	ndigits = len / sizeof(uint16);
	if (ndigits == 0)
	{
		*units = 0;
		return true;
	}
	/* digit i is worth 10000^(weight - i): units are 10000^-FAST_SCALE_DIGITS */
	if (weight + FAST_SCALE_DIGITS < ndigits - 1 || weight + FAST_SCALE_DIGITS > 3)
		return false;
	for (int i = 0; i < ndigits; i++)
		acc = acc * 10000 + read_uint16(p + i * sizeof(uint16));
	for (int i = ndigits - 1; i < weight + FAST_SCALE_DIGITS; i++)
	{
		if (pg_mul_s64_overflow(acc, 10000, &acc))
			return false;
	}
	*units = neg ? -acc : acc;
	return true;
}

/*
 * units (of 1e-8) with display scale dscale as a Numeric in context, in
 * the canonical form numeric.c's make_result() gives (leading and trailing
 * zero digits stripped; the short header where it fits; zero positive with
 * weight 0): byte for byte what numeric addition of the amounts returns.
 */
Numeric
units_to_numeric(int64 units, int dscale, MemoryContext context)
{
	uint16		digits[8];
	int			ndigits = 0;
	uint64		mag = units < 0 ? -(uint64) units : (uint64) units;
	int			weight;
	int			first;
	int			last;
	Size		len;
	Numeric		result;
	char	   *p;
	uint16		h;

	/* base-10000 digits, most significant first; the last FAST_SCALE_DIGITS are fractional */
	{
		uint16		rev[8];
		int			n = 0;

		while (mag > 0 || n < FAST_SCALE_DIGITS + 1)
		{
			rev[n++] = (uint16) (mag % 10000);
			mag /= 10000;
		}
		for (int i = n - 1; i >= 0; i--)
			digits[ndigits++] = rev[i];
	}
	weight = ndigits - 1 - FAST_SCALE_DIGITS;
	first = 0;
	while (first < ndigits && digits[first] == 0)
		first++;
	last = ndigits - 1;
	while (last >= first && digits[last] == 0)
		last--;
	weight -= first;
	ndigits = last - first + 1;
	if (ndigits <= 0)
	{
		ndigits = 0;
		weight = 0;
		units = 0;
	}

	if (dscale <= NUMERIC_SHORT_DSCALE_MAX &&
		weight <= NUMERIC_SHORT_WEIGHT_MAX && weight >= NUMERIC_SHORT_WEIGHT_MIN)
	{
		len = VARHDRSZ + sizeof(uint16) + ndigits * sizeof(uint16);
		result = MemoryContextAlloc(context, len);
		SET_VARSIZE(result, len);
		h = NUMERIC_SHORT | (units < 0 ? NUMERIC_SHORT_SIGN_MASK : 0) |
			(dscale << NUMERIC_SHORT_DSCALE_SHIFT) |
			(weight < 0 ? NUMERIC_SHORT_WEIGHT_SIGN_MASK : 0) |
			(weight & NUMERIC_SHORT_WEIGHT_MASK);
		p = VARDATA(result);
		memcpy(p, &h, sizeof(h));
		p += sizeof(uint16);
	}
	else
	{
		int16		w = (int16) weight;

		len = VARHDRSZ + 2 * sizeof(uint16) + ndigits * sizeof(uint16);
		result = MemoryContextAlloc(context, len);
		SET_VARSIZE(result, len);
		h = (units < 0 ? NUMERIC_NEG : 0) | (dscale & NUMERIC_DSCALE_MASK);
		p = VARDATA(result);
		memcpy(p, &h, sizeof(h));
		memcpy(p + sizeof(uint16), &w, sizeof(w));
		p += 2 * sizeof(uint16);
	}
	if (ndigits > 0)
		memcpy(p, &digits[first], ndigits * sizeof(uint16));
	return result;
}

/* amount (a numeric datum, not NULL) added to sum: in its int64 while exact there, else its Numeric */
void
line_sum_add(MemoryContext context, LineSum *sum, Datum amount)
{
	int64		units;
	int			dscale;

	if (numeric_to_units(amount, &units, &dscale) &&
		!pg_add_s64_overflow(sum->fast, units, &units))
	{
		sum->fast = units;
		sum->dscale = Max(sum->dscale, dscale);
	}
	else
	{
		Numeric		n = DatumGetNumeric(amount);

		numeric_accumulate(context, &sum->slow, n);
	}
	sum->any = true;
}

/* b added to a (the Numeric part, if any, into context) */
void
line_sum_add_sum(MemoryContext context, LineSum *a, const LineSum *b)
{
	int64		units;

	if (!b->any)
		return;
	if (pg_add_s64_overflow(a->fast, b->fast, &units))
	{
		numeric_accumulate(context, &a->slow, units_to_numeric(b->fast, b->dscale, context));
		units = a->fast;
	}
	a->fast = units;
	if (b->slow)
		numeric_accumulate(context, &a->slow, b->slow);
	a->dscale = Max(a->dscale, b->dscale);
	a->any = true;
}

/* the sum as a Numeric in context; NULL when nothing was added */
Numeric
line_sum_numeric(const LineSum *sum, MemoryContext context)
{
	Numeric		fast;

	if (!sum->any)
		return NULL;
	fast = units_to_numeric(sum->fast, sum->dscale, context);
	if (sum->slow == NULL)
		return fast;
	return DatumGetNumeric(DirectFunctionCall2(numeric_add, NumericGetDatum(fast),
											   NumericGetDatum(sum->slow)));
}

static void
send_sum(StringInfo buf, const LineSum *sum)
{
	pq_sendint64(buf, sum->fast);
	pq_sendint16(buf, sum->dscale);
	numeric_send_sum(buf, sum->slow);
}

static void
get_sum(StringInfo buf, MemoryContext context, LineSum *sum)
{
	sum->fast = pq_getmsgint64(buf);
	sum->dscale = (int16) pq_getmsgint(buf, 2);
	sum->slow = numeric_get_sum(buf, context);
	sum->any = true;
}

static LineTotalsState *
new_state(MemoryContext aggcontext, int32 norders)
{
	LineTotalsState *state = MemoryContextAllocZero(aggcontext, sizeof(LineTotalsState));

	state->norders = norders;
	state->sums = MemoryContextAllocHuge(aggcontext, sizeof(LineSum) * Max(norders, 1));
	memset(state->sums, 0, sizeof(LineSum) * Max(norders, 1));
	state->run_idx = -1;
	return state;
}

/*
 * The state of the first row: the list's keys as codes, checked sorted and
 * distinct.  The keys stay in the argument's bytes, a parameter of the
 * query that outlives the aggregate's state.
 */
static LineTotalsState *
state_from_image(MemoryContext aggcontext, bytea *orders)
{
	Size		size = VARSIZE_ANY_EXHDR(orders);
	const char *image = VARDATA_ANY(orders);
	const char *p = image;
	const char *end = image + size;
	int32		header[3];
	int32		n;
	LineTotalsState *state;

	if (size < IMAGE_HEADER_BYTES || size > PG_UINT32_MAX)
		bad_image();
	memcpy(header, p, IMAGE_HEADER_BYTES);
	p += IMAGE_HEADER_BYTES;
	n = header[0];
	/* each key takes two lengths at least: no allocation past what the image can hold */
	if (n < 0 || (Size) n > (size - IMAGE_HEADER_BYTES) / (2 * sizeof(int32)) ||
		header[1] < 0 || header[2] < 0)
		bad_image();
	state = new_state(aggcontext, n);
	state->base = image;
	state->maxt = header[1];
	state->maxn = header[2];
	state->exact_codes = (uint64) state->maxt + state->maxn <= 16;
	state->offsets = MemoryContextAllocHuge(aggcontext, sizeof(uint32) * Max(n, 1));
	state->codes = MemoryContextAllocHuge(aggcontext, sizeof(KeyCode) * Max(n, 1));
	for (int32 i = 0; i < n; i++)
	{
		OrderKey	k;

		if ((i & 0xFFFF) == 0)
			CHECK_FOR_INTERRUPTS();
		state->offsets[i] = (uint32) (p - image);
		k.tlen = read_len(&p, end);
		k.type = p;
		p += k.tlen;
		k.nlen = read_len(&p, end);
		k.number = p;
		p += k.nlen;
		if (k.tlen > state->maxt || k.nlen > state->maxn)
			bad_image();
		state->codes[i] = key_code(k, state->maxt);
		/* the caller lists each key once, sorted */
		if (i > 0)
		{
			int			r = key_code_cmp(state->codes[i - 1], state->codes[i]);

			if (r == 0 && !state->exact_codes)
				r = order_key_cmp(key_in_image(image + state->offsets[i - 1]), k);
			if (r >= 0)
				bad_image();
		}
	}
	if (p != end)
		bad_image();
	return state;
}

/* probe (whose code is code) compared with the listed key at position i */
static inline int
listed_cmp(const LineTotalsState *state, OrderKey probe, KeyCode code, int32 i)
{
	int			r = key_code_cmp(code, state->codes[i]);

	if (r != 0 || state->exact_codes)
		return r;
	return order_key_cmp(probe, key_in_image(state->base + state->offsets[i]));
}

/*
 * The first position in [lo, hi) whose key is >= probe (hi when none), by
 * bisection; every key before lo is < probe, the key at hi (if any) >= it.
 */
static inline int32
bisect(const LineTotalsState *state, OrderKey probe, KeyCode code, int32 lo, int32 hi)
{
	while (lo < hi)
	{
		int32		mid = lo + (hi - lo) / 2;

		if (listed_cmp(state, probe, code, mid) > 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/*
 * The position of probe in the sorted list, or -1; moves the cursor to the
 * first listed key >= probe.  From the cursor: the lines in key order find
 * their order there or just after it (two comparisons); a jump (the next
 * block of a parallel scan, lines stored out of order) gallops from the
 * cursor, steps of 1, 2, 4, ... then bisection, in either direction.
 */
static int32
listed_position(LineTotalsState *state, OrderKey probe)
{
	int32		n = state->norders;
	int32		c = state->cursor;
	KeyCode		code;
	int32		lo;
	int32		hi;
	int			r = 0;

	if (n == 0 || probe.tlen > state->maxt || probe.nlen > state->maxn)
		return -1;				/* longer than every listed key: not listed */
	code = key_code(probe, state->maxt);
	if (c == n || (r = listed_cmp(state, probe, code, c)) <= 0)
	{
		/* at or before the cursor's key (or past the last) */
		if (c < n && r == 0)
			return c;
		if (c == 0 || listed_cmp(state, probe, code, c - 1) > 0)
			return -1;			/* between two listed keys: the cursor stays */

		/* backwards: keys from hi on are >= probe, keys before lo < probe */
		hi = c - 1;
		lo = 0;
		for (int64 step = 1; hi - step >= 0; step <<= 1)
		{
			if (listed_cmp(state, probe, code, hi - step) > 0)
			{
				lo = hi - step + 1;
				break;
			}
			hi -= step;
		}
	}
	else
	{
		/* past the cursor's key: keys before lo are < probe, keys from hi on >= */
		lo = c + 1;
		hi = n;
		for (int64 step = 1; c + step < n; step <<= 1)
		{
			if (listed_cmp(state, probe, code, c + step) <= 0)
			{
				hi = c + step;
				break;
			}
			lo = c + step + 1;
		}
	}
	c = bisect(state, probe, code, lo, hi);
	state->cursor = c;
	if (c < n && listed_cmp(state, probe, code, c) == 0)
		return c;
	return -1;
}

/* the position of the line's order in the list, or -1 */
static int32
line_order(LineTotalsState *state, MemoryContext aggcontext, const text *type, const text *number)
{
	uint32		tlen = VARSIZE_ANY_EXHDR(type);
	uint32		nlen = VARSIZE_ANY_EXHDR(number);
	OrderKey	k;

	if (state->run_valid && state->run_tlen == tlen && state->run_nlen == nlen &&
		memcmp(state->run_key, VARDATA_ANY(type), tlen) == 0 &&
		memcmp(state->run_key + tlen, VARDATA_ANY(number), nlen) == 0)
		return state->run_idx;

	k.type = VARDATA_ANY(type);
	k.tlen = tlen;
	k.number = VARDATA_ANY(number);
	k.nlen = nlen;
	state->run_idx = listed_position(state, k);

	/* remember this key for the next line */
	if (state->run_cap < (Size) tlen + nlen)
	{
		Size		cap = Max((Size) tlen + nlen, 64);

		if (state->run_key)
			pfree(state->run_key);
		state->run_key = MemoryContextAlloc(aggcontext, cap);
		state->run_cap = cap;
	}
	memcpy(state->run_key, VARDATA_ANY(type), tlen);
	memcpy(state->run_key + tlen, VARDATA_ANY(number), nlen);
	state->run_tlen = tlen;
	state->run_nlen = nlen;
	state->run_valid = true;
	return state->run_idx;
}

Datum
order_line_totals_sfunc(PG_FUNCTION_ARGS)
{
	LineTotalsState *state = PG_ARGISNULL(0) ? NULL : (LineTotalsState *) PG_GETARG_POINTER(0);
	MemoryContext aggcontext;
	int32		idx;

	/* the aggregate's context, checked on the first row, kept in the state */
	if (state == NULL)
	{
		struct varlena *orders;

		aggcontext = pb_aggcontext(fcinfo, "_order_line_totals_sfunc");
		if (PG_ARGISNULL(ARG_ORDERS))
			bad_image();
		orders = (struct varlena *) DatumGetPointer(PG_GETARG_DATUM(ARG_ORDERS));
		/* the keys must outlive this row: a detoasted copy goes in aggcontext */
		if (VARATT_IS_EXTENDED(orders))
		{
			MemoryContext old = MemoryContextSwitchTo(aggcontext);

			orders = PG_DETOAST_DATUM_COPY(PointerGetDatum(orders));
			MemoryContextSwitchTo(old);
		}
		state = state_from_image(aggcontext, (bytea *) orders);
		state->context = aggcontext;
	}
	else if (state->codes == NULL)
		elog(ERROR, "_order_line_totals_sfunc: state without its keys");
	aggcontext = state->context;

	/* a NULL key part joins no order (as l.order_type = o.order_type) */
	if (PG_ARGISNULL(ARG_ORDER_TYPE) || PG_ARGISNULL(ARG_ORDER_NUMBER))
		PG_RETURN_POINTER(state);
	idx = line_order(state, aggcontext, PG_GETARG_TEXT_PP(ARG_ORDER_TYPE),
					 PG_GETARG_TEXT_PP(ARG_ORDER_NUMBER));
	if (idx >= 0 && !PG_ARGISNULL(ARG_AMOUNT))
		line_sum_add(aggcontext, &state->sums[idx], PG_GETARG_DATUM(ARG_AMOUNT));
	PG_RETURN_POINTER(state);
}

Datum
order_line_totals_combine(PG_FUNCTION_ARGS)
{
	MemoryContext aggcontext = pb_aggcontext(fcinfo, "_order_line_totals_combine");
	LineTotalsState *a = PG_ARGISNULL(0) ? NULL : (LineTotalsState *) PG_GETARG_POINTER(0);
	LineTotalsState *b = PG_ARGISNULL(1) ? NULL : (LineTotalsState *) PG_GETARG_POINTER(1);

	if (b == NULL)
	{
		if (a == NULL)
			PG_RETURN_NULL();
		PG_RETURN_POINTER(a);
	}
	/* the result must live in the aggregate context: never return b itself */
	if (a == NULL)
		a = new_state(aggcontext, b->norders);
	else if (a->norders != b->norders)
		elog(ERROR, "_order_line_totals_combine: states of different lists of orders");
	for (int32 i = 0; i < b->norders; i++)
	{
		if ((i & 0xFFFF) == 0)
			CHECK_FOR_INTERRUPTS();
		line_sum_add_sum(aggcontext, &a->sums[i], &b->sums[i]);
	}
	PG_RETURN_POINTER(a);
}

/* the listed orders' count, the count of sums, then (position, sum) pairs */
static bytea *
state_image(const LineTotalsState *state)
{
	StringInfoData buf;
	int32		nsums = 0;

	for (int32 i = 0; i < state->norders; i++)
		nsums += state->sums[i].any;
	pq_begintypsend(&buf);
	pq_sendint32(&buf, state->norders);
	pq_sendint32(&buf, nsums);
	for (int32 i = 0; i < state->norders; i++)
	{
		if (!state->sums[i].any)
			continue;
		if ((i & 0xFFFF) == 0)
			CHECK_FOR_INTERRUPTS();
		pq_sendint32(&buf, i);
		send_sum(&buf, &state->sums[i]);
	}
	return pq_endtypsend(&buf);
}

Datum
order_line_totals_serialize(PG_FUNCTION_ARGS)
{
	(void) pb_aggcontext(fcinfo, "_order_line_totals_serialize");
	PG_RETURN_BYTEA_P(state_image((LineTotalsState *) PG_GETARG_POINTER(0)));
}

/*
 * reads state_image()'s pairs into sums (norders of them): the sum of
 * position i at sums[where[i]], or at sums[i] without where
 */
static void
read_sums(StringInfo buf, int32 norders, const int32 *where, LineSum *sums, MemoryContext context)
{
	int32		nsums = pq_getmsgint(buf, 4);

	for (int32 j = 0; j < nsums; j++)
	{
		int32		i = pq_getmsgint(buf, 4);

		if ((j & 0xFFFF) == 0)
			CHECK_FOR_INTERRUPTS();
		if (i < 0 || i >= norders)
			bad_image();
		get_sum(buf, context, &sums[where ? where[i] : i]);
	}
	pq_getmsgend(buf);
}

/* The state lives in the caller's (per-row) context, as targeting_stats's. */
Datum
order_line_totals_deserialize(PG_FUNCTION_ARGS)
{
	bytea	   *image = PG_GETARG_BYTEA_PP(0);
	StringInfoData buf;
	LineTotalsState *state;
	int32		n;

	(void) pb_aggcontext(fcinfo, "_order_line_totals_deserialize");
	agg_image_reader(image, &buf);
	n = pq_getmsgint(&buf, 4);
	if (n < 0 || (Size) n > MaxAllocHugeSize / sizeof(LineSum))
		bad_image();
	state = new_state(CurrentMemoryContext, n);
	read_sums(&buf, n, NULL, state->sums, CurrentMemoryContext);
	PG_RETURN_POINTER(state);
}

Datum
order_line_totals_final(PG_FUNCTION_ARGS)
{
	(void) pb_aggcontext(fcinfo, "_order_line_totals_final");
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	PG_RETURN_BYTEA_P(state_image((LineTotalsState *) PG_GETARG_POINTER(0)));
}

/*
 * The caller's side: the list of orders as the aggregate's orders argument,
 * each key once, sorted.
 */

/* a key in the caller's sort: its code and its position as added */
typedef struct SortedKey
{
	KeyCode		code;
	int32		added;
} SortedKey;

struct OrderKeyList
{
	MemoryContext context;
	StringInfoData keys;		/* as added: int32 length, order_type, int32 length, order_number */
	uint32	   *offsets;		/* per key as added: where it starts in keys */
	int32		maxkeys;
	int32		n;
	uint32		maxt;			/* the longest order_type, bytes */
	uint32		maxn;			/* the longest order_number, bytes */
	int32	   *added;			/* per position in the image: the key's position as added */
	bool		duplicates;		/* a key was added twice (known once the image is built) */
};

/* the key added at position i */
static inline OrderKey
added_key(const OrderKeyList *list, int32 i)
{
	return key_in_image(list->keys.data + list->offsets[i]);
}

/* two keys of the caller's sort compared: codes, then (codes too short) in full */
static inline int
sorted_key_cmp(const SortedKey *a, const SortedKey *b, OrderKeyList *list)
{
	int			r = key_code_cmp(a->code, b->code);

	if (r != 0 || (uint64) list->maxt + list->maxn <= 16)
		return r;
	return order_key_cmp(added_key(list, a->added), added_key(list, b->added));
}

#define ST_SORT sort_order_keys
#define ST_ELEMENT_TYPE SortedKey
#define ST_COMPARE(a, b, arg) sorted_key_cmp(a, b, arg)
#define ST_COMPARE_ARG_TYPE OrderKeyList
#define ST_CHECK_FOR_INTERRUPTS
#define ST_SCOPE static
#define ST_DEFINE
#include "lib/sort_template.h"

/* an empty list in context */
OrderKeyList *
order_key_list_create(MemoryContext context)
{
	OrderKeyList *list = MemoryContextAllocZero(context, sizeof(OrderKeyList));
	MemoryContext old = MemoryContextSwitchTo(context);

	list->context = context;
	list->maxkeys = 1024;
	list->offsets = palloc(sizeof(uint32) * list->maxkeys);
	initStringInfo(&list->keys);
	MemoryContextSwitchTo(old);
	return list;
}

/* the key's position as added (the caller's handle on its total) */
int32
order_key_list_add(OrderKeyList *list, const text *type, const text *number)
{
	MemoryContext old;
	int32		tlen = VARSIZE_ANY_EXHDR(type);
	int32		nlen = VARSIZE_ANY_EXHDR(number);
	int32		idx;

	if (list->n >= (int32) (MaxAllocHugeSize / sizeof(LineSum)) - 1 ||
		(Size) list->keys.len + IMAGE_HEADER_BYTES + 2 * sizeof(int32) + tlen + nlen > PG_UINT32_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("too many orders to total from one scan of the lines")));
	old = MemoryContextSwitchTo(list->context);
	if (list->n == list->maxkeys)
	{
		list->maxkeys *= 2;
		list->offsets = repalloc_huge(list->offsets, sizeof(uint32) * list->maxkeys);
	}
	idx = list->n++;
	list->offsets[idx] = (uint32) list->keys.len;
	appendBinaryStringInfo(&list->keys, (const char *) &tlen, sizeof(int32));
	appendBinaryStringInfo(&list->keys, VARDATA_ANY(type), tlen);
	appendBinaryStringInfo(&list->keys, (const char *) &nlen, sizeof(int32));
	appendBinaryStringInfo(&list->keys, VARDATA_ANY(number), nlen);
	list->maxt = Max(list->maxt, (uint32) tlen);
	list->maxn = Max(list->maxn, (uint32) nlen);
	MemoryContextSwitchTo(old);
	return idx;
}

/* was a key added twice?  Known once order_key_list_image() has run. */
bool
order_key_list_has_duplicates(const OrderKeyList *list)
{
	return list->duplicates;
}

/* the count of keys added */
int32
order_key_list_length(const OrderKeyList *list)
{
	return list->n;
}

/*
 * The aggregate's orders argument, in the list's context: the keys sorted
 * (once, here, by their codes: the aggregate's processes then only read
 * them); a key added twice sets the list's duplicates flag.
 */
bytea *
order_key_list_image(OrderKeyList *list)
{
	MemoryContext old = MemoryContextSwitchTo(list->context);
	SortedKey  *sorted = palloc_extended(sizeof(SortedKey) * Max(list->n, 1), MCXT_ALLOC_HUGE);
	int32		header[3] = {list->n, (int32) list->maxt, (int32) list->maxn};
	bytea	   *image = palloc_extended(VARHDRSZ + IMAGE_HEADER_BYTES + list->keys.len, MCXT_ALLOC_HUGE);
	char	   *p = VARDATA(image);

	for (int32 i = 0; i < list->n; i++)
	{
		if ((i & 0xFFFF) == 0)
			CHECK_FOR_INTERRUPTS();
		sorted[i].code = key_code(added_key(list, i), list->maxt);
		sorted[i].added = i;
	}
	sort_order_keys(sorted, list->n, list);

	list->added = palloc_extended(sizeof(int32) * Max(list->n, 1), MCXT_ALLOC_HUGE);
	SET_VARSIZE(image, VARHDRSZ + IMAGE_HEADER_BYTES + list->keys.len);
	memcpy(p, header, IMAGE_HEADER_BYTES);
	p += IMAGE_HEADER_BYTES;
	for (int32 i = 0; i < list->n; i++)
	{
		OrderKey	k = added_key(list, sorted[i].added);
		Size		len = 2 * sizeof(int32) + k.tlen + k.nlen;

		if ((i & 0xFFFF) == 0)
			CHECK_FOR_INTERRUPTS();
		if (i > 0 && sorted_key_cmp(&sorted[i - 1], &sorted[i], list) == 0)
			list->duplicates = true;
		memcpy(p, list->keys.data + list->offsets[sorted[i].added], len);
		p += len;
		list->added[i] = sorted[i].added;
	}
	pfree(sorted);
	MemoryContextSwitchTo(old);
	return image;
}

/*
 * The aggregate's result read into one sum per key of the list, as added
 * (!any where no line had an amount), allocated in context.
 */
LineSum *
order_line_totals_read(bytea *result, const OrderKeyList *list, MemoryContext context)
{
	LineSum    *sums = MemoryContextAllocHuge(context, sizeof(LineSum) * Max(list->n, 1));
	StringInfoData buf;

	Assert(list->added != NULL);
	memset(sums, 0, sizeof(LineSum) * Max(list->n, 1));
	if (result == NULL)
		return sums;
	agg_image_reader(result, &buf);
	if ((int32) pq_getmsgint(&buf, 4) != list->n)
		bad_image();
	read_sums(&buf, list->n, list->added, sums, context);
	return sums;
}
