//! Forged tokens are built by hand here (base64, HMAC, Ed25519), never by the code under test.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::Signer;
use hmac::{Hmac, Mac};
use jsonwebtoken::jwk::JwkSet;
use serde_json::{Value, json};
use sha2::Sha256;

use super::*;

const ISS: &str = "onboard";
const AUD: &str = "onboard-api";

struct Fixture {
    keys: SigningKeys,
    tokens: JwtAccessTokens,
}

fn fixture() -> Fixture {
    let keys = SigningKeys::generate();
    let tokens = JwtAccessTokens::new(&keys, ISS.into(), AUD.into());
    Fixture { keys, tokens }
}

fn now() -> i64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("the clock is after 1970");
    i64::try_from(since.as_secs()).expect("fits")
}

fn claims(grp: Option<&str>) -> AccessClaims {
    let iat = now();
    AccessClaims {
        sub: MemberId::new(),
        sid: SessionId::new(),
        grp: grp.map(str::to_owned),
        iat,
        exp: iat + 900,
        jti: Uuid::now_v7(),
    }
}

fn payload(c: &AccessClaims) -> Value {
    json!({
        "iss": ISS, "aud": AUD, "sub": c.sub, "sid": c.sid,
        "iat": c.iat, "exp": c.exp, "jti": c.jti,
    })
}

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).expect("serialises"))
}

fn decode_part(part: &str) -> Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).expect("base64url")).expect("json")
}

/// A token signed by hand with an Ed25519 key.
fn ed_token(key: &ed25519_dalek::SigningKey, header: &Value, payload: &Value) -> String {
    let input = format!("{}.{}", b64(header), b64(payload));
    let sig = key.sign(input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.to_bytes()))
}

/// A token signed by hand with HMAC-SHA256.
fn hs256_token(secret: &[u8], header: &Value, payload: &Value) -> String {
    let input = format!("{}.{}", b64(header), b64(payload));
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("any key length");
    mac.update(input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()))
}

fn our_key(f: &Fixture) -> ed25519_dalek::SigningKey {
    ed25519_dalek::SigningKey::from_bytes(&f.keys.master_secret())
}

fn our_header(f: &Fixture) -> Value {
    json!({"alg": "EdDSA", "typ": "JWT", "kid": f.keys.kid()})
}

#[test]
fn an_issued_token_verifies_to_the_same_claims() {
    let f = fixture();
    for grp in [None, Some("acme")] {
        let c = claims(grp);
        let token = f.tokens.issue(&c).expect("signs");
        assert_eq!(f.tokens.verify(&token), Ok(c));
    }
}

#[test]
fn an_issued_token_has_the_documented_header_and_claims() {
    let f = fixture();
    let c = claims(Some("acme"));
    let token = f.tokens.issue(&c).expect("signs");
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3);
    assert_eq!(decode_part(parts[0]), json!({"alg": "EdDSA", "typ": "JWT", "kid": f.keys.kid()}));
    let mut expected = payload(&c);
    expected["grp"] = json!("acme");
    assert_eq!(decode_part(parts[1]), expected);
}

#[test]
fn a_token_without_a_group_has_no_grp_claim() {
    let f = fixture();
    let token = f.tokens.issue(&claims(None)).expect("signs");
    let body = decode_part(token.split('.').nth(1).expect("payload"));
    assert!(body.get("grp").is_none(), "{body}");
}

#[test]
fn a_hand_signed_token_with_our_key_verifies_with_or_without_kid() {
    // Proves the hand-made forgeries below differ from a good token only where they say.
    let f = fixture();
    let c = claims(None);
    let with_kid = ed_token(&our_key(&f), &our_header(&f), &payload(&c));
    assert_eq!(f.tokens.verify(&with_kid), Ok(c.clone()));
    let without_kid = ed_token(&our_key(&f), &json!({"alg": "EdDSA", "typ": "JWT"}), &payload(&c));
    assert_eq!(f.tokens.verify(&without_kid), Ok(c));
}

