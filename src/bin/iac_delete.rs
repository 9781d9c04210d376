//! `iac_delete`: tears down what `iac_create` built (see `sparkify::iac`).

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{CommandFactory, Parser};
use sparkify::cli::{exit_code, ConfigArgs};
use sparkify::config_edit;
use sparkify::iac::{self, Clients, ConsoleReporter, DeletePlan, Timing};

/// Tear down the Redshift Serverless resources iac_create made.
///
/// Tear down the Redshift Serverless resources named in [DWH]: the ingress rule iac_create
/// made, the workgroup (waiting until it is gone), the namespace (waiting until it is gone,
/// after a final snapshot of its data: --no-final-snapshot for none), and the IAM role with
/// its policy (--keep-role keeps them). Only resources this config's iac_create made (tagged
/// with its [DWH] DWH_INSTANCE_ID) are deleted: if one of the configured names is someone
/// else's, or another config's, nothing is deleted unless --adopt is given.
/// Resources already gone count as success; busy ones are retried. Afterwards [CLUSTER] HOST
/// in the config file is emptied, so the next step uses the embedded DuckDB warehouse.
///
/// It asks for confirmation on a terminal; in a script pass --yes.
#[derive(Parser)]
#[command(
    name = "iac_delete",
    version,
    after_long_help = "Examples:\n  iac_delete --dry-run                list what would be deleted\n  iac_delete                          ask, then delete\n  iac_delete --yes                    in a script: no question\n  iac_delete --final-snapshot last    name the snapshot kept of the namespace\n  iac_delete --no-final-snapshot      keep no snapshot: the data is gone"
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

    /// Name of the final snapshot of the namespace
    ///
    /// The name of the snapshot of the namespace kept before it is deleted [default:
    /// <namespace>-final-<UTC date>-<time>]. The snapshot keeps the data (and costs its
    /// storage) until you delete it.
    #[arg(long, value_name = "NAME", conflicts_with = "no_final_snapshot")]
    final_snapshot: Option<String>,

    /// Keep no snapshot: the namespace's data is gone with it.
    #[arg(long)]
    no_final_snapshot: bool,

    /// Delete without asking (required when stdin is not a terminal).
    #[arg(short, long)]
    yes: bool,

    /// Also delete resources iac_create did not make
    ///
    /// Also delete resources of the configured names that iac_create did not make.
    #[arg(long)]
    adopt: bool,

    /// Seconds to wait for each resource to be gone.
    #[arg(long, value_name = "SECONDS", default_value_t = 1200)]
    timeout: u64,

    /// Say what would be deleted; delete nothing
    ///
    /// List what would be deleted, and any problem a real run would meet (no region, no
    /// credentials), without asking or changing anything.
    #[arg(long)]
    dry_run: bool,
}

fn main() -> ExitCode {
    let args: Args = sparkify::cli::parse_sending_no_sql();
    exit_code((|| {
        let config = args.common.init()?;
        if !args.yes && !args.dry_run && !std::io::stdin().is_terminal() {
            no_terminal();
        }
        let timing = Timing {
            timeout: Duration::from_secs(args.timeout),
            ..Timing::default()
        };
        let snapshot = match (&args.final_snapshot, args.no_final_snapshot) {
            (_, true) => None,
            (Some(name), false) => Some(name.clone()),
            (None, false) => Some(iac::final_snapshot_name(
                &config.dwh.namespace,
                chrono::Utc::now(),
            )),
        };
        let mut plan = DeletePlan::new(&config, args.keep_role, snapshot, timing);
        plan.adopt = args.adopt;
        let runtime = tokio::runtime::Runtime::new().context("cannot start the AWS runtime")?;
        let sdk = runtime.block_on(sparkify::aws::sdk_config(&config, args.region.as_deref()));
        let region = sdk.region().map(|r| r.as_ref().to_string());
        let mut problems: Vec<String> = plan.problem(&config).into_iter().collect();
        problems.extend(iac::region_problem(region.as_deref()));
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
            confirm(&config, args.keep_role, plan.final_snapshot.as_deref())?;
        }
        let clients = Clients::new(&sdk);
        let reporter = ConsoleReporter::new(&args.common.progress());
        let start = Instant::now();
        let deleted = runtime.block_on(iac::delete(&clients, &plan, &reporter));
        reporter.finish();
        deleted?;
        config_edit::update_values(&config.path, &iac::config_after_delete(&config))?;
        sparkify::cli::println(&format!(
            "done in {:.0} s; [CLUSTER] HOST emptied in {}",
            start.elapsed().as_secs_f64(),
            config.path.display()
        ))
    })())
}

/// Asks on the terminal before anything is deleted; without a terminal, `--yes` is required
/// (a usage error, exit 2).
fn confirm(
    config: &sparkify::config::Config,
    keep_role: bool,
    snapshot: Option<&str>,
) -> anyhow::Result<()> {
    if !std::io::stdin().is_terminal() {
        no_terminal();
    }
    let role = if keep_role {
        String::new()
    } else {
        format!(" and IAM role {}", config.dwh.iam_role_name)
    };
    let data = match snapshot {
        Some(name) => format!("its data kept in snapshot {name}"),
        None => "with its data, no snapshot".to_string(),
    };
    eprint!(
        "Delete workgroup {}, namespace {} ({data}){role}? [y/N] ",
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
