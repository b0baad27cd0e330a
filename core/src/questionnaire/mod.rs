//! Scored questionnaires (PHQ-9, GAD-7, R-BDI, FINDRISC). Answers are validated item by item,
//! scored as published (see `instruments`), banded, and flagged to the care team where the source
//! says so. A stored response is immutable: answering again adds a new response.

pub use crate::instrument::{
    wording, AnswerOption, Band, Flag, Form, Instrument, InstrumentId, Item, Lang, Scored, Text,
    Wording, Wordings,
};

use chrono::{DateTime, FixedOffset, Utc};
use rusqlite::{params, OptionalExtension, Row, Transaction};
use serde::Serialize;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::context::Context;
use crate::diary::validate;
use crate::error::{Error, Result};
use crate::store::kind::{Applied, RecordKind, Table};
use crate::time;

/// Validates and scores one complete set of answers, with the care team's flags from the safety
/// rules (one place: safety::rules), e.g. PHQ-9 item 9 ≥ 1 and R-BDI item 7 at a self-harm
/// statement.
pub fn score(id: InstrumentId, answers: &[i64]) -> Result<Scored> {
    let mut scored = crate::instrument::score(id, answers)?;
    scored.flags = crate::safety::rules::response(&scored)
        .into_iter()
        .map(|f| Flag {
            code: f.rule.code().into(),
            urgent: true,
            reason: f.rule.care_team_text().en.to_owned(),
        })
        .collect();
    Ok(scored)
}

/// A stored response.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Response {
    pub id: Uuid,
    pub subject: String,
    pub authored: DateTime<FixedOffset>,
    pub author: String,
    pub created_at: DateTime<Utc>,
    pub scored: Scored,
    /// The language the form was shown in (`None` for responses from before it was recorded).
    pub language: Option<Lang>,
    /// The wording version the form was shown in (`wording::Wording::version`).
    pub wording: String,
}

/// Questionnaire responses, one synced record each. The care team's flags are derived again on
/// the receiving device from the answers (the one scoring code path), never taken on trust.
pub(crate) struct Responses(Table);

pub(crate) static RESPONSES: Responses = Responses(Table::new(
    &polku_protocol::op::QUESTIONNAIRE_RESPONSE,
    "questionnaire_response",
    true,
    "id, subject_no, printf('%016x-0000-requeue', created_ms) FROM questionnaire_response WHERE author = ?1 ORDER BY created_ms",
    "DELETE FROM questionnaire_response WHERE subject_no = ?1 AND id NOT IN (SELECT id FROM temp.keep)",
));

impl RecordKind for Responses {
    fn table(&self) -> &Table {
        &self.0
    }

    fn apply(
        &self,
        tx: &Transaction<'_>,
        subject_no: i64,
        obj: &serde_json::Map<String, Value>,
        _now_ms: i64,
    ) -> Result<Applied> {
        let id = self.0.id(obj)?;
        if !self.0.insert(tx, subject_no, obj, Vec::new())? {
            return Ok(Applied::AlreadyHere);
        }
        let text = |k: &str| obj.get(k).and_then(Value::as_str).unwrap_or("");
        if let Some(scored) = crate::safety::rescore(text("instrument"), text("answers")) {
            let source = crate::safety::SOURCE_RESPONSE;
            crate::safety::Raised::received(subject_no, source, &id, &id, obj, "authored_ms")
                .response(tx, &scored)?;
        }
        Ok(Applied::Inserted)
    }
}

pub struct Questionnaires<'a> {
    pub(crate) cx: &'a Context,
    /// The wording in use (built-in, or the county's licensed texts).
    pub(crate) wordings: &'a Wordings,
}

