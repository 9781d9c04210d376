//! `iac_create`: Redshift Serverless provisioning; not in this version yet.

use std::process::ExitCode;

use clap::Parser;
use sparkify::cli::{exit_code, CommonArgs};

/// Provision (iac_create) or tear down (iac_delete) Amazon Redshift Serverless from the
/// [DWH] section of the config file.
///
/// Not available in this version: it exits 1. The embedded DuckDB warehouse needs no
/// provisioning: run create_tables, etl and analysis.
#[derive(Parser)]
#[command(version)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
}

fn main() -> ExitCode {
    let args = Args::parse();
    args.common.init_logging();
    exit_code(Err(anyhow::anyhow!(
        "iac_create is not available yet in this version; the embedded DuckDB warehouse needs no \
         provisioning: run create_tables, etl and analysis"
    )))
}
