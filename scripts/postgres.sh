#!/usr/bin/env bash
# A throwaway PostgreSQL for the store tests: its own cluster in a temp dir, trust auth,
# listening on 127.0.0.1 only, on a free port, with a `fournil_test` database.
#
# Sourced by scripts/test.sh, which calls `postgres_start` and traps `postgres_stop`.
# By hand:   eval "$(bash scripts/postgres.sh start)"   … run pytest …   bash scripts/postgres.sh stop
#
# On success `postgres_start` exports FOURNIL_TEST_POSTGRES_URL (what tests/store reads) and
# FOURNIL_TEST_POSTGRES_DIR (what `postgres_stop` removes). When PostgreSQL cannot be found
# or started it says why on stderr and returns 0 without the variable: the PostgreSQL tests
# then skip, the SQLite ones still run. Missing binaries are installed from Debian's packages
# when running as root with apt-get (CI); nothing is installed otherwise.

_pg_log() { echo "postgres.sh: $*" >&2; }

# Prints the directory holding initdb and pg_ctl, or nothing.
_pg_bindir() {
  local initdb pgctl dir
  initdb="$(command -v initdb 2>/dev/null || true)"
  pgctl="$(command -v pg_ctl 2>/dev/null || true)"
  if [ -n "$initdb" ] && [ -n "$pgctl" ]; then
    dirname "$(readlink -f "$pgctl")"
    return
  fi
  for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    if [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ]; then
      echo "$dir"
      return
    fi
  done
}

# Installs Debian's `postgresql` without creating or starting its default cluster.
_pg_install() {
  local policy=/usr/sbin/policy-rc.d added_policy=0 status=0
  _pg_log "PostgreSQL not found: installing Debian's postgresql package"
  mkdir -p /etc/postgresql-common/createcluster.d
  echo "create_main_cluster = false" >/etc/postgresql-common/createcluster.d/fournil-no-main.conf
  if [ ! -e "$policy" ]; then  # no service may start during the install
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && added_policy=1
  fi
  local apt=(apt-get -q -y --no-install-recommends -o Dpkg::Options::=--force-confdef
    -o Dpkg::Options::=--force-confold install postgresql)
  local log
  log="$(mktemp "${TMPDIR:-/tmp}/fournil-apt.XXXXXX")"
  if ! DEBIAN_FRONTEND=noninteractive "${apt[@]}" </dev/null >"$log" 2>&1; then
    # A fresh machine may have no package lists yet.
    DEBIAN_FRONTEND=noninteractive apt-get -q update </dev/null >>"$log" 2>&1 || true
    DEBIAN_FRONTEND=noninteractive "${apt[@]}" </dev/null >>"$log" 2>&1 || status=$?
  fi
  [ "$status" = 0 ] || tail -n 20 "$log" >&2
  rm -f "$log"
  [ "$added_policy" = 1 ] && rm -f "$policy"
  return "$status"
}

# Runs a command as the cluster's owner (PostgreSQL refuses to run as root).
_pg_as_owner() {
  if [ "$(id -u)" = 0 ]; then
    # From /, which the postgres user can read whatever the caller's directory is.
    if command -v runuser >/dev/null 2>&1; then
      (cd / && runuser -u postgres -- "$@")
    else
      (cd / && su postgres -s /bin/sh -c "$(printf '%q ' "$@")")
    fi
  else
    "$@"
  fi
}

