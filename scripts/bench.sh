#!/usr/bin/env bash
# `make bench`: builds the release binaries, then for each member tier: a fresh database, the
# migrations, the seed (bench/seed.sql), the server on Postgres + Redis with its own Redis key
# prefix, limits raised and OTP echo on, the scenarios (onboard-bench run), the server stopped,
# the database dropped and the Redis keys deleted. Then it prints the table and leaves the
# results in bench/results.json. See bench/README.md.
#
#   BENCH_SECONDS      seconds per scenario (10)
#   BENCH_MEMBERS      seeded members, one tier per number ("10000 1000000")
#   BENCH_CONCURRENCY  connections (64)
#   BENCH_SCENARIOS    comma-separated subset (all)
#   BENCH_WORKERS      server HTTP workers (ONBOARD_WORKERS; the number of cores by default)
#   BENCH_LOG          the server's RUST_LOG (warn)
#   BENCH_PG           Postgres server URL without a database (postgres://postgres@127.0.0.1:5432)
#   BENCH_REDIS        Redis URL (redis://127.0.0.1:6379)
#   BENCH_BIN_DIR      run the `onboard` and `onboard-bench` binaries of this folder instead of
#                      building them (to compare two builds, alternating)
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_PER=${BENCH_SECONDS:-10}
TIERS=${BENCH_MEMBERS:-10000 1000000}
CONCURRENCY=${BENCH_CONCURRENCY:-64}
PG=${BENCH_PG:-postgres://postgres@127.0.0.1:5432}
REDIS=${BENCH_REDIS:-redis://127.0.0.1:6379}
RESULTS=bench/results.json
CARGO=${CARGO:-cargo}
TARGET_DIR=${CARGO_TARGET_DIR:-target}

say() { echo "bench: $*" >&2; }
started=$(date +%s)

scripts/ensure-services.sh
if [[ -n ${BENCH_BIN_DIR:-} ]]; then
  say "running the binaries in $BENCH_BIN_DIR"
  SERVER_BIN=$BENCH_BIN_DIR/onboard
  BENCH_BIN=$BENCH_BIN_DIR/onboard-bench
else
  say "building release binaries"
  $CARGO build --release -p onboard-server -p onboard-bench
  SERVER_BIN=$TARGET_DIR/release/onboard
  BENCH_BIN=$TARGET_DIR/release/onboard-bench
fi

run_id="$(date +%s)_$$"
workdir=$(mktemp -d "${TMPDIR:-/tmp}/onboard-bench.XXXXXX")
server_pid= db= prefix=

redis_cleanup() { # deletes every key under $prefix
  [[ -n $prefix ]] || return 0
  redis-cli -u "$REDIS" --scan --pattern "${prefix}*" \
    | xargs -r -n 1000 redis-cli -u "$REDIS" unlink >/dev/null || true
}

stop_tier() {
  if [[ -n $server_pid ]]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=
  fi
  if [[ -n $db ]]; then
    dropdb --if-exists --force --maintenance-db="$PG/postgres" "$db" || say "could not drop database $db"
    db=
  fi
  redis_cleanup
  prefix=
}

on_exit() {
  local status=$?
  stop_tier
  if [[ $status -ne 0 ]]; then
    say "failed; server logs kept in $workdir"
  else
    rm -rf "$workdir"
  fi
}
trap on_exit EXIT
trap 'exit 130' INT TERM

free_port() { # a port nothing listens on
  local port
  for _ in $(seq 1 50); do
    port=$((20000 + RANDOM % 20000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then echo "$port"; return 0; fi
  done
  say "no free port found"; return 1
}

rm -f "$RESULTS"
scenario_args=()
[[ -n ${BENCH_SCENARIOS:-} ]] && scenario_args=(--scenarios "$BENCH_SCENARIOS")

for members in $TIERS; do
  tier_started=$(date +%s)
  db="onboard_bench_${run_id}_${members}"
  prefix="bench-${run_id}-${members}:"
  url="$PG/$db"
  say "tier $members: database $db"
  createdb --maintenance-db="$PG/postgres" "$db"
  DATABASE_URL=$url REDIS_URL=$REDIS RUST_LOG=warn "$SERVER_BIN" migrate

  seed_started=$(date +%s%N)
  psql -q -d "$url" -v members="$members" -f bench/seed.sql
  say "seeded $members members in $(( ($(date +%s%N) - seed_started) / 1000000 )) ms"

  port=$(free_port)
  log="$workdir/server-$members.log"
  env DATABASE_URL="$url" REDIS_URL="$REDIS" REDIS_KEY_PREFIX="$prefix" \
    ONBOARD_ADDR="127.0.0.1:$port" MIGRATE_ON_START=false \
    OTP_ECHO=true OTP_RESEND_INTERVAL=0 \
    OTP_MAX_SENDS_PER_HOUR=1000000000 OTP_MAX_SENDS_PER_IP_HOUR=1000000000 \
    OTP_MAX_VERIFIES_PER_IP=1000000000 OTP_MAX_FAILURES_PER_HOUR=1000000000 \
    ${BENCH_WORKERS:+ONBOARD_WORKERS=$BENCH_WORKERS} \
    RUST_LOG="${BENCH_LOG:-warn}" \
    "$SERVER_BIN" serve >"$log" 2>&1 &
  server_pid=$!

  "$BENCH_BIN" run --url "http://127.0.0.1:$port" --server-pid "$server_pid" \
    --database "$db" --members "$members" --seconds "$SECONDS_PER" --concurrency "$CONCURRENCY" \
    --results "$RESULTS" "${scenario_args[@]}"

  if ! kill -0 "$server_pid" 2>/dev/null; then
    say "the server died during tier $members"; tail -20 "$log" >&2; exit 1
  fi
  stop_tier
  say "tier $members done in $(( $(date +%s) - tier_started )) s"
done

echo
"$BENCH_BIN" table --results "$RESULTS"
say "results in $RESULTS; whole run $(( $(date +%s) - started )) s"
