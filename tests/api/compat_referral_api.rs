//! `/compat/referral-api`: the Django referral-api's calls and error shapes
//! (`shared/spec/compat.md`), and `COMPAT_APIS`.

use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};

use crate::both_wirings;
use crate::helpers::{TestApp, Wiring, expect_status, keys, phone, spawn_app, spawn_app_with};

both_wirings!(
    a_seed_client_signs_in_redeems_and_refreshes_by_changing_only_the_base_url,
    a_four_digit_code_with_a_leading_zero_sent_as_an_integer_signs_in,
    sign_in_errors_have_the_seeds_shapes,
    token_errors_have_simplejwts_shape,
    users_are_shown_whole_to_themselves_and_masked_to_strangers,
    profile_edits_are_refused_field_by_field,
    the_users_list_is_for_platform_admins_only,
    compat_apis_turns_a_seed_api_off,
    a_blocked_member_is_refused_in_the_seeds_shapes,
    codes_are_echoed_only_with_otp_echo,
);

const BASE: &str = "/compat/referral-api";

/// `BASE` + `path`.
fn at(path: &str) -> String {
    format!("{BASE}{path}")
}

/// The keys of the seed's User, sorted.
const USER_KEYS: [&str; 11] = [
    "date_joined",
    "email",
    "first_name",
    "id",
    "invite_code",
    "invited_by_code",
    "is_active",
    "is_staff",
    "last_login",
    "last_name",
    "phone",
];

/// USER_KEYS and `invited`, sorted.
fn user_with_invited_keys() -> Vec<String> {
    let mut k: Vec<String> = USER_KEYS.iter().map(|s| (*s).to_owned()).collect();
    k.push("invited".to_owned());
    k.sort();
    k
}

/// Asserts a status and a JSON body that is not problem+json; returns the body.
async fn seed_answer(resp: Response, status: StatusCode) -> Value {
    let content_type = resp
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = expect_status(resp, status).await;
    assert!(content_type.starts_with("application/json"), "{content_type}: {body}");
    body
}

/// A signed-in seed client.
struct Client {
    access: String,
    refresh: String,
}

impl TestApp {
    /// `send_code` for `phone`: the code, as the integer the seed answers.
    async fn ref_send_code(&self, phone: &str) -> u64 {
        let resp = self.post_json(&at("/api/v1/auth/send_code/"), &json!({ "phone": phone })).await;
        let body = seed_answer(resp, StatusCode::OK).await;
        body["code"].as_u64().unwrap_or_else(|| panic!("an integer code: {body}"))
    }

    /// Signs in through the seed API (sending the code as an integer).
    async fn ref_sign_in(&self, phone: &str, invited_by: Option<&str>) -> Client {
        let code = self.ref_send_code(phone).await;
        let mut body = json!({ "phone": phone, "code": code });
        if let Some(invited_by) = invited_by {
            body["invited_by_code"] = json!(invited_by);
        }
        let resp = self.post_json(&at("/api/v1/auth/jwt/get_by_phone/"), &body).await;
        let body = seed_answer(resp, StatusCode::OK).await;
        assert_eq!(keys(&body), ["access", "refresh"]);
        Client {
            access: body["access"].as_str().unwrap().to_owned(),
            refresh: body["refresh"].as_str().unwrap().to_owned(),
        }
    }

    async fn ref_current_user(&self, token: &str) -> Value {
        let resp = self.get_auth(&at("/api/v1/users/current_user/"), token).await;
        seed_answer(resp, StatusCode::OK).await
    }
}

