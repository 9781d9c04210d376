//! The Redshift Serverless namespace: the database, its admin user and the roles it may use.

use anyhow::{anyhow, bail, Result};

use super::owner::{adopt_serverless, not_ours, serverless_owner, serverless_tags, Owner};
use super::retry::{code, is_conflict, retrying, role_not_ready};
use super::wait::{delete_and_wait, status_name};
use super::{Change, Clients, CreatePlan, DeletePlan, Reporter};
use crate::aws::explain;

pub(super) async fn get_namespace(
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

/// The namespace, created (tagged as this tool's, the role attached and default) when
/// missing; an existing one of this tool's gets the role attached and made default if it is
/// not; one made by someone else is refused, or with `--adopt` tagged and used.
pub(super) async fn ensure_namespace(
    clients: &Clients,
    plan: &CreatePlan,
    role_arn: &str,
) -> Result<Change> {
    if let Some(namespace) = get_namespace(clients, &plan.namespace).await? {
        let what = format!("namespace {}", plan.namespace);
        let arn = namespace.namespace_arn().unwrap_or_default();
        let mut adopted = false;
        let whose = serverless_owner(clients, arn, &what, &plan.instance_id).await?;
        if whose != Owner::ThisConfig {
            if !plan.adopt {
                return Err(not_ours(&what, "DWH_NAMESPACE_NAME", &whose));
            }
            adopt_serverless(clients, arn, &what, &plan.config_name, &plan.instance_id).await?;
            adopted = true;
        }
        let mut roles = role_arns(namespace.iam_roles());
        let attached = roles.iter().any(|arn| arn == role_arn);
        if attached && namespace.default_iam_role_arn() == Some(role_arn) {
            return Ok(if adopted {
                Change::Adopted
            } else {
                Change::Unchanged
            });
        }
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
    let tags = serverless_tags(&plan.config_name, &plan.instance_id)?;
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
                .default_iam_role_arn(role_arn)
                .set_tags(Some(tags.clone()));
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

/// The role ARNs of a namespace. GetNamespace describes each attached role as a string such as
/// `IamRole(applyStatus=in-sync, iamRoleArn=arn:aws:iam::1:role/r)` (the fields in either
/// order), while UpdateNamespace takes plain ARNs
/// (https://docs.aws.amazon.com/redshift-serverless/latest/APIReference/API_Namespace.html,
/// "iamRoles"; https://docs.aws.amazon.com/redshift-serverless/latest/APIReference/API_UpdateNamespace.html).
pub fn role_arns(described: &[String]) -> Vec<String> {
    described
        .iter()
        .filter_map(|text| {
            let text = text.trim();
            if text.starts_with("arn:") {
                return Some(text.to_string());
            }
            let start = text.find("iamRoleArn=")? + "iamRoleArn=".len();
            let rest = &text[start..];
            let end = rest.find([',', ')']).unwrap_or(rest.len());
            Some(rest[..end].trim().to_string()).filter(|arn| arn.starts_with("arn:"))
        })
        .collect()
}

/// Deletes the namespace (keeping a final snapshot when asked) and waits until it is gone.
pub(super) async fn delete_namespace(
    clients: &Clients,
    plan: &DeletePlan,
    report: &dyn Reporter,
) -> Result<Change> {
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
    let what = format!("namespace {}", plan.namespace);
    delete_and_wait(plan.timing, &what, report, delete, state).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_roles_are_read_as_arns_whatever_the_field_order() {
        let described = [
            "IamRole(applyStatus=in-sync, iamRoleArn=arn:aws:iam::1:role/a)".to_string(),
            "IamRole(iamRoleArn=arn:aws:iam::1:role/b, applyStatus=adding)".to_string(),
            "arn:aws:iam::1:role/c".to_string(),
        ];
        assert_eq!(
            role_arns(&described),
            [
                "arn:aws:iam::1:role/a",
                "arn:aws:iam::1:role/b",
                "arn:aws:iam::1:role/c"
            ]
        );
        // A role whose ARN merely contains another's is not that role.
        assert!(!role_arns(&described)
            .iter()
            .any(|arn| arn == "arn:aws:iam::1:role/"));
    }
}
