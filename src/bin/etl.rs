//! `etl`: load the sources into staging and transform them into the star schema.

use std::process::ExitCode;
use std::time::Duration;

use clap::{CommandFactory, Parser};
use sparkify::cli::{exit_code, CommonArgs};
use sparkify::etl::EtlOptions;
use sparkify::load::Unreadable;
use sparkify::progress::Progress;
use sparkify::warehouse::SqlPrinter;

/// Load the sources into staging and transform them into the star schema.
///
/// Load the song catalogue and the event logs into staging, transform them into the star
/// schema, and print what was read, staged, rejected and how long each phase took.
///
/// Sources come from [LOCAL] when the config has that section, else from [S3]: SONG_DATA and
/// LOG_DATA are directories or s3://bucket/prefix URIs whose .json files are read at any depth
/// (other files are ignored); LOG_JSONPATH is the Redshift JSONPaths file that maps each log
/// record onto the staging columns by position. S3 is read with the AWS default credentials
/// (unsigned when there are none, for a public bucket), [S3] REGION, and [S3] ENDPOINT or
/// AWS_ENDPOINT_URL for an S3-compatible store.
///
/// On Redshift, staging is loaded by Redshift itself: COPY from the [S3] URIs with the role of
/// [IAM_ROLE] ARN; the records it skips (at most MAX_ERRORS) go to load_errors as well.
///
/// A record that is not JSON, not an object, or has a value that does not fit its column (text
/// too long or holding a NUL, a number out of range, an event time outside the years 1900-9999)
/// is rejected into load_errors (file, line, reason, raw text). If more than
/// [WAREHOUSE] MAX_ERRORS (default 0) records are rejected, or anything fails, nothing of the
/// run is committed and the warehouse stays as it was; the exit code is then 1.
///
/// A file that cannot be read (permissions, vanished, an S3 object that keeps failing) is not a
/// record: the run fails naming it, unless --skip-unreadable-files is given.
///
/// One load at a time, and any number of readers: while another process holds the warehouse
/// (another etl; on DuckDB also an analysis or check reading the file), etl waits up to
/// --lock-timeout seconds (60 by default), saying after a second who holds it.
///
/// After the transform, quality checks read the star schema (keys not null and unique, every
/// reference found, level free or paid, hours, days, weeks, months and weekdays in range, as
/// many songplays as distinct plays staged); if one fails, the run fails naming it with up to five
/// offending rows, and nothing is committed. The summary lists every check.
///
/// Loads are incremental: the ledger table loaded_files records each file loaded, by its path
/// relative to its source root (so a run from another directory, or with another spelling of
/// --config, finds the same files), with its size and a SHA-256 of its contents (an S3 object's
/// ETag). A run reads only the files that are new since, and of a log file that only grew, what
/// was appended; then merges what they change into the star schema: the same tables a full load
/// of every file would give, songplay_id included. A new modification time alone (touch, cp,
/// git checkout) is no change. With nothing new it changes nothing and says so. A file whose
/// contents changed (named in the summary), a changed JSONPaths mapping, an empty ledger or
/// --full-refresh make the run a full refresh: every file read again, staging and the star
/// schema rebuilt. Files no longer found keep their records until a full refresh. On Redshift, loads are incremental
/// when [S3] MANIFEST_PREFIX is set: COPY reads exactly the new files through a manifest
/// written there, and the merge follows in the same transaction; without it, every run reads
/// everything.
///
/// The first run creates the tables (create_tables is only for starting over); tables of the
/// same names that the toolkit did not create make it refuse and change nothing. The warehouse
/// is the one the config file selects: with [CLUSTER] HOST empty, the DuckDB file
/// [WAREHOUSE] DUCKDB_PATH; otherwise PostgreSQL, or Redshift for a Redshift endpoint (see
/// --engine), in [WAREHOUSE] SCHEMA when set.
#[derive(Parser)]
#[command(
    name = "etl",
    version,
    after_long_help = "Examples:\n  etl                          load with ./dwh.cfg\n  etl --max-errors 100         keep going past up to 100 bad records\n  etl -q --config other.cfg    no progress bars, another config\n  etl --full-refresh           read every file again and rebuild\n  etl --no-checks              commit even if a quality check would fail\n  etl --dry-run                list the files a load would read\n  etl --print-sql              show the SQL a load would send, send nothing\n  etl -q --format json         one document for a scheduler, nothing else\n  etl --coalesce               Redshift: COPY the small song files coalesced into a few large ones"
)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,

    /// Rejected records to tolerate [config: MAX_ERRORS]
    ///
    /// Rejected records to tolerate, 0 or more; overrides [WAREHOUSE] MAX_ERRORS.
    #[arg(long, value_name = "N", allow_negative_numbers = true,
          value_parser = sparkify::cli::whole_number(0, u64::MAX))]
    max_errors: Option<u64>,

    /// Go on past files that cannot be read
    ///
    /// Go on when a source file cannot be read: list it in the summary and in load_errors
    /// (reason "unreadable file"), apart from the rejected records. Without it such a file
    /// fails the run, since its records would be lost.
    #[arg(long)]
    skip_unreadable_files: bool,

    /// Seconds to wait for another process's lock
    ///
    /// Seconds to wait while another process holds the warehouse (another load; on DuckDB also
    /// a reader), saying after a second who holds it; 0 fails at once.
    #[arg(long, value_name = "SECONDS", default_value_t = 60, allow_negative_numbers = true,
          value_parser = sparkify::cli::whole_number(0, 31_536_000))]
    lock_timeout: u64,

    /// Read every file again and rebuild everything
    ///
    /// Read every file again and rebuild staging and the star schema from them, whatever the
    /// ledger (loaded_files) says was loaded before. Without it, only files that are new since
    /// the last run are read, and what they change is merged in.
    #[arg(long)]
    full_refresh: bool,

    /// Skip the quality checks
    ///
    /// Skip the quality checks that end every load (keys not null and unique, references
    /// found, accepted values, as many songplays as plays staged; see the `check` binary).
    /// Without them a load that breaks one is committed, and on DuckDB, whose tables declare
    /// no keys, a repeated key goes unnoticed.
    #[arg(long)]
    no_checks: bool,

    /// Redshift: COPY small objects coalesced into a few large ones
    ///
    /// Redshift: fetch each source's small .json objects (under 1 MiB) and write them back to
    /// back into a few large objects under [S3] MANIFEST_PREFIX, which COPY then reads through
    /// a manifest: the same records, far fewer objects for COPY to open (see the README).
    /// Overrides [S3] COALESCE.
    #[arg(long)]
    coalesce: bool,

    /// Say what a load would read and do; load nothing
    ///
    /// List what would be loaded (files and bytes per source), check the JSONPaths file, and
    /// say what the run would do: the load line it would print (full refresh and why,
    /// incremental, or nothing new) and the files it would read, from the warehouse's ledger,
    /// read without changing anything.
    #[arg(long, conflicts_with = "print_sql")]
    dry_run: bool,

    /// Summary format
    ///
    /// What the summary on standard output is: a few lines for people (text; -v adds the
    /// tables of sources, rows and checks; -q prints nothing on success), or json: one
    /// document with the same figures, for schedulers (printed with -q too).
    #[arg(long, value_enum, default_value_t = SummaryFormat::Text)]
    format: SummaryFormat,

    /// Print the statements instead of sending them
    ///
    /// Print every statement etl would send to the chosen engine, in order, and send none:
    /// no warehouse, S3 or Data API is reached. Where a statement depends on the run (what S3
    /// holds, a COPY's id), a comment says so.
    #[arg(long)]
    print_sql: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum SummaryFormat {
    Text,
    Json,
}

