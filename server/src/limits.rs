//! Limits on abuse (issue 9, finding 6): how long a client may take to send a request, how many
//! connections it may hold, and how many wrong enrollment codes or device tokens an address (or
//! one code prefix, from any address) may try before it is locked out for a while.
//!
//! Failures are counted with `governor`'s keyed GCRA limiter: a burst of `failure_burst`, then one
//! more every `failure_refill`. Going over the quota locks the key out for `lockout`, and while
//! it is locked out every attempt is refused *before* the code or token is looked up, so a right
//! guess made during the lockout tells the guesser nothing.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::error::{ApiError, ApiResult};

/// The server's abuse limits; [`Limits::default`] is what `polku-server serve` uses unless told
/// otherwise.
#[derive(Debug, Clone)]
pub struct Limits {
    /// A request's headers (and an idle keep-alive connection's next request) must arrive within this.
    pub header_timeout: Duration,
    /// A request's body must arrive within this once its headers have been accepted.
    pub body_timeout: Duration,
    /// Connections served at once; more are answered 503 and closed.
    pub max_connections: usize,
    /// Connections served at once from one address (a trusted proxy is not counted per address).
    pub max_connections_per_address: usize,
    /// Failed attempts an address or a code prefix may make in a row.
    pub failure_burst: u32,
    /// After the burst, one more failed attempt is allowed every this long.
    pub failure_refill: Duration,
    /// How long an address or code prefix that went over the quota is refused.
    pub lockout: Duration,
    /// Reverse proxies (TLS terminators) whose `X-Forwarded-For` names the real client.
    pub trusted_proxies: Vec<IpAddr>,
    /// Attachment size and retention.
    pub attachments: crate::storage::AttachmentRules,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            max_connections: 1024,
            max_connections_per_address: 64,
            failure_burst: 10,
            failure_refill: Duration::from_secs(30),
            lockout: Duration::from_secs(15 * 60),
            trusted_proxies: Vec::new(),
            attachments: Default::default(),
        }
    }
}

/// Who made an attempt, as far as the limits are concerned. An address's enrollment codes and its
/// device tokens are counted apart: a pupil mistyping a code behind a school's one NAT address
/// locks out enrollments from there, not the syncs of the devices already enrolled.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Attempter {
    /// Enrollment codes from the client's address (after a trusted proxy's `X-Forwarded-For`).
    Enrolling(IpAddr),
    /// Device tokens from the client's address.
    Authenticating(IpAddr),
    /// The first group of an enrollment code, from whatever address: a guesser who knows part of
    /// a code cannot spread the guesses over many addresses.
    CodePrefix(String),
}

/// The part of an address that one client controls: an IPv4 address, or an IPv6 /64 (one
/// household or phone is given a whole /64, so counting per /128 would let it try 2^64 times).
pub fn client_net(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
        },
    }
}

impl Attempter {
    /// Enrollment attempts from `ip`'s client network ([`client_net`]).
    pub fn enrolling(ip: IpAddr) -> Attempter {
        Attempter::Enrolling(client_net(ip))
    }

    /// Token attempts from `ip`'s client network ([`client_net`]).
    pub fn authenticating(ip: IpAddr) -> Attempter {
        Attempter::Authenticating(client_net(ip))
    }

    /// The code prefix an enrollment attempt counts against (the first four code characters, as
    /// `polku-server invite` prints them in groups of four), if the code has that many.
    pub fn code_prefix(code: &str) -> Option<Attempter> {
        let norm: String = code
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .take(4)
            .map(|c| c.to_ascii_uppercase())
            .collect();
        (norm.len() == 4).then_some(Attempter::CodePrefix(norm))
    }

    /// How the failure log names it: the address, or that it was a code prefix (never the
    /// characters of a code).
    pub fn describe(&self) -> String {
        match self {
            Attempter::Enrolling(a) => format!("enrollment from {}", net(a)),
            Attempter::Authenticating(a) => format!("device tokens from {}", net(a)),
            Attempter::CodePrefix(_) => "an enrollment code prefix".to_owned(),
        }
    }
}

fn net(a: &IpAddr) -> String {
    match a {
        IpAddr::V4(_) => format!("address {a}"),
        IpAddr::V6(_) => format!("network {a}/64"),
    }
}

/// Keys kept before expired state is dropped (an attack from many addresses cannot grow memory
/// without bound: every such key is at most one GCRA cell and one lockout instant).
const PRUNE_ABOVE: usize = 10_000;

/// Counts failed attempts and keeps the lockouts.
pub struct Attempts {
    limiter: DefaultKeyedRateLimiter<Attempter>,
    locked: Mutex<HashMap<Attempter, Instant>>,
    lockout: Duration,
}

