//! The two HTTP listeners: the bid port for exchanges (bids and notices) and
//! the admin port for operators (health, readiness, metrics, reload). They
//! are separate so that a flood of bid traffic, or a firewall rule for it,
//! never hides the probes and the metrics.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderName, HeaderValue, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::app::{Access, App, BidAnswer};
use crate::body::{self, BodyError};
use crate::metrics::{self, ExchangeCounters, Outcome};
use crate::respond::Dialect;

use crate::failure::{text, text_retry_after, BadRequest, Failure, Refused, Resp};

/// What a ready replica's `/readyz` says: `ready`, then what an operator
/// should know while it still serves: that the shared state is
/// unavailable, that the last reload was refused. Either alone was once all
/// it said, and a refused reload during an outage of the shared state went
/// unsaid.
fn ready_text(app: &App) -> String {
    let mut notes = Vec::new();
    if let Some(why) = app.state_unavailable() {
        // Still ready: every replica loses Redis together more often than
        // one alone, and a load balancer left with no ready replica would
        // give exchanges errors instead of our fast 204s. Alert on
        // bidder_shared_state_up.
        notes.push(format!(
            "degraded: shared state unavailable, budgeted line items do not bid: {why}"
        ));
    }
    if let Some(r) = app.last_refused() {
        // Still ready: the config before it serves, as it did. Said so that
        // whoever reads the probe sees the change did not take (the gauge
        // bidder_config_last_load_ok says it too). Not what the problems
        // say: this path needs no token, and a problem may repeat a value
        // (a key pasted in the wrong place); the reload's answer and the
        // log have them.
        notes.push(format!(
            "on the config before the last reload: that reload was refused at {} with {} \
             problem{} (the reload's answer and the log list them)",
            r.at,
            r.problems,
            if r.problems == 1 { "" } else { "s" }
        ));
    }
    if notes.is_empty() {
        return "ready\n".to_string();
    }
    format!("ready, {}\n", notes.join("; "))
}

fn method_not_allowed(allow: &'static str) -> Resp {
    Refused::Method(allow).response()
}

/// How a port treats its connections.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Open connections at most; further ones wait in the listen backlog
    /// until one closes.
    pub max_connections: usize,
    /// A request's headers must arrive within this.
    pub header_timeout: Duration,
    /// A keep-alive connection with no request in flight is closed after
    /// this.
    pub idle_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 4096,
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
        }
    }
}

/// What a connection is doing, for the one timer that closes it (see
/// [`Activity::quiet`]). Times are milliseconds since `since` (tokio's
/// clock, which is std's outside tests).
struct Activity {
    since: tokio::time::Instant,
    /// When its last request's handler finished (or it opened).
    ended_ms: AtomicU64,
    /// When an answer's bytes last went out with no request in flight.
    wrote_ms: AtomicU64,
    /// The socket's last write found its buffer full: the client has not
    /// read what was sent yet.
    write_blocked: AtomicBool,
    in_flight: AtomicUsize,
}

/// How long a quiet connection is kept while the port is full: a
/// connection with no request in flight whose next request's headers have
/// not come within this, or that has been idle this long, goes to make room.
/// Without it, a client holding every slot with sockets that never send a
/// byte held the port for the whole header timeout (10 s), over and over:
/// exchanges' requests waited in the backlog for seconds.
const SHED_AFTER: Duration = Duration::from_secs(1);

/// The most hyper buffers of one connection's input: a request's head must
/// fit (a larger one is answered 431), and a body streams through it.
/// hyper's default, about 400 KB, let 2,600 connections that each held an
/// unfinished 400 KB head take 1.07 GB, past the pod's memory limit, for
/// the 10 s header timeout; at 32 KB the 4,096 connections of
/// `--max-connections` hold 128 MiB at most. An exchange's head is a few
/// hundred bytes, a browser's with its cookies a few KB.
pub(crate) const READ_BUFFER_BYTES: usize = 32 * 1024;

/// Whether a connection waited for a slot within the last [`SHED_AFTER`]
/// (the port is full, see there). Sticky for that long, so that a port
/// kept full by a churn of connections wakes its connections' timers once
/// an episode, not once a connection.
struct Pressure {
    since: tokio::time::Instant,
    /// When a connection last waited for a slot (ms since `since`, plus
    /// one: 0 is never).
    waited_ms: AtomicU64,
    /// Wakes the connections' timers when an episode starts.
    filled: tokio::sync::Notify,
}

impl Pressure {
    fn new() -> Pressure {
        Pressure {
            since: tokio::time::Instant::now(),
            waited_ms: AtomicU64::new(0),
            filled: tokio::sync::Notify::new(),
        }
    }

    fn now_ms(&self) -> u64 {
        millis(self.since.elapsed()).saturating_add(1)
    }

    /// A connection waits for a slot now (said again every half
    /// [`SHED_AFTER`] while it waits).
    fn waiting(&self) {
        let now = self.now_ms();
        let before = self.waited_ms.swap(now, Relaxed);
        if before == 0 || now.saturating_sub(before) > millis(SHED_AFTER) {
            self.filled.notify_waiters();
        }
    }

    fn is_full(&self) -> bool {
        let w = self.waited_ms.load(Relaxed);
        w != 0 && self.now_ms().saturating_sub(w) <= millis(SHED_AFTER)
    }
}

impl Activity {
    fn new() -> Activity {
        Activity {
            since: tokio::time::Instant::now(),
            ended_ms: AtomicU64::new(0),
            wrote_ms: AtomicU64::new(0),
            write_blocked: AtomicBool::new(false),
            in_flight: AtomicUsize::new(0),
        }
    }

    fn now_ms(&self) -> u64 {
        millis(self.since.elapsed())
    }

    /// Resolves once the connection should close, with no request in
    /// flight: `idle` after its last request ended (the longest a client
    /// may take to read an answer), or `header` after the last answer's
    /// bytes went out when they all did (the next request's headers not
    /// in, whether they trickle or never start).
    ///
    /// This is the header timeout. hyper's own armed a timer for every
    /// request (a boxed sleep put into the runtime's timer wheel and taken
    /// out again: 2-3% of the server's CPU under load); this one timer per
    /// connection sleeps until the earliest moment either limit could be
    /// reached, so a busy connection wakes it about once per `header`, not
    /// once per request. hyper's rule is kept: the next request's headers
    /// are due within the timeout of the previous answer being written (or
    /// of the connection opening).
    ///
    /// While the port is full (`pressure`), both limits are at most
    /// [`SHED_AFTER`]: quiet connections make room for new ones. One with a
    /// request in flight is never cut, nor one whose answer is still going
    /// out to a slow reader (it keeps `idle`).
    async fn quiet(&self, header: Duration, idle: Duration, pressure: &Pressure) {
        let (full_header, full_idle) = (millis(header), millis(idle));
        let shed = millis(SHED_AFTER);
        loop {
            // Asked for before the flag is read: an episode that starts
            // after the read still wakes this timer.
            let filled = pressure.filled.notified();
            let full = pressure.is_full();
            let now = self.now_ms();
            // A slow reader still taking its answer's bytes keeps `idle`;
            // one that stopped reading is as quiet as one that never sent
            // (a client pipelining requests and reading nothing would hold
            // the slot for `idle` otherwise).
            let reading = self.write_blocked.load(Relaxed)
                && now.saturating_sub(self.wrote_ms.load(Relaxed)) < shed;
            let header = if full {
                full_header.min(shed)
            } else {
                full_header
            };
            let idle = if full && !reading {
                full_idle.min(shed)
            } else {
                full_idle
            };
            let ended = self.ended_ms.load(Relaxed);
            let wait = if self.in_flight.load(Relaxed) == 0 {
                let idle_left = ended.saturating_add(idle).saturating_sub(now);
                // An answer the client is slow to read is not a quiet
                // connection: only `idle` bounds it. Looked at again within
                // `header`, for the answer may have gone out by then.
                let header_left = if self.write_blocked.load(Relaxed) {
                    None
                } else {
                    let written = self.wrote_ms.load(Relaxed).max(ended);
                    Some(written.saturating_add(header).saturating_sub(now))
                };
                if header_left == Some(0) || idle_left == 0 {
                    return;
                }
                idle_left.min(header_left.unwrap_or(header))
            } else {
                header.min(idle)
            };
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(wait.max(100))) => {}
                _ = filled => {}
            }
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A connection's socket, noting when an answer's bytes go out after its
/// request's handler finished and whether the client is keeping up, so that
/// a client still reading a long answer is not taken for one that went
/// quiet.
struct Watched {
    stream: tokio::net::TcpStream,
    activity: Arc<Activity>,
}

impl Watched {
    fn wrote(&self, r: &Poll<std::io::Result<usize>>) {
        let a = &self.activity;
        match r {
            Poll::Pending => a.write_blocked.store(true, Relaxed),
            Poll::Ready(r) => {
                a.write_blocked.store(false, Relaxed);
                if matches!(r, Ok(n) if *n > 0) && a.in_flight.load(Relaxed) == 0 {
                    a.wrote_ms.store(a.now_ms(), Relaxed);
                }
            }
        }
    }
}

impl tokio::io::AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.stream).poll_write(cx, buf);
        self.wrote(&r);
        r
    }

    // hyper writes an answer's head and body in one vectored write when
    // the socket takes those, and copies them into one buffer otherwise.
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        self.wrote(&r);
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// How the accept loop tells each open connection to stop: a channel of
/// its own per connection. Each connection used to wait on a clone of the
/// shutdown watch, and its task polls every branch it waits on each time
/// it wakes, a few times a request: the watch's poll took a lock shared
/// by every connection (about 1% of a loaded server's CPU on two cores,
/// and a line every core fights over on more). A oneshot's pending poll
/// touches only its own connection's state.
#[derive(Default)]
struct Stops {
    senders: Vec<tokio::sync::oneshot::Sender<()>>,
    /// How many senders were left after the last sweep of closed ones.
    kept: usize,
}

