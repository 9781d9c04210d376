//! Where the sources are: a local path or an `s3://` URI ([`Location`]), the three inputs of
//! one section ([`Sources`]) and `[S3]` as written.

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::Result;

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
