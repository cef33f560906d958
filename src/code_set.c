/*
 * code_set.c
 *		_code_listed(code, codes): is a customer code one of a listed set?
 *		The route test of the full recompute's scoped orders scan.
 *
 *	  _code_listed(code text, codes bytea) returns boolean
 *
 * codes is the same bytea on every row (a query parameter), as
 * code_set_image() builds it: an int32 count, then per code an int32 length
 * and its bytes, the integers in network byte order (as int4send() writes
 * them).  Each process builds, on its first call, an open-addressing
 * table of the codes' 32-bit hashes (a slot holds the hash, 0 for empty, and
 * beside it the code's offset in the list) kept in fn_extra, and in front of
 * it a filter of at least 8 bits per code (one bit set per code, from other
 * bits of its hash); a row then costs one hash of its code and, for most
 * codes not listed (most rows), one load from the filter, small enough to
 * stay in cache where the table (8 bytes per slot, 2 MB for 75,000 codes)
 * does not.  Codes compare bytewise, as the leader's table of customers
 * compares them (strcmp).
 *
 * The full recompute used a hash semi-join of the orders with the route
 * customers instead: the join's bucket scan and its projection were 12-15 %
 * of the recompute's CPU (bench/README.md, issue 25, branch s32-full-linear).
 */
#include "postgres.h"

#include "common/hashfn.h"
#include "executor/nodeHash.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "libpq/pqformat.h"
#include "miscadmin.h"
#include "port/pg_bitutils.h"
#include "port/pg_bswap.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include "code_set.h"

PG_FUNCTION_INFO_V1(code_listed);

/* the table of one list, in fn_extra */
typedef struct CodeSet
{
	Size		len;			/* of image */
	char	   *image;			/* a copy of the list's bytes (header included) */
	uint32		mask;			/* slots - 1 (slots a power of 2) */
	uint64	   *slots;			/* per slot: hash (low 32 bits, 0: empty), offset (high 32) */
	uint32		bitmask;		/* bits of filter - 1 (a power of 2) */
	uint64	   *filter;			/* one bit per code's hash rotated: most codes not listed stop here */
} CodeSet;

/* a code's bit in the filter: other bits of its hash than the slot's */
#define FILTER_BIT(h, bitmask)	(pg_rotate_right32((h), 16) & (bitmask))

/* a code's hash as the table stores it: never 0, which marks an empty slot */
static inline uint32
code_hash(const char *code, uint32 len)
{
	uint32		h = hash_bytes((const unsigned char *) code, (int) len);

	return h != 0 ? h : 1;
}

static void
bad_codes(void)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("_code_listed: malformed list of codes"),
			 errhint("Pass the list of codes customer_analytics builds; this function is internal.")));
}

/* the slots a list of n codes takes: a power of 2, at least twice n */
static uint64
code_set_slots(uint64 n)
{
	return pg_nextpower2_64(Max(16, 2 * n));
}

/*
 * The bits of the filter for n codes: a power of 2, at least 8 per code (a
 * code not listed passes it with a chance of about 1 in 9 at most); 2^20
 * bits (128 kB, which stays in a core's cache) for 75,000 codes.
 */
static uint64
code_set_filter_bits(uint64 n)
{
	return pg_nextpower2_64(Max(512, 8 * n));
}

/* bytes a table of n codes whose list takes image_len bytes needs (code_set_image's) */
Size
code_set_memory(int32 n, Size image_len)
{
	return (Size) code_set_slots(n) * sizeof(uint64) + (Size) code_set_filter_bits(n) / 8 +
		image_len + sizeof(CodeSet);
}

/* the int32 at p, in network byte order */
static inline int32
read_int32(const char *p)
{
	uint32		v;

	memcpy(&v, p, sizeof(v));
	return (int32) pg_ntoh32(v);
}

/* is the code at offset off of the image the len bytes at code? */
static inline bool
code_at(const CodeSet *set, uint32 off, const char *code, uint32 len)
{
	int32		l = read_int32(set->image + off);

	return (uint32) l == len && memcmp(set->image + off + sizeof(int32), code, len) == 0;
}

/* is code (len bytes) in the set? */
static inline bool
code_set_contains(const CodeSet *set, const char *code, uint32 len)
{
	uint32		h = code_hash(code, len);
	uint32		i = h & set->mask;
	uint32		bit = FILTER_BIT(h, set->bitmask);

	if ((set->filter[bit / 64] & (UINT64CONST(1) << (bit % 64))) == 0)
		return false;
	for (;;)
	{
		uint64		s = set->slots[i];

		if ((uint32) s == 0)
			return false;
		if ((uint32) s == h && code_at(set, (uint32) (s >> 32), code, len))
			return true;
		i = (i + 1) & set->mask;
	}
}

/*
 * The table of the list codes (a bytea as code_set_image builds it) in
 * context, checked: an error on a malformed list.
 */
