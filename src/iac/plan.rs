//! What `iac_create` and `iac_delete` are asked to do, from `dwh.cfg` and the flags, checked
//! before any AWS call.

use anyhow::Result;

use super::policy::s3_read_policy;
use super::{Timing, POLICY_NAME};
use crate::config::{Config, Secret};

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
    /// The most RPUs the workgroup may scale to (CreateWorkgroup's `maxCapacity`): the base
    /// capacity unless `[DWH] DWH_MAX_CAPACITY` says more.
    pub max_capacity: i32,
    /// The daily compute limit put on the workgroup, in RPU-hours (`[DWH]
    /// DWH_USAGE_LIMIT_RPU_HOURS`); `None` with 0: no limit.
    pub usage_limit_rpu_hours: Option<i64>,
    /// The ingress rule's source, a /32 of the caller's address; `None`: no ingress rule.
    pub ingress_cidr: Option<String>,
    pub timing: Timing,
    /// The config file's name, tagged on what is created (see [`super::owner`]).
    pub config_name: String,
    /// `[DWH] DWH_INSTANCE_ID`, tagged on what is created: only resources carrying it are this
    /// config's (see [`super::owner`]). `iac_create` makes one before the plan when it is empty.
    pub instance_id: String,
    /// Take over resources of the configured names that iac_create did not make (`--adopt`).
    pub adopt: bool,
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
        // Checked, with everything else, by `create_problems`.
        let admin_password = if manage_password {
            None
        } else {
            Some(cluster.db_password.clone())
        };
        Ok(CreatePlan {
            role_name: config.dwh.iam_role_name.clone(),
            policy: s3_read_policy(config)?,
            namespace: config.dwh.namespace.clone(),
            workgroup: config.dwh.workgroup.clone(),
            db_name: cluster.db_name.clone(),
            admin_user: cluster.db_user.clone(),
            admin_password,
            base_capacity: config.dwh.base_capacity,
            max_capacity: config.dwh.max_capacity.unwrap_or(config.dwh.base_capacity),
            usage_limit_rpu_hours: (config.dwh.usage_limit_rpu_hours > 0)
                .then_some(config.dwh.usage_limit_rpu_hours),
            ingress_cidr,
            timing,
            config_name: config_name(config),
            instance_id: config.dwh.instance_id.clone(),
            adopt: false,
        })
    }

    /// The plan in words, for `--dry-run` (no secret).
    pub fn describe(&self) -> Vec<String> {
        let id = if self.instance_id.is_empty() {
            "a new instance id, first written into the config file as [DWH] DWH_INSTANCE_ID"
                .to_string()
        } else {
            format!("instance id {} ([DWH] DWH_INSTANCE_ID)", self.instance_id)
        };
        let mut steps = vec![
            format!(
                "tag everything created with {id}: only what carries it is this config's, for \
                 iac_create and iac_delete"
            ),
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
                "workgroup {} in that namespace: {} RPU base capacity, scaling to at most {} \
                 RPU, publicly accessible, require_ssl on",
                self.workgroup, self.base_capacity, self.max_capacity
            ),
        ];
        steps.push(match self.usage_limit_rpu_hours {
            Some(hours) => format!(
                "usage limit on the workgroup: at most {hours} RPU-hours of compute a day, then \
                 queries stop until the next day (about {:.0} hours at {} RPU)",
                hours as f64 / f64::from(self.base_capacity.max(1)),
                self.base_capacity
            ),
            None => "no usage limit ([DWH] DWH_USAGE_LIMIT_RPU_HOURS = 0)".to_string(),
        });
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

/// Everything in `dwh.cfg` and the flags that would make `iac_create` fail or leave half its
/// work done (the role made, then CreateNamespace refusing the password), each a sentence
/// saying what to change; all of them, so that one look fixes them all. `region` is the one
/// the run would use (see [`crate::aws::region`]).
pub fn create_problems(
    config: &Config,
    manage_password: bool,
    region: Option<&str>,
) -> Vec<String> {
    let cluster = &config.cluster;
    let file = config.path.display();
    let mut problems = Vec::new();
    if !manage_password {
        if cluster.db_password.is_empty() {
            problems.push(format!(
                "{file}: [CLUSTER] DB_PASSWORD is empty: set the admin password there ({}), or \
                 pass --manage-password to let AWS Secrets Manager keep it",
                PASSWORD_RULES
            ));
        } else {
            let broken = password_problems(cluster.db_password.expose());
            if !broken.is_empty() {
                problems.push(format!(
                    "{file}: [CLUSTER] DB_PASSWORD (not shown) {}: Redshift wants {}",
                    broken.join(", "),
                    PASSWORD_RULES
                ));
            }
        }
    }
    for (key, value) in [("DB_NAME", &cluster.db_name), ("DB_USER", &cluster.db_user)] {
        if value.is_empty() {
            problems.push(format!(
                "{file}: [CLUSTER] {key} is empty: set the database name and admin user the \
                 namespace is created with"
            ));
        }
    }
    if let Some(problem) = region_problem(region) {
        problems.push(problem);
    }
    if let Some(problem) = capacity_problem(config.dwh.base_capacity, region) {
        problems.push(format!("{file}: [DWH] DWH_BASE_CAPACITY {problem}"));
    }
    if let Some(max) = config.dwh.max_capacity {
        if let Some(problem) = capacity_problem(max, region) {
            problems.push(format!("{file}: [DWH] DWH_MAX_CAPACITY {problem}"));
        } else if max < config.dwh.base_capacity {
            problems.push(format!(
                "{file}: [DWH] DWH_MAX_CAPACITY is {max} RPUs, below DWH_BASE_CAPACITY ({}): the \
                 most a workgroup scales to cannot be less than what it starts with",
                config.dwh.base_capacity
            ));
        }
    }
    if let Err(e) = s3_read_policy(config) {
        problems.push(format!("{e:#}"));
    }
    problems
}

