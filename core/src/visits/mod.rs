//! Home-care and outreach visits that work for days without a connection (issue 11,
//! docs/visits.md).
//!
//! A client's **service plan** (`visits.plan`, versioned from a date on) says which visits they
//! get and the tasks of each. **Visits are generated** from it on every device alike: a visit's id
//! is derived from the client, the date and the plan's slot (`polku_protocol::visit::visit_id`),
//! so two workers who open the same day offline name the same visit and never create duplicates.
//! What workers record of a visit is a stream of immutable **events** (`visits.event`): arrival,
//! leaving, a task's outcome, notes, a handover. A visit's state is derived from them. An outcome
//! names the outcomes its writer saw (`base`); two that do not know of each other (two workers
//! offline) are both kept, as a conflict for a coordinator to review, never last-writer-wins.
//!
//! School nurses' contacts with students are in `outreach.rs`.

mod outreach;
mod tasks;

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Datelike, NaiveDate, NaiveTime, Offset, TimeZone};
use polku_protocol::op;
use polku_protocol::visit::{self as pv};
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;
use uuid::Uuid;

pub(crate) use outreach::{follow_ups, CONTACTS};
pub use outreach::{Contact, NewContact, Outreach};
pub use polku_protocol::visit::{date as parse_date, PlannedVisit, ServicePlan, NOT_DONE_REASONS};
pub use tasks::{TaskCategories, TaskCategory};

use crate::context::Context;
use crate::error::{Error, Result};
use crate::store::kind::{RecordKind, Table};

pub(crate) static VISIT_PLANS: Table = Table::new(
    &op::VISIT_PLAN,
    "visit_plan",
    true,
    "id, subject_no, hlc FROM visit_plan WHERE author = ?1 ORDER BY hlc",
    "DELETE FROM visit_plan WHERE subject_no = ?1 AND id NOT IN (SELECT id FROM temp.keep)",
);

/// Visit events; concurrent outcomes of a visit or a task are open conflicts.
pub(crate) struct VisitEvents(Table);

pub(crate) static VISIT_EVENTS: VisitEvents = VisitEvents(Table::new(
    &op::VISIT_EVENT,
    "visit_event",
    true,
    "id, subject_no, hlc FROM visit_event WHERE author = ?1 ORDER BY hlc",
    "DELETE FROM visit_event WHERE subject_no = ?1 AND id NOT IN (SELECT id FROM temp.keep)",
));

impl RecordKind for VisitEvents {
    fn table(&self) -> &Table {
        &self.0
    }

    fn open_conflicts(&self, c: &Connection) -> Result<u64> {
        let mut n = 0;
        let mut stmt = c.prepare_cached("SELECT DISTINCT visit_id FROM visit_event")?;
        let ids: Vec<String> = stmt
            .query_map([], |r| r.get(0))?
            .collect::<std::result::Result<_, _>>()?;
        for id in ids {
            let events = events_of(c, &id)?;
            let d = derive(&events);
            n += d.conflicts.len() as u64;
        }
        Ok(n)
    }
}

/// A version of a client's service plan.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlanVersion {
    pub id: String,
    pub effective_from: NaiveDate,
    pub plan: ServicePlan,
    pub author: String,
    pub created_ms: i64,
}

/// One task of a visit and how it went.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskState {
    pub code: String,
    pub name: String,
    /// `done`, `not_done` or `done_differently`; `None` while open (or in conflict).
    pub outcome: Option<String>,
    pub note: Option<String>,
    pub by: Option<String>,
}

/// Two or more outcomes recorded without knowing of each other (two workers offline): all kept.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VisitConflict {
    /// `visit` (finished or not done) or `task:<code>`.
    pub about: String,
    pub outcomes: Vec<Recorded>,
}

/// An event as a person reviewing it sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Recorded {
    pub event_id: String,
    pub kind: String,
    pub outcome: Option<String>,
    pub reason: Option<String>,
    pub note: Option<String>,
    /// A note's observation category.
    pub category: Option<String>,
    pub author: String,
    pub at_ms: i64,
}

/// A visit as a worker's day shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Visit {
    pub id: String,
    pub subject: String,
    pub date: NaiveDate,
    pub slot: String,
    pub name: String,
    pub from: NaiveTime,
    pub to: NaiveTime,
    /// `planned`, `arrived`, `finished`, `not_done`, or `conflict` (two outcomes, see `conflicts`).
    pub state: String,
    pub not_done_reason: Option<String>,
    /// Arrivals as recorded (two workers' arrivals are both kept, even overlapping).
    pub arrivals: Vec<Recorded>,
    pub finished_ms: Option<i64>,
    pub tasks: Vec<TaskState>,
    pub tasks_left: u32,
    pub notes: Vec<Recorded>,
    /// An urgent concern a worker raised at this visit.
    pub concerns: Vec<Recorded>,
    /// The worker it was handed over or assigned to last, and the handover note.
    pub assigned_to: Option<String>,
    pub handover_note: Option<String>,
    /// Diary entries measured at this visit (they are in the client's own diary).
    pub measurements: Vec<String>,
    pub conflicts: Vec<VisitConflict>,
    /// Its window has passed and it is neither finished nor marked not done.
    pub overdue: bool,
}

