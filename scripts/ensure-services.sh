#!/usr/bin/env bash
# Makes sure PostgreSQL (127.0.0.1:5432, user postgres, trust auth) and Redis (127.0.0.1:6379)
# answer: starts them when installed but stopped, installs them with apt on Debian/Ubuntu when
# missing (as root), and otherwise says exactly what to install.
set -euo pipefail

PG_HOST=127.0.0.1 PG_PORT=5432 REDIS_PORT=6379

answers() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
say() { echo "ensure-services: $*" >&2; }
is_root() { [[ $(id -u) -eq 0 ]]; }
have() { command -v "$1" >/dev/null 2>&1; }

wait_for() { # port, name
  for _ in $(seq 1 50); do answers "$1" && return 0; sleep 0.2; done
  say "$2 did not start on port $1"; return 1
}

apt_install() {
  if is_root && have apt-get; then
    say "installing $* with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq "$@" >/dev/null
  else
    say "please install: $* (Debian/Ubuntu: sudo apt-get install $*; macOS: brew install postgresql redis), then run this again"
    exit 1
  fi
}

pg_trust() { # local connections as postgres without a password, as our tests expect
  local hba
  hba=$(ls /etc/postgresql/*/main/pg_hba.conf 2>/dev/null | head -1 || true)
  if [[ -n $hba ]] && is_root && grep -Eq '^host\s+all\s+all\s+(127\.0\.0\.1/32|::1/128)\s+(scram-sha-256|md5)' "$hba"; then
    say "setting trust auth for loopback in $hba"
    sed -ri 's/^(host\s+all\s+all\s+(127\.0\.0\.1\/32|::1\/128)\s+)(scram-sha-256|md5)/\1trust/' "$hba"
    pg_ctlcluster --skip-systemctl-redirect "$(basename "$(dirname "$(dirname "$hba")")")" main reload >/dev/null 2>&1 || true
  fi
}

# PostgreSQL
if ! answers $PG_PORT; then
  if ! have pg_ctlcluster && ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
    apt_install postgresql
  fi
  version=$(ls /etc/postgresql | sort -V | tail -1)
  say "starting PostgreSQL $version"
  pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  wait_for $PG_PORT PostgreSQL
fi
pg_trust

# Redis
if ! answers $REDIS_PORT; then
  have redis-server || apt_install redis-server
  say "starting Redis"
  mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port $REDIS_PORT --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log >/dev/null
  wait_for $REDIS_PORT Redis
fi
say "PostgreSQL on $PG_HOST:$PG_PORT and Redis on 127.0.0.1:$REDIS_PORT answer"
