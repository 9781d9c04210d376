//! What every binary shares: the common flags, logging set-up, and the mapping of errors to
//! exit codes (0 ok, 1 failure, 2 usage — clap's own), so scripts can trust them.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use tracing_subscriber::EnvFilter;

use crate::config::{Config, EngineChoice};
use crate::progress::Progress;

/// Flags every binary takes.
#[derive(Debug, Clone, clap::Args)]
pub struct CommonArgs {
    /// The config file (INI, as the original project's dwh.cfg). Relative paths inside it are
    /// taken from its directory.
    #[arg(long, value_name = "PATH", default_value = "dwh.cfg", global = true)]
    pub config: PathBuf,

    /// No progress bars and no warnings: only results and errors.
    #[arg(short, long, global = true)]
    pub quiet: bool,

    /// The warehouse engine, overriding [WAREHOUSE] ENGINE: auto, duckdb, postgres, redshift or
    /// redshift-data. auto picks duckdb for an empty [CLUSTER] HOST, redshift for a Redshift
    /// endpoint (*.redshift.amazonaws.com, *.redshift-serverless.amazonaws.com, .com.cn in
    /// China), postgres for any other host: behind a custom domain, set ENGINE = redshift.
    #[arg(long, value_name = "ENGINE", global = true, value_parser = parse_engine)]
    pub engine: Option<EngineChoice>,

    /// More log output on stderr: -v for steps, -vv for details. RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
}

impl CommonArgs {
    /// Sets up logging and reads the config file.
    pub fn init(&self) -> Result<Config> {
        self.init_logging();
        crate::tls::install_crypto_provider();
        let mut config = Config::load(&self.config)?;
        if let Some(engine) = self.engine {
            config.warehouse.engine = engine;
        }
        Ok(config)
    }

    /// Sets up logging to stderr: RUST_LOG if set, else from -q/-v.
    pub fn init_logging(&self) {
        let default = match (self.verbose, self.quiet) {
            (0, true) => "error",
            (0, false) => "warn",
            (1, _) => "sparkify=info",
            _ => "sparkify=debug,info",
        };
        let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_ansi(std::io::stderr().is_terminal())
            .with_target(false)
            .try_init();
    }

    pub fn progress(&self) -> Progress {
        Progress::new(self.quiet)
    }
}

fn parse_engine(value: &str) -> Result<EngineChoice, String> {
    EngineChoice::parse(value).ok_or_else(|| format!("use one of {}", EngineChoice::NAMES))
}

/// Runs a binary's body: prints an error as one `error: ...` message with its causes and
/// exits 1; exits 0 on success.
pub fn exit_code(outcome: Result<()>) -> ExitCode {
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // Messages may quote file names and config values: no control character in them
            // reaches the terminal (line breaks of the message itself are kept).
            let message = format!("{error:#}");
            let shown: Vec<String> = message
                .split('\n')
                .map(crate::record::escape_controls)
                .collect();
            eprintln!("error: {}", shown.join("\n"));
            ExitCode::FAILURE
        }
    }
}
