//! TLS for the server engines (PostgreSQL, Redshift) through rustls, with libpq's `sslmode`
//! meanings, and the one crypto provider of the process. The AWS SDK and tokio-postgres-rustls
//! both use rustls; with more than one provider compiled in, rustls panics unless a process-wide
//! default is installed first, so every entry point calls [`install_crypto_provider`].
//! [`ScramAware`] lets the PostgreSQL engine require SCRAM channel binding over TLS.

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use anyhow::{bail, Context, Result};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect, TlsStream};

use crate::pg_auth::{AuthGuard, AuthPolicy};

use crate::config::SslMode;

/// Installs aws-lc-rs (the provider the AWS SDK builds) as the process default; later calls
/// do nothing.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// The trusted roots: the PEM file `root_cert` when given (as libpq's `sslrootcert`), else the
/// Mozilla roots bundled by webpki-roots (which hold Amazon's, for Redshift).
fn root_store(root_cert: Option<&Path>) -> Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    match root_cert {
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        Some(path) => {
            let hint = || {
                format!(
                    "[CLUSTER] SSLROOTCERT = {}: cannot read it as PEM certificates: point it \
                     at the CA certificate file of the server",
                    path.display()
                )
            };
            // A CA bundle is at most a few hundred kilobytes; 4 MiB bounds a device or FIFO
            // named instead, which would otherwise hang or fill memory before any timeout.
            let pem = crate::files::read_small(path, 4 << 20)
                .map_err(anyhow::Error::msg)
                .with_context(hint)?;
            let certs = CertificateDer::pem_slice_iter(&pem)
                .collect::<Result<Vec<_>, _>>()
                .with_context(hint)?;
            let (added, _ignored) = roots.add_parsable_certificates(certs);
            if added == 0 {
                bail!("{}: it holds no usable certificate", hint());
            }
        }
    }
    Ok(roots)
}

/// The rustls client configuration for `mode` (which must not be `Disable`).
pub fn client_config(mode: SslMode, root_cert: Option<&Path>) -> Result<ClientConfig> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .context("the TLS provider offers no protocol version")?;
    let config = match mode {
        SslMode::Disable => bail!("sslmode disable uses no TLS"),
        SslMode::Prefer | SslMode::Require => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Relaxed {
                provider,
                chain: None,
            }))
            .with_no_client_auth(),
        SslMode::VerifyCa | SslMode::VerifyFull => {
            let roots = Arc::new(root_store(root_cert)?);
            let webpki = WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
                .build()
                .context("cannot build the certificate verifier")?;
            if mode == SslMode::VerifyFull {
                builder.with_webpki_verifier(webpki).with_no_client_auth()
            } else {
                builder
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(Relaxed {
                        provider,
                        chain: Some(webpki),
                    }))
                    .with_no_client_auth()
            }
        }
    };
    Ok(config)
}

/// The verifier of the modes weaker than `verify-full`: `prefer` / `require` (no `chain`)
/// accept any certificate, as libpq does; `verify-ca` requires the chain to lead to a trusted
/// root but does not compare the name in the certificate with the host. Handshake signatures
/// are always checked, so the session key belongs to the certificate shown.
#[derive(Debug)]
struct Relaxed {
    provider: Arc<CryptoProvider>,
    chain: Option<Arc<WebPkiServerVerifier>>,
}

impl ServerCertVerifier for Relaxed {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(chain) = &self.chain else {
            return Ok(ServerCertVerified::assertion());
        };
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.provider.signature_verification_algorithms;
        verify_tls12_signature(message, cert, dss, algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.provider.signature_verification_algorithms;
        verify_tls13_signature(message, cert, dss, algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A TLS connector for tokio-postgres that notes whether the server asked for SASL (SCRAM)
/// authentication. tokio-postgres asks the TLS stream for its channel-binding data only then
/// (to offer SCRAM-SHA-256-PLUS), and nowhere else; the note lets the caller tell "the server
/// offered SCRAM without channel binding over TLS" (refused) from "the server authenticates
/// another way" (trust, md5, password: channel binding does not apply).
///
/// Inside the TLS stream, an [`AuthGuard`] with the connection's policy reads the server's
/// authentication request before tokio-postgres does (see [`crate::pg_auth`]).
#[derive(Clone)]
pub struct ScramAware {
    inner: tokio_postgres_rustls::MakeRustlsConnect,
    asked: Arc<AtomicBool>,
    policy: AuthPolicy,
}

impl ScramAware {
    pub fn new(config: ClientConfig, policy: AuthPolicy) -> Self {
        ScramAware {
            inner: tokio_postgres_rustls::MakeRustlsConnect::new(config),
            asked: Arc::default(),
            policy,
        }
    }

    /// Whether a connection made through this connector was asked for SCRAM over TLS.
    pub fn scram_asked(&self) -> bool {
        self.asked.load(Ordering::SeqCst)
    }
}

impl<S> MakeTlsConnect<S> for ScramAware
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream =
        NotingStream<<tokio_postgres_rustls::MakeRustlsConnect as MakeTlsConnect<S>>::Stream>;
    type TlsConnect =
        NotingConnect<<tokio_postgres_rustls::MakeRustlsConnect as MakeTlsConnect<S>>::TlsConnect>;
    type Error = <tokio_postgres_rustls::MakeRustlsConnect as MakeTlsConnect<S>>::Error;

    fn make_tls_connect(&mut self, domain: &str) -> Result<Self::TlsConnect, Self::Error> {
        Ok(NotingConnect {
            inner: MakeTlsConnect::<S>::make_tls_connect(&mut self.inner, domain)?,
            asked: self.asked.clone(),
            policy: self.policy.clone(),
        })
    }
}

/// [`ScramAware`]'s connector for one connection.
pub struct NotingConnect<T> {
    inner: T,
    asked: Arc<AtomicBool>,
    policy: AuthPolicy,
}

impl<S, T> TlsConnect<S> for NotingConnect<T>
where
    T: TlsConnect<S>,
    T::Future: Send + 'static,
{
    type Stream = NotingStream<T::Stream>;
    type Error = T::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Stream, T::Error>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        let asked = self.asked;
        let guard = AuthGuard::new(self.policy, false);
        let connecting = self.inner.connect(stream);
        Box::pin(async move {
            connecting.await.map(|inner| NotingStream {
                inner,
                asked,
                guard,
            })
        })
    }
}

/// A TLS stream that notes when its channel-binding data is asked for, and whose reads pass
/// through the authentication guard.
pub struct NotingStream<T> {
    inner: T,
    asked: Arc<AtomicBool>,
    guard: AuthGuard,
}

impl<T: TlsStream + Unpin> TlsStream for NotingStream<T> {
    fn channel_binding(&self) -> ChannelBinding {
        self.asked.store(true, Ordering::SeqCst);
        self.inner.channel_binding()
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for NotingStream<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        crate::pg_auth::guarded_read(&mut this.inner, Some(&mut this.guard), cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for NotingStream<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
