//! End-to-end tests of the HTTP API (`shared/spec/api-v1.md`): a real server on a free port,
//! talked to over HTTP like any client. Each test runs on both wirings, the in-memory one and
//! PostgreSQL + Redis (`TEST_REDIS_URL`, default `redis://127.0.0.1:6379`; the database comes
//! from `onboard_postgres::testing::TestDatabase`). `TEST_LOG=1` shows the server's logs.

#![allow(clippy::unwrap_used)]

mod helpers;
mod process;

mod admin;
mod auth;
mod bad_input;
mod container;
mod groups;
mod invites;
mod logs;
mod members;
mod newcomer;
mod operations;
mod payments;
mod races;
mod referrals;
mod sessions;
mod sms_providers;
mod sso;
mod traces;
mod two_instances;

mod compat_connect_hub;
mod compat_fidelity;
mod compat_member_invitation;
mod compat_referral_api;
mod messages;
mod notifications;
mod sms_credit;
mod webhooks;
mod webhooks_instances;
