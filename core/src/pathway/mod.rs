//! Digital care pathways ("digihoitopolku"): a citizen follows steps a professional assigned (or
//! that the citizen started, where the definition allows); the care team sees who is stuck,
//! overdue or flagged. Enrollments and their events are per-subject records, append-only, ready to
//! sync: completing, skipping and migrating are events; the state is derived by `engine`.

pub mod definition;
pub mod engine;

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use chrono::{DateTime, Duration, Utc};
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;
use uuid::Uuid;

use crate::analytics::bp::BpPoint;
use crate::context::Context;
use crate::diary::SymptomCode;
use crate::error::{Error, Result};
use crate::questionnaire::{InstrumentId, Response};
use crate::safety::SafetyFlag;
use crate::store::kind::{Applied, RecordKind, Table};
use crate::time;

pub use definition::{Definition, Registry, Step, StepKind};
pub use engine::{RaisedFlag, Reminder, StepState, StepStatus};

/// Who acts. *open* until sync brings authenticated roles: the shell states it, and the server
/// will enforce it for synced records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Actor {
    Citizen,
    Professional,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Enrollment {
    pub id: Uuid,
    pub definition_id: String,
    /// The pinned definition version (changed only by an explicit migration).
    pub definition_version: u32,
    pub enrolled_at: DateTime<Utc>,
    pub enrolled_by: Actor,
}

/// The steps of an enrollment as the shell shows them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Progress {
    pub enrollment: Enrollment,
    pub steps: Vec<StepStatus>,
    pub flags: Vec<RaisedFlag>,
    /// Steps done or skipped, of all.
    pub finished: u32,
    pub total: u32,
    /// The newest published version of the definition: above the pinned one, the shell offers
    /// the explicit migration (`Pathways::migrate`).
    pub latest_version: u32,
}

/// Enrollments and their step events, one synced record each (events follow their enrollment).
pub(crate) static ENROLLMENTS: Table = Table::new(
    &polku_protocol::op::PATHWAY_ENROLLMENT,
    "pathway_enrollment",
    true,
    "id, subject_no, printf('%016x-0000-requeue', enrolled_ms) FROM pathway_enrollment WHERE author = ?1 ORDER BY enrolled_ms",
    "DELETE FROM pathway_enrollment WHERE subject_no = ?1 AND id NOT IN (SELECT id FROM temp.keep)",
);

/// Step events: each belongs to its enrollment's subject; one that names another subject's
/// enrollment is held, never applied (the server refuses it too: `foreign_record`).
pub(crate) struct Events(Table);

impl RecordKind for Events {
    fn table(&self) -> &Table {
        &self.0
    }

    fn apply(
        &self,
        tx: &rusqlite::Transaction<'_>,
        subject_no: i64,
        obj: &serde_json::Map<String, serde_json::Value>,
        now_ms: i64,
    ) -> Result<Applied> {
        let enrollment = obj
            .get("enrollment_id")
            .and_then(|v| v.as_str())
            .unwrap_or("");
        let owner: Option<i64> = tx
            .prepare_cached("SELECT subject_no FROM pathway_enrollment WHERE id = ?1")?
            .query_row([enrollment], |r| r.get(0))
            .optional()?;
        if owner.is_some_and(|no| no != subject_no) {
            return Err(Error::Storage(format!(
                "pathway event of enrollment {enrollment} of another subject"
            )));
        }
        self.0.apply(tx, subject_no, obj, now_ms)
    }
}

pub(crate) static EVENTS: Events = Events(Table::new(
    &polku_protocol::op::PATHWAY_EVENT,
    "pathway_event",
    false,
    "ev.id, en.subject_no, printf('%016x-0000-requeue', ev.at_ms)
     FROM pathway_event ev JOIN pathway_enrollment en ON en.id = ev.enrollment_id
     WHERE ev.author = ?1 ORDER BY ev.at_ms",
    "DELETE FROM pathway_event WHERE id NOT IN (SELECT id FROM temp.keep) AND enrollment_id IN
        (SELECT id FROM pathway_enrollment WHERE subject_no = ?1)",
));

