//! What the respondent reads, kept apart from what is scored.
//!
//! A questionnaire's validity rests on its wording: a screening score means what the validation
//! studies say only if the person answered the validated text. The validated Finnish and Swedish
//! PHQ-9/GAD-7 and the R-BDI form are the publishers' material, which the county obtains and
//! licenses; the app cannot invent them. So wording is data: the built-in wording (the published
//! English PHQ-9/GAD-7, the project's own translations for the rest, marked as not validated) can
//! be replaced per instrument and language by a county's file (docs/questionnaires.md), without a
//! code change. Item order, answer values and scoring stay in `instruments` and never depend on
//! wording; every response records the wording version it was answered on.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;

use super::{InstrumentId, Lang};
use crate::error::{Error, ImportProblem, Result};

/// The version name of the built-in wording (stored on every response answered on it).
pub const BUILTIN_VERSION: &str = "polku-1";

/// One instrument's wording in one language.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wording {
    pub instrument: InstrumentId,
    pub language: Lang,
    /// Names this text; stored on each response, so a later change of wording stays visible.
    pub version: String,
    /// Who published (and licensed) the text.
    pub source: String,
    /// Whether this is a validated version of the instrument (the published original or a
    /// validated translation). The shells show a notice when it is not.
    pub validated: bool,
    pub title: String,
    pub instructions: String,
    pub items: Vec<ItemWording>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ItemWording {
    pub text: String,
    /// One text per answer choice, in the instrument's value order.
    pub options: Vec<String>,
}

/// A wording file as written by the county (docs/questionnaires.md).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WordingFile {
    instrument: String,
    language: String,
    version: String,
    source: String,
    validated: bool,
    title: String,
    instructions: String,
    items: Vec<ItemWording>,
}

impl Wording {
    /// The wording compiled into the app. Only the English PHQ-9 and GAD-7 are the published
    /// (validated) text; see `instruments`.
    pub fn builtin(id: InstrumentId, lang: Lang) -> Wording {
        let ins = id.instrument();
        let validated = lang == Lang::En && matches!(id, InstrumentId::Phq9 | InstrumentId::Gad7);
        Wording {
            instrument: id,
            language: lang,
            version: BUILTIN_VERSION.to_owned(),
            source: if validated {
                ins.source.to_owned()
            } else {
                "Polku project translation, not a validated version: replace it with the licensed validated wording".to_owned()
            },
            validated,
            title: ins.title.get(lang).to_owned(),
            instructions: ins.instructions.get(lang).to_owned(),
            items: ins
                .items
                .iter()
                .map(|i| ItemWording {
                    text: i.text.get(lang).to_owned(),
                    options: i
                        .options
                        .iter()
                        .map(|o| o.text.get(lang).to_owned())
                        .collect(),
                })
                .collect(),
        }
    }

    /// Parses and checks one wording file against its instrument; every problem names the file,
    /// the item and the field.
    pub fn parse(file: &str, text: &str) -> Result<Wording> {
        let f: WordingFile = serde_json::from_str(text).map_err(|e| {
            problems(
                file,
                vec![(
                    e.line() as u64,
                    e.to_string()
                        .split(" at line")
                        .next()
                        .unwrap_or("invalid JSON")
                        .to_owned(),
                )],
            )
        })?;
        let mut p: Vec<(u64, String)> = Vec::new();
        let mut add = |msg: String| p.push((0, msg));
        let instrument = InstrumentId::parse(&f.instrument);
        if instrument.is_err() {
            add(format!(
                "field `instrument`: `{}` is not phq9, gad7, rbdi or findrisc",
                f.instrument
            ));
        }
        let language = Lang::parse(&f.language);
        if language.is_err() {
            add(format!(
                "field `language`: `{}` is not fi, sv or en",
                f.language
            ));
        }
        let version_ok = !f.version.is_empty()
            && f.version.len() <= 40
            && f.version
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
        if !version_ok {
            add(format!(
                "field `version`: `{}` must be 1–40 characters of A–Z, a–z, 0–9, '.', '-', '_'",
                f.version
            ));
        } else if f.version.starts_with("polku-") {
            add(format!(
                "field `version`: `{}`: names starting with `polku-` are the app's own",
                f.version
            ));
        }
        text_field("field `source`", &f.source, 300, &mut add);
        text_field("field `title`", &f.title, 200, &mut add);
        text_field("field `instructions`", &f.instructions, 2000, &mut add);
        if let Ok(id) = instrument {
            let ins = id.instrument();
            if f.items.len() != ins.items.len() {
                add(format!(
                    "field `items`: {} items, but {} has {} (in the published order)",
                    f.items.len(),
                    id.as_str(),
                    ins.items.len()
                ));
            }
            for (n, (w, item)) in f.items.iter().zip(ins.items).enumerate() {
                let at = format!("item {} ({})", n + 1, item.link_id);
                text_field(&format!("{at}, field `text`"), &w.text, 2000, &mut add);
                if w.options.len() != item.options.len() {
                    add(format!(
                        "{at}, field `options`: {} answer texts for {} choices (values {})",
                        w.options.len(),
                        item.options.len(),
                        super::Instrument::allowed(item)
                    ));
                }
                for (k, o) in w.options.iter().enumerate() {
                    text_field(&format!("{at}, field `options[{k}]`"), o, 500, &mut add);
                }
            }
        }
        match (instrument, language) {
            (Ok(instrument), Ok(language)) if p.is_empty() => Ok(Wording {
                instrument,
                language,
                version: f.version,
                source: f.source,
                validated: f.validated,
                title: f.title,
                instructions: f.instructions,
                items: f.items,
            }),
            _ => Err(problems(file, p)),
        }
    }
}

