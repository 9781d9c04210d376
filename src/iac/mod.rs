//! Infrastructure as code for Amazon Redshift Serverless: what `iac_create` builds (IAM role
//! with a least-privilege S3 policy, namespace, workgroup, ingress rule) and `iac_delete`
//! removes. Every step looks for its resource just before creating it, so a second run changes
//! nothing and says so; busy resources (`ConflictException`) and a role not yet usable are
//! retried with bounded backoff. The AWS clients are passed in, so tests drive every step with
//! aws-smithy-mocks.
//!
//! `iac_create`, in order ([`create`]): the role and its policy ([`role`], [`policy`]), the
//! namespace ([`namespace`]), the workgroup ([`workgroup`]), the ingress rule ([`ingress`]),
//! then the wait until both are available ([`available`]). `iac_delete` ([`delete`]): first
//! checks that everything still there is this tool's ([`owner`]), then revokes the ingress rule,
//! deletes the workgroup, the namespace and the role, each waited for until gone ([`wait`]). [`plan`] holds what both are asked to do,
//! [`report`] how they say what they did.

mod available;
mod ingress;
mod namespace;
mod owner;
mod plan;
mod policy;
mod report;
mod retry;
mod role;
mod usage_limit;
mod wait;
mod workgroup;

use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};

use self::namespace::get_namespace;
use self::owner::ensure_serverless_ours;
use self::workgroup::get_workgroup;

pub use self::ingress::{caller_cidr, check_cidr, check_ip_endpoint, ingress_description};
pub use self::namespace::role_arns;
pub use self::owner::{
    new_instance_id, CONFIG_TAG_KEY, INSTANCE_TAG_KEY, OWNER_TAG_KEY, OWNER_TAG_VALUE,
};
pub use self::plan::{
    capacity_problem, create_problems, final_snapshot_name, password_problems, region_problem,
    secret_endpoint_problem, CreatePlan, DeletePlan,
};
pub use self::policy::s3_read_policy;
pub use self::report::{print_dry_run, Change, Collect, ConsoleReporter, Reporter, Step};
/// Whether a `[DWH] DWH_INSTANCE_ID` value is one (see [`owner`]).
pub use crate::config::is_instance_id;

/// The AWS clients the IaC steps use.
#[derive(Debug, Clone)]
pub struct Clients {
    pub iam: aws_sdk_iam::Client,
    pub serverless: aws_sdk_redshiftserverless::Client,
    pub ec2: aws_sdk_ec2::Client,
    pub sts: aws_sdk_sts::Client,
}

impl Clients {
    pub fn new(sdk: &aws_config::SdkConfig) -> Clients {
        Clients {
            iam: aws_sdk_iam::Client::new(sdk),
            serverless: aws_sdk_redshiftserverless::Client::new(sdk),
            ec2: aws_sdk_ec2::Client::new(sdk),
            sts: aws_sdk_sts::Client::new(sdk),
        }
    }
}

/// The name of the inline policy `iac_create` puts on the role.
pub const POLICY_NAME: &str = "sparkify-s3-read";

/// How long to wait and how often to look.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// Longest wait for a resource to become available or to be gone.
    pub timeout: Duration,
    /// Pause between two status checks.
    pub poll: Duration,
    /// First pause before retrying a busy resource or a role not yet usable; doubles.
    pub backoff: Duration,
    /// Attempts for a retried call.
    pub attempts: u32,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            timeout: Duration::from_secs(20 * 60),
            poll: Duration::from_secs(10),
            backoff: Duration::from_secs(2),
            attempts: 8,
        }
    }
}

/// What `iac_create` produced: where to connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Created {
    pub host: String,
    pub port: u16,
    pub role_arn: String,
    /// Whether any step changed anything.
    pub changed: bool,
}

