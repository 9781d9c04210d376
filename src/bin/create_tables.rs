//! `create_tables`: drop and create the staging tables, the star schema and `load_errors`.

use std::process::ExitCode;

use clap::Parser;
use sparkify::cli::{exit_code, CommonArgs};

/// Drop and create every table of the warehouse, empty: staging_events, staging_songs,
/// load_errors, and the star schema songplays, users, songs, artists, time.
///
/// The warehouse is chosen by the config file: with [CLUSTER] HOST empty (or
/// [WAREHOUSE] ENGINE = duckdb) it is the DuckDB file [WAREHOUSE] DUCKDB_PATH
/// (default sparkify.duckdb next to the config file); with a PostgreSQL host (or
/// ENGINE = postgres) it is that server, reached with [CLUSTER] HOST, DB_PORT, DB_NAME,
/// DB_USER and DB_PASSWORD. --engine overrides the file. Run this once before etl;
/// running it again empties the warehouse.
#[derive(Parser)]
#[command(
    name = "create_tables",
    version,
    after_help = "Examples:\n  create_tables                          create them with ./dwh.cfg\n  create_tables --engine redshift --print-sql   the DDL Redshift would get, offline"
)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,

    /// Print every statement create_tables would send to the chosen engine, in order, and
    /// send none (no connection is made).
    #[arg(long)]
    print_sql: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    exit_code((|| {
        let config = args.common.init()?;
        if args.print_sql {
            let mut printer = sparkify::warehouse::SqlPrinter::new(&config);
            sparkify::create_tables::create_tables(&mut printer)?;
            return sparkify::cli::print(&printer.script());
        }
        let mut warehouse = sparkify::warehouse::open(&config)?;
        let tables = sparkify::create_tables::create_tables(warehouse.as_mut())?;
        sparkify::cli::println(&format!(
            "created {} tables in {}: {}",
            tables.len(),
            warehouse.describe(),
            tables.join(", ")
        ))
    })())
}
