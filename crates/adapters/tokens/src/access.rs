//! Access tokens: JWTs signed with EdDSA (Ed25519).

use std::fmt;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use onboard_kernel::{MemberId, SessionId};
use onboard_members::AccessClaims;
use onboard_members::ports::{AccessTokens, InvalidToken};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::keys::SigningKeys;

/// Longer tokens are refused before any parsing: ours are a few hundred bytes.
const MAX_TOKEN_LEN: usize = 4096;

/// Issues and checks Onboard's access tokens.
///
/// Tokens carry the header `{"alg": "EdDSA", "typ": "JWT", "kid": …}` and the claims `iss`,
/// `aud`, `sub`, `sid`, `iat`, `exp`, `jti` and, when set, `grp`. [`AccessTokens::verify`]
/// accepts only EdDSA tokens signed by this key (with its `kid`, or no `kid`), with this
/// issuer and audience, not expired by the system clock (no leeway); any other input is
/// refused (including headers with `crit` extensions), never a panic.
#[derive(Clone)]
pub struct JwtAccessTokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    header: Header,
    validation: Validation,
    kid: String,
    issuer: String,
    audience: String,
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

        Self {
            encoding: EncodingKey::from_ed_der(&keys.pkcs8_der()),
            // jsonwebtoken takes the raw 32-byte public key here, not SPKI DER.
            decoding: DecodingKey::from_ed_der(&keys.public_key()),
            header,
            validation,
            kid: keys.kid().to_owned(),
            issuer,
            audience,
        }
    }
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
        jsonwebtoken::encode(&self.header, &signed, &self.encoding)
            .map_err(|e| anyhow::anyhow!("cannot sign an access token: {e}"))
    }

    fn verify(&self, token: &str) -> Result<AccessClaims, InvalidToken> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(InvalidToken);
        }
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

#[cfg(test)]
mod tests;
