//! `paced ADDR BODY_FILE RATE SECS [CONNS]`: posts BODY_FILE to
//! `http://ADDR/openrtb2/bid` at RATE requests per second, evenly spaced,
//! for SECS seconds over CONNS (32) keep-alive connections, and prints the
//! latency percentiles, counted from when each request was released.
//!
//! Why not `oha -q`: oha paces with tokio's timer, whose resolution is a
//! millisecond, so at R req/s it releases R/1000 requests at each tick
//! together (50 at once at 50k req/s). The servers then drain a burst every
//! millisecond, and a request's latency is mostly its wait behind the rest
//! of its burst: a measure of the server's time per request times the burst,
//! not of the arrivals an exchange's traffic makes. Here a thread of its own
//! sleeps (the kernel's high-resolution timers, some 50-100 µs of slack)
//! until the next request is due and releases what is due by then: a few
//! requests at a time at these rates.
//!
//! Open loop: a request waits for a free connection if all are busy, and
//! that wait counts, since latency starts when the pacer released it (when
//! it was due, but for the pacer's lateness). Prints one line:
//! `sent N answered N ok N rate R/s p50 MS p99 MS p999 MS errors N statuses
//! S:N,...` (ok: answers 2xx). With `PACED_SLOW=FILE` it also writes each
//! answer slower than 0.5 ms to FILE, as the microseconds from the start to
//! its release and its latency, and each release the pacer made more than
//! 0.5 ms late (`AT pacer late US released N`, AT when it released them), in
//! order of time: stalls that recur at a period show in it, and whether the
//! client's own lateness sent the burst behind them.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Notify;

/// What `PACED_SLOW` lists: answers slower, and releases later.
const SLOW: Duration = Duration::from_micros(500);

/// Requests released and not yet sent, the time each was released.
struct Due {
    queue: Mutex<VecDeque<Instant>>,
    more: Notify,
    done: AtomicBool,
}

impl Due {
    fn pop(&self) -> Option<Instant> {
        self.queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop_front()
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(addr), Some(file), Some(rate), Some(secs)) = (
        args.first(),
        args.get(1),
        args.get(2)
            .and_then(|r| r.parse::<f64>().ok())
            .filter(|r| r.is_finite() && *r > 0.0),
        args.get(3)
            .and_then(|s| s.parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s >= 0.0),
    ) else {
        eprintln!("usage: paced ADDR BODY_FILE RATE SECS [CONNS]");
        std::process::exit(2);
    };
    let conns: usize = args.get(4).and_then(|c| c.parse().ok()).unwrap_or(32);
    let body = match std::fs::read(file) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("paced: {file}: {e}");
            std::process::exit(2);
        }
    };
    let mut request = format!(
        "POST /openrtb2/bid HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         x-openrtb-version: 2.6\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(&body);
    let request: Arc<[u8]> = request.into();

    let due = Arc::new(Due {
        queue: Mutex::new(VecDeque::new()),
        more: Notify::new(),
        done: AtomicBool::new(false),
    });
    let total = (rate * secs) as u64;
    let start = Instant::now();
    let pacer = {
        let due = due.clone();
        std::thread::spawn(move || {
            // Releases that came late (the pacer not run in time): their
            // requests go out together, a burst the servers then drain.
            let mut late = Vec::new();
            let gap = Duration::from_secs_f64(1.0 / rate);
            let mut next = 0u64;
            while next < total {
                let now = Instant::now();
                let at = start + gap.mul_f64(next as f64);
                if at > now {
                    std::thread::sleep(at - now);
                    continue;
                }
                // Everything due by now, released now: latency counts from
                // here, so the pacer's own lateness (its sleep overshoots by
                // the timer's slack) is not put on the server.
                let lateness = now - at;
                let mut q = due.queue.lock().unwrap_or_else(|e| e.into_inner());
                let mut n = 0;
                while next < total && start + gap.mul_f64(next as f64) <= now {
                    q.push_back(now);
                    next += 1;
                    n += 1;
                }
                drop(q);
                for _ in 0..n {
                    due.more.notify_one();
                }
                if lateness > SLOW {
                    late.push((now - start, lateness, n));
                }
            }
            due.done.store(true, Ordering::Release);
            due.more.notify_waiters();
            late
        })
    };

    // One thread for the connections: the client should take a core at
    // most, the servers measured share the machine with it.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("paced: runtime: {e}");
            std::process::exit(1);
        }
    };
    let results = runtime.block_on(async {
        let mut tasks = Vec::new();
        for _ in 0..conns {
            let (due, request, addr) = (due.clone(), request.clone(), addr.clone());
            tasks.push(tokio::spawn(async move {
                connection(&addr, &request, &due).await
            }));
        }
        let mut all = Outcome::default();
        for t in tasks {
            if let Ok(o) = t.await {
                all.latencies_us.extend(o.latencies_us);
                for (s, n) in o.statuses {
                    *all.statuses.entry(s).or_default() += n;
                }
                all.errors += o.errors;
                all.slow.extend(o.slow);
            }
        }
        all
    });
    let late = pacer.join().unwrap_or_default();
    if let Ok(path) = std::env::var("PACED_SLOW") {
        let mut lines: Vec<(Duration, String)> = results
            .slow
            .iter()
            .map(|(at, us)| (*at - start, us.to_string()))
            .chain(late.iter().map(|(at, lateness, n)| {
                let text = format!("pacer late {} released {n}", lateness.as_micros());
                (*at, text)
            }))
            .collect();
        lines.sort_by_key(|(at, _)| *at);
        let text: String = lines
            .iter()
            .map(|(at, what)| format!("{} {what}\n", at.as_micros()))
            .collect();
        let _ = std::fs::write(path, text);
    }

    let mut lat = results.latencies_us;
    lat.sort_unstable();
    let pct = |p: f64| -> f64 {
        if lat.is_empty() {
            return f64::NAN;
        }
        let i = ((lat.len() as f64 * p).ceil() as usize).clamp(1, lat.len()) - 1;
        f64::from(lat[i]) / 1000.0
    };
    let statuses: Vec<String> = results
        .statuses
        .iter()
        .map(|(s, n)| format!("{s}:{n}"))
        .collect();
    let ok: u64 = results.statuses.range(200..300).map(|(_, n)| n).sum();
    println!(
        "sent {total} answered {} ok {ok} rate {:.0}/s p50 {:.3} p99 {:.3} p999 {:.3} errors {} statuses {}",
        lat.len(),
        lat.len() as f64 / secs,
        pct(0.50),
        pct(0.99),
        pct(0.999),
        results.errors,
        statuses.join(",")
    );
}

