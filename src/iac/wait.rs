//! Deleting a Redshift Serverless resource and waiting until it is gone, retrying while it is
//! busy; a spinner shows its state meanwhile. The namespace and the workgroup both use it, so it
//! knows neither (waiting until both are available after a create is [`super::available`]).

use std::future::Future;
use std::time::Instant;

use anyhow::{bail, Result};
use aws_sdk_iam::error::ProvideErrorMetadata;

use super::retry::{code, is_conflict, retrying};
use super::{Change, Reporter, Timing};
use crate::aws::explain;

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