_pg_free_port() {
  local python
  python="$(command -v python3 || echo .venv/bin/python)"
  "$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

postgres_start() {
  local bindir dir port attempt started=0
  bindir="$(_pg_bindir)"
  if [ -z "$bindir" ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      _pg_install || _pg_log "apt-get install postgresql failed"
      bindir="$(_pg_bindir)"
    else
      _pg_log "skipping PostgreSQL tests: initdb/pg_ctl not found (install PostgreSQL, or run as root with apt-get)"
      return 0
    fi
  fi
  if [ -z "$bindir" ]; then
    _pg_log "skipping PostgreSQL tests: initdb/pg_ctl still not found after installing"
    return 0
  fi
  if [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then
    useradd --system --no-create-home --shell /bin/sh postgres 2>/dev/null || true
    if ! id postgres >/dev/null 2>&1; then
      _pg_log "skipping PostgreSQL tests: running as root and there is no postgres user to run the server"
      return 0
    fi
  fi

  dir="$(mktemp -d "${TMPDIR:-/tmp}/fournil-pg.XXXXXX")"
  export FOURNIL_TEST_POSTGRES_DIR="$dir" FOURNIL_TEST_POSTGRES_BINDIR="$bindir"
  [ "$(id -u)" = 0 ] && chown postgres: "$dir"
  chmod 700 "$dir"
  if ! _pg_as_owner "$bindir/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --no-locale --no-sync \
    >"$dir/initdb.log" 2>&1; then
    _pg_log "skipping PostgreSQL tests: initdb failed:"
    tail -n 20 "$dir/initdb.log" >&2
    postgres_stop
    return 0
  fi
  # A port chosen free can be taken before the server binds it: try a few.
  for attempt in 1 2 3; do
    port="$(_pg_free_port)"
    if _pg_as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
      -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
      start >/dev/null 2>&1; then
      started=1
      break
    fi
    _pg_log "start attempt $attempt on port $port failed"
  done
  if [ "$started" != 1 ]; then
    _pg_log "skipping PostgreSQL tests: the server did not start:"
    tail -n 20 "$dir/server.log" >&2 2>/dev/null || true
    postgres_stop
    return 0
  fi
  local createdb="$bindir/createdb"
  [ -x "$createdb" ] || createdb="$(command -v createdb || echo createdb)"
  if ! _pg_as_owner "$createdb" -h 127.0.0.1 -p "$port" -U postgres fournil_test >"$dir/createdb.log" 2>&1; then
    _pg_log "skipping PostgreSQL tests: createdb failed:"
    cat "$dir/createdb.log" >&2
    postgres_stop
    return 0
  fi
  export FOURNIL_TEST_POSTGRES_URL="postgresql://postgres@127.0.0.1:$port/fournil_test"
  _pg_log "PostgreSQL $("$bindir/pg_ctl" --version | awk '{print $3}') on 127.0.0.1:$port ($dir)"
}

# Stops the server started by postgres_start (if any) and removes its directory.
postgres_stop() {
  local dir="${FOURNIL_TEST_POSTGRES_DIR:-}" bindir="${FOURNIL_TEST_POSTGRES_BINDIR:-}" pid
  [ -n "$dir" ] && [ -d "$dir" ] || return 0
  if [ -f "$dir/data/postmaster.pid" ]; then
    [ -n "$bindir" ] || bindir="$(_pg_bindir)"
    if [ -z "$bindir" ] || ! _pg_as_owner "$bindir/pg_ctl" -D "$dir/data" -m fast -w -t 30 stop \
      >/dev/null 2>&1; then
      pid="$(head -n 1 "$dir/data/postmaster.pid" 2>/dev/null || true)"
      if [ -n "$pid" ]; then
        kill -QUIT "$pid" 2>/dev/null || true  # immediate shutdown of this postmaster only
        sleep 1
        kill -KILL "$pid" 2>/dev/null || true
      fi
    fi
  fi
  rm -rf "$dir"
  unset FOURNIL_TEST_POSTGRES_URL FOURNIL_TEST_POSTGRES_DIR FOURNIL_TEST_POSTGRES_BINDIR
}

# Executed rather than sourced: `start` prints the exports for eval, `stop` undoes them.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  case "${1:-}" in
    start)
      postgres_start
      if [ -n "${FOURNIL_TEST_POSTGRES_URL:-}" ]; then
        printf 'export FOURNIL_TEST_POSTGRES_URL=%q FOURNIL_TEST_POSTGRES_DIR=%q FOURNIL_TEST_POSTGRES_BINDIR=%q\n' \
          "$FOURNIL_TEST_POSTGRES_URL" "$FOURNIL_TEST_POSTGRES_DIR" "$FOURNIL_TEST_POSTGRES_BINDIR"
      fi
      ;;
    stop) postgres_stop ;;
    *)
      echo "usage: bash scripts/postgres.sh start|stop (or source it and call postgres_start/postgres_stop)" >&2
      exit 2
      ;;
  esac
fi