pub struct Pathways<'a> {
    pub(crate) cx: &'a Context,
    pub(crate) registry: &'a Registry,
}

impl Pathways<'_> {
    pub fn definitions(&self) -> Vec<&Definition> {
        self.registry.all_latest()
    }

    /// Starts the latest version of `definition_id` for this profile's subject.
    pub fn enroll(&self, definition_id: &str, by: Actor) -> Result<Enrollment> {
        let def = self.registry.latest(definition_id)?;
        if by == Actor::Citizen && !def.self_enroll {
            return Err(Error::validation(
                "enrolled_by",
                "citizen",
                format!("a professional: `{definition_id}` is assigned by the care team"),
            ));
        }
        let e = Enrollment {
            id: Uuid::now_v7(),
            definition_id: def.id.clone(),
            definition_version: def.version,
            enrolled_at: time::stored_precision(self.cx.clock.now()),
            enrolled_by: by,
        };
        self.cx.store.write(|tx| {
            tx.execute(
                "INSERT INTO pathway_enrollment (id, subject_no, definition_id, definition_version, enrolled_ms, enrolled_by, author)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![e.id.to_string(), self.cx.subject_no, e.definition_id, e.definition_version, e.enrolled_at.timestamp_millis(), actor_str(by), self.cx.author],
            )?;
            self.cx.queue(tx, polku_protocol::op::PATHWAY_ENROLLMENT.name, &e.id.to_string(),
            )?;
            Ok(())
        })?;
        Ok(e)
    }

    pub fn enrollments(&self) -> Result<Vec<Enrollment>> {
        self.cx.store.read(|c| {
            let mut stmt = c.prepare_cached(&format!(
                "{ENROLLMENT_SELECT} WHERE e.subject_no = ?1 ORDER BY e.enrolled_ms, e.id"
            ))?;
            let rows = stmt.query_map([self.cx.subject_no], row_to_enrollment)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    pub fn enrollment(&self, id: Uuid) -> Result<Enrollment> {
        self.cx
            .store
            .read(|c| enrollment(c, self.cx.subject_no, id))
    }

    /// Every step's state, the flags and the overall progress at the clock's now.
    pub fn progress(&self, id: Uuid) -> Result<Progress> {
        let e = self
            .cx
            .store
            .read(|c| enrollment(c, self.cx.subject_no, id))?;
        self.progress_of(e)
    }

    /// `progress` for an enrollment already read (the caseload and reminders list them first).
    fn progress_of(&self, enrollment: Enrollment) -> Result<Progress> {
        let id = enrollment.id;
        let events = self.cx.store.read(|c| events(c, id))?;
        let def = self
            .registry
            .get(&enrollment.definition_id, enrollment.definition_version)?;
        let eval = engine::evaluate(
            def,
            enrollment.enrolled_at.timestamp_millis(),
            &events,
            &DbData {
                cx: self.cx,
                memo: Memo::default(),
            },
            self.cx.clock.now().timestamp_millis(),
        );
        // A step completed from data is recorded as an event with the data's time: the completion
        // then stands even if an entry is later deleted, later evaluations need not read the data
        // again, and sync merges it like any completion (the first one wins).
        let auto: Vec<(&str, i64)> = eval
            .steps
            .iter()
            .filter(|s| s.completed_by_data)
            .filter_map(|s| Some((s.step_id.as_str(), s.finished_ms?)))
            .collect();
        if !auto.is_empty() {
            self.cx.store.write(|tx| {
                for (step, at_ms) in &auto {
                    insert_event(
                        tx,
                        self.cx,
                        id,
                        &NewEvent {
                            step: Some(step),
                            kind: "completed",
                            at_ms: *at_ms,
                            author: &self.cx.author,
                            reason: Some("completed from diary data"),
                            to_version: None,
                        },
                    )?;
                }
                Ok(())
            })?;
        }
        let finished = eval
            .steps
            .iter()
            .filter(|s| matches!(s.state, StepState::Done | StepState::Skipped))
            .count() as u32;
        Ok(Progress {
            total: eval.steps.len() as u32,
            finished,
            steps: eval.steps,
            flags: eval.flags,
            latest_version: self.registry.latest(&enrollment.definition_id)?.version,
            enrollment,
        })
    }

    /// Marks a step done. Steps completed by data (measurements, questionnaires) cannot be marked;
    /// an appointment says who may mark it; a review is the professional's.
    pub fn complete(&self, id: Uuid, step_id: &str, by: Actor) -> Result<Progress> {
        let def = self.open_step(id, step_id)?;
        let step = def
            .steps
            .iter()
            .find(|s| s.id == step_id)
            .expect("open_step checked the step");
        let allowed = match &step.kind {
            StepKind::Education { .. } | StepKind::Message { .. } => true,
            StepKind::Appointment { by: who, .. } => matches!(
                (who, by),
                (definition::CompletedBy::Either, _)
                    | (definition::CompletedBy::Professional, Actor::Professional)
                    | (definition::CompletedBy::Citizen, Actor::Citizen)
            ),
            StepKind::ProfessionalReview { .. } => by == Actor::Professional,
            StepKind::MeasurementPeriod { .. } | StepKind::Questionnaire { .. } => {
                return Err(Error::validation("step", step_id, "a step done by hand: this one completes from diary entries or questionnaire answers"));
            }
        };
        if !allowed {
            return Err(Error::validation(
                "by",
                actor_str(by),
                format!(
                    "the {} who may complete `{step_id}`",
                    if by == Actor::Citizen {
                        "professional"
                    } else {
                        "citizen"
                    }
                ),
            ));
        }
        self.event(id, step_id, "completed", None)?;
        self.progress(id)
    }

    /// A message the citizen sent their care team completes each open `message` step of their
    /// pathways (issue 10: the step is done by writing, not by ticking it). Returns the steps.
    pub(crate) fn message_sent(&self) -> Result<Vec<String>> {
        let mut done = Vec::new();
        for e in self.enrollments()? {
            let Some(p) = definition_known(self.progress_of(e.clone()))? else {
                continue;
            };
            let def = self.registry.get(&e.definition_id, e.definition_version)?;
            for st in &p.steps {
                let is_message = def
                    .steps
                    .iter()
                    .any(|s| s.id == st.step_id && matches!(s.kind, StepKind::Message { .. }));
                let open = matches!(
                    st.state,
                    StepState::Available | StepState::InProgress | StepState::Overdue
                );
                if is_message && open {
                    self.event(e.id, &st.step_id, "completed", None)?;
                    done.push(st.step_id.clone());
                }
            }
        }
        Ok(done)
    }

    /// Skips a step with a reason (kept with the enrollment).
    pub fn skip(&self, id: Uuid, step_id: &str, reason: &str) -> Result<Progress> {
        crate::diary::validate::reason(reason)?;
        self.open_step(id, step_id)?;
        self.event(id, step_id, "skipped", Some(reason.trim()))?;
        self.progress(id)
    }

    /// Moves an enrollment to another published version of its definition. Done and skipped steps
    /// keep their state where the new version has a step of the same id.
    pub fn migrate(&self, id: Uuid, to_version: u32) -> Result<Progress> {
        let e = self.enrollment(id)?;
        if to_version == e.definition_version {
            return Err(Error::validation(
                "to_version",
                to_version,
                format!(
                    "a published version of {} other than the pinned one",
                    e.definition_id
                ),
            ));
        }
        self.registry.get(&e.definition_id, to_version)?;
        let now = time::stored_precision(self.cx.clock.now()).timestamp_millis();
        self.cx.store.write(|tx| {
            insert_event(
                tx,
                self.cx,
                id,
                &NewEvent {
                    step: None,
                    kind: "migrated",
                    at_ms: now,
                    author: &self.cx.author,
                    reason: None,
                    to_version: Some(to_version),
                },
            )
        })?;
        self.progress(id)
    }

    /// When the shell should remind, over the next `horizon`, for every enrollment.
    pub fn reminders(&self, horizon: Duration) -> Result<Vec<(Uuid, Reminder)>> {
        let now = self.cx.clock.now().timestamp_millis();
        let mut out = Vec::new();
        for e in self.enrollments()? {
            // An enrollment whose definition this device lacks has no steps to remind of.
            let Some(p) = definition_known(self.progress_of(e))? else {
                continue;
            };
            let e = &p.enrollment;
            let def = self.registry.get(&e.definition_id, e.definition_version)?;
            let eval = engine::Evaluation {
                steps: p.steps,
                flags: p.flags,
            };
            out.extend(
                engine::reminders(def, &eval, self.cx.tz, now, horizon)
                    .into_iter()
                    .map(|r| (e.id, r)),
            );
        }
        out.sort_by_key(|(_, r)| r.at_ms);
        Ok(out)
    }

    /// The definition, if `step_id` exists and is open to being completed or skipped.
    fn open_step(&self, id: Uuid, step_id: &str) -> Result<&Definition> {
        let p = self.progress(id)?;
        let def = self
            .registry
            .get(&p.enrollment.definition_id, p.enrollment.definition_version)?;
        let st = p
            .steps
            .into_iter()
            .find(|s| s.step_id == step_id)
            .ok_or_else(|| {
                Error::validation(
                    "step",
                    step_id,
                    def.steps
                        .iter()
                        .map(|s| s.id.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                )
            })?;
        match st.state {
            StepState::Locked => Err(Error::Conflict(format!("step `{step_id}` is still locked"))),
            StepState::Done | StepState::Skipped => Err(Error::Conflict(format!(
                "step `{step_id}` is already {}",
                st.state.as_str()
            ))),
            StepState::Expired => Err(Error::Conflict(format!("step `{step_id}` has expired"))),
            _ => Ok(def),
        }
    }

    fn event(&self, id: Uuid, step_id: &str, kind: &str, reason: Option<&str>) -> Result<()> {
        let now = time::stored_precision(self.cx.clock.now()).timestamp_millis();
        self.cx.store.write(|tx| {
            insert_event(
                tx,
                self.cx,
                id,
                &NewEvent {
                    step: Some(step_id),
                    kind,
                    at_ms: now,
                    author: &self.cx.author,
                    reason,
                    to_version: None,
                },
            )
        })
    }
}

/// One append-only event of an enrollment.
struct NewEvent<'a> {
    step: Option<&'a str>,
    /// completed, skipped or migrated
    kind: &'a str,
    at_ms: i64,
    author: &'a str,
    reason: Option<&'a str>,
    to_version: Option<u32>,
}

fn insert_event(
    tx: &rusqlite::Transaction<'_>,
    cx: &Context,
    enrollment: Uuid,
    e: &NewEvent<'_>,
) -> Result<()> {
    let id = Uuid::now_v7().to_string();
    tx.execute(
        "INSERT INTO pathway_event (id, enrollment_id, step_id, kind, at_ms, author, reason, to_version)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![id, enrollment.to_string(), e.step, e.kind, e.at_ms, e.author, e.reason, e.to_version],
    )?;
    cx.queue(tx, polku_protocol::op::PATHWAY_EVENT.name, &id)
}

fn actor_str(a: Actor) -> &'static str {
    match a {
        Actor::Citizen => "citizen",
        Actor::Professional => "professional",
    }
}

/// The pinned version is the latest `migrated` event's, else the enrollment's own.
const ENROLLMENT_SELECT: &str = "SELECT e.id, e.definition_id,
    COALESCE((SELECT to_version FROM pathway_event v WHERE v.enrollment_id = e.id AND v.kind = 'migrated' ORDER BY v.at_ms DESC, v.id DESC LIMIT 1), e.definition_version),
    e.enrolled_ms, e.enrolled_by FROM pathway_enrollment e";

fn row_to_enrollment(r: &rusqlite::Row<'_>) -> rusqlite::Result<Enrollment> {
    let id: String = r.get(0)?;
    let by: String = r.get(4)?;
    Ok(Enrollment {
        id: Uuid::parse_str(&id).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
        })?,
        definition_id: r.get(1)?,
        definition_version: r.get(2)?,
        enrolled_at: time::from_ms(r.get(3)?),
        enrolled_by: if by == "professional" {
            Actor::Professional
        } else {
            Actor::Citizen
        },
    })
}

