//! Waiting after a create until the namespace and the workgroup are both `AVAILABLE`, and
//! reading the workgroup's address then; a spinner shows both states meanwhile.

use std::time::Instant;

use anyhow::{bail, Result};

use super::namespace::get_namespace;
use super::workgroup::get_workgroup;
use super::{Clients, CreatePlan, Reporter};

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
