//! Access tokens: JWTs signed with EdDSA (Ed25519).

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signer as _, SigningKey};
use jsonwebtoken::{Algorithm, DecodingKey, Header, Validation};
use onboard_kernel::{MemberId, SessionId};
use onboard_members::AccessClaims;
use onboard_members::ports::{AccessTokens, InvalidToken};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::keys::SigningKeys;

/// Longer tokens are refused before any parsing: ours are a few hundred bytes.
const MAX_TOKEN_LEN: usize = 4096;

/// How many verified tokens [`JwtAccessTokens`] remembers (about 120 bytes each); when full,
/// it forgets them all and starts over.
const VERIFIED_CAPACITY: usize = 8192;

/// Issues and checks Onboard's access tokens.
///
/// Tokens carry the header `{"alg": "EdDSA", "typ": "JWT", "kid": …}` and the claims `iss`,
/// `aud`, `sub`, `sid`, `iat`, `exp`, `jti` and, when set, `grp`. [`AccessTokens::verify`]
/// accepts only EdDSA tokens signed by this key (with its `kid`, or no `kid`), with this
/// issuer and audience, not expired by the system clock (no leeway); any other input is
/// refused (including headers with `crit` extensions), never a panic.
///
/// # Cost
/// An Ed25519 verification is most of the CPU an authenticated request costs, and a client
/// presents the same access token on every request for its whole life. So a token that
/// verified is remembered (by its SHA-256, with its claims, up to 8,192
/// tokens): presented again, only its expiry is checked again. Everything else the
/// verification checks (signature, header, issuer, audience, claim types) depends only on the
/// token's bytes and this key, so it cannot have changed. Revocation is not part of this check
/// and is looked up on every request by the caller. The key is decoded once, not per token.
#[derive(Clone)]
pub struct JwtAccessTokens {
    signing: SigningKey,
    /// The encoded header of every token we issue, and the `.` after it.
    header_prefix: String,
    decoding: DecodingKey,
    validation: Validation,
    kid: String,
    issuer: String,
    audience: String,
    verified: Arc<Mutex<HashMap<[u8; 32], AccessClaims>>>,
    /// Seconds since the epoch (the system clock; a test moves it).
    now: fn() -> i64,
}

impl JwtAccessTokens {
    /// Tokens signed with `keys`, naming `issuer` (`iss`) and `audience` (`aud`).
    pub fn new(keys: &SigningKeys, issuer: String, audience: String) -> Self {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(keys.kid().to_owned());

        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.leeway = 0;
        validation.set_issuer(&[&issuer]);
        validation.set_audience(&[&audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);

        // jsonwebtoken writes a header the same way (`b64_encode_part`).
        let header_json = serde_json::to_vec(&header).unwrap_or_default();
        let header_prefix = format!("{}.", URL_SAFE_NO_PAD.encode(header_json));

        Self {
            signing: keys.signing_key().clone(),
            header_prefix,
            // jsonwebtoken takes the raw 32-byte public key here, not SPKI DER.
            decoding: DecodingKey::from_ed_der(&keys.public_key()),
            validation,
            kid: keys.kid().to_owned(),
            issuer,
            audience,
            verified: Arc::new(Mutex::new(HashMap::new())),
            now: system_now,
        }
    }

    /// The claims of `token` if it verified before and has not expired since; `None` when it
    /// is not remembered.
    fn remembered(&self, digest: &[u8; 32]) -> Option<Result<AccessClaims, InvalidToken>> {
        let mut verified = self.verified.lock().ok()?;
        let claims = verified.get(digest)?;
        // jsonwebtoken's rule with no leeway: expired once `exp` is before now.
        if claims.exp < (self.now)() {
            verified.remove(digest);
            return Some(Err(InvalidToken));
        }
        Some(Ok(claims.clone()))
    }

    fn remember(&self, digest: [u8; 32], claims: &AccessClaims) {
        if let Ok(mut verified) = self.verified.lock() {
            if verified.len() >= VERIFIED_CAPACITY {
                verified.clear();
            }
            verified.insert(digest, claims.clone());
        }
    }

    /// The full check of a token not remembered.
    fn verify_fully(&self, token: &str) -> Result<AccessClaims, InvalidToken> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| InvalidToken)?;
        if header.alg != Algorithm::EdDSA {
            return Err(InvalidToken);
        }
        if header.kid.as_deref().is_some_and(|kid| kid != self.kid) {
            return Err(InvalidToken);
        }
        // RFC 7515 §4.1.11: extensions we would have to understand; ours never carry any.
        if header.crit.is_some() {
            return Err(InvalidToken);
        }
        let data = jsonwebtoken::decode::<ReadClaims>(token, &self.decoding, &self.validation)
            .map_err(|_| InvalidToken)?;
        let c = data.claims;
        Ok(AccessClaims { sub: c.sub, sid: c.sid, grp: c.grp, iat: c.iat, exp: c.exp, jti: c.jti })
    }
}

fn system_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

impl fmt::Debug for JwtAccessTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtAccessTokens")
            .field("kid", &self.kid)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

/// The claims as signed.
#[derive(Serialize)]
struct SignedClaims<'a> {
    iss: &'a str,
    aud: &'a str,
    sub: MemberId,
    sid: SessionId,
    iat: i64,
    exp: i64,
    jti: Uuid,
    #[serde(skip_serializing_if = "Option::is_none")]
    grp: Option<&'a str>,
}

/// The claims as read back; jsonwebtoken checks `iss`, `aud` and `exp` itself.
#[derive(Deserialize)]
struct ReadClaims {
    sub: MemberId,
    sid: SessionId,
    iat: i64,
    exp: i64,
    jti: Uuid,
    #[serde(default)]
    grp: Option<String>,
}

impl AccessTokens for JwtAccessTokens {
    fn issue(&self, claims: &AccessClaims) -> anyhow::Result<String> {
        let signed = SignedClaims {
            iss: &self.issuer,
            aud: &self.audience,
            sub: claims.sub,
            sid: claims.sid,
            iat: claims.iat,
            exp: claims.exp,
            jti: claims.jti,
            grp: claims.grp.as_deref(),
        };
        // What `jsonwebtoken::encode` writes, with the key decoded once instead of per token.
        let claims = serde_json::to_vec(&signed)
            .map_err(|e| anyhow::anyhow!("cannot sign an access token: {e}"))?;
        let mut token = String::with_capacity(self.header_prefix.len() + claims.len() * 2 + 90);
        token.push_str(&self.header_prefix);
        URL_SAFE_NO_PAD.encode_string(claims, &mut token);
        let signature = self.signing.sign(token.as_bytes());
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(signature.to_bytes(), &mut token);
        Ok(token)
    }

    fn verify(&self, token: &str) -> Result<AccessClaims, InvalidToken> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(InvalidToken);
        }
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some(answer) = self.remembered(&digest) {
            return answer;
        }
        let claims = self.verify_fully(token)?;
        self.remember(digest, &claims);
        Ok(claims)
    }
}

#[cfg(test)]
mod tests;
