//! Opening files that someone else may swap, grow or cut while a run reads them: a source tree
//! others write into, a config or CA file named by a config. A file is opened without blocking
//! (a FIFO put in its place does not hang the open), checked to be a regular file on the handle
//! that is read (not on a path looked at earlier), and read no further than a known size, so
//! that a FIFO, a device such as `/dev/zero` or a file that keeps growing can neither hang a run
//! nor exhaust its memory.

use std::fs::{File, Metadata};
use std::io::Read;
use std::path::Path;

/// Opens `path` for reading without blocking on a FIFO or device, and returns it with the
/// metadata of what was opened; anything but a regular file is refused, in words.
pub fn open_regular(path: &Path) -> std::io::Result<(File, Metadata)> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // O_NONBLOCK: the open of a FIFO returns at once instead of waiting for a writer; on
        // a regular file it changes nothing (open(2)). O_NOCTTY: a terminal device never
        // becomes the process's controlling terminal.
        options.custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY);
    }
    let file = options.open(path)?;
    let metadata = file.metadata()?;
    if !metadata.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("it is {}, not a regular file", kind_of(&metadata)),
        ));
    }
    Ok((file, metadata))
}

/// What kind of file `metadata` describes, for messages ("a FIFO").
pub fn kind_of(metadata: &Metadata) -> &'static str {
    let kind = metadata.file_type();
    if kind.is_dir() {
        return "a directory";
    }
    if kind.is_symlink() {
        return "a symbolic link";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if kind.is_fifo() {
            return "a FIFO (named pipe)";
        }
        if kind.is_char_device() {
            return "a character device";
        }
        if kind.is_block_device() {
            return "a block device";
        }
        if kind.is_socket() {
            return "a socket";
        }
    }
    if kind.is_file() {
        "a regular file"
    } else {
        "a special file"
    }
}

/// The version a local source file is known by besides its size: its modification time in
/// nanoseconds since 1970, as text; empty when the system does not say.
pub fn version_of(metadata: &Metadata) -> String {
    metadata
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|t| t.as_nanos().to_string())
        .unwrap_or_default()
}

/// Reads the whole of the small file `path` (a config, a CA bundle, a JSONPaths file): a
/// regular file of at most `limit` bytes. The error is the reason alone, for the caller to name
/// the file.
pub fn read_small(path: &Path, limit: u64) -> Result<Vec<u8>, String> {
    let (file, metadata) = open_regular(path).map_err(|e| e.to_string())?;
    if metadata.len() > limit {
        return Err(format!(
            "it is {} bytes, more than the {limit} such a file can be: is it the right file?",
            metadata.len()
        ));
    }
    let mut bytes = Vec::with_capacity(metadata.len() as usize);
    // One byte more than allowed tells a file that grew past the limit since it was opened.
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    if bytes.len() as u64 > limit {
        return Err(format!("it grew past {limit} bytes while it was read"));
    }
    Ok(bytes)
}

/// The error of a source file whose size or modification time moved between discovery and
/// the end of its read (or that held fewer bytes than found): what was read is not one
/// version of it, so none of it is loaded, and the next run reads it again.
pub fn changed_while_read(found_size: u64, now: &Metadata, read: Option<u64>) -> String {
    match read {
        Some(read) if read < found_size => format!(
            "it changed while it was read: {read} of the {found_size} bytes found were there \
             (it was cut or replaced); nothing of it was loaded, the next run reads it again"
        ),
        _ => format!(
            "it changed while it was read (found at {found_size} bytes, now {} bytes or with \
             another modification time); nothing of it was loaded, the next run reads it again",
            now.len()
        ),
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn fifos_and_devices_are_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("x.json");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        // No writer: a blocking open would never return.
        let err = open_regular(&fifo).unwrap_err().to_string();
        assert!(err.contains("a FIFO"), "{err}");
        let err = open_regular(Path::new("/dev/zero"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("character device"), "{err}");
        let err = read_small(Path::new("/dev/zero"), 1 << 20).unwrap_err();
        assert!(err.contains("not a regular file"), "{err}");
    }

    #[test]
    fn small_files_are_read_up_to_their_limit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a");
        std::fs::write(&path, b"12345").unwrap();
        assert_eq!(read_small(&path, 5).unwrap(), b"12345");
        let err = read_small(&path, 4).unwrap_err();
        assert!(err.contains("more than the 4"), "{err}");
    }
}
