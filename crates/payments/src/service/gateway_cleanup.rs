//! Removing what deleted groups left at the gateway.

use super::{PaymentsService, warn};

impl PaymentsService {
    /// Cancels the scheduled charges and deletes the billing keys that deleted groups left at
    /// the gateway (recorded by storage when the group went), so a deleted workspace is never
    /// charged. Schedules go before keys. A leftover the gateway refuses now stays for the next
    /// run. Answers how many were removed.
    #[tracing::instrument(level = "debug", name = "payments.clean_up_gateway", skip_all)]
    pub async fn clean_up_gateway(&self) -> anyhow::Result<usize> {
        let mut leftovers = self.ports.billing.gateway_leftovers(100).await?;
        // Schedules first: a key is deleted only once nothing is scheduled on it.
        leftovers.sort_by_key(|l| (l.merchant_uid.is_none(), l.id));
        let mut done = 0;
        for leftover in leftovers {
            let outcome = match &leftover.merchant_uid {
                Some(merchant_uid) => self
                    .ports
                    .gateway
                    .unschedule(&leftover.customer_uid, merchant_uid)
                    .await
                    .map(|_| ()),
                None => self.ports.gateway.delete_billing_key(&leftover.customer_uid).await,
            };
            match outcome {
                Ok(()) => {
                    self.ports.billing.forget_leftover(leftover.id).await?;
                    done += 1;
                }
                Err(e) => warn(&format!(
                    "a deleted group's {} stays at the gateway for now: {e}",
                    leftover.merchant_uid.as_deref().unwrap_or(&leftover.customer_uid)
                )),
            }
        }
        Ok(done)
    }
}
