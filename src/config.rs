//! `dwh.cfg`: the one file through which every step learns where the warehouse and the sources
//! are, as in the original project. This module reads it once into typed values, resolves paths
//! against the file's own directory, and turns every missing or malformed key into an error that
//! names the section and key to change.

use std::fmt;
use std::path::{Path, PathBuf};

use std::collections::HashMap;

use anyhow::{anyhow, bail, Result};
use configparser::ini::Ini;

/// A value that must never be printed: passwords and secret keys. `Debug` and `Display` show
/// `***`; the value itself is reached only through [`Secret::expose`].
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// A secret, which from now on the log never shows either (see [`crate::redact`]).
    pub fn new(value: impl Into<String>) -> Self {
        let value = value.into();
        crate::redact::register(&value);
        Secret(value)
    }

    /// The secret itself, for the one place that hands it to a driver.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Which warehouse the steps talk to (`[WAREHOUSE] ENGINE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineChoice {
    /// DuckDB when `[CLUSTER] HOST` is empty, a server engine otherwise.
    Auto,
    DuckDb,
    Postgres,
    Redshift,
    RedshiftData,
}

impl EngineChoice {
    pub const NAMES: &'static str = "auto, duckdb, postgres, redshift, redshift-data";

    /// Whether this is a Redshift engine (over the wire or the Data API), whose COPY reads the
    /// sources from S3 itself.
    pub fn is_redshift(self) -> bool {
        matches!(self, EngineChoice::Redshift | EngineChoice::RedshiftData)
    }

    pub fn name(self) -> &'static str {
        match self {
            EngineChoice::Auto => "auto",
            EngineChoice::DuckDb => "duckdb",
            EngineChoice::Postgres => "postgres",
            EngineChoice::Redshift => "redshift",
            EngineChoice::RedshiftData => "redshift-data",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Some(match value.trim().to_ascii_lowercase().as_str() {
            "" | "auto" => EngineChoice::Auto,
            "duckdb" => EngineChoice::DuckDb,
            "postgres" | "postgresql" => EngineChoice::Postgres,
            "redshift" => EngineChoice::Redshift,
            "redshift-data" => EngineChoice::RedshiftData,
            _ => return None,
        })
    }
}

/// `[CLUSTER] SSLMODE`: whether the connection to a server is encrypted and how its certificate
/// is checked, with libpq's names and meanings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SslMode {
    /// Plain TCP.
    Disable,
    /// TLS when the server offers it, plain otherwise; the certificate is not checked.
    Prefer,
    /// TLS always; the certificate is not checked.
    Require,
    /// TLS; the certificate chain must lead to a trusted root, whatever name it carries.
    VerifyCa,
    /// TLS; trusted chain and the certificate names the host.
    VerifyFull,
}

impl SslMode {
    pub const NAMES: &'static str = "disable, prefer, require, verify-ca, verify-full";

