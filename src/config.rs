//! `dwh.cfg`: the one file through which every step learns where the warehouse and the sources
//! are, as in the original project. This module reads it once into typed values, resolves paths
//! against the file's own directory, and turns every missing or malformed key into an error that
//! names the section and key to change.

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use ini::{Ini, ParseOption};

/// A value that must never be printed: passwords and secret keys. `Debug` and `Display` show
/// `***`; the value itself is reached only through [`Secret::expose`].
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
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

/// `[CLUSTER]`: a warehouse reached over the network.
#[derive(Debug, Clone, Default)]
pub struct ClusterConfig {
    pub host: String,
    pub db_name: String,
    pub db_user: String,
    pub db_password: Secret,
    pub db_port: u16,
}

/// Where the three source inputs are: two directory trees of `.json` files and the JSONPaths
/// file that maps log records to staging columns.
#[derive(Debug, Clone)]
pub struct SourcePaths {
    pub log_data: PathBuf,
    pub song_data: PathBuf,
    pub log_jsonpath: PathBuf,
}

/// `[S3]`: the sources as `s3://` URIs, for Redshift's own COPY and for a later S3 reader.
#[derive(Debug, Clone, Default)]
pub struct S3Config {
    pub log_data: String,
    pub song_data: String,
    pub log_jsonpath: String,
    pub region: String,
}

/// `[WAREHOUSE]`: which engine and how strict a load is.
#[derive(Debug, Clone)]
pub struct WarehouseConfig {
    pub engine: EngineChoice,
    pub duckdb_path: PathBuf,
    /// Rejected records tolerated before a load fails (Redshift's `MAXERROR`).
    pub max_errors: u64,
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
    pub local: Option<SourcePaths>,
    pub warehouse: WarehouseConfig,
}

/// Default file name of the DuckDB warehouse, relative to the config file.
pub const DEFAULT_DUCKDB_PATH: &str = "sparkify.duckdb";

impl Config {
    /// Reads and checks the config file at `path`.
    pub fn load(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path).with_context(|| {
            format!(
                "cannot read config file {}: pass --config PATH to use another file",
                path.display()
            )
        })?;
        let base = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        Self::parse(&text, path, base)
    }

    /// Parses config text; relative paths in it are taken from `base`.
    pub fn parse(text: &str, path: &Path, base: &Path) -> Result<Config> {
        let options = ParseOption {
            enabled_quote: true,
            // Windows paths keep their backslashes.
            enabled_escape: false,
            ..ParseOption::default()
        };
        let ini = Ini::load_from_str_opt(text, options)
            .map_err(|e| anyhow!("{} is not a valid INI file: {e}", path.display()))?;
        let file = IniFile {
            ini: &ini,
            path,
            base,
        };

        let cluster = ClusterConfig {
            host: file.get("CLUSTER", "HOST").unwrap_or_default(),
            db_name: file.get("CLUSTER", "DB_NAME").unwrap_or_default(),
            db_user: file.get("CLUSTER", "DB_USER").unwrap_or_default(),
            db_password: Secret::new(file.get("CLUSTER", "DB_PASSWORD").unwrap_or_default()),
            db_port: file.parse_or("CLUSTER", "DB_PORT", 5439, "a TCP port such as 5439")?,
        };

        let local = if file.has_section("LOCAL") {
            Some(SourcePaths {
                log_data: file.required_path("LOCAL", "LOG_DATA")?,
                song_data: file.required_path("LOCAL", "SONG_DATA")?,
                log_jsonpath: file.required_path("LOCAL", "LOG_JSONPATH")?,
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
        let warehouse = WarehouseConfig {
            engine,
            duckdb_path: file
                .path("WAREHOUSE", "DUCKDB_PATH")
                .unwrap_or_else(|| base.join(DEFAULT_DUCKDB_PATH)),
            max_errors: file.parse_or("WAREHOUSE", "MAX_ERRORS", 0, "a whole number, 0 or more")?,
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
            },
            local,
            warehouse,
        })
    }

    /// The engine to use: an explicit `[WAREHOUSE] ENGINE` (or `--engine`), else DuckDB when
    /// `[CLUSTER] HOST` is empty, Redshift when it is a Redshift endpoint, PostgreSQL otherwise.
    pub fn engine(&self) -> EngineChoice {
        let host = self.cluster.host.to_ascii_lowercase();
        match self.warehouse.engine {
            EngineChoice::Auto if host.is_empty() => EngineChoice::DuckDb,
            EngineChoice::Auto
                if host.ends_with(".redshift.amazonaws.com")
                    || host.ends_with(".redshift-serverless.amazonaws.com") =>
            {
                EngineChoice::Redshift
            }
            EngineChoice::Auto => EngineChoice::Postgres,
            chosen => chosen,
        }
    }

    /// The local source directories, or an error saying how to configure them.
    pub fn local_sources(&self) -> Result<&SourcePaths> {
        match &self.local {
            Some(paths) => Ok(paths),
            None => bail!(
                "{}: no [LOCAL] section: add [LOCAL] with LOG_DATA, SONG_DATA and LOG_JSONPATH \
                 pointing at the source directories and the JSONPaths file",
                self.path.display()
            ),
        }
    }
}

/// Lookups in the parsed file: case-insensitive keys (as Python's configparser), values with
/// surrounding whitespace trimmed, errors naming file, section and key.
struct IniFile<'a> {
    ini: &'a Ini,
    path: &'a Path,
    base: &'a Path,
}

impl IniFile<'_> {
    fn has_section(&self, section: &str) -> bool {
        self.ini
            .sections()
            .flatten()
            .any(|s| s.eq_ignore_ascii_case(section))
    }

    /// The value of a key, `None` when absent or empty.
    fn get(&self, section: &str, key: &str) -> Option<String> {
        self.ini
            .iter()
            .filter(|(name, _)| name.is_some_and(|n| n.eq_ignore_ascii_case(section)))
            .flat_map(|(_, props)| props.iter())
            .filter(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.trim().to_string())
            .next_back()
            .filter(|v| !v.is_empty())
    }

    fn path(&self, section: &str, key: &str) -> Option<PathBuf> {
        self.get(section, key).map(|v| self.base.join(v))
    }

    fn required_path(&self, section: &str, key: &str) -> Result<PathBuf> {
        self.path(section, key).ok_or_else(|| {
            anyhow!(
                "{}: [{section}] {key} is missing or empty: set it to a path (relative paths are \
                 taken from the config file's directory)",
                self.path.display()
            )
        })
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

    fn key_error(&self, section: &str, key: &str, value: &str, expected: &str) -> anyhow::Error {
        anyhow!(
            "{}: [{section}] {key} = {value:?} is not valid: set it to {expected}",
            self.path.display()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(local.log_data, Path::new("/base/data/log_data"));
        assert_eq!(local.song_data, Path::new("/abs/songs"));
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
        let config = parse("[CLUSTER]\nDB_PASSWORD=s3cr3t-sentinel\n").unwrap();
        let shown = format!("{config:?} {}", config.cluster.db_password);
        assert!(!shown.contains("s3cr3t-sentinel"), "{shown}");
    }
}
