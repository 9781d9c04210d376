//! Which ways of proving the password a PostgreSQL or Redshift connection may answer, and the
//! stream guard that enforces it before tokio-postgres answers.
//!
//! tokio-postgres sends the password to whatever server asks for it in whatever way it asks:
//! in clear text (method `password`) or as an MD5 hash that is as good as the password for
//! logging in (`md5`). Over a channel whose server was not verified (no TLS, or TLS without a
//! checked certificate: sslmode disable, prefer or require, and Unix sockets), anyone who gets
//! to answer on the address (a user's listener on the port while the real server is down or on
//! another port, say) collects it that way, even for a role the real server knows by SCRAM. So,
//! as libpq's `require_auth` does (https://www.postgresql.org/docs/15/libpq-connect.html, from
//! PostgreSQL 16), the methods a connection accepts are a list: by default every method when
//! the server's certificate was verified (verify-ca, verify-full), and only `scram-sha-256`
//! (which never reveals the password) and `none` (the server asks for nothing) otherwise.
//! `[CLUSTER] REQUIRE_AUTH` sets the list outright.
//!
//! The guard reads the server's messages as they pass (before TLS on a plain channel, inside
//! it otherwise) and fails the read that completes an authentication request it does not
//! accept, so tokio-postgres never sees the request and sends nothing.

use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A way a server asks the client to prove the password (the `Authentication*` messages:
/// https://www.postgresql.org/docs/15/protocol-message-formats.html).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// The password in clear text (AuthenticationCleartextPassword).
    Password,
    /// An MD5 hash of password and user, which logs in as well as the password does.
    Md5,
    /// SCRAM-SHA-256 (SASL), which never sends the password or anything that logs in.
    Scram,
    /// Nothing asked (trust, peer).
    None,
}

impl Method {
    const ALL: [Method; 4] = [Method::Password, Method::Md5, Method::Scram, Method::None];

    /// The name libpq's `require_auth` gives it.
    pub fn name(self) -> &'static str {
        match self {
            Method::Password => "password",
            Method::Md5 => "md5",
            Method::Scram => "scram-sha-256",
            Method::None => "none",
        }
    }

    fn parse(name: &str) -> Option<Method> {
        Method::ALL
            .into_iter()
            .find(|m| m.name().eq_ignore_ascii_case(name.trim()))
    }
}

/// The names `[CLUSTER] REQUIRE_AUTH` takes, for messages.
pub const METHOD_NAMES: &str = "password, md5, scram-sha-256, none";

/// Parses `[CLUSTER] REQUIRE_AUTH`: methods separated by commas.
pub fn parse_methods(text: &str) -> Option<Vec<Method>> {
    let methods: Option<Vec<Method>> = text
        .split(',')
        .filter(|part| !part.trim().is_empty())
        .map(Method::parse)
        .collect();
    methods.filter(|m| !m.is_empty())
}

/// What one connection accepts, and why, for the refusal.
#[derive(Debug, Clone)]
pub struct AuthPolicy {
    allowed: Vec<Method>,
    /// Why the default is narrow ("sslmode prefer does not verify the server"), or that the
    /// list is `[CLUSTER] REQUIRE_AUTH`'s.
    reason: String,
    /// The server, for messages.
    place: String,
}

impl AuthPolicy {
    /// Every method: for a verified server, and for cancel requests (which carry no password).
    pub fn any(place: &str) -> AuthPolicy {
        AuthPolicy {
            allowed: Method::ALL.to_vec(),
            reason: String::new(),
            place: place.to_string(),
        }
    }

    /// The policy of a connection to `place`: `required` (`[CLUSTER] REQUIRE_AUTH`) when set;
    /// else every method when `verified`, and SCRAM or nothing otherwise, `unverified_why`
    /// saying why the server is not verified.
    pub fn new(
        required: Option<&[Method]>,
        verified: bool,
        unverified_why: &str,
        place: &str,
    ) -> AuthPolicy {
        match required {
            Some(methods) => AuthPolicy {
                allowed: methods.to_vec(),
                reason: "[CLUSTER] REQUIRE_AUTH does not list it".into(),
                place: place.to_string(),
            },
            None if verified => AuthPolicy::any(place),
            None => AuthPolicy {
                allowed: vec![Method::Scram, Method::None],
                reason: format!(
                    "{unverified_why}, so whoever answers there could be collecting passwords"
                ),
                place: place.to_string(),
            },
        }
    }

