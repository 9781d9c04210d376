//! Finds the source files: every `.json` file below a source root, at any depth, in a stable
//! (sorted) order. A source that is missing or holds no `.json` file is a configuration error; a
//! single file that cannot be read is bad input, reported with the rest of the rejects.

use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Result};
use bytes::Bytes;
use indicatif::ProgressBar;
use rayon::prelude::*;
use walkdir::WalkDir;

use crate::config::Location;
use crate::jsonpaths::JsonPaths;
use crate::s3::{ensure_found, S3Store};

/// One `.json` file (or S3 object) found below a source root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    pub location: Location,
    pub size: u64,
    /// What identifies this version of its contents besides the size: the modification time
    /// (nanoseconds since 1970) of a local file, the ETag of an S3 object; empty when unknown.
    /// An incremental load reads a file again when its size or version changed.
    pub version: String,
    /// Set when the file was found but cannot be read (e.g. a dangling link).
    pub unreadable: Option<String>,
    /// Where reading starts: 0, or for a log file that only grew since it was loaded, the
    /// size it had then (see [`crate::ledger::plan`]): only what was appended is read.
    pub offset: u64,
    /// The lines before `offset`, so rejects name their line in the whole file.
    pub lines_before: u64,
    /// The whole file's content hash where the plan computed it already (a grown file).
    pub digest: Option<String>,
}

impl SourceFile {
    /// A file found at `location`, to be read whole.
    pub fn found(location: Location, size: u64, version: String) -> SourceFile {
        SourceFile {
            location,
            size,
            version,
            unreadable: None,
            offset: 0,
            lines_before: 0,
            digest: None,
        }
    }

    /// The bytes a load reads of it.
    pub fn bytes_to_read(&self) -> u64 {
        self.size.saturating_sub(self.offset)
    }

    /// Whether the local file described by `now` is no longer the version found: another
    /// size, or another modification time (when one was found).
    pub fn differs_from(&self, now: &std::fs::Metadata) -> bool {
        now.len() != self.size
            || (!self.version.is_empty() && crate::files::version_of(now) != self.version)
    }
}

/// The content hash the ledger keeps of a local file: `sha256=` and 64 hex digits.
pub fn content_digest(bytes: &[u8]) -> String {
    use sha2::Digest;
    digest_text(&sha2::Sha256::digest(bytes))
}

/// The text of a finished SHA-256 (see [`content_digest`]).
pub fn digest_text(hash: &[u8]) -> String {
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256=");
    for byte in hash {
        out.push_str(&format!("{byte:02x}"));
    }
    out
}

/// The sources of one run, found and checked: what `etl` discovers before it touches the
/// warehouse, and what the ledger plans from.
#[derive(Debug, Clone)]
pub struct Inputs {
    pub songs: Discovered,
    pub logs: Discovered,
    /// The JSONPaths mapping of log records onto staging columns.
    pub mapping: JsonPaths,
    /// The file it was read from, as `[..] LOG_JSONPATH` names it.
    pub mapping_file: String,
}

/// What a source root holds, and how to read it.
#[derive(Debug, Clone)]
pub struct Discovered {
    pub root: Location,
    pub files: Vec<SourceFile>,
    /// The client for a root in S3.
    store: Option<Arc<S3Store>>,
}

impl Discovered {
    pub fn bytes(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }

    /// What the ledger calls `file`: its path relative to this root, `/`-separated (for S3,
    /// its key after the root's prefix), whatever the working directory or the spelling of
    /// the config's path; a root that names one file gives that file's name.
    pub fn relative_name(&self, file: &SourceFile) -> String {
        let relative = match (&self.root, &file.location) {
            (Location::File(root), Location::File(path)) => match path.strip_prefix(root) {
                Ok(rest) => rest
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
                    .join("/"),
                Err(_) => path.to_string_lossy().into_owned(),
            },
            (Location::S3 { key: prefix, .. }, Location::S3 { key, .. }) => key
                .strip_prefix(prefix.as_str())
                .unwrap_or(key)
                .trim_start_matches('/')
                .to_string(),
            (_, location) => location.to_string(),
        };
        if !relative.is_empty() {
            return relative;
        }
        match &file.location {
            Location::File(path) => path
                .file_name()
                .map_or_else(|| path.to_string_lossy(), |n| n.to_string_lossy())
                .into_owned(),
            Location::S3 { key, .. } => key.rsplit('/').next().unwrap_or(key).to_string(),
        }
    }

    /// The last component of the root's path or prefix (`song_data`), which an entry of the
    /// ledger written by an earlier release names before the file's relative path.
    pub fn root_name(&self) -> Option<String> {
        match &self.root {
            Location::File(root) => root
                .components()
                .next_back()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .filter(|n| n != "." && n != ".."),
            Location::S3 { key, .. } => key
                .trim_end_matches('/')
                .rsplit('/')
                .next()
                .filter(|n| !n.is_empty())
                .map(str::to_string),
        }
    }

    /// The contents of `files` (some of this root's), in order: local files read in parallel,
    /// S3 objects fetched concurrently. A file that cannot be read gives the reason instead, and
    /// so does one over `limit` bytes (not read at all), and a local file that is no longer a
    /// regular file or changed while it was read (see [`read_local`]).
    pub fn read(&self, files: &[SourceFile], limit: u64) -> Vec<Result<Bytes, String>> {
        let too_large = |file: &SourceFile| {
            (file.size > limit).then(|| {
                format!(
                    "it is {} bytes, more than the {limit} a file of this source may be: split \
                     it, or check that it belongs here",
                    file.size
                )
            })
        };
        if let (Some(store), Location::S3 { bucket, .. }) = (&self.store, &self.root) {
            let wanted: Vec<(usize, &str)> = files
                .iter()
                .enumerate()
                .filter(|(_, f)| too_large(f).is_none())
                .map(|(i, f)| match &f.location {
                    Location::S3 { key, .. } => (i, key.as_str()),
                    Location::File(_) => (i, ""),
                })
                .collect();
            let keys: Vec<&str> = wanted.iter().map(|(_, k)| *k).collect();
            let mut fetched = store.get_many(bucket, &keys).into_iter();
            let mut contents: Vec<Result<Bytes, String>> = files
                .iter()
                .map(|f| Err(too_large(f).unwrap_or_default()))
                .collect();
            for (index, _) in wanted {
                if let Some(result) = fetched.next() {
                    contents[index] = result;
                }
            }
            return contents;
        }
        files
            .par_iter()
            .map(|file| match (&file.unreadable, &file.location) {
                (Some(error), _) => Err(error.clone()),
                _ if too_large(file).is_some() => Err(too_large(file).unwrap_or_default()),
                (None, Location::File(path)) => {
                    let bytes = read_local(path, file)?;
                    match usize::try_from(file.offset) {
                        Ok(0) => Ok(bytes),
                        Ok(offset) if offset <= bytes.len() => Ok(bytes.slice(offset..)),
                        _ => Err(format!(
                            "it shrank below the {} bytes loaded before while the run read it",
                            file.offset
                        )),
                    }
                }
                (None, Location::S3 { .. }) => Err("an S3 object outside an S3 source".into()),
            })
            .collect()
    }
}

