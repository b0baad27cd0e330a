//! The record kinds both sides know, and the checks every operation passes: on the server before
//! it is stored, and on a device before it is applied (docs/sync.md, "Validation").
//!
//! A kind here is its wire shape only (name, schema version, id field, payload fields). Where a
//! device keeps it, and what applying it does, is the core's business (`store::kind`); a kind the
//! server does not know passes the envelope checks and is kept for a newer app, never dropped.

use serde_json::{Map, Value};

use crate::entry::EntryData;
use crate::validate::{self, FieldError};
use crate::wire::{Op, MAX_PAYLOAD_BYTES};

/// A kind's own check of a payload, beyond its fields (`now_ms`: the checker's clock).
pub type PayloadCheck = fn(&Map<String, Value>) -> Result<(), FieldError>;

/// What a payload field holds. Every field is a JSON scalar; a check names the field and the
/// allowed range (docs/sync.md, "Validation").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    /// Text of at most this many characters (when required, not blank).
    Text(usize),
    /// A UUID.
    Id,
    /// A whole number in this range.
    Int(i64, i64),
    /// Milliseconds since 1970 (UTC), from 1900-01-01 to a day after the checker's clock.
    Time,
    /// A UTC offset in seconds: whole minutes within ±14 h.
    Offset,
    /// A hybrid logical clock stamp.
    Hlc,
}

#[derive(Debug, Clone, Copy)]
pub struct Field {
    pub name: &'static str,
    pub ty: Ty,
    pub required: bool,
}

/// A field every payload carries.
pub const fn req(name: &'static str, ty: Ty) -> Field {
    Field {
        name,
        ty,
        required: true,
    }
}

/// A field a payload may leave out or null.
pub const fn opt(name: &'static str, ty: Ty) -> Field {
    Field {
        name,
        ty,
        required: false,
    }
}

/// Who wrote a record: a user id (the server stamps the device's own and refuses another).
const AUTHOR: Field = req("author", Ty::Text(100));
/// Short codes and names (kinds, instruments, steps, fields).
const CODE: Ty = Ty::Text(100);

/// The wire shape of a record kind.
#[derive(Debug)]
pub struct KindSpec {
    pub name: &'static str,
    pub schema_version: u32,
    /// The payload field holding the record's id, which must equal the operation's id.
    pub id_field: &'static str,
    pub fields: &'static [Field],
    /// Only the care team writes it: the server refuses it from a citizen's device.
    pub care_team_only: bool,
    /// The field naming the record this one belongs to (a diary entry, a pathway enrollment),
    /// which must live in the same subject's stream: no device can move another person's entry.
    pub belongs_to: Option<&'static str>,
    /// A check of the payload beyond its fields.
    pub check: Option<PayloadCheck>,
}

impl KindSpec {
    /// The payload fields' names, in order.
    pub fn field_names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.fields.iter().map(|f| f.name)
    }

    /// The id of the record a payload belongs to (its own id when it is the parent).
    pub fn owner<'p>(&self, obj: &'p Map<String, Value>) -> Option<&'p str> {
        obj.get(self.belongs_to?).and_then(Value::as_str)
    }
}

pub static ENTRY_VERSION: KindSpec = KindSpec {
    name: "diary.entry_version",
    schema_version: 1,
    id_field: "version_id",
    fields: &[
        req("version_id", Ty::Id),
        req("entry_id", Ty::Id),
        req("version", Ty::Int(1, 1_000_000)),
        req("kind", CODE),
        req("at_ms", Ty::Time),
        req("utc_offset_s", Ty::Offset),
        AUTHOR,
        req("created_ms", Ty::Time),
        opt("note", Ty::Text(validate::NOTE_MAX_CHARS)),
        req("data", Ty::Text(16 * 1024)),
        opt("deleted_reason", Ty::Text(validate::REASON_MAX_CHARS)),
        opt("import_key", Ty::Text(200)),
        req("hlc", Ty::Hlc),
        opt("resolves", Ty::Id),
    ],
    care_team_only: false,
    belongs_to: Some("entry_id"),
    check: Some(entry_data),
};

