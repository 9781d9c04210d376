//! Sources in S3 (or any S3-compatible store) for the local engines: listing a prefix page by
//! page and fetching objects concurrently, with bounded parallelism, SDK retries with backoff
//! and a timeout per attempt. Credentials come from the AWS default chain; without any, requests
//! go unsigned, which is what a public bucket such as `udacity-dend` needs.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_sdk_s3::config::ProvideCredentials;
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::Client;
use bytes::Bytes;
use indicatif::ProgressBar;
use tokio::runtime::Runtime;
use tokio::sync::Semaphore;

use crate::config::S3Config;

/// Objects fetched at the same time. S3 serves each GET at tens of MB/s; the source objects are
/// small, so latency, not bandwidth, bounds a fetch and many must be in flight.
const CONCURRENT_GETS: usize = 32;
/// Attempts per request (the first and retries), with exponential backoff and jitter.
const MAX_ATTEMPTS: u32 = 5;
const INITIAL_BACKOFF: Duration = Duration::from_millis(200);
/// The region used when neither `[S3] REGION` nor the AWS configuration names one.
const FALLBACK_REGION: &str = "us-east-1";

/// Says at `-v` each attempt of an S3 request that failed, so that a silent endpoint is not
/// minutes of silence: the SDK retries it (up to [`MAX_ATTEMPTS`], each cut at the attempt
/// timeout) before the run sees the error. An interceptor's `read_after_attempt` runs after
/// every attempt, with its outcome
/// (https://docs.rs/aws-smithy-runtime-api/latest/aws_smithy_runtime_api/client/interceptors/trait.Intercept.html).
#[derive(Debug)]
struct AttemptLog {
    attempt_timeout: Duration,
}

impl aws_sdk_s3::config::Intercept for AttemptLog {
    fn name(&self) -> &'static str {
        "AttemptLog"
    }

    fn read_after_attempt(
        &self,
        context: &aws_sdk_s3::config::interceptors::FinalizerInterceptorContextRef<'_>,
        _runtime_components: &aws_sdk_s3::config::RuntimeComponents,
        _cfg: &mut aws_sdk_s3::config::ConfigBag,
    ) -> Result<(), aws_sdk_s3::error::BoxError> {
        if let Some(Err(error)) = context.output_or_error() {
            tracing::info!(
                "an S3 request attempt failed ({}); the SDK tries each request up to \
                 {MAX_ATTEMPTS} times, each attempt cut after {} s",
                crate::aws::unanswered(error),
                self.attempt_timeout.as_secs()
            );
        }
        Ok(())
    }
}

/// How long a request was tried, for the error that ends it.
fn gave_up(started: std::time::Instant) -> String {
    format!(
        "; gave up after {:.0} s and up to {MAX_ATTEMPTS} attempts",
        started.elapsed().as_secs_f64()
    )
}

/// One object found under a prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    pub key: String,
    pub size: u64,
    /// The ETag S3 lists for it (empty if none): changes when the object is written again.
    pub etag: String,
}

/// The slowest upload an attempt is given time for: 1 Mbit/s. A coalesced part of 64 MiB takes
/// 8.5 minutes at that rate, where the attempt timeout alone (30 s by default) would need
/// 17 Mbit/s.
pub const SLOWEST_UPLOAD_BYTES_PER_SECOND: u64 = 1_000_000 / 8;

/// How long one attempt of uploading `bytes` may take: the attempt timeout, plus the time the
/// bytes take at [`SLOWEST_UPLOAD_BYTES_PER_SECOND`].
pub fn upload_attempt_timeout(attempt: Duration, bytes: u64) -> Duration {
    attempt + Duration::from_secs(bytes.div_ceil(SLOWEST_UPLOAD_BYTES_PER_SECOND))
}

/// A connection to S3: the client and the runtime its requests run on, for callers that are
/// not async themselves.
pub struct S3Store {
    runtime: Runtime,
    client: Client,
    /// Whether requests go unsigned (no credentials found).
    pub anonymous: bool,
    /// `[S3] ATTEMPT_TIMEOUT`: how long one attempt of a request may take (an upload gets more,
    /// by its size: see [`upload_attempt_timeout`]).
    attempt_timeout: Duration,
}

impl std::fmt::Debug for S3Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Store")
            .field("anonymous", &self.anonymous)
            .finish_non_exhaustive()
    }
}

impl S3Store {
    /// A client for the `[S3]` settings: `REGION`, and `ENDPOINT` (else `AWS_ENDPOINT_URL_S3` or
    /// `AWS_ENDPOINT_URL` from the environment). A custom endpoint is addressed path-style, as
    /// MinIO, Ceph and R2 expect.
    pub fn connect(settings: &S3Config) -> Result<Arc<S3Store>> {
        Self::connect_as(settings, &crate::config::AwsKeys::default())
    }

