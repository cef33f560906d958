-- _matview_apply reads a view's current rows of the given keys (NULL keys
-- dropped, equal keys once) without a query, through the view's index on
-- customer_code directly (one descent per key, the keys put in the index's
-- order only when they are not in it), when the view has a valid B-tree
-- index, not partial, whose first column is customer_code with the
-- column's collation and text's own operator family; otherwise by its
-- query, as before.  Either way the view is then
-- what its definition returns (compared with a recompute, EXCEPT ALL both
-- ways), every index of the view finds every row, and the owner needs the
-- privilege to read the view, as the query needed.
\set VERBOSITY terse
SET client_min_messages = warning;
CREATE TABLE public.ma_src (customer_code text, month int, v int);
INSERT INTO public.ma_src SELECT lpad(c::text, 5, '0'), m, c * m FROM generate_series(1, 40) c, generate_series(1, 3) m;
-- (one key with many rows: 400 months)
INSERT INTO public.ma_src SELECT '00041', m, m FROM generate_series(1, 400) m;
-- differences between a view and its definition (0: equal)
CREATE FUNCTION public.ma_diff(view regclass, def text) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE n bigint;
BEGIN
    EXECUTE format('SELECT count(*) FROM ((TABLE %s EXCEPT ALL %s) UNION ALL (%s EXCEPT ALL TABLE %s)) d',
                   view, def, def, view) INTO n;
    RETURN n;
END $$;
-- _matview_apply, and the scans of the index idx it made (counted before
-- they are reported, as the difference in the same transaction)
CREATE FUNCTION public.ma_apply(view regclass, idx regclass, keys text[], rows_sql text, OUT written bigint, OUT key_scans bigint)
LANGUAGE plpgsql AS $$
DECLARE before bigint := pg_stat_get_xact_numscans(idx);
BEGIN
    written := customer_analytics._matview_apply(view, keys, rows_sql);
    key_scans := pg_stat_get_xact_numscans(idx) - before;
END $$;

-- one row per customer, a unique index on customer_code
CREATE MATERIALIZED VIEW public.ma_one AS
SELECT customer_code, sum(v)::int AS total FROM public.ma_src GROUP BY customer_code;
CREATE UNIQUE INDEX ma_one_key ON public.ma_one (customer_code);
UPDATE public.ma_src SET v = v + 1 WHERE customer_code IN ('00001', '00003', '00005');
DELETE FROM public.ma_src WHERE customer_code = '00007';
INSERT INTO public.ma_src VALUES ('00099', 1, 5);
-- keys out of order, twice, with a NULL: one descent per key
BEGIN;
SELECT * FROM public.ma_apply('public.ma_one', 'public.ma_one_key', '{00099,00005,00001,NULL,00005,00007,00003,00002}',
    'SELECT customer_code, sum(v)::int FROM public.ma_src WHERE customer_code = ANY ($1) GROUP BY customer_code');
SELECT pg_catalog.array_length(customer_analytics._matview_touched('public.ma_one'), 1) AS touched;
COMMIT;
SELECT public.ma_diff('public.ma_one', 'SELECT customer_code, sum(v)::int FROM public.ma_src GROUP BY customer_code') AS differences;
-- every key: as many rows by the index as by a sequential scan
SET enable_seqscan = off; SET enable_bitmapscan = off;
SELECT count(*) AS by_index FROM public.ma_one o WHERE o.customer_code IN (SELECT s.customer_code FROM public.ma_src s);
RESET enable_seqscan; RESET enable_bitmapscan;

-- the long form: many rows of a key, a unique index on (customer_code, month)
CREATE MATERIALIZED VIEW public.ma_long AS SELECT customer_code, month, v FROM public.ma_src;
CREATE UNIQUE INDEX ma_long_key ON public.ma_long (customer_code, month);
UPDATE public.ma_src SET v = -v WHERE customer_code = '00041' AND month % 40 = 0;
DELETE FROM public.ma_src WHERE customer_code = '00041' AND month > 395;
INSERT INTO public.ma_src SELECT '00041', m, 1 FROM generate_series(401, 405) m;
-- (two keys, one twice, and a NULL: two descents of the index)
SELECT * FROM public.ma_apply('public.ma_long', 'public.ma_long_key', '{00041,00002,NULL,00041}',
    'SELECT customer_code, month, v FROM public.ma_src WHERE customer_code = ANY ($1)');