impl Stops {
    /// A new connection's stop signal.
    fn add(&mut self) -> tokio::sync::oneshot::Receiver<()> {
        // A connection's receiver goes with its task: sweep the senders of
        // ended connections once they are as many as the live ones were,
        // so the list stays within twice the open connections, at a
        // constant cost per connection.
        if self.senders.len() >= 2 * self.kept.max(64) {
            self.senders.retain(|s| !s.is_closed());
            self.kept = self.senders.len();
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.senders.push(tx);
        rx
    }

    /// Every connection still open starts its graceful close.
    fn stop_all(&mut self) {
        for s in self.senders.drain(..) {
            // A connection that ended already has no one to tell.
            let _ = s.send(());
        }
    }
}

/// Accepts connections until `shutdown` flips, then lets every open
/// connection finish its in-flight request before returning.
pub async fn serve<F, Fut>(
    listener: TcpListener,
    shutdown: watch::Receiver<bool>,
    limits: Limits,
    handle: F,
) where
    F: Fn(Request<Incoming>, IpAddr) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Resp> + Send + 'static,
{
    let mut stop = shutdown.clone();
    let mut tasks = tokio::task::JoinSet::new();
    let mut stops = Stops::default();
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections.max(1)));
    let pressure = Arc::new(Pressure::new());
    let mut backoff = Duration::ZERO;
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.changed() => break,
        };
        let (stream, peer) = match accepted {
            Ok(a) => {
                backoff = Duration::ZERO;
                a
            }
            Err(e) => {
                // Out of file descriptors and the like: back off, more each
                // time it goes on, rather than spin.
                backoff = (backoff * 2).clamp(Duration::from_millis(5), Duration::from_secs(1));
                tracing::warn!("accept failed, retrying in {backoff:?}: {e}");
                tokio::time::sleep(backoff).await;
                continue;
            }
        };
        // Then its slot. Past the limit this one waits (and the next ones
        // in the kernel's backlog, costing no task and no buffer), and
        // quiet connections are asked to make room: only when a connection
        // does wait, not whenever every slot is taken.
        let slot = match slots.clone().try_acquire_owned() {
            Ok(slot) => Some(slot),
            Err(tokio::sync::TryAcquireError::Closed) => None,
            Err(tokio::sync::TryAcquireError::NoPermits) => loop {
                pressure.waiting();
                tokio::select! {
                    s = slots.clone().acquire_owned() => break s.ok(),
                    _ = tokio::time::sleep(SHED_AFTER / 2) => {}
                    _ = stop.changed() => break None,
                }
            },
        };
        let Some(slot) = slot else { break };
        let _ = stream.set_nodelay(true);
        let handle = handle.clone();
        let stop = stops.add();
        let pressure = pressure.clone();
        tasks.spawn(async move {
            let _slot = slot;
            let activity = Arc::new(Activity::new());
            let seen = activity.clone();
            // Who is on the other end, for per-address limits: passed to
            // the handler, not put in each request's extensions (a map
            // allocated per request, bids included, for the pixel route
            // alone to read).
            let peer = peer.ip();
            let service = service_fn(move |req: Request<Incoming>| {
                let handle = handle.clone();
                let seen = seen.clone();
                async move {
                    seen.in_flight.fetch_add(1, Relaxed);
                    let resp = handle(req, peer).await;
                    seen.ended_ms.store(seen.now_ms(), Relaxed);
                    seen.in_flight.fetch_sub(1, Relaxed);
                    Ok::<_, Infallible>(resp)
                }
            });
            // No timer for hyper: the header timeout is `Activity::quiet`'s.
            let conn = http1::Builder::new()
                .header_read_timeout(None)
                .max_buf_size(READ_BUFFER_BYTES)
                .keep_alive(true)
                .serve_connection(
                    TokioIo::new(Watched {
                        stream,
                        activity: activity.clone(),
                    }),
                    service,
                );
            tokio::pin!(conn);
            // The connection first: a request whose headers are in starts
            // (and counts as in flight) before the quiet check can see it.
            let stopping = tokio::select! {
                biased;
                r = conn.as_mut() => { let _ = r; false }
                // Told to stop, or the server that would tell it is gone.
                _ = stop => true,
                // Dropped at once, as hyper dropped a connection past its
                // header timeout: a graceful close would wait on a half-read
                // head, or on a client that stopped reading.
                _ = activity.quiet(limits.header_timeout, limits.idle_timeout, &pressure) => false,
            };
            if stopping {
                conn.as_mut().graceful_shutdown();
                let _ = tokio::time::timeout(Duration::from_secs(5), conn).await;
            }
        });
        while tasks.try_join_next().is_some() {}
    }
    stops.stop_all();
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
}

/// The bid port. `peer` is the address the connection comes from (a
/// proxy's, behind one).
pub async fn bid_port(app: Arc<App>, req: Request<Incoming>, peer: IpAddr) -> Resp {
    let start = Instant::now();
    match req.uri().path() {
        "/openrtb2/bid" => {
            if req.method() != Method::POST {
                return method_not_allowed("POST");
            }
            bid(app, req, start, None, peer).await
        }
        path if path.starts_with("/openrtb2/bid/") => {
            if req.method() != Method::POST {
                return method_not_allowed("POST");
            }
            let id = path["/openrtb2/bid/".len()..].to_owned();
            bid(app, req, start, Some(id), peer).await
        }
        path @ ("/notice/win" | "/notice/billing" | "/notice/loss") => {
            if req.method() != Method::GET && req.method() != Method::POST {
                return method_not_allowed("GET, POST");
            }
            let Some(kind) = crate::notice::Kind::of_path(path) else {
                return Refused::NotFound.response();
            };
            // Boxed, as the pixel's below: a bid's future is this one's,
            // made and moved on every request, and it would otherwise be
            // as large as the largest route's.
            let answer = match Box::pin(app.notice(kind, req.uri().query().unwrap_or(""))).await {
                Ok(_) => text(StatusCode::OK, ""),
                Err(e) => e.response(),
            };
            crate::metrics::notice_duration(start.elapsed());
            answer
        }
        path if path.starts_with("/px/") => {
            if req.method() != Method::GET {
                return method_not_allowed("GET");
            }
            match path["/px/".len()..].strip_suffix("/sync") {
                Some(advertiser) => advertiser_sync(&app, &req, advertiser),
                None => Box::pin(pixel(&app, &req, &path["/px/".len()..], peer)).await,
            }
        }
        path if path.starts_with("/sync/") => {
            if req.method() != Method::GET {
                return method_not_allowed("GET");
            }
            user_sync(&app, &req, &path["/sync/".len()..])
        }
        path @ ("/track/impression" | "/track/click" | "/track/event") => {
            if req.method() != Method::GET && req.method() != Method::POST {
                return method_not_allowed("GET, POST");
            }
            let Some(which) = crate::track::Path::of(path) else {
                return Refused::NotFound.response();
            };
            let query = req.uri().query().unwrap_or("");
            // With Redis a click of a charged bid is claimed there before
            // it is written (`App::claim_and_record`): off the workers.
            let tracked = if which == crate::track::Path::Click && app.claims_tracking() {
                let (app, query) = (app.clone(), query.to_string());
                match tokio::task::spawn_blocking(move || app.track(which, &query)).await {
                    Ok(tracked) => tracked,
                    Err(_) => return text(StatusCode::INTERNAL_SERVER_ERROR, "tracking failed\n"),
                }
            } else {
                app.track(which, query)
            };
            match tracked {
                Ok(answer) => {
                    if which == crate::track::Path::Click && answer.counted() {
                        app.clicks_written().await;
                    }
                    track_response(which, answer)
                }
                Err(e) => e.response(),
            }
        }
        _ => Refused::NotFound.response(),
    }
}

/// Where a request comes from: the connection's address, or, when that is
/// one of `trusted` proxies, the last `X-Forwarded-For` address that is not
/// (a client can write any addresses at the front of the header; each proxy
/// we trust appends the one it saw). `None` when an address the proxies
/// wrote cannot be read: nobody can say where the request came from.
pub(crate) fn client_address(
    peer: IpAddr,
    headers: &hyper::HeaderMap,
    trusted: &[ipnet::IpNet],
) -> Option<IpAddr> {
    let trusted_one = |a: &IpAddr| trusted.iter().any(|n| n.contains(a));
    let mut at = peer.to_canonical();
    if !trusted_one(&at) {
        return Some(at);
    }
    let forwarded = headers.get_all("x-forwarded-for").iter().rev();
    for value in forwarded {
        // Split as bytes, from the right: the front is the client's own
        // writing, and a byte `to_str` refuses there (`\xff`) made the
        // whole header unreadable, so the address our proxy appended was
        // never reached and the request had no client (review finding:
        // the wrong-token limit of /v1 then counted nothing).
        for hop in value.as_bytes().rsplit(|&b| b == b',') {
            let hop = std::str::from_utf8(hop).ok()?;
            at = hop_address(hop.trim())?.to_canonical();
            if !trusted_one(&at) {
                return Some(at);
            }
        }
    }
    // Proxies all the way: the first one is where it came from.
    Some(at)
}

