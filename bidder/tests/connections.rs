//! Connections are bounded in number and in time: a client that opens many,
//! or trickles its headers or body, or sits idle, cannot hold the port.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use bidder::server::Limits;
use bidder::Settings;
use common::{repo, Server};

fn server(limits: Limits) -> Server {
    Server::start_with(
        &repo().join("examples/config"),
        None,
        Settings {
            limits,
            body_timeout: Duration::from_millis(300),
            ..Settings::default()
        },
    )
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5))).ok();
    s
}

/// Reads until the peer closes, or `wait` passes; whether it closed.
fn closed_within(s: &mut TcpStream, wait: Duration) -> bool {
    s.set_read_timeout(Some(wait)).ok();
    let mut buf = [0u8; 4096];
    let start = Instant::now();
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(_) => return start.elapsed() < wait,
        }
        if start.elapsed() >= wait {
            return false;
        }
    }
}

const HEALTH: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";

#[test]
fn past_the_limit_new_connections_wait_for_a_slot() {
    let s = server(Limits {
        max_connections: 2,
        ..Limits::default()
    });
    let first = connect(s.admin);
    let mut second = connect(s.admin);
    second.write_all(HEALTH).unwrap();
    let mut buf = [0u8; 256];
    assert!(second.read(&mut buf).unwrap() > 0, "the second is served");
    // A third waits while two are open...
    let mut third = connect(s.admin);
    third.write_all(HEALTH).unwrap();
    third
        .set_read_timeout(Some(Duration::from_millis(300)))
        .ok();
    assert!(third.read(&mut buf).is_err(), "no slot yet");
    // ...and is served once one closes.
    drop(first);
    third.set_read_timeout(Some(Duration::from_secs(5))).ok();
    let n = third.read(&mut buf).expect("served after a slot freed");
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
}

