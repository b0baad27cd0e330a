//! The county's published content folder: `pathways/` (pathway definitions, docs/pathways.md) and
//! `questionnaires/` (licensed questionnaire wording, docs/questionnaires.md).

use std::path::{Path, PathBuf};

use crate::error::Result;

/// The `*.json` files of `dir`, in name order (so loading and its error list are reproducible).
pub(crate) fn json_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    Ok(files)
}