/// An `X-Forwarded-For` entry: an address, or one with the port the proxy
/// saw (`198.51.100.7:4711`, `[2001:db8::7]:4711`), as some proxies write.
fn hop_address(hop: &str) -> Option<IpAddr> {
    hop.parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<std::net::SocketAddr>().ok().map(|s| s.ip()))
}

/// `GET /px/{advertiser}` (see [`crate::pixel`]): a GIF whenever the call
/// is well formed, whether or not it recorded anything.
async fn pixel(app: &App, req: &Request<Incoming>, advertiser: &str, peer: IpAddr) -> Resp {
    use crate::pixel::PixelError;
    // The Origin names the page's site when the browser sends one; the
    // Referer its page otherwise. One sent but unreadable is no page of
    // the advertiser's.
    let sent = req
        .headers()
        .get(hyper::header::ORIGIN)
        .or_else(|| req.headers().get(hyper::header::REFERER))
        .filter(|v| !v.is_empty());
    let page = sent.map(|v| v.to_str().unwrap_or("\u{0}"));
    let cookie = cookie_of(req);
    let query = req.uri().query().unwrap_or("");
    let result = app
        .pixel(advertiser, query, gpc_of(req), cookie, page, Some(peer))
        .await;
    metrics::pixel(match &result {
        Ok(r) => r.as_str(),
        Err(PixelError::UnknownAdvertiser) => "unknown_advertiser",
        Err(PixelError::ForeignPage) => "foreign_page",
        Err(PixelError::NoPage) => "no_page",
        Err(PixelError::ForeignUid) => "foreign_uid",
        Err(PixelError::Invalid(_)) => "invalid",
    });
    let mut r = match result {
        Ok(_) => {
            let mut r = Response::new(Full::new(Bytes::from_static(crate::track::PIXEL_GIF)));
            r.headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("image/gif"));
            r
        }
        Err(e @ PixelError::UnknownAdvertiser) => text(StatusCode::NOT_FOUND, format!("{e}\n")),
        Err(e @ (PixelError::ForeignPage | PixelError::NoPage | PixelError::ForeignUid)) => {
            text(StatusCode::FORBIDDEN, format!("{e}\n"))
        }
        Err(e @ PixelError::Invalid(_)) => text(StatusCode::BAD_REQUEST, format!("{e}\n")),
    };
    r.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// Whether the browser sent Global Privacy Control (`Sec-GPC: 1`): no
/// cookie set and no event recorded, as for an opt-out in the query.
fn gpc_of<B>(req: &Request<B>) -> bool {
    crate::sync::gpc_header(
        req.headers()
            .get_all("sec-gpc")
            .iter()
            .map(|v| v.as_bytes()),
    )
}

/// The request's `Cookie` header, as our cookie readers take it.
fn cookie_of<B>(req: &Request<B>) -> Option<&[u8]> {
    req.headers()
        .get(hyper::header::COOKIE)
        .map(|v| v.as_bytes())
}

/// `GET /px/{advertiser}/sync` (see [`crate::sync::advertiser_sync`]).
fn advertiser_sync(app: &App, req: &Request<Incoming>, advertiser: &str) -> Resp {
    let snap = app.snapshot();
    let Some(adv) = snap
        .as_deref()
        .and_then(|s| s.config.advertisers.iter().find(|a| a.id == advertiser))
    else {
        metrics::user_sync("unknown_advertiser");
        return Refused::NotFound.response();
    };
    let cookie = cookie_of(req);
    let query = req.uri().query().unwrap_or("");
    synced(crate::sync::advertiser_sync(
        &adv.id,
        &adv.domains,
        query,
        gpc_of(req),
        cookie,
        &app.settings.privacy,
        app.signer(),
        app.now(),
    ))
}

/// `GET /sync/{exchange}` (see [`crate::sync`]).
fn user_sync(app: &App, req: &Request<Incoming>, exchange: &str) -> Resp {
    let snap = app.snapshot();
    let Some(profile) = snap.as_deref().and_then(|s| s.profile(Some(exchange))) else {
        metrics::user_sync("unknown_exchange");
        return Refused::NotFound.response();
    };
    let cookie = cookie_of(req);
    let query = req.uri().query().unwrap_or("");
    synced(crate::sync::sync(
        profile,
        query,
        gpc_of(req),
        cookie,
        &app.settings.privacy,
        app.signer(),
    ))
}

/// The answer to a sync: 302 with the cookie, or why not.
fn synced(result: Result<crate::sync::Synced, crate::sync::SyncError>) -> Resp {
    match result {
        Ok(s) => {
            metrics::user_sync(if s.uid.is_some() {
                "synced"
            } else {
                "no_consent"
            });
            let mut r = Response::new(Full::new(Bytes::new()));
            *r.status_mut() = StatusCode::FOUND;
            let h = r.headers_mut();
            match HeaderValue::from_str(&s.location) {
                Ok(v) => {
                    h.insert(hyper::header::LOCATION, v);
                }
                Err(_) => {
                    return text(StatusCode::BAD_REQUEST, "the redirect is not a valid URL\n")
                }
            }
            if let Some(c) = s.set_cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
                h.insert(hyper::header::SET_COOKIE, c);
            }
            h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r
        }
        Err(e @ crate::sync::SyncError::NoSyncUrl) => {
            metrics::user_sync("refused");
            text(StatusCode::NOT_FOUND, format!("{e}\n"))
        }
        Err(e) => {
            metrics::user_sync("refused");
            text(StatusCode::BAD_REQUEST, format!("{e}\n"))
        }
    }
}

/// What a tracking URL answers: a pixel for an impression (it is an
/// `<img>`), 302 to the creative's click URL for a click, 204 otherwise.
/// Never cached: each call is an event.
fn track_response(path: crate::track::Path, answer: crate::app::TrackAnswer) -> Resp {
    use crate::app::TrackAnswer;
    let mut r = match answer {
        TrackAnswer::Redirect { url, .. } => {
            let mut r = Response::new(Full::new(Bytes::new()));
            *r.status_mut() = StatusCode::FOUND;
            // Location is a URI, ASCII only, but the config takes any
            // characters but spaces and controls (`/café`), and HeaderValue
            // lets bytes above 0x7f through as they are. Non-ASCII goes
            // percent-encoded as UTF-8, as a browser sends it; `%XX`
            // already there stays.
            let url =
                percent_encoding::utf8_percent_encode(&url, percent_encoding::CONTROLS).to_string();
            match HeaderValue::from_str(&url) {
                Ok(v) => {
                    r.headers_mut().insert(hyper::header::LOCATION, v);
                }
                // A click URL the config accepted but HTTP cannot carry.
                Err(_) => *r.status_mut() = StatusCode::GONE,
            }
            r
        }
        TrackAnswer::Gone { .. } => text(StatusCode::GONE, "this ad is no longer available\n"),
        TrackAnswer::Counted { .. } if path == crate::track::Path::Impression => {
            let mut r = Response::new(Full::new(Bytes::from_static(crate::track::PIXEL_GIF)));
            r.headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("image/gif"));
            r
        }
        TrackAnswer::Counted { .. } => no_content(),
    };
    r.headers_mut().insert(
        hyper::header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    );
    r
}

/// Named once: a header name given as a string is parsed and checked
/// again on every request that looks it up or sets it.
const OPENRTB_VERSION: HeaderName = HeaderName::from_static("x-openrtb-version");

/// The OpenRTB version the exchange names as its own
/// ([`Dialect::of_header`]); `None`: its profile's says.
fn openrtb_version(req: &Request<Incoming>) -> Option<Dialect> {
    Dialect::of_header(req.headers().get(&OPENRTB_VERSION).map(|v| v.as_bytes()))
}