#[test]
fn alg_none_is_rejected() {
    let f = fixture();
    let p = payload(&claims(None));
    for header in [
        json!({"alg": "none", "typ": "JWT"}),
        json!({"alg": "none", "typ": "JWT", "kid": f.keys.kid()}),
        json!({"alg": "None"}),
        json!({"typ": "JWT"}),
    ] {
        let unsigned = format!("{}.{}.", b64(&header), b64(&p));
        assert_eq!(f.tokens.verify(&unsigned), Err(InvalidToken), "{header}");
        // Also with a real signature of the same input attached.
        let good = ed_token(&our_key(&f), &header, &p);
        assert_eq!(f.tokens.verify(&good), Err(InvalidToken), "{header}");
    }
}

#[test]
fn hs256_signed_with_the_public_key_as_secret_is_rejected() {
    let f = fixture();
    let p = payload(&claims(None));
    let header = json!({"alg": "HS256", "typ": "JWT", "kid": f.keys.kid()});
    let x = f.keys.jwks()["keys"][0]["x"].as_str().expect("x").to_owned();
    let raw = URL_SAFE_NO_PAD.decode(&x).expect("base64url");
    let jwks_text = f.keys.jwks().to_string();
    for secret in [raw.as_slice(), x.as_bytes(), jwks_text.as_bytes(), b"secret".as_slice()] {
        let forged = hs256_token(secret, &header, &p);
        assert_eq!(f.tokens.verify(&forged), Err(InvalidToken));
    }
}

#[test]
fn rs256_and_other_algorithms_are_rejected() {
    let f = fixture();
    let p = payload(&claims(None));
    for alg in ["RS256", "PS256", "ES256", "HS512", "EdDSA "] {
        let header = json!({"alg": alg, "typ": "JWT", "kid": f.keys.kid()});
        // Any signature bytes: the algorithm alone must be refused.
        let forged = format!("{}.{}.{}", b64(&header), b64(&p), URL_SAFE_NO_PAD.encode([7u8; 256]));
        assert_eq!(f.tokens.verify(&forged), Err(InvalidToken), "{alg}");
        let ed_signed = ed_token(&our_key(&f), &header, &p);
        assert_eq!(f.tokens.verify(&ed_signed), Err(InvalidToken), "{alg}");
    }
}

#[test]
fn a_token_signed_by_another_key_is_rejected() {
    let f = fixture();
    let other = ed25519_dalek::SigningKey::from_bytes(&SigningKeys::generate().master_secret());
    let p = payload(&claims(None));
    for header in [our_header(&f), json!({"alg": "EdDSA", "typ": "JWT"})] {
        assert_eq!(f.tokens.verify(&ed_token(&other, &header, &p)), Err(InvalidToken));
    }
    // And a token issued by another deployment's tokens with the same issuer and audience.
    let foreign = JwtAccessTokens::new(&SigningKeys::generate(), ISS.into(), AUD.into());
    let token = foreign.issue(&claims(None)).expect("signs");
    assert_eq!(f.tokens.verify(&token), Err(InvalidToken));
}

#[test]
fn a_token_with_another_kid_is_rejected_even_when_our_key_signed_it() {
    let f = fixture();
    let header = json!({"alg": "EdDSA", "typ": "JWT", "kid": "another-key"});
    let token = ed_token(&our_key(&f), &header, &payload(&claims(None)));
    assert_eq!(f.tokens.verify(&token), Err(InvalidToken));
}

#[test]
fn a_tampered_payload_is_rejected() {
    let f = fixture();
    let token = f.tokens.issue(&claims(None)).expect("signs");
    let parts: Vec<&str> = token.split('.').collect();
    let mut body = decode_part(parts[1]);
    body["sub"] = json!(MemberId::new());
    let tampered = format!("{}.{}.{}", parts[0], b64(&body), parts[2]);
    assert_eq!(f.tokens.verify(&tampered), Err(InvalidToken));
}

