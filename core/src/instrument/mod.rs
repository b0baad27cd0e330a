//! The validated instruments (PHQ-9, GAD-7, R-BDI, FINDRISC): their items, options and bands as
//! published (`catalogue`), how a set of answers scores, and the languages and licensed wordings
//! a form is shown in (`wording`). Pure and shared: questionnaires store responses with it, the
//! safety rules read scores with it, pathways name instruments with it.

pub mod catalogue;
pub mod wording;

pub use wording::{Form, Wording, Wordings};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InstrumentId {
    Phq9,
    Gad7,
    Rbdi,
    Findrisc,
}

impl InstrumentId {
    pub const ALL: [InstrumentId; 4] = [
        InstrumentId::Phq9,
        InstrumentId::Gad7,
        InstrumentId::Rbdi,
        InstrumentId::Findrisc,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            InstrumentId::Phq9 => "phq9",
            InstrumentId::Gad7 => "gad7",
            InstrumentId::Rbdi => "rbdi",
            InstrumentId::Findrisc => "findrisc",
        }
    }

    pub fn parse(s: &str) -> Result<InstrumentId> {
        let norm = s.trim().to_ascii_lowercase().replace(['-', '_'], "");
        InstrumentId::ALL
            .into_iter()
            .find(|i| i.as_str() == norm)
            .ok_or_else(|| Error::validation("instrument", s, "phq9, gad7, rbdi or findrisc"))
    }

    pub fn instrument(self) -> &'static Instrument {
        match self {
            InstrumentId::Phq9 => &catalogue::PHQ9,
            InstrumentId::Gad7 => &catalogue::GAD7,
            InstrumentId::Rbdi => &catalogue::RBDI,
            InstrumentId::Findrisc => &catalogue::FINDRISC,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Lang {
    Fi,
    Sv,
    En,
}

impl Lang {
    pub fn parse(s: &str) -> Result<Lang> {
        match s.trim().to_ascii_lowercase().as_str() {
            "fi" => Ok(Lang::Fi),
            "sv" => Ok(Lang::Sv),
            "en" => Ok(Lang::En),
            _ => Err(Error::validation("language", s, "fi, sv or en")),
        }
    }
}

/// A text in the app's three languages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Text {
    pub fi: &'static str,
    pub sv: &'static str,
    pub en: &'static str,
}

impl Text {
    pub fn get(&self, lang: Lang) -> &'static str {
        match lang {
            Lang::Fi => self.fi,
            Lang::Sv => self.sv,
            Lang::En => self.en,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnswerOption {
    /// What the respondent chooses (as on the published form).
    pub value: u8,
    /// What it scores.
    pub points: u8,
    pub text: Text,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Item {
    pub link_id: &'static str,
    pub text: Text,
    pub options: &'static [AnswerOption],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Band {
    pub code: &'static str,
    pub min: u32,
    pub max: u32,
    pub label: Text,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Instrument {
    pub id: InstrumentId,
    pub title: Text,
    pub instructions: Text,
    pub items: &'static [Item],
    pub bands: &'static [Band],
    pub source: &'static str,
}

impl Instrument {
    pub fn max_total(&self) -> u32 {
        self.items
            .iter()
            .map(|i| i.options.iter().map(|o| o.points as u32).max().unwrap_or(0))
            .sum()
    }

    fn allowed(item: &Item) -> String {
        let values: Vec<u8> = item.options.iter().map(|o| o.value).collect();
        match (values.first(), values.last()) {
            (Some(a), Some(b)) if values.windows(2).all(|w| w[1] == w[0] + 1) => format!("{a}–{b}"),
            _ => values
                .iter()
                .map(u8::to_string)
                .collect::<Vec<_>>()
                .join(", "),
        }
    }
}

/// Something the care team must see.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flag {
    pub code: String,
    /// Urgent flags call for contact the same day.
    pub urgent: bool,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scored {
    pub instrument: InstrumentId,
    /// The chosen values, in item order.
    pub answers: Vec<u8>,
    pub item_points: Vec<u8>,
    pub total: u32,
    pub max_total: u32,
    /// The band's code (e.g. `moderate`); its label comes from the instrument in any language.
    pub band: String,
    pub flags: Vec<Flag>,
}

/// Validates and scores one complete set of answers, as published. The care team's flags are the
/// safety rules' business (`questionnaire::score` adds them).
pub fn score(id: InstrumentId, answers: &[i64]) -> Result<Scored> {
    let ins = id.instrument();
    if answers.len() != ins.items.len() {
        return Err(Error::validation(
            "answers",
            format!("{} answers", answers.len()),
            format!(
                "exactly {} answers for {}, one per item in order",
                ins.items.len(),
                id.as_str()
            ),
        ));
    }
    let mut values = Vec::with_capacity(answers.len());
    let mut points = Vec::with_capacity(answers.len());
    for (i, (item, &a)) in ins.items.iter().zip(answers).enumerate() {
        let opt = item
            .options
            .iter()
            .find(|o| i64::from(o.value) == a)
            .ok_or_else(|| {
                Error::validation(
                    format!("answers[{}] ({})", i + 1, item.link_id),
                    a,
                    Instrument::allowed(item),
                )
            })?;
        values.push(opt.value);
        points.push(opt.points);
    }
    let total: u32 = points.iter().map(|p| *p as u32).sum();
    let band = ins
        .bands
        .iter()
        .find(|b| b.min <= total && total <= b.max)
        .map(|b| b.code.to_owned())
        .ok_or_else(|| {
            Error::Storage(format!("{} total {total} outside every band", id.as_str()))
        })?;
    let scored = Scored {
        instrument: id,
        answers: values,
        item_points: points,
        total,
        max_total: ins.max_total(),
        band,
        flags: Vec::new(),
    };
    Ok(scored)
}