/// Redshift's rules for an admin password, as it documents them for a cluster's
/// MasterUserPassword (https://docs.aws.amazon.com/redshift/latest/APIReference/API_CreateCluster.html);
/// CreateNamespace's adminUserPassword documents none of its own
/// (https://docs.aws.amazon.com/redshift-serverless/latest/APIReference/API_CreateNamespace.html),
/// so the same rules are checked before anything is created.
const PASSWORD_RULES: &str = "8 to 64 printable ASCII characters with an upper-case letter, a \
     lower-case letter and a digit, and none of ' \" \\ / @ or space";

/// How `password` breaks [`PASSWORD_RULES`] (never the password itself).
pub fn password_problems(password: &str) -> Vec<&'static str> {
    let mut broken = Vec::new();
    let length = password.chars().count();
    if !(8..=64).contains(&length) {
        broken.push(if length < 8 {
            "is shorter than 8 characters"
        } else {
            "is longer than 64 characters"
        });
    }
    if !password.chars().any(|c| c.is_ascii_uppercase()) {
        broken.push("has no upper-case letter");
    }
    if !password.chars().any(|c| c.is_ascii_lowercase()) {
        broken.push("has no lower-case letter");
    }
    if !password.chars().any(|c| c.is_ascii_digit()) {
        broken.push("has no digit");
    }
    if password
        .chars()
        .any(|c| !(33..=126).contains(&(c as u32)) || matches!(c, '\'' | '"' | '\\' | '/' | '@'))
    {
        broken.push("holds a character Redshift refuses");
    }
    broken
}

/// The regions of the AWS SDK's partition data (aws-sdk-redshiftserverless 1.129's
/// endpoint_lib.rs, "regions" of each partition), where Redshift Serverless may be asked for.
const KNOWN_REGIONS: &[&str] = &[
    "af-south-1",
    "ap-east-1",
    "ap-east-2",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ap-south-1",
    "ap-south-2",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-southeast-3",
    "ap-southeast-4",
    "ap-southeast-5",
    "ap-southeast-6",
    "ap-southeast-7",
    "ca-central-1",
    "ca-west-1",
    "eu-central-1",
    "eu-central-2",
    "eu-north-1",
    "eu-south-1",
    "eu-south-2",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "il-central-1",
    "me-central-1",
    "me-south-1",
    "mx-central-1",
    "sa-east-1",
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
    "cn-north-1",
    "cn-northwest-1",
    "eusc-de-east-1",
    "us-gov-east-1",
    "us-gov-west-1",
    "us-iso-east-1",
    "us-iso-west-1",
    "us-isob-east-1",
    "us-isob-west-1",
    "eu-isoe-west-1",
    "us-isof-east-1",
    "us-isof-south-1",
];

/// Whether `region` is one the SDK knows: none, or a name such as `mars-north-1`, is a problem.
pub fn region_problem(region: Option<&str>) -> Option<String> {
    match region {
        None => Some(
            "no AWS region: set [DWH] DWH_REGION (or AWS_REGION, or pass --region)".to_string(),
        ),
        Some(region) if KNOWN_REGIONS.contains(&region) => None,
        Some(region) => Some(format!(
            "the region {region:?} is not an AWS region the SDK knows (such as us-west-2, \
             eu-west-1): check --region, AWS_REGION and [DWH] DWH_REGION"
        )),
    }
}

/// The regions where a workgroup's base capacity may go above 512 RPUs (to 1024).
const LARGE_CAPACITY_REGIONS: [&str; 5] = [
    "us-east-1",
    "us-east-2",
    "us-west-2",
    "eu-west-1",
    "eu-central-1",
];

