//! The Redshift Serverless workgroup: the compute, its endpoint and its security group.

use anyhow::{anyhow, bail, Result};
use aws_sdk_redshiftserverless::types::ConfigParameter;

use super::owner::{adopt_serverless, not_ours, serverless_owner, serverless_tags, Owner};
use super::retry::{code, is_conflict, retrying};
use super::wait::{delete_and_wait, status_name};
use super::{Change, Clients, CreatePlan, DeletePlan, Reporter};
use crate::aws::explain;

pub(super) async fn get_workgroup(
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

/// The workgroup, created (tagged as this tool's, require_ssl on) when missing; one made by
/// someone else is refused, or with `--adopt` tagged and used.
pub(super) async fn ensure_workgroup(clients: &Clients, plan: &CreatePlan) -> Result<Change> {
    if let Some(workgroup) = get_workgroup(clients, &plan.workgroup).await? {
        let what = format!("workgroup {}", plan.workgroup);
        let arn = workgroup.workgroup_arn().unwrap_or_default();
        let whose = serverless_owner(clients, arn, &what, &plan.instance_id).await?;
        if whose == Owner::ThisConfig {
            return Ok(Change::Unchanged);
        }
        if !plan.adopt {
            return Err(not_ours(&what, "DWH_WORKGROUP_NAME", &whose));
        }
        adopt_serverless(clients, arn, &what, &plan.config_name, &plan.instance_id).await?;
        return Ok(Change::Adopted);
    }
    let tags = serverless_tags(&plan.config_name, &plan.instance_id)?;
    retrying(plan.timing, "creating the workgroup", is_conflict, || {
        clients
            .serverless
            .create_workgroup()
            .workgroup_name(&plan.workgroup)
            .namespace_name(&plan.namespace)
            .base_capacity(plan.base_capacity)
            // The ceiling on what a query may scale to: without it Serverless may use far more
            // RPUs than the base, and bill them ("maxCapacity: the maximum data-warehouse
            // capacity Amazon Redshift Serverless uses to serve queries", in RPUs:
            // https://docs.aws.amazon.com/redshift-serverless/latest/APIReference/API_CreateWorkgroup.html).
            .max_capacity(plan.max_capacity)
            .publicly_accessible(plan.ingress_cidr.is_some())
            // require_ssl is one of the parameters CreateWorkgroup documents for
            // configParameters, and the port is left to its documented default, 5439
            // (https://docs.aws.amazon.com/redshift-serverless/latest/APIReference/API_CreateWorkgroup.html).
            .config_parameters(
                ConfigParameter::builder()
                    .parameter_key("require_ssl")
                    .parameter_value("true")
                    .build(),
            )
            .set_tags(Some(tags.clone()))
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

/// Deletes the workgroup and waits until it is gone.
pub(super) async fn delete_workgroup(
    clients: &Clients,
    plan: &DeletePlan,
    report: &dyn Reporter,
) -> Result<Change> {
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
    let what = format!("workgroup {}", plan.workgroup);
    delete_and_wait(plan.timing, &what, report, delete, state).await
}
