//! How each section's keys become typed values ([`Config::parse`]): defaults, bounds and an
//! error for each malformed value that names the section and key to change.

use std::path::Path;

use anyhow::{bail, Result};

use super::ini::IniFile;
use super::unknown::unknown_settings;
use super::{
    is_instance_id, is_plain_schema_name, AwsKeys, ClusterConfig, Config, DwhConfig, EngineChoice,
    MemoryLimit, S3Config, Secret, Sources, SslMode, WarehouseConfig,
    DEFAULT_CONNECT_TIMEOUT_SECONDS, DEFAULT_DUCKDB_PATH, DEFAULT_USAGE_LIMIT_RPU_HOURS,
};

/// The longest `CONNECT_TIMEOUT` or `ATTEMPT_TIMEOUT`: an hour. Larger values mean "never" in
/// practice, and unbounded ones overflow the clock arithmetic they feed.
pub const MAX_TIMEOUT_SECONDS: u64 = 3600;

/// The most `MAX_ERRORS` may be: a billion rejected records, far beyond any load, so that no
/// count derived from it (Redshift's MAXERROR is one more) can overflow.
pub const MAX_ERRORS_LIMIT: u64 = 1_000_000_000;

impl Config {
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
}