async fn bid(
    app: Arc<App>,
    req: Request<Incoming>,
    start: Instant,
    exchange: Option<String>,
    peer: IpAddr,
) -> Resp {
    let named = openrtb_version(&req);
    // One snapshot for the whole request: the profile resolved here is the
    // one the auction runs with.
    let snap = app.snapshot();
    let profile = match &snap {
        Some(s) => match s.profile(exchange.as_deref()) {
            Some(p) => Some(p),
            None => {
                metrics::unknown_exchange();
                return Refused::NotFound.response();
            }
        },
        None => None,
    };
    if let Some(p) = profile {
        use crate::snapshot::Sources;
        let refused = match &p.sources {
            Sources::Anywhere => None,
            Sources::Only(nets) => {
                let from = client_address(peer, req.headers(), &app.settings.trusted_proxies);
                (!from.is_some_and(|a| nets.iter().any(|n| n.contains(&a))))
                    .then_some("this exchange's requests do not come from here\n")
            }
            Sources::Nowhere => Some(
                "closed: exchange profiles name the networks they send from (allow_from), and \
                 no profile with id: default says who may use /openrtb2/bid\n",
            ),
        };
        if let Some(why) = refused {
            metrics::foreign_source(&p.report_id);
            return text(StatusCode::FORBIDDEN, why);
        }
    }
    let counters = match profile {
        Some(p) => &p.counters,
        None => ExchangeCounters::default_exchange(),
    };
    let version = named.unwrap_or(profile.map_or(Dialect::V2_6, |p| p.dialect));
    let gzip = profile.is_some_and(|p| p.gzip_responses) && accepts_gzip(req.headers());
    let (parts, body) = req.into_parts();
    // A client that trickles its body must not hold a slot past any
    // exchange's deadline; the real deadline (tmax) is applied once parsed.
    let read = within(
        app.settings.max_tmax,
        body::read(
            &parts.headers,
            body,
            app.settings.max_body_bytes,
            Some(&app.bid_bodies),
        ),
    )
    .await;
    // A body not read to its end: a no-bid, and since the rest of it is
    // still on its way, this connection carries no other request, and
    // says so.
    let unread = |reason: crate::nobid::NoBid| {
        metrics::request(counters, Outcome::NoBid(reason), start.elapsed());
        app.body_unread(profile, reason);
        let mut r = no_content();
        connection_close(&mut r);
        r
    };
    let mut resp = match read {
        Err(_) => unread(crate::nobid::NoBid::Late),
        // It did not fit in what bodies being read may hold together: a
        // no-bid, as a body too slow is (an error status would count
        // against us at the exchange for what a third party did).
        Ok(Err(BodyError::Busy)) => unread(crate::nobid::NoBid::Busy),
        Ok(Err(e)) => {
            let outcome = match e {
                BodyError::TooLarge(_) => Outcome::TooLarge,
                _ => Outcome::BadRequest,
            };
            metrics::request(counters, outcome, start.elapsed());
            e.response()
        }
        Ok(Ok(bytes)) => match app
            .bid_confirmed(snap.as_deref(), profile, &bytes, start, version)
            .await
        {
            BidAnswer::Bid(json, n) => {
                metrics::bids(counters, n);
                metrics::request(counters, Outcome::Bid, start.elapsed());
                let mut r = if gzip {
                    let mut r = Response::new(Full::new(Bytes::from(gzipped(&json))));
                    r.headers_mut()
                        .insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
                    r
                } else {
                    // The buffer goes back to a thread's spares once sent.
                    Response::new(Full::new(Bytes::from_owner(json)))
                };
                r.headers_mut()
                    .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                r
            }
            BidAnswer::NoBid(reason) => {
                metrics::request(counters, Outcome::NoBid(reason), start.elapsed());
                no_content()
            }
            BidAnswer::Invalid(reason) => {
                metrics::request(counters, Outcome::BadRequest, start.elapsed());
                BadRequest(reason).response()
            }
        },
    };
    resp.headers_mut()
        .insert(OPENRTB_VERSION, HeaderValue::from_static(version.header()));
    resp
}

/// `fut` if it finishes within `limit`, like `tokio::time::timeout`, but
/// tried once before a timer is made: a bid's body has nearly always come
/// with its headers, and a timer costs a runtime handle, a clock read and,
/// once polled, a place in the timer wheel, on every request.
async fn within<F: std::future::Future>(
    limit: Duration,
    fut: F,
) -> Result<F::Output, tokio::time::error::Elapsed> {
    let mut fut = std::pin::pin!(fut);
    let first = std::future::poll_fn(|cx| Poll::Ready(fut.as_mut().poll(cx))).await;
    match first {
        Poll::Ready(out) => Ok(out),
        Poll::Pending => tokio::time::timeout(limit, fut).await,
    }
}

/// Whether the exchange takes a gzip body: it does unless its
/// `Accept-Encoding` says otherwise (an absent header accepts anything).
/// `*` stands only for codings the header does not name (RFC 9110,
/// 12.5.3): `gzip;q=0, *` refuses gzip.
fn accepts_gzip(headers: &hyper::HeaderMap) -> bool {
    let Some(value) = headers.get(hyper::header::ACCEPT_ENCODING) else {
        return true;
    };
    let Ok(value) = value.to_str() else {
        return false;
    };
    let (mut gzip, mut any) = (None, None);
    for part in value.split(',') {
        let mut it = part.split(';');
        let coding = it.next().unwrap_or("").trim();
        let refused = it.any(|p| {
            p.trim()
                .strip_prefix("q=")
                .is_some_and(|q| q.trim().parse::<f32>().is_ok_and(|q| q <= 0.0))
        });
        // Named twice: a refusal wins.
        if coding.eq_ignore_ascii_case("gzip") {
            gzip = Some(gzip.unwrap_or(true) && !refused);
        } else if coding == "*" {
            any = Some(any.unwrap_or(true) && !refused);
        }
    }
    gzip.or(any).unwrap_or(false)
}

/// The fastest level: a BidResponse is a few KB and its markup repeats,
/// so even level 1 shrinks it several times at little CPU.
fn gzipped(body: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(
        Vec::with_capacity(body.len() / 3 + 64),
        flate2::Compression::fast(),
    );
    // Writing into a Vec cannot fail.
    let _ = enc.write_all(body);
    enc.finish().unwrap_or_default()
}

fn no_content() -> Resp {
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = StatusCode::NO_CONTENT;
    r
}

/// The admin port.
pub async fn admin_port(app: Arc<App>, req: Request<Incoming>, peer: IpAddr) -> Resp {
    let get_only = |m: &Method| m == Method::GET || m == Method::HEAD;
    match req.uri().path() {
        "/healthz" if get_only(req.method()) => match app.writer_stopped() {
            // Not alive: nothing short of a restart writes charges or
            // events again, and the liveness probe is what restarts.
            Some(which) => text(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("not alive: {which} stopped; restart the process\n"),
            ),
            None => text(StatusCode::OK, "ok\n"),
        },
        "/readyz" if get_only(req.method()) => {
            if app.is_draining() {
                text(StatusCode::SERVICE_UNAVAILABLE, "draining: shutting down\n")
            } else if let Some(why) = app.journal_failing() {
                // Not ready: this replica makes no bids until its disk
                // takes charges again, and another one can. Its own disk,
                // unlike the shared state below, which all lose together.
                text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("not ready: charges cannot be written to the journal, no bids are made: {why}\n"),
                )
            } else if let (
                ledger::Health {
                    unavailable: Some(why),
                    never_available: true,
                },
                true,
            ) = (app.state_health(), app.is_ready())
            {
                // Never reached since the start: a wrong address or
                // password, or a state not created yet. Not ready, so a
                // rollout of a bad setting stops at its first replica.
                text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("not ready: the shared state has not been available since the start: {why}\n"),
                )
            } else if app.is_ready() {
                text(StatusCode::OK, ready_text(&app))
            } else {
                text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "no valid config loaded yet\n",
                )
            }
        }
        "/metrics" if get_only(req.method()) => {
            app.shared_state_metrics();
            let body = app.metrics.map(metrics::render).unwrap_or_default();
            let mut r = text(StatusCode::OK, body);
            r.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            r
        }
        path if path.starts_with("/v1/") => v1(app, req, peer).await,
        "/ui" | "/ui/login" => ui(app, req, peer).await,
        "/healthz" | "/readyz" | "/metrics" => method_not_allowed("GET"),
        _ => Refused::NotFound.response(),
    }
}

/// `/v1/*`: operators' endpoints, behind the admin token (audience uploads
/// also take their own token). Without a token configured they are closed.
async fn v1(app: Arc<App>, req: Request<Incoming>, peer: IpAddr) -> Resp {
    let path = req.uri().path();
    let list = path
        .strip_prefix("/v1/audiences/")
        .and_then(|rest| rest.strip_suffix("/members"))
        .filter(|id| !id.is_empty() && !id.contains('/'))
        // A path segment: `+` is a plus here, not a space.
        .map(|id| {
            percent_encoding::percent_decode_str(id)
                .decode_utf8()
                .ok()
                .map(|s| s.into_owned())
        });
    let known = list.is_some()
        || matches!(
            path,
            "/v1/config/reload" | "/v1/explain" | "/v1/audience-events" | "/v1/reports"
        );
    if !known {
        return Refused::NotFound.response();
    }
    // The audience token opens shopper-event uploads only: lists hold
    // every advertiser's customers, and their answers tell who is in one.
    let upload = path == "/v1/audience-events";
    if app.settings.admin_token.is_none() && (app.settings.audience_token.is_none() || !upload) {
        return Refused::AdminOff.response();
    }
    // Wrong tokens count against their client, as the login form's do:
    // through `/v1` a guesser had tries without end. Per client only (no
    // cap over all clients, which anyone could spend to lock every
    // operator out), and apart from the form's. A forwarded address a
    // trusted proxy wrote that cannot be read is that proxy's fault: such a
    // request is answered as before, neither limited nor counted (counted
    // under the proxy, it would spend the tries of everyone behind it).
    let client = client_address(peer, req.headers(), &app.settings.trusted_proxies);
    let now_secs = app.now().as_millis() / 1000;
    if client.is_some_and(|c| !app.api_failures.client_allowed(c, now_secs)) {
        return too_many_tries();
    }
    let given = req.headers().get(hyper::header::AUTHORIZATION);
    let access = app.admin_access(given.map(|v| v.as_bytes()));
    let allowed = match access {
        Access::Admin => true,
        Access::AudienceUploads => upload,
        Access::None => false,
    };
    if !allowed {
        // A token that is not one: a guess. None at all, or the audience
        // token outside its uploads, is not.
        if let Some(c) = client.filter(|_| access == Access::None && given.is_some()) {
            app.api_failures.failed(c, now_secs);
        }
        return Refused::Unauthorized.response();
    }
    if path == "/v1/reports" {
        if req.method() != Method::GET {
            return method_not_allowed("GET");
        }
        return reports_endpoint(app, req.uri().query().unwrap_or("")).await;
    }
    if req.method() != Method::POST {
        return method_not_allowed("POST");
    }
    match path {
        "/v1/config/reload" => {
            let app2 = app.clone();
            match tokio::task::spawn_blocking(move || app2.reload()).await {
                Ok(Ok(loaded)) => text(StatusCode::OK, format!("loaded: {loaded}\n")),
                Ok(Err(problems)) => text(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    format!("config refused, still serving the previous one:\n{problems}\n"),
                ),
                Err(e) => text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("reload failed: {e}\n"),
                ),
            }
        }
        "/v1/explain" => explain(app, req).await,
        "/v1/audience-events" => audience_events(app, req).await,
        _ => match list {
            Some(Some(id)) => list_members(app, req, id).await,
            _ => text(
                StatusCode::BAD_REQUEST,
                "the audience id in the path is not UTF-8\n".to_string(),
            ),
        },
    }
}

