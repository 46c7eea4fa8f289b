//! Phone numbers and referral codes of the members the bench works with.
//!
//! Seeded members are written by `bench/seed.sql`, with phones `+7900nnnnnnn`; [`seeded_code`]
//! computes exactly the referral code that script stores for member `n` (1-based), so the load
//! can name seeded members without reading the database. Members the bench creates through the
//! API get phones from their own [`PhoneRange`] (`+7901…` to `+7904…`), so no two scenarios, nor
//! the seed, ever share a phone.

use std::sync::atomic::{AtomicU64, Ordering};

/// Characters of a referral code, in the order the kernel's `ReferralCode` uses.
const ALPHABET: &[u8; 36] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

/// Number of distinct six-character codes: 36^6.
pub const CODE_SPACE: u64 = 2_176_782_336;

/// Multiplier that scatters seeded codes over the code space. It is prime to 36, so
/// `n * CODE_SCRAMBLE mod CODE_SPACE` is a bijection: distinct members get distinct codes.
pub const CODE_SCRAMBLE: u64 = 1_000_003;

/// Numbers per phone range: seven digits after the `+79xx` prefix.
pub const RANGE_SIZE: u64 = 10_000_000;

/// The referral code of seeded member `n` (`seed.sql` computes the same base-36 digits).
pub fn seeded_code(n: u64) -> String {
    let mut value = (n % CODE_SPACE) * CODE_SCRAMBLE % CODE_SPACE;
    let mut code = [b'A'; 6];
    for slot in code.iter_mut().rev() {
        // `value % 36` is below 36, so the index is in bounds.
        *slot = ALPHABET[usize::try_from(value % 36).unwrap_or(0)];
        value /= 36;
    }
    code.iter().map(|&b| char::from(b)).collect()
}

/// A block of ten million valid Russian mobile numbers, `+7 9xx nnn nn nn`, for one use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhoneRange {
    /// `otp_request`: phones that ask for a code and never sign in.
    OtpRequest,
    /// `signin`: new members created by the measured scenario.
    SignIn,
    /// The signed-in pool of `refresh`, `me` and `invite_accept` (warm-up, not measured).
    Pool,
    /// Extra fresh members for `redeem` (warm-up, not measured).
    Redeemers,
}

impl PhoneRange {
    /// The three digits after `+7`.
    fn prefix(self) -> u16 {
        match self {
            Self::OtpRequest => 901,
            Self::SignIn => 902,
            Self::Pool => 903,
            Self::Redeemers => 904,
        }
    }

    /// The `n`-th phone of the range, in E.164 (`n` wraps at [`RANGE_SIZE`]).
    pub fn phone(self, n: u64) -> String {
        format!("+7{}{:07}", self.prefix(), n % RANGE_SIZE)
    }
}

/// Hands out the phones of a range in order, to any number of tasks.
#[derive(Debug)]
pub struct PhoneSource {
    range: PhoneRange,
    next: AtomicU64,
}

impl PhoneSource {
    /// A source that starts at the first phone of `range`.
    pub fn new(range: PhoneRange) -> Self {
        Self { range, next: AtomicU64::new(0) }
    }

    /// A phone no caller of this source got before (until the range's ten million run out).
    pub fn take(&self) -> String {
        self.range.phone(self.next.fetch_add(1, Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn bench_phones_are_e164_and_never_in_the_seeded_block() {
        assert_eq!(PhoneRange::SignIn.phone(42), "+79020000042");
        assert_eq!(PhoneRange::OtpRequest.phone(RANGE_SIZE - 1), "+79019999999");
        for range in
            [PhoneRange::OtpRequest, PhoneRange::SignIn, PhoneRange::Pool, PhoneRange::Redeemers]
        {
            // seed.sql: '+7900' || lpad(n::text, 7, '0')
            assert!(!range.phone(1).starts_with("+7900"), "{range:?}");
            assert_eq!(range.phone(1).len(), 12);
        }
    }

    #[test]
    fn seeded_codes_match_what_the_seed_script_computes() {
        // psql: SELECT <the code expression of seed.sql> FROM (VALUES (1), (2), (1000000)) v(n);
        assert_eq!(seeded_code(1), "AAVPV5");
        assert_eq!(seeded_code(2), "ABG5H0");
        assert_eq!(seeded_code(1_000_000), "OH83DE");
    }

    #[test]
    fn seeded_codes_are_six_characters_of_the_code_alphabet() {
        for n in [0, 1, 35, 36, 999_999, CODE_SPACE - 1] {
            let code = seeded_code(n);
            assert_eq!(code.len(), 6);
            assert!(code.bytes().all(|b| ALPHABET.contains(&b)), "{code}");
        }
    }

    #[test]
    fn distinct_seeded_members_get_distinct_codes() {
        let codes: HashSet<String> = (1..=200_000).map(seeded_code).collect();
        assert_eq!(codes.len(), 200_000);
    }

    #[test]
    fn a_phone_source_never_hands_out_the_same_phone_twice() {
        let source = PhoneSource::new(PhoneRange::OtpRequest);
        let phones: HashSet<String> = (0..1_000).map(|_| source.take()).collect();
        assert_eq!(phones.len(), 1_000);
    }
}
