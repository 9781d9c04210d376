//! The socket a PostgreSQL or Redshift connection runs on, opened here rather than by
//! tokio-postgres so that the authentication guard ([`crate::pg_auth`]) sees the server's bytes
//! before TLS is negotiated, and so that a network that goes silent after connecting is found:
//! TCP keepalive probes an idle connection (a COPY waiting on a NAT that dropped its mapping,
//! say) and `TCP_USER_TIMEOUT` ends one whose sent data goes unacknowledged, instead of the
//! kernel's two hours.

use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpStream, UnixStream};

/// Idle time before the first keepalive probe, the time between probes, and the probes that
/// may go unanswered: a dead peer is found about two minutes after the line went quiet, and a
/// connection waiting on a long COPY sends a probe every minute, which keeps a firewall or NAT
/// from dropping it as idle. The Redshift guide names that drop as why a client "appears to
/// hang" on a long COPY the server has finished
/// (https://docs.aws.amazon.com/redshift/latest/dg/queries-troubleshooting-query-hangs.html,
/// "Connection to the database times out").
pub const KEEPALIVE_IDLE: Duration = Duration::from_secs(60);
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(15);
pub const KEEPALIVE_RETRIES: u32 = 4;
/// How long sent data may stay unacknowledged before the connection is given up (Linux's
/// `TCP_USER_TIMEOUT`, tcp(7)); also bounds keepalive's probing on Linux.
pub const USER_TIMEOUT: Duration = Duration::from_secs(120);

/// A connected socket: TCP, or a Unix socket when the host is a directory.
pub enum Socket {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Socket {
    /// Connects to `host` (a name, an address, or a Unix socket directory such as
    /// `/var/run/postgresql`, as libpq reads it) on `port`, every address of a name in turn.
    pub async fn connect(host: &str, port: u16) -> std::io::Result<Socket> {
        if host.starts_with('/') {
            let path = format!("{}/.s.PGSQL.{port}", host.trim_end_matches('/'));
            return UnixStream::connect(path).await.map(Socket::Unix);
        }
        let stream = TcpStream::connect((host.trim_matches(['[', ']']), port)).await?;
        stream.set_nodelay(true)?;
        let socket = socket2::SockRef::from(&stream);
        socket.set_tcp_keepalive(
            &socket2::TcpKeepalive::new()
                .with_time(KEEPALIVE_IDLE)
                .with_interval(KEEPALIVE_INTERVAL)
                .with_retries(KEEPALIVE_RETRIES),
        )?;
        #[cfg(any(target_os = "linux", target_os = "android"))]
        socket.set_tcp_user_timeout(Some(USER_TIMEOUT))?;
        Ok(Socket::Tcp(stream))
    }
}

impl AsyncRead for Socket {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Socket::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Socket::Unix(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Socket {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Socket::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            Socket::Unix(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Socket::Tcp(s) => Pin::new(s).poll_flush(cx),
            Socket::Unix(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Socket::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Socket::Unix(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcp_sockets_probe_an_idle_peer_and_give_up_on_unacknowledged_data() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = listener.local_addr().unwrap().port();
            let Socket::Tcp(stream) = Socket::connect("127.0.0.1", port).await.unwrap() else {
                panic!("a TCP host gave another socket");
            };
            let socket = socket2::SockRef::from(&stream);
            assert!(socket.keepalive().unwrap());
            assert_eq!(socket.tcp_keepalive_time().unwrap(), KEEPALIVE_IDLE);
            assert_eq!(socket.tcp_keepalive_interval().unwrap(), KEEPALIVE_INTERVAL);
            assert_eq!(socket.tcp_keepalive_retries().unwrap(), KEEPALIVE_RETRIES);
            #[cfg(target_os = "linux")]
            assert_eq!(socket.tcp_user_timeout().unwrap(), Some(USER_TIMEOUT));
        });
    }
}