impl Questionnaires<'_> {
    /// The instrument as shown in `lang`: the county's wording where it published one.
    pub fn form(&self, id: InstrumentId, lang: Lang) -> Form {
        self.wordings.form(id, lang)
    }

    /// Scores and stores a response given on the form shown in `lang` (its wording version is
    /// recorded with it). `authored = None` means now.
    pub fn answer(
        &self,
        id: InstrumentId,
        lang: Lang,
        answers: &[i64],
        authored: Option<DateTime<FixedOffset>>,
    ) -> Result<Response> {
        let scored = score(id, answers)?;
        let wording = self.wordings.get(id, lang).version.clone();
        let now = time::stored_precision(self.cx.clock.now());
        let authored =
            time::stored_precision(authored.unwrap_or_else(|| time::in_zone(now, self.cx.tz)));
        validate::timestamp("authored", authored, now)?;
        let r = Response {
            id: Uuid::now_v7(),
            subject: self.cx.subject.clone(),
            authored,
            author: self.cx.author.clone(),
            created_at: now,
            scored,
            language: Some(lang),
            wording,
        };
        self.cx.store.write(|tx| {
            tx.execute(
                "INSERT INTO questionnaire_response (id, subject_no, instrument, authored_ms, utc_offset_s, author,
                    created_ms, answers, total, band, flags, language, wording)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
                params![
                    r.id.to_string(),
                    self.cx.subject_no,
                    id.as_str(),
                    r.authored.timestamp_millis(),
                    r.authored.offset().local_minus_utc(),
                    r.author,
                    r.created_at.timestamp_millis(),
                    serde_json::to_string(&r.scored.answers)?,
                    r.scored.total,
                    r.scored.band,
                    serde_json::to_string(&r.scored.flags)?,
                    wording::lang_code(lang),
                    r.wording,
                ],
            )?;
            crate::safety::Raised {
                subject_no: self.cx.subject_no,
                source: crate::safety::SOURCE_RESPONSE,
                version_id: &r.id,
                record_id: &r.id,
                at_ms: r.authored.timestamp_millis(),
                offset_s: r.authored.offset().local_minus_utc(),
                created_ms: r.created_at.timestamp_millis(),
            }
            .response(tx, &r.scored)?;
            self.cx.queue(tx, polku_protocol::op::QUESTIONNAIRE_RESPONSE.name, &r.id.to_string(),
            )?;
            Ok(())
        })?;
        Ok(r)
    }

    /// The response as a Kanta PHR `QuestionnaireResponse` (see `to_fhir`), in the language it
    /// was answered in (Finnish for responses that did not record one).
    pub fn fhir(&self, r: &Response) -> Value {
        to_fhir(r, self.wordings, Lang::Fi)
    }

    /// Responses newest first, optionally of one instrument.
    pub fn list(&self, instrument: Option<InstrumentId>, limit: u32) -> Result<Vec<Response>> {
        let limit = if limit == 0 {
            50
        } else {
            limit.min(crate::diary::MAX_PAGE)
        };
        self.cx.store.read(|c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM questionnaire_response WHERE subject_no = ?1 AND (?2 IS NULL OR instrument = ?2)
                 ORDER BY authored_ms DESC, id DESC LIMIT ?3"
            ))?;
            let rows = stmt.query_map(params![self.cx.subject_no, instrument.map(InstrumentId::as_str), limit], row_to_response)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    /// The newest response to `instrument`. Its own statement with a literal `LIMIT 1`: SQLite
    /// re-plans a statement with `LIMIT ?` on every run (it plans around the limit's value), and
    /// this look-up runs for every enrollment of the caseload (docs/benchmarks.md).
    pub fn latest(&self, instrument: InstrumentId) -> Result<Option<Response>> {
        latest(self.cx, instrument)
    }

    pub fn get(&self, id: Uuid) -> Result<Response> {
        self.cx.store.read(|c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM questionnaire_response WHERE id = ?1 AND subject_no = ?2"
            ))?;
            stmt.query_row(params![id.to_string(), self.cx.subject_no], row_to_response)
                .optional()?
                .ok_or_else(|| Error::NotFound {
                    what: "questionnaire response",
                    id: id.to_string(),
                })
        })
    }
}

