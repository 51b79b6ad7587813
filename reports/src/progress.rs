//! A progress bar on standard error, shown only on a terminal: a report
//! that must read raw events (or training that reads the journal) says how
//! far it is. Twenty lines instead of a dependency tree: CI builds from
//! scratch on two cores.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

pub struct Progress {
    label: String,
    total: u64,
    done: u64,
    last: Instant,
}

impl Progress {
    /// A bar over `total` units (bytes), if standard error is a terminal.
    pub fn start(label: &str, total: u64) -> Option<Progress> {
        (std::io::stderr().is_terminal() && total > 0).then(|| Progress {
            label: label.to_owned(),
            total,
            done: 0,
            last: Instant::now() - Duration::from_secs(1),
        })
    }

    pub fn advance(&mut self, n: u64) {
        self.done = (self.done + n).min(self.total);
        if self.last.elapsed() >= Duration::from_millis(100) {
            self.draw();
        }
    }

    fn draw(&mut self) {
        self.last = Instant::now();
        const WIDTH: u64 = 30;
        let filled = (self.done * WIDTH / self.total) as usize;
        let pct = self.done * 100 / self.total;
        let _ = write!(
            std::io::stderr(),
            "\r{} [{}{}] {pct:>3}%",
            self.label,
            "#".repeat(filled),
            " ".repeat(WIDTH as usize - filled)
        );
    }

    pub fn finish(mut self) {
        self.done = self.total;
        self.draw();
        let _ = writeln!(std::io::stderr());
    }
}