    pub fn parse(value: &str) -> Option<Self> {
        Some(match value.trim().to_ascii_lowercase().as_str() {
            "disable" => SslMode::Disable,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

/// `[CLUSTER]`: a warehouse reached over the network.
#[derive(Debug, Clone, Default)]
pub struct ClusterConfig {
    pub host: String,
    pub db_name: String,
    pub db_user: String,
    pub db_password: Secret,
    pub db_port: u16,
    /// `SSLMODE`; `None` leaves the choice to the engine (prefer on PostgreSQL, verify-full on
    /// Redshift).
    pub sslmode: Option<SslMode>,
    /// `SSLROOTCERT`: a PEM file of trusted roots used instead of the bundled Mozilla roots.
    pub sslrootcert: Option<PathBuf>,
    /// `CONNECT_TIMEOUT`: how long connecting (TCP, TLS and the server's greeting) may take.
    pub connect_timeout: std::time::Duration,
    /// `REQUIRE_AUTH`: the ways of proving the password the connection accepts; `None` lets
    /// the channel decide (see [`crate::pg_auth`]).
    pub require_auth: Option<Vec<crate::pg_auth::Method>>,
}

/// How long connecting to PostgreSQL or Redshift may take unless `[CLUSTER] CONNECT_TIMEOUT`
/// says otherwise.
pub const DEFAULT_CONNECT_TIMEOUT_SECONDS: u64 = 10;

/// The daily compute limit on a new workgroup unless `[DWH] DWH_USAGE_LIMIT_RPU_HOURS` says
/// otherwise: 24 RPU-hours, three hours of queries a day at the default 8 RPU.
pub const DEFAULT_USAGE_LIMIT_RPU_HOURS: u64 = 24;

/// The longest `CONNECT_TIMEOUT` or `ATTEMPT_TIMEOUT`: an hour. Larger values mean "never" in
/// practice, and unbounded ones overflow the clock arithmetic they feed.
pub const MAX_TIMEOUT_SECONDS: u64 = 3600;

/// The most `MAX_ERRORS` may be: a billion rejected records, far beyond any load, so that no
/// count derived from it (Redshift's MAXERROR is one more) can overflow.
pub const MAX_ERRORS_LIMIT: u64 = 1_000_000_000;

impl ClusterConfig {
    /// Whether `HOST` is a provisioned Redshift cluster's endpoint
    /// (`name.id.region.redshift.amazonaws.com`, or `.amazonaws.com.cn` in China), which keeps
    /// the STL system tables. Anything else (a Serverless endpoint, a VPC endpoint, a custom
    /// domain) may be Serverless, which refuses queries of them.
    pub fn is_provisioned_redshift(&self) -> bool {
        self.host_ends_with_any(&[".redshift.amazonaws.com", ".redshift.amazonaws.com.cn"])
    }

    /// Whether `HOST` is a Redshift endpoint by its name: provisioned
    /// (`*.redshift.amazonaws.com`) or Serverless (`*.redshift-serverless.amazonaws.com`), in
    /// China under `.amazonaws.com.cn`, with or without the trailing dot of a fully qualified
    /// name (https://docs.aws.amazon.com/general/latest/gr/redshift-service.html). A custom
    /// domain or a VPC endpoint is not recognised: `ENGINE = redshift` says it.
    pub fn is_redshift_endpoint(&self) -> bool {
        self.host_ends_with_any(&[
            ".redshift.amazonaws.com",
            ".redshift.amazonaws.com.cn",
            ".redshift-serverless.amazonaws.com",
            ".redshift-serverless.amazonaws.com.cn",
        ])
    }

    fn host_ends_with_any(&self, suffixes: &[&str]) -> bool {
        let host = self.host.trim().trim_end_matches('.').to_ascii_lowercase();
        suffixes.iter().any(|suffix| host.ends_with(suffix))
    }
}

/// Where one source input is: a local path or an `s3://bucket/prefix` URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    File(PathBuf),
    S3 { bucket: String, key: String },
}

impl Location {
    /// `s3://bucket/key` as an S3 location, anything else as a path relative to `base`.
    pub fn parse(value: &str, base: &Path) -> Result<Location, String> {
        let Some(rest) = value.strip_prefix("s3://") else {
            return Ok(Location::File(base.join(value)));
        };
        let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err("an s3:// URI needs a bucket: s3://bucket/prefix".into());
        }
        Ok(Location::S3 {
            bucket: bucket.to_string(),
            key: key.to_string(),
        })
    }
}

impl Location {
    /// A source directory: an S3 prefix naming one ends in `/`, so `s3://b/song_data` never
    /// reads `s3://b/song_data_old/` (a COPY reads every object whose key starts with its
    /// prefix: https://docs.aws.amazon.com/redshift/latest/dg/copy-parameters-data-source-s3.html).
    /// A bucket's whole contents (an empty key), a key naming one `.json` object, and local
    /// paths are left as they are.
    pub fn into_directory(self) -> Location {
        match self {
            Location::S3 { bucket, key }
                if !key.is_empty()
                    && !key.ends_with('/')
                    && !key.to_ascii_lowercase().ends_with(".json") =>
            {
                Location::S3 {
                    bucket,
                    key: format!("{key}/"),
                }
            }
            other => other,
        }
    }

    /// `name` inside this directory: appended to an S3 prefix (which ends in `/`, see
    /// [`Location::into_directory`]), joined to a local path.
    pub fn child(&self, name: &str) -> Location {
        match self {
            Location::File(path) => Location::File(path.join(name)),
            Location::S3 { bucket, key } => Location::S3 {
                bucket: bucket.clone(),
                key: format!("{key}{name}"),
            },
        }
    }

    /// Whether this location lies under the directory `dir`: in its bucket with a key that
    /// starts with its prefix, or at a path below it.
    pub fn is_under(&self, dir: &Location) -> bool {
        match (self, dir) {
            (Location::File(path), Location::File(dir)) => path.starts_with(dir),
            (
                Location::S3 { bucket, key },
                Location::S3 {
                    bucket: dir_bucket,
                    key: prefix,
                },
            ) => bucket == dir_bucket && key.starts_with(prefix.as_str()),
            _ => false,
        }
    }

    /// What files are sorted by: the path, or the key.
    pub fn cmp_key(&self) -> &std::ffi::OsStr {
        match self {
            Location::File(path) => path.as_os_str(),
            Location::S3 { key, .. } => key.as_ref(),
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::File(path) => write!(f, "{}", path.display()),
            Location::S3 { bucket, key } => write!(f, "s3://{bucket}/{key}"),
        }
    }
}

/// Where the three source inputs are: two trees of `.json` files and the JSONPaths file that
/// maps log records to staging columns. `section` is where they were configured, for messages.
#[derive(Debug, Clone)]
pub struct Sources {
    pub section: &'static str,
    pub log_data: Location,
    pub song_data: Location,
    pub log_jsonpath: Location,
}

/// `[S3]`: the sources as `s3://` URIs: read by Redshift's own COPY, and by the local engines
/// when there is no `[LOCAL]` section.
#[derive(Debug, Clone, Default)]
pub struct S3Config {
    pub log_data: String,
    pub song_data: String,
    pub log_jsonpath: String,
    /// The region of the source bucket.
    pub region: String,
    /// An S3-compatible endpoint (MinIO, Ceph, R2), addressed path-style; `AWS_ENDPOINT_URL`
    /// wins over it.
    pub endpoint: Option<String>,
    /// Seconds after which a request attempt is abandoned and retried (`ATTEMPT_TIMEOUT`,
    /// default 30).
    pub attempt_timeout_seconds: u64,
    /// `MANIFEST_PREFIX`: an `s3://` prefix where etl writes the manifests Redshift's COPY
    /// reads when a source prefix holds objects other than `.json` data.
    pub manifest_prefix: String,
    /// `COALESCE` (or `etl --coalesce`): Redshift's COPY reads the small `.json` objects of each
    /// source coalesced into a few large ones under `MANIFEST_PREFIX` (see
    /// `warehouse::coalesce`).
    pub coalesce: bool,
}

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
    /// The default: at 1M events, peak memory about 530 MiB and 3% slower than DuckDB's own
    /// default (80% of the machine's memory); see `sql::duckdb_session`.
    pub fn default_limit() -> MemoryLimit {
        MemoryLimit("512MB".into())
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

/// `[AWS]`: static keys, when the user keeps them here rather than in the AWS default chain.
/// Both are masked in `Debug`: the key id names the account's user.
#[derive(Debug, Clone, Default)]
pub struct AwsKeys {
    pub key: Secret,
    pub secret: Secret,
}

/// `[DWH]`: the Redshift Serverless resources `iac_create` provisions and `iac_delete` removes,
/// which the redshift-data engine also addresses.
#[derive(Debug, Clone, Default)]
pub struct DwhConfig {
    pub region: String,
    pub namespace: String,
    pub workgroup: String,
    pub iam_role_name: String,
    /// Redshift Processing Units of the workgroup (`DWH_BASE_CAPACITY`, default 8; which values
    /// Redshift takes is checked by `iac::capacity_problem`).
    pub base_capacity: i32,
    /// The most RPUs the workgroup may scale to (`DWH_MAX_CAPACITY`); `None`: the base
    /// capacity, so that no query costs more per second than the base does.
    pub max_capacity: Option<i32>,
    /// The daily compute limit `iac_create` puts on the workgroup, in RPU-hours
    /// (`DWH_USAGE_LIMIT_RPU_HOURS`, default [`DEFAULT_USAGE_LIMIT_RPU_HOURS`]; 0: none).
    pub usage_limit_rpu_hours: i64,
    /// A provisioned cluster for the redshift-data engine (`DWH_CLUSTER_IDENTIFIER`), instead of
    /// the workgroup.
    pub cluster_identifier: String,
    /// The id `iac_create` tags its resources with and writes here (`DWH_INSTANCE_ID`); empty
    /// until then. `iac_delete` deletes only what carries it (see `iac::owner`).
    pub instance_id: String,
}

/// Everything the steps read from `dwh.cfg`.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file this was read from, for messages.
    pub path: PathBuf,
    pub cluster: ClusterConfig,
    pub iam_role_arn: String,
    pub s3: S3Config,
    /// `[LOCAL]`, when the file has that section.
    pub local: Option<Sources>,
    pub warehouse: WarehouseConfig,
    pub aws: AwsKeys,
    pub dwh: DwhConfig,
    /// Sections and keys of the file that no part of the toolkit reads (typos, leftovers),
    /// each with the known name closest to it.
    pub unknown: Vec<UnknownSetting>,
}

/// Every section and key the toolkit reads: anything else in the file is a typo or a leftover,
/// which is ignored (and said so: see [`UnknownSetting`]).
pub const KNOWN_SETTINGS: &[(&str, &[&str])] = &[
    (
        "CLUSTER",
        &[
            "HOST",
            "DB_NAME",
            "DB_USER",
            "DB_PASSWORD",
            "DB_PORT",
            "SSLMODE",
            "SSLROOTCERT",
            "CONNECT_TIMEOUT",
            "REQUIRE_AUTH",
        ],
    ),
    ("IAM_ROLE", &["ARN"]),
    (
        "S3",
        &[
            "LOG_DATA",
            "LOG_JSONPATH",
            "SONG_DATA",
            "REGION",
            "ENDPOINT",
            "ATTEMPT_TIMEOUT",
            "MANIFEST_PREFIX",
            "COALESCE",
        ],
    ),
    ("LOCAL", &["LOG_DATA", "SONG_DATA", "LOG_JSONPATH"]),
    (
        "WAREHOUSE",
        &[
            "ENGINE",
            "DUCKDB_PATH",
            "DUCKDB_MEMORY_LIMIT",
            "MAX_ERRORS",
            "STRICT",
            "SCHEMA",
        ],
    ),
    ("AWS", &["KEY", "SECRET"]),
    (
        "DWH",
        &[
            "DWH_REGION",
            "DWH_NAMESPACE_NAME",
            "DWH_WORKGROUP_NAME",
            "DWH_IAM_ROLE_NAME",
            "DWH_BASE_CAPACITY",
            "DWH_MAX_CAPACITY",
            "DWH_USAGE_LIMIT_RPU_HOURS",
            "DWH_CLUSTER_IDENTIFIER",
            "DWH_INSTANCE_ID",
        ],
    ),
];

/// A section or key of the config file that nothing reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownSetting {
    /// The section, upper case.
    pub section: String,
    /// The key, upper case; `None` for a whole unknown section.
    pub key: Option<String>,
    /// The known name closest to it, when one is close enough to be the one meant.
    pub closest: Option<&'static str>,
    /// The line of the file it is on, when known.
    pub line: Option<usize>,
    /// Whether the key may be printed: only a plausible setting name is (see
    /// [`plausible_key`]); anything else may be a password that lost its line.
    pub shown: bool,
}

impl UnknownSetting {
    /// What it is and the name meant, `then` between them: ", ignored" for the warning of a run
    /// that goes on, nothing for the error of one that stops (`--strict`).
    fn describe(&self, then: &str) -> String {
        match (&self.key, self.closest) {
            (None, Some(closest)) => format!(
                "unknown section [{}]{then}: did you mean [{closest}]?",
                self.section
            ),
            (None, None) => format!(
                "unknown section [{}]{then}: the sections are {}",
                self.section,
                KNOWN_SETTINGS
                    .iter()
                    .map(|(s, _)| format!("[{s}]"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            (Some(key), Some(closest)) => format!(
                "unknown key {} in [{}]{then}: did you mean {closest}?",
                self.key_shown(key),
                self.section
            ),
            (Some(key), None) => format!(
                "unknown key {} in [{}]{then}: its keys are {}",
                self.key_shown(key),
                self.section,
                known_keys(&self.section).join(", ")
            ),
        }
    }

    /// The key as a message shows it: its name when plausible, else only where it is.
    fn key_shown(&self, key: &str) -> String {
        match (self.shown, self.line) {
            (true, _) => key.to_string(),
            (false, Some(line)) => format!("on line {line} (not shown: not a setting's name)"),
            (false, None) => "(not shown: not a setting's name)".to_string(),
        }
    }

    /// As an error that stops the run (`--strict`): nothing is ignored.
    pub fn as_error(&self) -> String {
        self.describe("")
    }
}

/// As the warning of a run that goes on without it.
impl std::fmt::Display for UnknownSetting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe(", ignored"))
    }
}

fn known_keys(section: &str) -> &'static [&'static str] {
    KNOWN_SETTINGS
        .iter()
        .find(|(s, _)| s.eq_ignore_ascii_case(section))
        .map_or(&[], |(_, keys)| keys)
}

