//! The Onboard HTTP service: configuration, wiring, handlers. The binary is `onboard`
//! (`serve`, `migrate`); end-to-end tests build an [`Application`] on port 0.

pub mod config;
pub mod error;
pub mod extract;
pub mod openapi;
pub mod routes;
pub mod startup;
pub mod state;
pub mod telemetry;
// gateway
pub mod gateway;
// admin
pub mod admin_cli;
// billing-pg
pub mod jobs;

pub use config::Settings;
pub use startup::Application;

// compat
pub mod compat;
// notify
pub mod notify_worker;
// credit
pub mod credit;
// messaging
pub mod messaging_worker;
