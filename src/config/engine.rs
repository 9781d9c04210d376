//! `[CLUSTER]` and `[WAREHOUSE] ENGINE`: which warehouse the steps talk to and how a server
//! engine is reached (host, credentials, TLS, timeouts).

use std::path::PathBuf;

use super::Secret;

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
