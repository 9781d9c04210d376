//! Infrastructure as code for Amazon Redshift Serverless: what `iac_create` builds (IAM role
//! with a least-privilege S3 policy, namespace, workgroup, ingress rule) and `iac_delete`
//! removes. Every step looks for its resource just before creating it, so a second run changes
//! nothing and says so; busy resources (`ConflictException`) and a role not yet usable are
//! retried with bounded backoff. The AWS clients are passed in, so tests drive every step with
//! aws-smithy-mocks.

use std::future::Future;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use aws_sdk_ec2::types::{Filter, IpPermission, IpRange};
use aws_sdk_iam::error::ProvideErrorMetadata;
use aws_sdk_redshiftserverless::types::ConfigParameter;
use serde_json::json;

use crate::aws::explain;
use crate::config::{Config, Location, Secret};

/// The AWS clients the IaC steps use.
#[derive(Debug, Clone)]
pub struct Clients {
    pub iam: aws_sdk_iam::Client,
    pub serverless: aws_sdk_redshiftserverless::Client,
    pub ec2: aws_sdk_ec2::Client,
}

impl Clients {
    pub fn new(sdk: &aws_config::SdkConfig) -> Clients {
        Clients {
            iam: aws_sdk_iam::Client::new(sdk),
            serverless: aws_sdk_redshiftserverless::Client::new(sdk),
            ec2: aws_sdk_ec2::Client::new(sdk),
        }
    }
}

/// The name of the inline policy `iac_create` puts on the role.
pub const POLICY_NAME: &str = "sparkify-s3-read";
/// The description that marks the ingress rule `iac_create` made, so `iac_delete` revokes
/// exactly that rule.
pub const INGRESS_DESCRIPTION: &str = "sparkify iac_create: Redshift from the caller's IP";

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

/// What `iac_create` builds, from `dwh.cfg` and the flags.
#[derive(Debug, Clone)]
pub struct CreatePlan {
    pub role_name: String,
    /// The policy document: read access to the `[S3]` sources only.
    pub policy: String,
    pub namespace: String,
    pub workgroup: String,
    pub db_name: String,
    pub admin_user: String,
    /// `None`: Secrets Manager keeps the admin password (`--manage-password`).
    pub admin_password: Option<Secret>,
    pub base_capacity: i32,
    /// The ingress rule's source, a /32 of the caller's address; `None`: no ingress rule.
    pub ingress_cidr: Option<String>,
    pub timing: Timing,
}

impl CreatePlan {
    /// The plan for `config`; `ingress_cidr` as found by the caller (or `--cidr`).
    pub fn new(
        config: &Config,
        manage_password: bool,
        ingress_cidr: Option<String>,
        timing: Timing,
    ) -> Result<CreatePlan> {
        let cluster = &config.cluster;
        let admin_password = if manage_password {
            None
        } else if cluster.db_password.is_empty() {
            bail!(
                "{}: [CLUSTER] DB_PASSWORD is empty: set the admin password there (8 to 64 \
                 characters with upper case, lower case and a digit), or pass --manage-password \
                 to let AWS Secrets Manager keep it",
                config.path.display()
            );
        } else {
            Some(cluster.db_password.clone())
        };
        for (key, value) in [("DB_NAME", &cluster.db_name), ("DB_USER", &cluster.db_user)] {
            if value.is_empty() {
                bail!(
                    "{}: [CLUSTER] {key} is empty: set the database name and admin user the \
                     namespace is created with",
                    config.path.display()
                );
            }
        }
        Ok(CreatePlan {
            role_name: config.dwh.iam_role_name.clone(),
            policy: s3_read_policy(config)?,
            namespace: config.dwh.namespace.clone(),
            workgroup: config.dwh.workgroup.clone(),
            db_name: cluster.db_name.clone(),
            admin_user: cluster.db_user.clone(),
            admin_password,
            base_capacity: config.dwh.base_capacity,
            ingress_cidr,
            timing,
        })
    }

