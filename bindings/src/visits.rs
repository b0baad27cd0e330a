//! Home-care and outreach visits over FFI (docs/visits.md): service plans, a worker's day, and
//! what a worker records at the door. Everything works offline; sync shares it.

use std::sync::Arc;
use std::time::SystemTime;

use polku_core::visits as cv;
use polku_core::Polku;

use crate::convert::{measured_at, ms, NewEntry};
use crate::error::{guard, PolkuError, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum VisitState {
    Planned,
    Arrived,
    Finished,
    NotDone,
    /// Two outcomes were recorded without knowing of each other: see `conflicts`.
    Conflict,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum TaskOutcome {
    Done,
    /// With a note saying why.
    NotDone,
    /// With a note saying how.
    DoneDifferently,
}

impl TaskOutcome {
    fn code(self) -> &'static str {
        match self {
            TaskOutcome::Done => "done",
            TaskOutcome::NotDone => "not_done",
            TaskOutcome::DoneDifferently => "done_differently",
        }
    }
}

#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct VisitTask {
    pub code: String,
    pub name: String,
    /// `done`, `not_done`, `done_differently`; null while open.
    pub outcome: Option<String>,
    pub note: Option<String>,
    pub by: Option<String>,
}

/// Something recorded at a visit, as a person reviewing it sees it.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct VisitRecord {
    pub event_id: String,
    pub kind: String,
    pub outcome: Option<String>,
    pub reason: Option<String>,
    pub note: Option<String>,
    /// A note's observation category.
    pub category: Option<String>,
    pub author: String,
    pub at: SystemTime,
}

#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct VisitConflict {
    /// `visit`, or `task:<code>`.
    pub about: String,
    pub outcomes: Vec<VisitRecord>,
}

#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct Visit {
    pub id: String,
    pub subject_id: String,
    /// The local date, YYYY-MM-DD.
    pub date: String,
    pub slot: String,
    pub name: String,
    /// The window, local HH:MM.
    pub from: String,
    pub to: String,
    pub state: VisitState,
    pub not_done_reason: Option<String>,
    pub arrivals: Vec<VisitRecord>,
    pub finished_at: Option<SystemTime>,
    pub tasks: Vec<VisitTask>,
    pub tasks_left: u32,
    pub notes: Vec<VisitRecord>,
    pub concerns: Vec<VisitRecord>,
    pub assigned_to: Option<String>,
    pub handover_note: Option<String>,
    /// Diary entries measured at this visit (in the client's own diary).
    pub measurements: Vec<String>,
    pub conflicts: Vec<VisitConflict>,
    pub overdue: bool,
}

fn record(r: cv::Recorded) -> VisitRecord {
    VisitRecord {
        event_id: r.event_id,
        kind: r.kind,
        outcome: r.outcome,
        reason: r.reason,
        note: r.note,
        category: r.category,
        author: r.author,
        at: ms(r.at_ms),
    }
}

impl From<cv::Visit> for Visit {
    fn from(v: cv::Visit) -> Self {
        Visit {
            id: v.id,
            subject_id: v.subject,
            date: v.date.to_string(),
            slot: v.slot,
            name: v.name,
            from: v.from.format("%H:%M").to_string(),
            to: v.to.format("%H:%M").to_string(),
            state: match v.state.as_str() {
                "arrived" => VisitState::Arrived,
                "finished" => VisitState::Finished,
                "not_done" => VisitState::NotDone,
                "conflict" => VisitState::Conflict,
                _ => VisitState::Planned,
            },
            not_done_reason: v.not_done_reason,
            arrivals: v.arrivals.into_iter().map(record).collect(),
            finished_at: v.finished_ms.map(ms),
            tasks: v
                .tasks
                .into_iter()
                .map(|t| VisitTask {
                    code: t.code,
                    name: t.name,
                    outcome: t.outcome,
                    note: t.note,
                    by: t.by,
                })
                .collect(),
            tasks_left: v.tasks_left,
            notes: v.notes.into_iter().map(record).collect(),
            concerns: v.concerns.into_iter().map(record).collect(),
            assigned_to: v.assigned_to,
            handover_note: v.handover_note,
            measurements: v.measurements,
            conflicts: v
                .conflicts
                .into_iter()
                .map(|c| VisitConflict {
                    about: c.about,
                    outcomes: c.outcomes.into_iter().map(record).collect(),
                })
                .collect(),
            overdue: v.overdue,
        }
    }
}

/// A version of a client's service plan.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct ServicePlanVersion {
    pub id: String,
    /// YYYY-MM-DD.
    pub effective_from: String,
    /// The plan as JSON (docs/visits.md).
    pub plan_json: String,
    pub author: String,
}

impl From<cv::PlanVersion> for ServicePlanVersion {
    fn from(p: cv::PlanVersion) -> Self {
        ServicePlanVersion {
            id: p.id,
            effective_from: p.effective_from.to_string(),
            plan_json: serde_json::to_string(&p.plan).unwrap_or_default(),
            author: p.author,
        }
    }
}

fn date(field: &str, s: Option<String>, p: &Polku) -> Result<chrono::NaiveDate> {
    match s {
        Some(s) => Ok(cv::parse_date(field, &s).map_err(polku_core::Error::from)?),
        None => Ok(p.today()),
    }
}

#[derive(uniffi::Object)]
pub struct VisitsClient {
    pub(crate) inner: Arc<Polku>,
}