async fn a_seed_client_signs_in_redeems_and_refreshes_by_changing_only_the_base_url(
    wiring: Wiring,
) {
    let app = spawn_app(wiring).await;
    // A referrer, through the same API.
    let referrer = app.ref_sign_in(&phone(1), None).await;
    let referrer_code =
        app.ref_current_user(&referrer.access).await["invite_code"].as_str().unwrap().to_owned();

    // The seed flow: request a code, exchange it, read the profile, redeem, refresh.
    let code = app.ref_send_code(&phone(2)).await;
    let resp = app
        .post_json(
            &at("/api/v1/auth/jwt/get_by_phone/"),
            &json!({ "phone": phone(2), "code": code }),
        )
        .await;
    let tokens = seed_answer(resp, StatusCode::OK).await;
    let access = tokens["access"].as_str().unwrap();
    let me = app.ref_current_user(access).await;
    assert_eq!(keys(&me), user_with_invited_keys());
    assert_eq!(me["phone"], phone(2));
    assert_eq!(me["invited_by_code"], Value::Null);
    assert_eq!(me["is_staff"], false);
    assert_eq!(me["is_active"], true);
    assert_eq!(me["invite_code"].as_str().unwrap().len(), 6);
    assert_eq!(me["invited"], json!([]));

    let resp = app
        .patch_auth(
            &at("/api/v1/users/current_user/"),
            access,
            &json!({ "first_name": "Ann", "invited_by_code": referrer_code.to_lowercase() }),
        )
        .await;
    let me = seed_answer(resp, StatusCode::OK).await;
    assert_eq!(me["first_name"], "Ann");
    assert_eq!(me["invited_by_code"], referrer_code.as_str());

    let resp = app
        .post_json(&at("/api/v1/auth/jwt/refresh/"), &json!({ "refresh": tokens["refresh"] }))
        .await;
    let rotated = seed_answer(resp, StatusCode::OK).await;
    assert_eq!(keys(&rotated), ["access"], "simplejwt without rotation: the token is kept");
    let resp = app
        .post_json(&at("/api/v1/auth/jwt/verify/"), &json!({ "token": rotated["access"] }))
        .await;
    assert_eq!(seed_answer(resp, StatusCode::OK).await, json!({}));

    // The referrer sees the invitee (phone masked), by id and as current user.
    let mine = app.ref_current_user(&referrer.access).await;
    assert_eq!(mine["invited"].as_array().unwrap().len(), 1);
    assert_eq!(mine["invited"][0]["id"], me["id"]);
    assert_eq!(mine["invited"][0]["phone"], "+7******0002");

    // Trailing slashes are optional.
    let resp = app
        .post_json(&at("/api/v1/auth/jwt/refresh"), &json!({ "refresh": referrer.refresh }))
        .await;
    seed_answer(resp, StatusCode::OK).await;
    let resp =
        app.get_auth(&at("/api/v1/users/current_user"), rotated["access"].as_str().unwrap()).await;
    assert_eq!(seed_answer(resp, StatusCode::OK).await["id"], me["id"]);

    // The same member on /api/v1.
    let v1 = app.me(rotated["access"].as_str().unwrap()).await;
    assert_eq!(v1["id"], me["id"]);
    assert_eq!(v1["referred_by"], referrer_code.as_str());
}

async fn a_four_digit_code_with_a_leading_zero_sent_as_an_integer_signs_in(wiring: Wiring) {
    let app = spawn_app_with(wiring, |s| {
        s.members.otp_length = 4;
        s.members.max_sends_per_ip_hour = 10_000;
    })
    .await;
    // A tenth of the codes start with a zero: 300 tries miss one with odds of 1 in 10^13.
    for n in 0..300 {
        let phone = phone(100 + n);
        let code = app.ref_send_code(&phone).await;
        assert!(code < 10_000, "4 digits: {code}");
        if code >= 1000 {
            continue;
        }
        // `0123` arrives as the integer 123 (as the seed's client sends it) and signs in.
        let resp = app
            .post_json(
                &at("/api/v1/auth/jwt/get_by_phone/"),
                &json!({ "phone": phone, "code": code }),
            )
            .await;
        let body = seed_answer(resp, StatusCode::OK).await;
        assert!(body["access"].is_string());
        return;
    }
    panic!("no code with a leading zero in 300 codes");
}

