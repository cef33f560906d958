-- customer_analytics: the install script of the current version, built by
-- the Makefile from src/sql/*.sql (one file per concern; each object is
-- defined in exactly one of them).  Older versions' scripts and the update
-- scripts are in updates/.
\echo Use "CREATE EXTENSION customer_analytics" to load this file. \quit

-- SQL-language bodies refer to objects defined in later files: they are
-- checked when they run (the update scripts' order made the same choice).
SET check_function_bodies = false;

