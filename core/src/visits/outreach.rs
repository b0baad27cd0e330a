//! School nurse outreach (issue 11, docs/visits.md): contacts with a student (individual, in a
//! group, with a guardian), the questionnaires given at them (R-BDI, PHQ-9, GAD-7, already scored
//! by the core: a contact names their responses), a follow-up date and a referral. A minor's
//! records reach only the professionals assigned to them: the server's streams decide that.

use chrono::{NaiveDate, Offset};
use polku_protocol::op;
use polku_protocol::visit::{self as pv, CONTACT_KINDS};
use rusqlite::params;
use serde::Serialize;
use uuid::Uuid;

use crate::context::Context;
use crate::error::{Error, Result};
use crate::store::kind::Table;

pub(crate) static CONTACTS: Table = Table::new(
    &op::OUTREACH_CONTACT,
    "outreach_contact",
    true,
    "id, subject_no, hlc FROM outreach_contact WHERE author = ?1 ORDER BY hlc",
    "DELETE FROM outreach_contact WHERE subject_no = ?1 AND id NOT IN (SELECT id FROM temp.keep)",
);

/// A contact as recorded.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Contact {
    pub id: String,
    pub subject: String,
    /// `individual`, `group` or `with_guardian`.
    pub kind: String,
    pub setting: Option<String>,
    pub note: Option<String>,
    /// Ids of the questionnaire responses given at the contact.
    pub questionnaires: Vec<String>,
    pub follow_up: Option<NaiveDate>,
    pub referral: Option<String>,
    pub at_ms: i64,
    pub author: String,
}

/// What a worker records of a contact.
#[derive(Debug, Clone, Default)]
pub struct NewContact {
    pub kind: String,
    pub setting: Option<String>,
    pub note: Option<String>,
    pub questionnaires: Vec<String>,
    pub follow_up: Option<NaiveDate>,
    pub referral: Option<String>,
}

pub struct Outreach<'a> {
    pub(crate) cx: &'a Context,
}

impl Outreach<'_> {
    /// Records a contact with this student now. The questionnaires must be this student's
    /// responses on this device; the follow-up date may not be in the past.
    pub fn record(&self, c: NewContact) -> Result<Contact> {
        if !CONTACT_KINDS.contains(&c.kind.as_str()) {
            return Err(Error::validation("kind", &c.kind, CONTACT_KINDS.join(", ")));
        }
        let text = |field: &str, v: &Option<String>, max: usize| -> Result<()> {
            match v {
                Some(t) if t.trim().is_empty() || t.chars().count() > max => {
                    Err(Error::validation(
                        field,
                        format!("{} characters", t.chars().count()),
                        format!("1–{max} characters"),
                    ))
                }
                _ => Ok(()),
            }
        };
        text("setting", &c.setting, 100)?;
        text("note", &c.note, polku_protocol::validate::NOTE_MAX_CHARS)?;
        text(
            "referral",
            &c.referral,
            polku_protocol::validate::REASON_MAX_CHARS,
        )?;
        let now = self.cx.clock.now();
        let today = now.with_timezone(&self.cx.tz).date_naive();
        if let Some(d) = c.follow_up.filter(|d| *d < today) {
            return Err(Error::validation(
                "follow_up",
                d,
                format!("a date from today ({today}) on"),
            ));
        }
        let id = Uuid::now_v7().to_string();
        let offset = now
            .with_timezone(&self.cx.tz)
            .offset()
            .fix()
            .local_minus_utc();
        self.cx.store.write(|tx| {
            for q in &c.questionnaires {
                let here: bool = tx
                    .prepare_cached(
                        "SELECT 1 FROM questionnaire_response WHERE id = ?1 AND subject_no = ?2",
                    )?
                    .exists(params![q, self.cx.subject_no])?;
                if !here {
                    return Err(Error::validation(
                        "questionnaire",
                        q,
                        "the id of this student's questionnaire response (polku questionnaire list)",
                    ));
                }
            }
            let hlc = self
                .cx
                .hlc
                .tick(now.timestamp_millis().max(0) as u64)
                .to_string();
            tx.execute(
                "INSERT INTO outreach_contact (id, subject_no, kind, setting, note, questionnaires, follow_up,
                   referral, at_ms, utc_offset_s, author, hlc)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                params![
                    id,
                    self.cx.subject_no,
                    c.kind,
                    c.setting,
                    c.note,
                    (!c.questionnaires.is_empty()).then(|| c.questionnaires.join(",")),
                    c.follow_up.map(|d| d.to_string()),
                    c.referral,
                    now.timestamp_millis(),
                    offset,
                    self.cx.author,
                    hlc
                ],
            )?;
            self.cx.queue(tx, op::OUTREACH_CONTACT.name, &id)
        })?;
        Ok(Contact {
            id,
            subject: self.cx.subject.clone(),
            kind: c.kind,
            setting: c.setting,
            note: c.note,
            questionnaires: c.questionnaires,
            follow_up: c.follow_up,
            referral: c.referral,
            at_ms: now.timestamp_millis(),
            author: self.cx.author.clone(),
        })
    }

    /// This student's contacts, newest first.
    pub fn contacts(&self) -> Result<Vec<Contact>> {
        contacts(self.cx, Some(self.cx.subject_no))
    }
}

/// Contacts of one subject, or of every subject on the device (`None`), newest first.
pub(crate) fn contacts(cx: &Context, subject_no: Option<i64>) -> Result<Vec<Contact>> {
    cx.store.read(|c| {
        let mut stmt = c.prepare_cached(
            "SELECT o.id, s.id, o.kind, o.setting, o.note, o.questionnaires, o.follow_up, o.referral, o.at_ms, o.author
             FROM outreach_contact o JOIN subject s ON s.no = o.subject_no
             WHERE ?1 IS NULL OR o.subject_no = ?1 ORDER BY o.at_ms DESC, o.id",
        )?;
        let rows = stmt.query_map([subject_no], |r| {
            let qs: Option<String> = r.get(5)?;
            let follow: Option<String> = r.get(6)?;
            Ok(Contact {
                id: r.get(0)?,
                subject: r.get(1)?,
                kind: r.get(2)?,
                setting: r.get(3)?,
                note: r.get(4)?,
                questionnaires: qs
                    .map(|q| q.split(',').map(String::from).collect())
                    .unwrap_or_default(),
                follow_up: follow.and_then(|d| pv::date("follow_up", &d).ok()),
                referral: r.get(7)?,
                at_ms: r.get(8)?,
                author: r.get(9)?,
            })
        })?;
        Ok(rows.collect::<std::result::Result<_, _>>()?)
    })
}

/// Follow-ups due by `until` across the device: each student's latest contact's follow-up date,
/// earliest first (a later contact without one closes it).
pub(crate) fn follow_ups(cx: &Context, until: NaiveDate) -> Result<Vec<Contact>> {
    let mut latest: Vec<Contact> = Vec::new();
    for c in contacts(cx, None)? {
        if !latest.iter().any(|l| l.subject == c.subject) {
            latest.push(c);
        }
    }
    let mut due: Vec<Contact> = latest
        .into_iter()
        .filter(|c| c.follow_up.is_some_and(|d| d <= until))
        .collect();
    due.sort_by_key(|c| (c.follow_up, c.subject.clone()));
    Ok(due)
}
