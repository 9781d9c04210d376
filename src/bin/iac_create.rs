//! `iac_create`: provisions Amazon Redshift Serverless for the pipeline (see `sparkify::iac`).

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{CommandFactory, Parser};
use sparkify::cli::{exit_code, ConfigArgs};
use sparkify::config_edit::{self, Setting};
use sparkify::iac::{self, Clients, ConsoleReporter, CreatePlan, Timing};

/// Provision Amazon Redshift Serverless from the config file
///
/// Provision Amazon Redshift Serverless from the config file, in this order, each step checking
/// for its resource first so that a second run changes nothing:
///
/// 1. the IAM role [DWH] DWH_IAM_ROLE_NAME that Redshift assumes, with an inline policy that
///    may only list and read the [S3] sources;
/// 2. the namespace [DWH] DWH_NAMESPACE_NAME (database [CLUSTER] DB_NAME, admin [CLUSTER]
///    DB_USER with password DB_PASSWORD, or --manage-password), the role attached as default;
/// 3. the workgroup [DWH] DWH_WORKGROUP_NAME ([DWH] DWH_BASE_CAPACITY RPU, default 8;
///    require_ssl on);
/// 4. an ingress rule on the workgroup's security group: TCP on its port from this machine's
///    public IP as a /32 (--cidr to give it, --no-ingress for none);
/// 5. waits until namespace and workgroup are AVAILABLE (--timeout);
/// 6. writes [CLUSTER] HOST and DB_PORT and [IAM_ROLE] ARN into the config file (other lines
///    kept; the file left readable by its owner only).
///
/// What it creates is tagged created-by = sparkify-iac and with this config's instance id, made
/// on the first run and written into the config file as [DWH] DWH_INSTANCE_ID before anything
/// is created. A role, namespace or workgroup of a configured name without this config's id is
/// someone else's (another user of the account who kept the default names, say): it is refused
/// and left untouched unless --adopt is given.
///
/// AWS access: region from --region, AWS_REGION or [DWH] DWH_REGION; credentials from the AWS
/// default chain (or [AWS] KEY/SECRET). Costs start when the workgroup is available: run
/// iac_delete when done.
#[derive(Parser)]
#[command(
    name = "iac_create",
    version,
    verbatim_doc_comment,
    after_long_help = "Examples:\n  iac_create --dry-run             print the plan, change nothing\n  iac_create                       provision, then run create_tables, etl, analysis\n  iac_create --no-ingress          for the redshift-data engine: no open port\n  iac_create --cidr 203.0.113.7/32 open the port to this address"
)]
struct Args {
    #[command(flatten)]
    common: ConfigArgs,

    /// AWS region; overrides AWS_REGION and [DWH] DWH_REGION.
    #[arg(long)]
    region: Option<String>,

    /// Print what would be created and change nothing.
    #[arg(long)]
    dry_run: bool,

    /// Let Secrets Manager keep the admin password
    ///
    /// Let AWS Secrets Manager generate and keep the admin password instead of
    /// [CLUSTER] DB_PASSWORD.
    #[arg(long)]
    manage_password: bool,

    /// Open no port (for the redshift-data engine)
    ///
    /// Open no port: use the redshift-data engine (Data API) afterwards.
    #[arg(long, conflicts_with = "cidr")]
    no_ingress: bool,

    /// The address allowed to connect
    ///
    /// The address allowed to connect, as ADDRESS/32, instead of this machine's public IP.
    #[arg(long, value_name = "ADDRESS/BITS")]
    cidr: Option<String>,

    /// Let --cidr name a network, up to a /24
    ///
    /// Let --cidr name a network wider than one address (at most a /24).
    #[arg(long, requires = "cidr")]
    allow_wide_cidr: bool,

    /// Where this machine's public IP is asked (https only)
    ///
    /// Where this machine's public IP is asked, over https only; by default
    /// https://checkip.amazonaws.com, AWS's own.
    #[arg(
        long,
        value_name = "URL",
        default_value = "https://checkip.amazonaws.com",
        hide_default_value = true
    )]
    ip_endpoint: String,

    /// Take over resources iac_create did not make
    ///
    /// Take over a role, namespace or workgroup of the configured name that iac_create did not
    /// make (it is tagged created-by = sparkify-iac, and iac_delete will remove it). Without
    /// this flag such a resource is refused and left untouched.
    #[arg(long)]
    adopt: bool,

    /// Seconds to wait until the workgroup is available
    ///
    /// Seconds to wait for the namespace and workgroup to become available.
    #[arg(long, value_name = "SECONDS", default_value_t = 1200)]
    timeout: u64,
}