pub static QUESTIONNAIRE_RESPONSE: KindSpec = KindSpec {
    name: "questionnaire.response",
    schema_version: 1,
    id_field: "id",
    fields: &[
        req("id", Ty::Id),
        req("instrument", CODE),
        req("authored_ms", Ty::Time),
        req("utc_offset_s", Ty::Offset),
        AUTHOR,
        req("created_ms", Ty::Time),
        req("answers", Ty::Text(1000)),
        req("total", Ty::Int(0, 1000)),
        req("band", CODE),
        req("flags", Ty::Text(8000)),
        opt("language", Ty::Text(10)),
        opt("wording", CODE),
    ],
    care_team_only: false,
    belongs_to: None,
    check: None,
};

pub static PATHWAY_ENROLLMENT: KindSpec = KindSpec {
    name: "pathway.enrollment",
    schema_version: 1,
    id_field: "id",
    fields: &[
        req("id", Ty::Id),
        req("definition_id", CODE),
        req("definition_version", Ty::Int(1, 1_000_000)),
        req("enrolled_ms", Ty::Time),
        req("enrolled_by", CODE),
        AUTHOR,
    ],
    care_team_only: false,
    // Its events name it; they must stay in its subject's stream.
    belongs_to: Some("id"),
    check: None,
};

pub static PATHWAY_EVENT: KindSpec = KindSpec {
    name: "pathway.event",
    schema_version: 1,
    id_field: "id",
    fields: &[
        req("id", Ty::Id),
        req("enrollment_id", Ty::Id),
        opt("step_id", CODE),
        req("kind", CODE),
        req("at_ms", Ty::Time),
        AUTHOR,
        opt("reason", Ty::Text(validate::REASON_MAX_CHARS)),
        opt("to_version", Ty::Int(1, 1_000_000)),
    ],
    care_team_only: false,
    belongs_to: Some("enrollment_id"),
    check: None,
};

pub static DETAIL_EDIT: KindSpec = KindSpec {
    name: "details.edit",
    schema_version: 1,
    id_field: "id",
    fields: &[
        req("id", Ty::Id),
        req("field", CODE),
        opt("value", Ty::Text(validate::NOTE_MAX_CHARS)),
        req("base", Ty::Text(8000)),
        req("hlc", Ty::Hlc),
        AUTHOR,
        req("created_ms", Ty::Time),
    ],
    care_team_only: false,
    belongs_to: None,
    check: None,
};

/// A professional's acknowledgement of an urgent safety flag (docs/safety.md).
pub static SAFETY_ACK: KindSpec = KindSpec {
    name: "safety.ack",
    schema_version: 1,
    id_field: "id",
    fields: &[
        req("id", Ty::Id),
        req("flag_id", Ty::Id),
        req("note", Ty::Text(validate::NOTE_MAX_CHARS)),
        AUTHOR,
        req("acked_ms", Ty::Time),
    ],
    care_team_only: true,
    belongs_to: None,
    check: None,
};

/// A version of a client's service plan (issue 11): it applies from `effective_from` on, until a
/// later version's date. Only the care team writes plans.
pub static VISIT_PLAN: KindSpec = KindSpec {
    name: "visits.plan",
    schema_version: 1,
    id_field: "id",
    fields: &[
        req("id", Ty::Id),
        req("effective_from", Ty::Text(10)),
        req("plan", Ty::Text(16 * 1024)),
        AUTHOR,
        req("created_ms", Ty::Time),
        req("hlc", Ty::Hlc),
    ],
    care_team_only: true,
    belongs_to: None,
    check: Some(visit_plan),
};

/// Something a worker recorded about one visit: arrival, leaving, a task's outcome, a note, a
/// handover (docs/visits.md). Immutable; a visit's state is derived from its events on every
/// device alike, and two workers' concurrent outcomes are both kept as a conflict for review.
pub static VISIT_EVENT: KindSpec = KindSpec {
    name: "visits.event",
    schema_version: 1,
    id_field: "id",
    fields: &[
        req("id", Ty::Id),
        req("visit_id", Ty::Id),
        req("date", Ty::Text(10)),
        req("slot", CODE),
        req("kind", CODE),
        opt("task", CODE),
        opt("outcome", CODE),
        opt("reason", Ty::Text(validate::REASON_MAX_CHARS)),
        opt("note", Ty::Text(validate::NOTE_MAX_CHARS)),
        opt("to_user", Ty::Text(100)),
        opt("entry_id", Ty::Id),
        opt("resolves", Ty::Id),
        // The ids of the outcomes of the same visit or task its writer saw (comma-separated):
        // an outcome no later one names is current; two such are a conflict.
        opt("base", Ty::Text(2000)),
        // A note's observation category (county content, docs/visits.md).
        opt("category", CODE),
        req("at_ms", Ty::Time),
        req("utc_offset_s", Ty::Offset),
        AUTHOR,
        req("hlc", Ty::Hlc),
    ],
    care_team_only: true,
    belongs_to: None,
    check: Some(visit_event),
};