fn enrollment(c: &Connection, subject_no: i64, id: Uuid) -> Result<Enrollment> {
    let mut stmt = c.prepare_cached(&format!(
        "{ENROLLMENT_SELECT} WHERE e.id = ?1 AND e.subject_no = ?2"
    ))?;
    stmt.query_row(params![id.to_string(), subject_no], row_to_enrollment)
        .optional()?
        .ok_or_else(|| Error::NotFound {
            what: "pathway enrollment",
            id: id.to_string(),
        })
}

fn events(c: &Connection, id: Uuid) -> Result<Vec<engine::Event>> {
    let mut stmt = c.prepare_cached("SELECT step_id, kind, at_ms, reason FROM pathway_event WHERE enrollment_id = ?1 AND kind IN ('completed', 'skipped') ORDER BY at_ms, id")?;
    let rows = stmt.query_map([id.to_string()], |r| {
        let step: String = r.get(0)?;
        let kind: String = r.get(1)?;
        let at_ms: i64 = r.get(2)?;
        Ok(if kind == "completed" {
            engine::Event::Completed { step, at_ms }
        } else {
            engine::Event::Skipped {
                step,
                at_ms,
                reason: r.get::<_, Option<String>>(3)?.unwrap_or_default(),
            }
        })
    })?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

/// The engine's view of one enrollment's data, read from the store. Each series is read once
/// from the earliest instant asked for and filtered in memory for later ones.
struct DbData<'a> {
    cx: &'a Context,
    memo: Memo,
}

