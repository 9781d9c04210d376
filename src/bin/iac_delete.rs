//! `iac_delete`: tears down what `iac_create` built (see `sparkify::iac`).

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{CommandFactory, Parser};
use sparkify::cli::{exit_code, ConfigArgs};
use sparkify::config_edit::{self, Setting};
use sparkify::iac::{self, Clients, ConsoleReporter, DeletePlan, Timing};

/// Tear down the Redshift Serverless resources named in [DWH]: the ingress rule iac_create
/// made, the workgroup (waiting until it is gone), the namespace (waiting until it is gone;
/// --final-snapshot keeps a snapshot), and the IAM role with its policy (--keep-role keeps
/// them). Only resources iac_create made (tagged created-by = sparkify-iac) are deleted: if one
/// of the configured names is someone else's, nothing is deleted unless --adopt is given.
/// Resources already gone count as success; busy ones are retried. Afterwards [CLUSTER] HOST
/// in the config file is emptied, so the next step uses the embedded DuckDB warehouse.
///
/// It asks for confirmation on a terminal; in a script pass --yes.
#[derive(Parser)]
#[command(
    name = "iac_delete",
    version,
    after_help = "Examples:\n  iac_delete --dry-run                list what would be deleted\n  iac_delete                          ask, then delete\n  iac_delete --yes                    in a script: no question\n  iac_delete --final-snapshot last    keep a snapshot of the namespace"
)]
struct Args {
    #[command(flatten)]
    common: ConfigArgs,

    /// AWS region; overrides AWS_REGION and [DWH] DWH_REGION.
    #[arg(long)]
    region: Option<String>,

    /// Keep the IAM role and its policy.
    #[arg(long)]
    keep_role: bool,

    /// Keep a snapshot of the namespace under this name before deleting it.
    #[arg(long, value_name = "NAME")]
    final_snapshot: Option<String>,

    /// Delete without asking (required when stdin is not a terminal).
    #[arg(short, long)]
    yes: bool,

    /// Also delete resources of the configured names that iac_create did not make.
    #[arg(long)]
    adopt: bool,

    /// Seconds to wait for each resource to be gone.
    #[arg(long, value_name = "SECONDS", default_value_t = 1200)]
    timeout: u64,

    /// List what would be deleted, and any problem a real run would meet (no region, no
    /// credentials), without asking or changing anything.
    #[arg(long)]
    dry_run: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    exit_code((|| {
        let config = args.common.init()?;
        if !args.yes && !args.dry_run && !std::io::stdin().is_terminal() {
            no_terminal();
        }
        let timing = Timing {
            timeout: Duration::from_secs(args.timeout),
            ..Timing::default()
        };
        let mut plan =
            DeletePlan::new(&config, args.keep_role, args.final_snapshot.clone(), timing);
        plan.adopt = args.adopt;
        let runtime = tokio::runtime::Runtime::new().context("cannot start the AWS runtime")?;
        let sdk = runtime.block_on(sparkify::aws::sdk_config(&config, args.region.as_deref()));
        let region = sdk.region().map(|r| r.as_ref().to_string());
        let mut problems: Vec<String> =
            iac::region_problem(region.as_deref()).into_iter().collect();
        if let Some(problem) = runtime.block_on(sparkify::aws::credentials_problem(&sdk)) {
            problems.push(problem);
        }
        if args.dry_run {
            return iac::print_dry_run(
                "iac_delete",
                region.as_deref(),
                &plan.describe(),
                &problems,
                "Nothing was deleted (--dry-run).",
            );
        }
        if !problems.is_empty() {
            anyhow::bail!(
                "nothing was deleted; fix first:\n  - {}",
                problems.join("\n  - ")
            );
        }
        if !args.yes {
            confirm(&config, args.keep_role)?;
        }
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
        sparkify::cli::println(&format!(
            "done in {:.0} s; [CLUSTER] HOST emptied in {}",
            start.elapsed().as_secs_f64(),
            config.path.display()
        ))
    })())
}

/// Asks on the terminal before anything is deleted; without a terminal, `--yes` is required
/// (a usage error, exit 2).
fn confirm(config: &sparkify::config::Config, keep_role: bool) -> anyhow::Result<()> {
    if !std::io::stdin().is_terminal() {
        no_terminal();
    }
    let role = if keep_role {
        String::new()
    } else {
        format!(" and IAM role {}", config.dwh.iam_role_name)
    };
    eprint!(
        "Delete workgroup {}, namespace {} (with its data){role}? [y/N] ",
        config.dwh.workgroup, config.dwh.namespace
    );
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    if matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes") {
        Ok(())
    } else {
        anyhow::bail!("nothing was deleted")
    }
}

/// Without a terminal iac_delete cannot ask: `--yes` is required (a usage error, exit 2).
fn no_terminal() -> ! {
    Args::command()
        .error(
            clap::error::ErrorKind::MissingRequiredArgument,
            "stdin is not a terminal, so iac_delete cannot ask: pass --yes to delete",
        )
        .exit()
}
