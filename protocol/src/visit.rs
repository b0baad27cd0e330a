//! Home-care and outreach visits (issue 11): a client's service plan (the recurring part of the
//! care and service plan) and its checks, shared by the device that writes a plan and the server
//! that stores it. Which task categories exist is county content, checked on the device; the
//! shape, the times, the days and overlaps are checked here, on both sides.

use chrono::{NaiveDate, NaiveTime, Weekday};
use serde::{Deserialize, Serialize};

use crate::validate::FieldError;

/// One recurring visit of a plan: when in the day, on which days, and its planned tasks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlannedVisit {
    /// A short stable code (`morning`, `evening`, `nurse`): with the date it names the visit.
    pub slot: String,
    pub name: String,
    /// `daily`, or weekdays in English short form: `mon`, `tue`, … `sun`.
    pub days: Vec<String>,
    /// The window the visit is due in, local time `HH:MM`.
    pub from: String,
    pub to: String,
    /// Task category codes, in the order they are done.
    pub tasks: Vec<String>,
}

/// A client's service plan: the visits they get.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServicePlan {
    pub visits: Vec<PlannedVisit>,
}

/// Most visits one plan holds (a day has at most a few; this bounds the work of generating).
pub const MAX_VISITS: usize = 20;
/// Most tasks of one visit.
pub const MAX_TASKS: usize = 30;

fn code_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 40
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

pub fn weekday(s: &str) -> Option<Weekday> {
    Some(match s {
        "mon" => Weekday::Mon,
        "tue" => Weekday::Tue,
        "wed" => Weekday::Wed,
        "thu" => Weekday::Thu,
        "fri" => Weekday::Fri,
        "sat" => Weekday::Sat,
        "sun" => Weekday::Sun,
        _ => return None,
    })
}

fn time(field: &str, s: &str) -> Result<NaiveTime, FieldError> {
    NaiveTime::parse_from_str(s, "%H:%M")
        .ok()
        .filter(|_| s.len() == 5)
        .ok_or_else(|| FieldError::new(field, s, "a local time HH:MM, 00:00–23:59"))
}

impl PlannedVisit {
    /// Whether this visit is due on `date`'s weekday.
    pub fn on(&self, day: Weekday) -> bool {
        self.days
            .iter()
            .any(|d| d == "daily" || weekday(d) == Some(day))
    }

    /// The window's start and end (checked by [`ServicePlan::parse`]).
    pub fn window(&self) -> (NaiveTime, NaiveTime) {
        let t = |s: &str| NaiveTime::parse_from_str(s, "%H:%M").unwrap_or(NaiveTime::MIN);
        (t(&self.from), t(&self.to))
    }
}

impl ServicePlan {
    /// Parses and checks a plan: every field named with its allowed range on failure.
    pub fn parse(json: &str) -> Result<ServicePlan, FieldError> {
        let plan: ServicePlan = serde_json::from_str(json).map_err(|e| {
            FieldError::new(
                "plan",
                e.to_string(),
                "a JSON object {\"visits\": [{\"slot\", \"name\", \"days\", \"from\", \"to\", \"tasks\"}]}",
            )
        })?;
        plan.check()?;
        Ok(plan)
    }

