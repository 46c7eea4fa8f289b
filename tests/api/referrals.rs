//! Referrals: `/api/v1/referrals/...` and `referred_by` in `PATCH /api/v1/members/me`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures_util::future::join_all;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::both_wirings;
use crate::helpers::{
    CARD_KEYS, MEMBER_KEYS, SignedIn, TestApp, Wiring, assert_problem, expect_status,
    first_error_field, keys, phone, signed_in, spawn_app, spawn_app_with,
};

both_wirings!(
    a_new_member_has_a_code_no_referrer_and_no_invitees,
    redeeming_a_code_makes_its_owner_the_referrer_everywhere,
    a_code_is_read_case_insensitively_and_without_surrounding_spaces,
    a_code_nobody_has_is_not_found,
    nobody_redeems_their_own_code,
    a_member_redeems_one_code_ever,
    a_member_referred_at_sign_up_cannot_redeem_another_code,
    a_code_whose_owner_is_below_the_redeemer_would_close_a_cycle,
    patching_referred_by_redeems_the_code_and_applies_the_other_fields,
    patching_referred_by_answers_the_errors_of_the_redeem_call,
    a_patch_refused_for_another_field_redeems_nothing,
    a_patch_whose_redeem_is_refused_changes_nothing,
    invitees_are_paged_newest_first_without_gaps_or_duplicates,
    invitees_who_signed_up_at_once_are_each_paged_exactly_once,
    a_deleted_invitee_leaves_the_list_and_the_count_and_cursors_still_work,
    the_page_size_is_one_to_a_hundred_and_a_cursor_must_be_one_of_ours,
    an_invitee_card_masks_the_phone_but_keeps_the_country_code_and_last_four_digits,
    every_referral_call_needs_a_valid_token,
    a_malformed_redeem_body_is_an_invalid_request,
    twenty_pairs_redeeming_each_others_codes_at_once_end_in_one_referral_per_pair,
    one_member_redeeming_two_codes_at_once_keeps_exactly_one,
    many_members_redeeming_one_code_at_once_all_count,
);

/// A server that lets one client IP sign in as many members as a test needs.
async fn spawn_roomy_app(wiring: Wiring) -> TestApp {
    spawn_app_with(wiring, |s| {
        s.members.max_sends_per_ip_hour = 1_000;
        s.members.max_verifies_per_ip = 1_000;
    })
    .await
}

/// The test phones numbered `from..to`.
fn phones(from: u32, to: u32) -> Vec<String> {
    (from..to).map(phone).collect()
}

/// Redeems `code` as the holder of `token`, asserting 200; answers the Member.
async fn redeem_ok(app: &TestApp, token: &str, code: &str) -> Value {
    expect_status(app.redeem(token, code).await, StatusCode::OK).await
}

/// Redeems the owner's code for each member in turn, so that the last one is the newest
/// invitee.
async fn redeem_in_turn(app: &TestApp, owner: &SignedIn, members: &[SignedIn]) {
    for member in members {
        redeem_ok(app, &member.access, owner.referral_code()).await;
    }
}

/// The ids of a JSON array of cards (or members), in order.
fn ids(cards: &Value) -> Vec<String> {
    cards
        .as_array()
        .unwrap_or_else(|| panic!("an array: {cards}"))
        .iter()
        .map(|c| c["id"].as_str().expect("an id").to_owned())
        .collect()
}

/// The ids of `members`, newest invitee first when they redeemed in this order.
fn newest_first(members: &[SignedIn]) -> Vec<String> {
    members.iter().rev().map(|m| m.id().to_owned()).collect()
}

/// Every page of the caller's invitees of size `limit`, from the first; checks that each page
/// but the last is full and carries a cursor, and that the last carries none.
async fn all_pages(app: &TestApp, token: &str, limit: usize) -> Vec<Vec<String>> {
    let limit_text = limit.to_string();
    let mut pages = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut query = vec![("limit", limit_text.as_str())];
        if let Some(c) = &cursor {
            query.push(("cursor", c.as_str()));
        }
        let page = expect_status(app.get_invitees(token, &query).await, StatusCode::OK).await;
        assert_eq!(keys(&page), ["items", "next_cursor"]);
        let items = ids(&page["items"]);
        assert!(items.len() <= limit, "at most {limit} items: {page}");
        pages.push(items);
        match &page["next_cursor"] {
            Value::Null => return pages,
            Value::String(next) => {
                assert_eq!(pages.last().map(Vec::len), Some(limit), "only a full page goes on");
                cursor = Some(next.clone());
            }
            other => panic!("next_cursor is a string or null, not {other}"),
        }
        assert!(pages.len() <= 1_000, "the pages end");
    }
}