static CodeSet *
code_set_build(MemoryContext context, const bytea *codes)
{
	Size		len = VARSIZE_ANY(codes);
	const char *p;
	const char *end;
	int32		n;
	CodeSet    *set;

	if (VARSIZE_ANY_EXHDR(codes) < sizeof(int32) || len > PG_UINT32_MAX)
		bad_codes();
	set = MemoryContextAllocZero(context, sizeof(CodeSet));
	set->len = len;
	set->image = MemoryContextAllocHuge(context, len);
	memcpy(set->image, codes, len);
	p = VARDATA_ANY(set->image);
	end = set->image + len;
	n = read_int32(p);
	p += sizeof(int32);
	/* each code takes its length at least: no allocation past what the list can hold */
	if (n < 0 || (Size) n > (Size) (end - p) / sizeof(int32))
		bad_codes();
	/* the memory a hash table may take (the recompute checks it first, and then joins) */
	if ((double) code_set_memory(n, len) > (double) get_hash_memory_limit())
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("_code_listed: %d codes need more memory than work_mem times hash_mem_multiplier allow", n),
				 errhint("Raise work_mem, or list fewer codes.")));
	set->mask = (uint32) (code_set_slots(n) - 1);
	set->slots = MemoryContextAllocHuge(context, sizeof(uint64) * ((Size) set->mask + 1));
	memset(set->slots, 0, sizeof(uint64) * ((Size) set->mask + 1));
	set->bitmask = (uint32) (code_set_filter_bits(n) - 1);
	set->filter = MemoryContextAllocHuge(context, ((Size) set->bitmask + 1) / 8);
	memset(set->filter, 0, ((Size) set->bitmask + 1) / 8);
	for (int32 k = 0; k < n; k++)
	{
		int32		l;
		uint32		off;
		uint32		h;
		uint32		i;

		if ((k & 0xFFFF) == 0)
			CHECK_FOR_INTERRUPTS();
		if (end - p < (ptrdiff_t) sizeof(int32))
			bad_codes();
		l = read_int32(p);
		if (l < 0 || end - p - (ptrdiff_t) sizeof(int32) < l)
			bad_codes();
		off = (uint32) (p - set->image);
		p += sizeof(int32);
		h = code_hash(p, l);
		/* a code listed twice is kept once */
		for (i = h & set->mask; (uint32) set->slots[i] != 0; i = (i + 1) & set->mask)
		{
			if ((uint32) set->slots[i] == h && code_at(set, (uint32) (set->slots[i] >> 32), p, l))
				break;
		}
		if ((uint32) set->slots[i] == 0)
			set->slots[i] = ((uint64) off << 32) | h;
		set->filter[FILTER_BIT(h, set->bitmask) / 64] |= UINT64CONST(1) << (FILTER_BIT(h, set->bitmask) % 64);
		p += l;
	}
	if (p != end)
		bad_codes();
	return set;
}

/*
 * _code_listed(code text, codes bytea): is code one of the listed codes?
 * STRICT.  The table is built once per process and query when codes is a
 * constant or a query parameter (the full recompute's case: the same value
 * on every row); any other argument is compared with the table's list on
 * each call, and the table rebuilt when it differs.
 */
Datum
code_listed(PG_FUNCTION_ARGS)
{
	text	   *code = PG_GETARG_TEXT_PP(0);
	CodeSet    *set = (CodeSet *) fcinfo->flinfo->fn_extra;
	bytea	   *codes;

	/* (a stable list is not even detoasted again: the table has it) */
	if (set != NULL && get_fn_expr_arg_stable(fcinfo->flinfo, 1))
		PG_RETURN_BOOL(code_set_contains(set, VARDATA_ANY(code), VARSIZE_ANY_EXHDR(code)));
	codes = PG_GETARG_BYTEA_PP(1);
	if (set == NULL || set->len != VARSIZE_ANY(codes) || memcmp(set->image, codes, set->len) != 0)
	{
		if (set)
		{
			pfree(set->image);
			pfree(set->slots);
			pfree(set->filter);
			pfree(set);
		}
		set = code_set_build(fcinfo->flinfo->fn_mcxt, codes);
		fcinfo->flinfo->fn_extra = set;
	}
	PG_RETURN_BOOL(code_set_contains(set, VARDATA_ANY(code), VARSIZE_ANY_EXHDR(code)));
}

/*
 * The codes argument of _code_listed() for the n codes (C strings), in the
 * current memory context.
 */
bytea *
code_set_image(const char *const *codes, int32 n)
{
	StringInfoData buf;

	initStringInfo(&buf);
	pq_sendint32(&buf, n);
	for (int32 k = 0; k < n; k++)
	{
		int32		l = (int32) strlen(codes[k]);

		if ((k & 0xFFFF) == 0)
			CHECK_FOR_INTERRUPTS();
		pq_sendint32(&buf, l);
		appendBinaryStringInfo(&buf, codes[k], l);
	}
	{
		bytea	   *image = palloc_extended(VARHDRSZ + buf.len, MCXT_ALLOC_HUGE);

		SET_VARSIZE(image, VARHDRSZ + buf.len);
		memcpy(VARDATA(image), buf.data, buf.len);
		pfree(buf.data);
		return image;
	}
}
