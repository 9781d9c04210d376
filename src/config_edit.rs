//! Writes values back into `dwh.cfg` (what `iac_create` learns: the endpoint and the role ARN)
//! without disturbing anything else in the file: every other line, comment and blank is kept
//! byte for byte. The new file replaces the old atomically (temporary file in the same
//! directory, fsync, rename), so an interrupted write leaves the old file intact, and it is
//! left readable by its owner only, since it may hold a password. A `dwh.cfg` that is a
//! symbolic link is followed: the file it points to is rewritten, in its own directory, and the
//! link stays. A key set more than once is edited where the reader takes it from: the last
//! occurrence (see [`crate::config`]).

use std::fs;
use std::io::{self, Write};
use std::path::Path;

use anyhow::{bail, Context, Result};

/// One `[section] key = value` to set.
#[derive(Debug, Clone, Copy)]
pub struct Setting<'a> {
    pub section: &'a str,
    pub key: &'a str,
    pub value: &'a str,
}

/// The section a line opens, if it is a `[section]` header (read as the config reader reads
/// it: from `[` to the last `]`).
fn section_of(line: &str) -> Option<&str> {
    let trimmed = line.trim();
    let rest = trimmed.strip_prefix('[')?;
    let end = rest.rfind(']')?;
    Some(rest[..end].trim())
}

/// The key of a `key = value` (or `key: value`) line; comments and blanks have none.
fn key_of(line: &str) -> Option<&str> {
    let trimmed = line.trim_start();
    if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') {
        return None;
    }
    let end = trimmed.find(['=', ':'])?;
    Some(trimmed[..end].trim())
}

/// `text` with `setting` applied: the value of an existing key replaced in place (its key and
/// spacing kept; of a key set more than once, the last, which is the one read), a missing key
/// added at the end of the last section of that name, a missing section appended. A value
/// holding a control character (a line break would start a new line of the file) is refused.
pub fn apply(text: &str, setting: Setting) -> Result<String> {
    if let Some(c) = setting.value.chars().find(|c| c.is_control()) {
        bail!(
            "cannot write [{}] {}: the value holds the control character {:?}",
            setting.section,
            setting.key,
            c
        );
    }
    let newline = if text.contains("\r\n") { "\r\n" } else { "\n" };
    let mut lines: Vec<String> = text.split_inclusive('\n').map(String::from).collect();
    let mut in_section = false;
    let mut last_in_section: Option<usize> = None;
    let mut last_key: Option<usize> = None;
    for (index, line) in lines.iter().enumerate() {
        if let Some(section) = section_of(line) {
            in_section = section.eq_ignore_ascii_case(setting.section);
            if in_section {
                last_in_section = Some(index);
            }
            continue;
        }
        if !in_section {
            continue;
        }
        match key_of(line) {
            Some(key) if key.eq_ignore_ascii_case(setting.key) => {
                last_key = Some(index);
                last_in_section = Some(index);
            }
            Some(_) => last_in_section = Some(index),
            None => {}
        }
    }
    if let Some(index) = last_key {
        let line = &lines[index];
        let body = line.trim_end_matches(['\r', '\n']);
        let ending = &line[body.len()..];
        let split = body.find(['=', ':']).expect("a key line holds = or :");
        let (head, rest) = body.split_at(split + 1);
        // `KEY = value` stays spaced, `KEY=value` tight; an empty `KEY =` takes its spacing
        // from before the `=`.
        let spaced = rest.starts_with(' ')
            || (rest.trim().is_empty() && head.trim_end_matches(['=', ':']).ends_with(' '));
        let spacing = if spaced && !setting.value.is_empty() {
            " "
        } else {
            ""
        };
        lines[index] = format!("{head}{spacing}{}{ending}", setting.value);
        return Ok(lines.concat());
    }
    let new_line = format!("{} = {}{newline}", setting.key, setting.value);
    match last_in_section {
        Some(index) => {
            if !lines[index].ends_with('\n') {
                lines[index].push_str(newline);
            }
            lines.insert(index + 1, new_line);
        }
        None => {
            if lines.last().is_some_and(|l| !l.ends_with('\n')) {
                lines.push(newline.to_string());
            }
            lines.push(format!("{newline}[{}]{newline}{new_line}", setting.section));
        }
    }
    Ok(lines.concat())
}

/// Applies `settings` to the file at `path` and replaces it atomically, mode 0600.
pub fn update(path: &Path, settings: &[Setting]) -> Result<()> {
    update_with(path, settings, || Ok(()))
}

/// [`update`] with settings given as (section, key, value), as `iac::config_after_create`
/// and `iac::config_after_delete` give them.
pub fn update_values(path: &Path, settings: &[(&str, &str, String)]) -> Result<()> {
    let settings: Vec<Setting> = settings
        .iter()
        .map(|(section, key, value)| Setting {
            section,
            key,
            value,
        })
        .collect();
    update(path, &settings)
}

