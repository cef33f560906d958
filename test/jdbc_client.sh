#!/usr/bin/env bash
# test/jdbc_client.sh: a JDBC client's view of a campaign and a segmentation
# (issue 13, item 6).  Run by scripts/test.sh, as root, after the extension
# is installed; needs Debian's libpostgresql-jdbc-java and a JDK (javac),
# which scripts/common.sh installs.
#
# pgjdbc connects over TCP only and the suite's cluster listens on a unix
# socket only, so this starts its own throwaway cluster as the postgres OS
# user, listening on 127.0.0.1 on a free port (from 5450 up) with trust
# authentication (initdb -A trust covers host connections), socket in a temp
# dir.  As postgres, over the socket: the demo data at scale 0.1
# (test/demo_data.sql), the extension, schema bi, a login role jdbc_reader
# (USAGE on bi and customer_analytics, nothing on cosmos_sync), a login role
# jdbc_analyst that may read the ERP tables, the campaign jdbc_promo and the
# segmentation jdbc_seg, both with readers => '{jdbc_reader}'.  Then
# test/jdbc_client/BiClient.java, compiled with javac into the temp dir, runs
# as those roles over JDBC.
# Prints "ok - ..." / "not ok - ..." lines and "N passed, M failed".
set -uo pipefail

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
source "$(dirname "${BASH_SOURCE[0]}")/checks.sh"
JDBC_JAR=${JDBC_JAR:-/usr/share/java/postgresql.jar}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WORK=$(mktemp -d /tmp/ca_jdbc.XXXXXX)
chown postgres: "$WORK"
DB=jdbc_client
SCALE=0.1

stop_all() {
    [ -f "$WORK/data/postmaster.pid" ] && as_pg "$PG_BIN/pg_ctl" -D "$WORK/data" -m immediate stop >/dev/null 2>&1
    rm -rf "$WORK"
}
trap stop_all EXIT

port_in_use() {  # something accepts connections on 127.0.0.1:$1
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

for f in "$JDBC_JAR" "$(command -v javac)" "$(command -v java)"; do
    [ -n "$f" ] && [ -e "$f" ] || { not_ok "pgjdbc jar, javac and java present" "missing ${f:-javac/java}"; finish; }
done

if ! as_pg "$PG_BIN/initdb" -D "$WORK/data" -A trust -U postgres --encoding=UTF8 --locale=C.UTF-8 >/dev/null; then
    not_ok "initdb"; finish
fi
PORT=
for p in $(seq 5450 5499); do
    port_in_use "$p" && continue
    # the port may still be taken between the check and the start: try the next
    if as_pg "$PG_BIN/pg_ctl" -D "$WORK/data" -l "$WORK/server.log" -w start \
           -o "-k $WORK -p $p -c listen_addresses=127.0.0.1 -c fsync=off" >/dev/null 2>&1; then
        PORT=$p
        break
    fi
done
if [ -z "$PORT" ]; then
    not_ok "a cluster listening on 127.0.0.1" "no free port in 5450-5499"; tail -20 "$WORK/server.log"; finish
fi
ok "throwaway cluster listening on 127.0.0.1:$PORT (socket in $WORK)"

psql_pg() { "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$WORK" -p "$PORT" -U postgres "$@"; }

if out=$(psql_pg -d postgres -c "CREATE DATABASE $DB" 2>&1) &&
   out=$(cd "$ROOT" && psql_pg -d $DB -v scale=$SCALE -f test/demo_data.sql 2>&1); then
    ok "demo data loaded at scale $SCALE"
else
    not_ok "demo data loaded at scale $SCALE" "$out"; finish
fi

SETUP="
SET client_min_messages = warning;
CREATE EXTENSION customer_analytics;
CREATE SCHEMA bi;
CREATE ROLE jdbc_reader LOGIN;
CREATE ROLE jdbc_analyst LOGIN;
-- what an admin grants a BI role: the schemas, not the ERP tables
GRANT USAGE ON SCHEMA bi, customer_analytics TO jdbc_reader;
GRANT USAGE ON SCHEMA cosmos_sync, customer_analytics TO jdbc_analyst;
GRANT SELECT ON ALL TABLES IN SCHEMA cosmos_sync TO jdbc_analyst;
SELECT name, target_rows FROM customer_analytics.create_campaign('jdbc_promo', 'bi', readers => '{jdbc_reader}');
SELECT name, member_rows FROM customer_analytics.create_segmentation('jdbc_seg', 'bi', k => 3, segment => 'repeat',
       k_to => 4, silhouette_sample => 0, readers => '{jdbc_reader}');"
if out=$(psql_pg -d $DB -At -c "$SETUP" 2>&1); then
    ok "extension, roles jdbc_reader and jdbc_analyst, campaign and segmentation built: $(echo $out)"
else
    not_ok "extension, roles, campaign and segmentation built" "$out"; finish
fi

if out=$(javac -d "$WORK/classes" -cp "$JDBC_JAR" "$ROOT/test/jdbc_client/BiClient.java" 2>&1); then
    ok "BiClient.java compiled ($(javac -version 2>&1))"
else
    not_ok "BiClient.java compiled" "$out"; finish
fi

# the Java program's own ok/not ok lines, counted here too
java -cp "$WORK/classes:$JDBC_JAR" BiClient "jdbc:postgresql://127.0.0.1:$PORT/$DB" \
    jdbc_reader jdbc_analyst jdbc_promo jdbc_seg bi > "$WORK/java.out" 2>&1
rc=$?
grep -v -E '^[0-9]+ passed, [0-9]+ failed$' "$WORK/java.out"
jok=$(grep -cE '^ok ' "$WORK/java.out")
jbad=$(grep -cE '^not ok ' "$WORK/java.out")
passed=$((passed + jok))
failed=$((failed + jbad))
if [ "$rc" -ne 0 ] && [ "$jbad" -eq 0 ]; then
    not_ok "BiClient ran to the end" "exit status $rc"
fi
finish