async fn sign_in_errors_have_the_seeds_shapes(wiring: Wiring) {
    let app = spawn_app(wiring).await;
    let send = at("/api/v1/auth/send_code/");
    let exchange = at("/api/v1/auth/jwt/get_by_phone/");

    // Field errors, all at once, as Django REST Framework lists them.
    let resp = app.post_json(&send, &json!({})).await;
    assert_eq!(
        seed_answer(resp, StatusCode::BAD_REQUEST).await,
        json!({ "phone": ["Обязательное поле."] })
    );
    let resp = app.post_json(&send, &json!({ "phone": "12" })).await;
    assert_eq!(
        seed_answer(resp, StatusCode::BAD_REQUEST).await,
        json!({ "phone": ["Введите корректный номер телефона."] })
    );
    let resp = app.post_json(&send, &json!({ "phone": ["+79170000001"] })).await;
    assert_eq!(
        seed_answer(resp, StatusCode::BAD_REQUEST).await,
        json!({ "phone": ["Not a valid string."] })
    );
    let resp = app.post_json(&exchange, &json!({ "phone": "nope", "code": "x1" })).await;
    assert_eq!(
        seed_answer(resp, StatusCode::BAD_REQUEST).await,
        json!({ "phone": ["Введите корректный номер телефона."], "code": ["Требуется целочисленное значение."] })
    );
    let resp = app.post_json(&exchange, &json!({ "phone": phone(1) })).await;
    assert_eq!(
        seed_answer(resp, StatusCode::BAD_REQUEST).await,
        json!({ "code": ["Обязательное поле."] })
    );

    // Malformed bodies are a 400 too, never a 500.
    let resp = app
        .client
        .post(app.url(&send))
        .header("content-type", "application/json")
        .body("{\"phone\": ")
        .send()
        .await
        .unwrap();
    let body = seed_answer(resp, StatusCode::BAD_REQUEST).await;
    assert!(body["detail"].as_str().unwrap().starts_with("JSON parse error"), "{body}");
    let resp = app.post_json(&send, &json!(["+79170000001"])).await;
    assert_eq!(
        seed_answer(resp, StatusCode::BAD_REQUEST).await,
        json!({ "non_field_errors": ["Недопустимые данные. Ожидался dictionary, но был получен list."] })
    );
    // A form post, as Django takes it.
    let resp = app
        .client
        .post(app.url(&send))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("phone=%2B7917{:07}", 2))
        .send()
        .await
        .unwrap();
    let code = seed_answer(resp, StatusCode::OK).await["code"].as_u64().unwrap();

    // Too soon for another code: 429 with Retry-After.
    let resp = app.post_json(&send, &json!({ "phone": phone(2) })).await;
    assert!(resp.headers().get("retry-after").is_some());
    let body = seed_answer(resp, StatusCode::TOO_MANY_REQUESTS).await;
    assert_eq!(keys(&body), ["detail"]);

    // A wrong code: 403 {"code": ...}; the right one, sent as a string, still works.
    let wrong = (code + 1) % 1_000_000;
    let resp = app.post_json(&exchange, &json!({ "phone": phone(2), "code": wrong })).await;
    let body = seed_answer(resp, StatusCode::FORBIDDEN).await;
    assert_eq!(keys(&body), ["code"]);
    assert!(body["code"].is_string());
    // An unknown invite code: 403 {"invited_by_code": ...}, and the code stays usable.
    let resp = app
        .post_json(
            &exchange,
            &json!({ "phone": phone(2), "code": code, "invited_by_code": "ZZZZZZ" }),
        )
        .await;
    let body = seed_answer(resp, StatusCode::FORBIDDEN).await;
    assert_eq!(keys(&body), ["invited_by_code"]);
    let resp =
        app.post_json(&exchange, &json!({ "phone": phone(2), "code": format!("{code:06}") })).await;
    let tokens = seed_answer(resp, StatusCode::OK).await;

    // An existing member naming their own code: 403 {"invited_by_code": ...}, checked before
    // the code is.
    let own = app.ref_current_user(tokens["access"].as_str().unwrap()).await["invite_code"].clone();
    let resp = app
        .post_json(&exchange, &json!({ "phone": phone(2), "code": 1, "invited_by_code": own }))
        .await;
    let body = seed_answer(resp, StatusCode::FORBIDDEN).await;
    assert_eq!(keys(&body), ["invited_by_code"]);
    // No code was ever sent to this phone: wrong or expired alike.
    let resp = app.post_json(&exchange, &json!({ "phone": phone(9), "code": 1234 })).await;
    assert_eq!(keys(&seed_answer(resp, StatusCode::FORBIDDEN).await), ["code"]);
}

