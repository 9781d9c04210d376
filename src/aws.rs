//! The one AWS `SdkConfig` that the IaC steps and the Redshift Data API engine build their
//! clients from: region from `--region`, else `AWS_REGION`, else `[DWH] DWH_REGION`;
//! credentials from the AWS default chain, or `[AWS] KEY/SECRET` when set (with a warning);
//! endpoints overridable the standard way (`AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_<SERVICE>`);
//! the SDK's standard retries.

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_s3::config::Credentials;

use crate::config::Config;

/// Attempts per AWS request (the first and retries) under the standard retry strategy.
const MAX_ATTEMPTS: u32 = 5;

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
        .retry_config(RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS));
    if let Some(region) = region(config, region_flag) {
        loader = loader.region(Region::new(region));
    }
    if !config.aws.key.is_empty() && !config.aws.secret.is_empty() {
        tracing::warn!(
            "using the keys in [AWS] KEY/SECRET of {}: the AWS default chain (aws configure, \
             SSO, environment, instance roles) keeps them out of files; leave them empty to use it",
            config.path.display()
        );
        loader = loader.credentials_provider(Credentials::new(
            config.aws.key.clone(),
            config.aws.secret.expose().to_string(),
            None,
            None,
            "dwh.cfg [AWS]",
        ));
    }
    loader.load().await
}