/// `code` with every other letter in lower case.
fn mixed_case(code: &str) -> String {
    code.chars()
        .enumerate()
        .map(|(i, c)| if i % 2 == 0 { c.to_ascii_lowercase() } else { c })
        .collect()
}

/// A well-formed code that none of `members` has.
fn unknown_code(members: &[&SignedIn]) -> &'static str {
    ["ZZZZZ9", "ZZZZZ8", "ZZZZZ7", "ZZZZZ6"]
        .into_iter()
        .find(|code| members.iter().all(|m| m.referral_code() != *code))
        .expect("a test has fewer than four members here")
}

async fn a_new_member_has_a_code_no_referrer_and_no_invitees(wiring: Wiring) {
    let app = spawn_app(wiring).await;
    let me = app.sign_in(&phone(1)).await;
    let standing = app.referrals_me(&me.access).await;
    assert_eq!(keys(&standing), ["code", "invitees_count", "referred_by"]);
    assert_eq!(standing["code"], me.referral_code());
    assert!(standing["referred_by"].is_null());
    assert_eq!(standing["invitees_count"], 0);

    let page = expect_status(app.get_invitees(&me.access, &[]).await, StatusCode::OK).await;
    assert_eq!(page, json!({ "items": [], "next_cursor": null }));
}

async fn redeeming_a_code_makes_its_owner_the_referrer_everywhere(wiring: Wiring) {
    let app = spawn_app(wiring).await;
    let ann = app.sign_in(&phone(1)).await;
    let bob = app.sign_in(&phone(2)).await;

    let body = redeem_ok(&app, &bob.access, ann.referral_code()).await;
    assert_eq!(keys(&body), MEMBER_KEYS);
    assert_eq!(body["referred_by"], ann.referral_code());
    for key in MEMBER_KEYS.into_iter().filter(|k| *k != "referred_by") {
        assert_eq!(body[key], bob.member[key], "{key} is unchanged");
    }
    assert_eq!(app.me(&bob.access).await["referred_by"], ann.referral_code());
    let standing = app.referrals_me(&bob.access).await;
    assert_eq!(standing["code"], bob.referral_code(), "one's own code never changes");
    assert_eq!(
        standing["referred_by"],
        json!({ "code": ann.referral_code(), "member_id": ann.id() })
    );
    assert_eq!(standing["invitees_count"], 0);

    let standing = app.referrals_me(&ann.access).await;
    assert!(standing["referred_by"].is_null());
    assert_eq!(standing["invitees_count"], 1);
    let page = expect_status(app.get_invitees(&ann.access, &[]).await, StatusCode::OK).await;
    assert_eq!(ids(&page["items"]), [bob.id()]);
    assert_eq!(keys(&page["items"][0]), CARD_KEYS);
    assert!(page["next_cursor"].is_null());
    let profile = app.me(&ann.access).await;
    assert_eq!(ids(&profile["invitees"]), [bob.id()]);
    assert_eq!(profile["invitees"][0], page["items"][0], "the same card in both places");
    assert_eq!(profile["invitees_count"], 1);
}

async fn a_code_is_read_case_insensitively_and_without_surrounding_spaces(wiring: Wiring) {
    let app = spawn_app(wiring).await;
    let owner = app.sign_in(&phone(0)).await;
    let code = owner.referral_code();
    let typed = [code.to_lowercase(), format!("  {code}  "), format!("\t {} \n", mixed_case(code))];
    let members = app.sign_in_all(&phones(1, 4)).await;
    for (member, typed) in members.iter().zip(&typed) {
        let body = redeem_ok(&app, &member.access, typed).await;
        assert_eq!(body["referred_by"], code, "stored as the owner's code, for {typed:?}");
    }
    assert_eq!(app.referrals_me(&owner.access).await["invitees_count"], 3);
}