impl VisitsClient {
    /// Runs `f` on the visits of the client whose visit `id` is.
    fn on(
        &self,
        what: &'static str,
        id: &str,
        f: impl FnOnce(&cv::Visits<'_>) -> polku_core::Result<cv::Visit>,
    ) -> Result<Visit> {
        guard(what, || {
            let view = self.inner.for_visit(id)?;
            Ok(f(&view.visits())?.into())
        })
    }
}

#[uniffi::export]
impl VisitsClient {
    /// This user's visits on `date` (today when null): urgent concerns and overdue first.
    pub fn worker_day(&self, date: Option<String>) -> Result<Vec<Visit>> {
        guard("visits.worker_day", || {
            let d = self::date("date", date, &self.inner)?;
            Ok(self
                .inner
                .worker_day(d)?
                .into_iter()
                .map(Into::into)
                .collect())
        })
    }

    /// Every visit of the next `days` days (1–31) from today, of every client on the device.
    pub fn upcoming(&self, days: u32) -> Result<Vec<Visit>> {
        guard("visits.upcoming", || {
            if !(1..=31).contains(&days) {
                return Err(PolkuError::Validation {
                    field: "days".into(),
                    value: days.to_string(),
                    allowed: "1–31".into(),
                });
            }
            Ok(self
                .inner
                .visits_between(self.inner.today(), days, true)?
                .into_iter()
                .map(Into::into)
                .collect())
        })
    }

    pub fn visit(&self, visit_id: String) -> Result<Visit> {
        self.on("visits.visit", &visit_id, |v| v.visit(&visit_id))
    }

    pub fn arrive(&self, visit_id: String) -> Result<Visit> {
        self.on("visits.arrive", &visit_id, |v| v.arrive(&visit_id))
    }

    pub fn task(
        &self,
        visit_id: String,
        task: String,
        outcome: TaskOutcome,
        note: Option<String>,
    ) -> Result<Visit> {
        self.on("visits.task", &visit_id, |v| {
            v.task(&visit_id, &task, outcome.code(), note.as_deref())
        })
    }

    /// A note; with a `category` (one of the county's), a structured observation.
    pub fn note(&self, visit_id: String, text: String, category: Option<String>) -> Result<Visit> {
        self.on("visits.note", &visit_id, |v| {
            v.note(&visit_id, &text, category.as_deref())
        })
    }

    /// An urgent concern: the visit goes first in every day list, the client first in the
    /// caseload, and it is written into the client's conversation with the care team (sent
    /// with the next sync; best effort).
    pub fn concern(&self, visit_id: String, text: String) -> Result<Visit> {
        guard("visits.concern", || {
            Ok(self.inner.raise_concern(&visit_id, &text)?.visit.into())
        })
    }

    /// A measurement at the visit, into the client's own diary (authored by this worker).
    pub fn measure(&self, visit_id: String, entry: NewEntry) -> Result<Visit> {
        let e = polku_core::diary::NewEntry {
            at: measured_at(
                entry.measured_at,
                entry.utc_offset_seconds,
                self.inner.time_zone(),
            )?,
            note: entry.note,
            data: entry.data.try_into()?,
        };
        self.on("visits.measure", &visit_id, |v| v.measure(&visit_id, e))
    }

    pub fn finish(&self, visit_id: String) -> Result<Visit> {
        self.on("visits.finish", &visit_id, |v| v.finish(&visit_id))
    }

    /// `reason`: not_at_home, in_hospital, refused, cancelled or other.
    pub fn not_done(
        &self,
        visit_id: String,
        reason: String,
        note: Option<String>,
    ) -> Result<Visit> {
        self.on("visits.not_done", &visit_id, |v| {
            v.not_done(&visit_id, &reason, note.as_deref())
        })
    }

    /// A coordinator gives the visit to a worker.
    pub fn assign(&self, visit_id: String, to_user_id: String) -> Result<Visit> {
        self.on("visits.assign", &visit_id, |v| {
            v.assign(&visit_id, &to_user_id)
        })
    }

    pub fn handover(&self, visit_id: String, to_user_id: String, note: String) -> Result<Visit> {
        self.on("visits.handover", &visit_id, |v| {
            v.handover(&visit_id, &to_user_id, &note)
        })
    }

    /// Settles a conflict (`about`: `visit` or `task:<code>`), keeping event `keep`'s outcome.
    pub fn resolve(
        &self,
        visit_id: String,
        about: String,
        keep: String,
        note: String,
    ) -> Result<Visit> {
        self.on("visits.resolve", &visit_id, |v| {
            v.resolve(&visit_id, &about, &keep, &note)
        })
    }

    /// A new version of `subject_id`'s service plan (JSON, docs/visits.md) from `effective_from`
    /// (YYYY-MM-DD; today when null).
    pub fn set_plan(
        &self,
        subject_id: String,
        plan_json: String,
        effective_from: Option<String>,
    ) -> Result<ServicePlanVersion> {
        guard("visits.set_plan", || {
            let from = date("effective_from", effective_from, &self.inner)?;
            let view = self.inner.for_subject(&subject_id)?;
            Ok(view.visits().set_plan(&plan_json, from)?.into())
        })
    }

    /// The plan of `subject_id` in effect on `date` (today when null).
    pub fn plan(
        &self,
        subject_id: String,
        date: Option<String>,
    ) -> Result<Option<ServicePlanVersion>> {
        guard("visits.plan", || {
            let d = self::date("date", date, &self.inner)?;
            let view = self.inner.for_subject(&subject_id)?;
            Ok(view.visits().plan(d)?.map(Into::into))
        })
    }
}
