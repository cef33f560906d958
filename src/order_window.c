/*
 * order_window.c
 *		order_date_in_window(): the order scan's date filter, with a planner
 *		support function so that the filter is estimated from the column's
 *		statistics.
 *
 * The filter must check every confirmed order's date (see order_date.c), so
 * it cannot be a plain text comparison the planner understands.  Left as an
 * opaque function it would be estimated at a fraction of a percent of the
 * orders, and the planner would pick nested loops and sorts where a hash
 * join over the lines is right.  The support function tells it what the
 * equivalent comparison "lo <= order_date < hi" on the raw column selects.
 */
#include "postgres.h"

#include "access/stratnum.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "nodes/supportnodes.h"
#include "optimizer/optimizer.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/lsyscache.h"
#include "utils/rangetypes.h"
#include "utils/typcache.h"

#include "order_date.h"

PG_FUNCTION_INFO_V1(order_date_in_window_text);
PG_FUNCTION_INFO_V1(order_date_in_window_date);
PG_FUNCTION_INFO_V1(order_date_in_window_support);

/*
 * What a daterange lets through: the days d with lo <= d < hi.  An
 * unbounded side, or a bound of -infinity / infinity, does not limit that
 * side (has_lo / has_hi false, lo / hi the infinite date values, which every
 * finite date compares inside of); an empty range lets nothing through.
 */
typedef struct WindowBounds
{
	bool		empty;
	bool		has_lo;
	bool		has_hi;
	DateADT		lo;
	DateADT		hi;
} WindowBounds;

/* The bounds of a daterange (any daterange: unbounded, infinite, empty). */
static WindowBounds
window_bounds(RangeType *range)
{
	TypeCacheEntry *typcache = lookup_type_cache(RangeTypeGetOid(range), TYPECACHE_RANGE_INFO);
	RangeBound	lower,
				upper;
	WindowBounds w;

	range_deserialize(typcache, range, &lower, &upper, &w.empty);
	w.lo = DATEVAL_NOBEGIN;
	w.hi = DATEVAL_NOEND;
	w.has_lo = w.has_hi = false;
	if (w.empty)
		return w;
	/* daterange is canonical: an inclusive lower and an exclusive upper bound */
	if (!lower.infinite)
	{
		w.lo = DatumGetDateADT(lower.val);
		w.has_lo = !DATE_NOT_FINITE(w.lo);
	}
	if (!upper.infinite)
	{
		w.hi = DatumGetDateADT(upper.val);
		w.has_hi = !DATE_NOT_FINITE(w.hi);
	}
	return w;
}

/*
 * The bounds of the window argument, kept in fn_extra with the range's bytes
 * from one call to the next: the window is the same on every row of a scan
 * (a query parameter), where a type cache lookup and a deserialization per
 * row showed in the profile of the full recompute (about 2 % of its CPU at
 * scale 10).
 */
typedef struct CachedWindow
{
	WindowBounds w;
	Size		len;			/* of bytes */
	char		bytes[FLEXIBLE_ARRAY_MEMBER];	/* the range's data, without header */
} CachedWindow;

/* the bounds of argument argno (a daterange), from the cache when unchanged */
static WindowBounds
window_arg_bounds(FunctionCallInfo fcinfo, int argno)
{
	struct varlena *packed = PG_DETOAST_DATUM_PACKED(PG_GETARG_DATUM(argno));
	Size		len = VARSIZE_ANY_EXHDR(packed);
	CachedWindow *cache = (CachedWindow *) fcinfo->flinfo->fn_extra;

	if (cache == NULL || cache->len != len || memcmp(cache->bytes, VARDATA_ANY(packed), len) != 0)
	{
		if (cache)
			pfree(cache);
		cache = MemoryContextAlloc(fcinfo->flinfo->fn_mcxt, offsetof(CachedWindow, bytes) + len);
		cache->w = window_bounds(PG_GETARG_RANGE_P(argno));
		cache->len = len;
		memcpy(cache->bytes, VARDATA_ANY(packed), len);
		fcinfo->flinfo->fn_extra = cache;
	}
	return cache->w;
}

/*
 * order_date_in_window(order_date, order_window, order_type, order_number):
 * true when the order's date (checked: an error names a malformed or NULL
 * one) is in the window.  Any non-NULL daterange is a window: '(,)' and
 * '[-infinity,infinity]' let every date through, '[2025-01-01,)' every
 * date from then on, 'empty' none.
 */
static Datum
in_window(FunctionCallInfo fcinfo, Oid argtype)
{
	WindowBounds w;
	DateADT		d;

	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("order_window must not be NULL"),
				 errdetail("A NULL window would leave every order neither in nor out."),
				 errhint("Pass a daterange, such as '[2025-01-01,2025-12-31]'; '(,)' takes every order.")));
	w = window_arg_bounds(fcinfo, 1);
	d = order_date_arg(fcinfo, 0, argtype, 2);
	if (w.empty)
		PG_RETURN_BOOL(false);
	PG_RETURN_BOOL(d >= w.lo && d < w.hi);
}

