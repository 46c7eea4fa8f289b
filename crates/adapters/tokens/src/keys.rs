//! The Ed25519 signing key, its key id and its public JWK set.

use std::fmt;
use std::path::Path;

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey, KeypairBytes};
use rand_core::OsRng;
use serde_json::json;
use sha2::{Digest, Sha256};

/// The Ed25519 key that signs access tokens, with its RFC 7638 key id.
///
/// `Debug` never shows the private key.
#[derive(Clone)]
pub struct SigningKeys {
    key: SigningKey,
    kid: String,
}

impl SigningKeys {
    /// A fresh key from the operating system's CSPRNG: tokens it signs die with the process.
    pub fn generate() -> Self {
        Self::from_key(SigningKey::generate(&mut OsRng))
    }

    /// Reads a PKCS#8 PEM Ed25519 private key from a file (as `openssl genpkey -algorithm
    /// ed25519` writes it).
    ///
    /// # Errors
    /// The file cannot be read or does not hold such a key.
    pub fn from_pem_file(path: impl AsRef<Path>) -> anyhow::Result<Self> {
        let path = path.as_ref();
        let pem = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the signing key file {}", path.display()))?;
        Self::from_pem(&pem)
            .with_context(|| format!("{} does not hold an Ed25519 private key", path.display()))
    }

    /// Parses a PKCS#8 PEM Ed25519 private key (`-----BEGIN PRIVATE KEY-----`, v1 or v2).
    ///
    /// # Errors
    /// The text is not a PKCS#8 PEM Ed25519 private key, or its embedded public key does not
    /// match the private one.
    pub fn from_pem(pem: &str) -> anyhow::Result<Self> {
        let key = SigningKey::from_pkcs8_pem(pem.trim())
            .map_err(|e| anyhow::anyhow!("not a PKCS#8 PEM Ed25519 private key: {e}"))?;
        Ok(Self::from_key(key))
    }

    /// The private key as PKCS#8 v1 PEM, the form `openssl genpkey -algorithm ed25519` writes;
    /// [`SigningKeys::from_pem`] reads it back to the same key.
    ///
    /// # Errors
    /// Only if the encoder fails, which it does not for a valid key.
    pub fn to_pkcs8_pem(&self) -> anyhow::Result<String> {
        let bytes = KeypairBytes { secret_key: self.key.to_bytes(), public_key: None };
        let pem = bytes
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|e| anyhow::anyhow!("cannot encode the signing key: {e}"))?;
        Ok(pem.as_str().to_owned())
    }

    /// The key id: the RFC 7638 JWK thumbprint (base64url SHA-256) of the public key. The same
    /// key always has the same id.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key as a JWK set with one key, for `/.well-known/jwks.json`.
    pub fn jwks(&self) -> serde_json::Value {
        json!({
            "keys": [{
                "kty": "OKP",
                "crv": "Ed25519",
                "alg": "EdDSA",
                "use": "sig",
                "kid": self.kid,
                "x": self.public_x(),
            }]
        })
    }

    /// The private seed, to derive the deployment's other secrets from
    /// (`onboard_members::Secrets::derive`): every instance with this key derives the same ones.
    pub fn master_secret(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    /// The raw 32-byte public key.
    pub(crate) fn public_key(&self) -> [u8; 32] {
        self.key.verifying_key().to_bytes()
    }

    /// The decoded signing key, for the JWT encoder (decoded once, not per token).
    pub(crate) fn signing_key(&self) -> &SigningKey {
        &self.key
    }

    fn public_x(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.public_key())
    }

    fn from_key(key: SigningKey) -> Self {
        let x = URL_SAFE_NO_PAD.encode(key.verifying_key().to_bytes());
        // RFC 7638 §3.2: the required members, lexicographic order, no whitespace.
        let canonical = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#);
        let kid = URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()));
        Self { key, kid }
    }
}

impl fmt::Debug for SigningKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKeys").field("kid", &self.kid).finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Ed25519 private key of RFC 8410 §10.3.
    const RFC8410_PEM: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEINTuctv5E1hK1bbY8fdp+K06/nwoy/HU++CXqI9EdVhC
