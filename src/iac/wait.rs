//! Waiting for Redshift Serverless: until namespace and workgroup are available after a
//! create, until a deleted resource is gone; a spinner shows the state meanwhile.

use std::future::Future;
use std::time::Instant;

use anyhow::{bail, Result};
use aws_sdk_iam::error::ProvideErrorMetadata;

use super::namespace::get_namespace;
use super::retry::{code, is_conflict, retrying};
use super::workgroup::get_workgroup;
use super::{Change, Clients, CreatePlan, Reporter, Timing};
use crate::aws::explain;

/// Polls until namespace and workgroup are `AVAILABLE`; returns the workgroup's address.
pub(super) async fn wait_available(
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
        // The documented states: a namespace is AVAILABLE, MODIFYING or DELETING
        // (https://docs.aws.amazon.com/redshift-serverless/latest/APIReference/API_Namespace.html),
        // a workgroup CREATING, AVAILABLE, MODIFYING or DELETING
        // (https://docs.aws.amazon.com/redshift-serverless/latest/APIReference/API_Workgroup.html).
        // FAILED is not among them but would end the wait at once rather than at the timeout.
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

/// A resource's status as shown to the user.
pub(super) fn status_name(status: Option<&str>) -> String {
    status.unwrap_or_default().to_string()
}

/// Deletes one resource, retrying while it is busy (`ConflictException`), and waits until
/// `state` (its status, `None` once gone) says it is gone. Already gone counts as deleted.
pub(super) async fn delete_and_wait<T, E, F, Fut, S, SFut>(
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