impl Questionnaires<'_> {
    /// Every response to `instrument` authored at or after `since_ms`, oldest first.
    pub fn since(&self, instrument: InstrumentId, since_ms: i64) -> Result<Vec<Response>> {
        since(self.cx, instrument, since_ms)
    }
}

/// The newest response to `instrument`. Its own statement with a literal `LIMIT 1`: SQLite
/// re-plans a statement with `LIMIT ?` on every run (it plans around the limit's value), and
/// this look-up runs for every enrollment of the caseload (docs/benchmarks.md).
pub(crate) fn latest(cx: &Context, instrument: InstrumentId) -> Result<Option<Response>> {
    cx.store.read(|c| {
        Ok(c.prepare_cached(latest_sql())?
            .query_row(params![cx.subject_no, instrument.as_str()], row_to_response)
            .optional()?)
    })
}

/// Every response to `instrument` authored at or after `since_ms`, oldest first: the pathway
/// engine's sticky unlock conditions read it for every enrollment of the caseload, so it has
/// its own statement with no bound `LIMIT` (SQLite re-plans those on every run).
pub(crate) fn since(
    cx: &Context,
    instrument: InstrumentId,
    since_ms: i64,
) -> Result<Vec<Response>> {
    static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let sql = SQL.get_or_init(|| {
        format!(
            "SELECT {COLUMNS} FROM questionnaire_response
             WHERE subject_no = ?1 AND instrument = ?2 AND authored_ms >= ?3
             ORDER BY authored_ms, id"
        )
    });
    cx.store.read(|c| {
        let mut stmt = c.prepare_cached(sql)?;
        let rows = stmt.query_map(
            params![cx.subject_no, instrument.as_str(), since_ms],
            row_to_response,
        )?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    })
}

fn latest_sql() -> &'static str {
    static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SQL.get_or_init(|| {
        format!(
            "SELECT {COLUMNS} FROM questionnaire_response WHERE subject_no = ?1 AND instrument = ?2
             ORDER BY authored_ms DESC, id DESC LIMIT 1"
        )
    })
}

const COLUMNS: &str = "id, (SELECT id FROM subject WHERE no = subject_no), instrument, authored_ms, utc_offset_s, author, created_ms, answers, language, wording";

fn row_to_response(r: &Row<'_>) -> rusqlite::Result<Response> {
    let conv = |i: usize, e: Box<dyn std::error::Error + Send + Sync>| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, e)
    };
    let id: String = r.get(0)?;
    let instrument: String = r.get(2)?;
    let answers: String = r.get(7)?;
    let answers: Vec<i64> = serde_json::from_str(&answers).map_err(|e| conv(7, Box::new(e)))?;
    let instrument = InstrumentId::parse(&instrument).map_err(|e| conv(2, e.to_string().into()))?;
    // Re-scored from the stored answers: one scoring code path, and stored totals cannot drift.
    let scored = score(instrument, &answers).map_err(|e| conv(7, e.to_string().into()))?;
    Ok(Response {
        id: Uuid::parse_str(&id).map_err(|e| conv(0, Box::new(e)))?,
        subject: r.get(1)?,
        authored: time::wall_clock(r.get(3)?, r.get(4)?),
        author: r.get(5)?,
        created_at: time::from_ms(r.get(6)?),
        scored,
        language: r
            .get::<_, Option<String>>(8)?
            .and_then(|l| Lang::parse(&l).ok()),
        // Devices from before wording was recorded only had the built-in wording.
        wording: r
            .get::<_, Option<String>>(9)?
            .unwrap_or_else(|| wording::BUILTIN_VERSION.to_owned()),
    })
}

/// Canonical URL prefix of the instruments' FHIR Questionnaires. *open*: the county publishes the
/// Kanta PHR Questionnaire resources; until then the app's own URN names them.
pub const QUESTIONNAIRE_CANONICAL: &str = "urn:polku:questionnaire:";