async fn token_errors_have_simplejwts_shape(wiring: Wiring) {
    let app = spawn_app(wiring).await;
    let client = app.ref_sign_in(&phone(1), None).await;
    let not_valid = |body: &Value| {
        assert_eq!(body["code"], "token_not_valid", "{body}");
        assert!(body["detail"].is_string(), "{body}");
    };

    let resp = app.post_json(&at("/api/v1/auth/jwt/verify/"), &json!({ "token": "x.y.z" })).await;
    not_valid(&seed_answer(resp, StatusCode::UNAUTHORIZED).await);
    let resp = app.post_json(&at("/api/v1/auth/jwt/verify/"), &json!({})).await;
    assert_eq!(
        seed_answer(resp, StatusCode::BAD_REQUEST).await,
        json!({ "token": ["Обязательное поле."] })
    );
    let resp = app.post_json(&at("/api/v1/auth/jwt/refresh/"), &json!({ "refresh": "nope" })).await;
    not_valid(&seed_answer(resp, StatusCode::UNAUTHORIZED).await);

    // A refreshed access token works; the live refresh token verifies too (simplejwt's
    // verify takes any token), but it is no access token for an authenticated call.
    let resp = app
        .post_json(&at("/api/v1/auth/jwt/refresh/"), &json!({ "refresh": client.refresh }))
        .await;
    let rotated = seed_answer(resp, StatusCode::OK).await;
    let resp = app
        .post_json(&at("/api/v1/auth/jwt/verify/"), &json!({ "token": rotated["access"] }))
        .await;
    seed_answer(resp, StatusCode::OK).await;
    let resp =
        app.post_json(&at("/api/v1/auth/jwt/verify/"), &json!({ "token": client.refresh })).await;
    seed_answer(resp, StatusCode::OK).await;
    let resp = app.get_auth(&at("/api/v1/users/current_user/"), &client.refresh).await;
    not_valid(&seed_answer(resp, StatusCode::UNAUTHORIZED).await);

    // Authenticated calls: no credentials, then a bad token.
    let resp = app.get(&at("/api/v1/users/current_user/")).await;
    assert!(resp.headers().get("www-authenticate").is_some());
    assert_eq!(
        seed_answer(resp, StatusCode::UNAUTHORIZED).await,
        json!({ "detail": "Учетные данные не были предоставлены." })
    );
    let resp = app.get_auth(&at("/api/v1/users/current_user/"), "not-a-token").await;
    not_valid(&seed_answer(resp, StatusCode::UNAUTHORIZED).await);
    // After logout the access token is refused.
    let resp = app.logout(&client.access).await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let resp = app.get_auth(&at("/api/v1/users/current_user/"), &client.access).await;
    not_valid(&seed_answer(resp, StatusCode::UNAUTHORIZED).await);
}

async fn users_are_shown_whole_to_themselves_and_masked_to_strangers(wiring: Wiring) {
    let app = spawn_app(wiring).await;
    let ann = app.ref_sign_in(&phone(1), None).await;
    let ann_me = app.ref_current_user(&ann.access).await;
    let ann_code = ann_me["invite_code"].as_str().unwrap().to_owned();
    let bob = app.ref_sign_in(&phone(2), Some(&ann_code)).await;
    let bob_me = app.ref_current_user(&bob.access).await;
    assert_eq!(bob_me["invited_by_code"], ann_code.as_str());
    let ann_id = ann_me["id"].as_str().unwrap();

    // Oneself by id: whole, with the invited list.
    let resp = app.get_auth(&at(&format!("/api/v1/users/{ann_id}/")), &ann.access).await;
    let me = seed_answer(resp, StatusCode::OK).await;
    assert_eq!(keys(&me), user_with_invited_keys());
    assert_eq!(me["phone"], phone(1));
    assert_eq!(me["invited"], json!([{ "id": bob_me["id"], "phone": "+7******0002" }]));

    // A stranger (no shared group): the phone masked, nothing private (deviation).
    let resp = app.get_auth(&at(&format!("/api/v1/users/{ann_id}")), &bob.access).await;
    let seen = seed_answer(resp, StatusCode::OK).await;
    assert_eq!(keys(&seen), user_with_invited_keys());
    assert_eq!(seen["phone"], "+7******0001");
    assert_eq!(seen["email"], Value::Null);
    assert_eq!(seen["invited"], json!([]));

    // Unknown and malformed ids: 404 {"detail"}; no token: 401.
    let unknown = uuid::Uuid::now_v7();
    let resp = app.get_auth(&at(&format!("/api/v1/users/{unknown}/")), &bob.access).await;
    assert_eq!(seed_answer(resp, StatusCode::NOT_FOUND).await, json!({ "detail": "Не найдено." }));
    let resp = app.get_auth(&at("/api/v1/users/17/"), &bob.access).await;
    assert_eq!(seed_answer(resp, StatusCode::NOT_FOUND).await, json!({ "detail": "Не найдено." }));
    let resp = app.get(&at(&format!("/api/v1/users/{ann_id}/"))).await;
    seed_answer(resp, StatusCode::UNAUTHORIZED).await;
}

