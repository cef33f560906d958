# customer_analytics: PGXS build.  `make && make install`, then `make installcheck`
# against a running server (scripts/test.sh does all of it on a throwaway cluster).

PG_CONFIG ?= pg_config

EXTENSION = customer_analytics
EXTVERSION = $(shell sed -n "s/^default_version = '\\(.*\\)'/\\1/p" $(EXTENSION).control)
MODULE_big = customer_analytics
OBJS = $(patsubst %.c,%.o,$(wildcard src/*.c))

# The current version's install script is built from one SQL file per
# concern (src/sql/); updates/ holds the older versions' scripts and the
# update scripts, which hold only what changed.
SQL_SOURCES = $(addprefix src/sql/,header.sql catalogs.sql source_tables.sql ownership.sql targeting.sql response_stats.sql \
	kmeans.sql rolling_windows.sql refresh_status.sql campaigns.sql campaign_launch.sql bi_views.sql rollup.sql \
	delta_refresh.sql segmentations.sql segmentation_state.sql schedules.sql sharding.sql \
	upgrade.sql catalog_policies.sql triggers.sql)
# An update script with a template (updates/*.in) takes the functions it
# replaces from src/sql/, so that no body is written twice.
UPDATE_TEMPLATES = $(wildcard updates/$(EXTENSION)--*.in)
DATA = $(filter-out $(UPDATE_TEMPLATES:.in=.sql),$(wildcard updates/$(EXTENSION)--*.sql))
DATA_built = $(EXTENSION)--$(EXTVERSION).sql $(UPDATE_TEMPLATES:.in=.sql)

TESTS = $(sort $(wildcard sql/[0-9]*.sql))
REGRESS = $(patsubst sql/%.sql,%,$(TESTS))
REGRESS_OPTS = --inputdir=. --outputdir=.
# isolation specs (specs/*.spec, expected/<name>.out); installcheck runs them after REGRESS
ISOLATION = campaign_refresh campaign_create_race campaign_launch rollup_concurrent_writes rollup_split_writers progress delta_refresh segmentation_delta dispatcher

# -Wextra for our code; PostgreSQL's headers are not -Wextra clean, so they
# are included as system headers (gcc then ignores the duplicate -I).
PG_CFLAGS = -Wall -Wextra
PG_CPPFLAGS = -isystem $(shell $(PG_CONFIG) --includedir-server)
EXTRA_CLEAN = results regression.diffs regression.out

PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

$(EXTENSION)--$(EXTVERSION).sql: $(SQL_SOURCES) $(EXTENSION).control
	cat $(SQL_SOURCES) > $@

updates/%.sql: updates/%.in $(SQL_SOURCES) scripts/build_update.awk
	awk -f scripts/build_update.awk $< $(SQL_SOURCES) > $@.tmp && mv $@.tmp $@

# every object depends on every header: a changed struct must rebuild its users
$(OBJS): $(wildcard src/*.h)

.PHONY: demo bench fuzz
demo:
	bash scripts/demo.sh

# the long fuzz run (random seed, 30,000 calls or 10 minutes); the test
# command runs a short one with a fixed seed
fuzz:
	bash scripts/fuzz.sh

bench:
	bash bench/run.sh
