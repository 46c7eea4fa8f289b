//! Parsing of the value types, with property-style loops over generated inputs.

use chrono::TimeZone;

use super::*;

/// A small deterministic generator (xorshift64*), so that a failure reproduces.
struct Gen(u64);

impl Gen {
    fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n as u64).expect("fits")
    }

    /// A string of up to `max_len` characters drawn from `alphabet`.
    fn string(&mut self, alphabet: &[char], max_len: usize) -> String {
        let len = self.below(max_len + 1);
        (0..len).map(|_| alphabet[self.below(alphabet.len())]).collect()
    }
}

/// Characters that slug, role and permission parsers must tell apart: the allowed ones and
/// their near misses.
const MIXED: &[char] = &[
    'a', 'b', 'm', 'z', 'A', 'Z', '0', '5', '9', '-', '_', '.', ' ', '/', 'é', 'я', '\u{0}', '\t',
];

fn slug_rule(s: &str) -> bool {
    let n = s.chars().count();
    (3..=40).contains(&n)
        && s.chars().all(|c| matches!(c, 'a'..='z' | '0'..='9' | '-'))
        && !s.starts_with('-')
        && !s.ends_with('-')
}

fn permission_rule(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some('a'..='z'))
        && s.chars().count() <= 64
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_' | '.' | '-'))
}

fn role_rule(s: &str) -> bool {
    let n = s.chars().count();
    (1..=40).contains(&n) && s.chars().all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_' | '-'))
}

// ---------------------------------------------------------------------------------------------
// Slug
// ---------------------------------------------------------------------------------------------

#[test]
fn well_formed_slugs_are_accepted_as_they_are() {
    for good in ["abc", "acme", "acme-2", "a--b", "ws-k3j9x0q2ma", "123", &"a".repeat(40)] {
        assert_eq!(Slug::parse(good).expect("a slug").as_str(), good);
    }
}

#[test]
fn slugs_of_the_wrong_length_case_or_characters_are_rejected() {
    for bad in [
        "",
        "ab",
        &"a".repeat(41),
        "Acme",
        "acme_corp",
        "acme corp",
        " acme",
        "acme ",
        "-acme",
        "acme-",
        "---",
        "acmé",
        "ac/me",
    ] {
        assert_eq!(Slug::parse(bad), Err(SlugError), "{bad:?} should be rejected");
    }
}

#[test]
fn a_slug_is_accepted_exactly_when_it_follows_the_rule() {
    let mut g = Gen::new(7);
    let mut accepted = 0;
    for _ in 0..20_000 {
        let s = g.string(&['a', 'z', '0', '9', '-', 'A', '_', 'é'], 44);
        let parsed = Slug::parse(&s);
        assert_eq!(parsed.is_ok(), slug_rule(&s), "{s:?}");
        accepted += usize::from(parsed.is_ok());
    }
    assert!(accepted > 100, "the generator should hit valid slugs too ({accepted})");
}

#[test]
fn a_slug_derived_from_a_name_keeps_its_ascii_words_and_adds_six_random_characters() {
    let slug = Slug::from_name("Acme Corp. (Seoul)");
    let s = slug.as_str();
    let suffix = s.strip_prefix("acme-corp-seoul-").expect("the words of the name");
    assert_eq!(suffix.len(), 6);
    assert!(suffix.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()), "{s}");
}

#[test]
fn a_name_without_ascii_letters_or_digits_derives_a_group_slug() {
    for name in ["", "   ", "Рога и копыта", "株式会社", "!!!"] {
        let slug = Slug::from_name(name);
        let suffix = slug.as_str().strip_prefix("group-").expect("group- prefix");
        assert_eq!(suffix.len(), 6, "{slug:?}");
    }
}

#[test]
fn a_long_name_derives_a_slug_cut_to_forty_characters_without_a_dangling_dash() {
    let slug = Slug::from_name(&"x".repeat(50));
    assert_eq!(slug.as_str().len(), 40);
    assert!(slug.as_str().starts_with(&format!("{}-", "x".repeat(33))), "{slug:?}");

    // The cut falls right after "xx…x-": the dash goes with the rest of the word.
    let slug = Slug::from_name(&format!("{} tail", "x".repeat(32)));
    assert_eq!(slug.as_str().len(), 39);
    assert!(slug.as_str().starts_with(&format!("{}-", "x".repeat(32))), "{slug:?}");
    assert!(!slug.as_str().contains("--"), "{slug:?}");
}

#[test]
fn every_derived_slug_is_a_valid_slug() {
    let mut g = Gen::new(11);
    for _ in 0..5_000 {
        let name = g.string(MIXED, 80);
        let slug = Slug::from_name(&name);
        assert_eq!(Slug::parse(slug.as_str()).as_ref(), Ok(&slug), "from {name:?}");
    }
}

#[test]
fn two_groups_of_the_same_name_derive_different_slugs() {
    let slugs: BTreeSet<String> =
        (0..200).map(|_| Slug::from_name("Acme").as_str().to_owned()).collect();
    assert_eq!(slugs.len(), 200);
}