/// `POST /v1/audiences/{id}/members`: JSON lines of member ids, applied
/// whole or not at all, on disk before the answer.
async fn list_members(app: Arc<App>, req: Request<Incoming>, id: String) -> Resp {
    use crate::app::MembersError;
    if app.list_owner(&id).is_none() {
        return text(
            StatusCode::NOT_FOUND,
            format!("no list audience has the id {id:?}\n"),
        );
    }
    let Ok(permit) = app.batch_gate.clone().try_acquire_owned() else {
        return batches_busy();
    };
    let (parts, body) = req.into_parts();
    let read = tokio::time::timeout(
        app.settings.body_timeout,
        body::read(
            &parts.headers,
            body,
            app.settings.max_audience_batch_bytes,
            None,
        ),
    );
    let bytes = match read.await {
        Ok(Ok(b)) => b,
        Ok(Err(e)) => return e.response(),
        Err(_) => return Refused::SlowBody.response(),
    };
    let app2 = app.clone();
    let result = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let Ok(text_body) = std::str::from_utf8(&bytes) else {
            return Err(MembersError::NotUtf8);
        };
        app2.append_list_members(&id, text_body)
    })
    .await;
    let (status, body) = match result {
        Ok(Ok(a)) => {
            let body = format!(
                "{{\"added\":{},\"removed\":{},\"members\":{}}}\n",
                a.added, a.removed, a.members
            );
            let mut r = Response::new(Full::new(Bytes::from(body)));
            r.headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            return r;
        }
        Ok(Err(MembersError::NotUtf8)) => return Refused::NotUtf8.response(),
        Ok(Err(MembersError::UnknownList)) => (
            StatusCode::NOT_FOUND,
            "no list audience has this id\n".to_string(),
        ),
        Ok(Err(MembersError::List(audiences::ListError::Data(e)))) => (
            StatusCode::BAD_REQUEST,
            format!(
                "line {}: {}; nothing of this batch was applied\n",
                e.line, e.reason
            ),
        ),
        Ok(Err(MembersError::List(e @ audiences::ListError::Full { .. }))) => (
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("{e} (--max-list-members); nothing of this batch was applied\n"),
        ),
        Ok(Err(MembersError::List(e @ audiences::ListError::Io { .. }))) => {
            tracing::error!("list batch refused: {e}");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "the batch could not be written to disk; nothing of it was applied, retry\n"
                    .to_string(),
            )
        }
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("upload failed: {e}\n"),
        ),
    };
    text(status, body)
}

/// `GET /v1/reports?from=…&to=…&by=…&format=json|csv|table|html`.
async fn reports_endpoint(app: Arc<App>, query: &str) -> Resp {
    use crate::reporting::{parse_params, ReportError};
    use reports::render::Format;
    let parsed = parse_params(
        query,
        app.now().date(),
        7,
        &[reports::Dim::Day],
        Format::Json,
    );
    let result = match parsed {
        Ok((q, format)) => app.report(q, format).await.map(|body| (body, format)),
        Err(e) => Err(e),
    };
    match result {
        Ok((body, format)) => {
            let mut r = Response::new(Full::new(Bytes::from(body)));
            r.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static(format.content_type()),
            );
            r.headers_mut()
                .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
            if format == Format::Html {
                r.headers_mut().insert(
                    "content-security-policy",
                    HeaderValue::from_static(crate::ui::CSP),
                );
            }
            r
        }
        Err(e @ ReportError::Invalid(_)) => text(StatusCode::BAD_REQUEST, format!("{e}\n")),
        Err(e @ ReportError::NoState) => text(StatusCode::NOT_FOUND, format!("{e}\n")),
        Err(e @ ReportError::Failed(_)) => {
            tracing::error!("report failed: {e}");
            text(StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n"))
        }
    }
}

/// A short HTML page saying what went wrong, the text escaped.
fn error_page(message: &str) -> String {
    let esc = message
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    format!("<!doctype html><html lang=\"en\"><meta charset=\"utf-8\"><title>Bidder reports</title><p role=\"alert\">{esc}</p><p><a href=\"/ui\">Back to the last week</a></p></html>\n")
}

/// `/ui` and `/ui/login` (see [`crate::ui`]).
/// A client past its wrong tokens for the minute, in the login form or on
/// `/v1`.
fn too_many_tries() -> Resp {
    text_retry_after(
        StatusCode::TOO_MANY_REQUESTS,
        "too many wrong tokens this minute; try again in a minute\n",
        "60",
    )
}

async fn ui(app: Arc<App>, req: Request<Incoming>, peer: IpAddr) -> Resp {
    let Some(token) = app.settings.admin_token.clone() else {
        return Refused::AdminOff.response();
    };
    let now_secs = app.now().as_millis() / 1000;
    let page_with = |status: StatusCode, html: String, csp: &'static str| {
        let mut r = Response::new(Full::new(Bytes::from(html)));
        *r.status_mut() = status;
        let h = r.headers_mut();
        h.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        h.insert("content-security-policy", HeaderValue::from_static(csp));
        h.insert(
            "x-content-type-options",
            HeaderValue::from_static("nosniff"),
        );
        h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
        r
    };
    let page = |status: StatusCode, html: String| page_with(status, html, crate::ui::CSP);
    let see_other = |to: &'static str, cookie: Option<String>| {
        let mut r = page(StatusCode::SEE_OTHER, String::new());
        r.headers_mut()
            .insert(hyper::header::LOCATION, HeaderValue::from_static(to));
        if let Some(c) = cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
            r.headers_mut().insert(hyper::header::SET_COOKIE, c);
        }
        r
    };
    match (req.uri().path(), req.method().clone()) {
        ("/ui", Method::GET) => {
            let cookie = cookie_of(&req);
            if !crate::ui::has_session(cookie, &token, now_secs) {
                return see_other("/ui/login", None);
            }
            match app.ui_page(req.uri().query().unwrap_or("")).await {
                Ok(html) => page(StatusCode::OK, html),
                // Errors come as pages too, with the same headers.
                Err(e @ crate::reporting::ReportError::Invalid(_)) => {
                    page(StatusCode::BAD_REQUEST, error_page(&e.to_string()))
                }
                Err(e) => page(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    error_page(&e.to_string()),
                ),
            }
        }
        ("/ui/login", Method::GET) => page_with(
            StatusCode::OK,
            crate::ui::login_page(false),
            crate::ui::LOGIN_CSP,
        ),
        ("/ui/login", Method::POST) => {
            // Another site's page can post a form here: its wrong tokens
            // would spend the minute's tries for the people who have the
            // right one. Refused before they count.
            if crate::ui::posted_from_elsewhere(req.headers()) {
                return text(
                    StatusCode::FORBIDDEN,
                    "a login must come from this page's own form\n",
                );
            }
            // Behind the proxies named trusted, the browser's address. One
            // they wrote that cannot be read is refused, as for `allow_from`:
            // counted under the proxy's own address, it spent everybody's
            // tries behind that proxy.
            let Some(client) = client_address(peer, req.headers(), &app.settings.trusted_proxies)
            else {
                return text(
                    StatusCode::BAD_REQUEST,
                    "the X-Forwarded-For address cannot be read\n",
                );
            };
            // Held until the body is read: see LOGINS_READ_AT_ONCE.
            let Ok(reading) = app.login_reads.try_acquire() else {
                return text_retry_after(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "too many logins at once; try again in a moment\n",
                    "1",
                );
            };
            let (parts, body) = req.into_parts();
            let read = tokio::time::timeout(
                app.settings.body_timeout.min(crate::ui::LOGIN_BODY_TIMEOUT),
                body::read(&parts.headers, body, 4096, None),
            );
            let bytes = match read.await {
                Ok(Ok(b)) => b,
                Ok(Err(e)) => return e.response(),
                Err(_) => return Refused::SlowBody.response(),
            };
            drop(reading);
            if !app.ui_failures.allowed(client, now_secs) {
                return too_many_tries();
            }
            let given = crate::ui::form_token(&bytes).unwrap_or_default();
            let bearer = format!("Bearer {given}");
            if app.admin_access(Some(bearer.as_bytes())) == Access::Admin {
                see_other("/ui", Some(crate::ui::session_cookie(&token, now_secs)))
            } else {
                app.ui_failures.failed(client, now_secs);
                page_with(
                    StatusCode::UNAUTHORIZED,
                    crate::ui::login_page(true),
                    crate::ui::LOGIN_CSP,
                )
            }
        }
        ("/ui", _) => method_not_allowed("GET"),
        _ => method_not_allowed("GET, POST"),
    }
}