#[derive(Debug, Clone)]
struct Ev {
    id: String,
    kind: String,
    task: Option<String>,
    outcome: Option<String>,
    reason: Option<String>,
    note: Option<String>,
    to_user: Option<String>,
    entry_id: Option<String>,
    resolves: Option<String>,
    base: Vec<String>,
    at_ms: i64,
    author: String,
    category: Option<String>,
}

impl Ev {
    fn recorded(&self) -> Recorded {
        Recorded {
            event_id: self.id.clone(),
            kind: self.kind.clone(),
            outcome: self.outcome.clone(),
            reason: self.reason.clone(),
            note: self.note.clone(),
            category: self.category.clone(),
            author: self.author.clone(),
            at_ms: self.at_ms,
        }
    }
}

const EVENT_COLUMNS: &str =
    "id, kind, task, outcome, reason, note, to_user, entry_id, resolves, base, at_ms, author, visit_id, category";

fn event_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(String, Ev)> {
    let base: Option<String> = r.get(9)?;
    Ok((
        r.get(12)?,
        Ev {
            id: r.get(0)?,
            kind: r.get(1)?,
            task: r.get(2)?,
            outcome: r.get(3)?,
            reason: r.get(4)?,
            note: r.get(5)?,
            to_user: r.get(6)?,
            entry_id: r.get(7)?,
            resolves: r.get(8)?,
            base: base
                .map(|b| {
                    b.split(',')
                        .filter(|s| !s.is_empty())
                        .map(String::from)
                        .collect()
                })
                .unwrap_or_default(),
            at_ms: r.get(10)?,
            author: r.get(11)?,
            category: r.get(13)?,
        },
    ))
}

fn events_of(c: &Connection, visit_id: &str) -> Result<Vec<Ev>> {
    let mut stmt = c.prepare_cached(&format!(
        "SELECT {EVENT_COLUMNS} FROM visit_event WHERE visit_id = ?1 ORDER BY hlc, id"
    ))?;
    let rows = stmt.query_map([visit_id], |r| event_row(r).map(|(_, e)| e))?;
    Ok(rows.collect::<std::result::Result<_, _>>()?)
}

/// Every event of every visit on `date`, by visit (one query for a whole day's visits).
fn events_on(c: &Connection, date: NaiveDate) -> Result<BTreeMap<String, Vec<Ev>>> {
    let mut stmt = c.prepare_cached(&format!(
        "SELECT {EVENT_COLUMNS} FROM visit_event WHERE date = ?1 ORDER BY hlc, id"
    ))?;
    let mut out: BTreeMap<String, Vec<Ev>> = BTreeMap::new();
    for row in stmt.query_map([date.to_string()], event_row)? {
        let (visit, e) = row?;
        out.entry(visit).or_default().push(e);
    }
    Ok(out)
}

/// Events by visit id, each visit's oldest first.
type ByVisit = BTreeMap<String, Vec<Ev>>;

/// One subject's events on `date`, by visit, and the slots they name.
fn subject_events_on(
    c: &Connection,
    subject_no: i64,
    date: NaiveDate,
) -> Result<(ByVisit, Vec<String>)> {
    let mut stmt = c.prepare_cached(&format!(
        "SELECT {EVENT_COLUMNS}, slot FROM visit_event WHERE subject_no = ?1 AND date = ?2 ORDER BY hlc, id"
    ))?;
    let mut events: BTreeMap<String, Vec<Ev>> = BTreeMap::new();
    let mut slots = Vec::new();
    for row in stmt.query_map(params![subject_no, date.to_string()], |r| {
        Ok((event_row(r)?, r.get::<_, String>(13)?))
    })? {
        let ((visit, e), slot) = row?;
        events.entry(visit).or_default().push(e);
        if !slots.contains(&slot) {
            slots.push(slot);
        }
    }
    slots.sort();
    Ok((events, slots))
}

/// Every subject's plan versions (one query for a device's whole caseload).
fn all_plans(c: &Connection) -> Result<BTreeMap<i64, Vec<PlanVersion>>> {
    let mut stmt = c.prepare_cached(
        "SELECT subject_no, id, effective_from, plan, author, created_ms FROM visit_plan
         ORDER BY subject_no, effective_from, hlc",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            (r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?),
        ))
    })?;
    let mut out: BTreeMap<i64, Vec<PlanVersion>> = BTreeMap::new();
    for row in rows {
        let (no, cols) = row?;
        if let Some(p) = plan_version(cols) {
            out.entry(no).or_default().push(p);
        }
    }
    Ok(out)
}