    pub fn check(&self) -> Result<(), FieldError> {
        if self.visits.is_empty() || self.visits.len() > MAX_VISITS {
            return Err(FieldError::new(
                "plan.visits",
                format!("{} visits", self.visits.len()),
                format!("1–{MAX_VISITS} visits"),
            ));
        }
        for (i, v) in self.visits.iter().enumerate() {
            let f = |name: &str| format!("plan.visits[{i}].{name}");
            if !code_ok(&v.slot) {
                return Err(FieldError::new(
                    f("slot"),
                    &v.slot,
                    "a code of 1–40 characters a–z, 0–9, '_' or '-'",
                ));
            }
            if self.visits[..i].iter().any(|o| o.slot == v.slot) {
                return Err(FieldError::new(
                    f("slot"),
                    &v.slot,
                    "a slot not used by another visit",
                ));
            }
            if v.name.trim().is_empty() || v.name.chars().count() > 100 {
                return Err(FieldError::new(f("name"), &v.name, "1–100 characters"));
            }
            let days_ok =
                !v.days.is_empty() && v.days.iter().all(|d| d == "daily" || weekday(d).is_some());
            if !days_ok {
                return Err(FieldError::new(
                    f("days"),
                    v.days.join(","),
                    "\"daily\" or weekdays mon, tue, wed, thu, fri, sat, sun",
                ));
            }
            let (from, to) = (time(&f("from"), &v.from)?, time(&f("to"), &v.to)?);
            if to <= from {
                return Err(FieldError::new(
                    f("to"),
                    &v.to,
                    format!("a time after from ({})", v.from),
                ));
            }
            if v.tasks.is_empty() || v.tasks.len() > MAX_TASKS {
                return Err(FieldError::new(
                    f("tasks"),
                    format!("{} tasks", v.tasks.len()),
                    format!("1–{MAX_TASKS} task category codes"),
                ));
            }
            if let Some(t) = v.tasks.iter().find(|t| !code_ok(t)) {
                return Err(FieldError::new(f("tasks"), t, "task category codes"));
            }
            // Two visits on a common day whose windows overlap: one worker cannot be at both.
            for (j, o) in self.visits[..i].iter().enumerate() {
                let common = [
                    Weekday::Mon,
                    Weekday::Tue,
                    Weekday::Wed,
                    Weekday::Thu,
                    Weekday::Fri,
                    Weekday::Sat,
                    Weekday::Sun,
                ]
                .into_iter()
                .any(|d| v.on(d) && o.on(d));
                let (of, ot) = o.window();
                if common && from < ot && of < to {
                    return Err(FieldError::new(
                        f("from"),
                        format!("{}–{}", v.from, v.to),
                        format!(
                            "a window not overlapping visit {j} ({}, {}–{}) on a common day",
                            o.slot, o.from, o.to
                        ),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// A date as plans and visits name it (`YYYY-MM-DD`).
pub fn date(field: &str, s: &str) -> Result<NaiveDate, FieldError> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .filter(|_| s.len() == 10)
        .ok_or_else(|| FieldError::new(field, s, "a date YYYY-MM-DD"))
}

/// The id of the visit of `slot` on `date` for `subject`: the same on every device, so two
/// workers who generate the same day offline name the same visit (never two "new" ones).
pub fn visit_id(subject: &str, date: NaiveDate, slot: &str) -> uuid::Uuid {
    uuid::Uuid::new_v5(
        &uuid::Uuid::NAMESPACE_OID,
        format!("polku-visit/{subject}/{date}/{slot}").as_bytes(),
    )
}

/// What a visit event records.
pub const EVENT_KINDS: &[&str] = &[
    "arrived", "finished", "not_done", "task", "note", "handover", "assigned", "concern",
    "measured", "resolved",
];

/// What an outreach contact with a student was.
pub const CONTACT_KINDS: &[&str] = &["individual", "group", "with_guardian"];

/// How a task went.
pub const OUTCOMES: &[&str] = &["done", "not_done", "done_differently"];

/// Why a visit was not done.
pub const NOT_DONE_REASONS: &[&str] = &[
    "not_at_home",
    "in_hospital",
    "refused",
    "cancelled",
    "other",
];

#[cfg(test)]
mod tests {
    use super::*;

    const OK: &str = r#"{"visits": [
        {"slot": "morning", "name": "Aamukäynti", "days": ["daily"], "from": "07:00", "to": "09:00",
         "tasks": ["medication", "blood_pressure", "meal"]},
        {"slot": "nurse", "name": "Sairaanhoitaja", "days": ["mon"], "from": "10:00", "to": "11:00",
         "tasks": ["wound_care"]}
    ]}"#;

    #[test]
    fn a_plan_is_checked_field_by_field() {
        let p = ServicePlan::parse(OK).unwrap();
        assert!(p.visits[1].on(Weekday::Mon) && !p.visits[1].on(Weekday::Tue));
        let bad = |json: &str, field: &str, allowed: &str| {
            let e = ServicePlan::parse(json).unwrap_err();
            assert_eq!(e.field, field, "{e}");
            assert!(e.allowed.contains(allowed), "{e}");
        };
        bad(r#"{"visits": []}"#, "plan.visits", "1–20");
        bad(
            &OK.replace("\"10:00\"", "\"08:30\""),
            "plan.visits[1].from",
            "not overlapping visit 0",
        );
        bad(
            &OK.replace("\"09:00\"", "\"06:00\""),
            "plan.visits[0].to",
            "after from",
        );
        bad(
            &OK.replace("\"07:00\"", "\"7:00\""),
            "plan.visits[0].from",
            "HH:MM",
        );
        bad(
            &OK.replace("[\"mon\"]", "[\"monday\"]"),
            "plan.visits[1].days",
            "weekdays",
        );
        bad(
            &OK.replace("\"nurse\"", "\"morning\""),
            "plan.visits[1].slot",
            "not used",
        );
        bad(
            &OK.replace("\"meal\"", "\"Meal!\""),
            "plan.visits[0].tasks",
            "codes",
        );
        bad("{\"visits\": 3}", "plan", "JSON object");
        // Overlapping windows on days that never meet are fine.
        let apart = OK
            .replace("[\"daily\"]", "[\"tue\"]")
            .replace("\"10:00\"", "\"08:30\"");
        ServicePlan::parse(&apart).unwrap();
    }

    #[test]
    fn a_visit_has_the_same_id_on_every_device() {
        let d = NaiveDate::from_ymd_opt(2026, 12, 1).unwrap();
        assert_eq!(visit_id("s1", d, "morning"), visit_id("s1", d, "morning"));
        assert_ne!(visit_id("s1", d, "morning"), visit_id("s2", d, "morning"));
        assert_ne!(
            visit_id("s1", d, "morning"),
            visit_id("s1", d.succ_opt().unwrap(), "morning")
        );
    }
}
