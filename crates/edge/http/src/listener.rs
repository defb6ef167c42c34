//! The HTTP(S) listener: at most `max_connections` connections at once (more wait in
//! the kernel's listen backlog), each closed when its client takes longer than the
//! header-read timeout to send a request's headers (counted from the connection or
//! from the first byte of the next request; a TLS handshake counts too) or stays idle
//! longer than the idle timeout between requests. On shutdown the listener stops
//! accepting, idle connections and requests still arriving close at once, and requests
//! in flight get `shutdown_grace` to finish; then their connections are cut.

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify, Semaphore};
use tokio::time::Instant;
use tokio_rustls::rustls;
use tower_service::Service;

/// How long cut connections may take to notice it and give their permits back.
const CUT_WAIT: Duration = Duration::from_secs(2);

#[derive(Clone)]
pub struct ListenerOptions {
    pub max_connections: usize,
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    /// How long requests in flight may take to finish once shutdown began.
    pub shutdown_grace: Duration,
    pub tls: Option<tokio_rustls::TlsAcceptor>,
}

/// What the listener tells its connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Serving,
    /// Finish the request in flight, then close; close at once when idle.
    Draining,
    /// The grace is over: close now, whatever is in flight.
    Cut,
}

/// Reads a PEM certificate chain and private key into a TLS acceptor (TLS 1.2 and
/// 1.3, HTTP/1.1).
pub fn tls_acceptor(cert: &Path, key: &Path) -> anyhow::Result<tokio_rustls::TlsAcceptor> {
    use anyhow::Context as _;
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .with_context(|| format!("failed to read TLS certificates from {}", cert.display()))?;
    if certs.is_empty() {
        anyhow::bail!("{} holds no PEM certificate", cert.display());
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("failed to read a TLS private key from {}", key.display()))?;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .context("TLS configuration")?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .context("the TLS certificate and key do not fit together")?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// Serves `app` on `listener` until `shutdown` completes, then stops accepting, lets
/// requests in flight finish for at most `options.shutdown_grace` and cuts the
/// connections still open. Returns once every connection has ended (or, should a cut one
/// not notice in time, shortly after).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    options: ListenerOptions,
    shutdown: impl Future<Output = ()>,
) {
    let max_connections = options.max_connections.clamp(1, Semaphore::MAX_PERMITS);
    let permits = Arc::new(Semaphore::new(max_connections));
    let (stage, stages) = watch::channel(Stage::Serving);
    let options = Arc::new(options);
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            _ = &mut shutdown => break,
            permit = Arc::clone(&permits).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        let accepted = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors and the like: wait a little rather than spin.
                tracing::warn!(error = %e, "failed to accept a connection");
                tokio::select! {
                    _ = &mut shutdown => break,
                    _ = tokio::time::sleep(Duration::from_millis(100)) => continue,
                }
            }
        };
        let _ = stream.set_nodelay(true);
        let (app, options, stages) = (app.clone(), Arc::clone(&options), stages.clone());
        tokio::spawn(async move {
            connection(stream, peer, app, &options, stages).await;
            drop(permit);
        });
    }
    // No new connections from here on: the kernel refuses them.
    drop(listener);
    let _ = stage.send(Stage::Draining);
    // Every connection gives its permit back when it ends.
    let all = u32::try_from(max_connections).unwrap_or(u32::MAX);
    let started = Instant::now();
    let grace = options.shutdown_grace;
    if tokio::time::timeout(grace, permits.acquire_many(all))
        .await
        .is_ok()
    {
        tracing::info!(
            elapsed_ms = started.elapsed().as_millis(),
            "all connections closed"
        );
        return;
    }
    let in_flight = max_connections - permits.available_permits();
    tracing::warn!(
        in_flight,
        grace_ms = grace.as_millis(),
        "requests still in flight when the shutdown grace ended; cutting their connections"
    );
    let _ = stage.send(Stage::Cut);
    if tokio::time::timeout(CUT_WAIT, permits.acquire_many(all))
        .await
        .is_err()
    {
        tracing::warn!("connections still open after being cut; leaving them to the exit");
    }
}

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    app: Router,
    options: &ListenerOptions,
    mut stages: watch::Receiver<Stage>,
) {
    let activity = Arc::new(Activity::new());
    let io: Box<dyn Stream> = match &options.tls {
        None => Box::new(stream),
        Some(acceptor) => {
            let handshake =
                tokio::time::timeout(options.header_read_timeout, acceptor.accept(stream));
            tokio::select! {
                _ = stages.changed() => return,
                done = handshake => match done {
                    Ok(Ok(stream)) => Box::new(stream),
                    Ok(Err(e)) => {
                        tracing::debug!(%peer, error = %e, "TLS handshake failed");
                        return;
                    }
                    Err(_) => return,
                },
            }
        }
    };
    let io = TokioIo::new(Watched {
        inner: io,
        activity: Arc::clone(&activity),
    });
    let service_activity = Arc::clone(&activity);
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        service_activity.busy();
        request.extensions_mut().insert(ConnectInfo(peer));
        let mut app = app.clone();
        let activity = Arc::clone(&service_activity);
        async move {
            let response = app.call(request.map(Body::new)).await;
            activity.idle();
            response
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    // hyper's own buffer limit (about 400 KiB) bounds a request head; its own header
    // timeout would also cut idle connections, so the watchdog below does both.
    builder.keep_alive(true).header_read_timeout(None);
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);
    let mut shutting_down = false;
    loop {
        let stage = *stages.borrow_and_update();
        if stage == Stage::Cut {
            tracing::debug!(%peer, "cutting a connection at the end of the shutdown grace");
            return;
        }
        if stage == Stage::Draining && !shutting_down {
            shutting_down = true;
            // hyper closes an idle connection now, and a busy one after its answer.
            conn.as_mut().graceful_shutdown();
        }
        // Once shutting down, a request still arriving is not waited for.
        if shutting_down && activity.phase.load(Ordering::Acquire) == READING_HEAD {
            return;
        }
        let deadline = activity.deadline(options);
        let far = Instant::now() + Duration::from_secs(3600);
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
                return;
            }
            // The loop's head reads the new stage.
            changed = stages.changed() => {
                if changed.is_err() {
                    // The listener is gone: nothing will cut this connection later.
                    return;
                }
            }
            // A new phase has a new deadline.
            _ = activity.changed.notified() => {}
            _ = tokio::time::sleep_until(deadline.unwrap_or(far)), if deadline.is_some() => {
                if activity.deadline(options).is_some_and(|d| d <= Instant::now()) {
                    tracing::debug!(%peer, "closing a connection that timed out");
                    return;
                }
            }
        }
    }
}