/// What `iac_create` writes back into the config file after `created`: (section, key, value).
/// With `no_ingress` and the engine left to `auto`, also `[WAREHOUSE] ENGINE = redshift-data`:
/// without an open port the endpoint in HOST cannot be reached, and the auto engine would
/// take the wire engine and wait on it.
pub fn config_after_create(
    config: &crate::config::Config,
    created: &Created,
    no_ingress: bool,
) -> Vec<(&'static str, &'static str, String)> {
    let mut settings = vec![
        ("CLUSTER", "HOST", created.host.clone()),
        ("CLUSTER", "DB_PORT", created.port.to_string()),
        ("IAM_ROLE", "ARN", created.role_arn.clone()),
    ];
    if no_ingress && config.warehouse.engine == crate::config::EngineChoice::Auto {
        settings.push(("WAREHOUSE", "ENGINE", "redshift-data".into()));
    }
    settings
}

/// What `iac_delete` writes back into the config file: HOST emptied (the embedded DuckDB
/// warehouse again), and an engine set to the Data API of the deleted workgroup back to auto.
pub fn config_after_delete(
    config: &crate::config::Config,
) -> Vec<(&'static str, &'static str, String)> {
    let mut settings = vec![("CLUSTER", "HOST", String::new())];
    if config.warehouse.engine == crate::config::EngineChoice::RedshiftData
        && config.dwh.cluster_identifier.is_empty()
    {
        settings.push(("WAREHOUSE", "ENGINE", "auto".into()));
    }
    settings
}

/// Builds everything in `plan`, in order, each step reported as it ends.
pub async fn create(
    clients: &Clients,
    plan: &CreatePlan,
    report: &dyn Reporter,
) -> Result<Created> {
    let mut changed = false;
    let mut record = |what: String, change: Change, clock: Instant| {
        changed |= !matches!(change, Change::Unchanged);
        report.step(&Step::since(what, change, clock));
    };

    // 1. The role and its inline policy.
    let clock = Instant::now();
    let (role_arn, role_change) = role::ensure_role(clients, plan).await?;
    record(format!("IAM role {}", plan.role_name), role_change, clock);
    let clock = Instant::now();
    let policy_change = role::ensure_policy(clients, plan).await?;
    record(
        format!("policy {POLICY_NAME} on the role"),
        policy_change,
        clock,
    );

    // 2. The namespace, with the role attached and default.
    let clock = Instant::now();
    let namespace_change = namespace::ensure_namespace(clients, plan, &role_arn).await?;
    record(
        format!("namespace {}", plan.namespace),
        namespace_change,
        clock,
    );

    // 3. The workgroup.
    let clock = Instant::now();
    let workgroup_change = workgroup::ensure_workgroup(clients, plan).await?;
    record(
        format!("workgroup {}", plan.workgroup),
        workgroup_change,
        clock,
    );

    // 4. The ingress rule (and before it, the usage limit on the workgroup).
    let workgroup = workgroup::get_workgroup(clients, &plan.workgroup)
        .await?
        .ok_or_else(|| anyhow!("workgroup {} vanished after it was created", plan.workgroup))?;
    if let (Some(rpu_hours), Some(arn)) = (plan.usage_limit_rpu_hours, workgroup.workgroup_arn()) {
        let clock = Instant::now();
        let change = usage_limit::ensure_usage_limit(clients, arn, rpu_hours).await?;
        record(
            format!("usage limit: at most {rpu_hours} RPU-hours a day, then queries stop"),
            change,
            clock,
        );
    }
    let port = workgroup
        .endpoint()
        .and_then(|e| e.port())
        .or(workgroup.port())
        .unwrap_or(5439);
    if let Some(cidr) = &plan.ingress_cidr {
        let clock = Instant::now();
        let group = workgroup.security_group_ids().first().ok_or_else(|| {
            anyhow!(
                "workgroup {} has no security group to open: add one, or pass --no-ingress and \
                 use the redshift-data engine",
                plan.workgroup
            )
        })?;
        let change = ingress::ensure_ingress(clients, group, port, cidr, &plan.workgroup).await?;
        record(
            format!("ingress {cidr} to TCP {port} on {group}"),
            change,
            clock,
        );
    }

    // 5. Wait until both are available.
    let clock = Instant::now();
    let host = available::wait_available(clients, plan, report).await?;
    record(
        format!("namespace and workgroup AVAILABLE at {host}"),
        Change::Unchanged,
        clock,
    );
    Ok(Created {
        host,
        port: u16::try_from(port).unwrap_or(5439),
        role_arn,
        changed,
    })
}