    /// The plan in words, for `--dry-run` (no secret).
    pub fn describe(&self) -> Vec<String> {
        let mut steps = vec![
            format!(
                "IAM role {} that Redshift can assume, with inline policy {POLICY_NAME}: {}",
                self.role_name, self.policy
            ),
            format!(
                "namespace {} (database {}, admin user {}, admin password {}), the role attached \
                 and made default",
                self.namespace,
                self.db_name,
                self.admin_user,
                if self.admin_password.is_some() {
                    "from [CLUSTER] DB_PASSWORD"
                } else {
                    "kept by AWS Secrets Manager"
                }
            ),
            format!(
                "workgroup {} in that namespace: {} RPU base capacity, publicly accessible, \
                 require_ssl on",
                self.workgroup, self.base_capacity
            ),
        ];
        steps.push(match &self.ingress_cidr {
            Some(cidr) => format!(
                "ingress rule on the workgroup's security group: TCP on its port from {cidr}"
            ),
            None => "no ingress rule (--no-ingress)".to_string(),
        });
        steps.push(format!(
            "wait until namespace and workgroup are AVAILABLE (at most {} s)",
            self.timing.timeout.as_secs()
        ));
        steps.push(
            "write [CLUSTER] HOST, DB_PORT and [IAM_ROLE] ARN back into the config file".into(),
        );
        steps
    }
}

/// The inline policy for the role: `s3:ListBucket` on each source bucket, for the source
/// prefixes only, and `s3:GetObject` on the objects under them and the JSONPaths file.
pub fn s3_read_policy(config: &Config) -> Result<String> {
    let sources = config
        .s3_sources()
        .context("the role's policy is derived from the [S3] sources")?;
    let mut buckets: Vec<(String, Vec<String>)> = Vec::new();
    for location in [sources.log_data, sources.song_data, sources.log_jsonpath] {
        let Location::S3 {
            bucket,
            key: prefix,
        } = location
        else {
            unreachable!("s3_sources holds only S3 locations");
        };
        match buckets.iter_mut().find(|(b, _)| *b == bucket) {
            Some((_, prefixes)) => prefixes.push(prefix),
            None => buckets.push((bucket, vec![prefix])),
        }
    }
    let mut statements = Vec::new();
    for (bucket, prefixes) in &buckets {
        let listed: Vec<String> = prefixes.iter().map(|p| format!("{p}*")).collect();
        statements.push(json!({
            "Effect": "Allow",
            "Action": "s3:ListBucket",
            "Resource": format!("arn:aws:s3:::{bucket}"),
            "Condition": {"StringLike": {"s3:prefix": listed}},
        }));
    }
    let objects: Vec<String> = buckets
        .iter()
        .flat_map(|(bucket, prefixes)| {
            prefixes
                .iter()
                .map(move |p| format!("arn:aws:s3:::{bucket}/{p}*"))
        })
        .collect();
    statements.push(json!({"Effect": "Allow", "Action": "s3:GetObject", "Resource": objects}));
    Ok(json!({"Version": "2012-10-17", "Statement": statements}).to_string())
}

/// Who may assume the role: Redshift (provisioned and Serverless).
const ASSUME_ROLE_POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":["redshift.amazonaws.com","redshift-serverless.amazonaws.com"]},"Action":"sts:AssumeRole"}]}"#;

/// What a step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Created,
    Updated,
    Unchanged,
    Deleted,
    AlreadyGone,
    Kept,
}

impl Change {
    pub fn word(self) -> &'static str {
        match self {
            Change::Created => "created",
            Change::Updated => "updated",
            Change::Unchanged => "already there, unchanged",
            Change::Deleted => "deleted",
            Change::AlreadyGone => "already gone",
            Change::Kept => "kept",
        }
    }
}

/// One step's outcome, as printed.
#[derive(Debug, Clone)]
pub struct Step {
    pub what: String,
    pub change: Change,
    pub took: Duration,
}

