//! # onboard-groups
//!
//! Groups (workspaces, companies) with roles as permission templates, join requests and each
//! member's current group, as a pure domain: the crate does no I/O itself. It talks to storage
//! through [`ports::GroupRepository`]; Onboard's adapters implement it for PostgreSQL and
//! memory, and you may bring your own.
//!
//! ## The rules
//!
//! - Every group has the built-in roles `owner` and `admin` (every permission of the
//!   deployment's [`PermissionCatalog`]) and `member` (none), and may add custom roles with a
//!   set of permissions. The owner-only powers are not permissions: deleting the group,
//!   granting `owner`, changing the role of or removing an owner.
//! - A pending member (a join request) is a member nowhere: the group answers them as it
//!   answers strangers, "not found", except [`GroupsService::standing`].
//! - Nobody changes their own role, and the last owner can be neither demoted, nor removed,
//!   nor leave (storage settles that atomically). Nobody hands out, edits or takes away a role
//!   holding a permission they lack themselves.
//! - Every permission check is made by [`GroupsService`]; other domains use
//!   [`GroupsService::authorize`] and [`GroupsService::grantable_role`].
//!
//! Text from clients becomes [`Slug`], [`GroupName`], [`RoleName`] and [`Permission`] values at
//! the edge. A path segment that is not a slug names no group (answer 404).
//!
//! ## Using the service with your own adapters
//!
//! ```
//! use std::sync::Arc;
//! use chrono::{DateTime, TimeZone, Utc};
//! use onboard_kernel::{Clock, MemberId};
//! use onboard_groups::ports::GroupRepository;
//! use onboard_groups::{CreateGroup, GroupName, GroupsConfig, GroupsService, Permission};
//!
//! /// A clock of your own: here, one that is always at the same instant.
//! struct FrozenClock(DateTime<Utc>);
//!
//! impl Clock for FrozenClock {
//!     fn now(&self) -> DateTime<Utc> {
//!         self.0
//!     }
//! }
//!
//! # fn build(repo: Arc<dyn GroupRepository>) -> anyhow::Result<GroupsService> {
//! // `repo` is your storage: an implementation of `GroupRepository` (its contract is in the
//! // method docs), or one of Onboard's adapters.
//! let config = GroupsConfig {
//!     extra_permissions: Permission::parse_list("customers.read, estimates.write")?,
//! };
//! let clock = FrozenClock(Utc.with_ymd_and_hms(2026, 11, 27, 12, 0, 0).unwrap());
//! let service = GroupsService::new(repo, config, Arc::new(clock));
//! assert!(service.catalog().contains(&Permission::parse("customers.read")?));
//! # Ok(service)
//! # }
//! # async fn create(service: GroupsService) -> anyhow::Result<()> {
//! let me = MemberId::new();
//! let request = CreateGroup {
//!     name: GroupName::parse("Acme Corp.")?,
//!     slug: None,
//!     approval_required: true,
//! };
//! let created = service.create_group(me, request).await?;
//! assert!(created.group.slug.as_str().starts_with("acme-corp-"));
//! assert!(created.my_role.is_owner());
//! # Ok(())
//! # }
//! # // Runs for real with the `mocks` feature (a stand-in for storage); compiles only without.
//! # #[cfg(feature = "mocks")]
//! # fn main() -> anyhow::Result<()> {
//! #     use onboard_groups::{Group, ports::MockGroupRepository};
//! #     let mut repo = MockGroupRepository::new();
//! #     repo.expect_create().times(1).returning(|g, _events| {
//! #         Ok(Group {
//! #             id: g.id, slug: g.slug.clone(), name: g.name.clone(),
//! #             approval_required: g.approval_required, created_at: g.now,
//! #         })
//! #     });
//! #     let service = build(Arc::new(repo))?;
//! #     tokio::runtime::Builder::new_current_thread().build()?.block_on(create(service))
//! # }
//! # #[cfg(not(feature = "mocks"))]
//! # fn main() {}
//! ```
//!
//! ## Testing your code against the mocks
//!
//! Enable the `mocks` feature in your `[dev-dependencies]`
//! (`onboard-groups = { version = "…", features = ["mocks"] }`) and the port has a mockall
//! twin, `MockGroupRepository`. In your crate the test below carries `#[tokio::test]`; here the
//! example's hidden `main` runs it.
//!
//! ```
//! # #[cfg(feature = "mocks")]
//! # mod demo {
//! use std::collections::BTreeSet;
//! use std::sync::Arc;
//! use onboard_kernel::{GroupId, MemberId, SystemClock};
//! use onboard_groups::ports::MockGroupRepository;
//! use onboard_groups::{
//!     AuthorizeError, Group, GroupName, GroupsConfig, GroupsService, Membership,
//!     MembershipStatus, Permission, RoleName, Slug,
//! };
//!
//! /// Code of yours: only members with `billing.manage` see the invoices.
//! async fn invoices(groups: &GroupsService, slug: &Slug, caller: MemberId) -> Result<Vec<String>, AuthorizeError> {
//!     let (group, _role) = groups.authorize(slug, caller, &Permission::BILLING_MANAGE).await?;
//!     Ok(vec![format!("invoice of {}", group.name)])
//! }
//!
//! /// A group in which every caller is an active plain `member`.
//! fn storage_with_a_plain_member() -> MockGroupRepository {
//!     let mut repo = MockGroupRepository::new();
//!     repo.expect_find_for_member().returning(|slug, _| {
//!         let group = Group {
//!             id: GroupId::new(),
//!             slug: slug.clone(),
//!             name: GroupName::parse("Acme").unwrap(),
//!             approval_required: false,
//!             created_at: chrono::Utc::now(),
//!         };
//!         let membership = Membership {
//!             role: RoleName::MEMBER,
//!             status: MembershipStatus::Active,
//!             role_permissions: BTreeSet::new(),
//!         };
//!         Ok(Some((group, Some(membership))))
//!     });
//!     repo
//! }
//!
//! // #[tokio::test]
//! async fn a_plain_member_does_not_see_the_invoices() {
//!     let groups = GroupsService::new(
//!         Arc::new(storage_with_a_plain_member()),
//!         GroupsConfig::default(),
//!         Arc::new(SystemClock),
//!     );
//!     let slug = Slug::parse("acme").unwrap();
//!     let err = invoices(&groups, &slug, MemberId::new()).await.unwrap_err();
//!     assert!(matches!(err, AuthorizeError::Forbidden(p) if p == Permission::BILLING_MANAGE));
//! }
//! # pub fn run() {
//! #     let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
//! #     runtime.block_on(a_plain_member_does_not_see_the_invoices());
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

pub use config::GroupsConfig;
pub use error::*;
pub use model::*;
pub use service::GroupsService;