const READING_HEAD: u8 = 0;
const BUSY: u8 = 1;
const IDLE: u8 = 2;

/// Where a connection is: reading a request head (since `since`), serving a request,
/// or idle (since `since`, the end of the last request or of the last write).
struct Activity {
    epoch: Instant,
    phase: AtomicU8,
    /// Milliseconds after `epoch`.
    since: AtomicU64,
    /// Signalled when the phase changes.
    changed: Notify,
}

impl Activity {
    fn new() -> Self {
        Self {
            epoch: Instant::now(),
            phase: AtomicU8::new(READING_HEAD),
            since: AtomicU64::new(0),
            changed: Notify::new(),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn busy(&self) {
        self.phase.store(BUSY, Ordering::Release);
        self.changed.notify_one();
    }

    fn idle(&self) {
        self.since.store(self.now(), Ordering::Release);
        self.phase.store(IDLE, Ordering::Release);
        self.changed.notify_one();
    }

    /// Bytes arrived: on an idle connection they start the next request's head.
    fn read(&self) {
        if self.phase.load(Ordering::Acquire) == IDLE {
            self.since.store(self.now(), Ordering::Release);
            self.phase.store(READING_HEAD, Ordering::Release);
            self.changed.notify_one();
        }
    }

    /// Bytes left: an idle connection still writing its last answer is not idle.
    fn wrote(&self) {
        if self.phase.load(Ordering::Acquire) == IDLE {
            self.since.store(self.now(), Ordering::Release);
        }
    }

    fn deadline(&self, options: &ListenerOptions) -> Option<Instant> {
        let timeout = match self.phase.load(Ordering::Acquire) {
            READING_HEAD => options.header_read_timeout,
            IDLE => options.idle_timeout,
            _ => return None,
        };
        let since = Duration::from_millis(self.since.load(Ordering::Acquire));
        Some(self.epoch + since + timeout)
    }
}

/// A connection's byte stream, reporting traffic to its [`Activity`].
struct Watched {
    inner: Box<dyn Stream>,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.read();
        }
        result
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.wrote();
        }
        result
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write_vectored(cx, data);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.wrote();
        }
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options() -> ListenerOptions {
        ListenerOptions {
            max_connections: 1,
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            shutdown_grace: Duration::from_secs(10),
            tls: None,
        }
    }

    fn near(deadline: Option<Instant>, expected: Instant) -> bool {
        deadline.is_some_and(|d| {
            d <= expected + Duration::from_secs(1) && d + Duration::from_secs(1) >= expected
        })
    }

    #[test]
    fn deadlines_follow_the_phase() {
        let options = options();
        let activity = Activity::new();
        let header = Duration::from_secs(10);
        assert!(near(activity.deadline(&options), activity.epoch + header));
        activity.busy();
        assert_eq!(activity.deadline(&options), None);
        activity.read();
        activity.wrote();
        assert_eq!(activity.deadline(&options), None, "body traffic while busy");
        activity.idle();
        let idle = activity.deadline(&options);
        assert!(near(idle, Instant::now() + Duration::from_secs(60)));
        activity.read();
        assert!(near(activity.deadline(&options), Instant::now() + header));
        assert!(activity.deadline(&options) < idle);
    }
}