/// `at` names the place: "field `title`", "item 3 (phq9-3), field `text`".
fn text_field(at: &str, s: &str, max: usize, add: &mut impl FnMut(String)) {
    let n = s.trim().chars().count();
    if n == 0 || n > max {
        add(format!("{at}: must be 1–{max} characters, found {n}"));
    }
}

fn problems(file: &str, p: Vec<(u64, String)>) -> Error {
    Error::Import(
        p.into_iter()
            .map(|(line, m)| ImportProblem {
                line,
                message: format!("{file}: {m}"),
            })
            .collect(),
    )
}

/// The wording in use on this device: the built-in one, replaced where the county published its own.
#[derive(Debug, Clone)]
pub struct Wordings {
    by_key: HashMap<(InstrumentId, Lang), Arc<Wording>>,
    /// The file each replacement came from, to name both files when two claim the same slot.
    files: HashMap<(InstrumentId, Lang), String>,
}

impl Wordings {
    pub fn builtin() -> Wordings {
        let mut by_key = HashMap::new();
        for id in InstrumentId::ALL {
            for lang in [Lang::Fi, Lang::Sv, Lang::En] {
                by_key.insert((id, lang), Arc::new(Wording::builtin(id, lang)));
            }
        }
        Wordings {
            by_key,
            files: HashMap::new(),
        }
    }

    /// Built once per process: opening a profile must not rebuild twelve wordings.
    pub fn builtin_shared() -> Arc<Wordings> {
        static BUILTIN: std::sync::OnceLock<Arc<Wordings>> = std::sync::OnceLock::new();
        BUILTIN
            .get_or_init(|| Arc::new(Wordings::builtin()))
            .clone()
    }

    /// The built-in wording, replaced by the files of `dir` when given.
    pub fn from_dir(dir: Option<&Path>) -> Result<Arc<Wordings>> {
        let shared = Wordings::builtin_shared();
        match dir {
            None => Ok(shared),
            Some(dir) => {
                let mut w = (*shared).clone();
                w.load_dir(dir)?;
                Ok(Arc::new(w))
            }
        }
    }

    /// Replaces the built-in wording with the `*.json` files of `dir`, one file per instrument
    /// and language. Nothing is replaced unless every file is valid.
    pub fn load_dir(&mut self, dir: &Path) -> Result<()> {
        let mut next = self.clone();
        let mut all: Vec<ImportProblem> = Vec::new();
        for f in crate::content::json_files(dir)? {
            let name = f.display().to_string();
            let text = std::fs::read_to_string(&f)?;
            match Wording::parse(&name, &text).and_then(|w| next.add(&name, w)) {
                Ok(()) => {}
                Err(Error::Import(p)) => all.extend(p),
                Err(e) => return Err(e),
            }
        }
        if !all.is_empty() {
            return Err(Error::Import(all));
        }
        *self = next;
        Ok(())
    }

    /// Puts `w` in place of the wording of its instrument and language.
    pub fn add(&mut self, file: &str, w: Wording) -> Result<()> {
        let key = (w.instrument, w.language);
        if let Some(other) = self.files.get(&key) {
            return Err(problems(
                file,
                vec![(
                    0,
                    format!(
                        "{} in `{}` is already given by {other}: keep one file per instrument and language",
                        w.instrument.as_str(),
                        lang_code(w.language)
                    ),
                )],
            ));
        }
        self.files.insert(key, file.to_owned());
        self.by_key.insert(key, Arc::new(w));
        Ok(())
    }

    pub fn get(&self, id: InstrumentId, lang: Lang) -> &Wording {
        // Every key is filled by `builtin`, and `add` only replaces.
        &self.by_key[&(id, lang)]
    }

    /// The instrument ready to show: this wording with the instrument's values, points and bands.
    pub fn form(&self, id: InstrumentId, lang: Lang) -> Form {
        let ins = id.instrument();
        let w = self.get(id, lang);
        Form {
            instrument: id,
            language: lang,
            version: w.version.clone(),
            validated: w.validated,
            wording_source: w.source.clone(),
            scoring_source: ins.source,
            title: w.title.clone(),
            instructions: w.instructions.clone(),
            items: ins
                .items
                .iter()
                .zip(&w.items)
                .map(|(item, iw)| FormItem {
                    link_id: item.link_id,
                    text: iw.text.clone(),
                    options: item
                        .options
                        .iter()
                        .zip(&iw.options)
                        .map(|(o, text)| FormOption {
                            value: o.value,
                            points: o.points,
                            text: text.clone(),
                        })
                        .collect(),
                })
                .collect(),
            bands: ins
                .bands
                .iter()
                .map(|b| FormBand {
                    code: b.code,
                    min: b.min,
                    max: b.max,
                    label: b.label.get(lang).to_owned(),
                })
                .collect(),
        }
    }
}

pub fn lang_code(lang: Lang) -> &'static str {
    match lang {
        Lang::Fi => "fi",
        Lang::Sv => "sv",
        Lang::En => "en",
    }
}

/// An instrument as the respondent sees it in one language.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Form {
    pub instrument: InstrumentId,
    pub language: Lang,
    /// The wording version, recorded on each response answered in this language.
    pub version: String,
    pub validated: bool,
    pub wording_source: String,
    /// The publication the items and scoring follow.
    pub scoring_source: &'static str,
    pub title: String,
    pub instructions: String,
    pub items: Vec<FormItem>,
    pub bands: Vec<FormBand>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FormItem {
    pub link_id: &'static str,
    pub text: String,
    pub options: Vec<FormOption>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FormOption {
    pub value: u8,
    pub points: u8,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FormBand {
    pub code: &'static str,
    pub min: u32,
    pub max: u32,
    pub label: String,
}
