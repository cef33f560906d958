/*
 * code_hash.h
 *		A simplehash table keyed by customer_code (a NUL-terminated string).
 *
 * Define SH_PREFIX and SH_ELEMENT_TYPE, whose struct has the fields
 * "const char *code", "uint32 hash" and "char status", then include this
 * file.  The key string must outlive the table: insert a copy.
 */
#include "common/hashfn.h"

#define SH_KEY_TYPE		const char *
#define SH_KEY			code
#define SH_HASH_KEY(tb, key) hash_bytes((const unsigned char *) (key), strlen(key))
#define SH_EQUAL(tb, a, b) (strcmp((a), (b)) == 0)
#define SH_STORE_HASH
#define SH_GET_HASH(tb, a) ((a)->hash)
#define SH_SCOPE		static inline
#define SH_DECLARE
#define SH_DEFINE
#include "lib/simplehash.h"
