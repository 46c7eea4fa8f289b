//! What the group and invite notifications say: one source for every adapter.
//!
//! Placeholders: `{name}` (the member the event is about: the requester, the invitee),
//! `{role}` (the new role), `{group}` (the group's name) in bodies; `{slug}` in links. An
//! adapter fills them in this order (the group last), in SQL (`replace`) or with
//! [`Text::render`].

use crate::model::NotificationType;

pub mod billing;

/// The title, body and link templates of one type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Text {
    pub title: &'static str,
    pub body: &'static str,
    pub link: Option<&'static str>,
}

/// What a member is called when they have no name.
pub const NO_NAME: &str = "Someone";

impl Text {
    /// The templates of a type that the groups and invites events produce; `None` for the
    /// others (their producers write their own text).
    pub const fn of(kind: NotificationType) -> Option<Self> {
        use NotificationType as T;
        let text = match kind {
            T::JoinRequestCreated => Self {
                title: "New join request",
                body: "{name} asked to join {group}",
                link: Some("/groups/{slug}/join-requests"),
            },
            T::JoinRequestApproved => Self {
                title: "Join request approved",
                body: "You are now a member of {group}",
                link: Some("/groups/{slug}"),
            },
            T::JoinRequestRejected => Self {
                title: "Join request declined",
                body: "Your request to join {group} was declined",
                link: None,
            },
            T::InviteAccepted => Self {
                title: "Invite accepted",
                body: "{name} accepted your invite to {group}",
                link: Some("/groups/{slug}/members"),
            },
            T::MemberRoleChanged => Self {
                title: "Your role changed",
                body: "Your role in {group} is now {role}",
                link: Some("/groups/{slug}"),
            },
            T::MemberRemoved => Self {
                title: "Removed from a group",
                body: "You are no longer a member of {group}",
                link: None,
            },
            T::WebhookEndpointDisabled => Self {
                title: "Webhook endpoint disabled",
                body: "A webhook endpoint of {group} failed for 5 days and was disabled",
                link: Some("/groups/{slug}/webhooks"),
            },
            _ => return None,
        };
        Some(text)
    }

    /// The body and link with the placeholders filled in.
    pub fn render(
        &self,
        name: Option<&str>,
        role: &str,
        group: &str,
        slug: &str,
    ) -> (String, Option<String>) {
        let body = self
            .body
            .replace("{name}", display_name(name))
            .replace("{role}", role)
            .replace("{group}", group);
        (body, self.link.map(|l| l.replace("{slug}", slug)))
    }
}

/// A member's display name from their joined first and last names; [`NO_NAME`] when blank.
pub fn display_name(name: Option<&str>) -> &str {
    name.map(str::trim).filter(|n| !n.is_empty()).unwrap_or(NO_NAME)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_group_events_have_texts_and_the_billing_ones_bring_their_own() {
        for kind in NotificationType::ALL {
            let group_event = !kind.as_str().starts_with("billing.")
                && !kind.as_str().starts_with("sms_credit.")
                && !kind.as_str().starts_with("usage.");
            assert_eq!(Text::of(kind).is_some(), group_event, "{kind}");
        }
    }

    #[test]
    fn a_text_renders_its_placeholders() {
        let text = Text::of(NotificationType::JoinRequestCreated).unwrap_or_else(|| unreachable!());
        let (body, link) = text.render(Some("Ann Lee"), "member", "Acme", "acme");
        assert_eq!(body, "Ann Lee asked to join Acme");
        assert_eq!(link.as_deref(), Some("/groups/acme/join-requests"));
        let (body, _) = text.render(Some("  "), "member", "Acme", "acme");
        assert_eq!(body, "Someone asked to join Acme");
    }
}
