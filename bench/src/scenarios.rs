//! The six scenarios of `make bench`, and the unmeasured warm-up each needs.
//!
//! | scenario | one operation |
//! |---|---|
//! | `otp_request` | `POST /auth/otp` for a phone never seen before |
//! | `signin` | `POST /auth/otp` then `/auth/otp/verify` with the echoed code: a new member (and their personal workspace) |
//! | `refresh` | `POST /auth/token/refresh` with a pool member's live refresh token |
//! | `me` | `GET /members/me` as a pool member |
//! | `redeem` | `POST /referrals/redeem` by a member who never redeemed, of a random seeded member's code |
//! | `invite_accept` | `POST /groups/{slug}/invites` by a pool member for another one's phone, then `POST /invites/{code}/accept` by that one |

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure};
use reqwest::Client;

use crate::api::{Account, Api, Failure};
use crate::identities::{PhoneRange, PhoneSource, seeded_code};
use crate::load::{Measured, drive};

/// A scenario of the bench.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    OtpRequest,
    SignIn,
    Refresh,
    Me,
    Redeem,
    InviteAccept,
}

impl Scenario {
    /// Every scenario, in the order a full run takes them.
    pub const ALL: [Self; 6] =
        [Self::OtpRequest, Self::SignIn, Self::Refresh, Self::Me, Self::Redeem, Self::InviteAccept];

    /// The name in `results.json`.
    pub fn name(self) -> &'static str {
        match self {
            Self::OtpRequest => "otp_request",
            Self::SignIn => "signin",
            Self::Refresh => "refresh",
            Self::Me => "me",
            Self::Redeem => "redeem",
            Self::InviteAccept => "invite_accept",
        }
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Scenario {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|sc| sc.name() == s).ok_or_else(|| {
            let names: Vec<_> = Self::ALL.iter().map(|sc| sc.name()).collect();
            format!("no scenario {s:?} (one of {})", names.join(", "))
        })
    }
}

/// How a run is shaped.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Length of each measured scenario.
    pub duration: Duration,
    /// Members `seed.sql` wrote (`redeem` redeems their codes).
    pub seeded: u64,
    /// Signed-in members that `refresh`, `me` and `invite_accept` act as.
    pub pool: usize,
    /// Fresh members to have signed in before `redeem` (each redeems once); by default
    /// [`Bench::redeemers_needed`] guesses.
    pub redeemers: Option<usize>,
}

/// One server under test and what the scenarios carry over from one to the next.
#[derive(Debug)]
pub struct Bench {
    api: Api,
    /// One client (one connection) per worker.
    clients: Vec<Client>,
    plan: Plan,
    /// Signed-in members for `refresh`, `me` and `invite_accept`.
    pool: Vec<Account>,
    /// Signed-in members who have not redeemed a code: `signin`'s, then warm-up ones.
    fresh: Vec<Account>,
    otp_phones: Arc<PhoneSource>,
    signin_phones: Arc<PhoneSource>,
    pool_phones: Arc<PhoneSource>,
    redeemer_phones: Arc<PhoneSource>,
    /// The next (owner, invitee) pair of `invite_accept`.
    next_pair: Arc<AtomicU64>,
    /// The rate `me` reached, if it ran: an upper bound for `redeem`, which authenticates the
    /// same way and then writes.
    me_rate: Option<f64>,
}

impl Bench {
    /// A bench of `clients.len()` concurrent workers against `api`.
    pub fn new(api: Api, clients: Vec<Client>, plan: Plan) -> anyhow::Result<Self> {
        ensure!(!clients.is_empty(), "at least one worker is needed");
        ensure!(
            plan.pool >= clients.len().max(2),
            "the pool ({}) must hold at least one member per worker ({})",
            plan.pool,
            clients.len()
        );
        Ok(Self {
            api,
            clients,
            plan,
            pool: Vec::new(),
            fresh: Vec::new(),
            otp_phones: Arc::new(PhoneSource::new(PhoneRange::OtpRequest)),
            signin_phones: Arc::new(PhoneSource::new(PhoneRange::SignIn)),
            pool_phones: Arc::new(PhoneSource::new(PhoneRange::Pool)),
            redeemer_phones: Arc::new(PhoneSource::new(PhoneRange::Redeemers)),
            next_pair: Arc::new(AtomicU64::new(0)),
            me_rate: None,
        })
    }

