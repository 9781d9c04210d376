//! What every binary shares: the common flags, logging set-up, and the mapping of errors to
//! exit codes (0 ok, 1 failure, 2 usage — clap's own), so scripts can trust them.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use tracing_subscriber::EnvFilter;

use crate::config::{Config, EngineChoice};
use crate::progress::Progress;

/// The logging flags every binary takes.
#[derive(Debug, Clone, clap::Args)]
pub struct LogArgs {
    /// No progress or notes: results, warnings and errors only
    ///
    /// No progress bars, spinners or notes: only results, warnings and errors (a warning is
    /// never hidden: a misspelt setting matters most in a scheduled run).
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    /// More log output on stderr (-v, -vv, -vvv)
    ///
    /// More log output on stderr: -v for each step, -vv also every SQL statement sent and each
    /// file read, -vvv also the libraries' own logs (the AWS SDK's, say). RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
}

impl LogArgs {
    /// Sets up logging to stderr: RUST_LOG if set, else from -q/-v; colours only on a terminal
    /// and never when NO_COLOR is set (https://no-color.org).
    pub fn init_logging(&self) {
        let default = match (self.verbose, self.quiet) {
            (_, true) => "sparkify=warn",
            (0, false) => "sparkify=warn",
            (1, _) => "sparkify=info",
            (2, _) => "sparkify=debug",
            _ => "debug",
        };
        let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        crate::redact::register_environment();
        let builder = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(crate::redact::RedactingStderr)
            .with_ansi(std::io::stderr().is_terminal() && !no_color)
            .with_target(self.verbose >= 3);
        // Up to -vv, a line says what it is as a compiler does ("warning: ..."), without the
        // time to the microsecond; -vvv, for the libraries' logs, keeps their time and target.
        let _ = if self.verbose >= 3 {
            builder.try_init()
        } else {
            builder.event_format(PlainLine).try_init()
        };
    }

    pub fn progress(&self) -> Progress {
        Progress::new(self.quiet)
    }
}

/// Parses a binary's arguments; `--version` (or `-V`) says the release, the commit built and
/// the DuckDB linked in: `etl 0.1.0 (commit 1a2b3c4d5e6f, DuckDB v1.4.1)`.
pub fn parse<T: clap::Parser>() -> T {
    parse_command(T::command())
}

/// [`parse`] for a binary that sends no SQL (`gen_data`, the IaC steps): its `-v` text says
/// what it logs instead of promising every SQL statement.
pub fn parse_sending_no_sql<T: clap::Parser>() -> T {
    parse_command(T::command().mut_arg("verbose", |arg| {
        arg.help("More log output on stderr (-v, -vv, -vvv)")
            .long_help(
                "More log output on stderr: -v for each step, -vv also the details of each, -vvv \
             also the libraries' own logs (the AWS SDK's requests, say). RUST_LOG overrides.",
            )
    }))
}