/// Reads the local source file `path` as `file` was found: opened without blocking and only
/// if still a regular file, at most the size found, and refused as changed when its size or
/// modification time moved between discovery and the end of the read (a writer appending, a
/// file cut or swapped): what was read would not be the version the ledger records.
pub fn read_local(path: &Path, file: &SourceFile) -> Result<Bytes, String> {
    use std::io::Read;
    let (opened, metadata) = crate::files::open_regular(path).map_err(|e| e.to_string())?;
    if file.differs_from(&metadata) {
        return Err(crate::files::changed_while_read(file.size, &metadata, None));
    }
    let mut bytes = Vec::with_capacity(file.size as usize);
    (&opened)
        .take(file.size)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    let after = opened.metadata().map_err(|e| e.to_string())?;
    if (bytes.len() as u64) < file.size || file.differs_from(&after) {
        return Err(crate::files::changed_while_read(
            file.size,
            &after,
            Some(bytes.len() as u64),
        ));
    }
    Ok(Bytes::from(bytes))
}

/// What tells one file or directory from another whatever path leads to it: its device and
/// inode on Unix.
#[cfg(unix)]
fn identity(metadata: &std::fs::Metadata) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    (metadata.dev(), metadata.ino())
}

#[cfg(not(unix))]
fn identity(metadata: &std::fs::Metadata) -> (u64, u64) {
    // Without inodes every entry counts as new, as before.
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let _ = metadata;
    (0, NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
}

fn is_json(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"))
}

/// Whether a file name or S3 key names a source file (`.json`, any case).
pub fn is_json_name(name: &str) -> bool {
    is_json(Path::new(name))
}

/// Lists the `.json` files below `root`, a directory or an `s3://bucket/prefix` (read with
/// `store`), ticking `found` once per file. `setting` names the config key the root came from,
/// for errors (e.g. `[LOCAL] LOG_DATA`).
pub fn discover(
    root: &Location,
    setting: &str,
    store: Option<&Arc<S3Store>>,
    found: &ProgressBar,
) -> Result<Discovered> {
    match root {
        Location::File(path) => discover_dir(path, setting, found),
        Location::S3 { bucket, key } => {
            let Some(store) = store else {
                bail!("{setting} = {root}: no S3 client was set up for it");
            };
            let objects = store.list(bucket, key, is_json_name, setting, found)?;
            ensure_found(objects.len(), setting, bucket, key)?;
            Ok(Discovered {
                root: root.clone(),
                files: objects
                    .into_iter()
                    .map(|o| {
                        let location = Location::S3 {
                            bucket: bucket.clone(),
                            key: o.key,
                        };
                        SourceFile::found(location, o.size, o.etag)
                    })
                    .collect(),
                store: Some(store.clone()),
            })
        }
    }
}

/// Lists the `.json` files below the directory `root`, at any depth, sorted by path. Links are
/// followed, but each directory and each file is visited once however many links lead to it
/// (a link to a sibling directory would otherwise read its files twice). A `.json` entry that is
/// not a regular file (a FIFO, a device, a socket) or whose name is not UTF-8 is found
/// unreadable, and so fails the load unless unreadable files are skipped: none is passed over
/// in silence, and none is read.
pub fn discover_dir(root: &Path, setting: &str, found: &ProgressBar) -> Result<Discovered> {
    if !root.exists() {
        bail!(
            "{setting} = {}: no such file or directory: point it at the directory that holds the source files",
            root.display()
        );
    }
    let mut files = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let walk = WalkDir::new(root)
        .follow_links(true)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|entry| {
            // A directory already visited through another path is not entered again (files
            // are told apart below, from the metadata read for them anyway).
            !entry.file_type().is_dir()
                || entry.metadata().map_or(true, |m| seen.insert(identity(&m)))
        });
    let mut seen_files = std::collections::HashSet::new();
    for entry in walk {
        match entry {
            Ok(entry) if entry.file_type().is_dir() => {}
            Ok(entry) if is_json(entry.path()) => {
                let metadata = entry.metadata().ok();
                if metadata
                    .as_ref()
                    .is_some_and(|m| !seen_files.insert(identity(m)))
                {
                    continue; // the same file through another link
                }
                let size = metadata.as_ref().map_or(0, |m| m.len());
                let version = metadata
                    .as_ref()
                    .map(crate::files::version_of)
                    .unwrap_or_default();
                let unreadable = if entry.path().to_str().is_none() {
                    Some(
                        "its name is not valid UTF-8, which the ledger cannot keep apart from \
                         other names: rename it"
                            .to_string(),
                    )
                } else if !entry.file_type().is_file() {
                    let kind = metadata
                        .as_ref()
                        .map_or("a special file", crate::files::kind_of);
                    Some(format!("it is {kind}, not a regular file"))
                } else {
                    None
                };
                found.inc(1);
                files.push(SourceFile {
                    unreadable,
                    ..SourceFile::found(Location::File(entry.into_path()), size, version)
                });
            }
            Ok(_) => {}
            // A link back to a directory above: visited already.
            Err(e) if e.loop_ancestor().is_some() => {}
            Err(e) => match e.path() {
                Some(path) if is_json(path) => files.push(SourceFile {
                    unreadable: Some(e.to_string()),
                    ..SourceFile::found(Location::File(path.to_path_buf()), 0, String::new())
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
    files.sort_by(|a, b| a.location.cmp_key().cmp(b.location.cmp_key()));
    Ok(Discovered {
        root: Location::File(root.to_path_buf()),
        files,
        store: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn finds_json_at_any_depth_and_ignores_other_files() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("a/b/c")).unwrap();
        std::fs::write(root.join("a/b/c/x.json"), "{}").unwrap();
        std::fs::write(root.join("top.JSON"), "{}").unwrap();
        std::fs::write(root.join("a/notes.txt"), "x").unwrap();
        std::fs::write(root.join("a/.DS_Store"), "x").unwrap();
        let found = discover_dir(root, "[LOCAL] SONG_DATA", &ProgressBar::hidden()).unwrap();
        let names: Vec<_> = found
            .files
            .iter()
            .map(|f| match &f.location {
                Location::File(path) => path.strip_prefix(root).unwrap().to_path_buf(),
                other => panic!("{other}"),
            })
            .collect();
        assert_eq!(
            names,
            vec![PathBuf::from("a/b/c/x.json"), PathBuf::from("top.JSON")]
        );
        assert_eq!(found.bytes(), 4);
    }

    #[test]
    fn files_are_named_relative_to_their_root_however_the_root_is_spelt() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("data/log_data/2018/11")).unwrap();
        std::fs::write(dir.path().join("data/log_data/2018/11/a.json"), "{}").unwrap();
        let spellings = [
            dir.path().join("data/log_data"),
            dir.path().join("./data/log_data/"),
            dir.path().join("data/../data/log_data"),
        ];
        for root in spellings {
            let found = discover_dir(&root, "[LOCAL] LOG_DATA", &ProgressBar::hidden()).unwrap();
            assert_eq!(found.relative_name(&found.files[0]), "2018/11/a.json");
            assert_eq!(found.root_name().as_deref(), Some("log_data"));
        }
        let s3 = Discovered {
            root: Location::S3 {
                bucket: "b".into(),
                key: "log_data/".into(),
            },
            files: Vec::new(),
            store: None,
        };
        let object = SourceFile::found(
            Location::S3 {
                bucket: "b".into(),
                key: "log_data/2018/11/a.json".into(),
            },
            2,
            "\"etag\"".into(),
        );
        assert_eq!(s3.relative_name(&object), "2018/11/a.json");
        assert_eq!(s3.root_name().as_deref(), Some("log_data"));
    }

    #[test]
    fn content_digests_are_sha256_in_hex() {
        assert_eq!(
            content_digest(b"abc"),
            "sha256=ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn json_names_match_in_any_case() {
        assert!(is_json_name("a/b.JSON"));
        assert!(!is_json_name("a/b.json.gz"));
        assert!(!is_json_name("é"));
    }

    #[test]
    fn missing_or_empty_roots_are_errors_naming_the_setting() {
        let dir = tempfile::tempdir().unwrap();
        let err = discover_dir(
            &dir.path().join("nope"),
            "[LOCAL] LOG_DATA",
            &ProgressBar::hidden(),
        )
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("[LOCAL] LOG_DATA = "), "{err}");
        assert!(err.contains("no such file"), "{err}");
        std::fs::write(dir.path().join("readme.md"), "x").unwrap();
        let err = discover_dir(dir.path(), "[LOCAL] LOG_DATA", &ProgressBar::hidden())
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
        let found = discover_dir(dir.path(), "[LOCAL] LOG_DATA", &ProgressBar::hidden()).unwrap();
        assert_eq!(found.files.len(), 2);
        assert!(found.files[0].unreadable.is_some());
        assert!(found.files[1].unreadable.is_none());
    }

    #[cfg(unix)]
    #[test]
    fn each_directory_is_read_once_and_special_files_are_unreadable() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("a")).unwrap();
        std::fs::write(root.join("a/x.json"), "{}").unwrap();
        // A link to a sibling directory, one to the root itself, and one to a file.
        std::os::unix::fs::symlink(root.join("a"), root.join("b")).unwrap();
        std::os::unix::fs::symlink(root, root.join("a/up")).unwrap();
        std::os::unix::fs::symlink(root.join("a/x.json"), root.join("y.json")).unwrap();
        let made = std::process::Command::new("mkfifo")
            .arg(root.join("pipe.json"))
            .status()
            .unwrap();
        assert!(made.success());
        let found = discover_dir(root, "[LOCAL] LOG_DATA", &ProgressBar::hidden()).unwrap();
        let readable: Vec<_> = found
            .files
            .iter()
            .filter(|f| f.unreadable.is_none())
            .collect();
        assert_eq!(readable.len(), 1, "{:?}", found.files);
        let pipe = found
            .files
            .iter()
            .find(|f| f.location.to_string().ends_with("pipe.json"))
            .unwrap();
        assert!(
            pipe.unreadable.as_deref().unwrap().contains("FIFO"),
            "{pipe:?}"
        );
        // The FIFO is never opened: reading it fails at once.
        let read = found.read(&found.files, u64::MAX);
        assert!(read.iter().any(|r| r.is_err()));
    }

    #[cfg(unix)]
    #[test]
    fn names_that_are_not_utf8_are_unreadable_not_merged() {
        use std::os::unix::ffi::OsStrExt;
        let dir = tempfile::tempdir().unwrap();
        for byte in [0xff_u8, 0xfe] {
            let bytes = [b'x', byte, b'.', b'j', b's', b'o', b'n'];
            std::fs::write(dir.path().join(std::ffi::OsStr::from_bytes(&bytes)), "{}").unwrap();
        }
        std::fs::write(dir.path().join("ok.json"), "{}").unwrap();
        let found = discover_dir(dir.path(), "[LOCAL] LOG_DATA", &ProgressBar::hidden()).unwrap();
        let unreadable: Vec<_> = found
            .files
            .iter()
            .filter(|f| f.unreadable.is_some())
            .collect();
        assert_eq!(unreadable.len(), 2);
        assert!(unreadable[0]
            .unreadable
            .as_deref()
            .unwrap()
            .contains("UTF-8"));
    }

    #[test]
    fn a_file_changed_after_discovery_is_not_read_as_found() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.json");
        std::fs::write(&path, "{\"song_id\": \"a\"}").unwrap();
        let found = discover_dir(dir.path(), "[LOCAL] SONG_DATA", &ProgressBar::hidden()).unwrap();
        assert!(found.read(&found.files, u64::MAX)[0].is_ok());
        assert!(found.read(&found.files, 3)[0]
            .as_ref()
            .unwrap_err()
            .contains("more than the 3"));
        std::fs::write(&path, "{}").unwrap();
        let err = found.read(&found.files, u64::MAX)[0].clone().unwrap_err();
        assert!(err.contains("changed while it was read"), "{err}");
    }
}
