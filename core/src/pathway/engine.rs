//! Evaluates an enrollment: the state of every step, the flags and the reminders, from the
//! definition, the enrollment's events and the subject's data. Pure: the data comes through
//! [`Data`], "now" is an argument, so a fake clock can walk a pathway day by day.
//!
//! Rules (documented in docs/pathways.md):
//! - A condition yields the instant it became true; a step opens at the latest of its unlock
//!   conditions (enrollment time if it has none). Steps may only refer to earlier steps.
//! - Due and expiry are counted from the opening. Done beats everything; then skipped; an open step
//!   past its expiry is expired, past its due date overdue, with partial data in progress.
//! - Measurement periods and questionnaires complete from data recorded after the step opened.
//! - An answer that opened a step keeps it open: unlock conditions on questionnaires hold from the
//!   first response since enrollment that met them, so a later, better answer never re-locks a
//!   step opened for it (a same-day referral stays). Flags look at the latest response.

use std::collections::{BTreeSet, HashMap};

use chrono::{Duration, NaiveDate, NaiveTime, TimeZone};
use chrono_tz::Tz;
use serde::Serialize;

use super::definition::{Condition, Definition, FlagRule, Measurement, Step, StepKind, Texts};
use crate::analytics::bp::{self, BpPoint};
use crate::diary::SymptomCode;
use crate::questionnaire::{InstrumentId, Response};
use crate::time;

const DAY_MS: i64 = 86_400_000;

/// The subject's data as the engine needs it, from `since_ms` on.
pub trait Data {
    /// Fasting glucose readings (meter or typed) with values in mmol/L.
    fn fasting_glucose(&self, since_ms: i64) -> Vec<(i64, i32, f64)>;
    /// The first glucose reading below `mmol_l` (LO included).
    fn first_glucose_below(&self, since_ms: i64, mmol_l: f64) -> Option<i64>;
    fn blood_pressure(&self, since_ms: i64) -> Vec<BpPoint>;
    /// Instants and offsets of symptom entries with one of `codes`.
    fn symptoms(&self, since_ms: i64, codes: &[SymptomCode]) -> Vec<(i64, i32)>;
    /// CGM readings, for hypoglycaemic events.
    fn cgm(&self, since_ms: i64) -> Vec<crate::analytics::glucose::Point>;
    /// The latest response of `instrument`, if authored at or after `since_ms`.
    fn latest_response(&self, instrument: InstrumentId, since_ms: i64) -> Option<Response>;
    /// Every response of `instrument` authored at or after `since_ms`, oldest first.
    fn responses(&self, instrument: InstrumentId, since_ms: i64) -> Vec<Response>;
}

/// Which responses a questionnaire condition reads.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Answers {
    /// Any response since enrollment: true from the first that met it (unlocking).
    First,
    /// The latest response (flags show the current state).
    Latest,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepState {
    Locked,
    Available,
    InProgress,
    Done,
    Skipped,
    Overdue,
    Expired,
}

impl StepState {
    pub fn as_str(self) -> &'static str {
        match self {
            StepState::Locked => "locked",
            StepState::Available => "available",
            StepState::InProgress => "in_progress",
            StepState::Done => "done",
            StepState::Skipped => "skipped",
            StepState::Overdue => "overdue",
            StepState::Expired => "expired",
        }
    }

    /// Open for the citizen to act on.
    pub fn is_open(self) -> bool {
        matches!(
            self,
            StepState::Available | StepState::InProgress | StepState::Overdue
        )
    }
}