/// Responses read from some instant on, oldest first.
type ResponsesSince = (i64, Rc<Vec<Response>>);

/// A series read from some instant on; a request from an earlier instant reads again.
type Series<T> = RefCell<Option<(i64, Rc<Vec<T>>)>>;

#[derive(Default)]
struct Memo {
    glucose: Series<GlucoseRow>,
    bp: Series<BpPoint>,
    symptoms: Series<(i64, i32, String)>,
    latest: RefCell<HashMap<InstrumentId, Option<Response>>>,
    /// Responses per instrument, read from some instant on (as `Series`).
    all: RefCell<HashMap<InstrumentId, ResponsesSince>>,
}

/// A glucose reading: instant, offset, value (None for LO/HI), LO marker, fasting context.
struct GlucoseRow {
    at_ms: i64,
    offset_s: i32,
    value: Option<f64>,
    low_marker: bool,
    high_marker: bool,
    fasting: bool,
    cgm: bool,
}

const GLUCOSE_SQL: &str = "SELECT at_ms, utc_offset_s, value, marker, detail, tag FROM entry_version
    WHERE subject_no = ?1 AND kind = 'glucose' AND is_head = 1 AND deleted_reason IS NULL AND at_ms >= ?2 ORDER BY at_ms";
const BP_SQL: &str = "SELECT at_ms, utc_offset_s, value, value2, tag FROM entry_version
    WHERE subject_no = ?1 AND kind = 'blood_pressure' AND is_head = 1 AND deleted_reason IS NULL AND at_ms >= ?2 ORDER BY at_ms";
