//! Writes the generated config of N line items into a directory, and
//! optionally M users' audience events: `gen-config 10000 /tmp/cfg [1000000 /tmp/data]`.
//!
//! Its orders fly from 30 days before the day it runs to 365 days after:
//! the servers the scripts start on it (load, compare, soak, the
//! profile-guided build's training) run on the wall clock, and a fixed
//! flight would turn every bid into a no-bid once it ended.

use config::time::{Clock, Date, SystemClock};

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(1000);
    let dir = std::path::PathBuf::from(args.next().unwrap_or_else(|| "target/load-config".into()));
    std::fs::create_dir_all(&dir)?;
    let today = SystemClock.now().date().days_since_epoch();
    let start = Date::from_days_since_epoch(today - 30).to_string();
    let end = Date::from_days_since_epoch(today + 365).to_string();
    for (name, text) in benches::generated_config_flying(n, &start, &end) {
        std::fs::write(dir.join(name), text)?;
    }
    println!("{n} line items in {}", dir.display());
    if let (Some(users), Some(data)) = (
        args.next().and_then(|s| s.parse::<usize>().ok()),
        args.next(),
    ) {
        let data = std::path::PathBuf::from(data);
        std::fs::create_dir_all(&data)?;
        std::fs::write(data.join("events.jsonl"), benches::generated_events(users))?;
        println!("{users} users' events in {}", data.display());
    }
    Ok(())
}