/// A school nurse's (or another outreach worker's) contact with a student (issue 11): the
/// questionnaires given name their responses; a follow-up date and a referral may follow.
pub static OUTREACH_CONTACT: KindSpec = KindSpec {
    name: "outreach.contact",
    schema_version: 1,
    id_field: "id",
    fields: &[
        req("id", Ty::Id),
        req("kind", CODE),
        opt("setting", Ty::Text(100)),
        opt("note", Ty::Text(validate::NOTE_MAX_CHARS)),
        opt("questionnaires", Ty::Text(2000)),
        opt("follow_up", Ty::Text(10)),
        opt("referral", Ty::Text(validate::REASON_MAX_CHARS)),
        req("at_ms", Ty::Time),
        req("utc_offset_s", Ty::Offset),
        AUTHOR,
        req("hlc", Ty::Hlc),
    ],
    care_team_only: true,
    belongs_to: None,
    check: Some(outreach_contact),
};

/// Every kind this build knows.
pub static KNOWN: &[&KindSpec] = &[
    &ENTRY_VERSION,
    &QUESTIONNAIRE_RESPONSE,
    &PATHWAY_ENROLLMENT,
    &PATHWAY_EVENT,
    &DETAIL_EDIT,
    &SAFETY_ACK,
    &VISIT_PLAN,
    &VISIT_EVENT,
    &OUTREACH_CONTACT,
];

pub fn known(name: &str) -> Option<&'static KindSpec> {
    KNOWN.iter().copied().find(|k| k.name == name)
}

/// Kinds only the care team writes: the server refuses them from a citizen's device.
pub fn care_team_only(kind: &str) -> bool {
    known(kind).is_some_and(|k| k.care_team_only)
}

/// Why an operation cannot be stored: a stable code and a reason for the person reviewing it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub code: &'static str,
    pub reason: String,
}

pub fn invalid(code: &'static str, reason: impl Into<String>) -> Invalid {
    Invalid {
        code,
        reason: reason.into(),
    }
}

/// The checks the server makes before storing an operation; the device applies the same
/// rules when it receives one. Kinds or schema versions newer than this build pass the envelope
/// checks only: they are kept for a newer app, never dropped. `payload_text` is the payload as
/// it will be stored (the caller serialises it once).
pub fn check_op(op: &Op, payload_text: &str, now_ms: i64) -> Result<(), Invalid> {
    if uuid::Uuid::parse_str(&op.op_id).is_err() {
        return Err(invalid("invalid_op_id", "op_id must be a UUID"));
    }
    if op.stream.trim().is_empty() || op.stream.len() > 100 {
        return Err(invalid("invalid_stream", "stream must be 1–100 characters"));
    }
    if op.device_seq < 1 {
        return Err(invalid("invalid_device_seq", "device_seq must be ≥ 1"));
    }
    if crate::hlc::Hlc::parse(&op.hlc).is_none() {
        return Err(invalid(
            "invalid_hlc",
            "hlc must be <16 hex ms>-<4 hex counter>-<device>",
        ));
    }
    let kind_ok = !op.kind.is_empty()
        && op.kind.len() <= 64
        && op
            .kind
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'_');
    if !kind_ok {
        return Err(invalid(
            "invalid_kind",
            "kind must be 1–64 characters of a–z, 0–9, '.', '_'",
        ));
    }
    if op.schema_version < 1 {
        return Err(invalid(
            "invalid_schema_version",
            "schema_version must be ≥ 1",
        ));
    }
    let Some(obj) = op.payload.as_object() else {
        return Err(invalid("invalid_payload", "payload must be a JSON object"));
    };
    let size = payload_text.len();
    if size > MAX_PAYLOAD_BYTES {
        return Err(invalid(
            "payload_too_large",
            format!("payload is {size} bytes; at most {MAX_PAYLOAD_BYTES} allowed"),
        ));
    }
    let Some(k) = known(&op.kind) else {
        return Ok(());
    };
    if op.schema_version > k.schema_version {
        return Ok(());
    }
    check_payload(k, &op.op_id, obj, now_ms)
}