    /// [`S3Store::connect`], signing with `[AWS] KEY/SECRET` when both are set (as every other
    /// AWS client of the run does), else with the default chain's credentials.
    pub fn connect_as(settings: &S3Config, keys: &crate::config::AwsKeys) -> Result<Arc<S3Store>> {
        crate::tls::install_crypto_provider();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("s3")
            .enable_all()
            .build()
            .context("cannot start the S3 client runtime")?;
        // [S3] ENDPOINT, when set, wins over the environment's AWS_ENDPOINT_URL(_S3), as an
        // endpoint set in code wins over the environment's in the SDKs
        // (https://docs.aws.amazon.com/sdkref/latest/guide/feature-ss-endpoints.html): a shell
        // set up for LocalStack does not redirect a config that names its own store.
        let env_endpoint = settings.endpoint.is_none()
            && ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"]
                .iter()
                .any(|name| std::env::var_os(name).is_some_and(|v| !v.is_empty()));
        let custom_endpoint = env_endpoint || settings.endpoint.is_some();
        let (client, anonymous) = runtime.block_on(async {
            let loader = || {
                let mut loader = aws_config::defaults(BehaviorVersion::latest())
                    .retry_config(
                        RetryConfig::standard()
                            .with_max_attempts(MAX_ATTEMPTS)
                            .with_initial_backoff(INITIAL_BACKOFF),
                    )
                    .timeout_config(
                        TimeoutConfig::builder()
                            .connect_timeout(Duration::from_secs(10))
                            .operation_attempt_timeout(Duration::from_secs(
                                settings.attempt_timeout_seconds.max(1),
                            ))
                            .build(),
                    );
                if !settings.region.is_empty() {
                    loader = loader.region(Region::new(settings.region.clone()));
                }
                if let (false, Some(endpoint)) = (env_endpoint, &settings.endpoint) {
                    loader = loader.endpoint_url(endpoint);
                }
                if let Some(credentials) = crate::aws::static_credentials(keys) {
                    loader = loader.credentials_provider(credentials);
                }
                loader
            };
            let mut sdk = loader().load().await;
            let anonymous = match sdk.credentials_provider() {
                None => true,
                Some(provider) => provider.provide_credentials().await.is_err(),
            };
            if anonymous {
                tracing::info!("no AWS credentials found: S3 requests go unsigned");
                sdk = loader().no_credentials().load().await;
            }
            let mut config = aws_sdk_s3::config::Builder::from(&sdk).interceptor(AttemptLog {
                attempt_timeout: Duration::from_secs(settings.attempt_timeout_seconds.max(1)),
            });
            if sdk.region().is_none() {
                config = config.region(Region::new(FALLBACK_REGION));
            }
            if custom_endpoint {
                config = config.force_path_style(true);
            }
            (Client::from_conf(config.build()), anonymous)
        });
        Ok(Arc::new(S3Store {
            attempt_timeout: Duration::from_secs(settings.attempt_timeout_seconds.max(1)),
            runtime,
            client,
            anonymous,
        }))
    }

    /// Lists the objects under `s3://bucket/prefix` whose key `keep` accepts, page by page, in
    /// key order, ticking `found` per object kept. `setting` names the config key, for errors.
    pub fn list(
        &self,
        bucket: &str,
        prefix: &str,
        keep: impl Fn(&str) -> bool,
        setting: &str,
        found: &ProgressBar,
    ) -> Result<Vec<Object>> {
        self.runtime.block_on(async {
            let mut pages = self
                .client
                .list_objects_v2()
                .bucket(bucket)
                .prefix(prefix)
                .into_paginator()
                .send();
            let mut objects = Vec::new();
            let started = std::time::Instant::now();
            while let Some(page) = pages.next().await {
                let page = page.map_err(|e| {
                    let why = match e.code() {
                        Some("NoSuchBucket") => format!(
                            "the bucket {bucket} does not exist: check the URI (and [S3] \
                             ENDPOINT for an S3-compatible store)"
                        ),
                        Some("AccessDenied") => format!(
                            "access to the bucket {bucket} is denied: {}",
                            if self.anonymous {
                                "no AWS credentials were found (environment, ~/.aws, instance \
                                 role) and the bucket is not public"
                            } else {
                                "the AWS credentials in use may not list it"
                            }
                        ),
                        Some("PermanentRedirect") | Some("AuthorizationHeaderMalformed") => {
                            format!(
                                "the bucket {bucket} is in another region: set [S3] REGION to it"
                            )
                        }
                        _ => format!(
                            "listing failed: {}{}",
                            crate::aws::explain(&e),
                            gave_up(started)
                        ),
                    };
                    anyhow::anyhow!("{setting} = s3://{bucket}/{prefix}: {why}")
                })?;
                for object in page.contents() {
                    let Some(key) = object.key() else { continue };
                    if !keep(key) {
                        continue;
                    }
                    found.inc(1);
                    objects.push(Object {
                        key: key.to_string(),
                        size: object.size().unwrap_or(0).max(0) as u64,
                        etag: object.e_tag().unwrap_or_default().to_string(),
                    });
                }
            }
            objects.sort_by(|a, b| a.key.cmp(&b.key));
            Ok(objects)
        })
    }

