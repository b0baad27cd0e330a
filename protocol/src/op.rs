//! The record kinds both sides know, and the checks every operation passes: on the server before
//! it is stored, and on a device before it is applied (docs/sync.md, "Validation").
//!
//! A kind here is its wire shape only (name, schema version, id field, payload fields). Where a
//! device keeps it, and what applying it does, is the core's business (`store::kind`); a kind the
//! server does not know passes the envelope checks and is kept for a newer app, never dropped.

use serde_json::{Map, Value};

use crate::entry::EntryData;
use crate::wire::{Op, MAX_PAYLOAD_BYTES};

/// A kind's own check of a payload, beyond the envelope.
pub type PayloadCheck = fn(&Map<String, Value>) -> Result<(), Invalid>;

/// The wire shape of a record kind. Every payload field is a JSON scalar.
#[derive(Debug)]
pub struct KindSpec {
    pub name: &'static str,
    pub schema_version: u32,
    /// The payload field holding the record's id, which must equal the operation's id.
    pub id_field: &'static str,
    pub fields: &'static [&'static str],
    /// Only the care team writes it: the server refuses it from a citizen's device.
    pub care_team_only: bool,
    /// A check of the payload beyond its envelope.
    pub check: Option<PayloadCheck>,
}

pub static ENTRY_VERSION: KindSpec = KindSpec {
    name: "diary.entry_version",
    schema_version: 1,
    id_field: "version_id",
    fields: &[
        "version_id",
        "entry_id",
        "version",
        "kind",
        "at_ms",
        "utc_offset_s",
        "author",
        "created_ms",
        "note",
        "data",
        "deleted_reason",
        "import_key",
        "hlc",
        "resolves",
    ],
    care_team_only: false,
    check: Some(entry_data_parses),
};

pub static QUESTIONNAIRE_RESPONSE: KindSpec = KindSpec {
    name: "questionnaire.response",
    schema_version: 1,
    id_field: "id",
    fields: &[
        "id",
        "instrument",
        "authored_ms",
        "utc_offset_s",
        "author",
        "created_ms",
        "answers",
        "total",
        "band",
        "flags",
        "language",
        "wording",
    ],
    care_team_only: false,
    check: None,
};

pub static PATHWAY_ENROLLMENT: KindSpec = KindSpec {
    name: "pathway.enrollment",
    schema_version: 1,
    id_field: "id",
    fields: &[
        "id",
        "definition_id",
        "definition_version",
        "enrolled_ms",
        "enrolled_by",
        "author",
    ],
    care_team_only: false,
    check: None,
};

pub static PATHWAY_EVENT: KindSpec = KindSpec {
    name: "pathway.event",
    schema_version: 1,
    id_field: "id",
    fields: &[
        "id",
        "enrollment_id",
        "step_id",
        "kind",
        "at_ms",
        "author",
        "reason",
        "to_version",
    ],
    care_team_only: false,
    check: None,
};

pub static DETAIL_EDIT: KindSpec = KindSpec {
    name: "details.edit",
    schema_version: 1,
    id_field: "id",
    fields: &[
        "id",
        "field",
        "value",
        "base",
        "hlc",
        "author",
        "created_ms",
    ],
    care_team_only: false,
    check: None,
};

/// A professional's acknowledgement of an urgent safety flag (docs/safety.md).
pub static SAFETY_ACK: KindSpec = KindSpec {
    name: "safety.ack",
    schema_version: 1,
    id_field: "id",
    fields: &["id", "flag_id", "note", "author", "acked_ms"],
    care_team_only: true,
    check: None,
};

/// Every kind this build knows.
pub static KNOWN: &[&KindSpec] = &[
    &ENTRY_VERSION,
    &QUESTIONNAIRE_RESPONSE,
    &PATHWAY_ENROLLMENT,
    &PATHWAY_EVENT,
    &DETAIL_EDIT,
    &SAFETY_ACK,
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
pub fn check_op(op: &Op, payload_text: &str) -> Result<(), Invalid> {
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
    check_payload(k, &op.op_id, obj)
}

/// The payload checks of a kind at its current schema version: the id field names the record,
/// every field is a scalar, and the kind's own check passes.
pub fn check_payload(k: &KindSpec, op_id: &str, obj: &Map<String, Value>) -> Result<(), Invalid> {
    if obj.get(k.id_field).and_then(Value::as_str) != Some(op_id) {
        return Err(invalid(
            "invalid_payload",
            format!(
                "payload {} must equal op_id (records are immutable)",
                k.id_field
            ),
        ));
    }
    for field in k.fields {
        match obj.get(*field) {
            None | Some(Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_)) => {}
            Some(_) => {
                return Err(invalid(
                    "invalid_payload",
                    format!("field {field} is not a scalar"),
                ))
            }
        }
    }
    match k.check {
        Some(check) => check(obj),
        None => Ok(()),
    }
}

fn entry_data_parses(obj: &Map<String, Value>) -> Result<(), Invalid> {
    let data = obj.get("data").and_then(Value::as_str).unwrap_or("");
    serde_json::from_str::<EntryData>(data)
        .map(|_| ())
        .map_err(|_| {
            invalid(
                "invalid_payload",
                "entry data is not a diary entry of a known kind",
            )
        })
}