fn parse_command<T: clap::Parser>(mut command: clap::Command) -> T {
    if std::env::args_os().any(|arg| arg == "--version" || arg == "-V") {
        let version = format!(
            "{} (commit {}, DuckDB {})",
            env!("CARGO_PKG_VERSION"),
            env!("SPARKIFY_COMMIT"),
            crate::warehouse::DuckDbWarehouse::library_version()
        );
        command = command.version(&*Box::leak(version.into_boxed_str()));
    }
    let matches = command.get_matches();
    T::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

/// A log event as one line, `level: message field=value ...`, the level in words
/// (`warning`, `info`, `debug`).
struct PlainLine;

impl<S, N> tracing_subscriber::fmt::FormatEvent<S, N> for PlainLine
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    N: for<'a> tracing_subscriber::fmt::FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &tracing_subscriber::fmt::FmtContext<'_, S, N>,
        mut writer: tracing_subscriber::fmt::format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        let level = match *event.metadata().level() {
            tracing::Level::ERROR => "error",
            tracing::Level::WARN => "warning",
            tracing::Level::INFO => "info",
            tracing::Level::DEBUG => "debug",
            tracing::Level::TRACE => "trace",
        };
        write!(writer, "{level}: ")?;
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

/// The flags of a binary that reads the config file: logging, the file, strictness.
#[derive(Debug, Clone, clap::Args)]
pub struct ConfigArgs {
    #[command(flatten)]
    pub log: LogArgs,

    /// The config file
    ///
    /// The config file (INI, as the original project's dwh.cfg). Relative paths inside it are
    /// taken from its directory.
    #[arg(long, value_name = "PATH", default_value = "dwh.cfg", global = true)]
    pub config: PathBuf,

    /// Fail on unknown config keys instead of warning
    ///
    /// An unknown section or key in the config file (a typo such as DUCKDB_PTH) is an error
    /// instead of a warning; so does [WAREHOUSE] STRICT = true.
    #[arg(long, global = true)]
    pub strict: bool,
}

impl ConfigArgs {
    /// Sets up logging and Ctrl-C handling, and reads the config file.
    pub fn init(&self) -> Result<Config> {
        self.log.init_logging();
        crate::interrupt::listen();
        crate::tls::install_crypto_provider();
        let config = Config::load(&self.config)?;
        check_unknown_settings(&config, self.strict)?;
        Ok(config)
    }

    pub fn progress(&self) -> Progress {
        self.log.progress()
    }
}

/// The flags of a binary that opens the warehouse: [`ConfigArgs`] and the engine.
#[derive(Debug, Clone, clap::Args)]
pub struct CommonArgs {
    #[command(flatten)]
    pub base: ConfigArgs,

    /// The warehouse engine [config: ENGINE]
    ///
    /// The warehouse engine, overriding [WAREHOUSE] ENGINE: auto, duckdb, postgres, redshift or
    /// redshift-data. auto picks duckdb for an empty [CLUSTER] HOST, redshift for a Redshift
    /// endpoint (*.redshift.amazonaws.com, *.redshift-serverless.amazonaws.com, .com.cn in
    /// China), postgres for any other host: behind a custom domain, set ENGINE = redshift.
    #[arg(long, value_name = "ENGINE", global = true, value_parser = parse_engine)]
    pub engine: Option<EngineChoice>,
}

impl CommonArgs {
    /// Sets up logging and Ctrl-C handling, and reads the config file with `--engine` applied.
    pub fn init(&self) -> Result<Config> {
        let mut config = self.base.init()?;
        if let Some(engine) = self.engine {
            config.warehouse.engine = engine;
        }
        Ok(config)
    }

    pub fn progress(&self) -> Progress {
        self.base.progress()
    }
}

/// How long a step that only reads the warehouse (`analysis`, `check`) waits for a load.
#[derive(Debug, Clone, clap::Args)]
pub struct ReadLockArgs {
    /// Seconds to wait while a load holds the warehouse
    ///
    /// Seconds to wait while a load holds the warehouse (DuckDB's file, or a PostgreSQL table
    /// a load is rewriting), saying after a second who holds it; 0 fails at once.
    #[arg(long, value_name = "SECONDS", default_value_t = 60, allow_negative_numbers = true,
          value_parser = whole_number(0, 31_536_000))]
    pub lock_timeout: u64,
}

impl ReadLockArgs {
    pub fn timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.lock_timeout)
    }
}

/// Says what in the config file nothing reads: a warning each, or with `strict` (or
/// `[WAREHOUSE] STRICT = true`) one error listing them all.
fn check_unknown_settings(config: &Config, strict: bool) -> Result<()> {
    if config.unknown.is_empty() {
        return Ok(());
    }
    let file = config.path.display();
    if strict || config.warehouse.strict {
        let all: Vec<String> = config.unknown.iter().map(|u| u.as_error()).collect();
        anyhow::bail!(
            "{file}: {} (--strict or [WAREHOUSE] STRICT = true makes these errors)",
            all.join("; ")
        );
    }
    for unknown in &config.unknown {
        tracing::warn!("{file}: {unknown}");
    }
    Ok(())
}