const SYMPTOM_SQL: &str = "SELECT at_ms, utc_offset_s, tag FROM entry_version
    WHERE subject_no = ?1 AND kind = 'symptom' AND is_head = 1 AND deleted_reason IS NULL AND at_ms >= ?2 ORDER BY at_ms";

impl DbData<'_> {
    fn series<T>(
        &self,
        cell: &Series<T>,
        sql: &str,
        since_ms: i64,
        row: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> Rc<Vec<T>> {
        let mut slot = cell.borrow_mut();
        if let Some((from, rows)) = &*slot {
            if *from <= since_ms {
                return rows.clone();
            }
        }
        // A read failure leaves steps incomplete rather than failing the whole evaluation.
        let rows: Vec<T> = self
            .cx
            .store
            .read(|c| {
                let mut stmt = c.prepare_cached(sql)?;
                let rows = stmt.query_map(params![self.cx.subject_no, since_ms], row)?;
                Ok(rows.collect::<Result<Vec<_>, _>>()?)
            })
            .unwrap_or_default();
        let rows = Rc::new(rows);
        *slot = Some((since_ms, rows.clone()));
        rows
    }

    fn glucose(&self, since_ms: i64) -> Rc<Vec<GlucoseRow>> {
        self.series(&self.memo.glucose, GLUCOSE_SQL, since_ms, |r| {
            let text = |i: usize| {
                r.get_ref(i)
                    .ok()
                    .and_then(|v| v.as_str_or_null().ok().flatten())
            };
            Ok(GlucoseRow {
                at_ms: r.get(0)?,
                offset_s: r.get(1)?,
                value: r.get(2)?,
                low_marker: text(3) == Some("LO"),
                high_marker: text(3) == Some("HI"),
                cgm: text(5) == Some("cgm"),
                // Finger-stick readings only: CGM has no meal context.
                fasting: text(5) != Some("cgm") && text(4) == Some("fasting"),
            })
        })
    }
}

