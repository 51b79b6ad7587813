//! A real `redis-server` for tests, on a free loopback port, that goes away
//! with the test process: it is started under a shell that kills it when
//! the test's end of a pipe closes (a test binary exits without running
//! destructors of statics, and a panicking test must not leave it behind).

use std::io::Write as _;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `redis-server`.
pub struct RedisServer {
    pub addr: SocketAddr,
    pub dir: PathBuf,
    child: Option<Child>,
    stdin: Option<ChildStdin>,
}

impl RedisServer {
    /// Starts one with its data (append-only file, fsync'd on every write)
    /// in `dir`, so a restart finds what it had.
    ///
    /// A port found free may be taken by another test's server before
    /// this one binds it: this one then exits, and the PING is answered by
    /// the other, whose state the test would share (a flaky failure far
    /// from its cause). The server that answers must be the one started
    /// here, in `dir`; otherwise another port is tried.
    pub fn start(dir: &Path) -> std::io::Result<RedisServer> {
        let mut last = None;
        for _ in 0..5 {
            let port = free_port()?;
            let server = RedisServer::start_on(dir, port)?;
            match server.serves(dir) {
                Ok(true) => return Ok(server),
                Ok(false) => {
                    last = Some(std::io::Error::other(format!(
                        "port {port} was taken by another redis-server"
                    )))
                }
                Err(e) => last = Some(std::io::Error::other(e.to_string())),
            }
            server.abandon();
        }
        Err(last.unwrap_or_else(|| std::io::Error::other("no free port for redis-server")))
    }

    /// Whether the server answering on this port keeps its data in `dir`.
    fn serves(&self, dir: &Path) -> redis::RedisResult<bool> {
        let mut conn = redis::Client::open(self.url())?.get_connection()?;
        let got: Vec<String> = redis::cmd("CONFIG")
            .arg("GET")
            .arg("dir")
            .query(&mut conn)?;
        let theirs = got.get(1).map(PathBuf::from);
        let same = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
        Ok(theirs.is_some_and(|t| same(&t) == same(dir)))
    }

    fn start_on(dir: &Path, port: u16) -> std::io::Result<RedisServer> {
        std::fs::create_dir_all(dir)?;
        let script = format!(
            "redis-server --port {port} --bind 127.0.0.1 --save '' --appendonly yes \
             --appendfsync always --dir '{}' --daemonize no --loglevel warning \
             >'{}/redis.log' 2>&1 & pid=$!; cat >/dev/null; kill $pid; wait $pid",
            dir.display(),
            dir.display()
        );
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let stdin = child.stdin.take();
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let server = RedisServer {
            addr,
            dir: dir.to_path_buf(),
            child: Some(child),
            stdin,
        };
        server.wait_ready()?;
        Ok(server)
    }

    fn wait_ready(&self) -> std::io::Result<()> {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            if let Ok(mut s) = TcpStream::connect_timeout(&self.addr, Duration::from_millis(100)) {
                let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
                if s.write_all(b"PING\r\n").is_ok() {
                    let mut buf = [0u8; 16];
                    if let Ok(n) = std::io::Read::read(&mut s, &mut buf) {
                        if buf[..n].starts_with(b"+PONG") {
                            return Ok(());
                        }
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(std::io::Error::other(format!(
            "redis-server did not answer on {} (is the redis-server package installed?)",
            self.addr
        )))
    }

    pub fn url(&self) -> String {
        format!("redis://{}/", self.addr)
    }

    /// Runs one command (`ZADD`, `ZREM`, ...): for tests that write what
    /// another party (a replica of an earlier version) would.
    pub fn command(&self, args: &[&str]) -> redis::RedisResult<redis::Value> {
        let mut conn = redis::Client::open(self.url())?.get_connection()?;
        let mut cmd = redis::Cmd::new();
        for a in args {
            cmd.arg(*a);
        }
        cmd.query(&mut conn)
    }

    /// A hash field as text (`None` when absent).
    pub fn hget(&self, key: &str, field: &str) -> redis::RedisResult<Option<String>> {
        let mut conn = redis::Client::open(self.url())?.get_connection()?;
        redis::cmd("HGET").arg(key).arg(field).query(&mut conn)
    }

    /// A hash field read as an integer (0 when absent).
    pub fn hget_i64(&self, key: &str, field: &str) -> redis::RedisResult<i64> {
        let mut conn = redis::Client::open(self.url())?.get_connection()?;
        let v: Option<i64> = redis::cmd("HGET").arg(key).arg(field).query(&mut conn)?;
        Ok(v.unwrap_or(0))
    }

    /// The keys matching `pattern` (`KEYS`: tests hold a few hundred).
    pub fn keys(&self, pattern: &str) -> redis::RedisResult<Vec<String>> {
        let mut conn = redis::Client::open(self.url())?.get_connection()?;
        redis::cmd("KEYS").arg(pattern).query(&mut conn)
    }

    /// A hash's values read as integers.
    pub fn hvals_i64(&self, key: &str) -> redis::RedisResult<Vec<i64>> {
        let mut conn = redis::Client::open(self.url())?.get_connection()?;
        redis::cmd("HVALS").arg(key).query(&mut conn)
    }

    /// A sorted set's members, lowest score first.
    pub fn zmembers(&self, key: &str) -> redis::RedisResult<Vec<String>> {
        let mut conn = redis::Client::open(self.url())?.get_connection()?;
        redis::cmd("ZRANGE")
            .arg(key)
            .arg(0)
            .arg(-1)
            .query(&mut conn)
    }

    /// Stops the shell of a server that is not the one answering on its
    /// port (it exited): without waiting for the port, somebody else's.
    fn abandon(mut self) {
        self.stdin.take();
        if let Some(mut c) = self.child.take() {
            let _ = c.wait();
        }
    }

    /// Stops it (its data stays in `dir`).
    pub fn stop(&mut self) {
        self.stdin.take();
        let Some(mut c) = self.child.take() else {
            return;
        };
        let _ = c.wait();
        // The port is free once nothing answers on it.
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(5)
            && TcpStream::connect_timeout(&self.addr, Duration::from_millis(50)).is_ok()
        {
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts it again on the same port and data.
    pub fn restart(&mut self) -> std::io::Result<()> {
        self.stop();
        let again = RedisServer::start_on(&self.dir, self.addr.port())?;
        if !again.serves(&self.dir).unwrap_or(false) {
            again.abandon();
            return Err(std::io::Error::other(format!(
                "port {} was taken by another redis-server meanwhile",
                self.addr.port()
            )));
        }
        *self = again;
        Ok(())
    }

    /// Stops it and deletes its data: Redis lost everything.
    pub fn wipe(&mut self) -> std::io::Result<()> {
        self.stop();
        for e in std::fs::read_dir(&self.dir)? {
            let p = e?.path();
            if p.file_name().is_some_and(|n| n != "redis.log") {
                if p.is_dir() {
                    std::fs::remove_dir_all(&p)?;
                } else {
                    std::fs::remove_file(&p)?;
                }
            }
        }
        let again = RedisServer::start_on(&self.dir, self.addr.port())?;
        if !again.serves(&self.dir).unwrap_or(false) {
            again.abandon();
            return Err(std::io::Error::other(format!(
                "port {} was taken by another redis-server meanwhile",
                self.addr.port()
            )));
        }
        *self = again;
        Ok(())
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}
