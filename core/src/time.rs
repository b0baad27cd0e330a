//! Clock and wall-clock helpers. Entries keep the UTC instant and the UTC offset the device had when
//! they were written; local days, morning/evening and AGP hours use that wall clock, so a reading
//! taken at 07:30 in Helsinki stays a morning reading across DST changes and travel.

use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, FixedOffset, LocalResult, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;

use crate::error::{Error, Result};

/// Source of "now". Tests and simulations use [`FixedClock`].
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that stands still until moved; for tests and simulations.
#[derive(Debug)]
pub struct FixedClock(AtomicI64);

impl FixedClock {
    pub fn new(at: DateTime<Utc>) -> Self {
        FixedClock(AtomicI64::new(at.timestamp_millis()))
    }
    pub fn set(&self, at: DateTime<Utc>) {
        self.0.store(at.timestamp_millis(), Ordering::SeqCst);
    }
}

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        from_ms(self.0.load(Ordering::SeqCst))
    }
}

/// `t` at the precision instants are stored with (milliseconds), so what a write returns equals
/// what a later read gives.
pub fn stored_precision<Z: TimeZone>(t: DateTime<Z>) -> DateTime<Z> {
    use chrono::SubsecRound;
    t.trunc_subsecs(3)
}

pub fn from_ms(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// The offset rule lives with the other plausibility limits (`polku_protocol::validate`).
pub fn checked_offset(field: &str, seconds: i32) -> Result<FixedOffset> {
    Ok(polku_protocol::validate::checked_offset(field, seconds)?)
}

pub fn offset(seconds: i32) -> FixedOffset {
    FixedOffset::east_opt(seconds).unwrap_or_else(|| FixedOffset::east_opt(0).expect("zero offset"))
}

/// The instant `ms` as the wall clock of `offset_s`.
pub fn wall_clock(ms: i64, offset_s: i32) -> DateTime<FixedOffset> {
    from_ms(ms).with_timezone(&offset(offset_s))
}

/// The instant `at` as seen in `tz` (instant and offset), the form entries are stored in.
pub fn in_zone(at: DateTime<Utc>, tz: Tz) -> DateTime<FixedOffset> {
    at.with_timezone(&tz).fixed_offset()
}

/// Interprets a wall-clock time of `tz` (e.g. a LibreView timestamp). In the repeated autumn hour
/// the earlier instant is chosen; a time in the skipped spring hour is an error.
pub fn from_local(naive: NaiveDateTime, tz: Tz) -> Result<DateTime<FixedOffset>> {
    match tz.from_local_datetime(&naive) {
        LocalResult::Single(t) => Ok(t.fixed_offset()),
        LocalResult::Ambiguous(earlier, _) => Ok(earlier.fixed_offset()),
        LocalResult::None => Err(Error::validation(
            "timestamp",
            naive,
            format!("a time that exists in {tz} (this one falls in the skipped DST hour)"),
        )),
    }
}

/// UTC instants [start, end) of the local calendar day `day` in `tz`.
pub fn local_day_bounds(day: NaiveDate, tz: Tz) -> (DateTime<Utc>, DateTime<Utc>) {
    let start = day_start(day, tz);
    let end = day_start(day.succ_opt().unwrap_or(day), tz);
    (start, end)
}

fn day_start(day: NaiveDate, tz: Tz) -> DateTime<Utc> {
    let midnight = day.and_hms_opt(0, 0, 0).expect("midnight exists");
    match tz.from_local_datetime(&midnight) {
        LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => t.with_timezone(&Utc),
        // Midnight skipped by a DST change (not in Helsinki, but elsewhere): the day starts an hour later.
        LocalResult::None => tz
            .from_local_datetime(&(midnight + chrono::Duration::hours(1)))
            .earliest()
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_else(|| Utc.from_utc_datetime(&midnight)),
    }
}

pub fn parse_tz(name: &str) -> Result<Tz> {
    name.parse::<Tz>().map_err(|_| {
        Error::validation(
            "time zone",
            name,
            "an IANA time zone name such as Europe/Helsinki",
        )
    })
}

pub fn parse_rfc3339(field: &str, s: &str) -> Result<DateTime<FixedOffset>> {
    DateTime::parse_from_rfc3339(s.trim()).map_err(|_| {
        Error::validation(
            field,
            s,
            "an RFC 3339 timestamp such as 2026-11-23T08:15:00+02:00",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_are_whole_minutes_within_fourteen_hours() {
        assert!(checked_offset("o", 14 * 3600).is_ok());
        assert!(checked_offset("o", -14 * 3600).is_ok());
        assert!(checked_offset("o", 5 * 3600 + 45 * 60).is_ok(), "Nepal");
        for bad in [14 * 3600 + 60, -14 * 3600 - 60, 7201, i32::MAX, i32::MIN] {
            let e = checked_offset("utc_offset_s", bad).unwrap_err();
            assert!(
                matches!(&e, Error::Validation { field, .. } if field == "utc_offset_s"),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn helsinki_dst_days_have_23_and_25_hours() {
        let tz: Tz = "Europe/Helsinki".parse().unwrap();
        let (s, e) = local_day_bounds(NaiveDate::from_ymd_opt(2026, 3, 29).unwrap(), tz);
        assert_eq!((e - s).num_hours(), 23);
        let (s, e) = local_day_bounds(NaiveDate::from_ymd_opt(2026, 10, 25).unwrap(), tz);
        assert_eq!((e - s).num_hours(), 25);
        assert_eq!(s.to_rfc3339(), "2026-10-24T21:00:00+00:00");
    }

    #[test]
    fn skipped_and_repeated_local_hours() {
        let tz: Tz = "Europe/Helsinki".parse().unwrap();
        let skipped = NaiveDate::from_ymd_opt(2026, 3, 29)
            .unwrap()
            .and_hms_opt(3, 30, 0)
            .unwrap();
        assert!(matches!(
            from_local(skipped, tz),
            Err(Error::Validation { .. })
        ));
        let repeated = NaiveDate::from_ymd_opt(2026, 10, 25)
            .unwrap()
            .and_hms_opt(3, 30, 0)
            .unwrap();
        let t = from_local(repeated, tz).unwrap();
        assert_eq!(
            t.offset().local_minus_utc(),
            3 * 3600,
            "earlier (summer time) instant chosen"
        );
    }
}