/// The payload checks of a kind at its current schema version: the id field names the record,
/// every field has its type and range, and the kind's own check passes. `now_ms` is the checker's
/// clock (a record may be stamped up to a day after it: a phone's clock may run ahead).
pub fn check_payload(
    k: &KindSpec,
    op_id: &str,
    obj: &Map<String, Value>,
    now_ms: i64,
) -> Result<(), Invalid> {
    check_fields(k, op_id, obj, now_ms)?;
    match k.check {
        Some(check) => check(obj).map_err(|e| invalid("invalid_payload", e.to_string())),
        None => Ok(()),
    }
}

/// [`check_payload`] without the kind's own check: for a device whose apply runs that check
/// itself on the content it parses anyway (a diary entry's data, [`entry_version_data`]), so
/// the content is parsed once.
pub fn check_fields(
    k: &KindSpec,
    op_id: &str,
    obj: &Map<String, Value>,
    now_ms: i64,
) -> Result<(), Invalid> {
    if obj.get(k.id_field).and_then(Value::as_str) != Some(op_id) {
        return Err(invalid(
            "invalid_payload",
            format!(
                "payload {} must equal op_id (records are immutable)",
                k.id_field
            ),
        ));
    }
    let bad = |e: FieldError| invalid("invalid_payload", e.to_string());
    let mut present = 0;
    for f in k.fields {
        let v = obj.get(f.name);
        present += v.is_some() as usize;
        check_field(f, v, now_ms).map_err(bad)?;
    }
    // Every key is one of the kind's fields (counted above; named only when one is not).
    if present != obj.len() {
        let extra = obj
            .keys()
            .find(|key| !k.fields.iter().any(|f| f.name == *key))
            .map_or("?", |key| key.as_str());
        return Err(invalid(
            "invalid_payload",
            format!("field {extra} is not a field of {}", k.name),
        ));
    }
    Ok(())
}

/// 1900-01-01T00:00:00Z in milliseconds: the earliest time any record may carry.
pub const EARLIEST_MS: i64 = -2_208_988_800_000;
/// How far after the checker's clock a record's time may be.
pub const MAX_AHEAD_MS: i64 = 24 * 3600 * 1000;

fn check_field(f: &Field, v: Option<&Value>, now_ms: i64) -> Result<(), FieldError> {
    let v = match v {
        None | Some(Value::Null) if f.required => {
            return Err(FieldError::new(f.name, "(missing)", "a value"))
        }
        None | Some(Value::Null) => return Ok(()),
        Some(v) => v,
    };
    let int = |lo: i64, hi: i64, allowed: &dyn Fn() -> String| -> Result<i64, FieldError> {
        match v.as_i64() {
            Some(n) if (lo..=hi).contains(&n) => Ok(n),
            _ => Err(FieldError::new(f.name, v, allowed())),
        }
    };
    let text = |allowed: &str| -> Result<&str, FieldError> {
        v.as_str()
            .ok_or_else(|| FieldError::new(f.name, v, allowed))
    };
    match f.ty {
        Ty::Text(max) => {
            let s = text("text")?;
            let n = s.chars().count();
            if n > max || (f.required && s.trim().is_empty()) {
                return Err(FieldError::new(
                    f.name,
                    format!("{n} characters"),
                    format!("1–{max} characters"),
                ));
            }
        }
        Ty::Id => {
            if uuid::Uuid::parse_str(text("a UUID")?).is_err() {
                return Err(FieldError::new(f.name, v, "a UUID"));
            }
        }
        Ty::Int(lo, hi) => {
            int(lo, hi, &|| format!("a whole number {lo}–{hi}"))?;
        }
        Ty::Time => {
            let latest = now_ms.saturating_add(MAX_AHEAD_MS);
            int(EARLIEST_MS, latest, &|| {
                format!("milliseconds since 1970 from {EARLIEST_MS} (1900-01-01) to {latest} (a day from now)")
            })?;
        }
        Ty::Offset => {
            let allowed = || "whole minutes between -50400 and 50400".to_owned();
            let s = int(-50_400, 50_400, &allowed)?;
            validate::checked_offset(f.name, s as i32)?;
        }
        Ty::Hlc => {
            if crate::hlc::Hlc::parse(text("a clock stamp")?).is_none() {
                return Err(FieldError::new(
                    f.name,
                    v,
                    "<16 hex ms>-<4 hex counter>-<device>",
                ));
            }
        }
    }
    Ok(())
}