/// The name of `names` closest to `typed` (letters swapped, dropped, added or changed), when
/// it is close enough to be the one meant: at most a third of its letters differ.
fn closest(typed: &str, names: &[&'static str]) -> Option<&'static str> {
    let typed = typed.to_ascii_uppercase();
    names
        .iter()
        .map(|name| (strsim::osa_distance(&typed, name), *name))
        .filter(|(distance, name)| *distance <= (name.len() / 3).max(1))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, name)| name)
}

/// Whether `typed` (a key as written in the file) looks like a setting's name, so that a
/// message may print it: upper-case letters, digits and underscores, starting with a letter,
/// at most 40 long (every known key is such), or close to a known key. Anything else may be
/// a value that lost its line, a password among them.
fn plausible_key(typed: &str, closest: Option<&str>) -> bool {
    closest.is_some()
        || (typed.len() <= 40
            && typed.starts_with(|c: char| c.is_ascii_uppercase())
            && typed
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_'))
}

/// Every section and key of `file` that [`KNOWN_SETTINGS`] does not hold, in file order.
fn unknown_settings(file: &IniFile) -> Vec<UnknownSetting> {
    let sections: Vec<&'static str> = KNOWN_SETTINGS.iter().map(|(s, _)| *s).collect();
    let mut unknown = Vec::new();
    for (section, keys) in &file.order {
        let upper = section.to_ascii_uppercase();
        // configparser's section for keys before any header; empty unless such keys exist.
        if section == "default" && keys.is_empty() {
            continue;
        }
        if !sections.contains(&upper.as_str()) {
            unknown.push(UnknownSetting {
                closest: closest(&upper, &sections),
                section: upper,
                key: None,
                line: None,
                shown: true,
            });
            continue;
        }
        let known = known_keys(&upper);
        for key in keys {
            let (line, typed) = file
                .lines
                .get(&(section.clone(), key.clone()))
                .cloned()
                .unwrap_or((0, String::new()));
            let key = key.to_ascii_uppercase();
            if !known.contains(&key.as_str()) {
                let near = closest(&key, known);
                unknown.push(UnknownSetting {
                    section: upper.clone(),
                    closest: near,
                    shown: plausible_key(&typed, near),
                    line: (line > 0).then_some(line),
                    key: Some(key),
                });
            }
        }
    }
    unknown
}

/// Whether `id` can be an instance id (`[DWH] DWH_INSTANCE_ID`, the tag value iac_create made): 1 to 64 lowercase hex
/// digits, letters or hyphens, so a hand-edited value is still a plain tag value.
pub fn is_instance_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Default file name of the DuckDB warehouse, relative to the config file.
pub const DEFAULT_DUCKDB_PATH: &str = "sparkify.duckdb";

impl Config {
    /// Reads and checks the config file at `path`.
    pub fn load(path: &Path) -> Result<Config> {
        if std::fs::symlink_metadata(path).is_err() {
            bail!(
                "there is no config file {}: copy the clone's dwh.cfg here, or write one whose \
                 [LOCAL] section names LOG_DATA, SONG_DATA and LOG_JSONPATH (`gen_data --out DIR` \
                 prints those lines for a dataset it writes), or pass --config PATH",
                path.display()
            );
        }
        // A config is a few kilobytes; 1 MiB bounds a device or FIFO passed as --config.
        let text = crate::files::read_small(path, 1 << 20)
            .and_then(|bytes| String::from_utf8(bytes).map_err(|_| "it is not UTF-8 text".into()))
            .map_err(|e| {
                anyhow!(
                    "cannot read config file {}: {e}: pass --config PATH to use another file",
                    path.display()
                )
            })?;
        let base = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let config = Self::parse(&text, path, base)?;
        if let Some(readers) = config.secrets_readable_by_others() {
            tracing::warn!(
                "{} holds a password or secret key and is readable by {readers}: make it \
                 private with `chmod 600 {}`",
                path.display(),
                path.display()
            );
        }
        Ok(config)
    }

    /// Who besides the owner may read the file, when it holds a non-empty `DB_PASSWORD` or
    /// `[AWS] SECRET`: "group", "others" or "group and others".
    fn secrets_readable_by_others(&self) -> Option<&'static str> {
        if self.cluster.db_password.is_empty() && self.aws.secret.is_empty() {
            return None;
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&self.path).ok()?.permissions().mode();
            match (mode & 0o040 != 0, mode & 0o004 != 0) {
                (true, true) => Some("group and others"),
                (true, false) => Some("group"),
                (false, true) => Some("others"),
                (false, false) => None,
            }
        }
        #[cfg(not(unix))]
        None
    }

    /// Parses config text; relative paths in it are taken from `base`.
    pub fn parse(text: &str, path: &Path, base: &Path) -> Result<Config> {
        let file = IniFile::read(text, path, base)?;

        let cluster = ClusterConfig {
            host: file.get("CLUSTER", "HOST").unwrap_or_default(),
            db_name: file.get("CLUSTER", "DB_NAME").unwrap_or_default(),
            db_user: file.get("CLUSTER", "DB_USER").unwrap_or_default(),
            db_password: Secret::new(file.get("CLUSTER", "DB_PASSWORD").unwrap_or_default()),
            db_port: file.parse_or("CLUSTER", "DB_PORT", 5439, "a TCP port such as 5439")?,
            sslmode: match file.get("CLUSTER", "SSLMODE") {
                None => None,
                Some(text) => Some(SslMode::parse(&text).ok_or_else(|| {
                    file.key_error(
                        "CLUSTER",
                        "SSLMODE",
                        &text,
                        &format!("one of {}", SslMode::NAMES),
                    )
                })?),
            },
            sslrootcert: file.path("CLUSTER", "SSLROOTCERT"),
            connect_timeout: std::time::Duration::from_secs(file.bounded(
                "CLUSTER",
                "CONNECT_TIMEOUT",
                DEFAULT_CONNECT_TIMEOUT_SECONDS,
                1..=MAX_TIMEOUT_SECONDS,
                "seconds",
            )?),
            require_auth: match file.get("CLUSTER", "REQUIRE_AUTH") {
                None => None,
                Some(text) => Some(crate::pg_auth::parse_methods(&text).ok_or_else(|| {
                    file.key_error(
                        "CLUSTER",
                        "REQUIRE_AUTH",
                        &text,
                        &format!(
                            "the methods the connection may answer, separated by commas, of {}",
                            crate::pg_auth::METHOD_NAMES
                        ),
                    )
                })?),
            },
        };

        let unknown = unknown_settings(&file);
        if !file.has_section("LOCAL") {
            // Without [LOCAL] the sources are [S3]'s (the public bucket, say): a misspelt
            // [LOCAL] would switch the load there in silence.
            if let Some(typo) = unknown
                .iter()
                .find(|u| u.key.is_none() && u.closest == Some("LOCAL"))
            {
                bail!(
                    "{}: there is no [LOCAL] section but there is [{}]: did you mean [LOCAL]? \
                     Without [LOCAL] the sources would be [S3]'s; rename the section, or remove \
                     it to load from [S3]",
                    path.display(),
                    typo.section
                );
            }
        }
        let local = if file.has_section("LOCAL") {
            Some(Sources {
                section: "LOCAL",
                log_data: file
                    .required_location("LOCAL", "LOG_DATA")?
                    .into_directory(),
                song_data: file
                    .required_location("LOCAL", "SONG_DATA")?
                    .into_directory(),
                log_jsonpath: file.required_location("LOCAL", "LOG_JSONPATH")?,
            })
        } else {
            None
        };

        let engine_text = file.get("WAREHOUSE", "ENGINE").unwrap_or_default();
        let engine = EngineChoice::parse(&engine_text).ok_or_else(|| {
            file.key_error(
                "WAREHOUSE",
                "ENGINE",
                &engine_text,
                &format!("one of {}", EngineChoice::NAMES),
            )
        })?;
        let warehouse =
            WarehouseConfig {
                engine,
                duckdb_path: file
                    .path("WAREHOUSE", "DUCKDB_PATH")
                    .unwrap_or_else(|| base.join(DEFAULT_DUCKDB_PATH)),
                max_errors: file.bounded(
                    "WAREHOUSE",
                    "MAX_ERRORS",
                    0,
                    0..=MAX_ERRORS_LIMIT,
                    "rejected records",
                )?,
                duckdb_memory_limit: file.parse_or(
                    "WAREHOUSE",
                    "DUCKDB_MEMORY_LIMIT",
                    MemoryLimit::default_limit(),
                    "an amount of memory such as 512MB or 4GB",
                )?,
                strict: file.boolean("WAREHOUSE", "STRICT", false)?,
                schema: match file.get("WAREHOUSE", "SCHEMA") {
                    None => None,
                    Some(name) if is_plain_schema_name(&name) => Some(name),
                    Some(name) => return Err(file.key_error(
                        "WAREHOUSE",
                        "SCHEMA",
                        &name,
                        "a schema name of lower-case letters, digits and _ (not starting with a \
                         digit or pg_), such as sparkify",
                    )),
                },
            };

        Ok(Config {
            path: path.to_path_buf(),
            cluster,
            iam_role_arn: file.get("IAM_ROLE", "ARN").unwrap_or_default(),
            s3: S3Config {
                log_data: file.get("S3", "LOG_DATA").unwrap_or_default(),
                song_data: file.get("S3", "SONG_DATA").unwrap_or_default(),
                log_jsonpath: file.get("S3", "LOG_JSONPATH").unwrap_or_default(),
                region: file.get("S3", "REGION").unwrap_or_default(),
                endpoint: file.get("S3", "ENDPOINT"),
                attempt_timeout_seconds: file.bounded(
                    "S3",
                    "ATTEMPT_TIMEOUT",
                    30,
                    1..=MAX_TIMEOUT_SECONDS,
                    "seconds",
                )?,
                manifest_prefix: file.get("S3", "MANIFEST_PREFIX").unwrap_or_default(),
                coalesce: file.boolean("S3", "COALESCE", false)?,
            },
            local,
            warehouse,
            unknown,
            aws: AwsKeys {
                key: Secret::new(file.get("AWS", "KEY").unwrap_or_default()),
                secret: Secret::new(file.get("AWS", "SECRET").unwrap_or_default()),
            },
            dwh: DwhConfig {
                region: file.get("DWH", "DWH_REGION").unwrap_or_default(),
                namespace: file
                    .get("DWH", "DWH_NAMESPACE_NAME")
                    .unwrap_or_else(|| "sparkify-namespace".into()),
                workgroup: file
                    .get("DWH", "DWH_WORKGROUP_NAME")
                    .unwrap_or_else(|| "sparkify-workgroup".into()),
                iam_role_name: file
                    .get("DWH", "DWH_IAM_ROLE_NAME")
                    .unwrap_or_else(|| "sparkify-redshift-s3-read".into()),
                base_capacity: file.parse_or(
                    "DWH",
                    "DWH_BASE_CAPACITY",
                    8,
                    "Redshift Processing Units: 4, or 8 to 512 in steps of 8",
                )?,
                max_capacity: match file.get("DWH", "DWH_MAX_CAPACITY") {
                    None => None,
                    Some(text) => Some(text.parse().map_err(|_| {
                        file.key_error(
                            "DWH",
                            "DWH_MAX_CAPACITY",
                            &text,
                            "Redshift Processing Units, at least DWH_BASE_CAPACITY",
                        )
                    })?),
                },
                usage_limit_rpu_hours: file.bounded(
                    "DWH",
                    "DWH_USAGE_LIMIT_RPU_HOURS",
                    DEFAULT_USAGE_LIMIT_RPU_HOURS,
                    0..=1_000_000,
                    "RPU-hours a day (0: no limit)",
                )? as i64,
                cluster_identifier: file
                    .get("DWH", "DWH_CLUSTER_IDENTIFIER")
                    .unwrap_or_default(),
                instance_id: match file.get("DWH", "DWH_INSTANCE_ID") {
                    None => String::new(),
                    Some(id) if is_instance_id(&id) => id,
                    Some(id) => {
                        return Err(file.key_error(
                            "DWH",
                            "DWH_INSTANCE_ID",
                            &id,
                            "the id iac_create wrote (lower-case letters, digits and hyphens), \
                             or nothing before the first iac_create",
                        ))
                    }
                },
            },
        })
    }

    /// The engine to use: an explicit `[WAREHOUSE] ENGINE` (or `--engine`), else DuckDB when
    /// `[CLUSTER] HOST` is empty, Redshift when it is a Redshift endpoint, PostgreSQL otherwise.
    pub fn engine(&self) -> EngineChoice {
        match self.warehouse.engine {
            EngineChoice::Auto if self.cluster.host.trim().is_empty() => EngineChoice::DuckDb,
            EngineChoice::Auto if self.cluster.is_redshift_endpoint() => EngineChoice::Redshift,
            EngineChoice::Auto => EngineChoice::Postgres,
            chosen => chosen,
        }
    }

    /// The sources the chosen engine loads: `[S3]` for Redshift, whose COPY reads them itself,
    /// [`Config::sources`] for the local engines.
    pub fn engine_sources(&self) -> Result<Sources> {
        if self.engine().is_redshift() {
            self.s3_sources()
        } else {
            self.sources()
        }
    }

    /// The sources the tool reads itself (the local engines): `[LOCAL]` when the file has
    /// that section, else the `s3://` URIs of `[S3]`.
    pub fn sources(&self) -> Result<Sources> {
        match &self.local {
            Some(local) => Ok(local.clone()),
            None => self.s3_sources(),
        }
    }

    /// The `[S3]` sources (what Redshift's COPY reads), each checked to be an `s3://` URI.
    pub fn s3_sources(&self) -> Result<Sources> {
        let s3 = &self.s3;
        if self.local.is_none()
            && [&s3.log_data, &s3.song_data, &s3.log_jsonpath]
                .iter()
                .all(|v| v.trim().is_empty())
        {
            bail!(
                "{}: no sources: there is no [LOCAL] section and [S3] has no LOG_DATA, \
                 SONG_DATA or LOG_JSONPATH: add [LOCAL] with the three for files on this \
                 machine, or set them in [S3] as s3:// URIs (see the shipped dwh.cfg)",
                self.path.display()
            );
        }
        let s3 = |key: &str, value: &str| -> Result<Location> {
            match Location::parse(value, Path::new("")) {
                Ok(location @ Location::S3 { .. }) => Ok(location),
                _ => bail!(
                    "{}: [S3] {key} = {} is not an s3:// URI: set it to \
                     s3://bucket/prefix{}",
                    self.path.display(),
                    shown_value(value),
                    if self.local.is_none() {
                        ", or add [LOCAL] with LOG_DATA, SONG_DATA and LOG_JSONPATH for the \
                         local engines"
                    } else {
                        ""
                    }
                ),
            }
        };
        Ok(Sources {
            section: "S3",
            log_data: s3("LOG_DATA", &self.s3.log_data)?.into_directory(),
            song_data: s3("SONG_DATA", &self.s3.song_data)?.into_directory(),
            log_jsonpath: s3("LOG_JSONPATH", &self.s3.log_jsonpath)?,
        })
    }
}