/// A stored plan version; one that does not parse (checked by the server and on apply) is
/// skipped, not fatal.
fn plan_version(
    (id, from, plan, author, created_ms): (String, String, String, String, i64),
) -> Option<PlanVersion> {
    Some(PlanVersion {
        id,
        effective_from: pv::date("effective_from", &from).ok()?,
        plan: ServicePlan::parse(&plan).ok()?,
        author,
        created_ms,
    })
}

/// The target an outcome event is about: the visit's close, or one task.
fn target(e: &Ev) -> Option<String> {
    match e.kind.as_str() {
        "finished" | "not_done" => Some("visit".into()),
        "task" => e.task.as_ref().map(|t| format!("task:{t}")),
        "resolved" => Some(match &e.task {
            Some(t) => format!("task:{t}"),
            None => "visit".into(),
        }),
        _ => None,
    }
}

/// What the events of one visit say, on every device alike.
struct Derived<'e> {
    /// The current outcome per target (one head), resolved to the event it stands for.
    current: BTreeMap<String, &'e Ev>,
    /// Heads per target (ids), for the `base` of the next outcome.
    heads: BTreeMap<String, Vec<String>>,
    conflicts: Vec<VisitConflict>,
}

fn derive(events: &[Ev]) -> Derived<'_> {
    let by_id: BTreeMap<&str, &Ev> = events.iter().map(|e| (e.id.as_str(), e)).collect();
    let mut named: BTreeSet<&str> = BTreeSet::new();
    for e in events {
        for b in &e.base {
            named.insert(b);
        }
    }
    let mut heads: BTreeMap<String, Vec<&Ev>> = BTreeMap::new();
    for e in events {
        if let Some(t) = target(e) {
            if !named.contains(e.id.as_str()) {
                heads.entry(t).or_default().push(e);
            }
        }
    }
    let mut d = Derived {
        current: BTreeMap::new(),
        heads: BTreeMap::new(),
        conflicts: Vec::new(),
    };
    for (t, hs) in heads {
        d.heads
            .insert(t.clone(), hs.iter().map(|e| e.id.clone()).collect());
        if hs.len() == 1 {
            let h = hs[0];
            let shown = match (&h.kind[..], &h.resolves) {
                ("resolved", Some(chosen)) => by_id.get(chosen.as_str()).copied().unwrap_or(h),
                _ => h,
            };
            d.current.insert(t, shown);
        } else {
            d.conflicts.push(VisitConflict {
                about: t,
                outcomes: hs.iter().map(|e| e.recorded()).collect(),
            });
        }
    }
    d
}

/// The version of the plan in effect on `date`: the latest `effective_from` on or before it (of
/// two written for the same date, the later by HLC).
fn plan_on(plans: &[PlanVersion], date: NaiveDate) -> Option<&PlanVersion> {
    plans.iter().rev().find(|p| p.effective_from <= date)
}

fn plans_of(c: &Connection, subject_no: i64) -> Result<Vec<PlanVersion>> {
    let mut stmt = c.prepare_cached(
        "SELECT id, effective_from, plan, author, created_ms FROM visit_plan
         WHERE subject_no = ?1 ORDER BY effective_from, hlc",
    )?;
    let rows = stmt.query_map([subject_no], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
    })?;
    let mut out = Vec::new();
    for row in rows {
        out.extend(plan_version(row?));
    }
    Ok(out)
}