    fn refusal(&self, method: Method) -> std::io::Error {
        let what = match method {
            Method::Password => "the password in clear text (method password)",
            Method::Md5 => {
                "an MD5 hash of the password, which logs in as well as the password \
                            (method md5)"
            }
            Method::Scram => "SCRAM-SHA-256",
            Method::None => "nothing (method none: trust or peer)",
        };
        std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!(
                "the server at {} asked for {what}, which this connection does not send: {}. \
                 Nothing was sent. If the server is yours, verify it (SSLMODE = verify-full with \
                 its CA in SSLROOTCERT), let it use scram-sha-256, or accept the method with \
                 [CLUSTER] REQUIRE_AUTH = {} (of {METHOD_NAMES})",
                self.place,
                self.reason,
                method.name()
            ),
        )
    }
}

/// Where the guard is in the server's byte stream.
#[derive(Debug)]
enum State {
    /// The one-byte answer to SSLRequest comes first: `S` (TLS follows, guarded inside it) or
    /// anything else (the connection stays plain).
    SslAnswer,
    /// Collecting the first 9 bytes of a message: type, length, and an Authentication
    /// message's code.
    Header { bytes: [u8; 9], have: usize },
    /// Passing over the rest of a message that is not an authentication request.
    Skip(u64),
    /// Authentication is decided (or TLS took over): everything passes.
    Done,
}

/// Reads the server's messages up to the first authentication request and decides it.
#[derive(Debug)]
pub struct AuthGuard {
    policy: AuthPolicy,
    state: State,
}

impl AuthGuard {
    /// A guard for a plain stream on which SSLRequest is sent first (`ssl_first`) or not.
    pub fn new(policy: AuthPolicy, ssl_first: bool) -> AuthGuard {
        AuthGuard {
            policy,
            state: if ssl_first {
                State::SslAnswer
            } else {
                State::Header {
                    bytes: [0; 9],
                    have: 0,
                }
            },
        }
    }

    /// Looks at bytes the server sent, in order; an error when they complete an
    /// authentication request the policy refuses.
    pub fn inspect(&mut self, mut data: &[u8]) -> std::io::Result<()> {
        while !data.is_empty() {
            match &mut self.state {
                State::Done => return Ok(()),
                State::SslAnswer => {
                    self.state = if data[0] == b'S' {
                        State::Done
                    } else {
                        State::Header {
                            bytes: [0; 9],
                            have: 0,
                        }
                    };
                    data = &data[1..];
                }
                State::Skip(left) => {
                    let n = (*left).min(data.len() as u64) as usize;
                    *left -= n as u64;
                    data = &data[n..];
                    if *left == 0 {
                        self.state = State::Header {
                            bytes: [0; 9],
                            have: 0,
                        };
                    }
                }
                State::Header { bytes, have } => {
                    // Type and length first; an authentication request's code after them.
                    let want = if *have >= 5 && bytes[0] == b'R' { 9 } else { 5 };
                    let n = (want - *have).min(data.len());
                    bytes[*have..*have + n].copy_from_slice(&data[..n]);
                    *have += n;
                    data = &data[n..];
                    if *have < want {
                        continue;
                    }
                    let kind = bytes[0];
                    let length = u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]);
                    if length < 4 || (kind == b'R' && length < 8) {
                        return Err(std::io::Error::new(
                            std::io::ErrorKind::InvalidData,
                            format!(
                                "the server at {} sent a malformed message",
                                self.policy.place
                            ),
                        ));
                    }
                    if kind != b'R' {
                        // An error, a notice or a protocol negotiation before authentication:
                        // passed over whole (tokio-postgres deals with it).
                        self.state = if length == 4 {
                            State::Header {
                                bytes: [0; 9],
                                have: 0,
                            }
                        } else {
                            State::Skip(u64::from(length) - 4)
                        };
                        continue;
                    }
                    if *have < 9 {
                        continue;
                    }
                    let code = u32::from_be_bytes([bytes[5], bytes[6], bytes[7], bytes[8]]);
                    let method = match code {
                        0 => Method::None,
                        3 => Method::Password,
                        5 => Method::Md5,
                        10 => Method::Scram,
                        // Kerberos, GSS, SSPI: tokio-postgres refuses them itself.
                        _ => {
                            self.state = State::Done;
                            continue;
                        }
                    };
                    if !self.policy.allowed.contains(&method) {
                        return Err(self.policy.refusal(method));
                    }
                    self.state = State::Done;
                }
            }
        }
        Ok(())
    }
}

/// A stream whose reads pass through an [`AuthGuard`].
pub struct GuardedStream<S> {
    inner: S,
    guard: AuthGuard,
}