/// Reports each step as it finishes and shows what is being waited for.
pub trait Reporter {
    fn step(&self, step: &Step);
    /// The current state of a wait (e.g. `workgroup CREATING`), called at every poll.
    fn waiting(&self, _state: &str, _elapsed: Duration) {}
}

/// A reporter that only collects, for tests and `-q`.
#[derive(Debug, Default)]
pub struct Collect(pub std::sync::Mutex<Vec<Step>>);

impl Reporter for Collect {
    fn step(&self, step: &Step) {
        self.0.lock().unwrap().push(step.clone());
    }
}

/// Prints each step on stdout as it ends, and the state of a wait on a spinner (stderr).
pub struct ConsoleReporter {
    spinner: indicatif::ProgressBar,
}

impl ConsoleReporter {
    pub fn new(progress: &crate::progress::Progress) -> Self {
        let spinner = progress.spinner("aws");
        spinner.set_message("");
        ConsoleReporter { spinner }
    }

    pub fn finish(&self) {
        self.spinner.finish_and_clear();
    }
}

impl Reporter for ConsoleReporter {
    fn step(&self, step: &Step) {
        self.spinner.suspend(|| {
            println!(
                "{}: {} ({:.1} s)",
                step.what,
                step.change.word(),
                step.took.as_secs_f64()
            )
        });
    }

    fn waiting(&self, state: &str, elapsed: Duration) {
        self.spinner
            .set_message(format!("{state} ({} s)", elapsed.as_secs()));
        tracing::info!("{state} after {} s", elapsed.as_secs());
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

fn code<E: ProvideErrorMetadata>(error: &E) -> &str {
    error.code().unwrap_or_default()
}

/// Runs `call` until it succeeds, fails with an error `retry` does not accept, or the attempts
/// run out; the pause doubles from `timing.backoff`.
async fn retrying<T, E, F, Fut>(
    timing: Timing,
    what: &str,
    retry: impl Fn(&E) -> bool,
    mut call: F,
) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: std::fmt::Display,
{
    let mut pause = timing.backoff;
    let mut attempt = 1;
    loop {
        match call().await {
            Err(error) if attempt < timing.attempts && retry(&error) => {
                tracing::info!("{what}: {error}; retrying in {pause:?}");
                tokio::time::sleep(pause).await;
                pause = pause.saturating_mul(2).min(Duration::from_secs(60));
                attempt += 1;
            }
            other => return other,
        }
    }
}

fn is_conflict<E: ProvideErrorMetadata>(error: &E) -> bool {
    code(error) == "ConflictException"
}

/// A role just created is not usable by Redshift for a few seconds.
fn role_not_ready<E: ProvideErrorMetadata>(error: &E) -> bool {
    let message = error.message().unwrap_or_default().to_ascii_lowercase();
    matches!(code(error), "ValidationException" | "InvalidParameterValue")
        && message.contains("role")
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
        report.step(&Step {
            what,
            change,
            took: clock.elapsed(),
        });
    };

    // 1. The role and its inline policy.
    let clock = Instant::now();
    let (role_arn, role_change) = ensure_role(clients, plan).await?;
    record(format!("IAM role {}", plan.role_name), role_change, clock);
    let clock = Instant::now();
    let policy_change = ensure_policy(clients, plan).await?;
    record(
        format!("policy {POLICY_NAME} on the role"),
        policy_change,
        clock,
    );

    // 2. The namespace, with the role attached and default.
    let clock = Instant::now();
    let namespace_change = ensure_namespace(clients, plan, &role_arn).await?;
    record(
        format!("namespace {}", plan.namespace),
        namespace_change,
        clock,
    );

    // 3. The workgroup.
    let clock = Instant::now();
    let workgroup_change = ensure_workgroup(clients, plan).await?;
    record(
        format!("workgroup {}", plan.workgroup),
        workgroup_change,
        clock,
    );

    // 4. The ingress rule.
    let workgroup = get_workgroup(clients, &plan.workgroup)
        .await?
        .ok_or_else(|| anyhow!("workgroup {} vanished after it was created", plan.workgroup))?;
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
        let change = ensure_ingress(clients, group, port, cidr).await?;
        record(
            format!("ingress {cidr} to TCP {port} on {group}"),
            change,
            clock,
        );
    }

