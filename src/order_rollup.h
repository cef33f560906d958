/*
 * order_rollup.h
 *		Choosing between a source's order rollup and its tables.
 */
#ifndef ORDER_ROLLUP_H
#define ORDER_ROLLUP_H

/*
 * The schema-qualified, quoted name of the order rollup of source schema
 * `schema` when this caller may read it instead of the source tables (it is
 * current, its triggers are enabled, the caller has the privileges and no
 * row-level security applies); NULL otherwise.  Says which at DEBUG1.
 */
extern const char *order_rollup_for_reading(const char *schema);

#endif
