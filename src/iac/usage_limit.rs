//! The usage limit that bounds what the workgroup can bill: at most `[DWH]
//! DWH_USAGE_LIMIT_RPU_HOURS` RPU-hours of compute a day, after which Redshift Serverless stops
//! serving queries until the day ends (breach action `deactivate`), so a forgotten loop or a
//! runaway query cannot run up a student's bill
//! (https://docs.aws.amazon.com/redshift-serverless/latest/APIReference/API_CreateUsageLimit.html:
//! `amount` in RPU-hours for `serverless-compute`, `period` daily | weekly | monthly,
//! `breachAction` log | emit-metric | deactivate). `iac_delete` removes it before the workgroup.

use anyhow::{anyhow, Result};
use aws_sdk_redshiftserverless::types::{
    UsageLimitBreachAction, UsageLimitPeriod, UsageLimitUsageType,
};

use super::{Change, Clients};
use crate::aws::explain;

/// The compute usage limits of the workgroup `arn`
/// (https://docs.aws.amazon.com/redshift-serverless/latest/APIReference/API_ListUsageLimits.html).
async fn compute_limits(clients: &Clients, arn: &str) -> Result<Vec<(String, i64)>> {
    let listed = clients
        .serverless
        .list_usage_limits()
        .resource_arn(arn)
        .usage_type(UsageLimitUsageType::ServerlessCompute)
        .send()
        .await
        .map_err(|e| {
            anyhow!(
                "cannot list the workgroup's usage limits (redshift-serverless:ListUsageLimits): {}",
                explain(&e)
            )
        })?;
    Ok(listed
        .usage_limits()
        .iter()
        .filter_map(|l| Some((l.usage_limit_id()?.to_string(), l.amount().unwrap_or(0))))
        .collect())
}

/// A daily compute limit of `rpu_hours` on the workgroup `arn`, created when it has none; one
/// already there (this tool's from an earlier run, or the owner's) is kept as it is.
pub(super) async fn ensure_usage_limit(
    clients: &Clients,
    arn: &str,
    rpu_hours: i64,
) -> Result<Change> {
    if !compute_limits(clients, arn).await?.is_empty() {
        return Ok(Change::Unchanged);
    }
    clients
        .serverless
        .create_usage_limit()
        .resource_arn(arn)
        .usage_type(UsageLimitUsageType::ServerlessCompute)
        .amount(rpu_hours)
        .period(UsageLimitPeriod::Daily)
        .breach_action(UsageLimitBreachAction::Deactivate)
        .send()
        .await
        .map_err(|e| {
            anyhow!(
                "cannot create the usage limit (redshift-serverless:CreateUsageLimit): {}",
                explain(&e)
            )
        })?;
    Ok(Change::Created)
}

/// Deletes the compute usage limits of the workgroup `arn`, before the workgroup goes
/// (https://docs.aws.amazon.com/redshift-serverless/latest/APIReference/API_DeleteUsageLimit.html).
pub(super) async fn delete_usage_limits(clients: &Clients, arn: &str) -> Result<Change> {
    let limits = compute_limits(clients, arn).await?;
    if limits.is_empty() {
        return Ok(Change::AlreadyGone);
    }
    for (id, _) in limits {
        clients
            .serverless
            .delete_usage_limit()
            .usage_limit_id(&id)
            .send()
            .await
            .map_err(|e| {
                anyhow!(
                    "cannot delete usage limit {id} (redshift-serverless:DeleteUsageLimit): {}",
                    explain(&e)
                )
            })?;
    }
    Ok(Change::Deleted)
}