/// What an audience upload past [`crate::app::BATCHES_AT_ONCE`] is
/// answered: come back in a moment.
fn batches_busy() -> Resp {
    text_retry_after(
        StatusCode::SERVICE_UNAVAILABLE,
        "other audience uploads are being applied; retry this one in a moment\n",
        "2",
    )
}

async fn audience_events(app: Arc<App>, req: Request<Incoming>) -> Resp {
    let Ok(permit) = app.batch_gate.clone().try_acquire_owned() else {
        return batches_busy();
    };
    let (parts, body) = req.into_parts();
    let read = tokio::time::timeout(
        app.settings.body_timeout,
        body::read(
            &parts.headers,
            body,
            app.settings.max_audience_batch_bytes,
            None,
        ),
    );
    let bytes = match read.await {
        Ok(Ok(b)) => b,
        Ok(Err(e)) => return e.response(),
        Err(_) => return Refused::SlowBody.response(),
    };
    // Parsing a large batch is CPU work, the UTF-8 check too: keep them
    // off the runtime's threads. The body moves there as it was read: a
    // copy of it (as a String) was 64 MiB more per upload at the bound,
    // two uploads at a time (ops probe: 674 MB RSS for two of 63 MB).
    let app2 = app.clone();
    let joined = tokio::task::spawn_blocking(move || {
        // Held until applied: a client that hangs up does not free it
        // while its batch is still being applied. Handed back for the
        // attribution: the conversions it goes over are the batch's
        // largest part (some 1.6 times its text), and released before
        // them, two more batches could be read meanwhile (upload review).
        let text = std::str::from_utf8(&bytes).ok();
        let applied = text.map(|t| app2.append_audience_events(t, true));
        (permit, applied)
    })
    .await;
    let (_permit, applied) = match joined {
        Ok((permit, applied)) => (Some(permit), Ok(applied.ok_or(()))),
        Err(e) => (None, Err(e)),
    };
    match applied {
        Ok(Err(())) => Refused::NotUtf8.response(),
        // Applied, and the retry adds nothing twice: the log must have it
        // before the answer says so.
        // The log's bound: the same batch retried meets it again (a 503
        // saying "retry" sent uploaders round in circles: audiences probe),
        // and the log has already removed every day it may. 507, which
        // clients do not retry as they retry a 503.
        Ok(Ok(Ok(crate::app::Appended {
            unsaved: Some(e), ..
        }))) if crate::audience_log::Full::is(&e) => text(
            StatusCode::INSUFFICIENT_STORAGE,
            format!(
                "events applied but not saved to the state directory ({e}); the same batch \
                 would be refused again: split it, or raise --max-audience-log-bytes (today's \
                 events are kept until the day is over)\n"
            ),
        ),
        Ok(Ok(Ok(crate::app::Appended {
            unsaved: Some(e), ..
        }))) => text(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("events applied but not saved to the state directory ({e}); retry the batch\n"),
        ),
        Ok(Ok(Ok(crate::app::Appended {
            applied,
            conversions,
            ..
        }))) => match app.attribute(conversions).await {
            Ok(up) => {
                let body = format!(
                    "{{\"applied\":{applied},\"attributed\":{},\"unattributed\":{},\"duplicate\":{}}}\n",
                    up.attributed, up.unattributed, up.duplicate
                );
                let mut r = Response::new(Full::new(Bytes::from(body)));
                r.headers_mut()
                    .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                r
            }
            // The audience store has the events (a retry stores nothing
            // twice); the attribution was not written, and a retry makes it.
            Err(e) => text(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("events applied but their attribution could not be recorded ({e}); retry the batch\n"),
            ),
        },
        Ok(Ok(Err(e))) => text(
            StatusCode::BAD_REQUEST,
            format!(
                "line {}: {}; nothing of this batch was applied\n",
                e.line, e.reason
            ),
        ),
        Err(e) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("upload failed: {e}\n"),
        ),
    }
}

async fn explain(app: Arc<App>, req: Request<Incoming>) -> Resp {
    let (parts, body) = req.into_parts();
    let read = tokio::time::timeout(
        app.settings.body_timeout,
        body::read(&parts.headers, body, app.settings.max_body_bytes, None),
    );
    let bytes = match read.await {
        Ok(Ok(b)) => b,
        Ok(Err(e)) => return e.response(),
        Err(_) => return Refused::SlowBody.response(),
    };
    // CPU work (every line item against every imp): off the admin
    // runtime's only thread, so probes keep answering meanwhile.
    // `?exchange=ID` explains as that exchange's endpoint would answer;
    // anything else is refused, as `/v1/reports` refuses it: a typo
    // (`?exchnage=`) explained the default profile without a word.
    let mut exchange = None;
    for kv in parts
        .uri
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|kv| !kv.is_empty())
    {
        match kv.strip_prefix("exchange=") {
            Some(v) if exchange.is_none() => {
                exchange = Some(
                    percent_encoding::percent_decode_str(v)
                        .decode_utf8_lossy()
                        .into_owned(),
                );
            }
            Some(_) => {
                return text(
                    StatusCode::BAD_REQUEST,
                    "exchange is given twice\n".to_string(),
                )
            }
            None => {
                let name = kv.split('=').next().unwrap_or(kv);
                return text(
                    StatusCode::BAD_REQUEST,
                    format!(
                        "unknown parameter {:?}; explain takes exchange\n",
                        percent_encoding::percent_decode_str(name).decode_utf8_lossy()
                    ),
                );
            }
        }
    }
    let app2 = app.clone();
    let answer =
        tokio::task::spawn_blocking(move || app2.explain(exchange.as_deref(), &bytes)).await;
    let Ok(answer) = answer else {
        return text(StatusCode::INTERNAL_SERVER_ERROR, "explain failed\n");
    };
    match answer {
        Ok(json) => {
            let mut r = Response::new(Full::new(Bytes::from(json)));
            r.headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            r
        }
        Err(e) => e.response(),
    }
}

/// How often expired reservations are swept.
const EXPIRY_ROUND: Duration = Duration::from_millis(200);
/// Every this many rounds (about a second), the whole upkeep.
const ROUNDS_PER_UPKEEP: u64 = 5;

/// What the expiry rounds need of the app: a trait so that a test can give
/// them steps that panic.
trait Expiry: Send + Sync + 'static {
    fn now(&self) -> config::Timestamp;
    fn expiry_steps(&self) -> usize;
    /// Whether the step is done.
    fn expire_step(&self, now: config::Timestamp, step: usize) -> bool;
    fn upkeep(&self);
    /// [`App::save_frequency`] between stops.
    fn save_frequency(&self) {}
    /// [`App::settle_awaiting`] where it asks Redis (else the upkeep's).
    fn settle_shared(&self) {}
}

impl Expiry for App {
    fn now(&self) -> config::Timestamp {
        App::now(self)
    }
    fn expiry_steps(&self) -> usize {
        App::expiry_steps(self)
    }
    fn expire_step(&self, now: config::Timestamp, step: usize) -> bool {
        App::expire_step(self, now, step)
    }
    fn upkeep(&self) {
        App::upkeep(self)
    }
    fn save_frequency(&self) {
        App::save_frequency(self, false)
    }
    fn settle_shared(&self) {
        if self.is_shared() {
            App::settle_awaiting(self)
        }
    }
}

/// The expiry rounds, until `stop` changes (see `start`).
async fn expiry_rounds<E: Expiry>(app: Arc<E>, mut stop: watch::Receiver<bool>) {
    let mut start = tokio::time::Instant::now();
    for round in 1u64.. {
        start += EXPIRY_ROUND;
        tokio::select! {
            _ = tokio::time::sleep_until(start) => {}
            _ = stop.changed() => return,
        }
        // A round well behind (the last one ran long) starts now: its steps
        // spread from here, not run back to back to catch up. A timer's
        // usual lateness is not that: rounds stay on their schedule.
        let woke = tokio::time::Instant::now();
        if woke > start + EXPIRY_ROUND / 4 {
            start = woke;
        }
        let steps = app.expiry_steps();
        // All but the last, which runs on a blocking thread (below).
        let on_workers = steps.saturating_sub(1);
        for step in 0..on_workers {
            // The steps spread over most of the round rather than run back
            // to back: at 50k bids a second a round's steps take
            // milliseconds of CPU, and run together they were a stall every
            // round, which answers queued behind (the bidder's p99).
            let due = start + EXPIRY_ROUND * 3 / 4 * step as u32 / on_workers as u32;
            tokio::select! {
                _ = tokio::time::sleep_until(due) => {}
                _ = stop.changed() => return,
            }
            // As of when the step runs: a bid due since the round began is
            // not left for the next one.
            let now = app.now();
            loop {
                // A step that panics leaves the ledger whole (locks recovered,
                // deadlines put back): the rounds go on, as they did when a
                // panic ended a blocking task.
                let done = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    app.expire_step(now, step)
                }))
                .unwrap_or_else(|_| {
                    tracing::error!(step, "an expiry step panicked");
                    true
                });
                tokio::task::yield_now().await;
                if done {
                    break;
                }
            }
            if stop.has_changed().unwrap_or(true) {
                return;
            }
        }
        if let Some(last) = steps.checked_sub(1) {
            let app = app.clone();
            let now = app.now();
            let _ = tokio::task::spawn_blocking(move || while !app.expire_step(now, last) {}).await;
        }
        if round % ROUNDS_PER_UPKEEP == 0 {
            let upkept = app.clone();
            let _ = tokio::task::spawn_blocking(move || upkept.upkeep()).await;
            // Not awaited: a write of millions of windows must not hold
            // up the expiry of reservations (one at a time, once a minute).
            let saving = app.clone();
            drop(tokio::task::spawn_blocking(move || saving.save_frequency()));
            // Nor a round trip to Redis for tracking calls waiting.
            let app = app.clone();
            drop(tokio::task::spawn_blocking(move || app.settle_shared()));
        }
    }
}

