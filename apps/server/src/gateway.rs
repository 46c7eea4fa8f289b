//! The payment gateway the settings ask for.

use std::sync::Arc;

use onboard_gateway::{PortOneGateway, SimulatedGateway};
use onboard_kernel::Clock;
use onboard_payments::gateway::PaymentGateway;

use crate::config::GatewaySettings;

/// The gateway every call goes through, and the same gateway again when it is the simulated
/// one (for its test calls, its webhook sink and its executor).
pub type Gateways = (Arc<dyn PaymentGateway>, Option<Arc<SimulatedGateway>>);

/// Builds the payment gateway. With the simulated gateway, the second value is that same
/// gateway, for the wiring to mount the test calls (`routes::sim::configure`), to hand it the
/// webhook sink (`set_webhook_sink`, once the payments service exists) and to start its
/// executor (`spawn_executor`, after the sink). With PortOne it is `None`.
///
/// Fails only when the PortOne HTTP client cannot be built (a malformed `PORTONE_API_URL`).
pub fn build_gateway(
    settings: &GatewaySettings,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<Gateways> {
    match settings {
        GatewaySettings::Simulated => {
            let sim = Arc::new(SimulatedGateway::new(clock));
            Ok((sim.clone(), Some(sim)))
        }
        GatewaySettings::PortOne(config) => {
            tracing::debug!(api = %config.base_url, "payment gateway: PortOne");
            Ok((Arc::new(PortOneGateway::new(config.clone())?), None))
        }
    }
}

#[cfg(test)]
mod tests {
    use onboard_gateway::PortOneConfig;
    use onboard_kernel::SystemClock;
    use secrecy::SecretString;

    use super::*;

    #[test]
    fn the_simulated_setting_builds_a_simulated_gateway_and_hands_it_back() {
        let (gateway, sim) =
            build_gateway(&GatewaySettings::Simulated, Arc::new(SystemClock)).expect("builds");
        assert!(sim.is_some());
        assert_eq!(gateway.client_config()["pg"], "simulated");
    }

    #[test]
    fn the_portone_setting_builds_portone_without_test_calls() {
        let config = PortOneConfig::new("key", SecretString::from("secret"), "imp12345678");
        let (gateway, sim) =
            build_gateway(&GatewaySettings::PortOne(config), Arc::new(SystemClock))
                .expect("builds");
        assert!(sim.is_none());
        assert_eq!(gateway.client_config()["merchant_id"], "imp12345678");
    }
}