fn main() -> ExitCode {
    let args: Args = sparkify::cli::parse_sending_no_sql();
    // Flags that name a bad network are usage errors (exit 2), refused before anything.
    let flags = args
        .cidr
        .as_ref()
        .map_or(Ok(()), |cidr| iac::check_cidr(cidr, args.allow_wide_cidr))
        .and_then(|()| iac::check_ip_endpoint(&args.ip_endpoint));
    if let Err(error) = flags {
        Args::command()
            .error(
                clap::error::ErrorKind::ValueValidation,
                format!("{error:#}"),
            )
            .exit();
    }
    exit_code((|| {
        let config = args.common.init()?;
        let timing = Timing {
            timeout: Duration::from_secs(args.timeout),
            ..Timing::default()
        };
        let runtime = tokio::runtime::Runtime::new().context("cannot start the AWS runtime")?;
        let sdk = runtime.block_on(sparkify::aws::sdk_config(&config, args.region.as_deref()));
        // Everything a real run would trip on, found before any change and listed at once.
        let region = sdk.region().map(|r| r.as_ref().to_string());
        let mut problems = iac::create_problems(&config, args.manage_password, region.as_deref());
        if let Some(problem) = runtime.block_on(sparkify::aws::credentials_problem(&sdk)) {
            problems.push(problem);
        }
        problems.extend(iac::secret_endpoint_problem(&sdk, !args.manage_password));
        if !problems.is_empty() && !args.dry_run {
            bail!(
                "nothing was changed; fix first:\n  - {}",
                problems.join("\n  - ")
            );
        }
        let cidr = match (&args.cidr, args.no_ingress, args.dry_run) {
            (_, true, _) => None,
            (Some(cidr), _, _) => Some(cidr.clone()),
            (None, false, true) => Some(format!(
                "(this machine's public IP, from {})/32",
                args.ip_endpoint
            )),
            (None, false, false) => Some(runtime.block_on(iac::caller_cidr(&args.ip_endpoint))?),
        };
        let plan = CreatePlan::new(&config, args.manage_password, cidr, timing).map(|mut plan| {
            plan.adopt = args.adopt;
            plan
        });
        if args.dry_run {
            // Without [S3] sources there is no policy to show: the problems say why.
            let steps = plan.as_ref().map(CreatePlan::describe).unwrap_or_default();
            return iac::print_dry_run(
                "iac_create",
                region.as_deref(),
                &steps,
                &problems,
                "Nothing was changed (--dry-run).",
            );
        }
        let region = region.unwrap_or_else(|| "(no region)".into());
        let mut plan = plan?;
        if plan.instance_id.is_empty() {
            // Written before anything is created, so that a run stopped halfway still owns
            // what it made.
            plan.instance_id = iac::new_instance_id();
            config_edit::update(
                &config.path,
                &[Setting {
                    section: "DWH",
                    key: "DWH_INSTANCE_ID",
                    value: &plan.instance_id,
                }],
            )?;
            sparkify::cli::println(&format!(
                "instance id {} written into {} as [DWH] DWH_INSTANCE_ID: keep it there, \
                 iac_delete deletes only what carries it",
                plan.instance_id,
                config.path.display()
            ))?;
        }
        sparkify::cli::println(&format!("iac_create in region {region}"))?;
        let clients = Clients::new(&sdk);
        let reporter = ConsoleReporter::new(&args.common.progress());
        let created = runtime.block_on(iac::create(&clients, &plan, &reporter));
        reporter.finish();
        let created = created?;
        let port = created.port.to_string();
        let written = iac::config_after_create(&config, &created, args.no_ingress);
        let data_api = written.iter().any(|(_, key, _)| *key == "ENGINE");
        config_edit::update_values(&config.path, &written)?;
        if created.changed {
            sparkify::cli::println(&format!(
                "wrote HOST = {}, DB_PORT = {port} and ARN = {} into {}",
                created.host,
                created.role_arn,
                config.path.display()
            ))?;
        } else {
            sparkify::cli::println(&format!(
                "nothing to change: everything already exists; {} is up to date",
                config.path.display()
            ))?;
        }
        if data_api {
            sparkify::cli::println(&format!(
                "no port was opened: [WAREHOUSE] ENGINE = redshift-data written into {}, so the \
                 steps go through the Data API",
                config.path.display()
            ))?;
        } else if args.no_ingress {
            sparkify::cli::println(
                "no port was opened: run the steps with --engine redshift-data (or set \
                 [WAREHOUSE] ENGINE = redshift-data), which goes through the Data API",
            )?;
        }
        sparkify::cli::println(
            "next: create_tables, etl, analysis; iac_delete when done (a workgroup costs while \
             it runs)",
        )?;
        Ok(())
    })())
}