SELECT public.ma_diff('public.ma_long', 'SELECT customer_code, month, v FROM public.ma_src') AS differences;
SELECT count(*) AS rows_of_00041 FROM public.ma_long WHERE customer_code = '00041';
-- every key: one descent each (41)
UPDATE public.ma_src SET v = v + 1 WHERE month % 3 = 0;
SELECT * FROM public.ma_apply('public.ma_long', 'public.ma_long_key', ARRAY(SELECT DISTINCT customer_code FROM public.ma_src ORDER BY 1 DESC),
    'SELECT customer_code, month, v FROM public.ma_src WHERE customer_code = ANY ($1)');
SELECT public.ma_diff('public.ma_long', 'SELECT customer_code, month, v FROM public.ma_src') AS differences;

-- a view whose only indexes on customer_code are not usable (an expression,
-- a partial index, another operator class) beside an index on another
-- column: read by the query; then with a plain index added after them, by
-- that index; every index holds every row
CREATE MATERIALIZED VIEW public.ma_multi AS SELECT customer_code, month, v FROM public.ma_src;
CREATE INDEX ma_multi_lower ON public.ma_multi (lower(customer_code));
CREATE INDEX ma_multi_partial ON public.ma_multi (customer_code) WHERE v > 0;
CREATE INDEX ma_multi_pattern ON public.ma_multi (customer_code text_pattern_ops);
CREATE INDEX ma_multi_v ON public.ma_multi (v);
UPDATE public.ma_src SET v = v + 100 WHERE customer_code IN ('00010', '00011');
SELECT customer_analytics._matview_apply('public.ma_multi', '{00011,00010}',
    'SELECT customer_code, month, v FROM public.ma_src WHERE customer_code = ANY ($1)') AS written_by_query;
SELECT public.ma_diff('public.ma_multi', 'SELECT customer_code, month, v FROM public.ma_src') AS differences;
CREATE INDEX ma_multi_key ON public.ma_multi (customer_code, v);
UPDATE public.ma_src SET v = v + 100 WHERE customer_code IN ('00012', '00041');
SELECT * FROM public.ma_apply('public.ma_multi', 'public.ma_multi_key', '{00012,00041}',
    'SELECT customer_code, month, v FROM public.ma_src WHERE customer_code = ANY ($1)');
SELECT public.ma_diff('public.ma_multi', 'SELECT customer_code, month, v FROM public.ma_src') AS differences;
SET enable_seqscan = off; SET enable_bitmapscan = off;
SELECT (SELECT count(*) FROM public.ma_multi WHERE lower(customer_code) = '00041') AS by_lower,
       (SELECT count(*) FROM public.ma_multi WHERE customer_code = '00041' AND v > 0) AS by_partial,
       (SELECT count(*) FROM public.ma_multi WHERE customer_code ~>=~ '00041' AND customer_code ~<=~ '00041') AS by_pattern,
       (SELECT count(*) FROM public.ma_multi WHERE v > -1000000) AS by_v,
       (SELECT count(*) FROM public.ma_multi WHERE customer_code = '00041') AS by_key;
RESET enable_seqscan; RESET enable_bitmapscan;
SELECT count(*) FILTER (WHERE customer_code = '00041') AS rows_00041, count(*) FILTER (WHERE v > 0 AND customer_code = '00041') AS positive_00041,
       count(*) AS all_rows FROM public.ma_multi;

-- keys in a non-C collation: the index's order is ICU's, not the bytes'
CREATE TABLE public.ma_words (customer_code text COLLATE "en-x-icu", v int);
INSERT INTO public.ma_words VALUES ('a1', 1), ('B1', 2), ('c1', 3), ('D1', 4), ('e1', 5), ('F1', 6);
INSERT INTO public.ma_words SELECT 'z' || n, n FROM generate_series(1, 300) n;
CREATE MATERIALIZED VIEW public.ma_icu AS SELECT customer_code, v FROM public.ma_words;
CREATE UNIQUE INDEX ON public.ma_icu (customer_code);
UPDATE public.ma_words SET v = v * 10 WHERE customer_code NOT LIKE 'z%';
-- in the bytes' order (not the index's: sorted), then in the index's
SELECT * FROM public.ma_apply('public.ma_icu', 'public.ma_icu_customer_code_idx', '{B1,D1,a1,c1}',
    'SELECT customer_code, v FROM public.ma_words WHERE customer_code = ANY ($1)');
