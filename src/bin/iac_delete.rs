//! `iac_delete`: tears down what `iac_create` built (see `sparkify::iac`).

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use sparkify::cli::{exit_code, CommonArgs};
use sparkify::config_edit::{self, Setting};
use sparkify::iac::{self, Clients, ConsoleReporter, DeletePlan, Timing};

/// Tear down the Redshift Serverless resources named in [DWH]: the workgroup (waiting until it
/// is gone), the namespace (waiting until it is gone; --final-snapshot keeps a snapshot), the
/// ingress rule iac_create made, and the IAM role with its policy (--keep-role keeps them).
/// Resources already gone count as success; busy ones are retried. Afterwards [CLUSTER] HOST
/// in the config file is emptied, so the next step uses the embedded DuckDB warehouse.
#[derive(Parser)]
#[command(version)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,

    /// AWS region; overrides AWS_REGION and [DWH] DWH_REGION.
    #[arg(long)]
    region: Option<String>,

    /// Keep the IAM role and its policy.
    #[arg(long)]
    keep_role: bool,

    /// Keep a snapshot of the namespace under this name before deleting it.
    #[arg(long, value_name = "NAME")]
    final_snapshot: Option<String>,

    /// Seconds to wait for each resource to be gone.
    #[arg(long, value_name = "SECONDS", default_value_t = 1200)]
    timeout: u64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    exit_code((|| {
        let config = args.common.init()?;
        let timing = Timing {
            timeout: Duration::from_secs(args.timeout),
            ..Timing::default()
        };
        let plan = DeletePlan::new(&config, args.keep_role, args.final_snapshot.clone(), timing);
        let runtime = tokio::runtime::Runtime::new().context("cannot start the AWS runtime")?;
        let sdk = runtime.block_on(sparkify::aws::sdk_config(&config, args.region.as_deref()));
        let clients = Clients::new(&sdk);
        let reporter = ConsoleReporter::new(&args.common.progress());
        let start = Instant::now();
        let deleted = runtime.block_on(iac::delete(&clients, &plan, &reporter));
        reporter.finish();
        deleted?;
        config_edit::update(
            &config.path,
            &[Setting {
                section: "CLUSTER",
                key: "HOST",
                value: "",
            }],
        )?;
        println!(
            "done in {:.0} s; [CLUSTER] HOST emptied in {}",
            start.elapsed().as_secs_f64(),
            config.path.display()
        );
        Ok(())
    })())
}
