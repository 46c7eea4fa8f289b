//! One repository per domain port.

pub(crate) mod admin;
pub(crate) mod billing;
pub(crate) mod billing_events;
pub(crate) mod groups;
pub(crate) mod invites;
pub(crate) mod jobs;
pub(crate) mod members;
pub(crate) mod messages;
pub(crate) mod notifications;
pub(crate) mod outbox;
pub(crate) mod referrals;
pub(crate) mod sessions;
pub(crate) mod sms_credit;
pub(crate) mod sso;
pub(crate) mod webhooks;