#[derive(Default)]
struct Outcome {
    latencies_us: Vec<u32>,
    statuses: BTreeMap<u16, u64>,
    errors: u64,
    slow: Vec<(Instant, u32)>,
}

/// Sends due requests one at a time over a keep-alive connection,
/// reconnecting after an error.
async fn connection(addr: &str, request: &[u8], due: &Due) -> Outcome {
    let mut out = Outcome::default();
    let mut stream: Option<TcpStream> = None;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let at = match due.pop() {
            Some(at) => at,
            None if due.done.load(Ordering::Acquire) => {
                // The pacer may have pushed its last before setting done.
                match due.pop() {
                    Some(at) => at,
                    None => return out,
                }
            }
            None => {
                due.more.notified().await;
                continue;
            }
        };
        if stream.is_none() {
            match TcpStream::connect(addr).await {
                Ok(s) => {
                    let _ = s.set_nodelay(true);
                    stream = Some(s);
                }
                Err(_) => {
                    out.errors += 1;
                    continue;
                }
            }
        }
        let Some(s) = stream.as_mut() else { continue };
        match exchange(s, request, &mut buf).await {
            Ok(status) => {
                let us = at.elapsed().as_micros().min(u128::from(u32::MAX)) as u32;
                out.latencies_us.push(us);
                if us > SLOW.as_micros() as u32 {
                    out.slow.push((at, us));
                }
                *out.statuses.entry(status).or_default() += 1;
            }
            Err(_) => {
                out.errors += 1;
                stream = None;
            }
        }
    }
}

/// Writes the request and reads one answer: its head, then as many bytes
/// as its `Content-Length` says (the servers measured send one).
async fn exchange(s: &mut TcpStream, request: &[u8], buf: &mut [u8]) -> std::io::Result<u16> {
    s.write_all(request).await?;
    let mut have = 0;
    loop {
        if have == buf.len() {
            return Err(std::io::Error::other("answer head too large"));
        }
        let n = s.read(&mut buf[have..]).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        have += n;
        let Some(end) = buf[..have].windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = std::str::from_utf8(&buf[..end]).map_err(std::io::Error::other)?;
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse::<u16>().ok())
            .ok_or_else(|| std::io::Error::other("no status"))?;
        let length = head
            .split("\r\n")
            .filter_map(|l| l.split_once(':'))
            .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.trim().parse::<usize>().ok())
            .unwrap_or(0);
        let mut left = (end + 4 + length).saturating_sub(have);
        let room = buf.len();
        while left > 0 {
            let n = s.read(&mut buf[..left.min(room)]).await?;
            if n == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            left -= n;
        }
        return Ok(status);
    }
}