impl Config {
    /// `[S3] MANIFEST_PREFIX` as a directory prefix, when set; it must be an `s3://` URI.
    pub fn manifest_prefix(&self) -> Result<Option<Location>> {
        let value = self.s3.manifest_prefix.as_str();
        if value.is_empty() {
            return Ok(None);
        }
        match Location::parse(value, Path::new("")) {
            Ok(location @ Location::S3 { .. }) => Ok(Some(location.into_directory())),
            _ => bail!(
                "{}: [S3] MANIFEST_PREFIX = {} is not an s3:// URI: set it to \
                 s3://bucket/prefix/ (a place you may write and the IAM role may read)",
                self.path.display(),
                shown_value(value)
            ),
        }
    }
}

/// Keys whose values are never shown, in errors or anywhere else.
const SECRET_KEYS: [(&str, &str); 3] = [
    ("CLUSTER", "DB_PASSWORD"),
    ("AWS", "KEY"),
    ("AWS", "SECRET"),
];

fn is_secret(section: &str, key: &str) -> bool {
    SECRET_KEYS
        .iter()
        .any(|(s, k)| s.eq_ignore_ascii_case(section) && k.eq_ignore_ascii_case(key))
}

/// A config value as errors show it: escaped (no control character reaches the terminal) and
/// cut to a readable length.
pub fn shown_value(value: &str) -> String {
    const SHOWN_CHARS: usize = 60;
    let mut cut: String = value.chars().take(SHOWN_CHARS).collect();
    if cut.len() < value.len() {
        cut.push_str("...");
    }
    format!("{cut:?}")
}

