//! The few Onboard API calls the scenarios make, over one keep-alive connection per worker.
//!
//! Every call reads the whole answer (so the connection goes back to the pool) and turns
//! anything but the expected 2xx into a [`Failure`].

use std::fmt;
use std::time::Duration;

use reqwest::{Client, Response, StatusCode};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::json;

/// Why an operation did not succeed.
#[derive(Debug)]
pub enum Failure {
    /// The server answered with a status other than the one expected.
    Status { status: StatusCode, body: String },
    /// No answer: connection refused or reset, timeout.
    Transport(String),
    /// A 2xx whose body was not what the API documents.
    Body(String),
    /// The scenario has no input left (its pool of fresh members is used up): not an error.
    Exhausted,
}

impl Failure {
    /// A short key to count failures by: the status code, or the kind of failure.
    pub fn kind(&self) -> String {
        match self {
            Self::Status { status, .. } => status.as_u16().to_string(),
            Self::Transport(_) => "transport".to_owned(),
            Self::Body(_) => "body".to_owned(),
            Self::Exhausted => "exhausted".to_owned(),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Status { status, body } => write!(f, "HTTP {status}: {body}"),
            Self::Transport(e) => write!(f, "transport: {e}"),
            Self::Body(e) => write!(f, "unexpected body: {e}"),
            Self::Exhausted => f.write_str("no input left"),
        }
    }
}

/// A member signed in through the API.
#[derive(Debug, Clone)]
pub struct Account {
    pub phone: String,
    pub access_token: String,
    pub refresh_token: String,
    /// Slug of the member's personal workspace (their current group after sign-up).
    pub workspace: Option<String>,
}

/// One HTTP client per worker: one keep-alive connection each, so `concurrency` workers hold
/// exactly `concurrency` connections.
pub fn worker_client() -> anyhow::Result<Client> {
    Ok(Client::builder()
        .pool_max_idle_per_host(1)
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(30))
        .user_agent("onboard-bench")
        .build()?)
}

/// The API of one server.
#[derive(Debug, Clone)]
pub struct Api {
    /// `http://host:port`, without a trailing slash.
    origin: String,
}

#[derive(Deserialize)]
struct OtpIssued {
    dev_code: Option<String>,
}

#[derive(Deserialize)]
struct SignedIn {
    access_token: String,
    refresh_token: String,
    member: SignedInMember,
}

#[derive(Deserialize)]
struct SignedInMember {
    phone: Option<String>,
    current_group: Option<String>,
}

#[derive(Deserialize)]
struct Tokens {
    refresh_token: String,
}

#[derive(Deserialize)]
struct CreatedInvite {
    code: String,
}

impl Api {
    /// The API served at `origin` (`http://127.0.0.1:8080`).
    pub fn new(origin: &str) -> Self {
        Self { origin: origin.trim_end_matches('/').to_owned() }
    }

    fn url(&self, path: &str) -> String {
        format!("{}/api/v1{path}", self.origin)
    }

    /// Whether `/health/ready` answers 200.
    pub async fn ready(&self, client: &Client) -> bool {
        let url = format!("{}/health/ready", self.origin);
        match client.get(url).send().await {
            Ok(resp) => resp.status().is_success(),
            Err(_) => false,
        }
    }

    /// `POST /auth/otp`: asks a code for `phone` and answers the echoed code.
    pub async fn request_otp(&self, client: &Client, phone: &str) -> Result<String, Failure> {
        let resp = client.post(self.url("/auth/otp")).json(&json!({ "phone": phone })).send().await;
        let issued: OtpIssued = parse(expect(resp, StatusCode::ACCEPTED).await?)?;
        issued.dev_code.ok_or_else(|| Failure::Body("no dev_code: is OTP_ECHO on?".to_owned()))
    }

    /// `POST /auth/otp/verify`.
    pub async fn verify_otp(
        &self,
        client: &Client,
        phone: &str,
        code: &str,
    ) -> Result<Account, Failure> {
        let resp = client
            .post(self.url("/auth/otp/verify"))
            .json(&json!({ "phone": phone, "code": code }))
            .send()
            .await;
        let signed: SignedIn = parse(expect(resp, StatusCode::OK).await?)?;
        Ok(Account {
            phone: signed.member.phone.unwrap_or_else(|| phone.to_owned()),
            access_token: signed.access_token,
            refresh_token: signed.refresh_token,
            workspace: signed.member.current_group,
        })
    }

    /// A code request then its verification: a new member for a new phone.
    pub async fn sign_in(&self, client: &Client, phone: &str) -> Result<Account, Failure> {
        let code = self.request_otp(client, phone).await?;
        self.verify_otp(client, phone, &code).await
    }

    /// `POST /auth/token/refresh`: answers the new refresh token.
    pub async fn refresh(&self, client: &Client, refresh_token: &str) -> Result<String, Failure> {
        let resp = client
            .post(self.url("/auth/token/refresh"))
            .json(&json!({ "refresh_token": refresh_token }))
            .send()
            .await;
        let tokens: Tokens = parse(expect(resp, StatusCode::OK).await?)?;
        Ok(tokens.refresh_token)
    }

    /// `GET /members/me`.
    pub async fn me(&self, client: &Client, access_token: &str) -> Result<(), Failure> {
        let resp = client.get(self.url("/members/me")).bearer_auth(access_token).send().await;
        expect(resp, StatusCode::OK).await.map(drop)
    }

    /// `POST /referrals/redeem`.
    pub async fn redeem(
        &self,
        client: &Client,
        access_token: &str,
        code: &str,
    ) -> Result<(), Failure> {
        let resp = client
            .post(self.url("/referrals/redeem"))
            .bearer_auth(access_token)
            .json(&json!({ "code": code }))
            .send()
            .await;
        expect(resp, StatusCode::OK).await.map(drop)
    }

    /// `POST /groups/{slug}/invites` for `phone`: answers the invite code.
    pub async fn create_invite(
        &self,
        client: &Client,
        access_token: &str,
        slug: &str,
        phone: &str,
    ) -> Result<String, Failure> {
        let resp = client
            .post(self.url(&format!("/groups/{slug}/invites")))
            .bearer_auth(access_token)
            .json(&json!({ "name": "Bench invitee", "phone": phone }))
            .send()
            .await;
        let created: CreatedInvite = parse(expect(resp, StatusCode::CREATED).await?)?;
        Ok(created.code)
    }

    /// `POST /invites/{code}/accept`.
    pub async fn accept_invite(
        &self,
        client: &Client,
        access_token: &str,
        code: &str,
    ) -> Result<(), Failure> {
        let resp = client
            .post(self.url(&format!("/invites/{code}/accept")))
            .bearer_auth(access_token)
            .send()
            .await;
        expect(resp, StatusCode::OK).await.map(drop)
    }
}

/// Reads the whole body; anything but `expected` is a failure carrying the start of the body.
async fn expect(
    resp: Result<Response, reqwest::Error>,
    expected: StatusCode,
) -> Result<Vec<u8>, Failure> {
    let resp = resp.map_err(|e| Failure::Transport(e.to_string()))?;
    let status = resp.status();
    let body = resp.bytes().await.map_err(|e| Failure::Transport(e.to_string()))?;
    if status == expected {
        Ok(body.to_vec())
    } else {
        let text = String::from_utf8_lossy(&body);
        Err(Failure::Status { status, body: text.chars().take(300).collect() })
    }
}

fn parse<T: DeserializeOwned>(body: Vec<u8>) -> Result<T, Failure> {
    serde_json::from_slice(&body).map_err(|e| Failure::Body(e.to_string()))
}
