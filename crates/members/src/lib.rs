//! # onboard-members
//!
//! Phone sign-in with one-time codes, rotating refresh sessions and member profiles, as a pure
//! domain: the crate does no I/O itself. It talks to the world through the traits in
//! [`ports`]; Onboard's adapters implement them for PostgreSQL, Redis and memory, and you may
//! bring your own.
//!
//! ## Using the service with your own adapters
//!
//! ```
//! use std::sync::Arc;
//! use async_trait::async_trait;
//! use onboard_kernel::{PhoneNumber, SystemClock};
//! use onboard_members::ports::*;
//! use onboard_members::{ClientInfo, MembersConfig, MembersPorts, MembersService, Secrets};
//!
//! /// An SMS sender of your own: here, one that prints.
//! struct PrintSms;
//!
//! #[async_trait]
//! impl SmsSender for PrintSms {
//!     async fn send(&self, to: &PhoneNumber, text: &str) -> anyhow::Result<()> {
//!         println!("to {to}: {text}");
//!         Ok(())
//!     }
//! }
//!
//! # fn build(
//! #     otp: Arc<dyn OtpStore>, limiter: Arc<dyn RateLimiter>, members: Arc<dyn MemberRepository>,
//! #     sessions: Arc<dyn SessionRepository>, revocations: Arc<dyn RevocationList>,
//! #     tokens: Arc<dyn AccessTokens>,
//! # ) -> MembersService {
//! let service = MembersService::new(
//!     MembersPorts {
//!         otp, limiter, members, sessions, revocations, tokens,
//!         sms: Arc::new(PrintSms),
//!         clock: Arc::new(SystemClock),
//!     },
//!     MembersConfig { otp_length: 4, ..MembersConfig::default() },
//!     Secrets::derive(b"one secret shared by every instance"),
//! );
//! # service
//! # }
//! # async fn sign_in(service: MembersService) -> anyhow::Result<()> {
//! let phone = PhoneNumber::parse("+79174445566", None)?;
//! let issued = service.request_otp(phone, &ClientInfo::default()).await?;
//! assert_eq!(issued.expires_in, 300);
//! # Ok(())
//! # }
//! # // Runs for real with the `mocks` feature (stand-ins for the other ports); compiles only
//! # // without it.
//! # #[cfg(feature = "mocks")]
//! # fn main() -> anyhow::Result<()> {
//! #     let mut otp = MockOtpStore::new();
//! #     otp.expect_issue().times(1).returning(|_, _, _, _| Ok(IssueOutcome::Issued));
//! #     let service = build(
//! #         Arc::new(otp), Arc::new(MockRateLimiter::new()), Arc::new(MockMemberRepository::new()),
//! #         Arc::new(MockSessionRepository::new()), Arc::new(MockRevocationList::new()),
//! #         Arc::new(MockAccessTokens::new()),
//! #     );
//! #     tokio::runtime::Builder::new_current_thread().build()?.block_on(sign_in(service))
//! # }
//! # #[cfg(not(feature = "mocks"))]
//! # fn main() {}
//! ```
//!
//! ## Testing your code against the mocks
//!
//! Enable the `mocks` feature in your `[dev-dependencies]`
//! (`onboard-members = { version = "…", features = ["mocks"] }`) and every port has a
//! mockall twin. In your crate the test below carries `#[tokio::test]`; here the example's
//! hidden `main` runs it.
//!
//! ```
//! # #[cfg(feature = "mocks")]
//! # mod demo {
//! use onboard_kernel::PhoneNumber;
//! use onboard_members::ports::{MockSmsSender, SmsSender};
//!
//! /// Code of yours that sends a welcome message.
//! async fn welcome(sms: &dyn SmsSender, to: &PhoneNumber) -> anyhow::Result<()> {
//!     sms.send(to, "Welcome aboard").await
//! }
//!
//! // #[tokio::test]
//! async fn the_welcome_message_goes_to_the_new_member() {
//!     let to = PhoneNumber::parse("+79174445566", None).unwrap();
//!     let mut sms = MockSmsSender::new();
//!     sms.expect_send()
//!         .withf(|phone, text| phone.as_e164() == "+79174445566" && text.contains("Welcome"))
//!         .times(1)
//!         .returning(|_, _| Ok(()));
//!     welcome(&sms, &to).await.unwrap();
//! }
//! # pub fn run() {
//! #     let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
//! #     runtime.block_on(the_welcome_message_goes_to_the_new_member());
//! # }
//! # }
//! # fn main() {
//! #     #[cfg(feature = "mocks")]
//! #     demo::run();
//! # }
//! ```

pub mod config;
pub mod error;
pub mod events;
pub mod model;
pub mod ports;
mod service;

pub use config::{MembersConfig, Secrets};
pub use error::*;
pub use model::*;
pub use service::{
    MembersPorts, MembersService, ReferralCodeGenerator, SessionListing, VerifyOtp, token_hash,
};