/// Sockets that never send a byte, as many as the port takes, do not
/// hold it for the header timeout (10 s): once the port is full, quiet
/// connections go after a second, and a bid request waiting behind them
/// is answered.
#[test]
fn a_port_full_of_silent_connections_makes_room_for_a_bid() {
    let s = server(Limits {
        max_connections: 8,
        ..Limits::default()
    });
    let mut silent: Vec<TcpStream> = (0..8).map(|_| connect(s.bid)).collect();
    let body = common::banner_request().to_string();
    let mut bidder = connect(s.bid);
    bidder
        .write_all(
            format!(
                "POST /openrtb2/bid HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        )
        .unwrap();
    // Well within the header timeout (10 s) the silent ones held it for.
    bidder.set_read_timeout(Some(Duration::from_secs(5))).ok();
    let head = read_head(&mut bidder);
    // Answered (this config without audience data makes no bid: 204).
    assert!(head.starts_with("HTTP/1.1 204"), "{head}");
    // The room came from silent ones closed (as many as it took: once the
    // port has room, the usual limits are back).
    let closed = silent
        .iter_mut()
        .map(|s| closed_within(s, Duration::from_millis(100)))
        .filter(|&closed| closed)
        .count();
    assert!(closed >= 1, "none of the silent connections was closed");
}

/// Every slot taken but no connection waiting: quiet connections (an
/// exchange's idle keep-alive pool) stay; only one that waits makes them go.
#[test]
fn a_full_port_sheds_quiet_connections_only_when_one_waits() {
    let s = server(Limits {
        max_connections: 2,
        ..Limits::default()
    });
    let mut first = connect(s.admin);
    let mut second = connect(s.admin);
    let mut buf = [0u8; 256];
    first.write_all(HEALTH).unwrap();
    assert!(first.read(&mut buf).unwrap() > 0);
    std::thread::sleep(Duration::from_millis(1_500));
    assert!(!closed_within(&mut first, Duration::from_millis(300)));
    assert!(!closed_within(&mut second, Duration::from_millis(300)));
    let mut third = connect(s.admin);
    third.write_all(HEALTH).unwrap();
    third.set_read_timeout(Some(Duration::from_secs(5))).ok();
    let n = third.read(&mut buf).expect("served once a quiet one went");
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
}

#[test]
fn slow_headers_slow_bodies_and_idle_connections_are_closed() {
    let s = server(Limits {
        max_connections: 64,
        header_timeout: Duration::from_millis(400),
        idle_timeout: Duration::from_millis(400),
    });
    // Headers that never finish.
    let mut slow = connect(s.bid);
    slow.write_all(b"POST /openrtb2/bid HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    assert!(closed_within(&mut slow, Duration::from_secs(3)));
    // An explain body that never finishes: 408, and the connection goes.
    let mut body = connect(s.admin);
    let auth = format!("Authorization: Bearer {}\r\n", common::ADMIN_TOKEN);
    body.write_all(
        format!(
            "POST /v1/explain HTTP/1.1\r\nHost: x\r\n{auth}Content-Length: 100\r\n\r\n{{\"id\""
        )
        .as_bytes(),
    )
    .unwrap();
    let mut reply = String::new();
    let _ = body.read_to_string(&mut reply);
    assert!(reply.starts_with("HTTP/1.1 408"), "{reply}");
    // A keep-alive connection left idle after its answer.
    let mut idle = connect(s.admin);
    idle.write_all(HEALTH).unwrap();
    let mut buf = [0u8; 256];
    assert!(idle.read(&mut buf).unwrap() > 0);
    assert!(closed_within(&mut idle, Duration::from_secs(3)));
    // One that keeps talking stays open.
    let mut busy = connect(s.admin);
    for _ in 0..4 {
        busy.write_all(HEALTH).unwrap();
        assert!(busy.read(&mut buf).unwrap() > 0);
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The header timeout is the bidder's own (one timer a connection, not
/// hyper's one per request): headers that trickle in, or never follow a
/// keep-alive answer, lose the connection after it even when the idle
/// timeout is far longer; a request still being served keeps it.
#[test]
fn the_header_timeout_holds_between_requests_but_not_during_one() {
    let s = Server::start_with(
        &repo().join("examples/config"),
        None,
        Settings {
            limits: Limits {
                max_connections: 64,
                header_timeout: Duration::from_millis(500),
                idle_timeout: Duration::from_secs(600),
            },
            body_timeout: Duration::from_secs(10),
            ..Settings::default()
        },
    );
    // A head trickled a byte at a time, never finished.
    // Before connecting: the server counts from its accept, which is later.
    let start = Instant::now();
    let mut trickle = connect(s.bid);
    for b in b"POST /openrtb2/bid HTTP/1.1\r\nHost: x\r\n".iter() {
        if trickle.write_all(&[*b]).is_err() {
            break;
        }
        std::thread::sleep(Duration::from_millis(60));
    }
    assert!(closed_within(&mut trickle, Duration::from_secs(5)));
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(500) && took < Duration::from_secs(5),
        "closed after {took:?}"
    );

    // Answered, then nothing: the next request's headers are due within
    // the header timeout of the answer, not the ten-minute idle timeout.
    let mut quiet = connect(s.admin);
    quiet.write_all(HEALTH).unwrap();
    let mut buf = [0u8; 256];
    assert!(quiet.read(&mut buf).unwrap() > 0);
    assert!(closed_within(&mut quiet, Duration::from_secs(5)));

    // A request whose body takes longer than the header timeout to arrive
    // (well within the body timeout) is served, on a connection that then
    // serves another.
    let mut slow = connect(s.admin);
    let body = std::fs::read(repo().join("benches/src/banner-request.json")).unwrap();
    let auth = format!("Authorization: Bearer {}\r\n", common::ADMIN_TOKEN);
    slow.write_all(
        format!(
            "POST /v1/explain HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    )
    .unwrap();
    for piece in body.chunks(body.len().div_ceil(6)) {
        std::thread::sleep(Duration::from_millis(250));
        slow.write_all(piece).unwrap();
    }
    let head = read_head(&mut slow);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    slow.write_all(HEALTH).unwrap();
    let head = read_head(&mut slow);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
}

/// The head of a bid request whose body is `len` bytes.
fn bid_head(len: usize) -> String {
    format!(
        "POST /openrtb2/bid HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {len}\r\n\r\n"
    )
}

/// Whether an answer's head says `Connection: close`.
fn says_close(head: &str) -> bool {
    head.to_ascii_lowercase()
        .contains("\r\nconnection: close\r\n")
}

/// Reads an answer's status line and headers, and then its body by its
/// `content-length`, leaving the connection at the next answer.
fn read_head(s: &mut TcpStream) -> String {
    let mut got = Vec::new();
    let mut byte = [0u8; 1];
    while !got.ends_with(b"\r\n\r\n") {
        match s.read(&mut byte) {
            Ok(1) => got.push(byte[0]),
            _ => return String::from_utf8_lossy(&got).into_owned(),
        }
    }
    let head = String::from_utf8_lossy(&got).into_owned();
    let len = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).expect("the answer's body");
    head
}

/// The no-bids the reports count on the servers' fixed day, 2026-11-24.
fn no_bids_on_the_day(s: &Server) -> serde_json::Value {
    let r = common::request(
        s.admin,
        "GET",
        "/v1/reports?from=2026-11-24&to=2026-11-24",
        &[("Authorization", &format!("Bearer {}", common::ADMIN_TOKEN))],
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["no_bids"].clone()
}

/// A bid body that stops halfway is given up at the longest deadline any
/// exchange may set: a 204, not a slot held for as long as the client
/// likes. (Bodies that came whole with their headers are read without a
/// timer; this is the path that needs one.)
#[test]
fn a_bid_body_that_stops_halfway_gets_a_204_at_the_deadline() {
    let dir = common::tempdir("halfway-body");
    let s = Server::start_in_with(
        &repo().join("examples/config"),
        &dir.join("state"),
        common::ts("2026-11-24T12:00:00Z"),
        |settings| settings.max_tmax = Duration::from_millis(400),
    );
    let body = std::fs::read(repo().join("benches/src/banner-request.json")).unwrap();
    let mut c = connect(s.bid);
    let start = Instant::now();
    c.write_all(bid_head(body.len()).as_bytes()).unwrap();
    c.write_all(&body[..body.len() / 2]).unwrap();
    let head = read_head(&mut c);
    let took = start.elapsed();
    assert!(head.starts_with("HTTP/1.1 204"), "{head}");
    assert!(says_close(&head), "{head}");
    assert!(
        took >= Duration::from_millis(400) && took < Duration::from_secs(4),
        "answered after {took:?}"
    );
    // Reports count it as the metrics do: a no-bid, `late` (they had it
    // in the metrics only).
    let no_bids = &no_bids_on_the_day(&s);
    assert_eq!(no_bids[0]["reason"], "late", "{no_bids}");
    assert_eq!(no_bids[0]["count"], 1, "{no_bids}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// An answer after which the connection will not carry another request
/// says `Connection: close`, so a keep-alive client opens a new one
/// instead of losing its next request to a close it was not told of:
/// a refusal that left the request's body unread (hyper does not reuse
/// such a connection), and every answer while draining after SIGTERM (a
/// pool moves to another replica before the listener closes).
#[test]
fn answers_say_when_their_connection_closes() {
    let s = server(Limits::default());
    let mut c = connect(s.bid);
    c.write_all(b"POST /nothing HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
        .unwrap();
    let head = read_head(&mut c);
    assert!(head.starts_with("HTTP/1.1 404"), "{head}");
    assert!(says_close(&head), "{head}");
    // Read whole, a refused bid request (400) and a no-bid keep theirs.
    let mut c = connect(s.bid);
    for (body, status) in [
        (&b"{not json"[..], "400"),
        (
            &br#"{"id":"1","imp":[{"id":"1","banner":{"w":1,"h":1}}]}"#[..],
            "204",
        ),
    ] {
        c.write_all(bid_head(body.len()).as_bytes()).unwrap();
        c.write_all(body).unwrap();
        let head = read_head(&mut c);
        assert!(head.starts_with(&format!("HTTP/1.1 {status}")), "{head}");
        assert!(!says_close(&head), "{head}");
    }
    // A GET refused keeps it too: nothing was left unread.
    let mut c = connect(s.admin);
    c.write_all(b"GET /v1/reports HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let head = read_head(&mut c);
    assert!(head.starts_with("HTTP/1.1 401"), "{head}");
    assert!(!says_close(&head), "{head}");

    s.app.drain();
    for addr in [s.admin, s.bid] {
        let mut c = connect(addr);
        c.write_all(HEALTH).unwrap();
        let head = read_head(&mut c);
        assert!(says_close(&head), "{head}");
        assert!(closed_within(&mut c, Duration::from_secs(2)));
    }
}

/// A login form is the one body the admin port reads before a token is
/// checked: connections sending a login's headers and no body held every
/// slot for the body timeout, `/healthz` with them (probe finding). A few
/// are read at once; the rest are answered 503 at once and closed, and the
/// probes go on answering.
#[test]
fn logins_that_never_send_their_body_do_not_hold_the_admin_port() {
    let s = Server::start_with(
        &repo().join("examples/config"),
        None,
        Settings {
            limits: Limits {
                max_connections: 16,
                ..Limits::default()
            },
            body_timeout: Duration::from_secs(30),
            ..Settings::default()
        },
    );
    let login = b"POST /ui/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\n";
    let mut held: Vec<TcpStream> = Vec::new();
    let mut refused = 0;
    for _ in 0..16 {
        let mut c = connect(s.admin);
        c.write_all(login).unwrap();
        c.set_read_timeout(Some(Duration::from_millis(300))).ok();
        let mut buf = [0u8; 512];
        match c.read(&mut buf) {
            Ok(n) if n > 0 => {
                let head = String::from_utf8_lossy(&buf[..n]).into_owned();
                assert!(head.starts_with("HTTP/1.1 503"), "{head}");
                assert!(head.contains("retry-after: 1"), "{head}");
                refused += 1;
            }
            _ => held.push(c),
        }
    }
    assert_eq!(
        (held.len(), refused),
        (
            bidder::ui::LOGINS_READ_AT_ONCE,
            16 - bidder::ui::LOGINS_READ_AT_ONCE
        )
    );
    // Well within the 30 s the held ones may take.
    let mut probe = connect(s.admin);
    probe.write_all(HEALTH).unwrap();
    let head = read_head(&mut probe);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
}

/// Audience uploads are read, applied and attributed a few at a time: a
/// batch took some five times its size while parsed and applied (some
/// three since stop 72), and eight of
/// 40 MB at once took the process past 1.5 GB (audiences probe). Past
/// [`bidder::app::BATCHES_AT_ONCE`], an upload is answered 503 with
/// `Retry-After` before its body is read; a slot comes back when an
/// upload ends, its client gone or not.
#[test]
fn audience_uploads_are_applied_a_few_at_a_time() {
    let s = Server::start_with(
        &repo().join("examples/config"),
        None,
        Settings {
            body_timeout: Duration::from_secs(30),
            ..Settings::default()
        },
    );
    let head = format!(
        "POST /v1/audience-events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
         Content-Length: 100\r\n\r\n",
        common::ADMIN_TOKEN
    );
    let mut held: Vec<TcpStream> = Vec::new();
    for _ in 0..bidder::app::BATCHES_AT_ONCE {
        let mut c = connect(s.admin);
        c.write_all(head.as_bytes()).unwrap();
        c.set_read_timeout(Some(Duration::from_millis(300))).ok();
        let mut buf = [0u8; 512];
        assert!(
            !matches!(c.read(&mut buf), Ok(n) if n > 0),
            "an upload within the bound was answered before its body came"
        );
        held.push(c);
    }
    let mut c = connect(s.admin);
    c.write_all(head.as_bytes()).unwrap();
    let answer = read_head(&mut c);
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("retry-after: 2"), "{answer}");
    // One client goes: its slot is free again.
    drop(held.pop());
    let line = serde_json::json!({
        "user": "u-9", "event": "view", "product": "B0TENT0001", "at": "2026-11-24T12:00:00Z"
    });
    let start = Instant::now();
    loop {
        let r = common::upload(&s, std::slice::from_ref(&line));
        if r.status == 200 {
            break;
        }
        assert_eq!(r.status, 503, "{}", r.text());
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "the slot never came back"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Bid bodies being read are bounded together, not only one by one: past
/// `max_body_memory`, a body gathered from several reads is not read
/// further (a no-bid, `busy`, and the connection closed), a body holds
/// about what it has sent, and what the others held is given back when
/// they end. And a request's head must fit the connection's read buffer
/// (32 KB, and the last read past it): 4,096 connections each holding an
/// unfinished 400 KB head had taken over a gigabyte.
#[test]
fn bid_bodies_being_read_hold_no_more_than_their_memory_together() {
    let dir = common::tempdir("body-memory");
    let s = Server::start_in_with(
        &repo().join("examples/config"),
        &dir.join("state"),
        common::ts("2026-11-24T12:00:00Z"),
        |settings| {
            settings.max_body_memory = 256 << 10;
            settings.max_tmax = Duration::from_millis(1500);
        },
    );
    // Sixteen bodies that each declare a megabyte and send 64 KB of it:
    // each holds 64-128 KB, so two to four fit and the rest are cut off.
    let sent = vec![b' '; 64 << 10];
    let mut conns: Vec<TcpStream> = (0..16)
        .map(|_| {
            let mut c = connect(s.bid);
            c.write_all(bid_head(1 << 20).as_bytes()).unwrap();
            c.write_all(&sent).unwrap();
            c
        })
        .collect();
    let heads: Vec<String> = std::thread::scope(|scope| {
        let readers: Vec<_> = conns
            .iter_mut()
            .map(|c| scope.spawn(move || read_head(c)))
            .collect();
        readers.into_iter().map(|r| r.join().unwrap()).collect()
    });
    for head in &heads {
        assert!(head.starts_with("HTTP/1.1 204"), "{head}");
        assert!(says_close(head), "{head}");
    }
    let no_bids = |s: &Server| {
        let no_bids = no_bids_on_the_day(s);
        let count = |reason: &str| {
            no_bids
                .as_array()
                .unwrap()
                .iter()
                .filter(|n| n["reason"] == reason)
                .map(|n| n["count"].as_u64().unwrap())
                .sum::<u64>()
        };
        (count("busy"), count("late"))
    };
    let (busy, late) = no_bids(&s);
    assert_eq!(busy + late, 16, "busy {busy}, late {late}");
    assert!((12..=14).contains(&busy), "busy {busy}, late {late}");
    // Given back: a 100 KB body, gathered from several reads, is read.
    let body = std::fs::read(repo().join("benches/src/banner-request.json")).unwrap();
    let mut padded = body.clone();
    padded.resize(100 << 10, b' ');
    let mut c = connect(s.bid);
    c.write_all(bid_head(padded.len()).as_bytes()).unwrap();
    c.write_all(&padded).unwrap();
    let head = read_head(&mut c);
    assert!(!says_close(&head), "{head}");
    assert_eq!(no_bids(&s), (busy, late));
    // A head past the read buffer is refused, not buffered.
    let mut c = connect(s.bid);
    let big = format!(
        "POST /openrtb2/bid HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(100 * 1024)
    );
    c.write_all(big.as_bytes()).unwrap();
    let head = read_head(&mut c);
    assert!(head.starts_with("HTTP/1.1 431"), "{head}");
    let _ = std::fs::remove_dir_all(&dir);
}
