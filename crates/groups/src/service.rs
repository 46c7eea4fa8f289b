//! The groups use cases.
//!
//! Every permission and owner-only decision is made here, from the caller's membership as
//! storage answers it at the start of the call; storage then settles atomically what only it
//! can (see [`crate::ports`]).

use std::collections::BTreeSet;
use std::sync::Arc;

use onboard_kernel::events::Event;
use onboard_kernel::{Clock, GroupId, MemberId};

use crate::config::GroupsConfig;
use crate::error::{
    AuthorizeError, ChangeRoleError, ChangeRoleRefusal, CreateGroupError, CreateRoleError,
    DecideRequestError, DeleteGroupError, DeleteRoleError, GrantRoleError, JoinError,
    ListMembersError, RemoveMemberError, RemoveRefusal, RoleRefusal, SetCurrentGroupError,
    UpdateGroupError, UpdateRoleError, ViewGroupError,
};
use crate::events::{GroupEvent, JoinedVia};
use crate::model::{
    CreateGroup, Group, GroupCursor, GroupMember, GroupPatch, MemberCursor, MembershipStatus,
    MyGroup, Page, Permission, PermissionCatalog, Role, RoleName, Slug, Standing,
};
use crate::ports::{GroupRepository, JoinRecord, NewGroup};

/// How many derived slugs a create tries before answering `slug_taken`.
const SLUG_ATTEMPTS: usize = 3;

/// How many times a role change or removal is judged again when the target's role changed
/// under it, before giving up with an unexpected error.
const JUDGE_ATTEMPTS: usize = 3;

/// Groups, roles, memberships, join requests and the current group.
#[derive(Clone)]
pub struct GroupsService {
    repo: Arc<dyn GroupRepository>,
    catalog: Arc<PermissionCatalog>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for GroupsService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupsService").field("catalog", &self.catalog).finish_non_exhaustive()
    }
}

/// An active member's standing in a group, as a use case judges it.
struct Access {
    group: Group,
    role: RoleName,
    permissions: BTreeSet<Permission>,
}

impl Access {
    fn holds(&self, permission: &Permission) -> bool {
        self.permissions.contains(permission)
    }

    fn is_owner(&self) -> bool {
        self.role.is_owner()
    }
}

/// Whether a role is within an actor's reach: it holds no permission the actor lacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reach {
    Within,
    Beyond,
    /// The group has no such role.
    Unknown,
}

/// The custom roles of one group, read from storage at most once (until [`Self::forget`]).
struct RoleBook<'a> {
    repo: &'a dyn GroupRepository,
    catalog: &'a PermissionCatalog,
    group: GroupId,
    custom: Option<Vec<Role>>,
}

impl RoleBook<'_> {
    /// What `role` allows in this group; `None` when the group has no such role.
    async fn permissions(
        &mut self,
        role: &RoleName,
    ) -> anyhow::Result<Option<BTreeSet<Permission>>> {
        if role.is_builtin() {
            return Ok(Some(self.catalog.permissions_of(role, &BTreeSet::new())));
        }
        if self.custom.is_none() {
            self.custom = Some(self.repo.custom_roles(self.group).await?);
        }
        Ok(self
            .custom
            .iter()
            .flatten()
            .find(|r| r.name == *role)
            .map(|r| self.catalog.permissions_of(role, &r.permissions)))
    }

    fn forget(&mut self) {
        self.custom = None;
    }
}

impl GroupsService {
    /// The largest page a list answers.
    pub const MAX_PAGE: u32 = 100;
    /// The page size when the client names none.
    pub const DEFAULT_PAGE: u32 = 20;

    pub fn new(
        repo: Arc<dyn GroupRepository>,
        config: GroupsConfig,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self { repo, catalog: Arc::new(config.catalog()), clock }
    }

    /// The permissions of this deployment.
    pub fn catalog(&self) -> &PermissionCatalog {
        &self.catalog
    }

    // -----------------------------------------------------------------------------------------
    // Helpers
    // -----------------------------------------------------------------------------------------

    /// The caller's standing in the group when they are an ACTIVE member of it; `None` when
    /// the group is unknown, they have no membership, or it is pending.
    async fn access(&self, slug: &Slug, member: MemberId) -> anyhow::Result<Option<Access>> {
        let Some((group, Some(membership))) = self.repo.find_for_member(slug, member).await? else {
            return Ok(None);
        };
        if membership.status != MembershipStatus::Active {
            return Ok(None);
        }
        let permissions =
            self.catalog.permissions_of(&membership.role, &membership.role_permissions);
        Ok(Some(Access { group, role: membership.role, permissions }))
    }

    /// The caller's standing, when they may decide join requests.
    async fn deciding(&self, slug: &Slug, caller: MemberId) -> Result<Access, DecideRequestError> {
        let access = self.access(slug, caller).await?.ok_or(DecideRequestError::NotFound)?;
        if access.holds(&Permission::MEMBERS_MANAGE) {
            Ok(access)
        } else {
            Err(DecideRequestError::Forbidden)
        }
    }

    fn role_book(&self, access: &Access) -> RoleBook<'_> {
        RoleBook {
            repo: self.repo.as_ref(),
            catalog: &self.catalog,
            group: access.group.id,
            custom: None,
        }
    }

    /// Whether `role` holds no permission beyond the actor's. An actor holding every permission
    /// of the deployment reaches every role without a look at storage (whether a custom role
    /// exists is then storage's answer to the write).
    async fn reach(
        &self,
        actor: &Access,
        book: &mut RoleBook<'_>,
        role: &RoleName,
    ) -> anyhow::Result<Reach> {
        if self.catalog.all().is_subset(&actor.permissions) {
            return Ok(Reach::Within);
        }
        Ok(match book.permissions(role).await? {
            None => Reach::Unknown,
            Some(p) if p.is_subset(&actor.permissions) => Reach::Within,
            Some(_) => Reach::Beyond,
        })
    }
}

fn clamp_page(limit: u32) -> u32 {
    limit.clamp(1, GroupsService::MAX_PAGE)
}

/// The first `limit` rows as a page; a cursor to the last of them when more rows came.
fn page<T, C>(mut rows: Vec<(T, C)>, limit: u32, encode: impl Fn(&C) -> String) -> Page<T> {
    let limit = limit as usize;
    let more = rows.len() > limit;
    rows.truncate(limit);
    let next_cursor = if more { rows.last().map(|(_, c)| encode(c)) } else { None };
    Page { items: rows.into_iter().map(|(item, _)| item).collect(), next_cursor }
}

mod current;
mod groups;
mod joining;
mod members;
mod roles;

#[cfg(test)]
mod tests;
