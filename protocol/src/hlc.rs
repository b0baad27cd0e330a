//! Hybrid logical clock (Kulkarni, Demirbas et al. 2014, "Logical Physical Clocks"): 48-bit
//! milliseconds + 16-bit counter + device id as the tie-break, written as one string whose byte
//! order is the clock order (`0000018c2f3a1b2c-0001-<device>`), so SQLite compares it as TEXT.
//!
//! Hand-written rather than `uhlc`: that crate's clock is a plain `fn()` (our tests inject a
//! per-profile clock object) and it refuses remote stamps beyond a drift bound, while a phone
//! that was offline for days must never have its writes refused (docs/sync.md). Here a stamp
//! far ahead of the server is *kept* but not allowed to drag this device's clock forward.

use std::fmt;
use std::sync::Mutex;

/// How far ahead of the server's clock a remote stamp may be and still advance ours.
pub const MAX_FORWARD_DRIFT_MS: u64 = 5 * 60 * 1000;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Hlc {
    pub ms: u64,
    pub counter: u16,
    pub device: String,
}

impl fmt::Display for Hlc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}-{:04x}-{}", self.ms, self.counter, self.device)
    }
}

impl Hlc {
    pub fn parse(s: &str) -> Option<Hlc> {
        let (ms, rest) = s.split_once('-')?;
        let (counter, device) = rest.split_once('-')?;
        if ms.len() != 16 || counter.len() != 4 || device.is_empty() {
            return None;
        }
        Some(Hlc {
            ms: u64::from_str_radix(ms, 16).ok()?,
            counter: u16::from_str_radix(counter, 16).ok()?,
            device: device.to_owned(),
        })
    }
}

/// This device's clock: monotonic across calls, restarts (seeded from the highest stamp on disk)
/// and a wall clock that jumps back, so one device's own edits never reorder.
#[derive(Debug)]
pub struct HlcClock {
    device: String,
    last: Mutex<(u64, u16)>,
}

impl HlcClock {
    pub fn new(device: &str, floor: Option<&str>) -> HlcClock {
        let last = floor
            .and_then(Hlc::parse)
            .map(|h| (h.ms, h.counter))
            .unwrap_or((0, 0));
        HlcClock {
            device: device.to_owned(),
            last: Mutex::new(last),
        }
    }

    /// A new stamp for a local event at wall time `now_ms`.
    pub fn tick(&self, now_ms: u64) -> Hlc {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        let next = if now_ms > last.0 {
            (now_ms, 0)
        } else if last.1 == u16::MAX {
            // Counter exhausted within one millisecond: borrow the next millisecond.
            (last.0 + 1, 0)
        } else {
            (last.0, last.1 + 1)
        };
        *last = next;
        Hlc {
            ms: next.0,
            counter: next.1,
            device: self.device.clone(),
        }
    }

    /// Takes in a stamp seen from elsewhere, unless it is further than [`MAX_FORWARD_DRIFT_MS`]
    /// ahead of `server_ms` (a device clock set to 2030 must not poison everyone's ordering).
    pub fn observe(&self, remote: &Hlc, server_ms: u64) {
        if remote.ms > server_ms.saturating_add(MAX_FORWARD_DRIFT_MS) {
            return;
        }
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        if (remote.ms, remote.counter) > *last {
            *last = (remote.ms, remote.counter);
        }
    }

    pub fn current(&self) -> Hlc {
        let last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        Hlc {
            ms: last.0,
            counter: last.1,
            device: self.device.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_order_is_clock_order() {
        let a = Hlc {
            ms: 9,
            counter: 65535,
            device: "z".into(),
        };
        let b = Hlc {
            ms: 10,
            counter: 0,
            device: "a".into(),
        };
        assert!(a < b);
        assert!(a.to_string() < b.to_string());
        assert_eq!(Hlc::parse(&b.to_string()), Some(b));
        assert_eq!(Hlc::parse("nonsense"), None);
    }

    #[test]
    fn wall_clock_going_back_does_not_reorder_own_events() {
        let c = HlcClock::new("d1", None);
        let a = c.tick(1_000);
        let b = c.tick(500); // the user set the phone's clock back
        let d = c.tick(500);
        assert!(a < b && b < d, "{a} {b} {d}");
        assert_eq!(b.ms, 1_000);
    }

    #[test]
    fn restart_continues_after_the_stored_floor() {
        let first = HlcClock::new("d1", None).tick(2_000).to_string();
        let again = HlcClock::new("d1", Some(&first)).tick(1_000);
        assert!(again.to_string() > first);
    }

    #[test]
    fn remote_stamps_advance_unless_far_in_the_future() {
        let c = HlcClock::new("d1", None);
        c.observe(
            &Hlc {
                ms: 5_000,
                counter: 3,
                device: "d2".into(),
            },
            5_000,
        );
        assert!(
            c.tick(1_000)
                > Hlc {
                    ms: 5_000,
                    counter: 3,
                    device: "d2".into()
                }
        );
        let year_2030 = Hlc {
            ms: 1_900_000_000_000,
            counter: 0,
            device: "bad".into(),
        };
        c.observe(&year_2030, 5_000);
        assert!(c.tick(6_000).ms < 1_900_000_000_000);
    }

    #[test]
    fn counter_overflow_moves_to_the_next_millisecond() {
        let c = HlcClock::new("d", Some("0000000000000064-ffff-d"));
        let h = c.tick(100);
        assert_eq!((h.ms, h.counter), (101, 0));
    }
}