async fn profile_edits_are_refused_field_by_field(wiring: Wiring) {
    let app = spawn_app(wiring).await;
    let path = at("/api/v1/users/current_user/");
    let ann = app.ref_sign_in(&phone(1), None).await;
    let ann_code =
        app.ref_current_user(&ann.access).await["invite_code"].as_str().unwrap().to_owned();
    let bob = app.ref_sign_in(&phone(2), Some(&ann_code)).await;
    let bob_code =
        app.ref_current_user(&bob.access).await["invite_code"].as_str().unwrap().to_owned();
    let cat = app.ref_sign_in(&phone(3), None).await;

    let field_error = |body: &Value, field: &str| {
        assert_eq!(keys(body), [field], "{body}");
        assert!(body[field][0].is_string(), "{body}");
    };
    let patch = |token: &str, body: Value| {
        let path = path.clone();
        let token = token.to_owned();
        let app = &app;
        async move { app.patch_auth(&path, &token, &body).await }
    };

    let resp = patch(&ann.access, json!({ "invited_by_code": ann_code })).await;
    field_error(&seed_answer(resp, StatusCode::BAD_REQUEST).await, "invited_by_code");
    let resp = patch(&ann.access, json!({ "invited_by_code": "QQQQQQ" })).await;
    field_error(&seed_answer(resp, StatusCode::BAD_REQUEST).await, "invited_by_code");
    let resp = patch(
        &bob.access,
        json!({ "invited_by_code": app.ref_current_user(&cat.access).await["invite_code"] }),
    )
    .await;
    field_error(&seed_answer(resp, StatusCode::BAD_REQUEST).await, "invited_by_code");
    // Ann was never referred, but Bob is below her: redeeming Bob's code would close a cycle.
    let resp =
        patch(&ann.access, json!({ "invited_by_code": bob_code, "first_name": "Ann" })).await;
    field_error(&seed_answer(resp, StatusCode::BAD_REQUEST).await, "invited_by_code");
    // The refused edit changed nothing.
    assert_eq!(app.ref_current_user(&ann.access).await["first_name"], Value::Null);

    let resp = patch(&cat.access, json!({ "email": "not an address" })).await;
    field_error(&seed_answer(resp, StatusCode::BAD_REQUEST).await, "email");
    let resp = patch(&cat.access, json!({ "first_name": "n".repeat(101), "last_name": 5 })).await;
    let body = seed_answer(resp, StatusCode::BAD_REQUEST).await;
    assert_eq!(keys(&body), ["first_name"], "a number is read as its text: {body}");
    let resp = patch(&cat.access, json!({ "email": "Cat@Example.com" })).await;
    assert_eq!(seed_answer(resp, StatusCode::OK).await["email"], "cat@example.com");
    let resp = patch(&ann.access, json!({ "email": "cat@example.com" })).await;
    field_error(&seed_answer(resp, StatusCode::BAD_REQUEST).await, "email");
    let resp = app.call(Method::PATCH, &path, &ann.access, None).await;
    // An empty body changes nothing.
    assert_eq!(seed_answer(resp, StatusCode::OK).await["email"], Value::Null);
    let resp = app
        .client
        .patch(app.url(&path))
        .bearer_auth(&ann.access)
        .header("content-type", "application/json")
        .body("[")
        .send()
        .await
        .unwrap();
    seed_answer(resp, StatusCode::BAD_REQUEST).await;
}