#[test]
fn personal_slugs_are_ws_and_ten_random_characters() {
    let mut seen = BTreeSet::new();
    for _ in 0..200 {
        let slug = Slug::personal();
        let rest = slug.as_str().strip_prefix("ws-").expect("ws- prefix");
        assert_eq!(rest.len(), 10);
        assert!(rest.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()));
        assert!(Slug::parse(slug.as_str()).is_ok());
        seen.insert(slug);
    }
    assert_eq!(seen.len(), 200);
}

// ---------------------------------------------------------------------------------------------
// GroupName
// ---------------------------------------------------------------------------------------------

#[test]
fn group_names_are_trimmed_and_must_be_one_to_a_hundred_characters() {
    assert_eq!(GroupName::parse("  Acme Corp. ").expect("valid").as_str(), "Acme Corp.");
    assert!(GroupName::parse("").is_err());
    assert!(GroupName::parse(" \t ").is_err());
    assert!(GroupName::parse("x").is_ok());
    assert!(GroupName::parse(&"я".repeat(100)).is_ok());
    assert_eq!(GroupName::parse(&"я".repeat(101)), Err(GroupNameError));
}

#[test]
fn group_names_with_control_characters_are_rejected() {
    for bad in ["a\u{0}b", "line\nbreak", "tab\tinside", "bell\u{7}"] {
        assert_eq!(GroupName::parse(bad), Err(GroupNameError), "{bad:?}");
    }
}

