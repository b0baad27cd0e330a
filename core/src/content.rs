//! The county's published content folder: `pathways/` (pathway definitions, docs/pathways.md) and
//! `questionnaires/` (licensed questionnaire wording, docs/questionnaires.md).

use std::path::{Path, PathBuf};

use crate::error::Result;

/// The county's content folder named by a shell or the CLI (`field`): it must exist.
pub fn existing_dir(field: &str, dir: &Path) -> Result<PathBuf> {
    if dir.is_dir() {
        Ok(dir.to_owned())
    } else {
        Err(crate::error::Error::validation(
            field,
            dir.display(),
            "an existing folder holding pathways/, questionnaires/ or safety.json",
        ))
    }
}

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

#[cfg(test)]
mod tests {
    #[test]
    fn a_missing_content_folder_names_the_field() {
        let e = super::existing_dir("content_dir", std::path::Path::new("/nonexistent/polku"))
            .unwrap_err();
        assert!(
            matches!(&e, crate::error::Error::Validation { field, .. } if field == "content_dir")
        );
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(super::existing_dir("x", dir.path()).unwrap(), dir.path());
    }
}
