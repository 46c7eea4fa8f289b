#!/usr/bin/env bash
# `make bench-webhooks`: the fan-out of outgoing webhooks. Builds the binaries, starts the
# server on a fresh database (Postgres + Redis, WEBHOOKS_ALLOW_PRIVATE=true, OTP echo, limits
# raised), runs `onboard-bench webhooks` (1,000 events x 10 endpoints to a receiver in the bench
# process), then stops the server and drops the database.
#
#   BENCH_PROFILE    release (default) or dev
#   BENCH_EVENTS     events (1000)       BENCH_ENDPOINTS  endpoints (10)
#   BENCH_PG         Postgres server URL without a database (postgres://postgres@127.0.0.1:5432)
#   BENCH_REDIS      Redis URL (redis://127.0.0.1:6379)
set -euo pipefail
cd "$(dirname "$0")/.."

PROFILE=${BENCH_PROFILE:-release}
PG=${BENCH_PG:-postgres://postgres@127.0.0.1:5432}
REDIS=${BENCH_REDIS:-redis://127.0.0.1:6379}
CARGO=${CARGO:-cargo}
TARGET_DIR=${CARGO_TARGET_DIR:-target}
say() { echo "bench-webhooks: $*" >&2; }

scripts/ensure-services.sh
say "building ($PROFILE)"
$CARGO build --profile "$PROFILE" -p onboard-server -p onboard-bench
dir=$PROFILE; [[ $PROFILE == dev ]] && dir=debug
SERVER_BIN=$TARGET_DIR/$dir/onboard
BENCH_BIN=$TARGET_DIR/$dir/onboard-bench

run_id="$(date +%s)_$$"
db="onboard_bench_webhooks_${run_id}"
prefix="bench-webhooks-${run_id}:"
log=$(mktemp "${TMPDIR:-/tmp}/onboard-bench-webhooks.XXXXXX")
server_pid=
cleanup() {
  [[ -n $server_pid ]] && { kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; }
  dropdb --if-exists --force --maintenance-db="$PG/postgres" "$db" || true
  redis-cli -u "$REDIS" --scan --pattern "${prefix}*" | xargs -r -n 1000 redis-cli -u "$REDIS" unlink >/dev/null || true
}
trap cleanup EXIT

createdb --maintenance-db="$PG/postgres" "$db"
DATABASE_URL="$PG/$db" REDIS_URL=$REDIS RUST_LOG=warn "$SERVER_BIN" migrate
port=$((20000 + RANDOM % 20000))
env DATABASE_URL="$PG/$db" REDIS_URL="$REDIS" REDIS_KEY_PREFIX="$prefix" \
  ONBOARD_ADDR="127.0.0.1:$port" MIGRATE_ON_START=false WEBHOOKS_ALLOW_PRIVATE=true \
  OTP_ECHO=true OTP_RESEND_INTERVAL=0 \
  OTP_MAX_SENDS_PER_HOUR=1000000000 OTP_MAX_SENDS_PER_IP_HOUR=1000000000 \
  OTP_MAX_VERIFIES_PER_IP=1000000000 OTP_MAX_FAILURES_PER_HOUR=1000000000 \
  RUST_LOG=warn "$SERVER_BIN" serve >"$log" 2>&1 &
server_pid=$!
for _ in $(seq 1 200); do
  curl -fs "http://127.0.0.1:$port/health/ready" >/dev/null 2>&1 && break
  sleep 0.1
done
"$BENCH_BIN" webhooks --url "http://127.0.0.1:$port" \
  --events "${BENCH_EVENTS:-1000}" --endpoints "${BENCH_ENDPOINTS:-10}"
