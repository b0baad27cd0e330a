//! Patient safety over FFI: the urgent flags of a record, the person's guidance after an answer
//! or a measurement, and the care team's acknowledgement. Two audiences: a citizen's shell shows
//! `guidanceFor` (what to do now, whom to call); only a professional's shell shows a flag's
//! `careTeamMessage`.

use std::sync::Arc;
use std::time::SystemTime;

use polku_core::Polku;

use crate::convert::{parse_id, system_time, Language};
use crate::error::{guard, Result};

mirror_enum!(
    /// Which guidance the person gets.
    SafetyAdvice <=> polku_core::safety::Advice { SelfHarm, SevereDepression, LowGlucose, HighGlucose, HighBloodPressure, ChestPain }
);

/// What the person should do now, in their language, with the county's numbers.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct SafetyGuidance {
    pub advice: SafetyAdvice,
    pub title: String,
    /// What to do, in order.
    pub steps: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct SafetyAcknowledgement {
    pub id: String,
    /// The professional's user id.
    pub by: String,
    pub at: SystemTime,
    /// What was done.
    pub note: String,
}

/// An urgent flag: open until a professional acknowledges it.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct SafetyFlag {
    pub id: String,
    pub subject_id: String,
    /// The rule's stable code (`phq9_item9`, `glucose_very_low`, ... docs/safety.md).
    pub code: String,
    pub urgent: bool,
    /// When the value was measured or the questionnaire answered.
    pub at: SystemTime,
    pub utc_offset_seconds: i32,
    /// `diary_entry` or `questionnaire_response`.
    pub source: String,
    /// The diary entry or questionnaire response that raised it.
    pub record_id: String,
    /// The value that raised it ("2.2 mmol/L (meter)", "item 9 = 3").
    pub detail: String,
    /// The care team's clinical text: show it only on a professional's device.
    pub care_team_message: String,
    pub acknowledgements: Vec<SafetyAcknowledgement>,
}

pub(crate) fn safety_flag(
    f: polku_core::safety::SafetyFlag,
    lang: polku_core::questionnaire::Lang,
) -> SafetyFlag {
    SafetyFlag {
        id: f.id.to_string(),
        subject_id: f.subject,
        code: f.rule.code().into(),
        urgent: f.urgent,
        at: system_time(f.at.to_utc()),
        utc_offset_seconds: f.at.offset().local_minus_utc(),
        source: f.source.into(),
        record_id: f.record_id.to_string(),
        detail: f.detail,
        care_team_message: f.rule.care_team_text().get(lang).into(),
        acknowledgements: f
            .acknowledgements
            .into_iter()
            .map(|a| SafetyAcknowledgement {
                id: a.id.to_string(),
                by: a.by,
                at: system_time(a.at),
                note: a.note,
            })
            .collect(),
    }
}

#[derive(uniffi::Object)]
pub struct SafetyClient {
    pub(crate) inner: Arc<Polku>,
    pub(crate) lang: polku_core::questionnaire::Lang,
}

#[uniffi::export]
impl SafetyClient {
    /// This record's flags, newest first: open ones, or all with their acknowledgements.
    pub fn flags(&self, include_acknowledged: bool) -> Result<Vec<SafetyFlag>> {
        guard("safety.flags", || {
            Ok(self
                .inner
                .safety()
                .flags(include_acknowledged)?
                .into_iter()
                .map(|f| safety_flag(f, self.lang))
                .collect())
        })
    }

    /// What the person should do now after writing `record_id` (a diary entry or a
    /// questionnaire response): empty when it raised no flag. Show it at once.
    pub fn guidance_for(&self, record_id: String) -> Result<Vec<SafetyGuidance>> {
        guard("safety.guidance_for", || {
            let s = self.inner.safety();
            let flags = s.raised_by(parse_id("record_id", &record_id)?)?;
            Ok(s.guidance(&flags, self.lang)
                .into_iter()
                .map(|g| SafetyGuidance {
                    advice: g.advice.into(),
                    title: g.title,
                    steps: g.steps,
                })
                .collect())
        })
    }

    /// A professional's device acknowledges `flag_id` with what was done (that flag and the open
    /// flags of the same rule before it); synced to every device of the person and the team.
    pub fn acknowledge(&self, flag_id: String, note: String) -> Result<Vec<SafetyFlag>> {
        guard("safety.acknowledge", || {
            Ok(self
                .inner
                .safety()
                .acknowledge(parse_id("flag_id", &flag_id)?, &note)?
                .into_iter()
                .map(|f| safety_flag(f, self.lang))
                .collect())
        })
    }
}

/// Texts in `language`.
pub(crate) fn client(inner: Arc<Polku>, language: Language) -> Arc<SafetyClient> {
    Arc::new(SafetyClient {
        inner,
        lang: language.into(),
    })
}