/// Builds the visit of `slot` on `date` from its plan entry (if the plan still has it) and events.
#[allow(clippy::too_many_arguments)]
fn build(
    events: &[Ev],
    cx: &Context,
    categories: &TaskCategories,
    subject: &str,
    date: NaiveDate,
    slot: &str,
    planned: Option<&pv::PlannedVisit>,
    now_ms: i64,
) -> Visit {
    let id = pv::visit_id(subject, date, slot).to_string();
    let d = derive(events);
    let (name, from, to, task_codes) = match planned {
        Some(p) => {
            let (f, t) = p.window();
            (p.name.clone(), f, t, p.tasks.clone())
        }
        // The plan changed after work was recorded: the visit stays, from its events.
        None => (slot.to_owned(), NaiveTime::MIN, NaiveTime::MIN, Vec::new()),
    };
    let mut codes = task_codes;
    for e in events {
        if let Some(t) = e.task.as_ref().filter(|_| e.kind == "task") {
            if !codes.contains(t) {
                codes.push(t.clone());
            }
        }
    }
    let tasks: Vec<TaskState> = codes
        .iter()
        .map(|code| {
            let cur = d.current.get(&format!("task:{code}"));
            TaskState {
                code: code.clone(),
                name: categories
                    .get(code)
                    .map_or_else(|| code.clone(), |c| c.name.clone()),
                outcome: cur.and_then(|e| e.outcome.clone()),
                note: cur.and_then(|e| e.note.clone()),
                by: cur.map(|e| e.author.clone()),
            }
        })
        .collect();
    let arrivals: Vec<Recorded> = events
        .iter()
        .filter(|e| e.kind == "arrived")
        .map(Ev::recorded)
        .collect();
    let close = d.current.get("visit");
    let state = if d.conflicts.iter().any(|k| k.about == "visit") {
        "conflict"
    } else {
        match close.map(|e| e.kind.as_str()) {
            Some("finished") => "finished",
            Some("not_done") => "not_done",
            _ if !arrivals.is_empty() => "arrived",
            _ => "planned",
        }
    };
    let last_assign = last_assignment(events);
    let ends = cx
        .tz
        .from_local_datetime(&date.and_time(to))
        .earliest()
        .map(|t| t.timestamp_millis());
    let open = matches!(state, "planned" | "arrived");
    Visit {
        id,
        subject: subject.to_owned(),
        date,
        slot: slot.to_owned(),
        name,
        from,
        to,
        state: state.into(),
        not_done_reason: close
            .filter(|e| e.kind == "not_done")
            .and_then(|e| e.reason.clone()),
        finished_ms: close.filter(|e| e.kind == "finished").map(|e| e.at_ms),
        tasks_left: tasks.iter().filter(|t| t.outcome.is_none()).count() as u32,
        tasks,
        arrivals,
        notes: events
            .iter()
            .filter(|e| e.kind == "note")
            .map(Ev::recorded)
            .collect(),
        concerns: events
            .iter()
            .filter(|e| e.kind == "concern")
            .map(Ev::recorded)
            .collect(),
        assigned_to: last_assign.and_then(|e| e.to_user.clone()),
        handover_note: last_assign
            .filter(|e| e.kind == "handover")
            .and_then(|e| e.note.clone()),
        measurements: events.iter().filter_map(|e| e.entry_id.clone()).collect(),
        conflicts: d.conflicts,
        overdue: open && planned.is_some() && ends.is_some_and(|e| e < now_ms),
    }
}

/// The visits of one subject on `date`: the plan's, in the order of their windows, and any the
/// plan no longer has but which have recorded events (`events`: that day's, by visit).
#[allow(clippy::too_many_arguments)]
fn day(
    cx: &Context,
    categories: &TaskCategories,
    plans: &[PlanVersion],
    events: &BTreeMap<String, Vec<Ev>>,
    recorded_slots: &[String],
    date: NaiveDate,
    now_ms: i64,
    mine: Option<&str>,
) -> Vec<Visit> {
    let mut slots: Vec<&pv::PlannedVisit> = plan_on(plans, date)
        .map(|p| {
            p.plan
                .visits
                .iter()
                .filter(|v| v.on(date.weekday()))
                .collect()
        })
        .unwrap_or_default();
    slots.sort_by_key(|v| v.window());
    let of = |slot: &str| {
        events
            .get(&pv::visit_id(&cx.subject, date, slot).to_string())
            .map_or(&[][..], Vec::as_slice)
    };
    // Someone else's visit is left out before it is built (a worker's day skips most visits).
    let wanted = |evs: &[Ev]| mine.is_none_or(|me| assignee(evs).is_none_or(|to| to == me));
    let mut out = Vec::new();
    for v in &slots {
        let evs = of(&v.slot);
        if wanted(evs) {
            let b = build(
                evs,
                cx,
                categories,
                &cx.subject,
                date,
                &v.slot,
                Some(v),
                now_ms,
            );
            out.push(b);
        }
    }
    for slot in recorded_slots {
        let evs = of(slot);
        if !slots.iter().any(|v| v.slot == *slot) && wanted(evs) {
            out.push(build(
                evs,
                cx,
                categories,
                &cx.subject,
                date,
                slot,
                None,
                now_ms,
            ));
        }
    }
    out
}

/// A visit's last handover or assignment, from its events (oldest first).
fn last_assignment(events: &[Ev]) -> Option<&Ev> {
    events
        .iter()
        .rev()
        .find(|e| e.kind == "handover" || e.kind == "assigned")
}

/// Who a visit was handed or assigned to last.
fn assignee(events: &[Ev]) -> Option<&str> {
    last_assignment(events).and_then(|e| e.to_user.as_deref())
}

