//! The one AWS `SdkConfig` that the IaC steps and the Redshift Data API engine build their
//! clients from: region from `--region`, else `AWS_REGION`, else `[DWH] DWH_REGION`;
//! credentials from the AWS default chain, or `[AWS] KEY/SECRET` when set (with a warning);
//! endpoints overridable the standard way (`AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_<SERVICE>`);
//! the SDK's standard retries, with attempt and operation timeouts.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_s3::config::Credentials;
use aws_sdk_s3::error::ProvideErrorMetadata;

use crate::config::Config;

/// Attempts per AWS request (the first and retries) under the standard retry strategy.
const MAX_ATTEMPTS: u32 = 5;
/// Longest one attempt of a control-plane or Data API request may hang before it is abandoned
/// and retried; a whole operation (all attempts) gets `OPERATION_TIMEOUT`. These calls only
/// submit or describe work (a long statement is polled, not awaited), so an answer is quick.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30);
const OPERATION_TIMEOUT: Duration = Duration::from_secs(120);

/// The region the AWS clients use, by precedence: the `--region` flag, `AWS_REGION`,
/// `[DWH] DWH_REGION`. `None` leaves it to the rest of the default chain (`~/.aws/config`).
pub fn region(config: &Config, flag: Option<&str>) -> Option<String> {
    flag.map(str::to_string)
        .or_else(|| std::env::var("AWS_REGION").ok())
        .or_else(|| Some(config.dwh.region.clone()))
        .filter(|r| !r.is_empty())
}

/// Loads the shared AWS configuration (see the module documentation).
pub async fn sdk_config(config: &Config, region_flag: Option<&str>) -> SdkConfig {
    crate::tls::install_crypto_provider();
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .retry_config(RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS))
        .timeout_config(
            TimeoutConfig::builder()
                .operation_attempt_timeout(ATTEMPT_TIMEOUT)
                .operation_timeout(OPERATION_TIMEOUT)
                .build(),
        );
    if let Some(region) = region(config, region_flag) {
        loader = loader.region(Region::new(region));
    }
    if let Some(credentials) = static_credentials(&config.aws) {
        tracing::warn!(
            "using the keys in [AWS] KEY/SECRET of {}: the AWS default chain (aws configure, \
             SSO, environment, instance roles) keeps them out of files; leave them empty to use it",
            config.path.display()
        );
        loader = loader.credentials_provider(credentials);
    }
    loader.load().await
}

/// The credentials of `[AWS] KEY/SECRET` when both are set: every AWS client of a run (IaC,
/// the Data API, S3 sources) uses them then, so that one run acts as one identity.
pub fn static_credentials(keys: &crate::config::AwsKeys) -> Option<Credentials> {
    (!keys.key.is_empty() && !keys.secret.is_empty()).then(|| {
        Credentials::new(
            keys.key.expose().to_string(),
            keys.secret.expose().to_string(),
            None,
            None,
            "dwh.cfg [AWS]",
        )
    })
}

/// Where AWS credentials come from, for the messages that find none.
const FIND_CREDENTIALS: &str = "run `aws configure` or `aws sso login`, set AWS_PROFILE or \
     AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or fill [AWS] KEY and SECRET";

/// The innermost non-empty cause of a chain, on one line.
fn innermost(causes: &[String]) -> String {
    causes
        .iter()
        .rev()
        .find(|c| !c.trim().is_empty())
        .map(|c| crate::record::escape_controls(c.lines().next().unwrap_or_default()))
        .unwrap_or_default()
}

/// Whether AWS credentials can be found (the default chain, or `[AWS] KEY/SECRET`): `None`
/// when they can, else what to do, in one line.
pub async fn credentials_problem(sdk: &SdkConfig) -> Option<String> {
    use aws_sdk_iam::config::ProvideCredentials;
    let why = match sdk.credentials_provider() {
        None => "no credential provider".to_string(),
        Some(provider) => match provider.provide_credentials().await {
            Ok(_) => return None,
            Err(e) => crate::record::escape_controls(&e.to_string()),
        },
    };
    Some(format!(
        "no AWS credentials were found ({why}): {FIND_CREDENTIALS}"
    ))
}

/// An AWS error in one line: the service's code and message, or for a request that never got
/// an answer, what failed (the name not resolved, the connection refused, no answer in time,
/// no credentials) and what to check, with the innermost cause; never the request itself nor
/// the SDK's debug dump.
pub fn explain<E: ProvideErrorMetadata + std::error::Error>(error: &E) -> String {
    match (error.code(), error.message()) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(code), None) => code.to_string(),
        _ => unanswered(error),
    }
}

/// What failed when a request got no answer, from its chain of causes.
pub fn unanswered(error: &dyn std::error::Error) -> String {
    let mut causes = vec![error.to_string()];
    let mut source = error.source();
    while let Some(cause) = source {
        causes.push(cause.to_string());
        source = cause.source();
    }
    let all = causes.join(": ").to_ascii_lowercase();
    let what = if all.contains("dns error") || all.contains("failed to lookup address") {
        "the AWS endpoint's name could not be resolved (DNS): check the network, the region \
         and any endpoint override (AWS_ENDPOINT_URL, or for S3 [S3] ENDPOINT)"
    } else if all.contains("connection refused") {
        "the connection was refused: check any endpoint override (AWS_ENDPOINT_URL, or for \
         S3 [S3] ENDPOINT) and proxy settings"
    } else if all.contains("timeout") || all.contains("timed out") {
        "no answer in time: check the network (a proxy or firewall may drop AWS traffic)"
    } else if all.contains("credential") {
        return format!(
            "no AWS credentials were found: {FIND_CREDENTIALS} ({})",
            innermost(&causes)
        );
    } else {
        "the request failed: check the AWS credentials, region and network"
    };
    format!("{what} ({})", innermost(&causes))
}
