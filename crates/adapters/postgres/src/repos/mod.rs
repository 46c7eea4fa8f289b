//! One repository per domain port.

pub(crate) mod groups;
pub(crate) mod invites;
pub(crate) mod members;
pub(crate) mod referrals;
pub(crate) mod sessions;
// sso
pub(crate) mod sso;
// admin
pub(crate) mod admin;
// notify
pub(crate) mod notifications;
// billing-pg
pub(crate) mod billing;
// billing-pg
pub(crate) mod jobs;
// sms-credit
pub(crate) mod sms_credit;
// messaging
pub(crate) mod messages;
// billnote
pub(crate) mod billing_notices;
// credit
pub(crate) mod credit;
