//! Task and note categories of visits: county content (docs/visits.md), so a county can use its
//! nursing classification (FinCC, say) without a code change. The built-in lists cover home
//! care's usual tasks and observations; a county's `visit-tasks.json` and `visit-notes.json` in
//! its content folder replace them.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, ImportProblem, Result};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskCategory {
    pub code: String,
    /// The name a worker sees (Finnish in the built-in list).
    pub name: String,
    /// A diary kind measured in this task (`blood_pressure`, `glucose`, `weight`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measures: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TaskCategories(Vec<TaskCategory>);

const BUILT_IN: &[(&str, &str, Option<&str>)] = &[
    ("medication", "Lääkkeet annettu", None),
    (
        "blood_pressure",
        "Verenpaineen mittaus",
        Some("blood_pressure"),
    ),
    ("glucose", "Verensokerin mittaus", Some("glucose")),
    ("weight", "Punnitus", Some("weight")),
    ("wound_care", "Haavanhoito", None),
    ("meal", "Ateria", None),
    ("hygiene", "Hygieniassa avustaminen", None),
    ("dressing", "Pukeutumisessa avustaminen", None),
    ("mobility", "Liikkumisessa avustaminen", None),
    ("safety_check", "Turvallisuuden tarkistus", None),
    ("outdoor", "Ulkoilu", None),
    ("screening", "Seulontakysely", None),
    ("discussion", "Tukikeskustelu", None),
];

/// Categories of structured observations written at visits.
const BUILT_IN_NOTES: &[(&str, &str, Option<&str>)] = &[
    ("general", "Yleinen havainto", None),
    ("nutrition", "Ravitsemus ja nesteytys", None),
    ("mobility", "Liikkuminen ja toimintakyky", None),
    ("skin", "Iho ja haavat", None),
    ("mood", "Mieliala ja muisti", None),
    ("medication", "Lääkehoito", None),
    ("safety", "Turvallisuus ja koti", None),
    ("family", "Omaiset ja verkosto", None),
];

fn built_in(list: &[(&str, &str, Option<&str>)]) -> TaskCategories {
    TaskCategories(
        list.iter()
            .map(|(code, name, measures)| TaskCategory {
                code: (*code).into(),
                name: (*name).into(),
                measures: measures.map(Into::into),
            })
            .collect(),
    )
}

impl Default for TaskCategories {
    fn default() -> Self {
        built_in(BUILT_IN)
    }
}

impl TaskCategories {
    /// The county's `visit-tasks.json` in its content folder, else the built-in list.
    pub fn from_content_dir(dir: Option<&Path>) -> Result<TaskCategories> {
        Self::load(dir, "visit-tasks.json", BUILT_IN)
    }

    /// Note (observation) categories: the county's `visit-notes.json`, else the built-in list.
    pub fn notes_from_content_dir(dir: Option<&Path>) -> Result<TaskCategories> {
        Self::load(dir, "visit-notes.json", BUILT_IN_NOTES)
    }

    fn load(
        dir: Option<&Path>,
        name: &str,
        default: &[(&str, &str, Option<&str>)],
    ) -> Result<TaskCategories> {
        let Some(file) = dir.map(|d| d.join(name)).filter(|f| f.is_file()) else {
            return Ok(built_in(default));
        };
        let problem = |message: String| {
            Error::Import(vec![ImportProblem {
                line: 0,
                message: format!("{}: {message}", file.display()),
            }])
        };
        let text = std::fs::read_to_string(&file)?;
        let list: Vec<TaskCategory> =
            serde_json::from_str(&text).map_err(|e| problem(e.to_string()))?;
        if list.is_empty() {
            return Err(problem("at least one task category".into()));
        }
        for (i, c) in list.iter().enumerate() {
            let code_ok = !c.code.is_empty()
                && c.code.len() <= 40
                && c.code.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-'
                });
            if !code_ok || list[..i].iter().any(|o| o.code == c.code) {
                return Err(problem(format!(
                    "category {i}: code `{}` must be a unique code of a–z, 0–9, '_', '-'",
                    c.code
                )));
            }
            if c.name.trim().is_empty() {
                return Err(problem(format!("category {i}: a name")));
            }
        }
        Ok(TaskCategories(list))
    }

    pub fn get(&self, code: &str) -> Option<&TaskCategory> {
        self.0.iter().find(|c| c.code == code)
    }

    pub fn all(&self) -> &[TaskCategory] {
        &self.0
    }

    /// The codes, for an error naming what is allowed.
    pub fn codes(&self) -> String {
        self.0
            .iter()
            .map(|c| c.code.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}