impl engine::Data for DbData<'_> {
    fn fasting_glucose(&self, since_ms: i64) -> Vec<(i64, i32, f64)> {
        self.glucose(since_ms)
            .iter()
            .filter(|g| g.fasting && g.at_ms >= since_ms)
            .filter_map(|g| g.value.map(|v| (g.at_ms, g.offset_s, v)))
            .collect()
    }

    fn first_glucose_below(&self, since_ms: i64, mmol_l: f64) -> Option<i64> {
        // Compared on 0.1 mmol/L, as the consensus bands are (analytics::glucose::tenths).
        let limit = crate::analytics::glucose::tenths(mmol_l);
        self.glucose(since_ms)
            .iter()
            .find(|g| {
                g.at_ms >= since_ms
                    && (g.low_marker
                        || g.value
                            .is_some_and(|v| crate::analytics::glucose::tenths(v) < limit))
            })
            .map(|g| g.at_ms)
    }

    fn cgm(&self, since_ms: i64) -> Vec<crate::analytics::glucose::Point> {
        use crate::analytics::glucose::{Level, Point};
        self.glucose(since_ms)
            .iter()
            .filter(|g| g.cgm && g.at_ms >= since_ms)
            .filter_map(|g| {
                let level = match (g.value, g.low_marker, g.high_marker) {
                    (_, true, _) => Level::Low,
                    (_, _, true) => Level::High,
                    (Some(v), ..) => Level::Mmol(v),
                    (None, ..) => return None,
                };
                Some(Point {
                    at_ms: g.at_ms,
                    offset_s: g.offset_s,
                    level,
                })
            })
            .collect()
    }

    fn blood_pressure(&self, since_ms: i64) -> Vec<BpPoint> {
        let all = self.series(&self.memo.bp, BP_SQL, since_ms, |r| {
            Ok(BpPoint {
                at_ms: r.get(0)?,
                offset_s: r.get(1)?,
                systolic: r.get(2)?,
                diastolic: r.get(3)?,
                series: match r.get_ref(4)?.as_str_or_null().ok().flatten() {
                    Some("morning") => Some(crate::diary::BpSeries::Morning),
                    Some("evening") => Some(crate::diary::BpSeries::Evening),
                    _ => None,
                },
            })
        });
        all.iter()
            .filter(|p| p.at_ms >= since_ms)
            .copied()
            .collect()
    }

    fn symptoms(&self, since_ms: i64, codes: &[SymptomCode]) -> Vec<(i64, i32)> {
        let all = self.series(&self.memo.symptoms, SYMPTOM_SQL, since_ms, |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i32>(1)?,
                r.get::<_, String>(2)?,
            ))
        });
        all.iter()
            .filter(|(t, _, tag)| *t >= since_ms && codes.iter().any(|c| c.as_str() == tag))
            .map(|(t, o, _)| (*t, *o))
            .collect()
    }

    fn latest_response(&self, instrument: InstrumentId, since_ms: i64) -> Option<Response> {
        let latest = self
            .memo
            .latest
            .borrow_mut()
            .entry(instrument)
            .or_insert_with(|| {
                crate::questionnaire::latest(self.cx, instrument)
                    .ok()
                    .flatten()
            })
            .clone();
        latest.filter(|r| r.authored.timestamp_millis() >= since_ms)
    }

    fn responses(&self, instrument: InstrumentId, since_ms: i64) -> Vec<Response> {
        // Read once per evaluation (conditions ask from the enrollment time); an earlier instant
        // reads again.
        let mut memo = self.memo.all.borrow_mut();
        let all = match memo.get(&instrument) {
            Some((from, rows)) if *from <= since_ms => rows.clone(),
            _ => {
                let rows = Rc::new(
                    crate::questionnaire::since(self.cx, instrument, since_ms).unwrap_or_default(),
                );
                memo.insert(instrument, (since_ms, rows.clone()));
                rows
            }
        };
        all.iter()
            .filter(|r| r.authored.timestamp_millis() >= since_ms)
            .cloned()
            .collect()
    }
}