/// Bound listeners and the handle that stops them.
pub struct Running {
    pub bid_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    pub shutdown: watch::Sender<bool>,
    pub done: tokio::task::JoinHandle<()>,
}

/// `port`'s answer to `r`, saying `Connection: close` where [`say_close`]
/// says to: the bid and admin ports alike.
async fn answered<Fut: std::future::Future<Output = Resp>>(
    app: Arc<App>,
    r: Request<Incoming>,
    peer: IpAddr,
    port: impl FnOnce(Arc<App>, Request<Incoming>, IpAddr) -> Fut,
) -> Resp {
    let had_body = !hyper::body::Body::is_end_stream(r.body());
    let mut resp = port(app.clone(), r, peer).await;
    say_close(app.is_draining(), had_body, &mut resp);
    resp
}

/// `Connection: close` on an answer after which the client should open a
/// new connection for its next request, and is told so rather than finding
/// out by a request lost on a connection closed under it:
/// - while draining (after SIGTERM): a keep-alive client, an exchange's or
///   a load balancer's pool, moves to another replica at its next request.
///   Without it, pooled connections stayed on this one until the listener
///   closed, and requests sent as it closed failed (operator probe);
/// - a refusal (4xx or 5xx but 400) of a request that came with a body:
///   most refuse before reading it (unknown path or profile, method,
///   token), and hyper does not reuse a connection whose request body was
///   left unread, closing it without saying so: some of a client's next
///   requests on it failed (3 to 5 in 300 in the probe). A 400 read the
///   body (it is what was wrong) and keeps the connection, as does a
///   success: exchanges that send some malformed requests do not pay a
///   new connection for each.
fn say_close(draining: bool, had_body: bool, resp: &mut Resp) {
    let status = resp.status();
    let refused =
        (status.is_client_error() && status != StatusCode::BAD_REQUEST) || status.is_server_error();
    if draining || (had_body && refused) {
        connection_close(resp);
    }
}

fn connection_close(resp: &mut Resp) {
    resp.headers_mut()
        .insert(hyper::header::CONNECTION, HeaderValue::from_static("close"));
}