/// How a workgroup's base capacity breaks Redshift Serverless's rules, checked before anything
/// is created. "Compute capacity for Amazon Redshift Serverless"
/// (https://docs.aws.amazon.com/redshift/latest/mgmt/serverless-capacity.html): 4 RPUs, or 8 to
/// 512 in units of 8; 512 to 1024 in units of 32, only in the five regions it lists. Earlier
/// versions of that page gave 8 to 512 only; where a region refuses 4, CreateWorkgroup's own
/// error says so.
pub fn capacity_problem(capacity: i32, region: Option<&str>) -> Option<String> {
    const RULE: &str = "4, 8 to 512 in steps of 8, or up to 1024 in steps of 32 in us-east-1, \
                        us-east-2, us-west-2, eu-west-1 and eu-central-1";
    let large = region.is_some_and(|r| LARGE_CAPACITY_REGIONS.contains(&r));
    let valid = capacity == 4
        || ((8..=512).contains(&capacity) && capacity % 8 == 0)
        || ((544..=1024).contains(&capacity) && capacity % 32 == 0 && large);
    if valid {
        return None;
    }
    if (544..=1024).contains(&capacity) && capacity % 32 == 0 {
        return Some(format!(
            "is {capacity} RPUs, above 512, which {} does not offer: use 512 or less, or one of \
             the regions that allow up to 1024 (us-east-1, us-east-2, us-west-2, eu-west-1, \
             eu-central-1)",
            region.unwrap_or("this region")
        ));
    }
    Some(format!(
        "is {capacity} RPUs: Redshift Serverless takes {RULE} (8 is the default here)"
    ))
}

/// What `iac_delete` removes.
#[derive(Debug, Clone)]
pub struct DeletePlan {
    pub role_name: String,
    pub namespace: String,
    pub workgroup: String,
    pub keep_role: bool,
    /// The snapshot DeleteNamespace keeps of the namespace (`finalSnapshotName`:
    /// https://docs.aws.amazon.com/redshift-serverless/latest/APIReference/API_DeleteNamespace.html);
    /// `None` only with `--no-final-snapshot`.
    pub final_snapshot: Option<String>,
    pub timing: Timing,
    /// `[DWH] DWH_INSTANCE_ID`: only resources tagged with it are deleted (see
    /// [`super::owner`]); empty, nothing is this config's.
    pub instance_id: String,
    /// Delete resources of the configured names that iac_create did not make (`--adopt`).
    pub adopt: bool,
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
            instance_id: config.dwh.instance_id.clone(),
            adopt: false,
        }
    }

    /// The refusal of a run that could delete nothing of its own: without `--adopt`, a config
    /// with no instance id owns no resource.
    pub fn problem(&self, config: &Config) -> Option<String> {
        (self.instance_id.is_empty() && !self.adopt).then(|| {
            format!(
                "{}: [DWH] DWH_INSTANCE_ID is empty, so no resource is this config's (iac_create \
                 writes it when it creates them; an older iac_create did not): if namespace {} \
                 and the rest are yours, pass --adopt to delete them anyway",
                config.path.display(),
                self.namespace
            )
        })
    }
}

/// The default name of the final snapshot of `namespace`, taken at `now`:
/// `<namespace>-final-YYYYMMDD-HHMMSS` (UTC), in the lower-case letters, digits and hyphens
/// of the namespace name itself (its pattern, `[a-z0-9-]+`, is API_DeleteNamespace's).
pub fn final_snapshot_name(namespace: &str, now: chrono::DateTime<chrono::Utc>) -> String {
    format!("{namespace}-final-{}", now.format("%Y%m%d-%H%M%S"))
}

impl DeletePlan {
    /// The plan in words, for `iac_delete --dry-run`.
    pub fn describe(&self) -> Vec<String> {
        let owned = if self.adopt {
            "whoever made it (--adopt)".to_string()
        } else {
            format!(
                "only if it carries this config's instance id ({})",
                if self.instance_id.is_empty() {
                    "none: nothing will be deleted"
                } else {
                    &self.instance_id
                }
            )
        };
        let mut steps = vec![
            format!(
                "revoke the ingress rule iac_create added to workgroup {}'s security group",
                self.workgroup
            ),
            format!("delete workgroup {}, {owned}", self.workgroup),
        ];
        match &self.final_snapshot {
            Some(snapshot) => steps.push(format!(
                "keep a final snapshot {snapshot} of namespace {} (--no-final-snapshot: none)",
                self.namespace
            )),
            None => steps.push(format!(
                "keep no snapshot of namespace {}: its data is gone (--no-final-snapshot)",
                self.namespace
            )),
        }
        steps.push(format!(
            "delete namespace {} with its data, {owned}",
            self.namespace
        ));
        if self.keep_role {
            steps.push(format!("keep IAM role {} (--keep-role)", self.role_name));
        } else {
            steps.push(format!(
                "delete IAM role {} and its inline policy {POLICY_NAME}, {owned}",
                self.role_name
            ));
        }
        steps.push(format!(
            "wait until they are gone (at most {} s each), then empty [CLUSTER] HOST in the \
             config file",
            self.timing.timeout.as_secs()
        ));
        steps
    }
}

