//! What `iac_create` and `iac_delete` are asked to do, from `dwh.cfg` and the flags, checked
//! before any AWS call.

use anyhow::{bail, Result};

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
    /// The ingress rule's source, a /32 of the caller's address; `None`: no ingress rule.
    pub ingress_cidr: Option<String>,
    pub timing: Timing,
    /// The config file's name, tagged on what is created (see [`super::owner`]).
    pub config_name: String,
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
            config_name: config_name(config),
            adopt: false,
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

/// What `iac_delete` removes.
#[derive(Debug, Clone)]
pub struct DeletePlan {
    pub role_name: String,
    pub namespace: String,
    pub workgroup: String,
    pub keep_role: bool,
    pub final_snapshot: Option<String>,
    pub timing: Timing,
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
            adopt: false,
        }
    }
}

/// The config file's name, as tagged on the resources (no directories: they may be private).
fn config_name(config: &Config) -> String {
    config
        .path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| "dwh.cfg".into())
}
