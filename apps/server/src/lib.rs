//! The Onboard HTTP service: configuration, wiring, handlers. The binary is `onboard`
//! (`serve`, `migrate`); end-to-end tests build an [`Application`] on port 0.

pub mod admin_cli;
pub mod config;
pub mod dto;
pub mod error;
pub mod extract;
pub mod gateway;
pub mod healthcheck;
pub mod jobs;
pub mod openapi;
pub mod routes;
pub mod startup;
pub mod state;
pub mod telemetry;

pub use config::Settings;
pub use startup::Application;

pub mod compat;
pub mod messaging_worker;
pub mod notify_worker;
pub mod sms_credit;
pub mod webhooks_worker;
