//! Finds the source files: every `.json` file below a source root, at any depth, in a stable
//! (sorted) order. A source that is missing or holds no `.json` file is a configuration error; a
//! single file that cannot be read is bad input, reported with the rest of the rejects.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use indicatif::ProgressBar;
use walkdir::WalkDir;

/// One `.json` file found below a source root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    pub path: PathBuf,
    pub size: u64,
    /// Set when the file was found but cannot be read (e.g. a dangling link).
    pub unreadable: Option<String>,
}

/// What a source root holds.
#[derive(Debug, Clone, Default)]
pub struct Discovered {
    pub root: PathBuf,
    pub files: Vec<SourceFile>,
}

impl Discovered {
    pub fn bytes(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }
}

fn is_json(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"))
}

/// Lists the `.json` files below `root`, ticking `found` once per file. `setting` names the
/// config key the root came from, for errors (e.g. `[LOCAL] LOG_DATA`).
pub fn discover(root: &Path, setting: &str, found: &ProgressBar) -> Result<Discovered> {
    if !root.exists() {
        bail!(
            "{setting} = {}: no such file or directory: point it at the directory that holds the source files",
            root.display()
        );
    }
    let mut files = Vec::new();
    for entry in WalkDir::new(root).follow_links(true) {
        match entry {
            Ok(entry) if entry.file_type().is_file() && is_json(entry.path()) => {
                let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
                found.inc(1);
                files.push(SourceFile {
                    path: entry.into_path(),
                    size,
                    unreadable: None,
                });
            }
            Ok(_) => {}
            Err(e) => match e.path() {
                Some(path) if is_json(path) => files.push(SourceFile {
                    path: path.to_path_buf(),
                    size: 0,
                    unreadable: Some(e.to_string()),
                }),
                Some(path) => bail!(
                    "{setting} = {}: cannot read {}: {e}",
                    root.display(),
                    path.display()
                ),
                None => bail!("{setting} = {}: {e}", root.display()),
            },
        }
    }
    if files.is_empty() {
        bail!(
            "{setting} = {}: holds no .json file: point it at the directory of the source files",
            root.display()
        );
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(Discovered {
        root: root.to_path_buf(),
        files,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_json_at_any_depth_and_ignores_other_files() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("a/b/c")).unwrap();
        std::fs::write(root.join("a/b/c/x.json"), "{}").unwrap();
        std::fs::write(root.join("top.JSON"), "{}").unwrap();
        std::fs::write(root.join("a/notes.txt"), "x").unwrap();
        std::fs::write(root.join("a/.DS_Store"), "x").unwrap();
        let found = discover(root, "[LOCAL] SONG_DATA", &ProgressBar::hidden()).unwrap();
        let names: Vec<_> = found
            .files
            .iter()
            .map(|f| f.path.strip_prefix(root).unwrap().to_path_buf())
            .collect();
        assert_eq!(
            names,
            vec![PathBuf::from("a/b/c/x.json"), PathBuf::from("top.JSON")]
        );
        assert_eq!(found.bytes(), 4);
    }

    #[test]
    fn missing_or_empty_roots_are_errors_naming_the_setting() {
        let dir = tempfile::tempdir().unwrap();
        let err = discover(
            &dir.path().join("nope"),
            "[LOCAL] LOG_DATA",
            &ProgressBar::hidden(),
        )
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("[LOCAL] LOG_DATA = "), "{err}");
        assert!(err.contains("no such file"), "{err}");
        std::fs::write(dir.path().join("readme.md"), "x").unwrap();
        let err = discover(dir.path(), "[LOCAL] LOG_DATA", &ProgressBar::hidden())
            .unwrap_err()
            .to_string();
        assert!(err.contains("holds no .json file"), "{err}");
    }

    #[cfg(unix)]
    #[test]
    fn dangling_link_is_an_unreadable_file_not_an_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ok.json"), "{}").unwrap();
        std::os::unix::fs::symlink(dir.path().join("gone"), dir.path().join("bad.json")).unwrap();
        let found = discover(dir.path(), "[LOCAL] LOG_DATA", &ProgressBar::hidden()).unwrap();
        assert_eq!(found.files.len(), 2);
        assert!(found.files[0].unreadable.is_some());
        assert!(found.files[1].unreadable.is_none());
    }
}
