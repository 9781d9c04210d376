//! The IAM role Redshift's COPY assumes, and its inline S3 read policy.

use anyhow::{anyhow, bail, Result};

use super::owner::{iam_tags, not_ours, owner, Owner};
use super::policy::{assume_role_policy, policy_value};
use super::retry::code;
use super::{Change, Clients, CreatePlan, POLICY_NAME};
use crate::aws::explain;

/// The role `name` as it is: its ARN and whose it is for the config with `instance_id` (by its
/// tags, which GetRole returns:
/// https://docs.aws.amazon.com/IAM/latest/APIReference/API_GetRole.html); `None` when there is
/// no such role.
pub(super) async fn find_role(
    clients: &Clients,
    name: &str,
    instance_id: &str,
) -> Result<Option<(String, Owner)>> {
    match clients.iam.get_role().role_name(name).send().await {
        Ok(found) => Ok(found.role().map(|role| {
            let whose = owner(
                role.tags().iter().map(|t| (t.key(), t.value())),
                instance_id,
            );
            (role.arn().to_string(), whose)
        })),
        Err(e) if code(&e) == "NoSuchEntity" => Ok(None),
        Err(e) => bail!("cannot look up IAM role {name}: {}", explain(&e)),
    }
}

/// The role, created (tagged as this config's) when missing; one made by someone else, or from
/// another config, is refused, or with `--adopt` tagged and used (TagRole overwrites the value
/// of a key already there:
/// https://docs.aws.amazon.com/IAM/latest/APIReference/API_TagRole.html).
pub(super) async fn ensure_role(clients: &Clients, plan: &CreatePlan) -> Result<(String, Change)> {
    let what = format!("IAM role {}", plan.role_name);
    match find_role(clients, &plan.role_name, &plan.instance_id).await? {
        Some((arn, Owner::ThisConfig)) => return Ok((arn, Change::Unchanged)),
        Some((_, whose)) if !plan.adopt => {
            return Err(not_ours(&what, "DWH_IAM_ROLE_NAME", &whose))
        }
        Some((arn, _)) => {
            clients
                .iam
                .tag_role()
                .role_name(&plan.role_name)
                .set_tags(Some(iam_tags(&plan.config_name, &plan.instance_id)?))
                .send()
                .await
                .map_err(|e| anyhow!("cannot tag {what} as iac_create's: {}", explain(&e)))?;
            return Ok((arn, Change::Adopted));
        }
        None => {}
    }
    let account = caller_account(clients).await?;
    let created = clients
        .iam
        .create_role()
        .role_name(&plan.role_name)
        .description("Lets Redshift read the Sparkify sources in S3 (made by iac_create)")
        .assume_role_policy_document(assume_role_policy(&account))
        .set_tags(Some(iam_tags(&plan.config_name, &plan.instance_id)?))
        .send()
        .await
        .map_err(|e| anyhow!("cannot create IAM role {}: {}", plan.role_name, explain(&e)))?;
    let arn = created
        .role()
        .map(|r| r.arn().to_string())
        .unwrap_or_default();
    Ok((arn, Change::Created))
}

pub(super) async fn ensure_policy(clients: &Clients, plan: &CreatePlan) -> Result<Change> {
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

pub(super) async fn delete_role(clients: &Clients, role: &str) -> Result<Change> {
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

/// The account of the credentials in use (STS GetCallerIdentity, which needs no permission:
/// https://docs.aws.amazon.com/STS/latest/APIReference/API_GetCallerIdentity.html).
async fn caller_account(clients: &Clients) -> Result<String> {
    let identity = clients
        .sts
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| {
            anyhow!(
                "cannot learn the AWS account of these credentials: {}",
                explain(&e)
            )
        })?;
    match identity.account() {
        Some(account) if account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit()) => {
            Ok(account.to_string())
        }
        other => bail!("STS answered {other:?} as the account, not a 12-digit account id"),
    }
}