/// Tears down what `iac_create` built: the ingress rule it made, the workgroup (waiting until
/// gone), the namespace (waiting until gone), the role and its policy (unless kept).
/// Nothing is deleted unless every resource still there is this tool's (or `--adopt`).
pub async fn delete(clients: &Clients, plan: &DeletePlan, report: &dyn Reporter) -> Result<()> {
    // The rule is found through the workgroup's security group, so it is looked up first.
    let workgroup = get_workgroup(clients, &plan.workgroup).await?;
    let groups: Vec<String> = workgroup
        .as_ref()
        .map(|w| w.security_group_ids().to_vec())
        .unwrap_or_default();
    let namespace = get_namespace(clients, &plan.namespace).await?;
    if let Some(workgroup) = &workgroup {
        let what = format!("workgroup {}", plan.workgroup);
        let arn = workgroup.workgroup_arn();
        ensure_serverless_ours(clients, arn, &what, "DWH_WORKGROUP_NAME", plan).await?;
    }
    if let Some(namespace) = &namespace {
        let what = format!("namespace {}", plan.namespace);
        let arn = namespace.namespace_arn();
        ensure_serverless_ours(clients, arn, &what, "DWH_NAMESPACE_NAME", plan).await?;
    }
    if !plan.keep_role && !plan.adopt {
        match role::find_role(clients, &plan.role_name, &plan.instance_id).await? {
            None | Some((_, owner::Owner::ThisConfig)) => {}
            Some((_, whose)) => {
                return Err(owner::not_ours(
                    &format!("IAM role {}", plan.role_name),
                    "DWH_IAM_ROLE_NAME",
                    &whose,
                ))
            }
        }
    }

    // The rule is revoked first, while the workgroup still names its security group: a delete
    // that then times out or fails leaves no port open, and a re-run finds the rule again.
    for group in &groups {
        let clock = Instant::now();
        let revoked = ingress::revoke_ingress(clients, group, &plan.workgroup).await?;
        let change = if revoked > 0 {
            Change::Deleted
        } else {
            Change::AlreadyGone
        };
        let what = format!("the ingress rules made by iac_create on {group}: {revoked}");
        report.step(&Step::since(what, change, clock));
    }

    if let Some(arn) = workgroup.as_ref().and_then(|w| w.workgroup_arn()) {
        let clock = Instant::now();
        let change = usage_limit::delete_usage_limits(clients, arn).await?;
        report.step(&Step::since(
            format!("usage limits of workgroup {}", plan.workgroup),
            change,
            clock,
        ));
    }

    let clock = Instant::now();
    let change = match workgroup {
        Some(_) => workgroup::delete_workgroup(clients, plan, report).await?,
        None => Change::AlreadyGone,
    };
    report.step(&Step::since(
        format!("workgroup {}", plan.workgroup),
        change,
        clock,
    ));

    let clock = Instant::now();
    let change = match namespace {
        Some(_) => namespace::delete_namespace(clients, plan, report).await?,
        None => Change::AlreadyGone,
    };
    report.step(&Step::since(
        format!("namespace {}", plan.namespace),
        change,
        clock,
    ));

    let clock = Instant::now();
    let change = if plan.keep_role {
        Change::Kept
    } else {
        role::delete_role(clients, &plan.role_name).await?
    };
    let what = format!("IAM role {} and its policy", plan.role_name);
    report.step(&Step::since(what, change, clock));
    Ok(())
}