/// The config file's name, as tagged on the resources (no directories: they may be private),
/// in the characters an IAM tag value may hold (letters, digits, spaces and `_.:/=+-@`, at
/// most 256: https://docs.aws.amazon.com/IAM/latest/APIReference/API_Tag.html); any other
/// character becomes `_`, so that a name such as `dwh (copy).cfg` cannot fail CreateRole.
fn config_name(config: &Config) -> String {
    let name = config
        .path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| "dwh.cfg".into());
    tag_value(&name)
}

/// `text` as an IAM tag value (see [`config_name`]).
fn tag_value(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_alphanumeric() || c == ' ' || "_.:/=+-@".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(256)
        .collect()
}

#[cfg(test)]
mod tag_tests {
    use super::tag_value;

    #[test]
    fn config_names_become_tag_values_iam_takes() {
        assert_eq!(tag_value("dwh.cfg"), "dwh.cfg");
        assert_eq!(tag_value("dwh (copy)#2.cfg"), "dwh _copy__2.cfg");
        assert_eq!(tag_value("prod\u{1b}[0m.cfg"), "prod__0m.cfg");
        assert_eq!(tag_value("é.cfg"), "é.cfg");
        assert_eq!(tag_value(&"a".repeat(300)).len(), 256);
    }
}

/// The refusal to send the admin password to an AWS endpoint over plain `http://` that is not
/// on this machine (a test server on loopback is fine). The Redshift Serverless endpoint is the
/// service's own variable when set, else the shared one (`AWS_ENDPOINT_URL_REDSHIFT_SERVERLESS`,
/// then `AWS_ENDPOINT_URL` or the profile's `endpoint_url`, which the SDK config holds:
/// https://docs.aws.amazon.com/sdkref/latest/guide/feature-ss-endpoints.html).
/// Request signing never sends the secret key itself, so only a password in a request body
/// needs this.
pub fn secret_endpoint_problem(
    sdk: &aws_config::SdkConfig,
    sends_password: bool,
) -> Option<String> {
    if !sends_password {
        return None;
    }
    let (source, url) = std::env::var("AWS_ENDPOINT_URL_REDSHIFT_SERVERLESS")
        .ok()
        .filter(|v| !v.is_empty())
        .map(|v| ("AWS_ENDPOINT_URL_REDSHIFT_SERVERLESS", v))
        .or_else(|| {
            sdk.endpoint_url().map(|v| {
                (
                    "AWS_ENDPOINT_URL (or the profile's endpoint_url)",
                    v.to_string(),
                )
            })
        })?;
    plain_http_elsewhere(&url).then(|| {
        format!(
            "{source} is {url}, plain http to another machine: the namespace's admin password \
             would cross the network unencrypted. Use an https:// endpoint (or unset it for \
             AWS's own), or pass --manage-password so that no password is sent"
        )
    })
}

/// Whether `url` is `http://` to a host other than this machine.
fn plain_http_elsewhere(url: &str) -> bool {
    let Ok(parsed) = reqwest::Url::parse(url) else {
        // Not a URL: the SDK will refuse it; nothing is sent in clear because of it.
        return false;
    };
    if parsed.scheme() != "http" {
        return false;
    }
    let Some(host) = parsed.host_str() else {
        return true;
    };
    match host.trim_matches(['[', ']']).parse::<std::net::IpAddr>() {
        Ok(ip) => !ip.is_loopback(),
        Err(_) => !host.eq_ignore_ascii_case("localhost"),
    }
}

#[cfg(test)]
mod endpoint_tests {
    use super::plain_http_elsewhere;

    #[test]
    fn only_plain_http_to_another_machine_is_refused() {
        for elsewhere in [
            "http://10.0.0.5:9000",
            "http://redshift-serverless.example.com",
            "http://[2001:db8::1]:80",
            "HTTP://example.com",
        ] {
            assert!(plain_http_elsewhere(elsewhere), "{elsewhere}");
        }
        for fine in [
            "https://redshift-serverless.us-west-2.amazonaws.com",
            "http://127.0.0.1:9",
            "http://127.5.0.1:9",
            "http://localhost:4566",
            "http://[::1]:9",
            "not a url",
        ] {
            assert!(!plain_http_elsewhere(fine), "{fine}");
        }
    }
}
