//! The Redis adapters against a real Redis (`TEST_REDIS_URL`, default
//! `redis://127.0.0.1:6379`). Every test works under its own key prefix and deletes its keys
//! at the end, so tests run in parallel and leave nothing behind.

#![allow(clippy::unwrap_used)]

mod support;

mod invites;
mod limiter;
mod otp;
mod pool;
mod revocations;
mod sso;