/// The slots with recorded events on `date`, by subject (visits the plan may no longer have).
fn slots_on(c: &Connection, date: NaiveDate) -> Result<BTreeMap<i64, Vec<String>>> {
    let mut stmt = c.prepare_cached(
        "SELECT DISTINCT subject_no, slot FROM visit_event WHERE date = ?1 ORDER BY subject_no, slot",
    )?;
    let mut out: BTreeMap<i64, Vec<String>> = BTreeMap::new();
    for row in stmt.query_map([date.to_string()], |r| Ok((r.get(0)?, r.get(1)?)))? {
        let (no, slot) = row?;
        out.entry(no).or_default().push(slot);
    }
    Ok(out)
}

/// One subject's visits: plans, the visits they generate, and what workers record.
pub struct Visits<'a> {
    pub(crate) cx: &'a Context,
    pub(crate) categories: &'a TaskCategories,
    /// The county's categories of observations (notes).
    pub(crate) notes: &'a TaskCategories,
}

/// What a worker records of a visit, besides the kind.
#[derive(Debug, Clone, Default)]
pub struct Record {
    pub task: Option<String>,
    pub outcome: Option<String>,
    pub reason: Option<String>,
    pub note: Option<String>,
    pub to_user: Option<String>,
    pub entry_id: Option<String>,
    pub resolves: Option<String>,
    pub category: Option<String>,
}

