/*
 * code_set.h
 *		A set of customer codes as the argument of _code_listed() (the full
 *		recompute's route test, code_set.c): the caller's side.
 */
#ifndef CODE_SET_H
#define CODE_SET_H

#include "fmgr.h"

/* _code_listed()'s codes argument for n codes, in the current memory context */
extern bytea *code_set_image(const char *const *codes, int32 n);

/* the memory each process's table of n codes takes, image_len the argument's size */
extern Size code_set_memory(int32 n, Size image_len);

#endif