/// The response as a Kanta PHR `QuestionnaireResponse` (fiphr-sd-questionnaireresponse-r4), in
/// the language it was answered in (`lang` for responses that did not record one). `questionnaire`
/// names the wording version answered (`url|version`); item and answer texts are included only
/// when this device holds that wording, so an export never shows a text the person did not read.
pub fn to_fhir(r: &Response, wordings: &Wordings, lang: Lang) -> Value {
    let ins = r.scored.instrument.instrument();
    let lang = r.language.unwrap_or(lang);
    let w = wordings.get(r.scored.instrument, lang);
    let texts_known = w.version == r.wording;
    let patient = format!("Patient/{}", r.subject);
    let band_label = ins
        .bands
        .iter()
        .find(|b| b.code == r.scored.band)
        .map(|b| b.label.get(lang))
        .unwrap_or("");
    let mut items: Vec<Value> = ins
        .items
        .iter()
        .zip(&w.items)
        .zip(&r.scored.answers)
        .map(|((item, iw), v)| {
            let mut coding = json!({
                "system": format!("{QUESTIONNAIRE_CANONICAL}{}:answers", ins.id.as_str()),
                "code": v.to_string(),
            });
            let mut out = json!({ "linkId": item.link_id });
            if texts_known {
                out["text"] = iw.text.clone().into();
                if let Some(k) = item.options.iter().position(|o| o.value == *v) {
                    coding["display"] = iw.options[k].clone().into();
                }
            }
            out["answer"] = json!([{ "valueCoding": coding }]);
            out
        })
        .collect();
    items.push(json!({ "linkId": "total", "text": "total", "answer": [{ "valueInteger": r.scored.total }] }));
    let text = format!(
        "{}: {} / {} ({band_label})",
        w.title, r.scored.total, r.scored.max_total
    );
    json!({
        "resourceType": "QuestionnaireResponse",
        "id": r.id.to_string(),
        "meta": { "profile": ["http://phr.kanta.fi/StructureDefinition/fiphr-sd-questionnaireresponse-r4"] },
        "language": wording::lang_code(lang),
        "text": { "status": "generated", "div": format!("<div xmlns=\"http://www.w3.org/1999/xhtml\">{}</div>", text.replace('&', "&amp;").replace('<', "&lt;")) },
        "identifier": { "system": "urn:ietf:rfc:3986", "value": format!("urn:uuid:{}", r.id) },
        "questionnaire": format!("{QUESTIONNAIRE_CANONICAL}{}|{}", ins.id.as_str(), r.wording),
        "status": "completed",
        "subject": { "reference": patient },
        "authored": r.authored.to_rfc3339_opts(chrono::SecondsFormat::Secs, false),
        "source": { "reference": patient },
        "item": items,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The caseload's look-up is planned once, not re-parsed on every run (as `LIMIT ?` was).
    #[test]
    fn latest_is_planned_once() {
        let dir = tempfile::tempdir().unwrap();
        let p = crate::Polku::open(&dir.path().join("p.db"), &crate::DbKey::from_bytes([7; 32]))
            .unwrap();
        let q = p.questionnaires();
        let r = q
            .answer(InstrumentId::Phq9, Lang::Fi, &[0; 9], None)
            .unwrap();
        for _ in 0..5 {
            for id in InstrumentId::ALL {
                q.latest(id).unwrap();
            }
        }
        assert_eq!(q.latest(InstrumentId::Phq9).unwrap(), Some(r));
        assert_eq!(q.latest(InstrumentId::Gad7).unwrap(), None);
        let reprepared = p
            .store()
            .read(|c| {
                Ok(c.prepare_cached(latest_sql())?
                    .get_status(rusqlite::StatementStatus::RePrepare))
            })
            .unwrap();
        assert_eq!(reprepared, 0);
    }
}