/// [`update`], with `before_rename` run between writing the new file and putting it in place;
/// an error there (as a crash would) leaves the old file as it was.
pub fn update_with(
    path: &Path,
    settings: &[Setting],
    before_rename: impl FnOnce() -> io::Result<()>,
) -> Result<()> {
    // A symbolic link is followed: the file it names is replaced, in its own directory (a
    // rename there is atomic), and the link is kept.
    let path = &fs::canonicalize(path)
        .with_context(|| format!("cannot read {} to update it", path.display()))?;
    let text = fs::read_to_string(path)
        .with_context(|| format!("cannot read {} to update it", path.display()))?;
    let mut updated = text;
    for setting in settings {
        updated = apply(&updated, *setting)
            .with_context(|| format!("{} was left as it was", path.display()))?;
    }
    let dir = crate::cli::directory_of(path);
    let write = || -> io::Result<()> {
        // Owner-only from the start: the file may hold a password.
        let mut temporary = crate::cli::file_beside(path, 0o600)?;
        temporary.write_all(updated.as_bytes())?;
        temporary.as_file().sync_all()?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(temporary.path(), fs::Permissions::from_mode(0o600))?;
        }
        before_rename()?;
        temporary.persist(path).map_err(|e| e.error)?;
        // The rename itself is made durable by syncing the directory.
        if let Ok(dir) = fs::File::open(dir) {
            let _ = dir.sync_all();
        }
        Ok(())
    };
    write().with_context(|| {
        format!(
            "cannot write {}; it was left as it was: check that its directory is writable",
            path.display()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "# top comment\n[CLUSTER]\n; how to reach it\nHOST =\nDB_NAME = dwh\n\n\
                        [IAM_ROLE]\narn='old'\n[S3]\nREGION = us-west-2";

    fn apply(text: &str, setting: Setting) -> String {
        super::apply(text, setting).unwrap()
    }

    fn set<'a>(section: &'a str, key: &'a str, value: &'a str) -> Setting<'a> {
        Setting {
            section,
            key,
            value,
        }
    }

    #[test]
    fn replaces_in_place_and_keeps_every_other_byte() {
        let out = apply(FILE, set("cluster", "host", "wg.1.us-west-2.amazonaws.com"));
        assert_eq!(
            out,
            FILE.replace("HOST =\n", "HOST = wg.1.us-west-2.amazonaws.com\n")
        );
        let out = apply(&out, set("IAM_ROLE", "ARN", "arn:aws:iam::1:role/r"));
        assert!(out.contains("\narn=arn:aws:iam::1:role/r\n"), "{out}");
        // Setting it back gives the original bytes.
        let back = apply(&out, set("CLUSTER", "HOST", ""));
        assert_eq!(back.replace("arn=arn:aws:iam::1:role/r", "arn='old'"), FILE);
    }

    #[test]
    fn adds_missing_keys_and_sections() {
        let out = apply(FILE, set("CLUSTER", "DB_PORT", "5439"));
        assert!(
            out.contains("DB_NAME = dwh\nDB_PORT = 5439\n\n[IAM_ROLE]"),
            "{out}"
        );
        let out = apply(FILE, set("S3", "ENDPOINT", "x"));
        assert!(out.ends_with("REGION = us-west-2\nENDPOINT = x\n"), "{out}");
        let out = apply(FILE, set("DWH", "DWH_REGION", "eu-west-1"));
        assert!(
            out.ends_with("REGION = us-west-2\n\n[DWH]\nDWH_REGION = eu-west-1\n"),
            "{out}"
        );
        let crlf = apply("[CLUSTER]\r\nHOST =\r\n", set("CLUSTER", "HOST", "h"));
        assert_eq!(crlf, "[CLUSTER]\r\nHOST = h\r\n");
    }

    #[cfg(unix)]
    #[test]
    fn update_is_atomic_and_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dwh.cfg");
        fs::write(&path, FILE).unwrap();
        let settings = [set("CLUSTER", "HOST", "new-host")];
        let err = update_with(&path, &settings, || Err(io::Error::other("crash"))).unwrap_err();
        assert!(format!("{err:#}").contains("left as it was"), "{err:#}");
        assert_eq!(fs::read_to_string(&path).unwrap(), FILE);
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            1,
            "temporary file left"
        );
        update(&path, &settings).unwrap();
        assert!(fs::read_to_string(&path)
            .unwrap()
            .contains("HOST = new-host\n"));
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn edits_the_last_occurrence_which_is_the_one_read() {
        let text = "[CLUSTER]\nHOST = a\n[S3]\nX = 1\n[cluster]\nhost = b\nDB_NAME = d\n";
        let out = apply(text, set("CLUSTER", "HOST", "c"));
        assert_eq!(out, text.replace("host = b", "host = c"));
        let out = apply(text, set("CLUSTER", "DB_PORT", "5439"));
        assert!(out.ends_with("DB_NAME = d\nDB_PORT = 5439\n"), "{out}");
        let config = crate::config::Config::parse(&out, Path::new("x"), Path::new("/")).unwrap();
        assert_eq!(config.cluster.host, "b");
        assert_eq!(config.cluster.db_port, 5439);
    }

    #[test]
    fn refuses_control_characters() {
        let err = super::apply(FILE, set("CLUSTER", "HOST", "h\nDB_PASSWORD = x"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("[CLUSTER] HOST") && err.contains("control"),
            "{err}"
        );
    }

    #[cfg(unix)]
    #[test]
    fn follows_a_symbolic_link_and_keeps_it() {
        let dir = tempfile::tempdir().unwrap();
        let real_dir = dir.path().join("private");
        fs::create_dir(&real_dir).unwrap();
        let target = real_dir.join("dwh.cfg");
        fs::write(&target, FILE).unwrap();
        let link = dir.path().join("dwh.cfg");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        update(&link, &[set("CLUSTER", "HOST", "via-link")]).unwrap();
        assert!(fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert!(fs::read_to_string(&target)
            .unwrap()
            .contains("HOST = via-link\n"));
        assert_eq!(
            fs::read_dir(&real_dir).unwrap().count(),
            1,
            "temporary file left"
        );
    }
}