async fn a_code_nobody_has_is_not_found(wiring: Wiring) {
    let app = spawn_app(wiring).await;
    let me = app.sign_in(&phone(1)).await;
    let other = app.sign_in(&phone(2)).await;
    let unknown = unknown_code(&[&me, &other]);
    for bad in [unknown, "nope!", "", "   ", "ZZZZZ", "ZZZZZ99", "ZZZ-Z9"] {
        let resp = app.redeem(&me.access, bad).await;
        assert_problem(resp, StatusCode::NOT_FOUND, "referral_code_not_found").await;
    }
    // A deleted member's code is nobody's.
    let resp = app.delete_auth("/api/v1/members/me", &other.access).await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let resp = app.redeem(&me.access, other.referral_code()).await;
    assert_problem(resp, StatusCode::NOT_FOUND, "referral_code_not_found").await;

    assert!(app.referrals_me(&me.access).await["referred_by"].is_null(), "nothing redeemed");
    assert!(app.me(&me.access).await["referred_by"].is_null());
}

async fn nobody_redeems_their_own_code(wiring: Wiring) {
    let app = spawn_app(wiring).await;
    let me = app.sign_in(&phone(1)).await;
    let own = me.referral_code();
    for typed in [own.to_owned(), format!(" {} ", own.to_lowercase())] {
        let resp = app.redeem(&me.access, &typed).await;
        assert_problem(resp, StatusCode::BAD_REQUEST, "referral_self").await;
    }
    let standing = app.referrals_me(&me.access).await;
    assert!(standing["referred_by"].is_null());
    assert_eq!(standing["invitees_count"], 0, "not one's own invitee");
    // A refusal used nothing up: another member's code still works.
    let other = app.sign_in(&phone(2)).await;
    redeem_ok(&app, &me.access, other.referral_code()).await;
}

async fn a_member_redeems_one_code_ever(wiring: Wiring) {
    let app = spawn_app(wiring).await;
    let members = app.sign_in_all(&phones(1, 4)).await;
    let (ann, bob, cat) = (&members[0], &members[1], &members[2]);
    redeem_ok(&app, &cat.access, ann.referral_code()).await;

    for code in [bob.referral_code(), ann.referral_code()] {
        let resp = app.redeem(&cat.access, code).await;
        assert_problem(resp, StatusCode::CONFLICT, "referral_already_redeemed").await;
        let resp = app.patch_me(&cat.access, &json!({ "referred_by": code })).await;
        assert_problem(resp, StatusCode::CONFLICT, "referral_already_redeemed").await;
    }
    let standing = app.referrals_me(&cat.access).await;
    assert_eq!(standing["referred_by"]["member_id"], ann.id(), "the first referrer stays");
    assert_eq!(app.referrals_me(&ann.access).await["invitees_count"], 1);
    assert_eq!(app.referrals_me(&bob.access).await["invitees_count"], 0);
}

async fn a_member_referred_at_sign_up_cannot_redeem_another_code(wiring: Wiring) {
    let app = spawn_app(wiring).await;
    let ann = app.sign_in(&phone(1)).await;
    let bob = app.sign_in(&phone(2)).await;
    let code = app.request_code(&phone(3)).await;
    let resp = app.verify_with_referral(&phone(3), &code, ann.referral_code()).await;
    let cat = signed_in(expect_status(resp, StatusCode::OK).await);
    assert_eq!(cat.member["referred_by"], ann.referral_code());

    for code in [bob.referral_code(), ann.referral_code()] {
        let resp = app.redeem(&cat.access, code).await;
        assert_problem(resp, StatusCode::CONFLICT, "referral_already_redeemed").await;
    }
    let standing = app.referrals_me(&cat.access).await;
    assert_eq!(
        standing["referred_by"],
        json!({ "code": ann.referral_code(), "member_id": ann.id() })
    );
    assert_eq!(app.referrals_me(&bob.access).await["invitees_count"], 0);
}