/// The parsed file, read the way Python's configparser (which the original `dwh.cfg` was written
/// for) reads it, through the `configparser` crate: `key = value` or `key: value`, `#` and `;`
/// comment lines, no inline comments (a `#` in a password is part of it), section and key
/// names case-insensitive, an indented line continues the value above it, the last of repeated
/// keys wins. One pair of surrounding quotes is stripped here, as the original project's values
/// were quoted. A value that continues onto another line or holds an unbalanced quote is refused
/// naming its section and key, never the value: it is how a forgotten quote swallows the lines
/// after it (a password among them).
struct IniFile<'a> {
    /// Section (lower case) → key (lower case) → value, quotes stripped.
    sections: HashMap<String, HashMap<String, String>>,
    /// The sections (lower case) and their keys (lower case), sorted, for
    /// [`unknown_settings`].
    order: Vec<(String, Vec<String>)>,
    /// (section, key), lower case → the line (from 1) of its last setting and the key as
    /// written there.
    lines: KeyLines,
    path: &'a Path,
    base: &'a Path,
}

impl<'a> IniFile<'a> {
    fn read(text: &str, path: &'a Path, base: &'a Path) -> Result<IniFile<'a>> {
        let lines = key_lines(text).map_err(|line| {
            // The line's text is not shown: a password wrapped onto its own line is one.
            anyhow!(
                "{}: line {line} is not KEY = value (nor a [SECTION] header, a # comment or an \
                 indented continuation): write each setting on one line as KEY = value; the \
                 line is not shown, in case it holds a password",
                path.display()
            )
        })?;
        let mut defaults = Ini::new().defaults();
        defaults.multiline = true;
        defaults.enable_inline_comments = false;
        let mut ini = Ini::new_from_defaults(defaults);
        let map = ini
            .read(text.to_string())
            .map_err(|e| anyhow!("{}: {}", path.display(), syntax_error(&e)))?;
        let mut sections = HashMap::new();
        let mut order: Vec<(String, Vec<String>)> = map
            .iter()
            .map(|(section, keys)| {
                let mut keys: Vec<String> = keys.keys().cloned().collect();
                keys.sort();
                (section.clone(), keys)
            })
            .collect();
        order.sort();
        for (section, keys) in map {
            let mut values = HashMap::new();
            for (key, value) in keys {
                let value = value.unwrap_or_default();
                let value = unquote(&value).map_err(|problem| {
                    anyhow!(
                        "{}: [{}] {}: the value {problem}: put the whole value on one line, \
                         with both quotes or none",
                        path.display(),
                        section.to_ascii_uppercase(),
                        key.to_ascii_uppercase(),
                    )
                })?;
                values.insert(key, value.to_string());
            }
            sections.insert(section, values);
        }
        Ok(IniFile {
            sections,
            order,
            lines,
            path,
            base,
        })
    }

    fn has_section(&self, section: &str) -> bool {
        self.sections.contains_key(&section.to_ascii_lowercase())
    }

    /// The value of a key, `None` when absent or empty. Blanks around a value were dropped
    /// when it was read; inside quotes they are the value's own (`" pass "` keeps both).
    fn get(&self, section: &str, key: &str) -> Option<String> {
        self.sections
            .get(&section.to_ascii_lowercase())?
            .get(&key.to_ascii_lowercase())
            .filter(|v| !v.is_empty())
            .cloned()
    }
    fn path(&self, section: &str, key: &str) -> Option<PathBuf> {
        self.get(section, key).map(|v| self.base.join(v))
    }

    fn required_location(&self, section: &str, key: &str) -> Result<Location> {
        let value = self.get(section, key).ok_or_else(|| {
            anyhow!(
                "{}: [{section}] {key} is missing or empty: set it to a path (relative paths are \
                 taken from the config file's directory) or an s3://bucket/prefix URI",
                self.path.display()
            )
        })?;
        Location::parse(&value, self.base).map_err(|e| self.key_error(section, key, &value, &e))
    }

    fn parse_or<T: std::str::FromStr>(
        &self,
        section: &str,
        key: &str,
        default: T,
        expected: &str,
    ) -> Result<T> {
        match self.get(section, key) {
            None => Ok(default),
            Some(text) => text
                .parse()
                .map_err(|_| self.key_error(section, key, &text, expected)),
        }
    }

    /// A yes-or-no setting, read as Python's configparser reads one (`getboolean`): `1`,
    /// `yes`, `true`, `on` and `0`, `no`, `false`, `off`, in any case; `default` when absent.
    fn boolean(&self, section: &str, key: &str, default: bool) -> Result<bool> {
        match self.get(section, key) {
            None => Ok(default),
            Some(text) => match text.trim().to_ascii_lowercase().as_str() {
                "1" | "yes" | "true" | "on" => Ok(true),
                "0" | "no" | "false" | "off" => Ok(false),
                _ => Err(self.key_error(
                    section,
                    key,
                    &text,
                    "true or false (or yes/no, on/off, 1/0)",
                )),
            },
        }
    }

    /// A whole number of `unit` within `range`, `default` when absent; anything else is an
    /// error naming the range.
    fn bounded(
        &self,
        section: &str,
        key: &str,
        default: u64,
        range: std::ops::RangeInclusive<u64>,
        unit: &str,
    ) -> Result<u64> {
        let expected = format!(
            "{unit}, a whole number from {} to {} (default {default})",
            range.start(),
            range.end()
        );
        let value: u64 = self.parse_or(section, key, default, &expected)?;
        if range.contains(&value) {
            Ok(value)
        } else {
            Err(self.key_error(section, key, &value.to_string(), &expected))
        }
    }

    fn key_error(&self, section: &str, key: &str, value: &str, expected: &str) -> anyhow::Error {
        let shown = if is_secret(section, key) {
            "(hidden)".to_string()
        } else {
            shown_value(value)
        };
        anyhow!(
            "{}: [{section}] {key} = {shown} is not valid: set it to {expected}",
            self.path.display()
        )
    }
}

