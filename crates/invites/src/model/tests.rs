use chrono::{Duration, TimeZone};
use onboard_groups::MemberCursor;

use super::*;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 27, 12, 0, 0).single().expect("a valid instant")
}

#[test]
fn a_generated_code_is_22_characters_of_base64url_and_parses_back() {
    for _ in 0..200 {
        let code = InviteCode::generate();
        assert_eq!(code.as_str().len(), 22);
        assert_eq!(InviteCode::parse(code.as_str()).expect("a valid code"), code);
    }
}

#[test]
fn generated_codes_differ() {
    let codes: std::collections::HashSet<String> =
        (0..1000).map(|_| InviteCode::generate().to_string()).collect();
    assert_eq!(codes.len(), 1000);
}

#[test]
fn a_code_is_16_to_64_characters_of_the_base64url_alphabet() {
    assert!(InviteCode::parse(&"a".repeat(16)).is_ok());
    assert!(InviteCode::parse(&"Z".repeat(64)).is_ok());
    assert!(InviteCode::parse("AZaz09-_AZaz09-_").is_ok());
    for bad in [
        String::new(),
        "a".repeat(15),
        "a".repeat(65),
        "abcdefghijklmnop+".to_owned(),
        "abcdefghijklmnop/".to_owned(),
        "abcdefghijklmnop=".to_owned(),
        " abcdefghijklmnop".to_owned(),
        "abcdefghijklmnopé".to_owned(),
        "abcdefgh{ijklmnop}".to_owned(),
    ] {
        assert!(InviteCode::parse(&bad).is_err(), "{bad:?} should be rejected");
    }
}

#[test]
fn debug_output_never_shows_the_whole_code() {
    let code = InviteCode::parse("Secr3tCodeValue_xyz-1").expect("a valid code");
    let printed = format!("{code:?}");
    assert!(printed.contains("Secr") && !printed.contains("Secr3tCode"), "{printed}");
}

#[test]
fn names_are_trimmed_and_must_not_be_blank_too_long_or_hold_control_characters() {
    assert_eq!(InviteeName::parse("  Ann Lee ").expect("valid").as_str(), "Ann Lee");
    assert!(InviteeName::parse("   ").is_err());
    assert!(InviteeName::parse(&"я".repeat(100)).is_ok());
    assert!(InviteeName::parse(&"я".repeat(101)).is_err());
    assert!(InviteeName::parse("Ann\nLee").is_err());
}

#[test]
fn statuses_read_back_what_they_print() {
    for status in [
        InviteStatus::Pending,
        InviteStatus::Accepted,
        InviteStatus::Revoked,
        InviteStatus::Expired,
    ] {
        assert_eq!(InviteStatus::parse(status.as_str()), Some(status));
        assert_eq!(status.to_string(), status.as_str());
    }
    assert_eq!(InviteStatus::parse("Pending"), None);
    assert_eq!(InviteStatus::parse(""), None);
}

#[test]
fn a_pending_invite_is_expired_from_its_expiry_on() {
    let at = now();
    assert_eq!(InviteStatus::Pending.as_of(at, at - Duration::seconds(1)), InviteStatus::Pending);
    assert_eq!(InviteStatus::Pending.as_of(at, at), InviteStatus::Expired);
    assert_eq!(InviteStatus::Pending.as_of(at, at + Duration::days(1)), InviteStatus::Expired);
}

#[test]
fn accepted_and_revoked_invites_stay_so_after_their_expiry() {
    let later = now() + Duration::days(30);
    assert_eq!(InviteStatus::Accepted.as_of(now(), later), InviteStatus::Accepted);
    assert_eq!(InviteStatus::Revoked.as_of(now(), later), InviteStatus::Revoked);
    assert_eq!(InviteStatus::Expired.as_of(later, now()), InviteStatus::Expired);
}

#[test]
fn outcomes_print_as_the_api_names_them() {
    assert_eq!(AcceptOutcome::Joined.as_str(), "joined");
    assert_eq!(AcceptOutcome::AlreadyMember.as_str(), "already_member");
    assert_eq!(AcceptOutcome::PendingApproval.to_string(), "pending_approval");
}

#[test]
fn a_cursor_round_trips_through_its_text_form() {
    let cursor = InviteCursor {
        created_at: now() + Duration::microseconds(123_456),
        invite_id: InviteId::new(),
    };
    assert_eq!(InviteCursor::decode(&cursor.encode()), Some(cursor));
}

#[test]
fn garbage_and_cursors_of_other_lists_are_not_invite_cursors() {
    let member_cursor = MemberCursor { joined_at: now(), member_id: MemberId::new() }.encode();
    for bad in ["", "not base64 at all!", "aTo6", member_cursor.as_str()] {
        assert_eq!(InviteCursor::decode(bad), None, "{bad:?}");
    }
}

#[test]
fn an_invite_id_round_trips_through_its_text_form() {
    let id = InviteId::new();
    assert_eq!(id.as_uuid().get_version_num(), 7);
    assert_eq!(id.to_string().parse::<InviteId>().expect("parses"), id);
    assert!("nope".parse::<InviteId>().is_err());
}
