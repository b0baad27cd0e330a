//! Coordinators of home-care visits (issue 11, docs/visits.md): a professional assigned to a
//! client with the `coordination` scope plans and hands out the client's visits but reads no
//! clinical record. Their pull of that client's stream carries the service plan and the visit
//! events that say who goes when and whether it happened; no notes, task outcomes,
//! measurements, diary or questionnaires. They write plans and assignments only, and take part
//! in no conversation of that client.

use polku_protocol::op;
use rusqlite::{params, Connection};

use super::{now_ms, SqliteStorage};
use crate::error::{ApiError, ApiResult};
use crate::storage::{DeviceAuth, Role};

/// Schema v7: an assignment's scope; every earlier assignment is a care assignment.
pub(super) const SCHEMA_V7: &str = r#"
ALTER TABLE assignment ADD COLUMN scope TEXT NOT NULL DEFAULT 'care' CHECK (scope IN ('care', 'coordination'));
"#;

/// The visit events a coordinator receives: planning and attendance, no clinical content.
pub const COORDINATION_EVENT_KINDS: &[&str] =
    &["assigned", "handover", "arrived", "finished", "not_done"];

fn event_kind(payload: &str) -> Option<String> {
    serde_json::from_str::<serde_json::Value>(payload)
        .ok()?
        .get("kind")?
        .as_str()
        .map(str::to_owned)
}

/// Whether a stored operation of a client's stream reaches that client's coordinator.
pub(super) fn coordinator_reads(kind: &str, payload: &str) -> bool {
    kind == op::VISIT_PLAN.name
        || (kind == op::VISIT_EVENT.name
            && event_kind(payload).is_some_and(|k| COORDINATION_EVENT_KINDS.contains(&k.as_str())))
}

/// Whether a coordinator may write this operation to a client's stream.
pub(super) fn coordinator_writes(kind: &str, payload: &serde_json::Value) -> bool {
    kind == op::VISIT_PLAN.name
        || (kind == op::VISIT_EVENT.name
            && payload.get("kind").and_then(|k| k.as_str()) == Some("assigned"))
}

impl SqliteStorage {
    /// Assigns a professional to a citizen with `scope` (`care` or `coordination`); assigning
    /// again changes the scope and revives an ended assignment.
    pub(super) fn assign_scoped(
        &self,
        professional_id: &str,
        subject_id: &str,
        scope: &str,
    ) -> ApiResult<()> {
        self.write(|tx| {
            let p = Self::user(tx, professional_id)?;
            if !p.role.reads_others() {
                return Err(ApiError::bad(
                    "invalid_role",
                    format!("{} is a {}, not a professional or outreach worker", p.id, p.role.as_str()),
                ));
            }
            let s = Self::user(tx, subject_id)?;
            if s.role != Role::Citizen {
                return Err(ApiError::bad("invalid_role", format!("{} is not a citizen", s.id)));
            }
            tx.execute(
                "INSERT INTO assignment (professional_id, subject_id, since_ms, scope) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (professional_id, subject_id) DO UPDATE SET since_ms = excluded.since_ms,
                   until_ms = NULL, scope = excluded.scope",
                params![professional_id, subject_id, now_ms(), scope],
            )?;
            Ok(())
        })
    }

    fn scoped_streams(c: &Connection, auth: &DeviceAuth, scope: &str) -> ApiResult<Vec<String>> {
        let mut stmt = c.prepare_cached(
            "SELECT subject_id FROM assignment WHERE professional_id = ?1 AND until_ms IS NULL AND scope = ?2
             ORDER BY subject_id",
        )?;
        let rows = stmt.query_map([&auth.user_id, scope], |r| r.get(0))?;
        Ok(rows.collect::<Result<Vec<String>, _>>()?)
    }

    /// The clients a professional cares for (their conversations, their whole records).
    pub(super) fn care_streams(c: &Connection, auth: &DeviceAuth) -> ApiResult<Vec<String>> {
        Self::scoped_streams(c, auth, "care")
    }

    /// The clients whose visits a professional coordinates only.
    pub(super) fn coordinated_streams(c: &Connection, auth: &DeviceAuth) -> ApiResult<Vec<String>> {
        Self::scoped_streams(c, auth, "coordination")
    }
}
