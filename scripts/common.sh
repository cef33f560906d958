# scripts/common.sh: shared by demo.sh, test.sh and bench/run.sh.
#   ca_install_deps    install what is missing from Debian's packages
#   ca_build_install   build the extension (warnings are errors) and install it
#   ca_start_cluster   start a throwaway PostgreSQL 15 cluster as the postgres
#                      OS user, socket in a temp dir, port CA_PGPORT (default
#                      5432); exports PGHOST/PGPORT/PGUSER
# The cluster is stopped and removed when the calling script exits.

set -euo pipefail

CA_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# PG_BIN may point at another PostgreSQL 15 installation (a relocated copy,
# so that two checkouts can install and test side by side)
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
CA_PACKAGES=(make gcc libc6-dev postgresql-15 postgresql-server-dev-15 postgresql-15-cron postgresql-15-plpgsql-check
             python3 python3-psycopg2 python3-numpy python3-scipy python3-sklearn
             libpostgresql-jdbc-java default-jdk-headless)

ca_log() { printf '\n==> %s\n' "$*" >&2; }

ca_as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

ca_install_deps() {
    local missing=()
    for p in "${CA_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    if [ ${#missing[@]} -eq 0 ]; then
        ca_log "Debian packages: all present"
        return
    fi
    ca_log "Installing from Debian's packages: ${missing[*]}"
    ca_as_root apt-get update -qq
    ca_as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    # the postgresql package starts a default cluster; we use our own
}

ca_build_install() {
    ca_log "Building and installing customer_analytics"
    make -C "$CA_ROOT" -s clean
    make -C "$CA_ROOT" -s PG_CONFIG=$PG_BIN/pg_config COPT=-Werror >/dev/null
    ca_as_root make -C "$CA_ROOT" -s PG_CONFIG=$PG_BIN/pg_config install >/dev/null
}

ca_stop_cluster() {
    if [ -n "${CA_CLUSTER_DIR:-}" ] && [ -d "$CA_CLUSTER_DIR" ]; then
        runuser -u postgres -- $PG_BIN/pg_ctl -D "$CA_CLUSTER_DIR/data" -m immediate stop >/dev/null 2>&1 || true
        rm -rf "$CA_CLUSTER_DIR"
    fi
}

# ca_start_cluster [extra postgres -c settings...]
ca_start_cluster() {
    CA_CLUSTER_DIR=$(mktemp -d /tmp/customer_analytics.XXXXXX)
    trap ca_stop_cluster EXIT
    chown postgres: "$CA_CLUSTER_DIR"
    ca_log "Starting a throwaway cluster in $CA_CLUSTER_DIR"
    runuser -u postgres -- $PG_BIN/initdb -D "$CA_CLUSTER_DIR/data" -A trust -U postgres \
        --encoding=UTF8 --locale=C.UTF-8 >/dev/null
    # the socket is in the temp dir, so the port only needs to differ from
    # other clusters' when CA_PGPORT is set to share a machine
    local opts="-k $CA_CLUSTER_DIR -p ${CA_PGPORT:-5432} -c listen_addresses='' -c fsync=off"
    # pg_cron runs jobs in one database; its script also allows
    # CREATE EXTENSION in contrib_regression, where the suites test it
    opts+=" -c shared_preload_libraries=pg_cron -c cron.database_name=postgres"
    # jobs run in background workers: a socket-only cluster refuses the
    # libpq connection pg_cron otherwise makes to cron.host (localhost)
    opts+=" -c cron.use_background_workers=on"
    for o in "$@"; do opts+=" -c $o"; done
    runuser -u postgres -- $PG_BIN/pg_ctl -D "$CA_CLUSTER_DIR/data" -o "$opts" \
        -l "$CA_CLUSTER_DIR/server.log" -w start >/dev/null
    export PGHOST=$CA_CLUSTER_DIR PGPORT=${CA_PGPORT:-5432} PGUSER=postgres PGDATABASE=postgres
}

ca_psql() { psql -X -q -v ON_ERROR_STOP=1 "$@"; }
