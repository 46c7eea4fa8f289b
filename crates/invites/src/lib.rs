//! # onboard-invites
//!
//! Invitations to groups by phone or e-mail, each with a single-use code, as a pure domain:
//! the crate does no I/O itself. It talks to the world through the traits in [`ports`] (an
//! [`ports::InviteRepository`] for the record of truth, an [`ports::InviteCodeStore`] for the
//! live codes) and to the groups domain through [`onboard_groups::GroupsService`], which makes
//! every permission decision. Onboard's adapters implement the ports for PostgreSQL, Redis and
//! memory, and you may bring your own.
//!
//! ## The rules
//!
//! - Inviting, listing and revoking need `invites.manage`; the invite's role (`member` unless
//!   named) must exist in the group and be one the inviter may grant: `owner` only by an
//!   owner, and never a role holding a permission the inviter lacks.
//! - An invite names a phone and/or an e-mail. Inviting someone who is already an active member,
//!   or who has a pending, unexpired invite to the group, is refused (storage settles races).
//! - The code (128 random bits) is shown once, in the answer to the inviter, and sent by SMS
//!   when the invite has a phone. It lives as long as the invite ([`InvitesConfig::ttl_secs`]).
//! - Anyone holding a live code may preview its invite; a signed-in member accepts it. An
//!   invite naming a phone is only for the member with that phone (a refusal leaves the code
//!   usable). A code works once (concurrent accepts: one wins); revoked, used and expired codes
//!   do not work at all. `expired` is derived: a pending invite past its `expires_at`.
//! - Accepting joins the group with the invite's role ([`AcceptOutcome::Joined`]), or waits
//!   for approval when the group requires it ([`AcceptOutcome::PendingApproval`]), or changes
//!   nothing for an active member ([`AcceptOutcome::AlreadyMember`]).
//! - Every change records its domain events ([`events`]): `invite.created`, `invite.accepted`
//!   (with the group's `group.member_joined` or `group.join_requested` when the membership
//!   changed) and `invite.revoked`, stored by the repository with the change. Who is told of
//!   them is for their consumers (the inviter is told of an accept by the notifications
//!   domain). An invite SMS paid from the group's SMS credit is named in the repository call
//!   ([`ports::SmsCharge`]).
//!
//! ## Using the service with your own adapters
//!
//! ```
//! use std::sync::Arc;
//! use async_trait::async_trait;
//! use onboard_groups::{GroupsService, RoleName, Slug};
//! use onboard_invites::ports::{InviteCodeStore, InviteRepository};
//! use onboard_invites::{CreateInvite, InviteeName, InvitesConfig, InvitesService};
//! use onboard_kernel::{MemberId, PhoneNumber, SystemClock};
//! use onboard_members::ports::SmsSender;
//!
//! /// An SMS sender of your own: here, one that prints.
//! struct PrintSms;
//!
//! #[async_trait]
//! impl SmsSender for PrintSms {
//!     async fn send(&self, to: &PhoneNumber, text: &str) -> anyhow::Result<()> {
//!         println!("to {to}: {text}");
//!         Ok(())
//!     }
//! }
//!
//! # fn build(
//! #     repo: Arc<dyn InviteRepository>, codes: Arc<dyn InviteCodeStore>, groups: GroupsService,
//! # ) -> InvitesService {
//! // `repo` and `codes` are your storage (their contracts are in the method docs) or Onboard's
//! // adapters; `groups` is the groups domain's service.
//! let config = InvitesConfig {
//!     ttl_secs: 24 * 3600,
//!     sms_text: "Join {group}: https://example.com/join/{code}".to_owned(),
//!     sms_billing: None,
//! };
//! let service =
//!     InvitesService::new(repo, codes, groups, Arc::new(PrintSms), Arc::new(SystemClock), config);
//! # service
//! # }
//! # async fn invite(service: InvitesService, me: MemberId) -> anyhow::Result<()> {
//! let request = CreateInvite {
//!     name: InviteeName::parse("Ann Lee")?,
//!     phone: Some(PhoneNumber::parse("+79174445566", None)?),
//!     email: None,
//!     role: None, // `member`
//! };
//! let created = service.create(&Slug::parse("acme")?, me, request).await?;
//! assert_eq!(created.invite.role, RoleName::MEMBER);
//! assert_eq!(created.code.as_str().len(), 22);
//! # Ok(())
//! # }
//! # // Runs for real with the `mocks` feature (stand-ins for storage); compiles only without.
//! # #[cfg(feature = "mocks")]
//! # fn main() -> anyhow::Result<()> {
//! #     use std::collections::BTreeSet;
//! #     use onboard_groups::{Group, GroupName, GroupsConfig, Membership, MembershipStatus};
//! #     use onboard_groups::ports::MockGroupRepository;
//! #     use onboard_invites::ports::{MockInviteCodeStore, MockInviteRepository};
//! #     use onboard_kernel::GroupId;
//! #     let me = MemberId::new();
//! #     let mut groups = MockGroupRepository::new();
//! #     groups.expect_find_for_member().returning(|slug, _| {
//! #         let group = Group {
//! #             id: GroupId::new(), slug: slug.clone(), name: GroupName::parse("Acme")?,
//! #             approval_required: false, created_at: chrono::Utc::now(),
//! #         };
//! #         let owner = Membership {
//! #             role: RoleName::OWNER, status: MembershipStatus::Active,
//! #             role_permissions: BTreeSet::new(),
//! #         };
//! #         Ok(Some((group, Some(owner))))
//! #     });
//! #     let groups = GroupsService::new(Arc::new(groups), GroupsConfig::default(), Arc::new(SystemClock));
//! #     let mut codes = MockInviteCodeStore::new();
//! #     codes.expect_put().times(1).returning(|_, _, _| Ok(()));
//! #     let mut repo = MockInviteRepository::new();
//! #     repo.expect_create().times(1).returning(|_, _| Ok(()));
//! #     let service = build(Arc::new(repo), Arc::new(codes), groups);
//! #     tokio::runtime::Builder::new_current_thread().build()?.block_on(invite(service, me))
//! # }
//! # #[cfg(not(feature = "mocks"))]
//! # fn main() {}
//! ```
//!
//! ## Testing your code against the mocks
//!
//! Enable the `mocks` feature in your `[dev-dependencies]`
//! (`onboard-invites = { version = "…", features = ["mocks"] }`) and every port has a mockall
//! twin (the feature also turns on the mocks of `onboard-groups` and `onboard-members`, to
//! build the services these ports work with). In your crate the test below carries
//! `#[tokio::test]`; here the example's hidden `main` runs it.
//!
//! ```
//! # #[cfg(feature = "mocks")]
//! # mod demo {
//! use onboard_invites::InviteCode;
//! use onboard_invites::ports::{InviteCodeStore, MockInviteCodeStore};
//!
//! /// Code of yours: a join page shows its form only for a live code.
//! async fn show_join_form(codes: &dyn InviteCodeStore, raw: &str) -> anyhow::Result<bool> {
//!     let Ok(code) = InviteCode::parse(raw) else { return Ok(false) };
//!     Ok(codes.get(&code).await?.is_some())
//! }
//!
//! // #[tokio::test]
//! async fn a_dead_code_gets_no_join_form() {
//!     let mut codes = MockInviteCodeStore::new();
//!     codes.expect_get().times(1).returning(|_| Ok(None));
//!     assert!(!show_join_form(&codes, "AAAAAAAAAAAAAAAAAAAAAA").await.unwrap());
//!     // A malformed code never reaches the store (the mock would refuse a second call).
//!     assert!(!show_join_form(&codes, "not a code").await.unwrap());
//! }
//! # pub fn run() {
//! #     let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
//! #     runtime.block_on(a_dead_code_gets_no_join_form());
//! # }
//! # }
//! # fn main() {
//! #     #[cfg(feature = "mocks")]
//! #     demo::run();
//! # }
//! ```

pub mod config;
pub mod error;
pub mod events;
pub mod model;
pub mod ports;
mod service;

pub use config::{InviteSmsPrices, InvitesConfig};
pub use error::*;
pub use model::*;
pub use service::InvitesService;