    /// Writes one object. The error is a sentence for the user.
    pub fn put(&self, bucket: &str, key: &str, body: Vec<u8>) -> Result<(), String> {
        let timeout = upload_attempt_timeout(self.attempt_timeout, body.len() as u64);
        self.runtime.block_on(async {
            self.client
                .put_object()
                .bucket(bucket)
                .key(key)
                .content_type("application/json")
                .body(body.into())
                .customize()
                .config_override(
                    aws_sdk_s3::config::Builder::default().timeout_config(
                        TimeoutConfig::builder()
                            .operation_attempt_timeout(timeout)
                            .build(),
                    ),
                )
                .send()
                .await
                .map(|_| ())
                .map_err(|e| crate::aws::explain(&e))
        })
    }

    /// The region `bucket` is in, as HeadBucket answers it (the `x-amz-bucket-region` response
    /// header: https://docs.aws.amazon.com/AmazonS3/latest/API/API_HeadBucket.html; read from an
    /// error response too, such as the redirect of a bucket asked for through another region's
    /// endpoint, when the header is there); `None` when the
    /// store does not say (an S3-compatible store may not implement HeadBucket, and a bucket
    /// this caller may not head is left for the request that uses it to explain).
    pub fn bucket_region(&self, bucket: &str) -> Option<String> {
        self.runtime.block_on(async {
            match self.client.head_bucket().bucket(bucket).send().await {
                Ok(found) => found.bucket_region().map(str::to_string),
                Err(e) => {
                    let told = e
                        .raw_response()
                        .and_then(|r| r.headers().get("x-amz-bucket-region"))
                        .map(str::to_string);
                    if told.is_none() {
                        tracing::info!(
                            bucket,
                            "the bucket's region is not known: {}",
                            crate::aws::explain(&e)
                        );
                    }
                    told
                }
            }
        })
    }

    /// Fetches one object. The error is a sentence for the user.
    pub fn get(&self, bucket: &str, key: &str) -> Result<Bytes, String> {
        self.runtime.block_on(get(self.client.clone(), bucket, key))
    }

    /// Fetches objects of one bucket concurrently, at most [`CONCURRENT_GETS`] at a time; the
    /// results are in the order of `keys`. A key that cannot be fetched after the retries gives
    /// an error sentence in its place, not a failure of the whole call.
    pub fn get_many(&self, bucket: &str, keys: &[&str]) -> Vec<Result<Bytes, String>> {
        self.runtime.block_on(async {
            let permits = Arc::new(Semaphore::new(CONCURRENT_GETS));
            let mut tasks = tokio::task::JoinSet::new();
            for (index, key) in keys.iter().enumerate() {
                let permits = permits.clone();
                let client = self.client.clone();
                let (bucket, key) = (bucket.to_string(), key.to_string());
                tasks.spawn(async move {
                    let _permit = permits.acquire_owned().await;
                    (index, get(client, &bucket, &key).await)
                });
            }
            let mut results: Vec<Result<Bytes, String>> =
                keys.iter().map(|_| Err("not fetched".into())).collect();
            while let Some(done) = tasks.join_next().await {
                match done {
                    Ok((index, result)) => results[index] = result,
                    Err(e) => tracing::error!("an S3 fetch task failed: {e}"),
                }
            }
            results
        })
    }
}

async fn get(client: Client, bucket: &str, key: &str) -> Result<Bytes, String> {
    let started = std::time::Instant::now();
    let response = client
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map_err(|e| match e.code() {
            Some("NoSuchKey") => "the object was deleted after it was listed".to_string(),
            _ => format!(
                "cannot fetch it: {}{}",
                crate::aws::explain(&e),
                gave_up(started)
            ),
        })?;
    let body = response
        .body
        .collect()
        .await
        .map_err(|e| format!("the download broke off: {}", crate::aws::unanswered(&e)))?;
    Ok(body.into_bytes())
}

/// Refuses a prefix that names no objects, with the fix.
pub fn ensure_found(found: usize, setting: &str, bucket: &str, prefix: &str) -> Result<()> {
    if found == 0 {
        bail!(
            "{setting} = s3://{bucket}/{prefix}: holds no .json object: point it at the prefix \
             of the source files"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_upload_gets_the_time_its_size_takes_at_one_megabit() {
        let attempt = Duration::from_secs(30);
        assert_eq!(upload_attempt_timeout(attempt, 0), attempt);
        // A coalesced part of 64 MiB: 537 s at 1 Mbit/s, plus the attempt timeout.
        assert_eq!(
            upload_attempt_timeout(attempt, 64 << 20),
            Duration::from_secs(30 + 537)
        );
        // A manifest of a few kilobytes changes nothing to speak of.
        assert!(upload_attempt_timeout(attempt, 4096) <= Duration::from_secs(31));
    }
}