async fn a_code_whose_owner_is_below_the_redeemer_would_close_a_cycle(wiring: Wiring) {
    let app = spawn_roomy_app(wiring).await;
    let members = app.sign_in_all(&phones(1, 6)).await;
    let (a, b, c, d, e) = (&members[0], &members[1], &members[2], &members[3], &members[4]);
    // A ← B ← C: B redeemed A's code, C redeemed B's.
    redeem_ok(&app, &b.access, a.referral_code()).await;
    redeem_ok(&app, &c.access, b.referral_code()).await;

    // C is three levels down from A, B two.
    for below in [c, b] {
        let resp = app.redeem(&a.access, below.referral_code()).await;
        assert_problem(resp, StatusCode::CONFLICT, "referral_cycle").await;
    }
    let standing = app.referrals_me(&a.access).await;
    assert!(standing["referred_by"].is_null(), "a refused redeem changes nothing");
    assert_eq!(standing["invitees_count"], 1);
    assert_eq!(app.referrals_me(&c.access).await["invitees_count"], 0);

    // Anyone outside the chain may redeem C's code.
    redeem_ok(&app, &d.access, c.referral_code()).await;
    let page = expect_status(app.get_invitees(&c.access, &[]).await, StatusCode::OK).await;
    assert_eq!(ids(&page["items"]), [d.id()]);
    // A ← B ← C ← D: D is now four levels below A.
    let resp = app.redeem(&a.access, d.referral_code()).await;
    assert_problem(resp, StatusCode::CONFLICT, "referral_cycle").await;

    // A, still at the top, may join an unrelated member E; then E is above everyone.
    redeem_ok(&app, &a.access, e.referral_code()).await;
    for below in [a, d] {
        let resp = app.redeem(&e.access, below.referral_code()).await;
        assert_problem(resp, StatusCode::CONFLICT, "referral_cycle").await;
    }
    assert!(app.referrals_me(&e.access).await["referred_by"].is_null());
}

async fn patching_referred_by_redeems_the_code_and_applies_the_other_fields(wiring: Wiring) {
    let app = spawn_app(wiring).await;
    let ann = app.sign_in(&phone(1)).await;
    let bob = app.sign_in(&phone(2)).await;
    let cat = app.sign_in(&phone(3)).await;

    let typed = format!(" {} ", ann.referral_code().to_lowercase());
    let patch = json!({ "first_name": " Bob ", "last_name": "Lee", "referred_by": typed });
    let body = expect_status(app.patch_me(&bob.access, &patch).await, StatusCode::OK).await;
    assert_eq!(keys(&body), MEMBER_KEYS);
    assert_eq!(body["first_name"], "Bob");
    assert_eq!(body["last_name"], "Lee");
    assert_eq!(body["referred_by"], ann.referral_code());
    let profile = app.me(&bob.access).await;
    assert_eq!(profile["first_name"], "Bob");
    assert_eq!(profile["referred_by"], ann.referral_code());
    let standing = app.referrals_me(&bob.access).await;
    assert_eq!(
        standing["referred_by"],
        json!({ "code": ann.referral_code(), "member_id": ann.id() })
    );

    // On its own, it changes nothing else.
    let patch = json!({ "referred_by": ann.referral_code() });
    let body = expect_status(app.patch_me(&cat.access, &patch).await, StatusCode::OK).await;
    assert_eq!(body["referred_by"], ann.referral_code());
    assert!(body["first_name"].is_null() && body["last_name"].is_null());

    // The referrer sees both, newest first, with their names as they are now.
    let profile = app.me(&ann.access).await;
    assert_eq!(ids(&profile["invitees"]), [cat.id(), bob.id()]);
    assert_eq!(profile["invitees"][1]["first_name"], "Bob");
    assert_eq!(profile["invitees"][1]["last_name"], "Lee");
    assert_eq!(profile["invitees_count"], 2);
}

async fn patching_referred_by_answers_the_errors_of_the_redeem_call(wiring: Wiring) {
    let app = spawn_app(wiring).await;
    let members = app.sign_in_all(&phones(1, 4)).await;
    let (a, b, c) = (&members[0], &members[1], &members[2]);
    let patch = |code: &str| json!({ "referred_by": code });
    expect_status(app.patch_me(&b.access, &patch(a.referral_code())).await, StatusCode::OK).await;

    let cases = [
        (a, unknown_code(&[a, b, c]), StatusCode::NOT_FOUND, "referral_code_not_found"),
        (a, "nope!", StatusCode::NOT_FOUND, "referral_code_not_found"),
        (a, a.referral_code(), StatusCode::BAD_REQUEST, "referral_self"),
        (a, b.referral_code(), StatusCode::CONFLICT, "referral_cycle"),
        (b, c.referral_code(), StatusCode::CONFLICT, "referral_already_redeemed"),
    ];
    for (member, code, status, error) in cases {
        assert_problem(app.patch_me(&member.access, &patch(code)).await, status, error).await;
    }
    assert!(app.me(&a.access).await["referred_by"].is_null());
    assert_eq!(app.me(&b.access).await["referred_by"], a.referral_code());
}