#[test]
fn a_wrong_issuer_or_audience_is_rejected() {
    let f = fixture();
    let c = claims(None);
    for (field, value) in [
        ("iss", json!("someone-else")),
        ("aud", json!("another-api")),
        ("aud", json!(["another-api"])),
    ] {
        let mut p = payload(&c);
        p[field] = value;
        let token = ed_token(&our_key(&f), &our_header(&f), &p);
        assert_eq!(f.tokens.verify(&token), Err(InvalidToken), "{field}");
    }
    let other_audience = JwtAccessTokens::new(&f.keys, ISS.into(), "another-api".into());
    let token = other_audience.issue(&c).expect("signs");
    assert_eq!(f.tokens.verify(&token), Err(InvalidToken));
}

#[test]
fn an_expired_token_is_rejected() {
    let f = fixture();
    let mut c = claims(None);
    c.iat = now() - 1000;
    c.exp = now() - 10;
    let token = f.tokens.issue(&c).expect("signs");
    assert_eq!(f.tokens.verify(&token), Err(InvalidToken));
}

#[test]
fn a_token_missing_a_required_claim_is_rejected() {
    let f = fixture();
    let c = claims(None);
    for missing in ["iss", "aud", "sub", "sid", "iat", "exp", "jti"] {
        let mut p = payload(&c);
        p.as_object_mut().expect("object").remove(missing);
        let token = ed_token(&our_key(&f), &our_header(&f), &p);
        assert_eq!(f.tokens.verify(&token), Err(InvalidToken), "{missing}");
    }
}

#[test]
fn claims_of_the_wrong_type_are_rejected() {
    let f = fixture();
    let c = claims(None);
    for (field, value) in [
        ("sub", json!("not-a-uuid")),
        ("sid", json!(42)),
        ("exp", json!("tomorrow")),
        ("iat", json!(null)),
        ("grp", json!(7)),
    ] {
        let mut p = payload(&c);
        p[field] = value;
        let token = ed_token(&our_key(&f), &our_header(&f), &p);
        assert_eq!(f.tokens.verify(&token), Err(InvalidToken), "{field}");
    }
}

#[test]
fn malformed_input_is_rejected_without_panicking() {
    let f = fixture();
    let good = f.tokens.issue(&claims(None)).expect("signs");
    let parts: Vec<&str> = good.split('.').collect();
    let header = our_header(&f);
    let p = payload(&claims(None));
    let inputs = vec![
        String::new(),
        ".".into(),
        "..".into(),
        "...".into(),
        "a.b.c".into(),
        "Bearer x.y.z".into(),
        "\u{0}\u{ffff}.é.🦀".into(),
        "x".repeat(100_000),
        format!("{}.{}", parts[0], parts[1]),
        format!("{}.{}.{}.{}", parts[0], parts[1], parts[2], parts[2]),
        format!("{}.{}.", parts[0], parts[1]),
        format!("{}.{}.{}", parts[0], parts[1], &parts[2][..10]),
        format!("{}.{}.{}", parts[0], parts[1], URL_SAFE_NO_PAD.encode([0u8; 64])),
        format!("{}.{}.{}", parts[0], parts[1], URL_SAFE_NO_PAD.encode([0u8; 65])),
        format!("{}.{}.{}=", parts[0], parts[1], parts[2]),
        format!("{}.{}.{}", URL_SAFE_NO_PAD.encode("not json"), parts[1], parts[2]),
        format!("{}.{}.{}", URL_SAFE_NO_PAD.encode("[]"), parts[1], parts[2]),
        format!("{}.{}.{}", parts[0], URL_SAFE_NO_PAD.encode("not json"), parts[2]),
        ed_token(&our_key(&f), &header, &json!("a string payload")),
        ed_token(&our_key(&f), &header, &json!(null)),
        ed_token(&our_key(&f), &json!({"alg": "EdDSA", "kid": 5}), &p),
        ed_token(&our_key(&f), &json!({"alg": "EdDSA", "crit": ["exp"]}), &p),
    ];
    for input in inputs {
        assert_eq!(f.tokens.verify(&input), Err(InvalidToken), "{input:.80}");
    }
}

