#!/usr/bin/env bash
# The README's "Try it", as one script: signs in with a code, reads the profile, creates a group
# and an invite, adds a test card on the simulated gateway, starts the Pro trial, buys SMS credit
# and reads the plans. Prints each call and its answer; stops at the first unexpected answer.
#
#   make run               # in one terminal
#   scripts/try.sh         # in another
#
# ONBOARD_URL (default http://127.0.0.1:8080) is the server; PHONE (default: a random
# +7917… number, so the script can run again at once) the phone to sign in with. The code comes
# from the answer's `dev_code` (embedded mode, or OTP_ECHO=true); without it (PostgreSQL mode),
# set CODE, or type the code the server's log shows ("SMS sent … Your Onboard code: …").
# Needs bash and curl only (no jq).
set -euo pipefail

BASE="${ONBOARD_URL:-http://127.0.0.1:8080}"
PHONE="${PHONE:-+7917$(printf '%07d' $(((RANDOM * 32768 + RANDOM) % 10000000)))}"
SLUG="acme-$(printf '%05d' $((RANDOM % 100000)))"
TOKEN=""

# field NAME JSON: the first string value of "NAME" in JSON (enough for these answers).
field() {
  sed -n "s/.*\"$1\"[[:space:]]*:[[:space:]]*\"\([^\"]*\)\".*/\1/p" <<<"$2" | head -n 1
}

# call METHOD PATH [BODY [HEADER...]]: prints the call and the answer; fails on a non-2xx.
call() {
  local method=$1 path=$2 body=${3:-}
  shift $(($# < 3 ? $# : 3))
  local args=(-sS -X "$method" -w '\n%{http_code}' "$BASE$path")
  [[ -n $TOKEN ]] && args+=(-H "authorization: Bearer $TOKEN")
  [[ -n $body ]] && args+=(-H 'content-type: application/json' -d "$body")
  for header in "$@"; do args+=(-H "$header"); done
  echo "\$ curl -X $method $path ${body:+-d '$body'}" >&2
  local out status
  out=$(curl "${args[@]}") || { echo "try.sh: is the server running at $BASE? (make run)" >&2; exit 1; }
  status=${out##*$'\n'}
  ANSWER=${out%$'\n'*}
  echo "  $status $ANSWER" >&2
  echo >&2
  if [[ $status != 2* ]]; then
    echo "try.sh: $method $path answered $status" >&2
    exit 1
  fi
}

echo "== sign in with a one-time code ($PHONE)" >&2
call POST /api/v1/auth/otp "{\"phone\": \"$PHONE\"}"
CODE="${CODE:-$(field dev_code "$ANSWER")}"
if [[ -z $CODE ]]; then
  if [[ -t 0 ]]; then
    read -r -p "No dev_code in the answer (OTP_ECHO is off): the code in the server's log? " CODE
  else
    echo "try.sh: no dev_code (OTP_ECHO is off): set CODE to the code in the server's log" >&2
    exit 1
  fi
fi
call POST /api/v1/auth/otp/verify "{\"phone\": \"$PHONE\", \"code\": \"$CODE\"}"
TOKEN=$(field access_token "$ANSWER")

echo "== your profile" >&2
call GET /api/v1/members/me

echo "== a group, an invite, and its preview (no sign-in needed for the preview)" >&2
call POST /api/v1/groups "{\"name\": \"Acme\", \"slug\": \"$SLUG\"}"
call POST "/api/v1/groups/$SLUG/invites" '{"name": "Bob", "phone": "+79174445577"}'
INVITE=$(field code "$ANSWER")
call GET "/api/v1/invites/$INVITE"

echo "== billing on the simulated gateway: a test card, then the Pro trial" >&2
call GET /api/v1/plans
call POST "/api/v1/groups/$SLUG/billing/cards/prepare"
CUSTOMER_UID=$(field customer_uid "$ANSWER")
SAVED_TOKEN=$TOKEN TOKEN=""
call POST "/sim/portone/subscribe/customers/$CUSTOMER_UID" \
  '{"card_number": "4242 4242 4242 4242", "expiry": "2030-12", "birth": "900101", "pwd_2digit": "00"}'
TOKEN=$SAVED_TOKEN
call POST "/api/v1/groups/$SLUG/billing/cards" "{\"customer_uid\": \"$CUSTOMER_UID\"}"
call PUT "/api/v1/groups/$SLUG/billing/plan" '{"plan": "pro", "interval": "month"}' \
  "idempotency-key: plan-$SLUG"

echo "== SMS credit: buy 10,000 KRW, refill 10,000 below 1,000, read the ledger" >&2
call POST "/api/v1/groups/$SLUG/billing/sms-credit" '{"amount": 10000}' "idempotency-key: credit-$SLUG"
call PUT "/api/v1/groups/$SLUG/billing/sms-credit/auto-topup" '{"below": 1000, "amount": 10000}'
call GET "/api/v1/groups/$SLUG/billing/sms-credit/ledger"

echo "try.sh: every step answered 2xx (group $SLUG, signed in as $PHONE)" >&2