async fn a_patch_refused_for_another_field_redeems_nothing(wiring: Wiring) {
    let app = spawn_app(wiring).await;
    let ann = app.sign_in(&phone(1)).await;
    let bob = app.sign_in(&phone(2)).await;
    let code = ann.referral_code();
    expect_status(
        app.patch_me(&ann.access, &json!({ "email": "taken@example.com" })).await,
        StatusCode::OK,
    )
    .await;

    for (patch, field) in [
        (json!({ "first_name": "", "referred_by": code }), "first_name"),
        (json!({ "last_name": "x".repeat(101), "referred_by": code }), "last_name"),
        (json!({ "email": "not-an-email", "referred_by": code }), "email"),
    ] {
        let resp = app.patch_me(&bob.access, &patch).await;
        let problem = assert_problem(resp, StatusCode::BAD_REQUEST, "invalid_request").await;
        assert_eq!(first_error_field(&problem), field);
    }
    let resp = app
        .patch_me(&bob.access, &json!({ "email": "Taken@example.com", "referred_by": code }))
        .await;
    assert_problem(resp, StatusCode::CONFLICT, "email_taken").await;

    assert!(app.referrals_me(&bob.access).await["referred_by"].is_null(), "nothing redeemed");
    assert_eq!(app.referrals_me(&ann.access).await["invitees_count"], 0);
    // The code is still there to redeem.
    let body = expect_status(
        app.patch_me(&bob.access, &json!({ "email": "bob@example.com", "referred_by": code }))
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(body["email"], "bob@example.com");
    assert_eq!(body["referred_by"], code);
}

async fn a_patch_whose_redeem_is_refused_changes_nothing(wiring: Wiring) {
    let app = spawn_app(wiring).await;
    let ann = app.sign_in(&phone(1)).await;
    let bob = app.sign_in(&phone(2)).await;
    redeem_ok(&app, &bob.access, ann.referral_code()).await;
    let before = app.me(&ann.access).await;

    let patch = json!({
        "first_name": "Ann",
        "email": "ann@example.com",
        "referred_by": bob.referral_code(),
    });
    assert_problem(app.patch_me(&ann.access, &patch).await, StatusCode::CONFLICT, "referral_cycle")
        .await;

    assert_eq!(app.me(&ann.access).await, before, "neither the names nor the e-mail changed");
    // The e-mail was never claimed: another member may take it.
    let taken = json!({ "email": "ann@example.com" });
    expect_status(app.patch_me(&bob.access, &taken).await, StatusCode::OK).await;
}

async fn invitees_are_paged_newest_first_without_gaps_or_duplicates(wiring: Wiring) {
    let app = spawn_roomy_app(wiring).await;
    let owner = app.sign_in(&phone(100)).await;
    let invitees = app.sign_in_all(&phones(0, 25)).await;
    redeem_in_turn(&app, &owner, &invitees).await;
    let expected = newest_first(&invitees);

    let pages = all_pages(&app, &owner.access, 10).await;
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [10, 10, 5]);
    assert_eq!(pages.concat(), expected, "newest first, each once");

    // The default page is 20; a page as large as the list, or larger, is the last.
    let pages = all_pages(&app, &owner.access, 20).await;
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [20, 5]);
    let page = expect_status(app.get_invitees(&owner.access, &[]).await, StatusCode::OK).await;
    assert_eq!(ids(&page["items"]), pages[0]);
    assert!(page["next_cursor"].is_string());
    for limit in [25, 100] {
        assert_eq!(all_pages(&app, &owner.access, limit).await, std::slice::from_ref(&expected));
    }
    assert_eq!(all_pages(&app, &owner.access, 1).await.concat(), expected);

    // The profile shows the newest 20 and counts them all.
    let profile = app.me(&owner.access).await;
    assert_eq!(ids(&profile["invitees"]), expected[..20]);
    assert_eq!(profile["invitees_count"], 25);
    assert_eq!(app.referrals_me(&owner.access).await["invitees_count"], 25);
}

