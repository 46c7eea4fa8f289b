//! `onboard-bench webhooks`: the fan-out of outgoing webhooks. Against a running server (with
//! `WEBHOOKS_ALLOW_PRIVATE=true`), a group gets `endpoints` endpoints pointing at a receiver in
//! this process (a minimal HTTP/1.1 server answering 204); `events` role changes are made one
//! after the other (each records one `group.member_role_changed` event: the write path's only
//! webhooks cost is that outbox row); then the time until every delivery arrived gives the
//! deliveries per second. Write-path latency is measured twice: with no endpoint, and with the
//! endpoints while their deliveries flow.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use reqwest::Client;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

/// What one run measured.
#[derive(Debug)]
pub struct FanOut {
    pub events: usize,
    pub endpoints: usize,
    pub deliveries: u64,
    /// From the first role change to the last delivery.
    pub seconds: f64,
    /// From the first role change to the last.
    pub writes_seconds: f64,
    pub write_p50_ms_without: f64,
    pub write_p50_ms_with: f64,
}

impl FanOut {
    pub fn deliveries_per_second(&self) -> f64 {
        self.deliveries as f64 / self.seconds
    }
}

/// Serves one keep-alive connection: reads each request (headers, then `content-length`
/// bytes), counts it, answers 204.
async fn serve(mut stream: TcpStream, count: Arc<AtomicU64>) {
    let mut buf = Vec::with_capacity(8192);
    let mut chunk = [0u8; 8192];
    loop {
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        while buf.len() < head_end + length {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        buf.drain(..head_end + length);
        count.fetch_add(1, Ordering::Relaxed);
        if stream.write_all(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n").await.is_err()
        {
            return;
        }
    }
}

/// A receiver on a free port of 127.0.0.1; answers its URL and its request counter.
async fn receiver() -> anyhow::Result<(String, Arc<AtomicU64>)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hook", listener.local_addr()?);
    let count = Arc::new(AtomicU64::new(0));
    let counter = count.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let _ = stream.set_nodelay(true);
            tokio::spawn(serve(stream, counter.clone()));
        }
    });
    Ok((url, count))
}

struct Client2 {
    client: Client,
    origin: String,
}

impl Client2 {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: &Value,
    ) -> anyhow::Result<Value> {
        let mut req =
            self.client.request(method, format!("{}/api/v1{path}", self.origin)).json(body);
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        let resp = req.send().await?;
        let status = resp.status();
        let text = resp.text().await?;
        if !status.is_success() {
            bail!("{path}: {status}: {text}");
        }
        Ok(if text.is_empty() { Value::Null } else { serde_json::from_str(&text)? })
    }

    /// Signs `phone` in; answers the access token and the member id.
    async fn sign_in(&self, phone: &str) -> anyhow::Result<(String, String)> {
        let otp =
            self.call(reqwest::Method::POST, "/auth/otp", None, &json!({ "phone": phone })).await?;
        let code = otp["dev_code"].as_str().context("no dev_code: is OTP_ECHO on?")?;
        let body = json!({ "phone": phone, "code": code });
        let signed = self.call(reqwest::Method::POST, "/auth/otp/verify", None, &body).await?;
        let token = signed["access_token"].as_str().context("a token")?.to_owned();
        let id = signed["member"]["id"].as_str().context("an id")?.to_owned();
        Ok((token, id))
    }
}

/// `n` role changes of `member` in `slug`, one after the other; answers their latencies (ms).
async fn role_changes(
    api: &Client2,
    owner: &str,
    slug: &str,
    member: &str,
    n: usize,
) -> anyhow::Result<Vec<f64>> {
    let mut latencies = Vec::with_capacity(n);
    for i in 0..n {
        let role = if i % 2 == 0 { "admin" } else { "member" };
        let started = Instant::now();
        let path = format!("/groups/{slug}/members/{member}");
        api.call(reqwest::Method::PUT, &path, Some(owner), &json!({ "role": role })).await?;
        latencies.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    latencies.sort_by(f64::total_cmp);
    Ok(latencies)
}

/// Role changes of every member in `members`, `per_member` each, the members in parallel;
/// answers the sorted latencies (ms).
async fn role_changes_of(
    api: &Arc<Client2>,
    owner: &str,
    slug: &str,
    members: &[String],
    per_member: usize,
) -> anyhow::Result<Vec<f64>> {
    let tasks: Vec<_> = members
        .iter()
        .map(|m| {
            let (api, owner, slug, m) = (api.clone(), owner.to_owned(), slug.to_owned(), m.clone());
            tokio::spawn(async move { role_changes(&api, &owner, &slug, &m, per_member).await })
        })
        .collect();
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await??);
    }
    all.sort_by(f64::total_cmp);
    Ok(all)
}

/// Runs the fan-out benchmark against the server at `origin`: `events` role changes made by
/// 10 members' changes in parallel, `endpoints` endpoints.
pub async fn fan_out(origin: &str, events: usize, endpoints: usize) -> anyhow::Result<FanOut> {
    const WRITERS: usize = 10;
    let api = Arc::new(Client2 {
        client: Client::builder().timeout(Duration::from_secs(30)).build()?,
        origin: origin.trim_end_matches('/').to_owned(),
    });
    let (url, count) = receiver().await?;
    let run = std::process::id() % 10_000;
    let (owner, _) = api.sign_in(&format!("+7999{run:04}100")).await?;
    let slug = format!("bench-hooks-{run}");
    let body = json!({ "name": "Bench", "slug": slug });
    api.call(reqwest::Method::POST, "/groups", Some(&owner), &body).await?;
    let mut members = Vec::with_capacity(WRITERS);
    for i in 0..WRITERS {
        let (token, id) = api.sign_in(&format!("+7999{run:04}{:03}", 101 + i)).await?;
        let join = format!("/groups/{slug}/join");
        api.call(reqwest::Method::POST, &join, Some(&token), &json!({})).await?;
        members.push(id);
    }
    let per_member = events.div_ceil(WRITERS);
    let without = role_changes_of(&api, &owner, &slug, &members, per_member.min(20)).await?;
    for _ in 0..endpoints {
        let body = json!({ "url": url, "event_types": ["group.member_role_changed"] });
        let path = format!("/groups/{slug}/webhooks");
        api.call(reqwest::Method::POST, &path, Some(&owner), &body).await?;
    }
    let expected = (per_member * WRITERS * endpoints) as u64;
    let started = Instant::now();
    let with = role_changes_of(&api, &owner, &slug, &members, per_member).await?;
    let writes_done = started.elapsed().as_secs_f64();
    let deadline = Instant::now() + Duration::from_secs(300);
    while count.load(Ordering::Relaxed) < expected {
        if Instant::now() > deadline {
            bail!("{} of {expected} deliveries arrived", count.load(Ordering::Relaxed));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let seconds = started.elapsed().as_secs_f64();
    let p50 = |v: &[f64]| v.get(v.len() / 2).copied().unwrap_or(0.0);
    Ok(FanOut {
        events: per_member * WRITERS,
        endpoints,
        deliveries: count.load(Ordering::Relaxed),
        seconds,
        writes_seconds: writes_done,
        write_p50_ms_without: p50(&without),
        write_p50_ms_with: p50(&with),
    })
}
