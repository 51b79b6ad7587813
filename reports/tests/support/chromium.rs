//! Headless Chromium for tests: a page's DOM after its scripts ran, and a
//! screenshot. Each run gets a fresh profile in a temporary directory
//! (removed afterwards), no network beyond the page's own host, and at
//! most [`TIME_LIMIT`]; it works as root and without a terminal, as in CI.
//!
//! A missing browser fails the test: `scripts/test.sh` installs the Debian
//! package `chromium`, and a test that passes without looking proves
//! nothing. `CHROMIUM=/path/to/binary` picks another build.
//!
//! Self-contained on purpose (std only), so another crate's tests can use
//! it with `#[path = "../../reports/tests/support/chromium.rs"] mod chromium;`.

use std::fs::File;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// A run that takes longer is killed, with everything it started.
pub const TIME_LIMIT: Duration = Duration::from_secs(60);

/// Flags of every run. No sandbox: it cannot start as root. No GPU and no
/// /dev/shm: containers have neither to spare. The rest keeps the browser
/// from phoning home or touching anything beyond the page.
const FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-sync",
    "--disable-extensions",
    "--disable-component-update",
    "--mute-audio",
    // Lets timers and loads settle before the DOM is dumped, without
    // waiting for them in real time.
    "--virtual-time-budget=5000",
];

/// A directory removed with everything in it when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    /// A new empty directory under the system's temporary directory, named
    /// after `prefix`, this process and a counter, so that tests running
    /// in parallel never share one.
    pub fn new(prefix: &str) -> TempDir {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("{prefix}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path)
            .unwrap_or_else(|e| panic!("creating {}: {e}", path.display()));
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The `file://` URL of a local file (made absolute).
pub fn file_url(path: &Path) -> String {
    let abs = std::path::absolute(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut url = String::from("file://");
    for b in abs.to_string_lossy().bytes() {
        // Only what a path may hold that a URL may not is escaped.
        if b.is_ascii_alphanumeric() || b"/-_.~".contains(&b) {
            url.push(char::from(b));
        } else {
            url.push_str(&format!("%{b:02X}"));
        }
    }
    url
}

/// The browser binary found; runs are independent of each other.
pub struct Chromium {
    program: PathBuf,
}

impl Chromium {
    /// `$CHROMIUM`, else `chromium` on `PATH`. Panics, saying how to
    /// install it, when there is none.
    pub fn find() -> Chromium {
        if let Some(p) = std::env::var_os("CHROMIUM").filter(|p| !p.is_empty()) {
            return Chromium {
                program: PathBuf::from(p),
            };
        }
        let found = std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join("chromium"))
                .find(|p| p.is_file())
        });
        match found {
            Some(program) => Chromium { program },
            None => panic!(
                "headless Chromium is needed by this test but `chromium` is not on PATH: \
                 run scripts/test.sh (it installs it), or `apt-get install chromium`, \
                 or set CHROMIUM=/path/to/chromium"
            ),
        }
    }

    /// The DOM of `url` as serialized after loading it and running its
    /// scripts (`--dump-dom`).
    pub fn dump_dom(&self, url: &str) -> String {
        // On a loaded machine headless Chromium now and then exits cleanly
        // having printed nothing; a page always has a DOM, so an empty dump
        // is the browser's hiccup, not the page's: try again, twice at most.
        for _ in 0..2 {
            let out = self.run(url, &["--dump-dom".to_owned()], |_| {});
            if !out.is_empty() {
                return String::from_utf8(out).expect("chromium's DOM dump is UTF-8");
            }
        }
        let out = self.run(url, &["--dump-dom".to_owned()], |_| {});
        String::from_utf8(out).expect("chromium's DOM dump is UTF-8")
    }

    /// A PNG of `url` in a `width` x `height` window, written to `png`.
    pub fn screenshot(&self, url: &str, png: &Path, width: u32, height: u32) {
        let _ = std::fs::remove_file(png);
        let args = [
            format!("--screenshot={}", png.display()),
            format!("--window-size={width},{height}"),
        ];
        self.run(url, &args, |stderr| {
            assert!(
                png.is_file(),
                "chromium made no screenshot at {}\n{stderr}",
                png.display()
            );
        });
    }

    /// Runs the browser on `url` with `args`, returns its standard output;
    /// `check` sees its standard error after a clean exit.
    fn run(&self, url: &str, args: &[String], check: impl FnOnce(&str)) -> Vec<u8> {
        let dir = TempDir::new("chromium-run");
        let profile = dir.path().join("profile");
        let (stdout, stderr) = (dir.path().join("stdout"), dir.path().join("stderr"));
        let create = |p: &Path| File::create(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        let mut cmd = Command::new(&self.program);
        cmd.args(FLAGS)
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg(host_rules(url))
            .args(args)
            .arg(url)
            // Caches and settings stay in the run's directory too.
            .env("HOME", dir.path())
            .env("XDG_CONFIG_HOME", dir.path().join("config"))
            .env("XDG_CACHE_HOME", dir.path().join("cache"))
            .stdin(Stdio::null())
            // Files, not pipes: a large DOM cannot fill a pipe nobody
            // reads while we wait for the exit.
            .stdout(create(&stdout))
            .stderr(create(&stderr))
            // Its own process group, so renderers and helpers go with it.
            .process_group(0);
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", self.program.display()));
        let status = wait_or_kill(&mut child, TIME_LIMIT);
        // Stragglers of a finished run would write into the profile while
        // it is being removed.
        kill_group(&child);
        let err_text = std::fs::read_to_string(&stderr).unwrap_or_default();
        match status {
            Some(s) if s.success() => {}
            Some(s) => panic!("chromium {url} exited with {s}:\n{}", tail(&err_text)),
            None => panic!(
                "chromium {url} took over {}s and was killed:\n{}",
                TIME_LIMIT.as_secs(),
                tail(&err_text)
            ),
        }
        check(&tail(&err_text));
        std::fs::read(&stdout).unwrap_or_else(|e| panic!("{}: {e}", stdout.display()))
    }
}

/// Every host name resolves to nothing but the page's own (none for a
/// `file://` page): nothing else is fetched, whatever the page asks for.
fn host_rules(url: &str) -> String {
    let host = url
        .split_once("://")
        .map(|(_, rest)| rest.split(['/', '?', '#']).next().unwrap_or(""))
        .map(|authority| authority.rsplit_once('@').map_or(authority, |(_, h)| h))
        .map(|h| match h.strip_prefix('[') {
            Some(v6) => v6.split(']').next().unwrap_or(""),
            None => h.split(':').next().unwrap_or(""),
        })
        .unwrap_or("");
    if host.is_empty() {
        "--host-resolver-rules=MAP * ~NOTFOUND".into()
    } else {
        format!("--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE {host}")
    }
}

fn wait_or_kill(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(25)),
            _ => {
                kill_group(child);
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
}

/// SIGKILL to the process group the child leads (it was started as one).
fn kill_group(child: &Child) {
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{}", child.id())])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// The end of Chromium's standard error, which is mostly D-Bus noise in a
/// container, for a failure message.
fn tail(stderr: &str) -> String {
    let lines: Vec<&str> = stderr.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}