async fn invitees_who_signed_up_at_once_are_each_paged_exactly_once(wiring: Wiring) {
    let app = spawn_roomy_app(wiring).await;
    let owner = app.sign_in(&phone(100)).await;
    let phones = phones(0, 30);
    let codes = join_all(phones.iter().map(|p| app.request_code(p))).await;
    let answers = join_all(
        phones
            .iter()
            .zip(&codes)
            .map(|(p, code)| app.verify_with_referral(p, code, owner.referral_code())),
    )
    .await;
    let mut expected = Vec::new();
    for resp in answers {
        let body = expect_status(resp, StatusCode::OK).await;
        expected.push(body["member"]["id"].as_str().unwrap().to_owned());
    }
    expected.sort();

    let first_pages = all_pages(&app, &owner.access, 100).await.concat();
    let mut sorted = first_pages.clone();
    sorted.sort();
    assert_eq!(sorted, expected, "every invitee, once");
    for limit in [1, 3, 7] {
        assert_eq!(all_pages(&app, &owner.access, limit).await.concat(), first_pages, "{limit}");
    }
}

async fn a_deleted_invitee_leaves_the_list_and_the_count_and_cursors_still_work(wiring: Wiring) {
    let app = spawn_roomy_app(wiring).await;
    let owner = app.sign_in(&phone(100)).await;
    let invitees = app.sign_in_all(&phones(0, 12)).await;
    redeem_in_turn(&app, &owner, &invitees).await;
    let expected = newest_first(&invitees);

    let query = [("limit", "5")];
    let page = expect_status(app.get_invitees(&owner.access, &query).await, StatusCode::OK).await;
    assert_eq!(ids(&page["items"]), expected[..5]);
    let cursor = page["next_cursor"].as_str().unwrap().to_owned();

    // Delete the invitee the cursor points at (the fifth newest) and the eighth newest.
    let deleted = [&invitees[12 - 5], &invitees[12 - 8]];
    for member in deleted {
        let resp = app.delete_auth("/api/v1/members/me", &member.access).await;
        assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    }
    let remaining: Vec<String> =
        expected.iter().filter(|id| deleted.iter().all(|d| d.id() != *id)).cloned().collect();
    assert_eq!(remaining.len(), 10);

    let query = [("limit", "5"), ("cursor", cursor.as_str())];
    let page = expect_status(app.get_invitees(&owner.access, &query).await, StatusCode::OK).await;
    assert_eq!(ids(&page["items"]), [5, 6, 8, 9, 10].map(|k| expected[k].clone()));

    assert_eq!(all_pages(&app, &owner.access, 20).await, std::slice::from_ref(&remaining));
    assert_eq!(all_pages(&app, &owner.access, 4).await.concat(), remaining);
    let profile = app.me(&owner.access).await;
    assert_eq!(ids(&profile["invitees"]), remaining);
    assert_eq!(profile["invitees_count"], 10);
    assert_eq!(app.referrals_me(&owner.access).await["invitees_count"], 10);
}

async fn the_page_size_is_one_to_a_hundred_and_a_cursor_must_be_one_of_ours(wiring: Wiring) {
    let app = spawn_app(wiring).await;
    let me = app.sign_in(&phone(1)).await;
    for limit in ["0", "101", "1000"] {
        let resp = app.get_invitees(&me.access, &[("limit", limit)]).await;
        let problem = assert_problem(resp, StatusCode::BAD_REQUEST, "invalid_request").await;
        assert_eq!(first_error_field(&problem), "limit", "for {limit:?}");
    }
    for limit in ["-1", "abc", "", "1.5", "99999999999"] {
        let resp = app.get_invitees(&me.access, &[("limit", limit)]).await;
        assert_problem(resp, StatusCode::BAD_REQUEST, "invalid_request").await;
    }
    let b64 = |s: &str| URL_SAFE_NO_PAD.encode(s);
    for cursor in [
        "not a cursor".to_owned(),
        String::new(),
        b64("foo"),
        b64("123:not-a-uuid"),
        b64(&format!("soon:{}", uuid::Uuid::now_v7())),
        b64(&format!("99999999999999999999:{}", uuid::Uuid::now_v7())),
    ] {
        let resp = app.get_invitees(&me.access, &[("cursor", cursor.as_str())]).await;
        let problem = assert_problem(resp, StatusCode::BAD_REQUEST, "invalid_request").await;
        assert_eq!(first_error_field(&problem), "cursor", "for {cursor:?}");
    }
    let resp = app.get_invitees(&me.access, &[("page", "2")]).await;
    assert_problem(resp, StatusCode::BAD_REQUEST, "invalid_request").await;
    for limit in ["1", "100"] {
        let resp = app.get_invitees(&me.access, &[("limit", limit)]).await;
        expect_status(resp, StatusCode::OK).await;
    }
}