impl Attempts {
    pub fn new(limits: &Limits) -> Attempts {
        let burst = NonZeroU32::new(limits.failure_burst.max(1)).unwrap_or(NonZeroU32::MIN);
        let refill = limits.failure_refill.max(Duration::from_millis(1));
        let quota = Quota::with_period(refill)
            .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
            .allow_burst(burst);
        Attempts {
            limiter: RateLimiter::keyed(quota),
            locked: Mutex::new(HashMap::new()),
            lockout: limits.lockout,
        }
    }

    /// Refuses an attempt by a locked-out address or code prefix before it is tried.
    pub fn admit(&self, who: &[Attempter]) -> ApiResult<()> {
        let now = Instant::now();
        let locked = self.locked.lock().unwrap_or_else(|p| p.into_inner());
        let wait = who
            .iter()
            .filter_map(|w| locked.get(w))
            .filter(|until| **until > now)
            .map(|until| *until - now)
            .max();
        match wait {
            Some(w) => Err(ApiError::TooManyAttempts {
                retry_after_s: w.as_secs().max(1),
            }),
            None => Ok(()),
        }
    }

    /// Counts a failed attempt; returns who it locked out.
    pub fn failed(&self, who: &[Attempter]) -> Vec<Attempter> {
        let now = Instant::now();
        let over: Vec<Attempter> = who
            .iter()
            .filter(|w| self.limiter.check_key(w).is_err())
            .cloned()
            .collect();
        let mut locked = self.locked.lock().unwrap_or_else(|p| p.into_inner());
        if locked.len() > PRUNE_ABOVE {
            locked.retain(|_, until| *until > now);
        }
        if self.limiter.len() > PRUNE_ABOVE {
            self.limiter.retain_recent();
        }
        for w in &over {
            locked.insert(w.clone(), now + self.lockout);
        }
        over
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(burst: u32) -> Limits {
        Limits {
            failure_burst: burst,
            failure_refill: Duration::from_secs(3600),
            lockout: Duration::from_secs(3600),
            ..Limits::default()
        }
    }

    #[test]
    fn a_burst_of_failures_then_a_lockout_of_that_key_only() {
        let a = Attempts::new(&limits(3));
        let ip = "192.0.2.1".parse().unwrap();
        let me = Attempter::Enrolling(ip);
        let other = Attempter::Enrolling("192.0.2.2".parse().unwrap());
        for _ in 0..3 {
            a.admit(std::slice::from_ref(&me)).unwrap();
            assert!(a.failed(std::slice::from_ref(&me)).is_empty());
        }
        assert_eq!(a.failed(std::slice::from_ref(&me)), vec![me.clone()]);
        match a.admit(std::slice::from_ref(&me)) {
            Err(ApiError::TooManyAttempts { retry_after_s }) => {
                assert!(retry_after_s > 3000 && retry_after_s <= 3600)
            }
            other => panic!("expected a lockout, got {other:?}"),
        }
        a.admit(&[other]).unwrap();
        // The same address's tokens are counted apart.
        a.admit(&[Attempter::Authenticating(ip)]).unwrap();
    }

    #[test]
    fn an_ipv6_client_is_counted_per_64_and_a_mapped_ipv4_as_ipv4() {
        let a = Attempts::new(&limits(1));
        let one = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let same_64 = "2001:db8:1:2:ffff:ffff:ffff:ffff".parse().unwrap();
        let other_64 = "2001:db8:1:3::1".parse().unwrap();
        assert!(a.failed(&[Attempter::enrolling(one)]).is_empty());
        assert!(!a.failed(&[Attempter::enrolling(same_64)]).is_empty());
        assert!(a.admit(&[Attempter::enrolling(same_64)]).is_err());
        a.admit(&[Attempter::enrolling(other_64)]).unwrap();
        assert_eq!(
            client_net("::ffff:192.0.2.7".parse().unwrap()),
            "192.0.2.7".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            Attempter::enrolling(one).describe(),
            "enrollment from network 2001:db8:1:2::/64"
        );
    }

    #[test]
    fn a_code_prefix_is_its_first_group_normalised() {
        assert_eq!(
            Attempter::code_prefix("ab1c-DEFG-HJKM"),
            Some(Attempter::CodePrefix("AB1C".into()))
        );
        assert_eq!(
            Attempter::code_prefix(" a-b1c"),
            Some(Attempter::CodePrefix("AB1C".into()))
        );
        assert_eq!(Attempter::code_prefix("ab-"), None);
        assert!(!Attempter::code_prefix("AB1C-DEFG")
            .unwrap()
            .describe()
            .contains("AB1C"));
    }
}
