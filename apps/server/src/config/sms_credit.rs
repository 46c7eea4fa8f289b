//! SMS credit: the unit prices debited from a group's credit, and whether invite SMS are.

use anyhow::Context;
use onboard_payments::sms_credit::SmsPrices;

use super::Env;

/// `SMS_PRICE_SMS`, `SMS_PRICE_LMS`, `SMS_PRICE_ALIMTALK`: whole KRW above 0.
pub(super) fn prices(env: &Env<'_>) -> anyhow::Result<SmsPrices> {
    let defaults = SmsPrices::default();
    let price = |name: &str, default: i64| -> anyhow::Result<i64> {
        let price = env.num(name, u64::try_from(default).unwrap_or(0))?;
        i64::try_from(price)
            .ok()
            .filter(|p| *p > 0)
            .with_context(|| format!("{name} must be a whole number of KRW above 0, not {price}"))
    };
    Ok(SmsPrices {
        sms: price("SMS_PRICE_SMS", defaults.sms)?,
        lms: price("SMS_PRICE_LMS", defaults.lms)?,
        alimtalk: price("SMS_PRICE_ALIMTALK", defaults.alimtalk)?,
    })
}

/// `BILL_INVITE_SMS` (false).
pub(super) fn bill_invite_sms(env: &Env<'_>) -> anyhow::Result<bool> {
    env.flag("BILL_INVITE_SMS", false)
}