async fn an_invitee_card_masks_the_phone_but_keeps_the_country_code_and_last_four_digits(
    wiring: Wiring,
) {
    let app = spawn_app(wiring).await;
    let owner = app.sign_in(&phone(1)).await;
    let cases = [
        ("+79174444435", "+7******4435"),
        ("+821012345678", "+82******5678"),
        ("+447911123456", "+44******3456"),
        ("+380501234567", "+380*****4567"),
    ];
    let mut expected = Vec::new();
    for (number, masked) in cases {
        let invitee = app.sign_in(number).await;
        redeem_ok(&app, &invitee.access, owner.referral_code()).await;
        expected.push((invitee.id().to_owned(), masked));
    }
    expected.reverse();

    let page = expect_status(app.get_invitees(&owner.access, &[]).await, StatusCode::OK).await;
    let profile = app.me(&owner.access).await;
    for cards in [&page["items"], &profile["invitees"]] {
        let cards = cards.as_array().unwrap();
        assert_eq!(cards.len(), expected.len());
        for (card, (id, masked)) in cards.iter().zip(&expected) {
            assert_eq!(keys(card), CARD_KEYS, "a card has no phone");
            assert_eq!(card["id"], id.as_str());
            assert_eq!(card["phone_masked"], *masked);
        }
    }
}

async fn every_referral_call_needs_a_valid_token(wiring: Wiring) {
    let app = spawn_app(wiring).await;
    let calls: [(Method, &str, Option<Value>); 3] = [
        (Method::GET, "/api/v1/referrals/me", None),
        (Method::GET, "/api/v1/referrals/me/invitees", None),
        (Method::POST, "/api/v1/referrals/redeem", Some(json!({ "code": "K49FJ5" }))),
    ];
    for (method, path, body) in calls {
        for authorization in
            [None, Some("Bearer"), Some("Bearer not.a.jwt"), Some("Basic dXNlcjpwYXNz")]
        {
            let mut req = app.client.request(method.clone(), app.url(path));
            if let Some(value) = authorization {
                req = req.header(reqwest::header::AUTHORIZATION, value);
            }
            if let Some(body) = &body {
                req = req.json(body);
            }
            let resp = req.send().await.unwrap();
            let www = resp.headers().get(reqwest::header::WWW_AUTHENTICATE).cloned();
            assert_problem(resp, StatusCode::UNAUTHORIZED, "unauthorized").await;
            assert_eq!(www.unwrap().to_str().unwrap(), "Bearer", "{method} {path}");
        }
    }
    // A deleted member's token is no longer good either.
    let me = app.sign_in(&phone(1)).await;
    let resp = app.delete_auth("/api/v1/members/me", &me.access).await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let resp = app.get_auth("/api/v1/referrals/me", &me.access).await;
    assert_problem(resp, StatusCode::UNAUTHORIZED, "unauthorized").await;
}

async fn a_malformed_redeem_body_is_an_invalid_request(wiring: Wiring) {
    let app = spawn_app(wiring).await;
    let me = app.sign_in(&phone(1)).await;
    let other = app.sign_in(&phone(2)).await;
    for body in [
        json!({}),
        json!({ "code": null }),
        json!({ "code": 123_456 }),
        json!({ "code": [other.referral_code()] }),
        json!({ "code": other.referral_code(), "referred_by": other.referral_code() }),
    ] {
        let resp =
            app.call(Method::POST, "/api/v1/referrals/redeem", &me.access, Some(&body)).await;
        assert_problem(resp, StatusCode::BAD_REQUEST, "invalid_request").await;
    }
    let resp = app.patch_me(&me.access, &json!({ "referred_by": 123_456 })).await;
    assert_problem(resp, StatusCode::BAD_REQUEST, "invalid_request").await;
    assert!(app.referrals_me(&me.access).await["referred_by"].is_null(), "nothing redeemed");
}

