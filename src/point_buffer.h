/*
 * point_buffer.h
 *		The transition state of the clustering aggregates: the feature
 *		vectors seen so far (and their cluster labels for silhouette), plus
 *		the aggregate's own parameters, with combine/serialize support so the
 *		aggregates can run in parallel.
 */
#ifndef POINT_BUFFER_H
#define POINT_BUFFER_H

#include "fmgr.h"
#include "lib/stringinfo.h"
#include "utils/array.h"

typedef struct PointBuffer
{
	int32		dim;			/* 0 until the first point */
	bool		labelled;		/* labels kept (silhouette) */
	int64		n;
	int64		cap;
	double	   *x;				/* n * dim, row-major */
	int32	   *label;			/* n, when labelled */
	Size		params_len;		/* the aggregate's fixed arguments, as bytes */
	char	   *params;
} PointBuffer;

extern PointBuffer *pb_create(MemoryContext context, bool labelled,
							  const void *params, Size params_len);
/* refuse a vector of more than CA_MAX_FEATURES elements */
extern void pb_check_features(int64 nelems);
extern void pb_add(PointBuffer *pb, ArrayType *features, int32 label);
extern void pb_check_params(const PointBuffer *pb, const void *params, Size params_len);
extern PointBuffer *pb_combine(MemoryContext context, PointBuffer *a, PointBuffer *b);
extern bytea *pb_serialize(const PointBuffer *pb);
extern PointBuffer *pb_deserialize(MemoryContext context, bytea *data);
extern void pb_sort(PointBuffer *pb);

/* aggregate memory context, or an error when not called as an aggregate */
extern MemoryContext pb_aggcontext(FunctionCallInfo fcinfo, const char *fname);

/* buf reads a serialized aggregate state in place (for pq_getmsg*) */
extern void agg_image_reader(bytea *image, StringInfo buf);

#endif