/// `None` when the enrollment's pinned definition is not on this device.
fn definition_known(p: Result<Progress>) -> Result<Option<Progress>> {
    match p {
        Ok(p) => Ok(Some(p)),
        Err(Error::NotFound {
            what: "pathway definition",
            ..
        }) => Ok(None),
        Err(e) => Err(e),
    }
}

impl ClientSummary {
    /// A person on no pathway (or whose rows are listed already) with open safety flags.
    fn flags_only(subject: String, safety_flags: Vec<SafetyFlag>) -> ClientSummary {
        ClientSummary {
            subject,
            enrollment: None,
            finished: 0,
            total: 0,
            open_steps: Vec::new(),
            overdue_steps: Vec::new(),
            expired_steps: Vec::new(),
            flags: Vec::new(),
            safety_flags,
            conversation: None,
            unread_messages: 0,
            visit_concerns: 0,
        }
    }

    fn messages_only(subject: String) -> ClientSummary {
        ClientSummary::flags_only(subject, Vec::new())
    }

    fn definition_unavailable(subject: String, e: Enrollment) -> ClientSummary {
        let name = format!("{}@{}", e.definition_id, e.definition_version);
        ClientSummary {
            subject,
            finished: 0,
            total: 0,
            open_steps: Vec::new(),
            overdue_steps: Vec::new(),
            expired_steps: Vec::new(),
            flags: vec![RaisedFlag {
                code: "definition_unavailable".into(),
                urgent: false,
                since_ms: e.enrolled_at.timestamp_millis(),
                message: definition::Texts {
                    fi: format!(
                        "Polku {name} puuttuu tältä laitteelta: päivitä sovelluksen sisältö."
                    ),
                    sv: format!(
                        "Vårdvägen {name} saknas på den här enheten: uppdatera appens innehåll."
                    ),
                    en: format!("Pathway {name} is not on this device: update the app's content."),
                },
            }],
            safety_flags: Vec::new(),
            enrollment: Some(e),
            conversation: None,
            unread_messages: 0,
            visit_concerns: 0,
        }
    }
}

/// One enrollment of the caseload, as the care team's list shows it; or, for a person on no
/// pathway with open safety flags, a row with `enrollment: None`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClientSummary {
    pub subject: String,
    pub enrollment: Option<Enrollment>,
    pub finished: u32,
    pub total: u32,
    /// Steps waiting for the citizen or the professional.
    pub open_steps: Vec<String>,
    pub overdue_steps: Vec<String>,
    pub expired_steps: Vec<String>,
    /// The pathway's own flags.
    pub flags: Vec<RaisedFlag>,
    /// The person's unacknowledged safety flags, whatever raised them (on every row of theirs).
    pub safety_flags: Vec<SafetyFlag>,
    /// The person's conversation with the care team, when this device has it: where an urgent
    /// flag's "contact today" leads.
    pub conversation: Option<String>,
    /// Their messages this user has not read.
    pub unread_messages: u32,
    /// Urgent concerns workers raised at their visits in the last week (docs/visits.md).
    pub visit_concerns: u32,
}