/// A diary entry's data parses as an entry of a known kind, and its values are within the
/// same plausibility limits a person typing them meets (`validate::data`).
fn visit_plan(obj: &Map<String, Value>) -> Result<(), FieldError> {
    let text = |f: &str| obj.get(f).and_then(Value::as_str).unwrap_or("");
    crate::visit::date("effective_from", text("effective_from"))?;
    crate::visit::ServicePlan::parse(text("plan")).map(|_| ())
}

fn visit_event(obj: &Map<String, Value>) -> Result<(), FieldError> {
    use crate::visit::*;
    let text = |f: &str| obj.get(f).and_then(Value::as_str);
    crate::visit::date("date", text("date").unwrap_or(""))?;
    let kind = text("kind").unwrap_or("");
    if !EVENT_KINDS.contains(&kind) {
        return Err(FieldError::new("kind", kind, EVENT_KINDS.join(", ")));
    }
    if let Some(o) = text("outcome") {
        if !OUTCOMES.contains(&o) {
            return Err(FieldError::new("outcome", o, OUTCOMES.join(", ")));
        }
    }
    let needs = |field: &str| -> Result<(), FieldError> {
        match text(field) {
            Some(v) if !v.trim().is_empty() => Ok(()),
            _ => Err(FieldError::new(
                field,
                "(missing)",
                format!("required for a {kind} event"),
            )),
        }
    };
    match kind {
        "task" => {
            needs("task")?;
            needs("outcome")
        }
        "not_done" => {
            needs("reason")?;
            let r = text("reason").unwrap_or("");
            if NOT_DONE_REASONS.contains(&r) {
                Ok(())
            } else {
                Err(FieldError::new("reason", r, NOT_DONE_REASONS.join(", ")))
            }
        }
        "note" | "concern" => needs("note"),
        "handover" | "assigned" => needs("to_user"),
        "measured" => needs("entry_id"),
        "resolved" => needs("resolves"),
        _ => Ok(()),
    }
}

fn outreach_contact(obj: &Map<String, Value>) -> Result<(), FieldError> {
    let text = |f: &str| obj.get(f).and_then(Value::as_str);
    let kind = text("kind").unwrap_or("");
    if !crate::visit::CONTACT_KINDS.contains(&kind) {
        return Err(FieldError::new(
            "kind",
            kind,
            crate::visit::CONTACT_KINDS.join(", "),
        ));
    }
    if let Some(d) = text("follow_up") {
        crate::visit::date("follow_up", d)?;
    }
    Ok(())
}

fn entry_data(obj: &Map<String, Value>) -> Result<(), FieldError> {
    entry_version_data(obj).map(|_| ())
}

/// The check of [`ENTRY_VERSION`]'s content, returning the parsed data for the caller to keep.
pub fn entry_version_data(obj: &Map<String, Value>) -> Result<EntryData, FieldError> {
    let text = obj.get("data").and_then(Value::as_str).unwrap_or("");
    let data: EntryData = serde_json::from_str(text).map_err(|_| {
        FieldError::new(
            "data",
            "(not an entry)",
            "a diary entry of a known kind (docs/sync.md)",
        )
    })?;
    if obj.get("kind").and_then(Value::as_str) != Some(data.kind().as_str()) {
        return Err(FieldError::new(
            "kind",
            obj.get("kind").map(Value::to_string).unwrap_or_default(),
            format!("the kind of its data ({})", data.kind().as_str()),
        ));
    }
    // A tombstone carries the data of the version it deletes: checked all the same.
    let note = obj.get("note").and_then(Value::as_str);
    validate::data(&data, note)?;
    Ok(data)
}
