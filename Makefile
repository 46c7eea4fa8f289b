# Onboard: the two commands are `make run` and `make test`.
CARGO ?= cargo

.PHONY: run test try services fmt lint check ci doc bench bench-webhooks fuzz-api

## Start the server. No configuration: embedded in-memory mode on 127.0.0.1:8080, codes in the
## log and echoed as dev_code. Set DATABASE_URL and REDIS_URL for Postgres + Redis.
## Built with the test build's features (`--workspace --all-features`), so `make run` and
## `make test` share every compiled crate in target/ (CARGO_TARGET_DIR when set).
run:
	$(CARGO) build --workspace --all-features --bin onboard
	"$${CARGO_TARGET_DIR:-target}/debug/onboard" serve

## The README's "Try it" against a running `make run` (ONBOARD_URL to point elsewhere).
try:
	@scripts/try.sh

## Every test: unit, adapters against the real Postgres and Redis, end to end on both wirings.
test: services
	$(CARGO) test --workspace --all-features --no-fail-fast

## Load test on Postgres + Redis (release build, about 5 minutes): prints a table and writes
## bench/results.json. BENCH_SECONDS (per scenario) and BENCH_MEMBERS (tiers) scale it down.
bench:
	CARGO="$(CARGO)" scripts/bench.sh

## Fuzz the API against its OpenAPI document with schemathesis (every check, bounded examples,
## both wirings; about a minute). Needs python3; installs schemathesis in a venv once.
fuzz-api: services
	CARGO="$(CARGO)" scripts/schemathesis.sh

## The fan-out of outgoing webhooks: 1,000 events x 10 endpoints to a local receiver.
bench-webhooks:
	CARGO="$(CARGO)" scripts/bench-webhooks.sh

## Make sure Postgres and Redis answer (start or install them).
services:
	@scripts/ensure-services.sh

fmt:
	$(CARGO) fmt --all

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --all-features -- -D warnings

doc:
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --workspace --no-deps

## What CI runs.
ci:
	bash .ci/run
