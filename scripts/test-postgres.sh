#!/usr/bin/env bash
# Runs COMMAND with STRATUS_TEST_DATABASE=postgres://... naming a PostgreSQL
# database that exists only for this run:
#   scripts/test-postgres.sh COMMAND [ARG...]
#
# - When STRATUS_TEST_DATABASE is already set and that server answers, it is used
#   as is: nothing is created or removed.
# - Otherwise a throwaway cluster is made with Debian's initdb
#   (/usr/lib/postgresql/<newest>/bin) in a temp dir owned by user postgres (or by
#   the calling user when not root), listening on a unix socket in that dir and on
#   127.0.0.1 at a free port, with one database and a random password. It is
#   stopped and removed when this script exits, also on failure or a signal.
#
# Exits with COMMAND's status, or 2 when no server could be made available.
set -uo pipefail

die() { echo "test-postgres: $*" >&2; exit 2; }
[ $# -gt 0 ] || die "usage: $0 COMMAND [ARG...]"

if [ -n "${STRATUS_TEST_DATABASE:-}" ]; then
  if command -v pg_isready >/dev/null && pg_isready -q -t 5 -d "$STRATUS_TEST_DATABASE"; then
    echo "test-postgres: using the server in STRATUS_TEST_DATABASE" >&2
    exec "$@"
  fi
  echo "test-postgres: STRATUS_TEST_DATABASE does not answer; starting a throwaway cluster" >&2
fi

bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
{ [ -n "$bindir" ] && [ -x "$bindir/initdb" ]; } || die "no /usr/lib/postgresql/*/bin/initdb (apt-get install postgresql)"

# initdb refuses to run as root: as root the cluster belongs to user postgres.
if [ "$(id -u)" = 0 ]; then
  id postgres >/dev/null 2>&1 || die "user postgres does not exist"
  as_owner() { runuser -u postgres -- "$@"; }
else
  as_owner() { "$@"; }
fi

free_port() {
  if command -v node >/dev/null; then
    node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
  else
    /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
  fi
}

# /tmp rather than $TMPDIR: user postgres must be able to reach the directory.
tmp=$(mktemp -d /tmp/stratus-pg.XXXXXX) || die "mktemp failed"
started=
cleanup() {
  if [ -n "$started" ]; then
    as_owner "$bindir/pg_ctl" -D "$tmp/data" -m fast -w -t 30 stop >/dev/null 2>&1 || true
    # If pg_ctl could not stop it, end the postmaster by the PID it recorded.
    if [ -f "$tmp/data/postmaster.pid" ]; then
      pid=$(head -n 1 "$tmp/data/postmaster.pid")
      [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
    fi
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

chmod 700 "$tmp"
mkdir "$tmp/sock"
password=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
printf '%s\n' "$password" >"$tmp/pwfile"
[ "$(id -u)" = 0 ] && chown -R postgres: "$tmp"

as_owner "$bindir/initdb" -D "$tmp/data" -U stratus --pwfile="$tmp/pwfile" -E UTF8 --no-locale \
  --auth-local=trust --auth-host=scram-sha-256 --no-sync --no-instructions >"$tmp/initdb.log" 2>&1 \
  || { cat "$tmp/initdb.log" >&2; die "initdb failed"; }
rm -f "$tmp/pwfile"

# A free port can be taken between the probe and the bind: try a few.
for attempt in 1 2 3 4 5; do
  port=$(free_port) || die "could not find a free port"
  started=1
  if as_owner "$bindir/pg_ctl" -D "$tmp/data" -l "$tmp/postgres.log" -w -t 30 \
       -o "-c listen_addresses=127.0.0.1 -p $port -k $tmp/sock -c max_connections=200 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
       start >/dev/null; then
    break
  fi
  started=
  grep -q 'could not bind\|already in use' "$tmp/postgres.log" 2>/dev/null || { cat "$tmp/postgres.log" >&2; die "postgres did not start"; }
  [ "$attempt" = 5 ] && die "postgres could not bind a port"
done

as_owner "$bindir/psql" -q -h "$tmp/sock" -p "$port" -U stratus -d postgres -c 'CREATE DATABASE stratus_test' \
  || die "could not create the test database"

export STRATUS_TEST_DATABASE="postgres://stratus:$password@127.0.0.1:$port/stratus_test"
echo "test-postgres: throwaway PostgreSQL $(basename "$(dirname "$bindir")") on 127.0.0.1:$port ($tmp)" >&2

# Not exec: the trap must run after COMMAND to stop and remove the cluster.
"$@"