/// An event of an enrollment (append-only; forward progress merges across devices).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Event {
    Completed {
        step: String,
        at_ms: i64,
    },
    Skipped {
        step: String,
        at_ms: i64,
        reason: String,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepStatus {
    pub step_id: String,
    pub state: StepState,
    pub opened_ms: Option<i64>,
    pub due_ms: Option<i64>,
    pub expires_ms: Option<i64>,
    /// When it was done or skipped.
    pub finished_ms: Option<i64>,
    pub skip_reason: Option<String>,
    /// For measurement periods: (recorded, needed).
    pub progress: Option<(u32, u32)>,
    /// Completed just now from diary data or a questionnaire answer (not yet recorded as an event).
    #[serde(skip)]
    pub completed_by_data: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RaisedFlag {
    pub code: String,
    pub urgent: bool,
    pub since_ms: i64,
    pub message: Texts,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Reminder {
    pub step_id: String,
    pub at_ms: i64,
}

pub struct Evaluation {
    pub steps: Vec<StepStatus>,
    pub flags: Vec<RaisedFlag>,
}

/// Evaluates every step and flag of an enrollment at `now_ms`.
pub fn evaluate(
    def: &Definition,
    enrolled_ms: i64,
    events: &[Event],
    data: &dyn Data,
    now_ms: i64,
) -> Evaluation {
    let mut finished: HashMap<&str, i64> = HashMap::new();
    let mut steps = Vec::with_capacity(def.steps.len());
    for step in &def.steps {
        let s = evaluate_step(step, enrolled_ms, events, data, now_ms, &finished);
        if let (Some(t), StepState::Done | StepState::Skipped) = (s.finished_ms, s.state) {
            finished.insert(step.id.as_str(), t);
        }
        steps.push(s);
    }
    let flags = def
        .flags
        .iter()
        .filter_map(|f| flag(f, enrolled_ms, data, now_ms, &finished))
        .collect();
    Evaluation { steps, flags }
}

/// Flags on measurements look at the last 30 days: the care team's list shows current problems.
/// (Questionnaire flags look at the latest response since enrollment, however old.)
pub const FLAG_WINDOW_DAYS: i64 = 30;

fn flag(
    f: &FlagRule,
    enrolled_ms: i64,
    data: &dyn Data,
    now_ms: i64,
    finished: &HashMap<&str, i64>,
) -> Option<RaisedFlag> {
    let measured_since = enrolled_ms.max(now_ms - FLAG_WINDOW_DAYS * DAY_MS);
    condition(
        &f.when,
        enrolled_ms,
        measured_since,
        data,
        now_ms,
        finished,
        Answers::Latest,
    )
    .map(|since_ms| RaisedFlag {
        code: f.code.clone(),
        urgent: f.urgent,
        since_ms,
        message: f.message.clone(),
    })
}

fn evaluate_step(
    step: &Step,
    enrolled_ms: i64,
    events: &[Event],
    data: &dyn Data,
    now_ms: i64,
    finished: &HashMap<&str, i64>,
) -> StepStatus {
    let mut opened = Some(enrolled_ms);
    for c in &step.unlock {
        opened = match (
            opened,
            condition(
                c,
                enrolled_ms,
                enrolled_ms,
                data,
                now_ms,
                finished,
                Answers::First,
            ),
        ) {
            (Some(a), Some(b)) => Some(a.max(b)),
            _ => None,
        };
    }
    let mut st = StepStatus {
        step_id: step.id.clone(),
        state: StepState::Locked,
        opened_ms: opened,
        due_ms: None,
        expires_ms: None,
        finished_ms: None,
        skip_reason: None,
        progress: None,
        completed_by_data: false,
    };
    let Some(open) = opened else { return st };
    st.due_ms = step.due_days.map(|d| open + d as i64 * DAY_MS);
    st.expires_ms = step.expires_days.map(|d| open + d as i64 * DAY_MS);

    // A recorded completion or skip is final and needs no data (automatic completions are
    // recorded too, see `Pathways::progress`); only open steps look at the diary.
    let recorded_done = events
        .iter()
        .filter_map(|e| match e {
            Event::Completed { step: s, at_ms } if *s == step.id => Some(*at_ms),
            _ => None,
        })
        .min();
    if let Some(done) = recorded_done {
        st.state = StepState::Done;
        st.finished_ms = Some(done);
        st.progress = needed(&step.kind).map(|n| (n, n));
        return st;
    }
    if let Some((at, reason)) = events.iter().find_map(|e| match e {
        Event::Skipped {
            step: s,
            at_ms,
            reason,
        } if *s == step.id => Some((*at_ms, reason.clone())),
        _ => None,
    }) {
        st.state = StepState::Skipped;
        st.finished_ms = Some(at);
        st.skip_reason = Some(reason);
        return st;
    }
    let (auto_done, progress) = auto_completion(&step.kind, open, data);
    st.progress = progress;
    if let Some(done) = auto_done {
        st.state = StepState::Done;
        st.finished_ms = Some(done);
        st.completed_by_data = true;
        return st;
    }
    st.state = if st.expires_ms.is_some_and(|e| now_ms > e) {
        StepState::Expired
    } else if st.due_ms.is_some_and(|d| now_ms > d) {
        StepState::Overdue
    } else if progress.is_some_and(|(have, _)| have > 0) {
        StepState::InProgress
    } else {
        StepState::Available
    };
    st
}

fn local_date(ms: i64, offset_s: i32) -> NaiveDate {
    time::wall_clock(ms, offset_s).date_naive()
}

/// The number of days a measurement period needs.
fn needed(kind: &StepKind) -> Option<u32> {
    match kind {
        StepKind::MeasurementPeriod {
            measurement:
                Measurement::FastingGlucoseDays { days }
                | Measurement::HomeBpSeries { days }
                | Measurement::SymptomDays { days, .. },
        } => Some(*days),
        _ => None,
    }
}

/// Completion time (if complete) and progress of a step that completes from data.
fn auto_completion(
    kind: &StepKind,
    open: i64,
    data: &dyn Data,
) -> (Option<i64>, Option<(u32, u32)>) {
    match kind {
        StepKind::MeasurementPeriod { measurement } => match measurement {
            Measurement::FastingGlucoseDays { days } => distinct_days(
                data.fasting_glucose(open)
                    .into_iter()
                    .map(|(t, o, _)| (t, o)),
                *days,
            ),
            Measurement::SymptomDays { codes, days } => {
                distinct_days(data.symptoms(open, codes).into_iter(), *days)
            }
            Measurement::HomeBpSeries { days } => {
                // Done at the first run of `days` consecutive qualifying days since opening, at
                // its last reading: a later, partial week of measuring does not hide it.
                let points = data.blood_pressure(open);
                let (reached, longest) = bp::first_run_of(&points, *days);
                let done = reached.and_then(|last_day| {
                    points
                        .iter()
                        .filter(|p| local_date(p.at_ms, p.offset_s) <= last_day)
                        .map(|p| p.at_ms)
                        .max()
                });
                (done, Some((longest.min(*days), *days)))
            }
        },
        StepKind::Questionnaire { instrument } => (
            data.latest_response(*instrument, open)
                .map(|r| r.authored.timestamp_millis()),
            None,
        ),
        _ => (None, None),
    }
}

/// Done when readings fall on `needed` different local days: at the reading that made it so.
fn distinct_days(
    readings: impl Iterator<Item = (i64, i32)>,
    needed: u32,
) -> (Option<i64>, Option<(u32, u32)>) {
    let mut sorted: Vec<(i64, i32)> = readings.collect();
    sorted.sort_unstable();
    let mut days = BTreeSet::new();
    let mut done = None;
    for (t, o) in sorted {
        if days.insert(local_date(t, o)) && days.len() as u32 == needed {
            done = Some(t);
        }
    }
    (done, Some(((days.len() as u32).min(needed), needed)))
}

/// The instant `c` became true, or `None` if it does not hold at `now_ms`. Questionnaire
/// conditions look at responses since enrollment; measurement conditions at data since
/// `measured_since` (enrollment for unlocking, the flag window for flags).
fn condition(
    c: &Condition,
    enrolled_ms: i64,
    measured_since: i64,
    data: &dyn Data,
    now_ms: i64,
    finished: &HashMap<&str, i64>,
    answers: Answers,
) -> Option<i64> {
    // The instant of the response `meets` picks (the first or the latest, see `Answers`).
    let response = |instrument: InstrumentId, meets: &dyn Fn(&Response) -> bool| match answers {
        Answers::Latest => data
            .latest_response(instrument, enrolled_ms)
            .filter(|r| meets(r))
            .map(|r| r.authored.timestamp_millis()),
        Answers::First => data
            .responses(instrument, enrolled_ms)
            .iter()
            .find(|r| meets(r))
            .map(|r| r.authored.timestamp_millis()),
    };
    match c {
        Condition::AfterSteps { steps } => steps
            .iter()
            .map(|s| finished.get(s.as_str()).copied())
            .collect::<Option<Vec<_>>>()
            .and_then(|v| v.into_iter().max()),
        Condition::AfterDays { days } => {
            Some(enrolled_ms + *days as i64 * DAY_MS).filter(|t| *t <= now_ms)
        }
        Condition::QuestionnaireBand { instrument, bands } => {
            response(*instrument, &|r| bands.contains(&r.scored.band))
        }
        Condition::QuestionnaireItem {
            instrument,
            item,
            min,
        } => response(*instrument, &|r| {
            r.scored
                .answers
                .get(*item as usize - 1)
                .is_some_and(|a| a >= min)
        }),
        Condition::HomeBpMeanAtLeast {
            systolic,
            diastolic,
        } => {
            let points = data.blood_pressure(measured_since);
            let s = bp::analyze(&points).home_series.filter(|s| s.complete)?;
            (s.mean_systolic >= *systolic || s.mean_diastolic >= *diastolic)
                .then(|| points.iter().map(|p| p.at_ms).max())
                .flatten()
        }
        Condition::FastingGlucoseMeanAtLeast { mmol_l } => {
            // At least three readings before a mean says anything.
            let r = data.fasting_glucose(measured_since);
            let mean = r.iter().map(|x| x.2).sum::<f64>() / r.len().max(1) as f64;
            (r.len() >= 3 && mean >= *mmol_l)
                .then(|| r.iter().map(|x| x.0).max())
                .flatten()
        }
        Condition::HypoglycaemicEvent { level } => {
            use crate::analytics::glucose;
            let points = data.cgm(measured_since);
            let weights = glucose::time_weights(&points, glucose::nominal_interval_ms(&points));
            let threshold = if *level >= 2 { 30 } else { 39 };
            glucose::hypo_events(&points, &weights, threshold, *level)
                .first()
                .map(|e| e.start_ms)
                .filter(|t| *t <= now_ms)
        }
        Condition::GlucoseBelow { mmol_l } => data
            .first_glucose_below(measured_since, *mmol_l)
            .filter(|t| *t <= now_ms),
        Condition::Any { of } => of
            .iter()
            .filter_map(|c| {
                condition(
                    c,
                    enrolled_ms,
                    measured_since,
                    data,
                    now_ms,
                    finished,
                    answers,
                )
            })
            .min(),
    }
}

/// Times at which the shell should schedule local notifications, from `now_ms` up to `horizon`:
/// each open step's `remind_at` times on every day until it is due (or expires), and for an open
/// step without reminder times one reminder at 09:00 local on the day before it is due.
pub fn reminders(
    def: &Definition,
    eval: &Evaluation,
    tz: Tz,
    now_ms: i64,
    horizon: Duration,
) -> Vec<Reminder> {
    let end = now_ms + horizon.num_milliseconds();
    let mut out = Vec::new();
    for (step, st) in def.steps.iter().zip(&eval.steps) {
        if !st.state.is_open() {
            continue;
        }
        let stop = st
            .expires_ms
            .or(st.due_ms)
            .unwrap_or(end)
            .max(now_ms)
            .min(end);
        let times: Vec<NaiveTime> = step
            .remind_at
            .iter()
            .filter_map(|t| NaiveTime::parse_from_str(t, "%H:%M").ok())
            .collect();
        let at_local = |d: NaiveDate, t: NaiveTime| {
            tz.from_local_datetime(&d.and_time(t))
                .earliest()
                .map(|x| x.timestamp_millis())
        };
        if times.is_empty() {
            if let Some(due) = st.due_ms {
                let day_before =
                    (time::from_ms(due).with_timezone(&tz) - Duration::days(1)).date_naive();
                if let Some(t) = at_local(
                    day_before,
                    NaiveTime::from_hms_opt(9, 0, 0).expect("valid time"),
                )
                .filter(|t| *t > now_ms && *t <= end)
                {
                    out.push(Reminder {
                        step_id: step.id.clone(),
                        at_ms: t,
                    });
                }
            }
            continue;
        }
        let mut day = time::from_ms(now_ms).with_timezone(&tz).date_naive();
        while let Some(start) = at_local(day, NaiveTime::MIN) {
            if start > stop {
                break;
            }
            for t in &times {
                if let Some(at) = at_local(day, *t).filter(|at| *at > now_ms && *at <= stop) {
                    out.push(Reminder {
                        step_id: step.id.clone(),
                        at_ms: at,
                    });
                }
            }
            day = match day.succ_opt() {
                Some(d) => d,
                None => break,
            };
        }
    }
    out.sort_by_key(|r| r.at_ms);
    out
}
