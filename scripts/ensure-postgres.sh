#!/usr/bin/env bash
# Ensures a local PostgreSQL for the tests: Debian's `postgresql` installed, a cluster running (no systemd:
# pg_ctlcluster), listening on 127.0.0.1 only, a role and a database for the tests. Prints the DSN, without
# the password, on stdout:
#   postgresql://taoplan@127.0.0.1:5432/taoplan_test
# The password is TAOPLAN_PG_PASSWORD when set, else the content of /var/cache/taoplan/postgres-password
# (generated once, mode 0600). It never goes on a command line or into a log.
# Settings (env): TAOPLAN_PG_PORT (5432), TAOPLAN_PG_ROLE (taoplan), TAOPLAN_PG_DB (taoplan_test),
# TAOPLAN_PG_CLUSTER (main), TAOPLAN_CACHE (/var/cache/taoplan).
# Idempotent; when everything is already there it only checks (a fraction of a second).
set -euo pipefail

PORT="${TAOPLAN_PG_PORT:-5432}"
ROLE="${TAOPLAN_PG_ROLE:-taoplan}"
DB="${TAOPLAN_PG_DB:-taoplan_test}"
CLUSTER="${TAOPLAN_PG_CLUSTER:-main}"
CACHE="${TAOPLAN_CACHE:-/var/cache/taoplan}"
PWFILE="$CACHE/postgres-password"
DSN="postgresql://$ROLE@127.0.0.1:$PORT/$DB"

log() { echo "ensure-postgres: $*" >&2; }
die() { echo "ensure-postgres: $*" >&2; exit 1; }

[[ "$ROLE" =~ ^[a-z_][a-z0-9_]*$ ]] || die "TAOPLAN_PG_ROLE: '$ROLE' is not a plain lower-case identifier"
[[ "$DB" =~ ^[a-z_][a-z0-9_]*$ ]] || die "TAOPLAN_PG_DB: '$DB' is not a plain lower-case identifier"
[[ "$PORT" =~ ^[0-9]+$ ]] || die "TAOPLAN_PG_PORT: '$PORT' is not a port number"

# The password: from the environment, else generated once into the cache.
mkdir -p "$CACHE"
if [[ -n "${TAOPLAN_PG_PASSWORD:-}" ]]; then
  PW="$TAOPLAN_PG_PASSWORD"
else
  if [[ ! -s "$PWFILE" ]]; then
    (umask 077 && head -c 32 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 32 >"$PWFILE.tmp")
    mv "$PWFILE.tmp" "$PWFILE"
  fi
  chmod 600 "$PWFILE"
  PW="$(cat "$PWFILE")"
fi
[[ "$PW" =~ ^[A-Za-z0-9._~+-]+$ ]] || die "TAOPLAN_PG_PASSWORD: use letters, digits and ._~+- only"

# Fast path: the server answers on 127.0.0.1 and the role logs into the database with this password.
can_login() {
  command -v psql >/dev/null 2>&1 || return 1
  PGPASSWORD="$PW" PGCONNECT_TIMEOUT=3 psql -X -q -w -h 127.0.0.1 -p "$PORT" -U "$ROLE" -d "$DB" \
    -tAc 'select 1' 2>/dev/null | grep -qx 1
}
if can_login; then
  echo "$DSN"
  exit 0
fi

# Install.
if ! command -v pg_ctlcluster >/dev/null 2>&1 || ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
  log "installing Debian postgresql"
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
fi
VER="$(ls /usr/lib/postgresql | sort -V | tail -1)"

# Cluster: create when missing, listen on 127.0.0.1 only, on PORT.
if ! pg_lsclusters -h "$VER" "$CLUSTER" 2>/dev/null | grep -q .; then
  log "creating cluster $VER/$CLUSTER on port $PORT"
  pg_createcluster "$VER" "$CLUSTER" --port "$PORT" >&2
fi
CONF_DIR="/etc/postgresql/$VER/$CLUSTER/conf.d"
mkdir -p "$CONF_DIR"
WANT="$(printf "# written by taoplan scripts/ensure-postgres.sh\nlisten_addresses = '127.0.0.1'\nport = %s\n" "$PORT")"
CHANGED=0
if [[ "$(cat "$CONF_DIR/taoplan.conf" 2>/dev/null)" != "$WANT" ]]; then
  printf '%s\n' "$WANT" >"$CONF_DIR/taoplan.conf"
  CHANGED=1
fi

status="$(pg_lsclusters -h "$VER" "$CLUSTER" | awk '{print $4}')"
if [[ "$status" == online* ]]; then
  if [[ "$CHANGED" == 1 ]]; then
    log "restarting $VER/$CLUSTER for the new listen settings"
    pg_ctlcluster "$VER" "$CLUSTER" restart >&2
  fi
else
  log "starting $VER/$CLUSTER"
  pg_ctlcluster "$VER" "$CLUSTER" start >&2
fi
for _ in $(seq 1 100); do
  pg_isready -q -h 127.0.0.1 -p "$PORT" && break
  sleep 0.1
done
pg_isready -q -h 127.0.0.1 -p "$PORT" || die "the server does not answer on 127.0.0.1:$PORT (see /var/log/postgresql/)"

# Role and database (as the postgres superuser, over the local socket; the SQL goes on stdin, not argv).
as_postgres() { runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 -p "$PORT" -d postgres "$@"; }
if as_postgres -tAc "select 1 from pg_roles where rolname = '$ROLE'" | grep -qx 1; then
  printf "alter role %s with login password '%s';\n" "$ROLE" "$PW" | as_postgres >/dev/null
else
  log "creating role $ROLE"
  printf "create role %s with login password '%s';\n" "$ROLE" "$PW" | as_postgres >/dev/null
fi
if ! as_postgres -tAc "select 1 from pg_database where datname = '$DB'" | grep -qx 1; then
  log "creating database $DB"
  as_postgres -c "create database $DB owner $ROLE" >/dev/null
fi
can_login || die "role $ROLE cannot log into $DB on 127.0.0.1:$PORT (check pg_hba.conf of $VER/$CLUSTER)"
echo "$DSN"