    /// Whatever `scenario` needs before it is measured: signed-in members. Not measured.
    pub async fn prepare(&mut self, scenario: Scenario) -> anyhow::Result<()> {
        match scenario {
            Scenario::Refresh | Scenario::Me | Scenario::InviteAccept => {
                let missing = self.plan.pool.saturating_sub(self.pool.len());
                if missing > 0 {
                    let phones = Arc::clone(&self.pool_phones);
                    let accounts = self.sign_in_many(&phones, missing, "pool").await?;
                    self.pool.extend(accounts);
                    ensure!(
                        self.pool.len() >= self.clients.len().max(2),
                        "only {} pool members could sign in",
                        self.pool.len()
                    );
                }
            }
            Scenario::Redeem => {
                ensure!(self.plan.seeded > 0, "redeem needs seeded members (their codes)");
                let missing = self.redeemers_needed().saturating_sub(self.fresh.len());
                if missing > 0 {
                    let phones = Arc::clone(&self.redeemer_phones);
                    let accounts = self.sign_in_many(&phones, missing, "redeemers").await?;
                    self.fresh.extend(accounts);
                }
            }
            Scenario::OtpRequest | Scenario::SignIn => {}
        }
        Ok(())
    }

    /// Redeemers for the whole of `redeem`: as planned, or enough for 2 500/s (the target and a
    /// margin), or for 1.1 times the rate `me` reached when that is lower. Should the guess be
    /// short, `redeem` stops early and says so.
    fn redeemers_needed(&self) -> usize {
        if let Some(planned) = self.plan.redeemers {
            return planned;
        }
        let rate = self.me_rate.map_or(2_500.0, |me| (me * 1.1).min(2_500.0));
        (rate * self.plan.duration.as_secs_f64()).ceil() as usize
    }

    /// Measures `scenario` for the plan's duration.
    pub async fn measure(&mut self, scenario: Scenario) -> anyhow::Result<Measured> {
        match scenario {
            Scenario::OtpRequest => self.otp_request().await,
            Scenario::SignIn => self.signin().await,
            Scenario::Refresh => self.refresh().await,
            Scenario::Me => {
                let measured = self.me().await?;
                self.me_rate = Some(measured.rate());
                Ok(measured)
            }
            Scenario::Redeem => self.redeem().await,
            Scenario::InviteAccept => self.invite_accept().await,
        }
    }

    async fn otp_request(&mut self) -> anyhow::Result<Measured> {
        let (api, phones) = (self.api.clone(), Arc::clone(&self.otp_phones));
        let (measured, _) = drive(&self.clients, self.plan.duration, |_, client, mut rec| {
            let (api, phones) = (api.clone(), Arc::clone(&phones));
            async move {
                while rec.running() {
                    let phone = phones.take();
                    let started = Instant::now();
                    let result = api.request_otp(&client, &phone).await;
                    rec.record(started, &result);
                }
                (rec, ())
            }
        })
        .await?;
        Ok(measured)
    }

    /// The members it creates become redeemers for `redeem`.
    async fn signin(&mut self) -> anyhow::Result<Measured> {
        let (api, phones) = (self.api.clone(), Arc::clone(&self.signin_phones));
        let (measured, created) = drive(&self.clients, self.plan.duration, |_, client, mut rec| {
            let (api, phones) = (api.clone(), Arc::clone(&phones));
            async move {
                let mut created = Vec::new();
                while rec.running() {
                    let phone = phones.take();
                    let started = Instant::now();
                    let result = api.sign_in(&client, &phone).await;
                    rec.record(started, &result);
                    if let Ok(account) = result {
                        created.push(account);
                    }
                }
                (rec, created)
            }
        })
        .await?;
        self.fresh.extend(created.into_iter().flatten());
        Ok(measured)
    }