/// Starts both listeners on already-bound sockets.
pub fn start(app: Arc<App>, bid: TcpListener, admin: TcpListener) -> std::io::Result<Running> {
    let bid_addr = bid.local_addr()?;
    let admin_addr = admin.local_addr()?;
    let (tx, rx) = watch::channel(false);
    {
        // Reservations of bids whose notices never came go back to the
        // budget within a fraction of a second of their time. Most bids
        // lose without a notice, so this sweeps about as many bids a second
        // as are made: in rounds, each in steps of some tens of microseconds
        // on the request workers, spread over the round. A sweep of a
        // second's bids at once on a worker was the bidder's p99 at steady
        // load; the rounds on a blocking thread of their own were too (every
        // round stalled bids for milliseconds at 45k bids a second: a third
        // thread on the cores, holding the shards' locks the bids need;
        // which of the two cost more was not separated).
        // The last step (days and windows pruned, whole maps swept) and
        // fitting the shading curves again and the gauges (about once a
        // second): on a blocking thread.
        tokio::spawn(expiry_rounds(app.clone(), rx.clone()));
    }
    {
        // Hourly is plenty: retention is counted in days.
        let app = app.clone();
        let mut stop = rx.clone();
        tokio::spawn(async move {
            // Once at start too: a bidder restarted more often than hourly
            // must still prune.
            let mut first = true;
            loop {
                if !first {
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(3600)) => {}
                        _ = stop.changed() => return,
                    }
                }
                first = false;
                let app2 = app.clone();
                if let Ok(n) = tokio::task::spawn_blocking(move || app2.prune_audiences()).await {
                    tracing::debug!(dropped = n, "audience events pruned");
                }
                let app2 = app.clone();
                let _ = tokio::task::spawn_blocking(move || app2.prune_reports()).await;
            }
        });
    }
    let a1 = app.clone();
    let limits = app.settings.limits;
    let bid_task = tokio::spawn(serve(bid, rx.clone(), limits, move |r, peer| {
        answered(a1.clone(), r, peer, bid_port)
    }));
    // The admin port runs on a thread and runtime of its own: bid work that
    // keeps every worker of the bid runtime busy (a flood of costly
    // requests) must not delay a liveness probe, or the pod is killed for
    // being busy.
    let admin = admin.into_std()?;
    let a2 = app;
    // Built here, run there: a bidder whose admin port could not start
    // must not start at all (no probes, no metrics).
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let admin = {
        let _entered = runtime.enter();
        TcpListener::from_std(admin)?
    };
    let admin_thread = std::thread::Builder::new()
        .name("admin".into())
        .spawn(move || {
            runtime.block_on(serve(admin, rx, limits, move |r, peer| {
                answered(a2.clone(), r, peer, admin_port)
            }));
        })?;
    let done = tokio::spawn(async move {
        let _ = bid_task.await;
        let _ = tokio::task::spawn_blocking(move || admin_thread.join()).await;
    });
    Ok(Running {
        bid_addr,
        admin_addr,
        shutdown: tx,
        done,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: Duration = Duration::from_secs(10);
    const IDLE: Duration = Duration::from_secs(60);

    /// Runs `quiet` beside `script` (which moves the connection's state as
    /// time passes) and says when it resolved, in seconds of paused time.
    async fn closes_after<F, Fut>(script: F) -> u64
    where
        F: FnOnce(Arc<Activity>) -> Fut,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        closes_under(Arc::new(Pressure::new()), Arc::new(Activity::new()), script).await
    }

    /// As [`closes_after`], with the port's pressure given.
    async fn closes_under<F, Fut>(pressure: Arc<Pressure>, a: Arc<Activity>, script: F) -> u64
    where
        F: FnOnce(Arc<Activity>) -> Fut,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let start = tokio::time::Instant::now();
        tokio::spawn(script(a.clone()));
        tokio::time::timeout(Duration::from_secs(1000), a.quiet(HEADER, IDLE, &pressure))
            .await
            .expect("closed within 1,000 s");
        start.elapsed().as_secs()
    }

    async fn at(secs: u64) {
        tokio::time::sleep_until(tokio::time::Instant::now() + Duration::from_secs(secs)).await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_that_sends_nothing_goes_after_the_header_timeout() {
        assert_eq!(closes_after(|_| async {}).await, 10);
    }

    /// A connection waiting for a slot wakes the quiet ones, which then go
    /// once quiet for `SHED_AFTER`; a request in flight keeps its
    /// connection, an answer still going out to a slow reader keeps the
    /// idle limit, and a second after the last wait the usual limits are
    /// back.
    #[tokio::test(start_paused = true)]
    async fn quiet_connections_make_room_when_the_port_is_full() {
        // A connection waits from 3 s on, saying so every half second.
        let waits_from = |secs: u64| {
            let pressure = Arc::new(Pressure::new());
            let p = pressure.clone();
            tokio::spawn(async move {
                at(secs).await;
                loop {
                    p.waiting();
                    tokio::time::sleep(SHED_AFTER / 2).await;
                }
            });
            pressure
        };
        let silent = closes_under(waits_from(3), Arc::new(Activity::new()), |_| async {}).await;
        assert_eq!(silent, 3, "woken when a connection waited, long silent");

        // Opened while one waits: a second of grace, not the header timeout.
        let fresh = closes_under(waits_from(0), Arc::new(Activity::new()), |_| async {}).await;
        assert_eq!(fresh, 1);

        // A request in flight for 5 s; the wait ended at once (one
        // `waiting`), so the header timeout is back after it.
        let once = Arc::new(Pressure::new());
        once.waiting();
        let busy = closes_under(once, Arc::new(Activity::new()), |a| async move {
            a.in_flight.store(1, Relaxed);
            at(5).await;
            a.ended_ms.store(a.now_ms(), Relaxed);
            a.wrote_ms.store(a.now_ms(), Relaxed);
            a.in_flight.store(0, Relaxed);
        })
        .await;
        assert_eq!(busy, 5 + 10, "in flight kept, then the header timeout");

        // An answer a slow reader takes 30 s to read, a little every half
        // second, while connections wait all along: the idle limit (60 s),
        // not the second of grace.
        let slow = closes_under(waits_from(0), Arc::new(Activity::new()), |a| async move {
            a.in_flight.store(1, Relaxed);
            a.ended_ms.store(a.now_ms(), Relaxed);
            a.write_blocked.store(true, Relaxed);
            a.in_flight.store(0, Relaxed);
            for _ in 0..60 {
                tokio::time::sleep(Duration::from_millis(500)).await;
                a.wrote_ms.store(a.now_ms(), Relaxed);
            }
            a.write_blocked.store(false, Relaxed);
        })
        .await;
        assert_eq!(slow, 31, "read whole at 30 s, then a second of grace");

        // One that stopped reading: as quiet as one that never sent.
        let stuck = closes_under(waits_from(0), Arc::new(Activity::new()), |a| async move {
            a.in_flight.store(1, Relaxed);
            a.ended_ms.store(a.now_ms(), Relaxed);
            a.write_blocked.store(true, Relaxed);
            a.in_flight.store(0, Relaxed);
        })
        .await;
        assert_eq!(stuck, 1, "a reader that reads nothing holds no slot");
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_in_flight_holds_it_and_its_answer_restarts_the_count() {
        let secs = closes_after(|a| async move {
            a.in_flight.store(1, Relaxed);
            at(30).await;
            a.ended_ms.store(a.now_ms(), Relaxed);
            a.in_flight.store(0, Relaxed);
            at(1).await;
            // The answer goes out a second after the handler finished.
            a.wrote_ms.store(a.now_ms(), Relaxed);
        })
        .await;
        assert_eq!(secs, 41);
    }

    #[tokio::test(start_paused = true)]
    async fn a_client_slow_to_read_its_answer_has_the_idle_timeout() {
        let secs = closes_after(|a| async move {
            a.in_flight.store(1, Relaxed);
            at(1).await;
            a.ended_ms.store(a.now_ms(), Relaxed);
            a.in_flight.store(0, Relaxed);
            // The socket's buffer fills and stays full: the client reads
            // a little every 20 s, never enough for the rest to go out.
            a.write_blocked.store(true, Relaxed);
            for _ in 0..5 {
                at(20).await;
                a.wrote_ms.store(a.now_ms(), Relaxed);
            }
        })
        .await;
        assert_eq!(secs, 61);
    }

    #[tokio::test(start_paused = true)]
    async fn an_answer_written_whole_starts_the_header_timeout() {
        let secs = closes_after(|a| async move {
            a.write_blocked.store(true, Relaxed);
            at(25).await;
            a.write_blocked.store(false, Relaxed);
            a.wrote_ms.store(a.now_ms(), Relaxed);
        })
        .await;
        assert_eq!(secs, 35);
    }

    /// The socket notes an answer's bytes going out (with nothing in
    /// flight) and a buffer the client has stopped emptying.
    #[tokio::test]
    async fn the_socket_notes_writes_and_a_full_buffer() {
        use tokio::io::AsyncWrite;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = tokio::net::TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (stream, _) = listener.accept().await.unwrap();
        let activity = Arc::new(Activity::new());
        let mut w = Watched {
            stream,
            activity: activity.clone(),
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        let chunk = vec![b'x'; 64 * 1024];
        // In flight: a write is the handler's, not an answer's tail.
        activity.in_flight.store(1, Relaxed);
        let n = std::future::poll_fn(|cx| Pin::new(&mut w).poll_write(cx, &chunk)).await;
        assert!(n.unwrap() > 0);
        assert_eq!(activity.wrote_ms.load(Relaxed), 0);
        activity.in_flight.store(0, Relaxed);
        let n = std::future::poll_fn(|cx| {
            let bufs = [std::io::IoSlice::new(&chunk)];
            Pin::new(&mut w).poll_write_vectored(cx, &bufs)
        })
        .await;
        assert!(n.unwrap() > 0);
        assert!(activity.wrote_ms.load(Relaxed) >= 20);
        assert!(!activity.write_blocked.load(Relaxed));
        // The client reads nothing: the buffers fill and a write waits.
        let mut blocked = false;
        for _ in 0..100_000 {
            let r = std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut w).poll_write(cx, &chunk)))
                .await;
            if r.is_pending() {
                blocked = true;
                break;
            }
        }
        assert!(blocked, "loopback buffers never filled");
        assert!(activity.write_blocked.load(Relaxed));
        drop(client);
    }

    /// Shutdown reaches every open connection: one with a request in
    /// flight answers it (saying it closes) and then closes, an idle one
    /// closes at once, and `serve` returns.
    #[tokio::test]
    async fn shutdown_answers_what_is_in_flight_and_closes_every_connection() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = watch::channel(false);
        let release = Arc::new(tokio::sync::Notify::new());
        let entered = Arc::new(tokio::sync::Notify::new());
        let (r, e) = (release.clone(), entered.clone());
        let server = tokio::spawn(serve(
            listener,
            rx,
            Limits::default(),
            move |_req, _peer| {
                let (r, e) = (r.clone(), e.clone());
                async move {
                    e.notify_one();
                    r.notified().await;
                    Response::new(Full::new(Bytes::from_static(b"done")))
                }
            },
        ));
        let mut idle = tokio::net::TcpStream::connect(addr).await.unwrap();
        let mut busy = tokio::net::TcpStream::connect(addr).await.unwrap();
        busy.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        entered.notified().await;
        tx.send(true).unwrap();
        let mut buf = [0u8; 64];
        let n = tokio::time::timeout(Duration::from_secs(10), idle.read(&mut buf))
            .await
            .expect("the idle connection closes")
            .unwrap();
        assert_eq!(n, 0, "nothing but the close");
        release.notify_one();
        let mut answer = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), busy.read_to_end(&mut answer))
            .await
            .expect("the busy connection answers, then closes")
            .unwrap();
        let answer = String::from_utf8(answer).unwrap().to_ascii_lowercase();
        assert!(answer.starts_with("http/1.1 200"), "{answer}");
        assert!(answer.contains("connection: close"), "{answer}");
        assert!(answer.ends_with("done"), "{answer}");
        tokio::time::timeout(Duration::from_secs(10), server)
            .await
            .expect("serve returns")
            .unwrap();
    }

    /// The stop signals of ended connections do not pile up.
    #[test]
    fn stop_signals_stay_within_twice_the_open_connections() {
        let mut stops = Stops::default();
        let mut open = Vec::new();
        for i in 0..10_000 {
            let rx = stops.add();
            // One connection in a hundred stays open.
            if i % 100 == 0 {
                open.push(rx);
            }
            assert!(stops.senders.len() <= 2 * (open.len() + 64), "{i}");
        }
        stops.stop_all();
        for mut rx in open {
            assert_eq!(rx.try_recv(), Ok(()));
        }
    }

    #[test]
    fn limits_past_u64_milliseconds_do_not_overflow() {
        assert_eq!(millis(Duration::MAX), u64::MAX);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        rt.block_on(async {
            let a = Activity::new();
            let waited = tokio::time::timeout(
                Duration::from_secs(3600),
                a.quiet(Duration::MAX, Duration::MAX, &Pressure::new()),
            )
            .await;
            assert!(waited.is_err(), "no limit: never quiet");
        });
    }

    /// Steps as the app's ledger would take them, the second of which
    /// panics in the first round.
    struct PanicsOnce {
        calls: std::sync::Mutex<Vec<usize>>,
        panicked: std::sync::atomic::AtomicBool,
    }

    impl Expiry for PanicsOnce {
        fn now(&self) -> config::Timestamp {
            config::Timestamp(1_795_521_600_000)
        }
        fn expiry_steps(&self) -> usize {
            4
        }
        fn expire_step(&self, _: config::Timestamp, step: usize) -> bool {
            self.calls.lock().unwrap().push(step);
            if step == 1
                && !self
                    .panicked
                    .swap(true, std::sync::atomic::Ordering::SeqCst)
            {
                panic!("an expiry step fails");
            }
            true
        }
        fn upkeep(&self) {}
    }

    /// A step that panics is logged and the round goes on with the next
    /// step, and the rounds after it run every step: the reservations of
    /// the other shards, and every later round's, still go back to the
    /// budget. Without the catch the panic ended the rounds for good.
    #[tokio::test(start_paused = true)]
    async fn a_panicking_expiry_step_leaves_the_rounds_going() {
        let app = Arc::new(PanicsOnce {
            calls: std::sync::Mutex::new(Vec::new()),
            panicked: std::sync::atomic::AtomicBool::new(false),
        });
        let (stop, stopped) = watch::channel(false);
        let rounds = tokio::spawn(expiry_rounds(app.clone(), stopped));
        // Three rounds, the last step of each on a blocking thread (paused
        // time does not wait for those: poll until they are seen).
        for _ in 0..100 {
            if app.calls.lock().unwrap().len() >= 12 {
                break;
            }
            tokio::time::sleep(EXPIRY_ROUND / 4).await;
        }
        let _ = stop.send(true);
        tokio::time::timeout(EXPIRY_ROUND * 2, rounds)
            .await
            .expect("the rounds stop when told")
            .expect("the rounds' task did not panic");
        let calls = app.calls.lock().unwrap().clone();
        assert_eq!(
            calls.get(..12),
            Some(&[0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3][..]),
            "{calls:?}"
        );
    }
}