-----END PRIVATE KEY-----
";

    #[test]
    fn an_openssl_style_pem_key_is_read() {
        let keys = SigningKeys::from_pem(RFC8410_PEM).expect("valid key");
        // Public key of RFC 8410 §10.1; thumbprint computed independently with openssl.
        assert_eq!(keys.public_x(), "Gb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE");
        assert_eq!(keys.kid(), "3YZxBJ12jO3n_mXt_q-j_Z-TFP1vt-NiI3OCf-fEnHQ");
    }

    #[test]
    fn a_key_written_as_pem_reads_back_as_the_same_key() {
        let keys = SigningKeys::generate();
        let pem = keys.to_pkcs8_pem().expect("encodes");
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"));
        let back = SigningKeys::from_pem(&pem).expect("reads back");
        assert_eq!(back.master_secret(), keys.master_secret());
        assert_eq!(back.kid(), keys.kid());
    }

    #[test]
    fn the_openssl_fixture_is_written_back_byte_for_byte() {
        let keys = SigningKeys::from_pem(RFC8410_PEM).expect("valid key");
        assert_eq!(keys.to_pkcs8_pem().expect("encodes"), RFC8410_PEM);
    }

    #[test]
    fn the_encoder_gets_the_key_of_the_pem() {
        let keys = SigningKeys::from_pem(RFC8410_PEM).expect("valid key");
        let body: String = RFC8410_PEM.lines().filter(|l| !l.starts_with("-----")).collect();
        let der = base64::engine::general_purpose::STANDARD.decode(body).expect("base64");
        // RFC 8410 §7: the 32-byte seed ends the PKCS#8 v1 DER.
        assert_eq!(keys.signing_key().to_bytes()[..], der[der.len() - 32..]);
    }

    #[test]
    fn a_key_file_is_read() {
        let path = std::env::temp_dir().join(format!("onboard-key-{}.pem", uuid::Uuid::now_v7()));
        std::fs::write(&path, RFC8410_PEM).expect("writes");
        let keys = SigningKeys::from_pem_file(&path);
        std::fs::remove_file(&path).expect("removes");
        assert_eq!(keys.expect("reads").kid(), "3YZxBJ12jO3n_mXt_q-j_Z-TFP1vt-NiI3OCf-fEnHQ");
    }

    #[test]
    fn a_missing_file_or_garbage_is_an_error_not_a_panic() {
        assert!(SigningKeys::from_pem_file("/nonexistent/onboard.pem").is_err());
        assert!(SigningKeys::from_pem("").is_err());
        assert!(
            SigningKeys::from_pem("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----")
                .is_err()
        );
        assert!(SigningKeys::from_pem("hello").is_err());
    }

    #[test]
    fn the_kid_is_stable_for_one_key_and_differs_between_keys() {
        let keys = SigningKeys::generate();
        let again = SigningKeys::from_pem(&keys.to_pkcs8_pem().expect("encodes")).expect("reads");
        assert_eq!(keys.kid(), again.kid());
        assert_eq!(keys.kid(), keys.clone().kid());
        assert_ne!(keys.kid(), SigningKeys::generate().kid());
    }

    #[test]
    fn the_jwks_carries_the_public_key_and_kid_only() {
        let keys = SigningKeys::from_pem(RFC8410_PEM).expect("valid key");
        let jwks = keys.jwks();
        let key = &jwks["keys"][0];
        assert_eq!(jwks["keys"].as_array().map(Vec::len), Some(1));
        assert_eq!(key["kty"], "OKP");
        assert_eq!(key["crv"], "Ed25519");
        assert_eq!(key["alg"], "EdDSA");
        assert_eq!(key["use"], "sig");
        assert_eq!(key["kid"], keys.kid());
        assert_eq!(key["x"], "Gb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE");
        assert!(key.get("d").is_none());
    }

    #[test]
    fn debug_output_never_shows_the_private_key() {
        let keys = SigningKeys::from_pem(RFC8410_PEM).expect("valid key");
        let seed = keys.master_secret();
        let shown = format!("{keys:?}");
        assert!(shown.contains(keys.kid()));
        assert!(!shown.contains(&URL_SAFE_NO_PAD.encode(seed)));
        assert!(!shown.contains(&format!("{seed:?}")));
    }
}