#[test]
fn a_group_name_is_accepted_exactly_when_trimmed_it_is_short_and_printable() {
    let mut g = Gen::new(13);
    for _ in 0..5_000 {
        let s = g.string(MIXED, 110);
        let t = s.trim();
        let expected = (1..=100).contains(&t.chars().count()) && !t.chars().any(char::is_control);
        assert_eq!(GroupName::parse(&s).is_ok(), expected, "{s:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// Permission and the catalog
// ---------------------------------------------------------------------------------------------

#[test]
fn the_built_in_permissions_are_the_five_of_the_spec_and_webhooks_manage() {
    let names: Vec<&str> = Permission::BUILTIN.iter().map(Permission::as_str).collect();
    assert_eq!(
        names,
        [
            "group.manage",
            "members.manage",
            "invites.manage",
            "billing.manage",
            "messages.send",
            "webhooks.manage"
        ]
    );
    for p in Permission::BUILTIN {
        assert_eq!(Permission::parse(p.as_str()), Ok(p));
    }
}

#[test]
fn permission_names_start_with_a_letter_and_allow_digits_underscores_dots_and_dashes() {
    for good in ["a", "customer_read", "estimates.write-all", "x9", &"p".repeat(64)] {
        assert_eq!(Permission::parse(good).expect("valid").as_str(), good);
    }
    for bad in ["", "9lives", ".hidden", "_x", "Read", "read all", "read/all", &"p".repeat(65)] {
        assert_eq!(Permission::parse(bad), Err(PermissionError(bad.to_owned())), "{bad:?}");
    }
}

#[test]
fn a_permission_name_is_accepted_exactly_when_it_follows_the_rule() {
    let mut g = Gen::new(17);
    for _ in 0..20_000 {
        let s = g.string(MIXED, 70);
        assert_eq!(Permission::parse(&s).is_ok(), permission_rule(&s), "{s:?}");
    }
}

#[test]
fn a_comma_list_of_permissions_ignores_spaces_and_empty_entries() {
    let list = Permission::parse_list(" customers.read, ,estimates.write ,").expect("valid");
    let names: Vec<&str> = list.iter().map(Permission::as_str).collect();
    assert_eq!(names, ["customers.read", "estimates.write"]);
    assert_eq!(Permission::parse_list("").expect("empty"), vec![]);
    assert_eq!(Permission::parse_list("ok, Not Ok"), Err(PermissionError("Not Ok".to_owned())));
}

fn extra(name: &str) -> Permission {
    Permission::parse(name).expect("a permission name")
}

#[test]
fn the_catalog_holds_the_built_ins_and_the_deployment_extras_once_each() {
    let catalog = PermissionCatalog::new([extra("customers.read"), Permission::GROUP_MANAGE]);
    assert_eq!(catalog.all().len(), 7);
    assert!(catalog.contains(&extra("customers.read")));
    assert!(Permission::BUILTIN.iter().all(|p| catalog.contains(p)));
    assert_eq!(PermissionCatalog::default().all().len(), 6);
}

#[test]
fn parse_set_collapses_repeats_and_names_the_first_unknown_permission() {
    let catalog = PermissionCatalog::new([extra("customers.read")]);
    let set = catalog
        .parse_set(["customers.read", "members.manage", "customers.read"])
        .expect("known permissions");
    assert_eq!(set, BTreeSet::from([extra("customers.read"), Permission::MEMBERS_MANAGE]));
    assert_eq!(
        catalog.parse_set(["members.manage", "rockets.launch", "x.y"]),
        Err(UnknownPermission("rockets.launch".to_owned()))
    );
    assert_eq!(
        catalog.parse_set(vec!["Members.Manage".to_owned()]),
        Err(UnknownPermission("Members.Manage".to_owned()))
    );
    assert_eq!(catalog.parse_set(Vec::<String>::new()), Ok(BTreeSet::new()));
}

#[test]
fn owner_and_admin_hold_every_permission_of_the_catalog_and_member_none() {
    let catalog = PermissionCatalog::new([extra("customers.read")]);
    let stored = BTreeSet::from([Permission::BILLING_MANAGE]);
    assert_eq!(&catalog.permissions_of(&RoleName::OWNER, &stored), catalog.all());
    assert_eq!(&catalog.permissions_of(&RoleName::ADMIN, &BTreeSet::new()), catalog.all());
    assert!(catalog.permissions_of(&RoleName::MEMBER, &stored).is_empty());
}

#[test]
fn a_custom_role_holds_only_its_stored_permissions_the_catalog_still_knows() {
    let catalog = PermissionCatalog::default();
    let role = RoleName::parse("billing").expect("a role name");
    let stored = BTreeSet::from([Permission::BILLING_MANAGE, extra("retired.flag")]);
    assert_eq!(
        catalog.permissions_of(&role, &stored),
        BTreeSet::from([Permission::BILLING_MANAGE])
    );
}

// ---------------------------------------------------------------------------------------------
// RoleName and MembershipStatus
// ---------------------------------------------------------------------------------------------

#[test]
fn the_built_in_roles_are_owner_admin_and_member() {
    for (raw, owner, admin) in
        [("owner", true, false), ("admin", false, true), ("member", false, false)]
    {
        let role = RoleName::parse(raw).expect("a role name");
        assert!(role.is_builtin(), "{raw}");
        assert_eq!(role.is_owner(), owner, "{raw}");
        assert_eq!(role.is_admin(), admin, "{raw}");
    }
    let custom = RoleName::parse("team_lead").expect("a role name");
    assert!(!custom.is_builtin() && !custom.is_owner() && !custom.is_admin());
}

#[test]
fn role_names_are_one_to_forty_characters_of_lower_case_letters_digits_underscores_and_dashes() {
    for good in ["a", "team_lead", "level-2", &"r".repeat(40)] {
        assert_eq!(RoleName::parse(good).expect("valid").as_str(), good);
    }
    for bad in ["", "Owner", "team lead", "team.lead", &"r".repeat(41), "ролл"] {
        assert_eq!(RoleName::parse(bad), Err(RoleNameError), "{bad:?}");
    }
}

#[test]
fn a_role_name_is_accepted_exactly_when_it_follows_the_rule() {
    let mut g = Gen::new(19);
    for _ in 0..20_000 {
        let s = g.string(MIXED, 44);
        assert_eq!(RoleName::parse(&s).is_ok(), role_rule(&s), "{s:?}");
    }
}

#[test]
fn membership_statuses_read_back_what_they_write() {
    for status in [MembershipStatus::Active, MembershipStatus::Pending] {
        assert_eq!(MembershipStatus::parse(status.as_str()), Some(status));
        assert_eq!(status.to_string(), status.as_str());
    }
    assert_eq!(MembershipStatus::parse("Active"), None);
    assert_eq!(MembershipStatus::parse("banned"), None);
}

// ---------------------------------------------------------------------------------------------
// Cursors and patches
// ---------------------------------------------------------------------------------------------

fn instant() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 27, 12, 0, 0).single().expect("a valid instant")
        + chrono::Duration::microseconds(123_456)
}

#[test]
fn cursors_round_trip_through_their_opaque_text() {
    let g = GroupCursor { joined_at: instant(), group_id: GroupId::new() };
    assert_eq!(GroupCursor::decode(&g.encode()), Some(g));
    let m = MemberCursor { joined_at: instant(), member_id: MemberId::new() };
    assert_eq!(MemberCursor::decode(&m.encode()), Some(m));
    assert!(g.encode().bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
}

#[test]
fn garbage_and_the_other_list_cursor_are_not_cursors() {
    let g = GroupCursor { joined_at: instant(), group_id: GroupId::new() };
    let m = MemberCursor { joined_at: instant(), member_id: MemberId::new() };
    assert_eq!(MemberCursor::decode(&g.encode()), None);
    assert_eq!(GroupCursor::decode(&m.encode()), None);
    for garbage in ["", "not a cursor", "bTox", "%%%"] {
        assert_eq!(GroupCursor::decode(garbage), None, "{garbage:?}");
        assert_eq!(MemberCursor::decode(garbage), None, "{garbage:?}");
    }
}

#[test]
fn a_patch_without_fields_is_empty() {
    assert!(GroupPatch::default().is_empty());
    assert!(!GroupPatch { approval_required: Some(false), ..GroupPatch::default() }.is_empty());
    let name = GroupName::parse("New name").expect("valid");
    assert!(!GroupPatch { name: Some(name), ..GroupPatch::default() }.is_empty());
}