/// A value parser for a whole-number flag from `min` to `max`: `-1`, `0` below a minimum of 1,
/// and words are usage errors (exit 2) that name the range. Pair it with
/// `allow_negative_numbers = true`, so that `-1` reaches it rather than reading as a flag.
pub fn whole_number(
    min: u64,
    max: u64,
) -> impl Fn(&str) -> Result<u64, String> + Clone + Send + Sync + 'static {
    move |text: &str| match text.trim().parse::<i128>() {
        Ok(n) if n >= i128::from(min) && n <= i128::from(max) => Ok(n as u64),
        _ => Err(whole_number_range(min, max)),
    }
}

/// The range of a whole-number flag in words: "from 0 to 3,600", or "1 or more" when the
/// ceiling is only the type's.
fn whole_number_range(min: u64, max: u64) -> String {
    let group = |n: u64| crate::words::thousands(i64::try_from(n).unwrap_or(i64::MAX));
    if max >= u64::from(u32::MAX) {
        format!("expected a whole number, {} or more", group(min))
    } else {
        format!(
            "expected a whole number from {} to {}",
            group(min),
            group(max)
        )
    }
}

fn parse_engine(value: &str) -> Result<EngineChoice, String> {
    EngineChoice::parse(value).ok_or_else(|| format!("use one of {}", EngineChoice::NAMES))
}

/// Standard output was closed by its reader (`analysis | head`): not a failure of the run.
#[derive(Debug)]
pub struct OutputClosed;

impl std::fmt::Display for OutputClosed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("standard output was closed by its reader")
    }
}

impl std::error::Error for OutputClosed {}

/// Writes `text` to standard output, for results (never `print!`, which panics when the
/// output cannot be written). A reader that went away ends the binary quietly with exit 0
/// (see [`exit_code`]), as `cat` and `rg` do; any other failure (a full disk) is an error.
pub fn print(text: &str) -> Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(OutputClosed.into()),
        Err(e) => Err(anyhow::anyhow!(
            "cannot write the results to standard output: {e}"
        )),
    }
}

/// [`print`] with a line break after `text`.
pub fn println(text: &str) -> Result<()> {
    print(&format!("{text}\n"))
}

/// Permissions for a file made to be shared (a report, a chart): those of any new file, 0666
/// less the umask, rather than a temporary file's owner-only 0600.
pub const SHARED_FILE: u32 = 0o666;

/// A new file beside `path`, to be written and then renamed over it (`persist`), so a reader
/// never sees half of it and an error leaves the old one. It ends in `path`'s extension (for
/// writers that choose a format by it) and is created with `mode` (less the umask) before
/// anything is written to it: [`SHARED_FILE`], or 0o600 for a file that may hold a secret.
pub fn file_beside(path: &std::path::Path, mode: u32) -> std::io::Result<tempfile::NamedTempFile> {
    let suffix = path
        .extension()
        .map(|e| format!(".{}", e.to_string_lossy()))
        .unwrap_or_default();
    let mut builder = tempfile::Builder::new();
    builder.prefix(".sparkify-").suffix(&suffix);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(mode));
    }
    #[cfg(not(unix))]
    let _ = mode;
    builder.tempfile_in(directory_of(path))
}

/// The directory `path` is in (`.` for a bare file name).
pub fn directory_of(path: &std::path::Path) -> &std::path::Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."))
}

/// Runs a binary's body: prints an error as one `error: ...` message with its causes and
/// exits 1; exits 0 on success, and when its output's reader went away ([`OutputClosed`]).
pub fn exit_code(outcome: Result<()>) -> ExitCode {
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) if error.is::<OutputClosed>() => ExitCode::SUCCESS,
        Err(error) if crate::interrupt::requested() => {
            tracing::debug!("the run ended with: {error:#}");
            eprintln!("interrupted: nothing of this run was committed");
            ExitCode::from(crate::interrupt::exit_status())
        }
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
