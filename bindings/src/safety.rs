//! Patient safety over FFI: the urgent flags of a record, the person's guidance after an answer
//! or a measurement, and the care team's acknowledgement. Two audiences: a citizen's shell shows
//! `guidanceFor` (what to do now, whom to call); only a professional's shell shows a flag's
//! `careTeamMessage`.

use std::sync::Arc;

use polku_core::Polku;

use crate::convert::{parse_id, safety_flag, Language, SafetyFlag, SafetyGuidance};
use crate::error::{guard, Result};

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
