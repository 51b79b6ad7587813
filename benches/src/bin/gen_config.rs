//! Writes the generated config of N line items into a directory, for the
//! load script: `gen-config 1000 /tmp/cfg`.

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(1000);
    let dir = std::path::PathBuf::from(args.next().unwrap_or_else(|| "target/load-config".into()));
    std::fs::create_dir_all(&dir)?;
    for (name, text) in benches::generated_config(n) {
        std::fs::write(dir.join(name), text)?;
    }
    println!("{n} line items in {}", dir.display());
    Ok(())
}
