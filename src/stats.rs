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
    /// Read by the warehouse itself (Redshift's COPY): files and bytes are not known here.
    pub read_by_warehouse: bool,
}
