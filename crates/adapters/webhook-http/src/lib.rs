//! # onboard-webhook-http
//!
//! [`HttpWebhookSender`]: the [`WebhookSender`] port over reqwest. Each attempt is a `POST`
//! of the JSON body with the Standard Webhooks headers, a 10 s timeout, no redirects followed
//! and no proxy.
//!
//! Server-side request forgery: unless private addresses are allowed, a URL's IP literal and
//! every address its name resolves to must be public ([`onboard_webhooks::is_public`]: not
//! loopback, private, link-local, metadata, ...). The resolver that checks the addresses is the
//! one the connection uses, so the connection goes to an address that was checked (a name that
//! resolves differently a moment later cannot slip through).

use std::error::Error as StdError;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use onboard_webhooks::is_public;
use onboard_webhooks::ports::{Answer, OutgoingRequest, SendError, WebhookSender};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// How attempts are made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SenderConfig {
    /// The most an attempt may take, answer included (10 s).
    pub timeout: Duration,
    /// Loopback, private and link-local addresses are allowed (`WEBHOOKS_ALLOW_PRIVATE`).
    pub allow_private: bool,
    /// How much of an answer's body is read (4 KiB).
    pub body_limit: usize,
}

impl Default for SenderConfig {
    fn default() -> Self {
        Self { timeout: Duration::from_secs(10), allow_private: false, body_limit: 4096 }
    }
}

type BoxError = Box<dyn StdError + Send + Sync>;

/// A name resolved to an address deliveries may not go to.
#[derive(Debug)]
struct Refused(String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl StdError for Refused {}

/// Resolves with the system resolver, then refuses the name if any address is not public.
#[derive(Debug, Clone, Copy)]
struct GuardedResolver {
    allow_private: bool,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        let allow_private = self.allow_private;
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map_err(|e| -> BoxError {
                    Box::new(Refused(format!("{host} does not resolve: {e}")))
                })?
                .collect();
            if addrs.is_empty() {
                return Err(Box::new(Refused(format!("{host} has no address"))) as BoxError);
            }
            if !allow_private && let Some(bad) = addrs.iter().find(|a| !is_public(a.ip())) {
                return Err(Box::new(Refused(format!(
                    "{host} resolves to {}, a loopback, private, link-local or metadata address",
                    bad.ip()
                ))) as BoxError);
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// [`WebhookSender`] over HTTP(S).
#[derive(Debug, Clone)]
pub struct HttpWebhookSender {
    client: reqwest::Client,
    config: SenderConfig,
}

impl HttpWebhookSender {
    /// # Errors
    /// When the HTTP client cannot be built (no TLS backend).
    pub fn new(config: SenderConfig) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .user_agent("Onboard-Webhooks/1")
            .dns_resolver(Arc::new(GuardedResolver { allow_private: config.allow_private }))
            .build()?;
        Ok(Self { client, config })
    }

    /// The URL's IP literal, when it has one that deliveries may not go to.
    fn refused_literal(&self, url: &str) -> Option<IpAddr> {
        if self.config.allow_private {
            return None;
        }
        let ip = match url::Url::parse(url).ok()?.host()? {
            url::Host::Ipv4(ip) => IpAddr::V4(ip),
            url::Host::Ipv6(ip) => IpAddr::V6(ip),
            url::Host::Domain(_) => return None,
        };
        (!is_public(ip)).then_some(ip)
    }

    /// Reads at most `body_limit` bytes of the answer's body (lossy UTF-8).
    async fn read_body(&self, mut response: reqwest::Response) -> String {
        let mut body = Vec::new();
        while body.len() < self.config.body_limit {
            match response.chunk().await {
                Ok(Some(chunk)) => body.extend_from_slice(&chunk),
                _ => break,
            }
        }
        body.truncate(self.config.body_limit);
        String::from_utf8_lossy(&body).into_owned()
    }
}

/// What a failed request amounts to.
fn classify(error: &reqwest::Error) -> SendError {
    let mut source: Option<&(dyn StdError + 'static)> = Some(error);
    while let Some(e) = source {
        if let Some(refused) = e.downcast_ref::<Refused>() {
            return SendError::Refused(refused.0.clone());
        }
        source = e.source();
    }
    if error.is_timeout() {
        return SendError::Timeout;
    }
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    SendError::Connection(text)
}

#[async_trait]
impl WebhookSender for HttpWebhookSender {
    async fn send(&self, request: &OutgoingRequest) -> Result<Answer, (SendError, Duration)> {
        let started = Instant::now();
        if let Some(ip) = self.refused_literal(request.url.as_str()) {
            let why = format!("{ip} is a loopback, private, link-local or metadata address");
            return Err((SendError::Refused(why), started.elapsed()));
        }
        let sent = self
            .client
            .post(request.url.as_str())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("webhook-id", &request.id)
            .header("webhook-timestamp", request.timestamp.to_string())
            .header("webhook-signature", &request.signature)
            .body(request.body.clone())
            .send()
            .await;
        match sent {
            Ok(response) => {
                let status = response.status().as_u16();
                let body = self.read_body(response).await;
                Ok(Answer { status, body, latency: started.elapsed() })
            }
            Err(e) => Err((classify(&e), started.elapsed())),
        }
    }
}

#[cfg(test)]
mod tests;