    // 5. Wait until both are available.
    let clock = Instant::now();
    let host = wait_available(clients, plan, report).await?;
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

async fn ensure_role(clients: &Clients, plan: &CreatePlan) -> Result<(String, Change)> {
    match clients
        .iam
        .get_role()
        .role_name(&plan.role_name)
        .send()
        .await
    {
        Ok(found) => {
            let arn = found
                .role()
                .map(|r| r.arn().to_string())
                .unwrap_or_default();
            return Ok((arn, Change::Unchanged));
        }
        Err(e) if code(&e) == "NoSuchEntity" => {}
        Err(e) => bail!(
            "cannot look up IAM role {}: {}",
            plan.role_name,
            explain(&e)
        ),
    }
    let created = clients
        .iam
        .create_role()
        .role_name(&plan.role_name)
        .description("Lets Redshift read the Sparkify sources in S3 (made by iac_create)")
        .assume_role_policy_document(ASSUME_ROLE_POLICY)
        .send()
        .await
        .map_err(|e| anyhow!("cannot create IAM role {}: {}", plan.role_name, explain(&e)))?;
    let arn = created
        .role()
        .map(|r| r.arn().to_string())
        .unwrap_or_default();
    Ok((arn, Change::Created))
}

/// The policy document as IAM returns it (URL-encoded JSON), parsed for comparison.
fn policy_value(document: &str) -> Option<serde_json::Value> {
    let decoded = percent_encoding::percent_decode_str(document)
        .decode_utf8()
        .ok()?;
    serde_json::from_str(&decoded).ok()
}

async fn ensure_policy(clients: &Clients, plan: &CreatePlan) -> Result<Change> {
    let existing = clients
        .iam
        .get_role_policy()
        .role_name(&plan.role_name)
        .policy_name(POLICY_NAME)
        .send()
        .await;
    let change = match existing {
        Ok(found) => {
            if policy_value(found.policy_document()) == serde_json::from_str(&plan.policy).ok() {
                return Ok(Change::Unchanged);
            }
            Change::Updated
        }
        Err(e) if code(&e) == "NoSuchEntity" => Change::Created,
        Err(e) => bail!("cannot read the role's policy: {}", explain(&e)),
    };
    clients
        .iam
        .put_role_policy()
        .role_name(&plan.role_name)
        .policy_name(POLICY_NAME)
        .policy_document(&plan.policy)
        .send()
        .await
        .map_err(|e| anyhow!("cannot put policy {POLICY_NAME}: {}", explain(&e)))?;
    Ok(change)
}

async fn get_namespace(
    clients: &Clients,
    name: &str,
) -> Result<Option<aws_sdk_redshiftserverless::types::Namespace>> {
    match clients
        .serverless
        .get_namespace()
        .namespace_name(name)
        .send()
        .await
    {
        Ok(found) => Ok(found.namespace().cloned()),
        Err(e) if code(&e) == "ResourceNotFoundException" => Ok(None),
        Err(e) => bail!("cannot look up namespace {name}: {}", explain(&e)),
    }
}

async fn get_workgroup(
    clients: &Clients,
    name: &str,
) -> Result<Option<aws_sdk_redshiftserverless::types::Workgroup>> {
    match clients
        .serverless
        .get_workgroup()
        .workgroup_name(name)
        .send()
        .await
    {
        Ok(found) => Ok(found.workgroup().cloned()),
        Err(e) if code(&e) == "ResourceNotFoundException" => Ok(None),
        Err(e) => bail!("cannot look up workgroup {name}: {}", explain(&e)),
    }
}

async fn ensure_namespace(clients: &Clients, plan: &CreatePlan, role_arn: &str) -> Result<Change> {
    if let Some(namespace) = get_namespace(clients, &plan.namespace).await? {
        let attached = namespace.iam_roles().iter().any(|r| r.contains(role_arn));
        if attached && namespace.default_iam_role_arn() == Some(role_arn) {
            return Ok(Change::Unchanged);
        }
        let mut roles: Vec<String> = namespace.iam_roles().to_vec();
        if !attached {
            roles.push(role_arn.to_string());
        }
        retrying(
            plan.timing,
            "attaching the role",
            |e| is_conflict(e) || role_not_ready(e),
            || {
                clients
                    .serverless
                    .update_namespace()
                    .namespace_name(&plan.namespace)
                    .set_iam_roles(Some(roles.clone()))
                    .default_iam_role_arn(role_arn)
                    .send()
            },
        )
        .await
        .map_err(|e| {
            anyhow!(
                "cannot attach the role to namespace {}: {}",
                plan.namespace,
                explain(&e)
            )
        })?;
        return Ok(Change::Updated);
    }
    retrying(
        plan.timing,
        "creating the namespace",
        |e| is_conflict(e) || role_not_ready(e),
        || {
            let mut request = clients
                .serverless
                .create_namespace()
                .namespace_name(&plan.namespace)
                .db_name(&plan.db_name)
                .admin_username(&plan.admin_user)
                .iam_roles(role_arn)
                .default_iam_role_arn(role_arn);
            request = match &plan.admin_password {
                Some(password) => request.admin_user_password(password.expose()),
                None => request.manage_admin_password(true),
            };
            request.send()
        },
    )
    .await
    .map_err(|e| {
        anyhow!(
            "cannot create namespace {}: {}",
            plan.namespace,
            explain(&e)
        )
    })?;
    Ok(Change::Created)
}

async fn ensure_workgroup(clients: &Clients, plan: &CreatePlan) -> Result<Change> {
    if get_workgroup(clients, &plan.workgroup).await?.is_some() {
        return Ok(Change::Unchanged);
    }
    retrying(plan.timing, "creating the workgroup", is_conflict, || {
        clients
            .serverless
            .create_workgroup()
            .workgroup_name(&plan.workgroup)
            .namespace_name(&plan.namespace)
            .base_capacity(plan.base_capacity)
            .publicly_accessible(plan.ingress_cidr.is_some())
            .config_parameters(
                ConfigParameter::builder()
                    .parameter_key("require_ssl")
                    .parameter_value("true")
                    .build(),
            )
            .send()
    })
    .await
    .map_err(|e| {
        anyhow!(
            "cannot create workgroup {}: {}",
            plan.workgroup,
            explain(&e)
        )
    })?;
    Ok(Change::Created)
}

async fn ensure_ingress(clients: &Clients, group: &str, port: i32, cidr: &str) -> Result<Change> {
    let permission = IpPermission::builder()
        .ip_protocol("tcp")
        .from_port(port)
        .to_port(port)
        .ip_ranges(
            IpRange::builder()
                .cidr_ip(cidr)
                .description(INGRESS_DESCRIPTION)
                .build(),
        )
        .build();
    match clients
        .ec2
        .authorize_security_group_ingress()
        .group_id(group)
        .ip_permissions(permission)
        .send()
        .await
    {
        Ok(_) => Ok(Change::Created),
        Err(e) if code(&e) == "InvalidPermission.Duplicate" => Ok(Change::Unchanged),
        Err(e) => bail!(
            "cannot open TCP {port} from {cidr} on security group {group}: {}",
            explain(&e)
        ),
    }
}

/// Polls until namespace and workgroup are `AVAILABLE`; returns the workgroup's address.
async fn wait_available(
    clients: &Clients,
    plan: &CreatePlan,
    report: &dyn Reporter,
) -> Result<String> {
    let start = Instant::now();
    loop {
        let namespace = get_namespace(clients, &plan.namespace).await?;
        let workgroup = get_workgroup(clients, &plan.workgroup).await?;
        let namespace_state = namespace
            .as_ref()
            .and_then(|n| n.status())
            .map(|s| s.as_str().to_string())
            .unwrap_or_else(|| "MISSING".into());
        let workgroup_state = workgroup
            .as_ref()
            .and_then(|w| w.status())
            .map(|s| s.as_str().to_string())
            .unwrap_or_else(|| "MISSING".into());
        let state = format!("namespace {namespace_state}, workgroup {workgroup_state}");
        report.waiting(&state, start.elapsed());
        if namespace_state == "FAILED"
            || workgroup_state == "FAILED"
            || workgroup_state == "MISSING"
            || namespace_state == "MISSING"
        {
            bail!(
                "{state}: look at the Redshift Serverless console for the reason, then run \
                 iac_delete and iac_create again"
            );
        }
        if namespace_state == "AVAILABLE" && workgroup_state == "AVAILABLE" {
            let host = workgroup
                .as_ref()
                .and_then(|w| w.endpoint())
                .and_then(|e| e.address())
                .unwrap_or_default();
            if !host.is_empty() {
                return Ok(host.to_string());
            }
        }
        if start.elapsed() >= plan.timing.timeout {
            bail!(
                "still not available after {} s ({state}): run iac_create again to keep waiting \
                 (it changes nothing that exists), or raise --timeout",
                plan.timing.timeout.as_secs()
            );
        }
        tokio::time::sleep(plan.timing.poll).await;
    }
}

/// What `iac_delete` removes.
#[derive(Debug, Clone)]
pub struct DeletePlan {
    pub role_name: String,
    pub namespace: String,
    pub workgroup: String,
    pub keep_role: bool,
    pub final_snapshot: Option<String>,
    pub timing: Timing,
}

impl DeletePlan {
    pub fn new(
        config: &Config,
        keep_role: bool,
        final_snapshot: Option<String>,
        timing: Timing,
    ) -> DeletePlan {
        DeletePlan {
            role_name: config.dwh.iam_role_name.clone(),
            namespace: config.dwh.namespace.clone(),
            workgroup: config.dwh.workgroup.clone(),
            keep_role,
            final_snapshot,
            timing,
        }
    }
}

/// Tears down what `iac_create` built: workgroup (waiting until gone), namespace (waiting until
/// gone), the ingress rule it made, the role and its policy (unless kept).
pub async fn delete(clients: &Clients, plan: &DeletePlan, report: &dyn Reporter) -> Result<()> {
    // The rule is found through the workgroup's security group, so it is looked up first.
    let workgroup = get_workgroup(clients, &plan.workgroup).await?;
    let groups: Vec<String> = workgroup
        .as_ref()
        .map(|w| w.security_group_ids().to_vec())
        .unwrap_or_default();

    let clock = Instant::now();
    let what = format!("workgroup {}", plan.workgroup);
    let change = if workgroup.is_some() {
        let delete = || {
            clients
                .serverless
                .delete_workgroup()
                .workgroup_name(&plan.workgroup)
                .send()
        };
        let state = || async {
            let workgroup = get_workgroup(clients, &plan.workgroup).await?;
            Ok(workgroup.map(|w| status_name(w.status().map(|s| s.as_str()))))
        };
        delete_and_wait(plan.timing, &what, report, delete, state).await?
    } else {
        Change::AlreadyGone
    };
    report.step(&Step {
        what,
        change,
        took: clock.elapsed(),
    });

    let clock = Instant::now();
    let what = format!("namespace {}", plan.namespace);
    let change = if get_namespace(clients, &plan.namespace).await?.is_some() {
        let delete = || {
            clients
                .serverless
                .delete_namespace()
                .namespace_name(&plan.namespace)
                .set_final_snapshot_name(plan.final_snapshot.clone())
                .send()
        };
        let state = || async {
            let namespace = get_namespace(clients, &plan.namespace).await?;
            Ok(namespace.map(|n| status_name(n.status().map(|s| s.as_str()))))
        };
        delete_and_wait(plan.timing, &what, report, delete, state).await?
    } else {
        Change::AlreadyGone
    };
    report.step(&Step {
        what,
        change,
        took: clock.elapsed(),
    });

    for group in &groups {
        let clock = Instant::now();
        let revoked = revoke_ingress(clients, group).await?;
        report.step(&Step {
            what: format!("ingress rule(s) made by iac_create on {group}: {revoked}"),
            change: if revoked > 0 {
                Change::Deleted
            } else {
                Change::AlreadyGone
            },
            took: clock.elapsed(),
        });
    }

    let clock = Instant::now();
    let change = if plan.keep_role {
        Change::Kept
    } else {
        delete_role(clients, &plan.role_name).await?
    };
    report.step(&Step {
        what: format!("IAM role {} and its policy", plan.role_name),
        change,
        took: clock.elapsed(),
    });
    Ok(())
}

/// A resource's status as shown to the user.
fn status_name(status: Option<&str>) -> String {
    status.unwrap_or_default().to_string()
}

/// Deletes one resource, retrying while it is busy (`ConflictException`), and waits until
/// `state` (its status, `None` once gone) says it is gone. Already gone counts as deleted.
async fn delete_and_wait<T, E, F, Fut, S, SFut>(
    timing: Timing,
    what: &str,
    report: &dyn Reporter,
    delete: F,
    state: S,
) -> Result<Change>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: ProvideErrorMetadata + std::error::Error,
    S: Fn() -> SFut,
    SFut: Future<Output = Result<Option<String>>>,
{
    match retrying(timing, &format!("deleting {what}"), is_conflict, delete).await {
        Ok(_) => {}
        Err(e) if code(&e) == "ResourceNotFoundException" => {}
        Err(e) => bail!("cannot delete {what}: {}", explain(&e)),
    }
    wait_gone(timing, what, report, state).await?;
    Ok(Change::Deleted)
}

/// Polls `state` (the resource's status, `None` once gone) until it is gone.
async fn wait_gone<F, Fut>(
    timing: Timing,
    what: &str,
    report: &dyn Reporter,
    state: F,
) -> Result<()>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<Option<String>>>,
{
    let start = Instant::now();
    loop {
        match state().await? {
            None => return Ok(()),
            Some(status) => {
                report.waiting(&format!("{what} {status}"), start.elapsed());
                if start.elapsed() >= timing.timeout {
                    bail!(
                        "{what} is still {status} after {} s: run iac_delete again later",
                        timing.timeout.as_secs()
                    );
                }
            }
        }
        tokio::time::sleep(timing.poll).await;
    }
}

/// Revokes the ingress rules `iac_create` made on `group` (known by their description).
async fn revoke_ingress(clients: &Clients, group: &str) -> Result<usize> {
    let rules = clients
        .ec2
        .describe_security_group_rules()
        .filters(Filter::builder().name("group-id").values(group).build())
        .send()
        .await
        .map_err(|e| {
            anyhow!(
                "cannot list the rules of security group {group}: {}",
                explain(&e)
            )
        })?;
    let ours: Vec<String> = rules
        .security_group_rules()
        .iter()
        .filter(|r| r.is_egress() == Some(false) && r.description() == Some(INGRESS_DESCRIPTION))
        .filter_map(|r| r.security_group_rule_id().map(str::to_string))
        .collect();
    if ours.is_empty() {
        return Ok(0);
    }
    match clients
        .ec2
        .revoke_security_group_ingress()
        .group_id(group)
        .set_security_group_rule_ids(Some(ours.clone()))
        .send()
        .await
    {
        Ok(_) => Ok(ours.len()),
        Err(e) if code(&e) == "InvalidPermission.NotFound" => Ok(0),
        Err(e) => bail!("cannot revoke the ingress rule on {group}: {}", explain(&e)),
    }
}

async fn delete_role(clients: &Clients, role: &str) -> Result<Change> {
    match clients
        .iam
        .delete_role_policy()
        .role_name(role)
        .policy_name(POLICY_NAME)
        .send()
        .await
    {
        Ok(_) => {}
        Err(e) if code(&e) == "NoSuchEntity" => {}
        Err(e) => bail!(
            "cannot delete policy {POLICY_NAME} of role {role}: {}",
            explain(&e)
        ),
    }
    match clients.iam.delete_role().role_name(role).send().await {
        Ok(_) => Ok(Change::Deleted),
        Err(e) if code(&e) == "NoSuchEntity" => Ok(Change::AlreadyGone),
        Err(e) => bail!("cannot delete IAM role {role}: {}", explain(&e)),
    }
}

/// The caller's public IPv4 address as a /32, asked of `endpoint` (a service that answers with
/// the address as text, such as https://checkip.amazonaws.com).
pub async fn caller_cidr(endpoint: &str) -> Result<String> {
    crate::tls::install_crypto_provider();
    let hint = || {
        format!(
            "cannot learn this machine's public IP from {endpoint}: pass --cidr ADDRESS/32, or \
             --no-ingress to use the redshift-data engine"
        )
    };
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .with_context(hint)?;
    let text = client
        .get(endpoint)
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .with_context(hint)?
        .text()
        .await
        .with_context(hint)?;
    let address: std::net::Ipv4Addr = text
        .trim()
        .parse()
        .map_err(|_| anyhow!("{}: it answered {:?}", hint(), text.trim()))?;
    Ok(format!("{address}/32"))
}

/// Checks a `--cidr` value: an IPv4 network, never the whole internet.
pub fn check_cidr(cidr: &str) -> Result<()> {
    let (address, bits) = cidr
        .split_once('/')
        .ok_or_else(|| anyhow!("--cidr {cidr}: write it as ADDRESS/BITS, e.g. 203.0.113.7/32"))?;
    let bits: u8 = bits
        .parse()
        .ok()
        .filter(|b| *b <= 32)
        .ok_or_else(|| anyhow!("--cidr {cidr}: BITS must be 0 to 32"))?;
    address
        .parse::<std::net::Ipv4Addr>()
        .map_err(|_| anyhow!("--cidr {cidr}: {address} is not an IPv4 address"))?;
    if bits < 8 {
        bail!("--cidr {cidr}: refusing to open the warehouse to so much of the internet; use your address/32");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_reads_only_the_sources() {
        let config = Config::parse(
            "[S3]\nLOG_DATA=s3://udacity-dend/log_data\nSONG_DATA=s3://udacity-dend/song_data\n\
             LOG_JSONPATH=s3://udacity-dend/log_json_path.json\n",
            "dwh.cfg".as_ref(),
            "/".as_ref(),
        )
        .unwrap();
        let policy: serde_json::Value =
            serde_json::from_str(&s3_read_policy(&config).unwrap()).unwrap();
        let statements = policy["Statement"].as_array().unwrap();
        assert_eq!(statements.len(), 2);
        assert_eq!(statements[0]["Action"], "s3:ListBucket");
        assert_eq!(statements[0]["Resource"], "arn:aws:s3:::udacity-dend");
        assert_eq!(
            statements[0]["Condition"]["StringLike"]["s3:prefix"],
            json!(["log_data*", "song_data*", "log_json_path.json*"])
        );
        assert_eq!(
            statements[1]["Resource"],
            json!([
                "arn:aws:s3:::udacity-dend/log_data*",
                "arn:aws:s3:::udacity-dend/song_data*",
                "arn:aws:s3:::udacity-dend/log_json_path.json*"
            ])
        );
        assert!(!policy.to_string().contains("s3:*"));
    }

    #[test]
    fn url_encoded_policies_compare_by_value() {
        let encoded = "%7B%22a%22%3A%20%5B1%2C2%5D%7D";
        assert_eq!(policy_value(encoded), Some(json!({"a": [1, 2]})));
    }

    #[test]
    fn cidr_checks() {
        assert!(check_cidr("203.0.113.7/32").is_ok());
        assert!(check_cidr("0.0.0.0/0").is_err());
        assert!(check_cidr("203.0.113.7").is_err());
        assert!(check_cidr("::1/128").is_err());
    }
}