/// (section, key), lower case → (line, key as written): see [`key_lines`].
type KeyLines = HashMap<(String, String), (usize, String)>;

/// Where each key is set, read line by line the way the configparser crate reads the file
/// (a section header `[...]`, `#` and `;` comments, an indented line continuing the value above
/// it, `key = value` or `key: value`): (section, key), lower case → (line, key as written).
/// A line that is none of these (no `=` or `:`) is the error, by its number: configparser would
/// take its text as a key without a value, and print it as an unknown key.
fn key_lines(text: &str) -> Result<KeyLines, usize> {
    let mut lines = HashMap::new();
    let mut section = "default".to_string();
    for (index, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with(['#', ';']) {
            continue;
        }
        if trimmed.starts_with('[') {
            let inner = trimmed.trim_start_matches('[');
            let end = inner.rfind(']').unwrap_or(inner.len());
            section = inner[..end].trim().to_ascii_lowercase();
            continue;
        }
        if line.starts_with([' ', '\t']) {
            // A continuation: refused with its key by `unquote`.
            continue;
        }
        let Some(split) = trimmed.find(['=', ':']) else {
            return Err(index + 1);
        };
        let typed = trimmed[..split].trim().to_string();
        lines.insert(
            (section.clone(), typed.to_ascii_lowercase()),
            (index + 1, typed),
        );
    }
    Ok(lines)
}

/// configparser's message for a line it cannot read (`4:1 expecting "[Some(']')]"`), in the
/// words of the file.
fn syntax_error(message: &str) -> String {
    // "4:1 expecting ..." or "line 4: ..." as configparser versions word it.
    let line = message.split(':').next().and_then(|n| {
        let n = n.trim();
        n.strip_prefix("line ")
            .unwrap_or(n)
            .trim()
            .parse::<u64>()
            .ok()
    });
    let what = if (message.contains("expecting") && message.contains(']'))
        || message.contains("no closing bracket")
    {
        "section header not closed: write it as [NAME]"
    } else {
        "cannot be read: a section header is [NAME], a setting KEY = value"
    };
    match line {
        Some(line) => format!("line {line}: {what}"),
        None => format!("{what} ({message})"),
    }
}