SELECT * FROM public.ma_apply('public.ma_icu', 'public.ma_icu_customer_code_idx', '{e1,F1}',
    'SELECT customer_code, v FROM public.ma_words WHERE customer_code = ANY ($1)');
SELECT public.ma_diff('public.ma_icu', 'SELECT customer_code, v FROM public.ma_words') AS differences;
-- every key
UPDATE public.ma_words SET v = v + 1 WHERE customer_code IN ('a1', 'z7');
SELECT * FROM public.ma_apply('public.ma_icu', 'public.ma_icu_customer_code_idx', ARRAY(SELECT customer_code FROM public.ma_words),
    'SELECT customer_code, v FROM public.ma_words WHERE customer_code = ANY ($1)');
SELECT public.ma_diff('public.ma_icu', 'SELECT customer_code, v FROM public.ma_words') AS differences;
SELECT string_agg(customer_code || '=' || v, ' ' ORDER BY customer_code) FROM public.ma_icu WHERE customer_code NOT LIKE 'z%';

-- a nondeterministic collation: keys equal under it are one key
CREATE COLLATION public.ma_ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false);
CREATE TABLE public.ma_names (customer_code text COLLATE public.ma_ci, v int);
INSERT INTO public.ma_names VALUES ('Abc', 1), ('xyz', 2);
CREATE MATERIALIZED VIEW public.ma_cim AS SELECT customer_code, v FROM public.ma_names;
CREATE UNIQUE INDEX ON public.ma_cim (customer_code);
UPDATE public.ma_names SET v = 7 WHERE customer_code = 'ABC';
-- (one descent: the three keys are one)
SELECT * FROM public.ma_apply('public.ma_cim', 'public.ma_cim_customer_code_idx', '{abc,ABC,aBc}',
    'SELECT customer_code, v FROM public.ma_names WHERE customer_code = ANY ($1)');
SELECT public.ma_diff('public.ma_cim', 'SELECT customer_code, v FROM public.ma_names') AS differences;
SELECT customer_code, v FROM public.ma_cim ORDER BY v;

-- a view rewritten by hand: customer_code no longer text (read by the
-- query) and the new rows not of its columns (an error, as before)
DROP MATERIALIZED VIEW public.ma_one;
CREATE MATERIALIZED VIEW public.ma_one AS
SELECT customer_code::varchar AS customer_code, sum(v)::int AS total FROM public.ma_src GROUP BY customer_code;
CREATE UNIQUE INDEX ON public.ma_one (customer_code);
UPDATE public.ma_src SET v = v + 1 WHERE customer_code = '00001';
SELECT customer_analytics._matview_apply('public.ma_one', '{00001}',
    'SELECT customer_code::varchar, sum(v)::int FROM public.ma_src WHERE customer_code = ANY ($1) GROUP BY customer_code') AS written;
SELECT public.ma_diff('public.ma_one', 'SELECT customer_code::varchar, sum(v)::int FROM public.ma_src GROUP BY customer_code') AS differences;
SELECT err($$SELECT customer_analytics._matview_apply('public.ma_long', '{00001}', 'SELECT customer_code, v FROM public.ma_src')$$);

-- the owner without the privilege to read its view: refused, as the
-- query was
CREATE ROLE ca_ma_owner;
CREATE MATERIALIZED VIEW public.ma_own AS SELECT customer_code, v FROM public.ma_words;
CREATE UNIQUE INDEX ON public.ma_own (customer_code);
GRANT SELECT ON public.ma_words TO ca_ma_owner;
ALTER MATERIALIZED VIEW public.ma_own OWNER TO ca_ma_owner;
REVOKE SELECT ON public.ma_own FROM ca_ma_owner;
SET ROLE ca_ma_owner;
SELECT err($$SELECT customer_analytics._matview_apply('public.ma_own', '{a1}', 'SELECT customer_code, v FROM public.ma_words WHERE false')$$);
RESET ROLE;
DROP MATERIALIZED VIEW public.ma_own;
REVOKE SELECT ON public.ma_words FROM ca_ma_owner;
DROP ROLE ca_ma_owner;

DROP MATERIALIZED VIEW public.ma_one, public.ma_long, public.ma_multi, public.ma_icu, public.ma_cim;
DROP TABLE public.ma_src, public.ma_words, public.ma_names;
DROP COLLATION public.ma_ci;
DROP FUNCTION public.ma_diff(regclass, text);
DROP FUNCTION public.ma_apply(regclass, regclass, text[], text);
