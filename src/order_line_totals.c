/*
 * order_line_totals.c
 *		The _order_line_totals aggregate: the totals of a given list of
 *		orders, from one scan of every line, with no join and no probe per
 *		line.
 *
 *	  _order_line_totals(order_type, order_number, line_amount, orders)
 *
 * orders is the same bytea on every row (a query parameter): the keys of
 * the orders whose totals are wanted, as order_keys_image() (targeting.c)
 * builds it: an int32 count, then per order an int32 length and the bytes
 * of order_type, an int32 length and the bytes of order_number; no key
 * twice.  The rows are the lines, in any order: a line whose key is the
 * previous line's (one memcmp) adds to the order found for that line, any
 * other key is looked up once in a hash table of the listed keys.  Where
 * the lines arrive grouped by order (the table's physical order, as the ERP
 * writes an order's lines together) that is one lookup per order, not per
 * line; where they do not, the result is the same.  Lines of orders not
 * listed, and lines with a NULL key part, are skipped.
 *
 * The state: the listed keys' hash table and one running sum per listed
 * order (NULL until a line with an amount); memory grows with the listed
 * orders, not with the lines.  The aggregate is PARALLEL SAFE with combine,
 * serial and deserial functions: each worker scans its share of the lines
 * (an order whose lines straddle two workers' blocks gets two partial sums,
 * added by the combine function), the leader adds the sums of at most one
 * state per worker.  The result, a bytea: an int32 count of listed orders,
 * an int32 count of sums, then per sum the order's position in the list
 * (int32) and the numeric (as numeric_send_sum writes it); NULL without
 * rows.  Sums are exact numeric additions, so neither the plan nor the
 * lines' order changes a total.
 */
#include "postgres.h"

#include "common/hashfn.h"
#include "common/int.h"
#include "fmgr.h"
#include "libpq/pqformat.h"
#include "miscadmin.h"
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

/*
 * The hash table's entries are 12 bytes, the key's position in the list
 * (the table's size decides how many lookups miss the CPU's caches, and
 * most lines' orders are not listed); KeyTable resolves a position to its
 * key, and PROBE to the key being looked up.
 */
typedef struct KeyEntry
{
	int32		idx;			/* position in the list; PROBE: the probe key */
	uint32		hash;
	char		status;
} KeyEntry;

#define PROBE (-1)

typedef struct KeyTable
{
	const char *base;			/* the list's bytes */
	uint32	   *offsets;		/* per position: where its key starts in base */
	OrderKey	probe;
} KeyTable;

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

static inline OrderKey
key_at(const KeyTable *t, int32 idx)
{
	return idx == PROBE ? t->probe : key_in_image(t->base + t->offsets[idx]);
}

static inline uint32
order_key_hash(OrderKey k)
{
	return hash_combine(hash_bytes((const unsigned char *) k.type, k.tlen),
						hash_bytes((const unsigned char *) k.number, k.nlen));
}

static inline bool
order_key_equal(OrderKey a, OrderKey b)
{
	return a.tlen == b.tlen && a.nlen == b.nlen &&
		memcmp(a.type, b.type, a.tlen) == 0 && memcmp(a.number, b.number, a.nlen) == 0;
}

#define SH_PREFIX		keyhash
#define SH_ELEMENT_TYPE KeyEntry
#define SH_KEY_TYPE		int32
#define SH_KEY			idx
#define SH_HASH_KEY(tb, k) order_key_hash(key_at((KeyTable *) (tb)->private_data, (k)))
#define SH_EQUAL(tb, a, b) order_key_equal(key_at((KeyTable *) (tb)->private_data, (a)), \
										   key_at((KeyTable *) (tb)->private_data, (b)))
#define SH_STORE_HASH
#define SH_GET_HASH(tb, a) ((a)->hash)
#define SH_SCOPE		static inline
#define SH_DECLARE
#define SH_DEFINE
#include "lib/simplehash.h"