#[test]
fn the_jwks_lets_another_service_verify_a_token() {
    let f = fixture();
    let c = claims(Some("acme"));
    let token = f.tokens.issue(&c).expect("signs");

    let set: JwkSet = serde_json::from_value(f.keys.jwks()).expect("a JWK set");
    let kid = jsonwebtoken::decode_header(&token).expect("header").kid.expect("kid");
    let jwk = set.find(&kid).expect("the token's key is in the set");
    let key = DecodingKey::from_jwk(jwk).expect("an Ed25519 JWK");
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.set_issuer(&[ISS]);
    validation.set_audience(&[AUD]);
    let data = jsonwebtoken::decode::<Value>(&token, &key, &validation).expect("verifies");
    assert_eq!(data.claims["sub"], json!(c.sub));
    assert_eq!(data.claims["grp"], json!("acme"));

    // The set does not verify another key's tokens.
    let foreign = JwtAccessTokens::new(&SigningKeys::generate(), ISS.into(), AUD.into());
    let other = foreign.issue(&c).expect("signs");
    assert!(jsonwebtoken::decode::<Value>(&other, &key, &validation).is_err());
}

#[test]
fn keys_read_from_pem_sign_tokens_the_original_key_verifies() {
    let f = fixture();
    let reread = SigningKeys::from_pem(&f.keys.to_pkcs8_pem().expect("encodes")).expect("reads");
    let tokens = JwtAccessTokens::new(&reread, ISS.into(), AUD.into());
    let c = claims(None);
    assert_eq!(f.tokens.verify(&tokens.issue(&c).expect("signs")), Ok(c));
}

#[test]
fn debug_output_names_the_key_but_not_its_secret() {
    let f = fixture();
    let shown = format!("{:?}", f.tokens);
    assert!(shown.contains(f.keys.kid()));
    assert!(!shown.contains(&URL_SAFE_NO_PAD.encode(f.keys.master_secret())));
}

#[test]
fn a_token_presented_again_verifies_to_the_same_claims() {
    let f = fixture();
    let c = claims(Some("acme"));
    let token = f.tokens.issue(&c).expect("signs");
    for _ in 0..3 {
        assert_eq!(f.tokens.verify(&token), Ok(c.clone()));
    }
}

#[test]
fn a_remembered_token_is_rejected_once_it_expires() {
    let mut f = fixture();
    let mut c = claims(None);
    c.exp = now() + 60;
    let token = f.tokens.issue(&c).expect("signs");
    assert_eq!(f.tokens.verify(&token), Ok(c.clone()));
    // The clock moves past `exp`: the remembered token is refused like a fresh one would be.
    fn later() -> i64 {
        now() + 120
    }
    f.tokens.now = later;
    assert_eq!(f.tokens.verify(&token), Err(InvalidToken));
    assert!(f.tokens.verified.lock().expect("not poisoned").is_empty(), "forgotten once expired");
}

#[test]
fn a_remembered_token_does_not_vouch_for_a_tampered_copy() {
    let f = fixture();
    let c = claims(None);
    let token = f.tokens.issue(&c).expect("signs");
    assert_eq!(f.tokens.verify(&token), Ok(c.clone()));
    let (input, _) = token.rsplit_once('.').expect("three parts");
    let other = claims(None);
    let forged = format!("{input}.{}", URL_SAFE_NO_PAD.encode([7u8; 64]));
    assert_eq!(f.tokens.verify(&forged), Err(InvalidToken));
    let swapped = ed_token(
        &ed25519_dalek::SigningKey::from_bytes(&[9u8; 32]),
        &our_header(&f),
        &payload(&other),
    );
    assert_eq!(f.tokens.verify(&swapped), Err(InvalidToken));
    assert_eq!(f.tokens.verify(&token), Ok(c));
}

#[test]
fn a_full_memory_of_tokens_starts_over_and_still_verifies() {
    let f = fixture();
    let remembered = claims(None);
    for n in 0..VERIFIED_CAPACITY {
        let mut digest = [0u8; 32];
        digest[..8].copy_from_slice(&(n as u64).to_le_bytes());
        f.tokens.remember(digest, &remembered);
    }
    let c = claims(None);
    let token = f.tokens.issue(&c).expect("signs");
    assert_eq!(f.tokens.verify(&token), Ok(c.clone()));
    assert_eq!(f.tokens.verified.lock().expect("not poisoned").len(), 1);
    assert_eq!(f.tokens.verify(&token), Ok(c));
}
