//! Schema migrations, tracked in `PRAGMA user_version` by rusqlite_migration.
//! Never edit a released migration: append a new one. `tests::upgraded_equals_fresh` proves that a
//! database upgraded step by step ends with the same schema as a fresh one.

use rusqlite_migration::{Migrations, M};

/// `entry_version` holds every version of every diary entry, immutable once written: an edit adds a
/// row that supersedes the previous head, a delete adds a tombstone row with its reason. `is_head`
/// marks the newest version of each entry (the only column ever updated). The typed fields live in
/// `data` (JSON, the source of truth); `value`, `value2`, `tag` and `marker` are copies of the
/// fields analytics scan, so a year of CGM readings is read without decoding JSON:
///
/// | kind | value | value2 | tag | marker / detail |
/// |---|---|---|---|---|
/// | glucose | mmol/L (NULL when LO/HI) | hours after meal | source (meter/cgm/manual) | LO / HI, or mg/dL for a value typed in mg/dL (V8); detail: meal context |
/// | blood_pressure | systolic | diastolic | series (morning/evening) | |
/// | weight / heart_rate / temperature | kg / bpm / °C | | | |
/// | symptom | severity | | symptom code | |
/// | mood | score | | | |
///
/// Subjects are numbered locally (`subject.no`) so the analytics index stays small; ids are
/// time-ordered UUIDs (v7, or v8 with a time prefix for imports) so inserts append to the B-trees.
/// `entry_live_by_kind` covers the analytics columns: a year of CGM is read from the index alone.
const V1: &str = r#"
CREATE TABLE profile (
    key   TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE subject (
    no INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE
);

CREATE TABLE entry_version (
    version_id     TEXT PRIMARY KEY NOT NULL,
    entry_id       TEXT NOT NULL,
    version        INTEGER NOT NULL CHECK (version >= 1),
    subject_no     INTEGER NOT NULL REFERENCES subject (no),
    kind           TEXT NOT NULL,
    at_ms          INTEGER NOT NULL,
    utc_offset_s   INTEGER NOT NULL,
    author         TEXT NOT NULL,
    created_ms     INTEGER NOT NULL,
    note           TEXT,
    data           TEXT NOT NULL,
    value          REAL,
    value2         REAL,
    tag            TEXT,
    marker         TEXT,
    detail         TEXT,
    deleted_reason TEXT,
    is_head        INTEGER NOT NULL DEFAULT 1,
    UNIQUE (entry_id, version)
);

CREATE INDEX entry_live_by_kind
    ON entry_version (subject_no, kind, at_ms, utc_offset_s, value, value2, tag, marker, detail)
    WHERE is_head = 1 AND deleted_reason IS NULL;
CREATE INDEX entry_live_by_time ON entry_version (subject_no, at_ms)
    WHERE is_head = 1 AND deleted_reason IS NULL;
"#;

/// Imported readings remember where they came from (`import_key`) so importing a file twice adds
/// nothing, and every import is logged.
const V2: &str = r#"
ALTER TABLE entry_version ADD COLUMN import_key TEXT;
CREATE UNIQUE INDEX entry_import_key ON entry_version (import_key) WHERE import_key IS NOT NULL;

CREATE TABLE import_log (
    id          TEXT PRIMARY KEY NOT NULL,
    at_ms       INTEGER NOT NULL,
    format      TEXT NOT NULL,
    file_sha256 TEXT NOT NULL,
    rows_read   INTEGER NOT NULL,
    added       INTEGER NOT NULL,
    duplicates  INTEGER NOT NULL
);
"#;

/// Questionnaire responses: immutable; the answers are the record, the score is recomputed on read.
const V3: &str = r#"
CREATE TABLE questionnaire_response (
    id           TEXT PRIMARY KEY NOT NULL,
    subject_no   INTEGER NOT NULL REFERENCES subject (no),
    instrument   TEXT NOT NULL,
    authored_ms  INTEGER NOT NULL,
    utc_offset_s INTEGER NOT NULL,
    author       TEXT NOT NULL,
    created_ms   INTEGER NOT NULL,
    answers      TEXT NOT NULL,
    total        INTEGER NOT NULL,
    band         TEXT NOT NULL,
    flags        TEXT NOT NULL
);
CREATE INDEX questionnaire_by_time ON questionnaire_response (subject_no, authored_ms);
"#;

/// Pathway enrollments pin a definition version; everything that happens to them is an
/// append-only event (completed, skipped, migrated), so progress from several devices merges.
const V4: &str = r#"
CREATE TABLE pathway_enrollment (
    id                 TEXT PRIMARY KEY NOT NULL,
    subject_no         INTEGER NOT NULL REFERENCES subject (no),
    definition_id      TEXT NOT NULL,
    definition_version INTEGER NOT NULL,
    enrolled_ms        INTEGER NOT NULL,
    enrolled_by        TEXT NOT NULL CHECK (enrolled_by IN ('citizen', 'professional')),
    author             TEXT NOT NULL
);
CREATE TABLE pathway_event (
    id            TEXT PRIMARY KEY NOT NULL,
    enrollment_id TEXT NOT NULL REFERENCES pathway_enrollment (id),
    step_id       TEXT,
    kind          TEXT NOT NULL CHECK (kind IN ('completed', 'skipped', 'migrated')),
    at_ms         INTEGER NOT NULL,
    author        TEXT NOT NULL,
    reason        TEXT,
    to_version    INTEGER
);
CREATE INDEX pathway_event_by_enrollment ON pathway_event (enrollment_id, at_ms);
"#;

/// Sync. `entry_version` is rebuilt without `UNIQUE (entry_id, version)`: two devices editing the
/// same entry offline both write version n+1, and both are kept (a fork, reported as a conflict
/// for review). `hlc` orders versions across devices; `resolves` names the conflict an edit settled.
/// The outbox lists every record this device made that the server has not acknowledged, in the
/// order made; `device_seq` is AUTOINCREMENT so a number is never reused after rows are removed.
/// Records that existed before sync are queued too: a device enrolled late uploads its history.
const V5: &str = r#"
CREATE TABLE entry_version_v5 (
    version_id     TEXT PRIMARY KEY NOT NULL,
    entry_id       TEXT NOT NULL,
    version        INTEGER NOT NULL CHECK (version >= 1),
    subject_no     INTEGER NOT NULL REFERENCES subject (no),
    kind           TEXT NOT NULL,
    at_ms          INTEGER NOT NULL,
    utc_offset_s   INTEGER NOT NULL,
    author         TEXT NOT NULL,
    created_ms     INTEGER NOT NULL,
    note           TEXT,
    data           TEXT NOT NULL,
    value          REAL,
    value2         REAL,
    tag            TEXT,
    marker         TEXT,
    detail         TEXT,
    deleted_reason TEXT,
    is_head        INTEGER NOT NULL DEFAULT 1,
    import_key     TEXT,
    hlc            TEXT NOT NULL,
    resolves       TEXT
);
INSERT INTO entry_version_v5
    SELECT version_id, entry_id, version, subject_no, kind, at_ms, utc_offset_s, author, created_ms, note,
           data, value, value2, tag, marker, detail, deleted_reason, is_head, import_key,
           printf('%016x-0000-%s', created_ms, coalesce((SELECT value FROM profile WHERE key = 'device_id'), 'local')),
           NULL
    FROM entry_version ORDER BY rowid;
DROP TABLE entry_version;
ALTER TABLE entry_version_v5 RENAME TO entry_version;
CREATE INDEX entry_live_by_kind
    ON entry_version (subject_no, kind, at_ms, utc_offset_s, value, value2, tag, marker, detail)
    WHERE is_head = 1 AND deleted_reason IS NULL;
CREATE INDEX entry_live_by_time ON entry_version (subject_no, at_ms)
    WHERE is_head = 1 AND deleted_reason IS NULL;
CREATE UNIQUE INDEX entry_import_key ON entry_version (import_key) WHERE import_key IS NOT NULL;
CREATE INDEX entry_versions ON entry_version (entry_id, version);

CREATE TABLE sync_outbox (
    device_seq INTEGER PRIMARY KEY AUTOINCREMENT,
    kind       TEXT NOT NULL,
    record_id  TEXT NOT NULL UNIQUE,
    subject_no INTEGER NOT NULL REFERENCES subject (no),
    hlc        TEXT NOT NULL,
    state      TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'quarantined')),
    code       TEXT,
    reason     TEXT
);
CREATE TABLE sync_stream (
    subject_no INTEGER PRIMARY KEY REFERENCES subject (no),
    after      INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE sync_held (
    op_id          TEXT PRIMARY KEY NOT NULL,
    subject_no     INTEGER NOT NULL,
    seq            INTEGER,
    device_id      TEXT,
    kind           TEXT NOT NULL,
    schema_version INTEGER NOT NULL,
    hlc            TEXT NOT NULL,
    payload        TEXT NOT NULL,
    reason         TEXT NOT NULL
);
CREATE TABLE sync_conflict (
    id          TEXT PRIMARY KEY NOT NULL,
    subject_no  INTEGER NOT NULL,
    entry_id    TEXT NOT NULL,
    version     INTEGER NOT NULL,
    detected_ms INTEGER NOT NULL
);

INSERT INTO sync_outbox (kind, record_id, subject_no, hlc)
    SELECT 'diary.entry_version', version_id, subject_no, hlc FROM entry_version ORDER BY created_ms, version_id;
INSERT INTO sync_outbox (kind, record_id, subject_no, hlc)
    SELECT 'pathway.enrollment', id, subject_no, printf('%016x-0000-local', enrolled_ms) FROM pathway_enrollment ORDER BY enrolled_ms, id;
INSERT INTO sync_outbox (kind, record_id, subject_no, hlc)
    SELECT 'pathway.event', ev.id, en.subject_no, printf('%016x-0000-local', ev.at_ms)
    FROM pathway_event ev JOIN pathway_enrollment en ON en.id = ev.enrollment_id ORDER BY ev.at_ms, ev.id;
INSERT INTO sync_outbox (kind, record_id, subject_no, hlc)
    SELECT 'questionnaire.response', id, subject_no, printf('%016x-0000-local', created_ms) FROM questionnaire_response ORDER BY created_ms, id;
"#;

/// Client details (`details/`): each edit of a field is an immutable record naming the edits it
/// replaced (`base`, a JSON array of ids); the field's values are the edits nothing replaced.
const V6: &str = r#"
CREATE TABLE detail_edit (
    id         TEXT PRIMARY KEY NOT NULL,
    subject_no INTEGER NOT NULL REFERENCES subject (no),
    field      TEXT NOT NULL,
    value      TEXT,
    base       TEXT NOT NULL,
    hlc        TEXT NOT NULL,
    author     TEXT NOT NULL,
    created_ms INTEGER NOT NULL
);
CREATE INDEX detail_by_field ON detail_edit (subject_no, field);
"#;

/// Questionnaire responses record the language and wording version the form was shown in
/// (instrument/wording.rs). Responses made before were all answered on the built-in wording.
const V7: &str = r#"
ALTER TABLE questionnaire_response ADD COLUMN language TEXT;
ALTER TABLE questionnaire_response ADD COLUMN wording TEXT;
UPDATE questionnaire_response SET wording = 'polku-1';
"#;

/// Patient safety (core/src/safety): `safety_flag` is derived on every device from the records it
/// holds (the rules decide, ids are UUIDv5 of rule and record, so all devices agree);
/// `safety_ack` holds the care team's acknowledgements, append-only and synced. Glucose values
/// typed in mg/dL get the marker `mg/dL` so analytics band them in that unit without decoding
/// `data` (the marker column is in the covering index).
const V8: &str = r#"
CREATE TABLE safety_flag (
    id           TEXT PRIMARY KEY NOT NULL,
    subject_no   INTEGER NOT NULL REFERENCES subject (no),
    rule         TEXT NOT NULL,
    source       TEXT NOT NULL,
    version_id   TEXT NOT NULL,
    record_id    TEXT NOT NULL,
    at_ms        INTEGER NOT NULL,
    utc_offset_s INTEGER NOT NULL,
    detail       TEXT NOT NULL
);
CREATE INDEX safety_flag_by_subject ON safety_flag (subject_no, at_ms);
CREATE INDEX safety_flag_by_record ON safety_flag (record_id);
CREATE TABLE safety_ack (
    id         TEXT PRIMARY KEY NOT NULL,
    subject_no INTEGER NOT NULL REFERENCES subject (no),
    flag_id    TEXT NOT NULL,
    note       TEXT NOT NULL,
    author     TEXT NOT NULL,
    acked_ms   INTEGER NOT NULL
);
CREATE INDEX safety_ack_by_flag ON safety_ack (flag_id);
UPDATE entry_version SET marker = 'mg/dL'
    WHERE kind = 'glucose' AND marker IS NULL AND value IS NOT NULL AND json_extract(data, '$.unit') = 'mg/dL';
"#;

/// Issue 10: this device's Olm account (its identity keys and unpublished one-time keys), as
/// vodozemac pickles it. It lives only here, inside the encrypted database.
const V9: &str = r#"
CREATE TABLE olm_account (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    pickle     TEXT NOT NULL,
    published  INTEGER NOT NULL DEFAULT 0,
    updated_ms INTEGER NOT NULL
);
"#;

/// Issue 10: Olm sessions per peer device, the peers' identity keys as first seen, messages
/// (this device's own, and received ones), the encrypted copies of a sent message waiting for the
/// relay's answer, and received ciphertexts that failed a check.
const V10: &str = r#"
CREATE TABLE peer_device (
    device_id     TEXT PRIMARY KEY NOT NULL,
    user_id       TEXT NOT NULL,
    curve25519    TEXT NOT NULL,
    ed25519       TEXT NOT NULL,
    first_seen_ms INTEGER NOT NULL
);
CREATE TABLE olm_session (
    peer_device TEXT NOT NULL,
    session_id  TEXT NOT NULL,
    pickle      TEXT NOT NULL,
    used_ms     INTEGER NOT NULL,
    PRIMARY KEY (peer_device, session_id)
);
CREATE TABLE message (
    id            TEXT PRIMARY KEY NOT NULL,
    conversation  TEXT NOT NULL,
    sender_user   TEXT NOT NULL,
    sender_device TEXT NOT NULL,
    seq           INTEGER NOT NULL,
    sent_ms       INTEGER NOT NULL,
    body          TEXT NOT NULL,
    received_ms   INTEGER,
    state         TEXT NOT NULL
);
CREATE INDEX message_by_conversation ON message (conversation, sent_ms, id);
CREATE TABLE message_copy (
    copy_id          TEXT PRIMARY KEY NOT NULL,
    message_id       TEXT NOT NULL,
    recipient_device TEXT NOT NULL,
    ciphertext       TEXT NOT NULL
);
CREATE TABLE message_rejected (
    id            INTEGER PRIMARY KEY,
    sender_device TEXT NOT NULL,
    reason        TEXT NOT NULL,
    at_ms         INTEGER NOT NULL
);
"#;

/// Receipts, conversations and identity changes (issue 10).
/// - `message.read_ms`: when this user read a received message (their own are read when stored).
/// - `message_receipt`: which other member has a message this user sent, and has read it.
/// - `receipt_out`: receipts this device owes, sent (batched) with the next sync.
/// - `envelope_seen`: ids of receipts already taken, so a replay changes nothing.
/// - `conversation_member`: the members as the server last named them (kept for offline use).
/// - `peer_device.changed_*`: a known device that now shows other identity keys; nothing is
///   encrypted to it, and what it sends waits in `inbox_held`, until the user accepts the change.
/// - `message_held`: messages not yet encrypted to such a device.
/// - `olm_account.upload_pending`: keys the server does not have yet, so a sync that needs no
///   upload does not unpickle the account (its keys' public halves are recomputed on load).
const V11: &str = r#"
ALTER TABLE message ADD COLUMN read_ms INTEGER;
CREATE INDEX message_unread ON message (conversation) WHERE read_ms IS NULL AND state = 'received';
CREATE TABLE message_receipt (
    message_id   TEXT NOT NULL,
    user_id      TEXT NOT NULL,
    delivered_ms INTEGER,
    read_ms      INTEGER,
    PRIMARY KEY (message_id, user_id)
) WITHOUT ROWID;
CREATE TABLE receipt_out (
    message_id TEXT NOT NULL,
    kind       TEXT NOT NULL CHECK (kind IN ('delivered', 'read')),
    PRIMARY KEY (message_id, kind)
) WITHOUT ROWID;
CREATE TABLE envelope_seen (
    id TEXT PRIMARY KEY NOT NULL
) WITHOUT ROWID;
CREATE TABLE conversation_member (
    conversation TEXT NOT NULL,
    user_id      TEXT NOT NULL,
    PRIMARY KEY (conversation, user_id)
) WITHOUT ROWID;
ALTER TABLE peer_device ADD COLUMN changed_curve25519 TEXT;
ALTER TABLE peer_device ADD COLUMN changed_ed25519 TEXT;
ALTER TABLE peer_device ADD COLUMN changed_ms INTEGER;
ALTER TABLE peer_device ADD COLUMN verified_ms INTEGER;
CREATE TABLE message_held (
    message_id       TEXT NOT NULL,
    recipient_device TEXT NOT NULL,
    PRIMARY KEY (message_id, recipient_device)
) WITHOUT ROWID;
ALTER TABLE olm_account ADD COLUMN upload_pending INTEGER NOT NULL DEFAULT 1;
CREATE TABLE inbox_held (
    id            INTEGER PRIMARY KEY,
    sender_user   TEXT NOT NULL,
    sender_device TEXT NOT NULL,
    ciphertext    TEXT NOT NULL,
    held_ms       INTEGER NOT NULL
);
"#;

/// Profile schema v12: attachments and device verification (issue 10).
/// - `attachment`: a message's file. The key, nonce and SHA-256 of the sealed blob came inside
///   the Olm message; `data` is the file once this device has it (the sender's from the start),
///   `uploaded_ms` when the server took this device's upload.
/// - `verification_out` / `verification_in`: steps of short-authentication-string verification
///   (vodozemac SAS) to send and received; the ephemeral secret lives only in memory. Ids of
///   received steps are never reused (AUTOINCREMENT): a verification reads on from the last id
///   it saw, and an accepted request's row is deleted.
const V12: &str = r#"
CREATE TABLE attachment (
    id          TEXT PRIMARY KEY NOT NULL,
    message_id  TEXT NOT NULL,
    name        TEXT NOT NULL,
    mime        TEXT NOT NULL,
    size        INTEGER NOT NULL,
    sha256      TEXT NOT NULL,
    key         BLOB NOT NULL,
    nonce       BLOB NOT NULL,
    data        BLOB,
    uploaded_ms INTEGER,
    fetched_ms  INTEGER
);
CREATE INDEX attachment_by_message ON attachment (message_id);
CREATE TABLE verification_out (
    id               INTEGER PRIMARY KEY,
    conversation     TEXT NOT NULL,
    recipient_device TEXT NOT NULL,
    step             TEXT NOT NULL
);
CREATE TABLE verification_in (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    sender_user   TEXT NOT NULL,
    sender_device TEXT NOT NULL,
    txn           TEXT NOT NULL,
    step          TEXT NOT NULL,
    received_ms   INTEGER NOT NULL
);
CREATE INDEX verification_in_by_txn ON verification_in (txn, id);
"#;

/// Profile schema v13: home-care and outreach visits (issue 11, docs/visits.md).
/// - `visit_plan`: versions of a client's service plan, each from its date on (synced).
/// - `visit_event`: what workers recorded of a visit (synced, immutable); visits themselves are
///   generated from the plan on every device alike, so they are not stored.
/// - `outreach_contact`: a school nurse's contacts with a student (synced, immutable).
const V13: &str = r#"
CREATE TABLE visit_plan (
    id             TEXT PRIMARY KEY NOT NULL,
    subject_no     INTEGER NOT NULL,
    effective_from TEXT NOT NULL,
    plan           TEXT NOT NULL,
    author         TEXT NOT NULL,
    created_ms     INTEGER NOT NULL,
    hlc            TEXT NOT NULL
);
CREATE INDEX visit_plan_by_subject ON visit_plan (subject_no, effective_from, hlc);
CREATE TABLE visit_event (
    id           TEXT PRIMARY KEY NOT NULL,
    subject_no   INTEGER NOT NULL,
    visit_id     TEXT NOT NULL,
    date         TEXT NOT NULL,
    slot         TEXT NOT NULL,
    kind         TEXT NOT NULL,
    task         TEXT,
    outcome      TEXT,
    reason       TEXT,
    note         TEXT,
    to_user      TEXT,
    entry_id     TEXT,
    resolves     TEXT,
    base         TEXT,
    category     TEXT,
    at_ms        INTEGER NOT NULL,
    utc_offset_s INTEGER NOT NULL,
    author       TEXT NOT NULL,
    hlc          TEXT NOT NULL
);
CREATE INDEX visit_event_by_visit ON visit_event (visit_id, hlc);
CREATE INDEX visit_event_by_day ON visit_event (date);
CREATE INDEX visit_event_by_subject ON visit_event (subject_no, date);
CREATE TABLE outreach_contact (
    id             TEXT PRIMARY KEY NOT NULL,
    subject_no     INTEGER NOT NULL,
    kind           TEXT NOT NULL,
    setting        TEXT,
    note           TEXT,
    questionnaires TEXT,
    follow_up      TEXT,
    referral       TEXT,
    at_ms          INTEGER NOT NULL,
    utc_offset_s   INTEGER NOT NULL,
    author         TEXT NOT NULL,
    hlc            TEXT NOT NULL
);
CREATE INDEX outreach_contact_by_subject ON outreach_contact (subject_no, at_ms);
"#;

pub fn migrations() -> Migrations<'static> {
    Migrations::new(vec![
        M::up(V1),
        M::up(V2),
        M::up(V3),
        M::up(V4),
        M::up(V5),
        M::up(V6),
        M::up(V7),
        M::up(V8),
        M::up(V9),
        M::up(V10),
        M::up(V11),
        M::up(V12),
        M::up(V13),
    ])
}

