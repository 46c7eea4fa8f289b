//! `Idempotency-Key` claims: a repeated request is answered with the first answer.

use onboard_kernel::GroupId;
use sha2::{Digest, Sha256};

use crate::error::IdempotencyError;
use crate::model::StoredResponse;
use crate::ports::Claim;

use super::PaymentsService;

impl PaymentsService {
    /// A stable fingerprint of a request body, for idempotency keys.
    pub fn fingerprint(body: &[u8]) -> String {
        Sha256::digest(body).iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Claims an `Idempotency-Key` of the group for a request body fingerprint: `None` when
    /// the caller is the first and must run the request (then [`Self::complete_key`] or
    /// [`Self::release_key`]), or the first answer to replay.
    pub async fn claim_key(
        &self,
        group: GroupId,
        key: &str,
        fingerprint: &str,
    ) -> Result<Option<StoredResponse>, IdempotencyError> {
        match self.ports.idempotency.claim(group, key, fingerprint, self.now()).await? {
            Claim::Claimed => Ok(None),
            Claim::Existing { request_hash, .. } if request_hash != fingerprint => {
                Err(IdempotencyError::Reused)
            }
            Claim::Existing { response: None, .. } => Err(IdempotencyError::InUse),
            Claim::Existing { response: Some(r), .. } => Ok(Some(r)),
        }
    }

    /// Stores the answer to replay for a claimed key.
    pub async fn complete_key(
        &self,
        group: GroupId,
        key: &str,
        response: &StoredResponse,
    ) -> anyhow::Result<()> {
        self.ports.idempotency.complete(group, key, response).await
    }

    /// Forgets a claimed key whose request failed in a way worth retrying.
    pub async fn release_key(&self, group: GroupId, key: &str) -> anyhow::Result<()> {
        self.ports.idempotency.release(group, key).await
    }
}