fn main() -> ExitCode {
    let args: Args = sparkify::cli::parse();
    exit_code((|| {
        let mut config = args.common.init()?;
        if args.coalesce && !config.engine().is_redshift() {
            Args::command()
                .error(
                    clap::error::ErrorKind::ArgumentConflict,
                    format!(
                        "--coalesce is for Redshift, whose COPY reads the sources from S3; the {} \
                         engine reads the files itself",
                        config.engine().name()
                    ),
                )
                .exit();
        }
        config.s3.coalesce |= args.coalesce;
        if args.dry_run {
            let sources = config.engine_sources()?;
            let inputs =
                sparkify::etl::discover_inputs(&config, &sources, &args.common.progress())?;
            let plan = sparkify::etl::dry_run_plan(&config, &inputs, args.full_refresh)?;
            return sparkify::cli::print(&format!(
                "{}{plan}",
                sparkify::report::dry_run_summary(&inputs)
            ));
        }
        let options = EtlOptions {
            max_errors: args.max_errors.unwrap_or(config.warehouse.max_errors),
            unreadable: if args.skip_unreadable_files {
                Unreadable::Skip
            } else {
                Unreadable::Fail
            },
            lock_timeout: Duration::from_secs(args.lock_timeout),
            checks: !args.no_checks,
            full_refresh: args.full_refresh,
        };
        if args.print_sql {
            let mut printer = SqlPrinter::new(&config);
            sparkify::etl::run(&config, &mut printer, &options, &Progress::hidden())?;
            return sparkify::cli::print(&printer.script());
        }
        if let Some(line) = sparkify::etl::start_line(&config) {
            if !args.common.base.log.quiet {
                eprintln!("{line}");
            }
        }
        let mut warehouse = sparkify::warehouse::open_for_load(&config, options.lock_timeout)?;
        let report = sparkify::etl::run(
            &config,
            warehouse.as_mut(),
            &options,
            &args.common.progress(),
        )?;
        let log = &args.common.base.log;
        match args.format {
            SummaryFormat::Json => sparkify::cli::print(&sparkify::report::etl_json(&report)),
            SummaryFormat::Text if log.quiet => Ok(()),
            SummaryFormat::Text => {
                sparkify::cli::print(&sparkify::report::etl_summary(&report, log.verbose > 0))
            }
        }
        .map_err(|error| {
            // The load is committed: a summary that cannot be written does not undo it.
            error.context("the load was committed, but its summary could not be written")
        })
    })())
}
