//! Standard Webhooks signatures (standardwebhooks.com): `v1,` and the base64 of the
//! HMAC-SHA256, keyed by the secret's bytes, of `{webhook-id}.{webhook-timestamp}.{body}`.
//! Several signatures (a rotation's old and new secrets) are separated by spaces; a receiver
//! accepts the message when any of them verifies.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac as _};
use sha2::Sha256;

use crate::model::WebhookSecret;

type HmacSha256 = Hmac<Sha256>;

fn mac(secret: &WebhookSecret, id: &str, timestamp: i64, body: &str) -> HmacSha256 {
    // HMAC takes keys of any length.
    let mut mac = HmacSha256::new_from_slice(&secret.key()).unwrap_or_else(|_| unreachable!());
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    mac
}

/// One signature: `v1,<base64>`.
pub fn sign(secret: &WebhookSecret, id: &str, timestamp: i64, body: &str) -> String {
    let tag = mac(secret, id, timestamp, body).finalize().into_bytes();
    format!("v1,{}", STANDARD.encode(tag))
}

/// The `webhook-signature` header: a signature by each secret, space-separated.
pub fn signature_header(
    secrets: &[&WebhookSecret],
    id: &str,
    timestamp: i64,
    body: &str,
) -> String {
    secrets.iter().map(|s| sign(s, id, timestamp, body)).collect::<Vec<_>>().join(" ")
}

/// Whether one of the header's `v1` signatures is `secret`'s (compared in constant time).
pub fn verify(header: &str, secret: &WebhookSecret, id: &str, timestamp: i64, body: &str) -> bool {
    header.split(' ').filter_map(|s| s.strip_prefix("v1,")).any(|b64| {
        STANDARD
            .decode(b64)
            .is_ok_and(|tag| mac(secret, id, timestamp, body).verify_slice(&tag).is_ok())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The test vector of the Standard Webhooks specification's reference libraries.
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TIMESTAMP: i64 = 1_614_265_330;
    const BODY: &str = r#"{"test": 2432232314}"#;
    const EXPECTED: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    #[test]
    fn the_specifications_test_vector_signs_as_published() {
        let secret = WebhookSecret::from_trusted(SECRET);
        assert_eq!(sign(&secret, ID, TIMESTAMP, BODY), EXPECTED);
        assert!(verify(EXPECTED, &secret, ID, TIMESTAMP, BODY));
    }

    /// HMAC-SHA256 written out from RFC 2104 over a bare SHA-256, sharing no code with
    /// [`sign`].
    fn independent_hmac(key: &[u8], message: &[u8]) -> [u8; 32] {
        use sha2::Digest as _;
        let mut block = [0u8; 64];
        if key.len() > 64 {
            block[..32].copy_from_slice(&Sha256::digest(key));
        } else {
            block[..key.len()].copy_from_slice(key);
        }
        let inner: Vec<u8> =
            block.iter().map(|b| b ^ 0x36).chain(message.iter().copied()).collect();
        let inner = Sha256::digest(inner);
        let outer: Vec<u8> = block.iter().map(|b| b ^ 0x5c).chain(inner.iter().copied()).collect();
        Sha256::digest(outer).into()
    }

    #[test]
    fn a_signature_matches_an_independent_computation_of_the_standard() {
        let secret = WebhookSecret::generate();
        let body =
            r#"{"type":"group.member_joined","timestamp":"2026-12-07T09:00:00.000000Z","data":{}}"#;
        let key = STANDARD
            .decode(secret.expose().strip_prefix("whsec_").expect("the prefix"))
            .expect("base64");
        assert_eq!(key.len(), 32);
        let expected = independent_hmac(&key, format!("msg_1.1765098000.{body}").as_bytes());

        let signature = sign(&secret, "msg_1", 1_765_098_000, body);

        assert_eq!(signature, format!("v1,{}", STANDARD.encode(expected)));
    }

    #[test]
    fn a_rotated_endpoint_sends_both_signatures_and_each_secret_verifies() {
        let (old, new) = (WebhookSecret::generate(), WebhookSecret::generate());
        let header = signature_header(&[&new, &old], "msg_2", 7, "{}");
        assert_eq!(header.split(' ').count(), 2);
        assert!(verify(&header, &new, "msg_2", 7, "{}"));
        assert!(verify(&header, &old, "msg_2", 7, "{}"));
        assert!(!verify(&header, &WebhookSecret::generate(), "msg_2", 7, "{}"));
    }

    #[test]
    fn a_changed_body_id_or_timestamp_does_not_verify() {
        let secret = WebhookSecret::generate();
        let header = sign(&secret, "msg_3", 10, "{}");
        assert!(!verify(&header, &secret, "msg_3", 10, "{ }"));
        assert!(!verify(&header, &secret, "msg_4", 10, "{}"));
        assert!(!verify(&header, &secret, "msg_3", 11, "{}"));
    }
}
