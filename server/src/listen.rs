//! The accept loop: HTTP/1.1 connections served by hyper with a header deadline (which also
//! closes an idle keep-alive connection), at most `max_connections` at once and at most
//! `max_connections_per_address` from one address, and the client's address put on every request
//! as [`Source`] for the attempt limits. axum's own `serve` has none of these knobs.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::Request;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tower::ServiceExt;

use crate::api::Source;
use crate::limits::Limits;

/// Serves `app` on `listener` under `limits` until `shutdown` resolves, then lets requests in
/// flight finish.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Arc<Limits>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let budget = Arc::new(Budget::new(&limits));
    let (stop, stopped) = watch::channel(());
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: the next accept may succeed.
                    eprintln!("polku-server: accept: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let trusted = limits.trusted_proxies.contains(&peer.ip());
        let Some(permit) = budget.admit(peer.ip(), trusted) else {
            tokio::spawn(refuse(stream));
            continue;
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let header_timeout = limits.header_timeout;
        let limits = limits.clone();
        let mut stopped = stopped.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let service = hyper::service::service_fn(move |mut req: Request<Incoming>| {
                let source = source(peer, &req, &limits.trusted_proxies);
                req.extensions_mut().insert(Source(source));
                app.clone().oneshot(req.map(axum::body::Body::new))
            });
            let mut http = hyper::server::conn::http1::Builder::new();
            http.timer(TokioTimer::new())
                .header_read_timeout(header_timeout);
            let conn = http.serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = stopped.changed() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
    }
    drop(listener);
    drop(stopped);
    let _ = stop.send(());
    // Every connection task holds a receiver: wait until the last one has finished.
    stop.closed().await;
    Ok(())
}

/// The client a request comes from: the peer, unless the peer is a trusted proxy, in which case
/// the nearest address in `X-Forwarded-For` that is not itself a trusted proxy.
fn source<B>(peer: SocketAddr, req: &Request<B>, trusted: &[IpAddr]) -> IpAddr {
    if !trusted.contains(&peer.ip()) {
        return peer.ip();
    }
    let forwarded = req
        .headers()
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect::<Vec<_>>();
    forwarded
        .iter()
        .rev()
        .map(|a| a.parse::<IpAddr>())
        .take_while(Result::is_ok)
        .flatten()
        .find(|a| !trusted.contains(a))
        .unwrap_or(peer.ip())
}

/// Open connections per client address.
type PerAddress = Arc<Mutex<HashMap<IpAddr, usize>>>;

/// Connections being served, in all and per address.
struct Budget {
    all: Arc<Semaphore>,
    per_address: PerAddress,
    max_per_address: usize,
}

/// A connection's place in the budget, given back when the connection ends.
struct Permit {
    _all: OwnedSemaphorePermit,
    address: Option<(IpAddr, PerAddress)>,
}

impl Budget {
    fn new(limits: &Limits) -> Budget {
        Budget {
            all: Arc::new(Semaphore::new(limits.max_connections.max(1))),
            per_address: Arc::default(),
            max_per_address: limits.max_connections_per_address.max(1),
        }
    }

    /// A place for a new connection from `ip` (an IPv6 client counted per /64), or `None` when
    /// the server or that client is at its limit. A trusted proxy carries many clients and is
    /// counted only in all.
    fn admit(&self, ip: IpAddr, trusted: bool) -> Option<Permit> {
        let all = self.all.clone().try_acquire_owned().ok()?;
        if trusted {
            return Some(Permit {
                _all: all,
                address: None,
            });
        }
        let ip = crate::limits::client_net(ip);
        let mut counts = self.per_address.lock().unwrap_or_else(|p| p.into_inner());
        let n = counts.entry(ip).or_insert(0);
        if *n >= self.max_per_address {
            return None;
        }
        *n += 1;
        Some(Permit {
            _all: all,
            address: Some((ip, self.per_address.clone())),
        })
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if let Some((ip, counts)) = &self.address {
            let mut counts = counts.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(n) = counts.get_mut(ip) {
                *n -= 1;
                if *n == 0 {
                    counts.remove(ip);
                }
            }
        }
    }
}

/// Answers a connection over the limits with a typed 503 and closes it. What the client already
/// sent is read (briefly) first, so the close does not reset the connection before the answer
/// is read.
async fn refuse(mut stream: TcpStream) {
    let body = r#"{"error":{"code":"too_many_connections","message":"the server, or this address, has too many open connections; try again shortly"}}"#;
    let head = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 5\r\nconnection: close\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.write_all(body.as_bytes()).await;
    let _ = stream.shutdown().await;
    let mut sink = [0u8; 4096];
    let drain = async {
        let mut total = 0usize;
        while let Ok(n) = stream.read(&mut sink).await {
            total += n;
            if n == 0 || total > 64 * 1024 {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), drain).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(xff: &[&str]) -> Request<()> {
        let mut b = Request::builder();
        for v in xff {
            b = b.header("x-forwarded-for", *v);
        }
        b.body(()).unwrap()
    }

    #[test]
    fn the_source_is_the_peer_unless_the_peer_is_a_trusted_proxy() {
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let peer = SocketAddr::new(proxy, 5555);
        let other = SocketAddr::new("192.0.2.9".parse().unwrap(), 5555);
        // An untrusted peer cannot choose its address with a header.
        assert_eq!(source(other, &req(&["198.51.100.7"]), &[proxy]), other.ip());
        // Behind the proxy: the nearest address the proxy saw, not what the client wrote first.
        assert_eq!(
            source(peer, &req(&["203.0.113.5, 198.51.100.7"]), &[proxy]),
            "198.51.100.7".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            source(
                peer,
                &req(&["203.0.113.5", "198.51.100.7, 10.0.0.1"]),
                &[proxy]
            ),
            "198.51.100.7".parse::<IpAddr>().unwrap()
        );
        // No header or garbage: the proxy itself.
        assert_eq!(source(peer, &req(&[]), &[proxy]), proxy);
        assert_eq!(source(peer, &req(&["nonsense"]), &[proxy]), proxy);
    }

    #[test]
    fn the_budget_counts_per_address_and_gives_places_back() {
        let limits = Limits {
            max_connections: 3,
            max_connections_per_address: 2,
            ..Limits::default()
        };
        let b = Budget::new(&limits);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let c: IpAddr = "192.0.2.2".parse().unwrap();
        let p1 = b.admit(a, false).unwrap();
        let _p2 = b.admit(a, false).unwrap();
        assert!(b.admit(a, false).is_none(), "a third from one address");
        let _p3 = b.admit(c, false).unwrap();
        assert!(b.admit(c, true).is_none(), "a fourth in all");
        drop(p1);
        assert!(b.admit(a, false).is_some(), "a place given back");
    }
}