async fn the_users_list_is_for_platform_admins_only(wiring: Wiring) {
    let app = spawn_app_with(wiring, |s| {
        s.admin_phones = vec![onboard_kernel::PhoneNumber::parse(&phone(1), None).unwrap()];
    })
    .await;
    let ann = app.ref_sign_in(&phone(1), None).await;
    let ann_me = app.ref_current_user(&ann.access).await;
    assert_eq!(ann_me["is_staff"], true, "a platform admin is staff");
    let ann_code = ann_me["invite_code"].as_str().unwrap().to_owned();
    let bob = app.ref_sign_in(&phone(2), Some(&ann_code)).await;
    let bob_id = app.ref_current_user(&bob.access).await["id"].clone();
    let cat = app.ref_sign_in(&phone(3), None).await;
    let resp = app
        .patch_auth(
            &at("/api/v1/users/current_user/"),
            &cat.access,
            &json!({ "email": "cat@example.com" }),
        )
        .await;
    let cat_me = seed_answer(resp, StatusCode::OK).await;

    // Everyone else: 403 {"detail"} (deviation); no token: 401.
    let resp = app.get_auth(&at("/api/v1/users/?limit=5&search=%2B7917"), &bob.access).await;
    let body = seed_answer(resp, StatusCode::FORBIDDEN).await;
    assert_eq!(keys(&body), ["detail"]);
    let resp = app.get(&at("/api/v1/users")).await;
    seed_answer(resp, StatusCode::UNAUTHORIZED).await;

    let list = |query: &str| {
        let path = at(&format!("/api/v1/users/{query}"));
        let token = ann.access.clone();
        let app = &app;
        async move { seed_answer(app.get_auth(&path, &token).await, StatusCode::OK).await }
    };
    let all = list("").await;
    assert_eq!(keys(&all), ["count", "next", "previous", "results"]);
    assert_eq!(all["count"], 3);
    assert_eq!((all["next"].clone(), all["previous"].clone()), (Value::Null, Value::Null));
    let results = all["results"].as_array().unwrap();
    assert_eq!(keys(&results[0]), USER_KEYS);
    let phones: Vec<&str> = results.iter().map(|u| u["phone"].as_str().unwrap()).collect();
    assert_eq!(phones, [phone(1), phone(2), phone(3)], "oldest first, phones whole");

    // Offset pages: `next` and `previous` are absolute URLs a client follows as they are.
    let first = list("?limit=2").await;
    assert_eq!((first["count"].as_u64(), first["results"].as_array().unwrap().len()), (Some(3), 2));
    assert_eq!(first["previous"], Value::Null);
    let next = first["next"].as_str().unwrap();
    assert!(
        next.starts_with("http://") && next.contains("limit=2") && next.contains("offset=2"),
        "{next}"
    );
    let resp = app.client.get(next).bearer_auth(&ann.access).send().await.unwrap();
    let second = seed_answer(resp, StatusCode::OK).await;
    assert_eq!(second["results"][0]["phone"], phone(3));
    assert_eq!(second["next"], Value::Null);
    let previous = second["previous"].as_str().unwrap();
    assert!(previous.contains("limit=2") && !previous.contains("offset"), "{previous}");

    // Filters and search.
    let only = |body: Value| -> Vec<Value> {
        assert_eq!(
            body["count"].as_u64().unwrap() as usize,
            body["results"].as_array().unwrap().len()
        );
        body["results"].as_array().unwrap().iter().map(|u| u["id"].clone()).collect()
    };
    assert_eq!(only(list(&format!("?phone=%2B7917{:07}", 2)).await), std::slice::from_ref(&bob_id));
    assert_eq!(
        only(list(&format!("?invited_by_code={ann_code}")).await),
        std::slice::from_ref(&bob_id)
    );
    let cat_code = cat_me["invite_code"].as_str().unwrap();
    assert_eq!(only(list(&format!("?invite_code={cat_code}")).await), [cat_me["id"].clone()]);
    assert_eq!(only(list("?email=cat%40example.com").await), [cat_me["id"].clone()]);
    assert_eq!(only(list("?search=CAT").await), [cat_me["id"].clone()]);
    assert_eq!(only(list("?phone=nonsense").await), Vec::<Value>::new());
    assert_eq!(list("?limit=1000&offset=zz").await["results"].as_array().unwrap().len(), 3);

    // An admin sees any user whole.
    let resp = app
        .get_auth(&at(&format!("/api/v1/users/{}/", bob_id.as_str().unwrap())), &ann.access)
        .await;
    let seen = seed_answer(resp, StatusCode::OK).await;
    assert_eq!(seen["phone"], phone(2));
    assert_eq!(seen["invited_by_code"], ann_code.as_str());
}