/* the position of key k in table tb, or -1 */
static inline int32
key_lookup(keyhash_hash *tb, OrderKey k)
{
	KeyEntry   *e;

	((KeyTable *) tb->private_data)->probe = k;
	e = keyhash_lookup(tb, PROBE);
	return e ? e->idx : -1;
}

#define FAST_SCALE_DIGITS 2		/* NBASE digits below the point: LINE_SUM_UNIT */

typedef struct LineTotalsState
{
	int32		norders;		/* listed orders */
	LineSum    *sums;			/* per listed order */
	keyhash_hash *keys;			/* NULL in states from other processes */
	KeyTable   *table;			/* the keys: the aggregate's argument */
	uint64	   *filter;			/* a bit per hash value slot: any listed key? */
	uint32		filter_mask;	/* bits - 1 */

	/* the previous line's key and the order it belongs to (-1: none) */
	char	   *run_key;
	uint32		run_tlen;
	uint32		run_nlen;
	Size		run_cap;
	int32		run_idx;
	bool		run_valid;
} LineTotalsState;

/* the filter's bit of a hash value (mixed: the table's buckets use the low bits) */
#define FILTER_BIT(state, h)	(((h) * 0x9E3779B1u ^ ((h) >> 16)) & (state)->filter_mask)
#define FILTER_SET(state, h)	((state)->filter[FILTER_BIT(state, h) / 64] |= UINT64CONST(1) << (FILTER_BIT(state, h) % 64))
#define FILTER_TEST(state, h)	(((state)->filter[FILTER_BIT(state, h) / 64] >> (FILTER_BIT(state, h) % 64)) & 1)

#define ARG_ORDER_TYPE		1
#define ARG_ORDER_NUMBER	2
#define ARG_AMOUNT			3
#define ARG_ORDERS			4

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

static void
sum_add_amount(MemoryContext context, LineSum *sum, Datum amount)
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

/* b added to a */
static void
sum_add_sum(MemoryContext context, LineSum *a, const LineSum *b)
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
 * The state of the first row: the list's keys in a hash table.  The keys
 * stay in the argument's bytes, a parameter of the query that outlives the
 * aggregate's state.
 */
static LineTotalsState *
state_from_image(MemoryContext aggcontext, bytea *orders)
{
	Size		size = VARSIZE_ANY_EXHDR(orders);
	const char *image = VARDATA_ANY(orders);
	const char *p = image;
	const char *end = image + size;
	int32		n;
	LineTotalsState *state;

	if (size < sizeof(int32) || size > PG_UINT32_MAX)
		bad_image();
	memcpy(&n, p, sizeof(int32));
	p += sizeof(int32);
	if (n < 0 || (Size) n > MaxAllocHugeSize / sizeof(LineSum))
		bad_image();
	state = new_state(aggcontext, n);
	state->table = MemoryContextAllocZero(aggcontext, sizeof(KeyTable));
	state->table->base = image;
	state->table->offsets = MemoryContextAllocHuge(aggcontext, sizeof(uint32) * Max(n, 1));
	state->keys = keyhash_create(aggcontext, Max(n, 16), state->table);

	/*
	 * A bitmap of the keys' hash values, 8 bits per listed order: most lines
	 * belong to orders not listed, and the bitmap (256 kB for 250,000
	 * orders) answers most of those from the CPU's cache, where the hash
	 * table's entry would be a miss.
	 */
	{
		uint64		bits = 64;

		while (bits < (uint64) n * 8 && bits < ((uint64) 1 << 31))
			bits <<= 1;
		state->filter = MemoryContextAllocHuge(aggcontext, bits / 8);
		memset(state->filter, 0, bits / 8);
		state->filter_mask = (uint32) (bits - 1);
	}
	for (int32 i = 0; i < n; i++)
	{
		KeyEntry   *e;
		bool		found;
		int32		len;

		if ((i & 0xFFFF) == 0)
			CHECK_FOR_INTERRUPTS();
		state->table->offsets[i] = (uint32) (p - image);
		len = read_len(&p, end);
		p += len;
		len = read_len(&p, end);
		p += len;
		e = keyhash_insert(state->keys, i, &found);
		if (found)
			bad_image();		/* the caller lists each key once */
		e->idx = i;
		FILTER_SET(state, e->hash);
	}
	if (p != end)
		bad_image();
	return state;
}