impl ClientSummary {
    /// Whether anything urgent waits: an open safety flag or an urgent pathway flag.
    pub fn urgent(&self) -> bool {
        !self.safety_flags.is_empty()
            || self.flags.iter().any(|f| f.urgent)
            || self.visit_concerns > 0
    }
}

/// Evaluates every enrollment of every subject on this device: the care team's overview of
/// who is stuck, overdue, flagged or waiting for an answer. People with unacknowledged safety
/// flags first (also those on no pathway), then urgent pathway flags, then overdue steps, then
/// unread messages, then the rest. `inbox`: this device's conversations and their unread counts
/// (from messaging, which the root object asks: the pathway domain does not read messages);
/// `concerns`: urgent concerns raised at visits, per person (from visits, likewise).
pub(crate) fn caseload(
    cx: &Context,
    registry: &Registry,
    inbox: &std::collections::BTreeMap<String, u32>,
    concerns: &std::collections::BTreeMap<String, u32>,
) -> Result<Vec<ClientSummary>> {
    let mut open_flags = crate::safety::open_by_subject(&cx.store)?;
    let subjects: Vec<(String, i64)> = cx.store.read(|c| {
            let mut stmt = c.prepare_cached("SELECT DISTINCT s.id, s.no FROM pathway_enrollment e JOIN subject s ON s.no = e.subject_no ORDER BY s.no")?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })?;
    let mut out = Vec::new();
    for (subject, no) in subjects {
        let safety_flags = open_flags.remove(&subject).unwrap_or_default();
        let view = cx.view(subject.clone(), no);
        let paths = Pathways {
            cx: &view,
            registry,
        };
        for e in paths.enrollments()? {
            // A definition this device lacks (published by the county after this app's
            // content, or synced from a device that has it) must not hide everyone else.
            let p = match definition_known(paths.progress_of(e.clone()))? {
                Some(p) => p,
                None => {
                    out.push(ClientSummary {
                        safety_flags: safety_flags.clone(),
                        ..ClientSummary::definition_unavailable(subject.clone(), e)
                    });
                    continue;
                }
            };
            let with = |states: &[StepState]| {
                p.steps
                    .iter()
                    .filter(|s| states.contains(&s.state))
                    .map(|s| s.step_id.clone())
                    .collect::<Vec<_>>()
            };
            out.push(ClientSummary {
                subject: subject.clone(),
                open_steps: with(&[
                    StepState::Available,
                    StepState::InProgress,
                    StepState::Overdue,
                ]),
                overdue_steps: with(&[StepState::Overdue]),
                expired_steps: with(&[StepState::Expired]),
                finished: p.finished,
                total: p.total,
                flags: p.flags,
                safety_flags: safety_flags.clone(),
                enrollment: Some(p.enrollment),
                conversation: None,
                unread_messages: 0,
                visit_concerns: 0,
            });
        }
    }
    out.extend(
        open_flags
            .into_iter()
            .map(|(subject, flags)| ClientSummary::flags_only(subject, flags)),
    );
    // Conversations: each row links to its person's; a person whose unread messages are the
    // only thing waiting gets a row too.
    for (conversation, unread) in inbox {
        if *unread > 0 && !out.iter().any(|c| c.subject == *conversation) {
            out.push(ClientSummary::messages_only(conversation.clone()));
        }
    }
    for (subject, n) in concerns {
        if *n > 0 && !out.iter().any(|c| c.subject == *subject) {
            out.push(ClientSummary::messages_only(subject.clone()));
        }
    }
    for c in out.iter_mut() {
        if let Some(n) = inbox.get(&c.subject) {
            c.conversation = Some(c.subject.clone());
            c.unread_messages = *n;
        }
        c.visit_concerns = concerns.get(&c.subject).copied().unwrap_or(0);
    }
    out.sort_by_key(|c| {
        (
            c.safety_flags.is_empty(),
            !c.urgent(),
            c.overdue_steps.is_empty(),
            c.unread_messages == 0,
            c.subject.clone(),
        )
    });
    Ok(out)
}
