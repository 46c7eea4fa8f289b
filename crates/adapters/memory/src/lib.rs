//! In-process adapters for Onboard's ports: the embedded mode and fast tests.
//!
//! Each adapter keeps its state behind one mutex, so every port call is atomic, like the
//! transaction or Lua script its PostgreSQL or Redis twin runs, and follows the same rules:
//! the same end-to-end suite runs on both. State lives as long as the value (share it with
//! `Arc`); nothing is persisted.
//!
//! - [`MemoryOtpStore`]: one-time codes and their per-phone limits.
//! - [`MemoryRateLimiter`]: rolling-window counters.
//! - [`MemoryRevocationList`]: revoked sessions and members, expiring after their TTL.
//! - [`MemoryInviteCodeStore`]: live invite codes, expiring after their TTL.
//! - [`MemoryStore`]: members, sessions, referrals, groups and invites ([`MemberRepository`],
//!   [`SessionRepository`], [`ReferralRepository`], [`GroupRepository`] and
//!   [`InviteRepository`]).
//! - [`MemorySsoStateStore`]: pending single sign-on logins and login grants, taken once. The
//!   [`MemoryStore`] is also the single sign-on `IdentityRepository` (provider identities).
//!
//! - [`MemoryBillingStore`]: the payments storage ports (billing, cards, usage, idempotency).
//! - [`MemoryJobQueue`]: the job queue (`onboard_kernel::jobs::JobQueue`).
//! - The [`MemoryStore`] is also the messaging `MessageRepository` (group messages and their
//!   outbox, paid from the SMS credit under the same lock).
//!
//! [`GroupRepository`]: onboard_groups::ports::GroupRepository
//! [`InviteRepository`]: onboard_invites::ports::InviteRepository
//! [`MemberRepository`]: onboard_members::ports::MemberRepository
//! [`SessionRepository`]: onboard_members::ports::SessionRepository
//! [`ReferralRepository`]: onboard_referrals::ports::ReferralRepository

mod billing;
mod invite_codes;
mod jobs;
mod otp;
mod rate_limiter;
mod revocations;
mod sso_states;
mod store;
mod window;

pub use billing::MemoryBillingStore;
pub use invite_codes::MemoryInviteCodeStore;
pub use otp::MemoryOtpStore;
pub use rate_limiter::MemoryRateLimiter;
pub use revocations::MemoryRevocationList;
pub use sso_states::MemorySsoStateStore;
pub use store::MemoryStore;
mod notification_bus;
pub use jobs::MemoryJobQueue;
pub use notification_bus::{MemoryNotificationBus, MemoryStreamTicketStore};