/* the position of the line's order in the list, or -1 */
static int32
line_order(LineTotalsState *state, MemoryContext aggcontext, const text *type, const text *number)
{
	uint32		tlen = VARSIZE_ANY_EXHDR(type);
	uint32		nlen = VARSIZE_ANY_EXHDR(number);
	OrderKey	k;
	uint32		hash;

	if (state->run_valid && state->run_tlen == tlen && state->run_nlen == nlen &&
		memcmp(state->run_key, VARDATA_ANY(type), tlen) == 0 &&
		memcmp(state->run_key + tlen, VARDATA_ANY(number), nlen) == 0)
		return state->run_idx;

	k.type = VARDATA_ANY(type);
	k.tlen = tlen;
	k.number = VARDATA_ANY(number);
	k.nlen = nlen;
	hash = order_key_hash(k);
	state->run_idx = -1;
	if (FILTER_TEST(state, hash))
	{
		KeyEntry   *e;

		state->table->probe = k;
		e = keyhash_lookup_hash(state->keys, PROBE, hash);
		if (e)
			state->run_idx = e->idx;
	}

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
	MemoryContext aggcontext = pb_aggcontext(fcinfo, "_order_line_totals_sfunc");
	LineTotalsState *state = PG_ARGISNULL(0) ? NULL : (LineTotalsState *) PG_GETARG_POINTER(0);
	int32		idx;

	if (state == NULL)
	{
		struct varlena *orders;

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
	}
	else if (state->keys == NULL)
		elog(ERROR, "_order_line_totals_sfunc: state without its keys");

	/* a NULL key part joins no order (as l.order_type = o.order_type) */
	if (PG_ARGISNULL(ARG_ORDER_TYPE) || PG_ARGISNULL(ARG_ORDER_NUMBER))
		PG_RETURN_POINTER(state);
	idx = line_order(state, aggcontext, PG_GETARG_TEXT_PP(ARG_ORDER_TYPE),
					 PG_GETARG_TEXT_PP(ARG_ORDER_NUMBER));
	if (idx >= 0 && !PG_ARGISNULL(ARG_AMOUNT))
		sum_add_amount(aggcontext, &state->sums[idx], PG_GETARG_DATUM(ARG_AMOUNT));
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
		sum_add_sum(aggcontext, &a->sums[i], &b->sums[i]);
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

/* reads state_image()'s pairs into sums (norders of them) */
static void
read_sums(StringInfo buf, int32 norders, LineSum *sums, MemoryContext context)
{
	int32		nsums = pq_getmsgint(buf, 4);

	for (int32 j = 0; j < nsums; j++)
	{
		int32		i = pq_getmsgint(buf, 4);

		if ((j & 0xFFFF) == 0)
			CHECK_FOR_INTERRUPTS();
		if (i < 0 || i >= norders)
			bad_image();
		get_sum(buf, context, &sums[i]);
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
	read_sums(&buf, n, state->sums, CurrentMemoryContext);
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
 * each key once.
 */
struct OrderKeyList
{
	MemoryContext context;
	keyhash_hash *keys;			/* NULL: no check for a key listed twice */
	KeyTable	table;			/* base: image.data, offsets grown with the list */
	int32		maxkeys;
	StringInfoData image;		/* the count, patched by order_key_list_image() */
	int32		n;
	bool		duplicates;		/* a key was added twice */
};

/*
 * unique: the keys are known to be distinct (a unique index on them), so
 * nothing checks that a key is listed once.
 */
OrderKeyList *
order_key_list_create(MemoryContext context, bool unique)
{
	OrderKeyList *list = MemoryContextAllocZero(context, sizeof(OrderKeyList));
	MemoryContext old = MemoryContextSwitchTo(context);

	list->context = context;
	list->maxkeys = 1024;
	list->table.offsets = palloc(sizeof(uint32) * list->maxkeys);
	if (!unique)
		list->keys = keyhash_create(context, 1024, &list->table);
	initStringInfo(&list->image);
	appendBinaryStringInfo(&list->image, (const char *) &list->n, sizeof(int32));
	MemoryContextSwitchTo(old);
	return list;
}

int32
order_key_list_add(OrderKeyList *list, const text *type, const text *number)
{
	MemoryContext old;
	int32		tlen = VARSIZE_ANY_EXHDR(type);
	int32		nlen = VARSIZE_ANY_EXHDR(number);
	int32		idx;

	if (list->keys)
	{
		OrderKey	k;

		k.tlen = tlen;
		k.nlen = nlen;
		k.type = VARDATA_ANY(type);
		k.number = VARDATA_ANY(number);
		list->table.base = list->image.data;
		idx = key_lookup(list->keys, k);
		if (idx >= 0)
		{
			list->duplicates = true;
			return idx;
		}
	}
	if (list->n >= (int32) (MaxAllocHugeSize / sizeof(LineSum)) - 1 ||
		(Size) list->image.len + 2 * sizeof(int32) + tlen + nlen > PG_UINT32_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("too many orders to total from one scan of the lines")));
	old = MemoryContextSwitchTo(list->context);
	if (list->n == list->maxkeys)
	{
		list->maxkeys *= 2;
		list->table.offsets = repalloc_huge(list->table.offsets, sizeof(uint32) * list->maxkeys);
	}
	idx = list->n++;
	list->table.offsets[idx] = (uint32) list->image.len;
	appendBinaryStringInfo(&list->image, (const char *) &tlen, sizeof(int32));
	appendBinaryStringInfo(&list->image, VARDATA_ANY(type), tlen);
	appendBinaryStringInfo(&list->image, (const char *) &nlen, sizeof(int32));
	appendBinaryStringInfo(&list->image, VARDATA_ANY(number), nlen);
	list->table.base = list->image.data;
	if (list->keys)
	{
		bool		found;
		KeyEntry   *e = keyhash_insert(list->keys, idx, &found);

		Assert(!found);
		e->idx = idx;
	}
	MemoryContextSwitchTo(old);
	return idx;
}

bool
order_key_list_has_duplicates(const OrderKeyList *list)
{
	return list->duplicates;
}

int32
order_key_list_length(const OrderKeyList *list)
{
	return list->n;
}

/* the aggregate's orders argument, in the list's context */
bytea *
order_key_list_image(OrderKeyList *list)
{
	bytea	   *image = MemoryContextAllocHuge(list->context, VARHDRSZ + list->image.len);

	memcpy(list->image.data, &list->n, sizeof(int32));
	SET_VARSIZE(image, VARHDRSZ + list->image.len);
	memcpy(VARDATA(image), list->image.data, list->image.len);
	return image;
}

/*
 * The aggregate's result read into one sum per listed order (!any where no
 * line had an amount), allocated in context.
 */
LineSum *
order_line_totals_read(bytea *result, int32 norders, MemoryContext context)
{
	LineSum    *sums = MemoryContextAllocHuge(context, sizeof(LineSum) * Max(norders, 1));
	StringInfoData buf;

	memset(sums, 0, sizeof(LineSum) * Max(norders, 1));
	if (result == NULL)
		return sums;
	agg_image_reader(result, &buf);
	if ((int32) pq_getmsgint(&buf, 4) != norders)
		bad_image();
	read_sums(&buf, norders, sums, context);
	return sums;
}
