//! An S3-compatible server (s3s-fs) in process on loopback, for the S3 tests and the S3 source
//! benchmark, with faults to retry on: the first GET of a key containing `flaky` fails with a
//! 500 and the first GET of a key containing `slow` hangs for 5 s. It also takes PUTs (the
//! manifests etl writes for Redshift), and a bucket named `*-eu-west-1` answers HeadBucket with
//! that region.

#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use s3s::dto::{
    GetObjectInput, GetObjectOutput, HeadBucketInput, HeadBucketOutput, ListObjectsV2Input,
    ListObjectsV2Output, PutObjectInput, PutObjectOutput,
};
use s3s::{s3_error, S3Request, S3Response, S3Result, S3};

/// s3s-fs with faults: the first GET of any key containing `flaky` fails with a 500, as S3
/// does now and then, every GET of a key containing `broken` does, and the first GET of a key
/// containing `slow` hangs for 5 s. Counts
/// requests so tests can see retries and pages.
pub struct FaultyFs {
    fs: s3s_fs::FileSystem,
    pub gets: Mutex<HashMap<String, u32>>,
    pub lists: Mutex<u32>,
}

#[async_trait::async_trait]
impl S3 for FaultyFs {
    async fn list_objects_v2(
        &self,
        req: S3Request<ListObjectsV2Input>,
    ) -> S3Result<S3Response<ListObjectsV2Output>> {
        *self.lists.lock().unwrap() += 1;
        self.fs.list_objects_v2(req).await
    }

    async fn get_object(
        &self,
        req: S3Request<GetObjectInput>,
    ) -> S3Result<S3Response<GetObjectOutput>> {
        let key = req.input.key.clone();
        let attempt = {
            let mut gets = self.gets.lock().unwrap();
            let count = gets.entry(key.clone()).or_default();
            *count += 1;
            *count
        };
        if key.contains("broken") {
            return Err(s3_error!(InternalError, "injected lasting failure"));
        }
        if key.contains("flaky") && attempt == 1 {
            return Err(s3_error!(InternalError, "injected failure"));
        }
        if key.contains("slow") && attempt == 1 {
            tokio::time::sleep(std::time::Duration::from_secs(5)).await;
        }
        self.fs.get_object(req).await
    }

    async fn put_object(
        &self,
        req: S3Request<PutObjectInput>,
    ) -> S3Result<S3Response<PutObjectOutput>> {
        self.fs.put_object(req).await
    }

    /// A bucket whose name ends in `-eu-west-1` says it is in eu-west-1, as S3's
    /// `x-amz-bucket-region` does; the others say nothing of their region.
    async fn head_bucket(
        &self,
        req: S3Request<HeadBucketInput>,
    ) -> S3Result<S3Response<HeadBucketOutput>> {
        let elsewhere = req.input.bucket.ends_with("-eu-west-1");
        let mut answer = self.fs.head_bucket(req).await?;
        if elsewhere {
            answer.output.bucket_region = Some("eu-west-1".into());
        }
        Ok(answer)
    }
}

/// A running server over the directory `root` (each subdirectory a bucket).
pub struct Server {
    pub endpoint: String,
    pub store: Arc<FaultyFs>,
    _runtime: tokio::runtime::Runtime,
}

pub const ACCESS_KEY: &str = "AKIDSPARKIFYTEST";
pub const SECRET_KEY: &str = "sentinel-secret-key-123";

impl Server {
    /// Starts the server; with `auth` it accepts only requests signed with the test keys.
    pub fn start(root: &Path, auth: bool) -> Server {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let store = Arc::new(FaultyFs {
            fs: s3s_fs::FileSystem::new(root).unwrap(),
            gets: Mutex::default(),
            lists: Mutex::default(),
        });
        let mut builder = s3s::service::S3ServiceBuilder::new(SharedFs(store.clone()));
        if auth {
            builder.set_auth(s3s::auth::SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
        }
        let service = builder.build();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let address: SocketAddr = listener.local_addr().unwrap();
        runtime.spawn(async move {
            let http = ConnBuilder::new(TokioExecutor::new());
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    continue;
                };
                // Without it, delayed ACKs stall every small response by ~40 ms on loopback.
                let _ = socket.set_nodelay(true);
                let connection = http
                    .serve_connection(TokioIo::new(socket), service.clone())
                    .into_owned();
                tokio::spawn(connection);
            }
        });
        Server {
            endpoint: format!("http://{address}"),
            store,
            _runtime: runtime,
        }
    }

    pub fn gets(&self, key: &str) -> u32 {
        self.store
            .gets
            .lock()
            .unwrap()
            .get(key)
            .copied()
            .unwrap_or(0)
    }
}

/// The S3 trait object must be owned by the service; this shares the counters with the test.
struct SharedFs(Arc<FaultyFs>);

#[async_trait::async_trait]
impl S3 for SharedFs {
    async fn list_objects_v2(
        &self,
        req: S3Request<ListObjectsV2Input>,
    ) -> S3Result<S3Response<ListObjectsV2Output>> {
        self.0.list_objects_v2(req).await
    }

    async fn get_object(
        &self,
        req: S3Request<GetObjectInput>,
    ) -> S3Result<S3Response<GetObjectOutput>> {
        self.0.get_object(req).await
    }

    async fn put_object(
        &self,
        req: S3Request<PutObjectInput>,
    ) -> S3Result<S3Response<PutObjectOutput>> {
        self.0.put_object(req).await
    }

    async fn head_bucket(
        &self,
        req: S3Request<HeadBucketInput>,
    ) -> S3Result<S3Response<HeadBucketOutput>> {
        self.0.head_bucket(req).await
    }
}
