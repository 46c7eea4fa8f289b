//! # onboard-admin
//!
//! Platform administration as a pure domain: who is a platform admin (granted through the
//! command line, or listed in `ADMIN_PHONES`), member and group search for admins, blocking a
//! member (every session revoked at once, sign-in refused), platform stats, and an audit trail
//! written in the same transaction as every admin action. The crate does no I/O itself: it
//! talks to storage through [`ports::AdminRepository`] and [`ports::OtpStats`], and to the
//! access-token revocation list of `onboard-members`.
//!
//! It is a crate of its own, not a module of `onboard-members`, because its use cases read
//! across members, groups, referrals and one-time codes; the members domain only learns that a
//! member can be blocked (its sign-in refuses them).
//!
//! ```
//! use std::sync::Arc;
//! use onboard_admin::{AdminConfig, AdminPorts, AdminService, Standing};
//! use onboard_admin::ports::{AdminRepository, OtpStats};
//! use onboard_kernel::{Clock, MemberId, PhoneNumber};
//! use onboard_members::ports::RevocationList;
//!
//! # fn build(
//! #     repo: Arc<dyn AdminRepository>, otp_stats: Arc<dyn OtpStats>,
//! #     revocations: Arc<dyn RevocationList>, clock: Arc<dyn Clock>,
//! # ) -> anyhow::Result<AdminService> {
//! let service = AdminService::new(
//!     AdminPorts { repo, otp_stats, revocations, clock },
//!     AdminConfig {
//!         admin_phones: vec![PhoneNumber::parse("+79174445566", None)?],
//!         access_ttl_secs: 900,
//!     },
//! );
//! # Ok(service)
//! # }
//! # async fn check(service: AdminService, member: MemberId) -> anyhow::Result<()> {
//! // Listed in ADMIN_PHONES: an admin without any grant.
//! assert!(service.is_platform_admin(member).await?);
//! # Ok(())
//! # }
//! # #[cfg(feature = "mocks")]
//! # fn main() -> anyhow::Result<()> {
//! #     use onboard_admin::ports::{MockAdminRepository, MockOtpStats};
//! #     let mut repo = MockAdminRepository::new();
//! #     repo.expect_standing().returning(|_| Ok(Some(Standing {
//! #         phone: Some(PhoneNumber::from_trusted_e164("+79174445566")),
//! #         is_admin: false,
//! #         blocked: false,
//! #     })));
//! #     let service = build(
//! #         Arc::new(repo), Arc::new(MockOtpStats::new()),
//! #         Arc::new(onboard_members::ports::MockRevocationList::new()),
//! #         Arc::new(onboard_kernel::SystemClock),
//! #     )?;
//! #     tokio::runtime::Builder::new_current_thread().build()?.block_on(check(service, MemberId::new()))
//! # }
//! # #[cfg(not(feature = "mocks"))]
//! # fn main() {}
//! ```

mod directory;
pub mod error;
pub mod events;
pub mod model;
pub mod ports;
mod service;

pub use error::*;
pub use model::*;
pub use service::{AdminConfig, AdminPorts, AdminService};
