//! `[WAREHOUSE]`: the engine choice, the DuckDB file and its memory, how many rejects a load
//! tolerates, strictness and the schema on a server.

use std::path::PathBuf;

use super::EngineChoice;

/// `[WAREHOUSE]`: which engine and how strict a load is.
#[derive(Debug, Clone)]
pub struct WarehouseConfig {
    pub engine: EngineChoice,
    pub duckdb_path: PathBuf,
    /// Rejected records tolerated before a load fails (Redshift's `MAXERROR`).
    pub max_errors: u64,
    /// `DUCKDB_MEMORY_LIMIT`: the memory DuckDB may hold before it spills to disk.
    pub duckdb_memory_limit: MemoryLimit,
    /// `STRICT`: an unknown section or key is an error, not a warning.
    pub strict: bool,
    /// `SCHEMA`: on PostgreSQL and Redshift, the schema that holds the warehouse's tables (made
    /// when absent), so it can share a database with other tables; `None` uses the server's
    /// current schema (`public`, usually).
    pub schema: Option<String>,
}

/// Whether `name` can be `[WAREHOUSE] SCHEMA`: a plain lower-case identifier, which both
/// PostgreSQL and Redshift keep as written (an unquoted name is folded to lower case, and
/// Redshift folds quoted ones too unless enable_case_sensitive_identifier is on), of at most
/// 63 bytes, PostgreSQL's limit (Redshift allows 127).
pub fn is_plain_schema_name(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= 63
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !name.starts_with("pg_")
}

/// A DuckDB `memory_limit` such as `512MB` or `4GiB`: a number and a unit DuckDB reads
/// (https://duckdb.org/docs/stable/configuration/overview, `memory_limit`). Checked here, so the
/// value goes into `SET memory_limit` as a plain literal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryLimit(String);

impl MemoryLimit {
    /// The least the default gives DuckDB: below it, the 1M-event transform took twice as long
    /// (256 MB), and 512 MB was the fixed default before it came from the machine.
    pub const DEFAULT_FLOOR_MIB: u64 = 512;
    /// The most the default gives DuckDB: at 10M events the transform took 58 s under 8 GB
    /// against 84 s under 512 MB, with a peak of 716 MiB either way (one run each); beyond
    /// 8 GB there is nothing left to gain and a shared machine has other users.
    pub const DEFAULT_CEILING_MIB: u64 = 8 * 1024;

    /// The default: a quarter of the memory this process may use (the machine's, or its
    /// cgroup's limit where lower, as in a container or a systemd slice), between
    /// [`Self::DEFAULT_FLOOR_MIB`] and [`Self::DEFAULT_CEILING_MIB`]. A quarter leaves the
    /// rest to the loader's own buffers (peak 547 MiB at 1M events) and to the other users of a
    /// machine; DuckDB's own default is 80%. Where the memory cannot be read, the floor.
    pub fn default_limit() -> MemoryLimit {
        Self::default_for(crate::machine::usable_memory_bytes())
    }

    /// The default for a process that may use `usable` bytes (`None`: unknown).
    pub fn default_for(usable: Option<u64>) -> MemoryLimit {
        let mib = usable.map_or(Self::DEFAULT_FLOOR_MIB, |bytes| bytes / 4 / (1024 * 1024));
        let mib = mib.clamp(Self::DEFAULT_FLOOR_MIB, Self::DEFAULT_CEILING_MIB);
        MemoryLimit(format!("{mib}MiB"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for MemoryLimit {
    type Err = ();

    fn from_str(text: &str) -> std::result::Result<Self, ()> {
        let text = text.trim();
        let split = text
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or(())?;
        let (number, unit) = text.split_at(split);
        let number: f64 = number.parse().map_err(|_| ())?;
        const UNITS: [&str; 8] = ["KB", "MB", "GB", "TB", "KiB", "MiB", "GiB", "TiB"];
        let unit = UNITS
            .iter()
            .find(|u| u.eq_ignore_ascii_case(unit.trim()))
            .ok_or(())?;
        // Positive and finite ("NaN" and "inf" parse as numbers too).
        if !number.is_finite() || number <= 0.0 {
            return Err(());
        }
        Ok(MemoryLimit(format!("{number}{unit}")))
    }
}

/// Default file name of the DuckDB warehouse, relative to the config file.
pub const DEFAULT_DUCKDB_PATH: &str = "sparkify.duckdb";