impl<S> GuardedStream<S> {
    pub fn new(inner: S, guard: AuthGuard) -> Self {
        GuardedStream { inner, guard }
    }
}

/// Reads through `inner` and shows what it read to `guard`; a refusal fails the read.
pub fn guarded_read<S: AsyncRead + Unpin>(
    inner: &mut S,
    guard: Option<&mut AuthGuard>,
    cx: &mut TaskContext<'_>,
    buf: &mut ReadBuf<'_>,
) -> Poll<std::io::Result<()>> {
    let before = buf.filled().len();
    let polled = Pin::new(inner).poll_read(cx, buf);
    if let (Poll::Ready(Ok(())), Some(guard)) = (&polled, guard) {
        guard.inspect(&buf.filled()[before..])?;
    }
    polled
}

impl<S: AsyncRead + Unpin> AsyncRead for GuardedStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        guarded_read(&mut this.inner, Some(&mut this.guard), cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for GuardedStream<S> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(code: u32, extra: &[u8]) -> Vec<u8> {
        let mut message = vec![b'R'];
        message.extend_from_slice(&(8 + extra.len() as u32).to_be_bytes());
        message.extend_from_slice(&code.to_be_bytes());
        message.extend_from_slice(extra);
        message
    }

    fn narrow() -> AuthPolicy {
        AuthPolicy::new(
            None,
            false,
            "sslmode prefer does not verify the server",
            "h:1",
        )
    }

    /// Feeds `bytes` one at a time, as the slowest network would.
    fn byte_by_byte(guard: &mut AuthGuard, bytes: &[u8]) -> std::io::Result<()> {
        bytes.iter().try_for_each(|b| guard.inspect(&[*b]))
    }

    #[test]
    fn clear_text_and_md5_are_refused_on_an_unverified_channel_however_the_bytes_arrive() {
        for (code, extra) in [(3, &[][..]), (5, &[1, 2, 3, 4][..])] {
            let message = auth(code, extra);
            let mut whole = AuthGuard::new(narrow(), false);
            assert!(whole.inspect(&message).is_err(), "{code}");
            let mut split = AuthGuard::new(narrow(), false);
            assert!(byte_by_byte(&mut split, &message).is_err(), "{code}");
            // After an 'N' to SSLRequest, and after a notice.
            // A notice shorter than an authentication request's header, then a longer one.
            let mut notice = vec![b'N'];
            notice.extend_from_slice(&5u32.to_be_bytes());
            notice.push(0);
            notice.push(b'N');
            notice.extend_from_slice(&9u32.to_be_bytes());
            notice.extend_from_slice(b"hello");
            let mut after = AuthGuard::new(narrow(), true);
            let mut stream = vec![b'N'];
            stream.extend_from_slice(&notice);
            stream.extend_from_slice(&message);
            let refused = after.inspect(&stream).unwrap_err().to_string();
            assert!(refused.contains("REQUIRE_AUTH"), "{refused}");
        }
    }

    #[test]
    fn scram_and_trust_pass_and_tls_is_left_to_the_guard_inside_it() {
        let mut sasl = b"SCRAM-SHA-256\0\0".to_vec();
        let mut guard = AuthGuard::new(narrow(), false);
        guard.inspect(&auth(10, &sasl)).unwrap();
        // Later messages (SASL continue, a stray clear-text request) are not looked at: the
        // method is chosen.
        sasl.clear();
        guard.inspect(&auth(3, &sasl)).unwrap();
        AuthGuard::new(narrow(), false)
            .inspect(&auth(0, &[]))
            .unwrap();
        let mut tls = AuthGuard::new(narrow(), true);
        tls.inspect(b"S").unwrap();
        tls.inspect(&auth(3, &[])).unwrap();
    }

    #[test]
    fn require_auth_is_the_list_whatever_the_channel() {
        let methods = parse_methods("password, md5").unwrap();
        let policy = AuthPolicy::new(Some(&methods), false, "", "h:1");
        AuthGuard::new(policy.clone(), false)
            .inspect(&auth(3, &[]))
            .unwrap();
        assert!(AuthGuard::new(policy, false)
            .inspect(&auth(10, b"SCRAM-SHA-256\0\0"))
            .is_err());
        // Verified, no list: everything.
        let any = AuthPolicy::new(None, true, "", "h:1");
        AuthGuard::new(any, false)
            .inspect(&auth(5, &[0; 4]))
            .unwrap();
        assert!(parse_methods("kerberos").is_none());
        assert!(parse_methods(" , ").is_none());
    }
}
