//! The `bidder` binary as operators and account managers run it.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_bidder"))
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn validate_accepts_the_examples_with_a_summary() {
    let out = bin()
        .args(["validate", "--config"])
        .arg(repo().join("examples/config"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(stdout.contains("2 advertisers"), "{stdout}");
    assert!(stdout.contains("5 line items"), "{stdout}");
    assert!(stdout.contains("7 creatives"), "{stdout}");
}

#[test]
fn validate_lists_every_problem_with_its_place() {
    let dir = std::env::temp_dir().join(format!("bidder-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let acme = std::fs::read_to_string(repo().join("examples/config/acme-outdoor.yaml")).unwrap();
    let nw = std::fs::read_to_string(repo().join("examples/config/northwind-books.yaml")).unwrap();
    // Two semantic problems in one file, a type problem in another.
    std::fs::write(
        dir.join("acme.yaml"),
        acme.replace("countries: [USA, CAN]", "countries: [US, CAN]")
            .replace("creatives: [tent-video-15s]", "creatives: [tent-video-99s]"),
    )
    .unwrap();
    std::fs::write(dir.join("nw.yaml"), nw.replace("cpm: 1.80", "cpm: lots")).unwrap();
    let out = bin()
        .args(["validate", "--config"])
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    for l in &lines {
        let mut parts = l.splitn(4, ':');
        let file = parts.next().unwrap();
        let line: u32 = parts
            .next()
            .unwrap()
            .parse()
            .unwrap_or_else(|_| panic!("{l}"));
        let col: u32 = parts
            .next()
            .unwrap()
            .parse()
            .unwrap_or_else(|_| panic!("{l}"));
        assert!(file.ends_with(".yaml") && line > 0 && col > 0, "{l}");
        assert!(!parts.next().unwrap().trim().is_empty(), "{l}");
    }
    assert!(stdout.contains("\"US\""), "{stdout}");
    assert!(stdout.contains("tent-video-99s"), "{stdout}");
    assert!(stdout.contains("nw.yaml:"), "{stdout}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn schema_prints_the_committed_json_schema_of_the_three_kinds() {
    let out = bin().arg("schema").output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let schema: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(schema["$schema"], "http://json-schema.org/draft-07/schema#");
    let required: Vec<&serde_json::Value> = schema["oneOf"]
        .as_array()
        .expect("oneOf")
        .iter()
        .map(|kind| &kind["required"][0])
        .collect();
    assert_eq!(required, ["advertiser", "exchange", "currency_rates"]);
    // What `cargo run -p bidder -- schema > schema/bidder-config.schema.json` wrote.
    let committed =
        std::fs::read_to_string(repo().join("schema/bidder-config.schema.json")).unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), committed);

    let out = bin()
        .args(["schema", "--kind", "currency_rates"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let rates: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(rates["required"], serde_json::json!(["currency_rates"]));
    assert!(rates.get("oneOf").is_none());

    let out = bin().args(["schema", "--kind", "orders"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("advertiser") && stderr.contains("currency_rates"),
        "{stderr}"
    );
}

#[test]
fn serve_refuses_an_invalid_config() {
    let dir = std::env::temp_dir().join(format!("bidder-cli-bad-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("bad.yaml"), "advertiser: [\n").unwrap();
    let out = bin()
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
            "--config",
        ])
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad.yaml:"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn serve_bids_on_the_example_and_stops_on_sigterm() {
    let state = std::env::temp_dir().join(format!("bidder-cli-state-{}", std::process::id()));
    let data = repo().join("examples/data");
    let (mut child, bid, admin) = serve(
        &repo().join("examples/config"),
        &state,
        &["--data".as_ref(), data.as_os_str()],
    );
    let ready = http(
        admin,
        "GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(ready.starts_with("HTTP/1.1 200"), "{ready}");
    // The wall clock decides the flights here; whatever it says, the answer
    // is a well-formed 200 or 204, never an error.
    let body = std::fs::read_to_string(repo().join("benches/src/banner-request.json")).unwrap();
    let req = format!(
        "POST /openrtb2/bid HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let reply = http(bid, &req);
    assert!(
        reply.starts_with("HTTP/1.1 200") || reply.starts_with("HTTP/1.1 204"),
        "{reply}"
    );
    terminate(child.id());
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    let _ = std::fs::remove_dir_all(&state);
}

/// Starts `bidder serve` and returns it with its bid and admin addresses.
fn serve(
    config: &Path,
    state: &Path,
    extra: &[&std::ffi::OsStr],
) -> (
    std::process::Child,
    std::net::SocketAddr,
    std::net::SocketAddr,
) {
    let mut child = bin()
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
            "--config",
        ])
        .arg(config)
        .arg("--state")
        .arg(state)
        .env("BIDDER_NOTICE_SECRET", "test-secret-of-at-least-32-bytes!")
        .env("BIDDER_ADMIN_TOKEN", "cli-admin-token-0123456789")
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = |key: &str| -> std::net::SocketAddr {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(key))
            .unwrap_or_else(|| panic!("no {key} in {line:?}"))
            .parse()
            .unwrap()
    };
    (child, addr("bid="), addr("admin="))
}

fn post_json(addr: std::net::SocketAddr, path: &str, body: &str) -> String {
    http(
        addr,
        &format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
             Authorization: Bearer cli-admin-token-0123456789\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    )
}

#[test]
fn an_acknowledged_charge_survives_kill_9() {
    let dir = std::env::temp_dir().join(format!("bidder-cli-kill-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("config")).unwrap();
    // No flight dates in the past or future matter here: the flight covers
    // every date this test can run on.
    std::fs::write(
        dir.join("config/shop.yaml"),
        r#"advertiser: { id: shop, name: Shop, domains: [shop.example], categories: [IAB22] }
creatives:
  - { id: b300, format: display, size: 300x250, image_url: "https://cdn.shop.example/b.png", click_url: "https://shop.example/" }
orders:
  - id: o1
    service: self_service
    budget: 1000000.00
    flight: { start: 2000-01-01, end: 2999-12-31 }
    line_items:
      - { id: li, media: display, cpm: 1000.00, budget: { lifetime: 1.00 }, creatives: [b300] }
"#,
    )
    .unwrap();
    let req = r#"{"id":"r1","imp":[{"id":"1","banner":{"w":300,"h":250}}],"site":{"domain":"a.example"}}"#;
    let state = dir.join("state");
    let (mut child, bid, _) = serve(&dir.join("config"), &state, &[]);
    let reply = post_json(bid, "/openrtb2/bid", req);
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    let body = reply.split("\r\n\r\n").nth(1).unwrap();
    let v: serde_json::Value = serde_json::from_str(body).unwrap();
    let nurl = v["seatbid"][0]["bid"][0]["nurl"]
        .as_str()
        .unwrap()
        .replace("${AUCTION_PRICE}", "1000.00");
    let path = &nurl[nurl.find("/notice").unwrap()..];
    let ack = http(
        bid,
        &format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
    );
    assert!(ack.starts_with("HTTP/1.1 200"), "{ack}");
    // The charge was acknowledged: kill -9, no chance to flush anything.
    let _ = Command::new("kill")
        .args(["-KILL", &child.id().to_string()])
        .status();
    let _ = child.wait();

    let (mut child, bid, admin) = serve(&dir.join("config"), &state, &[]);
    let reply = post_json(bid, "/openrtb2/bid", req);
    assert!(
        reply.starts_with("HTTP/1.1 204"),
        "the 1.00 lifetime budget is spent: {reply}"
    );
    let explain = post_json(admin, "/v1/explain", req);
    assert!(explain.contains("\"reason\": \"budget\""), "{explain}");
    // The same notice again after the restart: still charged only once.
    let again = http(
        bid,
        &format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
    );
    assert!(again.starts_with("HTTP/1.1 200"), "{again}");
    terminate(child.id());
    let _ = child.wait();
    let journal = std::fs::read_to_string(state.join("charges.journal")).unwrap();
    let records = journal.lines().filter(|l| l.starts_with("C\t")).count();
    assert_eq!(records, 1, "{journal}");
    let _ = std::fs::remove_dir_all(&dir);
}

fn http(addr: std::net::SocketAddr, req: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.write_all(req.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

fn terminate(pid: u32) {
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
}

#[test]
fn secrets_come_from_files_or_the_environment_and_short_ones_are_refused() {
    let dir = std::env::temp_dir().join(format!("bidder-cli-secrets-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let run = |envs: &[(&str, &str)], args: &[&str]| {
        let mut c = bin();
        c.args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
        ])
        .arg("--config")
        .arg(repo().join("examples/config"))
        .arg("--state")
        .arg(dir.join("state"))
        .args(args)
        .env_remove("BIDDER_NOTICE_SECRET")
        .env_remove("BIDDER_ADMIN_TOKEN");
        for (k, v) in envs {
            c.env(k, v);
        }
        c.output().unwrap()
    };
    let short = run(&[("BIDDER_NOTICE_SECRET", "only-sixteen-b!!")], &[]);
    assert_eq!(short.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&short.stderr);
    assert!(stderr.contains("at least 32"), "{stderr}");
    assert!(
        !stderr.contains("only-sixteen"),
        "a secret was printed: {stderr}"
    );
    let file = dir.join("notice-secret");
    std::fs::write(&file, "short\n").unwrap();
    let short = run(&[], &["--notice-secret-file", file.to_str().unwrap()]);
    assert_eq!(short.status.code(), Some(1));
    let weak = run(
        &[
            (
                "BIDDER_NOTICE_SECRET",
                "a-notice-secret-of-at-least-32-bytes",
            ),
            ("BIDDER_ADMIN_TOKEN", "short"),
        ],
        &[],
    );
    assert_eq!(weak.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&weak.stderr).contains("at least 16"));
    let missing = run(&[], &["--admin-token-file", "/nonexistent/admin-token"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("admin token"));
    let _ = std::fs::remove_dir_all(&dir);
}
