//! What loading one source did: records read, staged and rejected, files and bytes, the first
//! rejects. Both the tool's own loader ([`crate::load`]) and the engines that load staging
//! themselves (Redshift's COPY, in [`crate::warehouse`]) report it, so it lives below both.

use crate::record::Reject;

/// How many rejects a load keeps in memory to show the user (all go to `load_errors`).
pub const REJECTS_SHOWN: usize = 5;

/// What loading one source did.
#[derive(Debug, Clone, Default)]
pub struct SourceStats {
    pub source: &'static str,
    pub files: u64,
    pub bytes: u64,
    pub records: u64,
    pub staged: u64,
    pub rejected: u64,
    /// The first few rejects, in file order.
    pub first_rejects: Vec<Reject>,
    /// Files that could not be read and were skipped (`--skip-unreadable-files`), each also a
    /// row of `load_errors`; not records, so not counted in `rejected`.
    pub unreadable: Vec<Reject>,
    /// Read by the warehouse itself (Redshift's COPY): files and bytes are not known here.
    pub read_by_warehouse: bool,
    /// What each file read yielded, in load order (empty where the warehouse read every object
    /// under the prefix, so the files are not known here).
    pub yields: Vec<FileYield>,
    /// The content hash of each local file read (see [`crate::source::content_digest`]), by
    /// the name its yield gives; none for S3 objects, which their ETag identifies.
    pub digests: std::collections::HashMap<String, String>,
}

/// What one source file yielded: its records staged and rejected.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileYield {
    /// The file as `load_errors` names it.
    pub file: String,
    /// `None` where Redshift's COPY read the file: it counts the rows it loaded per COPY, not
    /// per file.
    pub staged: Option<u64>,
    pub rejected: u64,
}

/// The most memory this process has held (its peak resident set, Linux's `VmHWM`), for the
/// run's summary; `None` where the system does not say.
pub fn peak_memory_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