/// The schema version this build writes.
pub const LATEST: i64 = 13;

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::Connection;

    fn schema(conn: &Connection) -> Vec<(String, String, String)> {
        let mut stmt = conn
            .prepare("SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY type, name")
            .unwrap();
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get::<_, String>(2)?)))
            .unwrap()
            .map(|r| r.unwrap())
            .collect::<Vec<(String, String, String)>>();
        // ALTER TABLE rewrites the CREATE statement text; compare the columns instead for tables.
        rows.into_iter()
            .map(|(t, n, sql)| {
                if t == "table" {
                    let cols = conn
                        .prepare(&format!("PRAGMA table_xinfo({n})"))
                        .unwrap()
                        .query_map([], |r| {
                            Ok(format!(
                                "{}:{}:{}:{:?}:{}",
                                r.get::<_, String>(1)?,
                                r.get::<_, String>(2)?,
                                r.get::<_, i64>(3)?,
                                r.get::<_, Option<String>>(4)?,
                                r.get::<_, i64>(5)?
                            ))
                        })
                        .unwrap()
                        .map(|c| c.unwrap())
                        .collect::<Vec<_>>()
                        .join(",");
                    (t, n, cols)
                } else {
                    (t, n, sql.split_whitespace().collect::<Vec<_>>().join(" "))
                }
            })
            .collect()
    }

    #[test]
    fn upgraded_equals_fresh() {
        let mut fresh = Connection::open_in_memory().unwrap();
        migrations().to_latest(&mut fresh).unwrap();

        let mut old = Connection::open_in_memory().unwrap();
        migrations().to_version(&mut old, 1).unwrap();
        old.execute_batch(
            "INSERT INTO subject (no, id) VALUES (1, 's');
             INSERT INTO entry_version (version_id, entry_id, version, subject_no, kind, at_ms, utc_offset_s,
             author, created_ms, data) VALUES ('v', 'e', 1, 1, 'mood', 0, 7200, 'a', 0, '{}')",
        )
        .unwrap();
        migrations().to_latest(&mut old).unwrap();

        assert_eq!(schema(&old), schema(&fresh));
        let v: i64 = old
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(v, LATEST);
        let kept: i64 = old
            .query_row("SELECT count(*) FROM entry_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(kept, 1, "rows survive the upgrade");
        let queued: String = old
            .query_row("SELECT record_id FROM sync_outbox", [], |r| r.get(0))
            .unwrap();
        assert_eq!(queued, "v", "history made before sync is queued for upload");
    }

    #[test]
    fn responses_from_before_v7_are_marked_as_answered_on_the_builtin_wording() {
        let mut old = Connection::open_in_memory().unwrap();
        migrations().to_version(&mut old, 6).unwrap();
        old.execute_batch(
            "INSERT INTO subject (no, id) VALUES (1, 's');
             INSERT INTO questionnaire_response (id, subject_no, instrument, authored_ms, utc_offset_s,
             author, created_ms, answers, total, band, flags)
             VALUES ('r', 1, 'gad7', 0, 7200, 'a', 0, '[0,0,0,0,0,0,0]', 0, 'minimal', '[]')",
        )
        .unwrap();
        migrations().to_latest(&mut old).unwrap();
        let (language, wording): (Option<String>, String) = old
            .query_row(
                "SELECT language, wording FROM questionnaire_response",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        // Before V7 only the built-in wording existed; the language was not recorded.
        assert_eq!((language, wording.as_str()), (None, "polku-1"));
    }

    #[test]
    fn migrations_are_valid() {
        migrations().validate().unwrap();
    }
}
