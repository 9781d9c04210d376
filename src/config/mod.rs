//! `dwh.cfg`: the one file through which every step learns where the warehouse and the sources
//! are, as in the original project. This module reads it once into typed values, resolves paths
//! against the file's own directory, and turns every missing or malformed key into an error that
//! names the section and key to change.
//!
//! [`ini`] reads the file as configparser does, [`read`] turns each section into typed values
//! ([`engine`]: `[CLUSTER]` and the engine, [`location`]: the sources and `[S3]`, [`warehouse`]:
//! `[WAREHOUSE]`, [`aws`]: `[AWS]` and `[DWH]`), [`secret`] keeps passwords out of every message
//! and [`unknown`] says which keys nothing reads.

mod aws;
mod engine;
mod ini;
mod location;
mod read;
mod secret;
#[cfg(test)]
mod tests;
mod unknown;
mod warehouse;

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Result};

pub use aws::{is_instance_id, AwsKeys, DwhConfig, DEFAULT_USAGE_LIMIT_RPU_HOURS};
pub use engine::{ClusterConfig, EngineChoice, SslMode, DEFAULT_CONNECT_TIMEOUT_SECONDS};
pub use location::{Location, S3Config, Sources};
pub use read::{MAX_ERRORS_LIMIT, MAX_TIMEOUT_SECONDS};
use secret::is_secret;
pub use secret::{shown_value, Secret};
pub use unknown::{UnknownSetting, KNOWN_SETTINGS};
pub use warehouse::{is_plain_schema_name, MemoryLimit, WarehouseConfig, DEFAULT_DUCKDB_PATH};

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
}

impl Config {
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
