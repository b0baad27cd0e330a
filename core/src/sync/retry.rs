//! When to try again: exponential backoff with full jitter, for transient failures only.

use std::time::Duration;

use crate::error::Error;

/// Retry policy of [`Sync::sync_with_retry`]: exponential backoff with full jitter.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub attempts: u32,
    pub base: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            attempts: 6,
            base: Duration::from_millis(500),
            max: Duration::from_secs(60),
        }
    }
}

impl Backoff {
    /// The wait before retry `n` (0-based): uniform in [0, min(max, base·2ⁿ)] ("full jitter").
    pub fn delay(&self, n: u32) -> Duration {
        let cap = self.base.saturating_mul(1u32 << n.min(20)).min(self.max);
        let mut b = [0u8; 4];
        let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b);
        cap.mul_f64(u32::from_le_bytes(b) as f64 / u32::MAX as f64)
    }
}

/// Worth retrying later: the network, or the server busy or failing. A lockout after failed
/// enrollment codes or tokens (`too_many_attempts`) lasts minutes: the person is told, and the
/// next scheduled sync tries again.
pub fn retryable(e: &Error) -> bool {
    match e {
        Error::Network(_) => true,
        Error::Server { code, .. } if code == "too_many_attempts" => false,
        Error::Server { status, .. } => *status == 429 || *status >= 500,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_its_cap_with_full_jitter() {
        let b = Backoff {
            attempts: 10,
            base: Duration::from_millis(100),
            max: Duration::from_secs(2),
        };
        for n in 0..10 {
            let cap = Duration::from_millis(100 * (1 << n)).min(Duration::from_secs(2));
            let samples: Vec<Duration> = (0..200).map(|_| b.delay(n)).collect();
            assert!(samples.iter().all(|d| *d <= cap), "retry {n}");
            // Jittered: not all the same, and some in the upper half of the window.
            assert!(samples.iter().any(|d| *d != samples[0]));
            assert!(samples.iter().any(|d| *d > cap / 2));
        }
    }

    #[test]
    fn only_transient_failures_are_retried() {
        assert!(retryable(&Error::Network("reset".into())));
        for status in [429, 500, 503] {
            assert!(retryable(&Error::Server {
                status,
                code: "x".into(),
                message: String::new()
            }));
        }
        assert!(!retryable(&Error::Server {
            status: 401,
            code: "device_revoked".into(),
            message: String::new()
        }));
        assert!(!retryable(&Error::NotEnrolled));
    }
}