async fn twenty_pairs_redeeming_each_others_codes_at_once_end_in_one_referral_per_pair(
    wiring: Wiring,
) {
    let app = spawn_roomy_app(wiring).await;
    let members = app.sign_in_all(&phones(0, 40)).await;
    let pairs: Vec<(&SignedIn, &SignedIn)> =
        members.chunks(2).map(|pair| (&pair[0], &pair[1])).collect();
    // All forty at once: each pair's two requests race each other and every other pair's.
    let answers = join_all(pairs.iter().flat_map(|(x, y)| {
        [app.redeem(&x.access, y.referral_code()), app.redeem(&y.access, x.referral_code())]
    }))
    .await;

    let mut answers = answers.into_iter();
    for (n, (x, y)) in pairs.iter().enumerate() {
        let (to_x, to_y) = (answers.next().unwrap(), answers.next().unwrap());
        let mut statuses = [to_x.status(), to_y.status()];
        assert!(
            statuses.iter().all(|s| !s.is_server_error()),
            "never a 5xx: pair {n} {statuses:?}"
        );
        statuses.sort();
        assert_eq!(statuses, [StatusCode::OK, StatusCode::CONFLICT], "one wins, pair {n}");
        // The one whose redeem went through is now below the other.
        let (referred, referrer, accepted, refused) =
            if to_x.status() == StatusCode::OK { (x, y, to_x, to_y) } else { (y, x, to_y, to_x) };
        let body = expect_status(accepted, StatusCode::OK).await;
        assert_eq!(body["referred_by"], referrer.referral_code(), "pair {n}");
        assert_problem(refused, StatusCode::CONFLICT, "referral_cycle").await;

        let standing = app.referrals_me(&referred.access).await;
        assert_eq!(standing["referred_by"]["member_id"], referrer.id(), "pair {n}");
        assert_eq!(standing["invitees_count"], 0, "pair {n}");
        let standing = app.referrals_me(&referrer.access).await;
        assert!(standing["referred_by"].is_null(), "pair {n}: {standing}");
        assert_eq!(standing["invitees_count"], 1, "pair {n}");
    }
}

async fn one_member_redeeming_two_codes_at_once_keeps_exactly_one(wiring: Wiring) {
    let app = spawn_roomy_app(wiring).await;
    let members = app.sign_in_all(&phones(0, 15)).await;
    for (n, trio) in members.chunks(3).enumerate() {
        let (ann, bob, cat) = (&trio[0], &trio[1], &trio[2]);
        let (to_ann, to_bob) = tokio::join!(
            app.redeem(&cat.access, ann.referral_code()),
            app.redeem(&cat.access, bob.referral_code()),
        );
        let (referrer, other, won, lost) = if to_ann.status() == StatusCode::OK {
            (ann, bob, to_ann, to_bob)
        } else {
            (bob, ann, to_bob, to_ann)
        };
        let body = expect_status(won, StatusCode::OK).await;
        assert_eq!(body["referred_by"], referrer.referral_code(), "round {n}");
        assert_problem(lost, StatusCode::CONFLICT, "referral_already_redeemed").await;
        assert_eq!(app.referrals_me(&referrer.access).await["invitees_count"], 1, "round {n}");
        assert_eq!(app.referrals_me(&other.access).await["invitees_count"], 0, "round {n}");
        assert_eq!(app.me(&cat.access).await["referred_by"], referrer.referral_code());
    }
}

async fn many_members_redeeming_one_code_at_once_all_count(wiring: Wiring) {
    let app = spawn_roomy_app(wiring).await;
    let owner = app.sign_in(&phone(100)).await;
    let members = app.sign_in_all(&phones(0, 20)).await;
    let answers =
        join_all(members.iter().map(|m| app.redeem(&m.access, owner.referral_code()))).await;
    for resp in answers {
        let body = expect_status(resp, StatusCode::OK).await;
        assert_eq!(body["referred_by"], owner.referral_code());
    }
    let mut listed = all_pages(&app, &owner.access, 100).await.concat();
    listed.sort();
    let mut expected: Vec<String> = members.iter().map(|m| m.id().to_owned()).collect();
    expected.sort();
    assert_eq!(listed, expected);
    assert_eq!(app.referrals_me(&owner.access).await["invitees_count"], 20);
}