async fn compat_apis_turns_a_seed_api_off(wiring: Wiring) {
    let app = spawn_app_with(wiring, |s| {
        s.compat_apis = onboard_server::config::CompatApis {
            referral_api: false,
            connect_hub: true,
            member_invitation: false,
        };
    })
    .await;
    let resp = app.post_json(&at("/api/v1/auth/send_code/"), &json!({ "phone": phone(1) })).await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let resp = app.get("/compat/member-invitation/member/x").await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let resp =
        app.post_json("/compat/connect-hub/api/register/", &json!({ "phone": phone(1) })).await;
    assert_eq!(resp.status(), StatusCode::OK);
}

async fn a_blocked_member_is_refused_in_the_seeds_shapes(wiring: Wiring) {
    let app = spawn_app_with(wiring, |s| {
        s.admin_phones = vec![onboard_kernel::PhoneNumber::parse(&phone(1), None).unwrap()];
        s.members.otp_limits.resend_interval_secs = 0;
    })
    .await;
    let admin = app.ref_sign_in(&phone(1), None).await;
    let bob = app.ref_sign_in(&phone(2), None).await;
    let bob_id = app.ref_current_user(&bob.access).await["id"].as_str().unwrap().to_owned();
    let resp = app
        .call(
            Method::POST,
            &format!("/api/v1/admin/members/{bob_id}/block"),
            &admin.access,
            Some(&json!({ "reason": "spam" })),
        )
        .await;
    expect_status(resp, StatusCode::OK).await;

    // The live token dies at once; refresh and sign-in are refused.
    let resp = app.get_auth(&at("/api/v1/users/current_user/"), &bob.access).await;
    assert_eq!(seed_answer(resp, StatusCode::UNAUTHORIZED).await["code"], "token_not_valid");
    let resp =
        app.post_json(&at("/api/v1/auth/jwt/refresh/"), &json!({ "refresh": bob.refresh })).await;
    assert_eq!(seed_answer(resp, StatusCode::UNAUTHORIZED).await["code"], "user_inactive");
    let code = app.ref_send_code(&phone(2)).await;
    let resp = app
        .post_json(
            &at("/api/v1/auth/jwt/get_by_phone/"),
            &json!({ "phone": phone(2), "code": code }),
        )
        .await;
    assert_eq!(keys(&seed_answer(resp, StatusCode::FORBIDDEN).await), ["detail"]);
    // The admin sees them inactive.
    let resp = app.get_auth(&at(&format!("/api/v1/users/{bob_id}/")), &admin.access).await;
    assert_eq!(seed_answer(resp, StatusCode::OK).await["is_active"], false);
}

async fn codes_are_echoed_only_with_otp_echo(wiring: Wiring) {
    let app = spawn_app_with(wiring, |s| s.members.otp_echo = false).await;
    let resp = app.post_json(&at("/api/v1/auth/send_code/"), &json!({ "phone": phone(1) })).await;
    assert_eq!(seed_answer(resp, StatusCode::OK).await, json!({}));
    let resp =
        app.post_json("/compat/connect-hub/api/register/", &json!({ "phone": phone(2) })).await;
    assert_eq!(seed_answer(resp, StatusCode::OK).await, json!({ "phone": phone(2) }));
}