    /// Each worker rotates the sessions of its own share of the pool, one after the other.
    async fn refresh(&mut self) -> anyhow::Result<Measured> {
        let workers = self.clients.len();
        let api = self.api.clone();
        let shares: Vec<Vec<(usize, String)>> = (0..workers)
            .map(|w| {
                (w..self.pool.len())
                    .step_by(workers)
                    .map(|i| (i, self.pool[i].refresh_token.clone()))
                    .collect()
            })
            .collect();
        let shares = Arc::new(std::sync::Mutex::new(shares));
        let (measured, rotated) = drive(&self.clients, self.plan.duration, |w, client, mut rec| {
            let api = api.clone();
            let mut share =
                shares.lock().map(|mut s| std::mem::take(&mut s[w])).unwrap_or_default();
            async move {
                let mut turn = 0;
                while rec.running() && !share.is_empty() {
                    let slot = turn % share.len();
                    turn += 1;
                    let started = Instant::now();
                    let result = api.refresh(&client, &share[slot].1).await;
                    rec.record(started, &result);
                    if let Ok(token) = result {
                        share[slot].1 = token;
                    }
                }
                (rec, share)
            }
        })
        .await?;
        for (i, token) in rotated.into_iter().flatten() {
            self.pool[i].refresh_token = token;
        }
        Ok(measured)
    }

    async fn me(&mut self) -> anyhow::Result<Measured> {
        let workers = self.clients.len();
        let api = self.api.clone();
        let tokens: Arc<Vec<String>> =
            Arc::new(self.pool.iter().map(|a| a.access_token.clone()).collect());
        let (measured, _) = drive(&self.clients, self.plan.duration, |w, client, mut rec| {
            let (api, tokens) = (api.clone(), Arc::clone(&tokens));
            async move {
                let mut i = w;
                while rec.running() {
                    let token = &tokens[i % tokens.len()];
                    i += workers;
                    let started = Instant::now();
                    let result = api.me(&client, token).await;
                    rec.record(started, &result);
                }
                (rec, ())
            }
        })
        .await?;
        Ok(measured)
    }

    /// Each fresh member redeems the code of a random seeded member, once. Seeded members never
    /// redeem, so no chain is longer than one link and no redemption closes a cycle.
    async fn redeem(&mut self) -> anyhow::Result<Measured> {
        let seeded = self.plan.seeded;
        if seeded == 0 {
            bail!("redeem needs seeded members");
        }
        let api = self.api.clone();
        let fresh = Arc::new(std::mem::take(&mut self.fresh));
        let next = Arc::new(AtomicUsize::new(0));
        let (measured, _) = drive(&self.clients, self.plan.duration, |w, client, mut rec| {
            let (api, fresh, next) = (api.clone(), Arc::clone(&fresh), Arc::clone(&next));
            async move {
                let mut rng = XorShift::new(w as u64 + 1);
                while rec.running() {
                    let code = seeded_code(rng.next() % seeded + 1);
                    let started = Instant::now();
                    let result = match fresh.get(next.fetch_add(1, Ordering::Relaxed)) {
                        Some(member) => api.redeem(&client, &member.access_token, &code).await,
                        None => Err(Failure::Exhausted),
                    };
                    rec.record(started, &result);
                }
                (rec, ())
            }
        })
        .await?;
        let used = next.load(Ordering::Relaxed);
        self.fresh = fresh.iter().skip(used).cloned().collect();
        Ok(measured)
    }

    /// Operation `k` pairs a pool member (owner of their personal workspace) with another one
    /// (the invitee, by phone); no pair repeats until the pool's n(n-1) pairs are used up.
    async fn invite_accept(&mut self) -> anyhow::Result<Measured> {
        let api = self.api.clone();
        let pool = Arc::new(self.pool.clone());
        let next = Arc::clone(&self.next_pair);
        let (measured, _) = drive(&self.clients, self.plan.duration, |_, client, mut rec| {
            let (api, pool, next) = (api.clone(), Arc::clone(&pool), Arc::clone(&next));
            async move {
                while rec.running() {
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    let started = Instant::now();
                    let result = match pair(k, pool.len()) {
                        None => Err(Failure::Exhausted),
                        Some((owner, invitee)) => {
                            invite_and_accept(&api, &client, &pool[owner], &pool[invitee]).await
                        }
                    };
                    rec.record(started, &result);
                }
                (rec, ())
            }
        })
        .await?;
        Ok(measured)
    }