/// `value` without one pair of surrounding quotes (`'...'` or `"..."`); an error saying what is
/// wrong when it spans lines or a quote is left open.
fn unquote(value: &str) -> Result<&str, &'static str> {
    if value.contains(['\n', '\r']) {
        return Err(
            "continues onto the next line (an indented line after a key is part of its value)",
        );
    }
    let value = value.trim();
    for quote in ['\'', '"'] {
        let opens = value.starts_with(quote);
        let closes = value.len() > 1 && value.ends_with(quote);
        match (opens, closes) {
            (true, true) => return Ok(&value[1..value.len() - 1]),
            (true, false) => return Err("opens a quote it does not close"),
            (false, true) => return Err("closes a quote it does not open"),
            (false, false) => {}
        }
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_schema_is_a_plain_lower_case_name() {
        for good in ["sparkify", "_w", "dwh_2026"] {
            assert!(is_plain_schema_name(good), "{good}");
        }
        let long = "a".repeat(64);
        for bad in [
            "",
            "Sparkify",
            "2dwh",
            "a-b",
            "a b",
            "a\"b",
            "pg_temp",
            long.as_str(),
        ] {
            assert!(!is_plain_schema_name(bad), "{bad}");
        }
    }

    fn parse(text: &str) -> Result<Config> {
        Config::parse(text, Path::new("dwh.cfg"), Path::new("/base"))
    }

    #[test]
    fn empty_file_gives_defaults() {
        let config = parse("").unwrap();
        assert_eq!(config.warehouse.engine, EngineChoice::Auto);
        assert_eq!(config.warehouse.max_errors, 0);
        assert_eq!(
            config.warehouse.duckdb_path,
            Path::new("/base/sparkify.duckdb")
        );
        assert!(config.local.is_none());
        assert_eq!(config.cluster.db_port, 5439);
    }

    #[test]
    fn quoted_values_and_lowercase_keys_as_in_the_original() {
        let config = parse(
            "[CLUSTER]\nhost=''\nDB_PASSWORD='Passw0rd'\n[S3]\nLOG_DATA='s3://udacity-dend/log_data'\n",
        )
        .unwrap();
        assert_eq!(config.cluster.host, "");
        assert_eq!(config.cluster.db_password.expose(), "Passw0rd");
        assert_eq!(config.s3.log_data, "s3://udacity-dend/log_data");
    }

    #[test]
    fn local_paths_are_relative_to_the_config_directory() {
        let config = parse(
            "[LOCAL]\nLOG_DATA=data/log_data\nSONG_DATA=/abs/songs\nLOG_JSONPATH=data/p.json\n",
        )
        .unwrap();
        let local = config.local.unwrap();
        assert_eq!(local.log_data, Location::File("/base/data/log_data".into()));
        assert_eq!(local.song_data, Location::File("/abs/songs".into()));
    }

    #[test]
    fn sources_come_from_local_else_from_s3() {
        let config = parse(
            "[S3]\nLOG_DATA=s3://b/log_data\nSONG_DATA=s3://b/song_data\nLOG_JSONPATH=s3://b/p.json\n",
        )
        .unwrap();
        let sources = config.sources().unwrap();
        assert_eq!(sources.section, "S3");
        assert_eq!(
            sources.log_data,
            Location::S3 {
                bucket: "b".into(),
                key: "log_data/".into()
            },
            "a source prefix is a directory"
        );
        assert_eq!(sources.log_jsonpath.to_string(), "s3://b/p.json");
        let err = parse("[S3]\nLOG_DATA=/tmp/x\n")
            .unwrap()
            .sources()
            .unwrap_err();
        assert!(err.to_string().contains("[S3] LOG_DATA"), "{err}");
        let err = parse("[LOCAL]\nLOG_DATA=s3://\n").unwrap_err().to_string();
        assert!(err.contains("needs a bucket"), "{err}");
    }

    #[test]
    fn source_prefixes_are_directories_unless_they_name_one_json_object() {
        let dir = |uri: &str| {
            Location::parse(uri, Path::new(""))
                .unwrap()
                .into_directory()
        };
        assert_eq!(dir("s3://b/song_data").to_string(), "s3://b/song_data/");
        assert_eq!(dir("s3://b/song_data/").to_string(), "s3://b/song_data/");
        assert_eq!(
            dir("s3://b/log/day.JSON").to_string(),
            "s3://b/log/day.JSON"
        );
        assert_eq!(dir("s3://b").to_string(), "s3://b/");
        assert_eq!(dir("local/dir"), Location::File("local/dir".into()));
        let config = parse("[S3]\nMANIFEST_PREFIX=s3://m/manifests\n").unwrap();
        assert_eq!(
            config.manifest_prefix().unwrap().unwrap().to_string(),
            "s3://m/manifests/"
        );
        let err = parse("[S3]\nMANIFEST_PREFIX=/tmp/m\n")
            .unwrap()
            .manifest_prefix()
            .unwrap_err()
            .to_string();
        assert!(err.contains("[S3] MANIFEST_PREFIX"), "{err}");
        assert!(parse("").unwrap().manifest_prefix().unwrap().is_none());
    }

    #[test]
    fn duckdb_memory_limit_is_an_amount_duckdb_reads() {
        let limit = |text: &str| {
            parse(&format!("[WAREHOUSE]\nDUCKDB_MEMORY_LIMIT={text}\n"))
                .map(|c| c.warehouse.duckdb_memory_limit.as_str().to_string())
                .map_err(|e| e.to_string())
        };
        assert_eq!(
            parse("").unwrap().warehouse.duckdb_memory_limit.as_str(),
            "512MB"
        );
        assert_eq!(limit("4gb").unwrap(), "4GB");
        assert_eq!(limit(" 1.5 GiB").unwrap(), "1.5GiB");
        for bad in [
            "lots",
            "512",
            "0MB",
            "-1GB",
            "1GB'; DROP TABLE songs; --",
            "80%",
        ] {
            let err = limit(bad).unwrap_err();
            assert!(
                err.contains("[WAREHOUSE] DUCKDB_MEMORY_LIMIT") && err.contains("such as 512MB"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn provisioned_redshift_hosts_are_known_by_their_name() {
        let provisioned = |host: &str| {
            parse(&format!("[CLUSTER]\nHOST={host}\n"))
                .unwrap()
                .cluster
                .is_provisioned_redshift()
        };
        assert!(provisioned("c.abc.us-west-2.redshift.amazonaws.com"));
        assert!(provisioned("c.abc.cn-north-1.redshift.amazonaws.com.cn"));
        assert!(provisioned("C.ABC.US-WEST-2.REDSHIFT.AMAZONAWS.COM."));
        assert!(!provisioned(
            "wg.123.us-west-2.redshift-serverless.amazonaws.com"
        ));
        assert!(!provisioned("warehouse.example.com"));
    }

    #[test]
    fn sslmode_is_checked() {
        let config = parse("[CLUSTER]\nSSLMODE=Verify-Full\nSSLROOTCERT=ca.pem\n").unwrap();
        assert_eq!(config.cluster.sslmode, Some(SslMode::VerifyFull));
        assert_eq!(
            config.cluster.sslrootcert.as_deref(),
            Some(Path::new("/base/ca.pem"))
        );
        let err = parse("[CLUSTER]\nSSLMODE=on\n").unwrap_err().to_string();
        assert!(err.contains("verify-full"), "{err}");
    }

    #[test]
    fn malformed_keys_name_section_key_and_fix() {
        let err = parse("[WAREHOUSE]\nMAX_ERRORS=many\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("[WAREHOUSE] MAX_ERRORS"), "{err}");
        assert!(err.contains("whole number"), "{err}");
        let err = parse("[WAREHOUSE]\nENGINE=oracle\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("[WAREHOUSE] ENGINE") && err.contains("duckdb"),
            "{err}"
        );
        let err = parse("[LOCAL]\nLOG_DATA=x\n").unwrap_err().to_string();
        assert!(err.contains("[LOCAL] SONG_DATA is missing"), "{err}");
    }

    #[test]
    fn engine_follows_the_host_unless_chosen() {
        let engine = |text: &str| parse(text).unwrap().engine();
        assert_eq!(engine(""), EngineChoice::DuckDb);
        assert_eq!(
            engine("[CLUSTER]\nHOST=db.internal\n"),
            EngineChoice::Postgres
        );
        assert_eq!(
            engine("[CLUSTER]\nHOST=wg.123.us-west-2.redshift-serverless.amazonaws.com\n"),
            EngineChoice::Redshift
        );
        assert_eq!(
            engine("[CLUSTER]\nHOST=c.abc.us-west-2.redshift.amazonaws.com\n"),
            EngineChoice::Redshift
        );
        assert_eq!(
            engine("[CLUSTER]\nHOST=db.internal\n[WAREHOUSE]\nENGINE=duckdb\n"),
            EngineChoice::DuckDb
        );
    }

    #[test]
    fn secrets_never_show_in_debug() {
        let config = parse(
            "[CLUSTER]\nDB_PASSWORD=s3cr3t-sentinel\n[AWS]\nKEY=AKID\nSECRET=s3cr3t-sentinel\n",
        )
        .unwrap();
        assert_eq!(config.aws.secret.expose(), "s3cr3t-sentinel");
        let shown = format!("{config:?} {}", config.cluster.db_password);
        assert!(!shown.contains("s3cr3t-sentinel"), "{shown}");
    }

    #[test]
    fn a_forgotten_quote_is_refused_naming_the_key_never_the_value() {
        for text in [
            "[CLUSTER]\nHOST = 'db.example.com\nDB_NAME = dwh\nDB_PASSWORD = sentinel-pw\n",
            "[CLUSTER]\nHOST = db.example.com'\nDB_PASSWORD = sentinel-pw\n",
            "[CLUSTER]\nDB_PASSWORD = 'sentinel-pw\nHOST = h\n",
            "[CLUSTER]\nHOST = db\n   DB_PASSWORD = sentinel-pw\n",
        ] {
            let err = format!("{:#}", parse(text).unwrap_err());
            assert!(!err.contains("sentinel-pw"), "{err}");
            assert!(err.contains("[CLUSTER] "), "{err}");
        }
        let err = format!(
            "{:#}",
            parse("[CLUSTER]\nHOST = 'db.example.com\n").unwrap_err()
        );
        assert!(
            err.contains("[CLUSTER] HOST: the value opens a quote"),
            "{err}"
        );
        let err = format!("{:#}", parse("[CLUSTER]\nHOST = a\n  b\n").unwrap_err());
        assert!(err.contains("[CLUSTER] HOST: the value continues"), "{err}");
    }

    #[test]
    fn values_are_read_as_python_reads_them() {
        let config = parse(
            "[cluster]\nDB_PASSWORD = p#w;d'x\nhost: \"h\"\ndb_port=1\nDB_PORT = 2\n[AWS]\nKEY = 'AKID'\n",
        )
        .unwrap();
        assert_eq!(
            config.cluster.db_password.expose(),
            "p#w;d'x",
            "no inline comments"
        );
        assert_eq!(config.cluster.host, "h");
        assert_eq!(config.cluster.db_port, 2, "the last of repeated keys wins");
        assert_eq!(config.aws.key.expose(), "AKID");
        assert!(
            !format!("{config:?}").contains("AKID"),
            "the key id is masked"
        );
        let config = parse("[WAREHOUSE]\nDUCKDB_PATH = C:\\dwh\\\nMAX_ERRORS = 3\n").unwrap();
        assert_eq!(
            config.warehouse.max_errors, 3,
            "a trailing backslash continues nothing"
        );
        let err = parse("[CLUSTER\nHOST=x\n").unwrap_err().to_string();
        assert!(err.contains("line 1"), "{err}");
    }

    #[test]
    fn values_in_errors_are_escaped_and_cut() {
        let long = "x".repeat(500);
        let err = parse(&format!("[WAREHOUSE]\nMAX_ERRORS = \u{1b}[31m{long}\n"))
            .unwrap_err()
            .to_string();
        assert!(!err.contains('\u{1b}'), "{err}");
        assert!(err.contains("\\u{1b}[31m") && err.contains("..."), "{err}");
        assert!(err.len() < 300, "{err}");
    }

    #[test]
    fn redshift_endpoints_are_known_in_every_partition_and_fully_qualified() {
        let engine = |host: &str| {
            parse(&format!("[CLUSTER]\nHOST={host}\n"))
                .unwrap()
                .engine()
        };
        for host in [
            "c.abc.cn-north-1.redshift.amazonaws.com.cn",
            "wg.1.cn-northwest-1.redshift-serverless.amazonaws.com.cn",
            "wg.1.us-west-2.redshift-serverless.amazonaws.com.",
            "C.ABC.US-WEST-2.REDSHIFT.AMAZONAWS.COM",
        ] {
            assert_eq!(engine(host), EngineChoice::Redshift, "{host}");
        }
        assert_eq!(engine("redshift.example.com"), EngineChoice::Postgres);
    }

    #[cfg(unix)]
    #[test]
    fn secrets_readable_by_others_are_noticed() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dwh.cfg");
        let check = |text: &str, mode: u32| {
            std::fs::write(&path, text).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            Config::load(&path).unwrap().secrets_readable_by_others()
        };
        assert_eq!(
            check("[CLUSTER]\nDB_PASSWORD = x\n", 0o644),
            Some("group and others")
        );
        assert_eq!(check("[AWS]\nSECRET = x\n", 0o640), Some("group"));
        assert_eq!(check("[CLUSTER]\nDB_PASSWORD = x\n", 0o600), None);
        assert_eq!(check("[CLUSTER]\nDB_PASSWORD =\n", 0o644), None);
    }

    #[test]
    fn a_password_on_its_own_line_is_refused_by_line_number_never_printed() {
        let err = parse("[CLUSTER]\nDB_PASSWORD =\nHunter2-Secret\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 3 is not KEY = value"), "{err}");
        assert!(
            !err.to_ascii_lowercase().contains("hunter2"),
            "the line's text is shown: {err}"
        );
    }

    #[test]
    fn only_plausible_unknown_keys_are_named() {
        // A password with an `=` in it, wrapped onto its own line, reads as a key.
        let config =
            parse("[CLUSTER]\nDB_PASSWORD =\nhunter2x=yz\n[WAREHOUSE]\nDUCKDB_PTH = a\n").unwrap();
        let said: Vec<String> = config.unknown.iter().map(|u| u.to_string()).collect();
        let all = said.join("\n");
        assert!(!all.to_ascii_lowercase().contains("hunter2x"), "{all}");
        assert!(all.contains("on line 3"), "{all}");
        assert!(
            all.contains("DUCKDB_PTH") && all.contains("did you mean DUCKDB_PATH"),
            "{all}"
        );
        let strict: Vec<String> = config.unknown.iter().map(|u| u.as_error()).collect();
        assert!(!strict.join(" ").to_ascii_lowercase().contains("hunter2x"));
    }

    #[test]
    fn numbers_are_bounded_when_read() {
        for (text, key) in [
            (
                "[CLUSTER]\nCONNECT_TIMEOUT = 18446744073709551615\n",
                "CONNECT_TIMEOUT",
            ),
            ("[CLUSTER]\nCONNECT_TIMEOUT = 3601\n", "CONNECT_TIMEOUT"),
            ("[CLUSTER]\nCONNECT_TIMEOUT = 0\n", "CONNECT_TIMEOUT"),
            (
                "[S3]\nATTEMPT_TIMEOUT = 18446744073709551615\n",
                "ATTEMPT_TIMEOUT",
            ),
            ("[S3]\nATTEMPT_TIMEOUT = 0\n", "ATTEMPT_TIMEOUT"),
            (
                "[WAREHOUSE]\nMAX_ERRORS = 18446744073709551615\n",
                "MAX_ERRORS",
            ),
        ] {
            let err = parse(text).unwrap_err().to_string();
            assert!(
                err.contains(key) && err.contains("a whole number from"),
                "{err}"
            );
        }
        let config =
            parse("[CLUSTER]\nCONNECT_TIMEOUT = 3600\n[WAREHOUSE]\nMAX_ERRORS = 1000000000\n")
                .unwrap();
        assert_eq!(config.cluster.connect_timeout.as_secs(), 3600);
        assert_eq!(config.warehouse.max_errors, MAX_ERRORS_LIMIT);
        // Redshift's MAXERROR is one more, and never wraps.
        assert!(crate::sql::redshift_maxerror(u64::MAX).is_err());
    }

    #[test]
    fn blanks_inside_quotes_are_the_values_own() {
        let config =
            parse("[CLUSTER]\nDB_PASSWORD = \"  two blanks  \"\nDB_USER =  plain  \n").unwrap();
        assert_eq!(config.cluster.db_password.expose(), "  two blanks  ");
        assert_eq!(config.cluster.db_user, "plain");
    }

    #[test]
    fn require_auth_is_a_list_of_libpq_method_names() {
        let config = parse("[CLUSTER]\nREQUIRE_AUTH = md5, scram-sha-256\n").unwrap();
        assert_eq!(
            config.cluster.require_auth,
            Some(vec![
                crate::pg_auth::Method::Md5,
                crate::pg_auth::Method::Scram
            ])
        );
        let err = parse("[CLUSTER]\nREQUIRE_AUTH = kerberos\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("REQUIRE_AUTH") && err.contains("scram-sha-256"),
            "{err}"
        );
    }
}