impl Visits<'_> {
    /// Writes a new version of this client's service plan, in effect from `effective_from` on.
    /// Every task must be one of the county's task categories.
    pub fn set_plan(&self, plan_json: &str, effective_from: NaiveDate) -> Result<PlanVersion> {
        let plan = ServicePlan::parse(plan_json)?;
        for (i, v) in plan.visits.iter().enumerate() {
            if let Some(t) = v.tasks.iter().find(|t| self.categories.get(t).is_none()) {
                return Err(Error::validation(
                    format!("plan.visits[{i}].tasks"),
                    t,
                    format!(
                        "a task category of this county: {}",
                        self.categories.codes()
                    ),
                ));
            }
        }
        let id = Uuid::now_v7().to_string();
        let now = self.cx.clock.now().timestamp_millis();
        let text = serde_json::to_string(&plan)?;
        self.cx.store.write(|tx| {
            let hlc = self
                .cx
                .hlc
                .tick(now.max(0) as u64)
                .to_string();
            tx.execute(
                "INSERT INTO visit_plan (id, subject_no, effective_from, plan, author, created_ms, hlc)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![id, self.cx.subject_no, effective_from.to_string(), text, self.cx.author, now, hlc],
            )?;
            self.cx.queue(tx, op::VISIT_PLAN.name, &id)
        })?;
        Ok(PlanVersion {
            id,
            effective_from,
            plan,
            author: self.cx.author.clone(),
            created_ms: now,
        })
    }

    /// Every version of the plan, oldest first.
    pub fn plans(&self) -> Result<Vec<PlanVersion>> {
        self.cx.store.read(|c| plans_of(c, self.cx.subject_no))
    }

    /// The plan in effect on `date`.
    pub fn plan(&self, date: NaiveDate) -> Result<Option<PlanVersion>> {
        Ok(plan_on(&self.plans()?, date).cloned())
    }

    /// The visits of `days` days from `from` on, each day's in order.
    pub fn schedule(&self, from: NaiveDate, days: u32) -> Result<Vec<Visit>> {
        let now = self.cx.clock.now().timestamp_millis();
        self.cx.store.read(|c| {
            let plans = plans_of(c, self.cx.subject_no)?;
            let mut out = Vec::new();
            for d in from.iter_days().take(days as usize) {
                let (events, slots) = subject_events_on(c, self.cx.subject_no, d)?;
                out.extend(day(
                    self.cx,
                    self.categories,
                    &plans,
                    &events,
                    &slots,
                    d,
                    now,
                    None,
                ));
            }
            Ok(out)
        })
    }

    /// Visit `id` of this client, if the plan has it (within a year of today) or work was
    /// recorded on it.
    pub fn visit(&self, id: &str) -> Result<Visit> {
        let not_found = || Error::NotFound {
            what: "visit",
            id: id.to_owned(),
        };
        let now = self.cx.clock.now();
        let today = now.with_timezone(&self.cx.tz).date_naive();
        self.cx.store.read(|c| {
            let plans = plans_of(c, self.cx.subject_no)?;
            let recorded: Option<(String, String)> = c
                .prepare_cached(
                    "SELECT date, slot FROM visit_event WHERE visit_id = ?1 AND subject_no = ?2 LIMIT 1",
                )?
                .query_row(params![id, self.cx.subject_no], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?;
            let (date, slot) = match recorded {
                Some((d, s)) => (pv::date("date", &d)?, s),
                None => {
                    let found = (-366..=366)
                        .filter_map(|off| today.checked_add_signed(chrono::Duration::days(off)))
                        .find_map(|d| {
                            let p = plan_on(&plans, d)?;
                            p.plan
                                .visits
                                .iter()
                                .filter(|v| v.on(d.weekday()))
                                .find(|v| pv::visit_id(&self.cx.subject, d, &v.slot).to_string() == id)
                                .map(|v| (d, v.slot.clone()))
                        });
                    found.ok_or_else(not_found)?
                }
            };
            let planned = plan_on(&plans, date)
                .and_then(|p| p.plan.visits.iter().find(|v| v.slot == slot && v.on(date.weekday())));
            Ok(build(
                &events_of(c, id)?,
                self.cx,
                self.categories,
                &self.cx.subject,
                date,
                &slot,
                planned,
                now.timestamp_millis(),
            ))
        })
    }

    fn record(&self, visit: &Visit, kind: &str, r: Record, base: Vec<String>) -> Result<Visit> {
        self.record_with(visit, kind, r, base, |_| Ok(()))
    }

    /// [`Visits::record`], with `also` written in the same transaction.
    fn record_with(
        &self,
        visit: &Visit,
        kind: &str,
        r: Record,
        base: Vec<String>,
        also: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<()>,
    ) -> Result<Visit> {
        let id = Uuid::now_v7().to_string();
        let now = self.cx.clock.now();
        let offset = now
            .with_timezone(&self.cx.tz)
            .offset()
            .fix()
            .local_minus_utc();
        self.cx.store.write(|tx| {
            also(tx)?;
            let hlc = self
                .cx
                .hlc
                .tick(now.timestamp_millis().max(0) as u64)
                .to_string();
            tx.execute(
                "INSERT INTO visit_event (id, subject_no, visit_id, date, slot, kind, task, outcome, reason, note,
                   to_user, entry_id, resolves, base, at_ms, utc_offset_s, author, hlc, category)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)",
                params![
                    id,
                    self.cx.subject_no,
                    visit.id,
                    visit.date.to_string(),
                    visit.slot,
                    kind,
                    r.task,
                    r.outcome,
                    r.reason,
                    r.note,
                    r.to_user,
                    r.entry_id,
                    r.resolves,
                    (!base.is_empty()).then(|| base.join(",")),
                    now.timestamp_millis(),
                    offset,
                    self.cx.author,
                    hlc,
                    r.category
                ],
            )?;
            self.cx.queue(tx, op::VISIT_EVENT.name, &id)
        })?;
        self.visit(&visit.id)
    }

    fn closed(v: &Visit) -> Result<()> {
        match v.state.as_str() {
            "finished" | "not_done" | "conflict" => Err(Error::Conflict(format!(
                "visit {} is already {}",
                v.id,
                v.state.replace('_', " ")
            ))),
            _ => Ok(()),
        }
    }

    /// The worker is at the client's door (the time is this device's, stamped by its clock).
    pub fn arrive(&self, visit_id: &str) -> Result<Visit> {
        let v = self.visit(visit_id)?;
        Self::closed(&v)?;
        self.record(&v, "arrived", Record::default(), Vec::new())
    }

    /// The worker leaves: the visit is finished.
    pub fn finish(&self, visit_id: &str) -> Result<Visit> {
        let v = self.visit(visit_id)?;
        Self::closed(&v)?;
        if v.arrivals.is_empty() {
            return Err(Error::validation(
                "visit",
                format!("{} (planned)", v.id),
                "a visit the worker arrived at (arrive first)",
            ));
        }
        let base = self.heads(&v, "visit")?;
        self.record(&v, "finished", Record::default(), base)
    }

    /// The visit did not happen: `reason` is one of `not_at_home`, `in_hospital`, `refused`,
    /// `cancelled`, `other` (with a note).
    pub fn not_done(&self, visit_id: &str, reason: &str, note: Option<&str>) -> Result<Visit> {
        if !pv::NOT_DONE_REASONS.contains(&reason) {
            return Err(Error::validation(
                "reason",
                reason,
                pv::NOT_DONE_REASONS.join(", "),
            ));
        }
        let v = self.visit(visit_id)?;
        Self::closed(&v)?;
        let base = self.heads(&v, "visit")?;
        self.record(
            &v,
            "not_done",
            Record {
                reason: Some(reason.into()),
                note: note.map(Into::into),
                ..Record::default()
            },
            base,
        )
    }

    /// How task `task` of the visit went: `done`, `not_done` (with a reason) or
    /// `done_differently` (with a note).
    pub fn task(
        &self,
        visit_id: &str,
        task: &str,
        outcome: &str,
        note: Option<&str>,
    ) -> Result<Visit> {
        let v = self.visit(visit_id)?;
        if !v.tasks.iter().any(|t| t.code == task) {
            return Err(Error::validation(
                "task",
                task,
                format!(
                    "a task of this visit: {}",
                    v.tasks
                        .iter()
                        .map(|t| t.code.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        if !pv::OUTCOMES.contains(&outcome) {
            return Err(Error::validation(
                "outcome",
                outcome,
                pv::OUTCOMES.join(", "),
            ));
        }
        if outcome != "done" && note.is_none_or(|n| n.trim().is_empty()) {
            return Err(Error::validation(
                "note",
                "(none)",
                format!("a reason or note for a task {}", outcome.replace('_', " ")),
            ));
        }
        if let Some(n) = note {
            polku_protocol::validate::reason(n)?;
        }
        let base = self.heads(&v, &format!("task:{task}"))?;
        self.record(
            &v,
            "task",
            Record {
                task: Some(task.into()),
                outcome: Some(outcome.into()),
                note: note.map(Into::into),
                ..Record::default()
            },
            base,
        )
    }

    /// A note of the visit (append-only, like diary notes); with a `category`, a structured
    /// observation (one of the county's note categories).
    pub fn note(&self, visit_id: &str, text: &str, category: Option<&str>) -> Result<Visit> {
        let v = self.visit(visit_id)?;
        note_text(text)?;
        if let Some(c) = category.filter(|c| self.notes.get(c).is_none()) {
            return Err(Error::validation(
                "category",
                c,
                format!("a note category of this county: {}", self.notes.codes()),
            ));
        }
        self.record(
            &v,
            "note",
            Record {
                note: Some(text.into()),
                category: category.map(Into::into),
                ..Record::default()
            },
            Vec::new(),
        )
    }

    /// An urgent concern: the client goes to the top of the care team's caseload.
    pub fn concern(&self, visit_id: &str, text: &str) -> Result<Visit> {
        let v = self.visit(visit_id)?;
        note_text(text)?;
        self.record(
            &v,
            "concern",
            Record {
                note: Some(text.into()),
                ..Record::default()
            },
            Vec::new(),
        )
    }

    /// Hands the visit over to `to_user` (a colleague takes it), with a note for them.
    pub fn handover(&self, visit_id: &str, to_user: &str, note: &str) -> Result<Visit> {
        let v = self.visit(visit_id)?;
        Self::closed(&v)?;
        if to_user.trim().is_empty() || to_user.len() > 100 {
            return Err(Error::validation(
                "to",
                to_user,
                "a worker's user id (1–100 characters)",
            ));
        }
        note_text(note)?;
        self.record(
            &v,
            "handover",
            Record {
                to_user: Some(to_user.into()),
                note: Some(note.into()),
                ..Record::default()
            },
            Vec::new(),
        )
    }

    /// A coordinator gives the visit to `to_user` (it moves into that worker's day).
    pub fn assign(&self, visit_id: &str, to_user: &str) -> Result<Visit> {
        let v = self.visit(visit_id)?;
        Self::closed(&v)?;
        if to_user.trim().is_empty() || to_user.len() > 100 {
            return Err(Error::validation(
                "to",
                to_user,
                "a worker's user id (1–100 characters)",
            ));
        }
        self.record(
            &v,
            "assigned",
            Record {
                to_user: Some(to_user.into()),
                ..Record::default()
            },
            Vec::new(),
        )
    }

    /// A measurement taken at the visit: it lands in the client's own diary, authored by the
    /// worker (their analytics and pathway see it), and the visit names it; both in one
    /// transaction.
    pub fn measure(&self, visit_id: &str, entry: crate::diary::NewEntry) -> Result<Visit> {
        let v = self.visit(visit_id)?;
        let e = crate::diary::Diary { cx: self.cx }.checked(entry)?;
        self.record_with(
            &v,
            "measured",
            Record {
                entry_id: Some(e.id.to_string()),
                ..Record::default()
            },
            Vec::new(),
            |tx| crate::diary::insert_version(tx, self.cx, &e, None).map(|_| ()),
        )
    }

    /// Settles a conflict: `about` is `visit` or `task:<code>`, `keep` the event id whose outcome
    /// stands (both stay in the history).
    pub fn resolve(&self, visit_id: &str, about: &str, keep: &str, note: &str) -> Result<Visit> {
        let v = self.visit(visit_id)?;
        let Some(conflict) = v.conflicts.iter().find(|c| c.about == about) else {
            return Err(Error::NotFound {
                what: "conflict",
                id: format!("{visit_id} {about}"),
            });
        };
        if !conflict.outcomes.iter().any(|o| o.event_id == keep) {
            return Err(Error::validation(
                "keep",
                keep,
                format!(
                    "one of the conflicting events: {}",
                    conflict
                        .outcomes
                        .iter()
                        .map(|o| o.event_id.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        note_text(note)?;
        let base = conflict
            .outcomes
            .iter()
            .map(|o| o.event_id.clone())
            .collect();
        self.record(
            &v,
            "resolved",
            Record {
                task: about.strip_prefix("task:").map(Into::into),
                resolves: Some(keep.into()),
                note: Some(note.into()),
                ..Record::default()
            },
            base,
        )
    }

    fn heads(&self, v: &Visit, about: &str) -> Result<Vec<String>> {
        self.cx.store.read(|c| {
            let events = events_of(c, &v.id)?;
            Ok(derive(&events).heads.remove(about).unwrap_or_default())
        })
    }
}

fn note_text(text: &str) -> Result<()> {
    let n = text.chars().count();
    if text.trim().is_empty() || n > polku_protocol::validate::NOTE_MAX_CHARS {
        return Err(Error::validation(
            "note",
            format!("{n} characters"),
            format!("1–{} characters", polku_protocol::validate::NOTE_MAX_CHARS),
        ));
    }
    Ok(())
}

/// The visits of `days` days from `from` across every client on the device, each day's open
/// visits first in the order of their windows (clients with an urgent concern first of all, then
/// overdue ones), done visits last. With `mine`, only the visits handed or assigned to that user,
/// and those assigned to nobody. Plans are read once, each day's events in one query.
pub(crate) fn visits_between(
    cx: &Context,
    categories: &TaskCategories,
    from: NaiveDate,
    days: u32,
    mine: Option<&str>,
) -> Result<Vec<Visit>> {
    let now = cx.clock.now().timestamp_millis();
    cx.store.read(|c| {
        let mut stmt = c.prepare_cached("SELECT id, no FROM subject ORDER BY no")?;
        let subjects: Vec<(String, i64)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<std::result::Result<_, _>>()?;
        let plans = all_plans(c)?;
        let views: Vec<Context> = subjects
            .into_iter()
            .map(|(id, no)| cx.view(id, no))
            .collect();
        let mut all = Vec::new();
        for date in from.iter_days().take(days as usize) {
            let events = events_on(c, date)?;
            let slots = slots_on(c, date)?;
            let mut out = Vec::new();
            for view in &views {
                let recorded = slots.get(&view.subject_no).map_or(&[][..], Vec::as_slice);
                let p = plans.get(&view.subject_no).map_or(&[][..], Vec::as_slice);
                if p.is_empty() && recorded.is_empty() {
                    continue;
                }
                out.extend(day(view, categories, p, &events, recorded, date, now, mine));
            }
            out.sort_by_key(|v| {
                let open = matches!(v.state.as_str(), "planned" | "arrived" | "conflict");
                (
                    !open,
                    v.concerns.is_empty(),
                    !v.overdue,
                    v.from,
                    v.subject.clone(),
                )
            });
            all.extend(out);
        }
        Ok(all)
    })
}

/// Urgent concerns raised at visits since `since_ms`, per subject (for the caseload).
pub(crate) fn concerns_since(cx: &Context, since_ms: i64) -> Result<BTreeMap<String, u32>> {
    cx.store.read(|c| {
        let mut stmt = c.prepare_cached(
            "SELECT s.id, count(*) FROM visit_event e JOIN subject s ON s.no = e.subject_no
             WHERE e.kind = 'concern' AND e.at_ms >= ?1 GROUP BY s.id",
        )?;
        let rows = stmt.query_map([since_ms], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<std::result::Result<_, _>>()?)
    })
}

/// The subject whose visit `id` is, among those on this device (recorded work first, else the
/// plans' visits within two weeks of `today`).
pub(crate) fn locate(cx: &Context, id: &str, today: NaiveDate) -> Result<Option<(String, i64)>> {
    cx.store.read(|c| {
        let recorded: Option<(String, i64)> = c
            .prepare_cached(
                "SELECT s.id, s.no FROM visit_event e JOIN subject s ON s.no = e.subject_no WHERE e.visit_id = ?1 LIMIT 1",
            )?
            .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        if recorded.is_some() {
            return Ok(recorded);
        }
        let mut stmt = c.prepare_cached("SELECT DISTINCT s.id, s.no FROM visit_plan p JOIN subject s ON s.no = p.subject_no")?;
        let subjects: Vec<(String, i64)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<std::result::Result<_, _>>()?;
        for (subject, no) in subjects {
            let plans = plans_of(c, no)?;
            for off in -14..=14 {
                let Some(d) = today.checked_add_signed(chrono::Duration::days(off)) else {
                    continue;
                };
                let hit = plan_on(&plans, d).is_some_and(|p| {
                    p.plan
                        .visits
                        .iter()
                        .any(|v| v.on(d.weekday()) && pv::visit_id(&subject, d, &v.slot).to_string() == id)
                });
                if hit {
                    return Ok(Some((subject, no)));
                }
            }
        }
        Ok(None)
    })
}
