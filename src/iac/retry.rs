//! Retrying the calls AWS answers with "busy" or "not yet": bounded attempts, doubling pauses.

use std::future::Future;
use std::time::Duration;

use aws_sdk_iam::error::ProvideErrorMetadata;

use super::Timing;

pub(super) fn code<E: ProvideErrorMetadata>(error: &E) -> &str {
    error.code().unwrap_or_default()
}

/// Runs `call` until it succeeds, fails with an error `retry` does not accept, or the attempts
/// run out; the pause doubles from `timing.backoff`.
pub(super) async fn retrying<T, E, F, Fut>(
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

/// "The submitted action has conflicts": what Redshift Serverless answers while a resource is
/// busy with another change: one of the errors CreateWorkgroup documents
/// (https://docs.aws.amazon.com/redshift-serverless/latest/APIReference/API_CreateWorkgroup.html#API_CreateWorkgroup_Errors),
/// a variant of the SDK's error for every call retried here (`CreateWorkgroupError`,
/// `UpdateNamespaceError`, `DeleteNamespaceError`, `DeleteWorkgroupError`...).
pub(super) fn is_conflict<E: ProvideErrorMetadata>(error: &E) -> bool {
    code(error) == "ConflictException"
}

/// A role just created is not usable by Redshift for a few seconds.
pub(super) fn role_not_ready<E: ProvideErrorMetadata>(error: &E) -> bool {
    let message = error.message().unwrap_or_default().to_ascii_lowercase();
    matches!(code(error), "ValidationException" | "InvalidParameterValue")
        && message.contains("role")
}