/* order_date_in_window(order_date text, window daterange, order_type text, order_number text) */
Datum
order_date_in_window_text(PG_FUNCTION_ARGS)
{
	return in_window(fcinfo, TEXTOID);
}

/* order_date_in_window(order_date date, window daterange, order_type text, order_number text) */
Datum
order_date_in_window_date(PG_FUNCTION_ARGS)
{
	return in_window(fcinfo, DATEOID);
}

/* A bound as a constant of the column's type: text 'YYYYMMDD' or a date. */
static Const *
bound_const(Oid type, Oid collation, DateADT d)
{
	if (type == DATEOID)
		return makeConst(DATEOID, -1, InvalidOid, sizeof(DateADT),
						 DateADTGetDatum(d), false, true);
	else
	{
		int			year,
					month,
					day;
		char		buf[16];

		j2date(d + POSTGRES_EPOCH_JDATE, &year, &month, &day);
		snprintf(buf, sizeof(buf), "%04d%02d%02d", year, month, day);
		return makeConst(type, -1, collation, -1,
						 type == BPCHAROID
						 ? DirectFunctionCall3(bpcharin, CStringGetDatum(buf),
											   ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1))
						 : CStringGetTextDatum(buf),
						 false, false);
	}
}

/*
 * Look through the casts the order query puts around the column
 * (varchar::text is a RelabelType, bpchar::text a cast function) so that the
 * estimate can use the column's own statistics.
 */
static Node *
strip_casts(Node *expr)
{
	for (;;)
	{
		if (IsA(expr, RelabelType))
			expr = (Node *) ((RelabelType *) expr)->arg;
		else if (IsA(expr, FuncExpr) &&
				 ((FuncExpr *) expr)->funcformat != COERCE_EXPLICIT_CALL &&
				 list_length(((FuncExpr *) expr)->args) == 1)
			expr = (Node *) linitial(((FuncExpr *) expr)->args);
		else
			return expr;
	}
}

/*
 * Planner support: the selectivity of order_date_in_window(column, const
 * window, ...) as that of "column >= lo AND column < hi" on the raw column
 * (text YYYYMMDD or date), with only the finite bounds.
 */
Datum
order_date_in_window_support(PG_FUNCTION_ARGS)
{
	Node	   *rawreq = (Node *) PG_GETARG_POINTER(0);
	SupportRequestSelectivity *req;
	Node	   *column;
	Node	   *window;
	Oid			type;
	Oid			collation;
	TypeCacheEntry *typcache;
	Oid			ge_op,
				lt_op;
	WindowBounds w;
	List	   *clauses;

	if (!IsA(rawreq, SupportRequestSelectivity))
		PG_RETURN_POINTER(NULL);
	req = (SupportRequestSelectivity *) rawreq;
	if (req->is_join || list_length(req->args) != 4)
		PG_RETURN_POINTER(NULL);

	window = (Node *) lsecond(req->args);
	if (!IsA(window, Const) || ((Const *) window)->constisnull)
		PG_RETURN_POINTER(NULL);
	w = window_bounds(DatumGetRangeTypeP(((Const *) window)->constvalue));
	if (w.empty)
	{
		req->selectivity = 0.0;
		PG_RETURN_POINTER(req);
	}
	if (!w.has_lo && !w.has_hi)
	{
		req->selectivity = 1.0;
		PG_RETURN_POINTER(req);
	}

	column = strip_casts((Node *) linitial(req->args));
	type = exprType(column);
	if (type != TEXTOID && type != VARCHAROID && type != BPCHAROID && type != DATEOID)
		PG_RETURN_POINTER(NULL);
	collation = exprCollation(column);

	typcache = lookup_type_cache(type == VARCHAROID ? TEXTOID : type, TYPECACHE_BTREE_OPFAMILY);
	if (!OidIsValid(typcache->btree_opf))
		PG_RETURN_POINTER(NULL);
	ge_op = get_opfamily_member(typcache->btree_opf, typcache->type_id, typcache->type_id,
								BTGreaterEqualStrategyNumber);
	lt_op = get_opfamily_member(typcache->btree_opf, typcache->type_id, typcache->type_id,
								BTLessStrategyNumber);
	if (!OidIsValid(ge_op) || !OidIsValid(lt_op))
		PG_RETURN_POINTER(NULL);

	if (type == VARCHAROID)
		column = (Node *) makeRelabelType((Expr *) column, TEXTOID, -1, collation,
										  COERCE_IMPLICIT_CAST);

	/* only the finite bounds: an unbounded side selects everything on it */
	clauses = NIL;
	if (w.has_lo)
		clauses = lappend(clauses,
						  make_opclause(ge_op, BOOLOID, false, (Expr *) column,
										(Expr *) bound_const(typcache->type_id, collation, w.lo),
										InvalidOid, collation));
	if (w.has_hi)
		clauses = lappend(clauses,
						  make_opclause(lt_op, BOOLOID, false, (Expr *) column,
										(Expr *) bound_const(typcache->type_id, collation, w.hi),
										InvalidOid, collation));
	req->selectivity = clauselist_selectivity(req->root, clauses, req->varRelid,
											  JOIN_INNER, NULL);
	PG_RETURN_POINTER(req);
}