    /// Signs in `count` new members from `phones`, all workers at once. Not measured.
    async fn sign_in_many(
        &self,
        phones: &Arc<PhoneSource>,
        count: usize,
        what: &str,
    ) -> anyhow::Result<Vec<Account>> {
        let started = Instant::now();
        let api = self.api.clone();
        let left = Arc::new(AtomicUsize::new(count));
        let (measured, accounts) =
            drive(&self.clients, Duration::from_secs(3600), |_, client, mut rec| {
                let (api, phones, left) = (api.clone(), Arc::clone(phones), Arc::clone(&left));
                async move {
                    let mut accounts = Vec::new();
                    while rec.running() {
                        let started = Instant::now();
                        let result = if left
                            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                                n.checked_sub(1)
                            })
                            .is_err()
                        {
                            Err(Failure::Exhausted)
                        } else {
                            api.sign_in(&client, &phones.take()).await
                        };
                        rec.record(started, &result);
                        if let Ok(account) = result {
                            accounts.push(account);
                        }
                    }
                    (rec, accounts)
                }
            })
            .await?;
        eprintln!(
            "  warm-up: {} {what} signed in in {:.1} s ({:.0}/s, not measured)",
            measured.ok,
            started.elapsed().as_secs_f64(),
            measured.rate()
        );
        for line in measured.failure_lines() {
            eprintln!("  warm-up failures: {line}");
        }
        ensure!(measured.ok > 0 || count == 0, "no {what} could sign in");
        Ok(accounts.into_iter().flatten().collect())
    }
}

/// An invite from `owner`'s personal workspace to `invitee`'s phone, accepted by `invitee`.
async fn invite_and_accept(
    api: &Api,
    client: &Client,
    owner: &Account,
    invitee: &Account,
) -> Result<(), Failure> {
    let Some(slug) = owner.workspace.as_deref() else {
        return Err(Failure::Body(
            "the owner has no personal workspace (PERSONAL_WORKSPACE off?)".into(),
        ));
    };
    let code = api.create_invite(client, &owner.access_token, slug, &invitee.phone).await?;
    api.accept_invite(client, &invitee.access_token, &code).await
}

/// The `k`-th (owner, invitee) pair of `n` members: every ordered pair of two distinct members
/// once, for `k` below n(n-1); `None` after that.
fn pair(k: u64, n: usize) -> Option<(usize, usize)> {
    let n64 = n as u64;
    if n < 2 || k >= n64 * (n64 - 1) {
        return None;
    }
    let owner = k % n64;
    let offset = 1 + (k / n64) % (n64 - 1);
    let invitee = (owner + offset) % n64;
    Some((usize::try_from(owner).ok()?, usize::try_from(invitee).ok()?))
}

/// A tiny xorshift64* generator: enough to spread codes, no dependency.
#[derive(Debug)]
struct XorShift(u64);

impl XorShift {
    fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn invite_pairs_never_repeat_and_never_pair_a_member_with_itself() {
        let n = 7;
        let pairs: Vec<_> = (0..).map_while(|k| pair(k, n)).collect();
        assert_eq!(pairs.len(), n * (n - 1));
        assert!(pairs.iter().all(|(a, b)| a != b && *a < n && *b < n));
        assert_eq!(pairs.iter().collect::<HashSet<_>>().len(), pairs.len());
        assert_eq!(pair(0, 1), None);
    }

    #[test]
    fn scenarios_are_named_as_in_the_results() {
        for scenario in Scenario::ALL {
            assert_eq!(scenario.name().parse::<Scenario>(), Ok(scenario));
        }
        assert!("nope".parse::<Scenario>().is_err());
    }

    #[test]
    fn the_generator_spreads_over_the_seeded_members() {
        let mut rng = XorShift::new(1);
        let picks: HashSet<u64> = (0..1_000).map(|_| rng.next() % 100).collect();
        assert!(picks.len() > 90);
    }
}
