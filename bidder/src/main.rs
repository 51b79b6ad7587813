//! The `bidder` binary: `serve`, `validate`, `simulate`, `report`, `train`
//! and `schema`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use bidder::{App, Settings};
use clap::{Parser, Subcommand};
use config::SystemClock;

#[derive(Parser)]
#[command(name = "bidder", version, about = "OpenRTB 2.5/2.6 DSP bidder")]
struct Cli {
    /// Log lines on standard error: `text` for people, `json` for a log
    /// collector (one object a line: timestamp, level, target, message and
    /// the event's fields). RUST_LOG filters both.
    #[arg(long, global = true, value_enum, env = "BIDDER_LOG_FORMAT", default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Serve bid requests on the bid port, probes and metrics on the admin port.
    Serve(Box<ServeArgs>),
    /// Check a config directory without serving: exit 0 when valid, 1 with
    /// every problem as file:line:column: reason otherwise.
    Validate {
        /// Directory whose *.yaml files make up the config.
        #[arg(long)]
        config: PathBuf,
        /// A state directory (serve's --state or --journal): also checks
        /// the rules that depend on what was spent, as a start on it
        /// would (a line item's budget type never changes once it has
        /// spent). Only read, also while a bidder runs on it.
        #[arg(long)]
        state: Option<PathBuf>,
        /// The Redis replicas share (redis://… or rediss://…; password in
        /// BIDDER_REDIS_PASSWORD): the budget types every replica spent
        /// under, read only, as a start reads them.
        #[arg(long)]
        redis: Option<String>,
        #[arg(long, default_value = "bidder:")]
        redis_prefix: String,
    },
    /// Replay traffic against the real pipeline on a simulated clock with
    /// simulated wins, and print per hour and line item: spend, plan,
    /// pacing error, utilisation and overspend.
    Simulate(SimulateArgs),
    /// What was bought and what it earned, from the state directory: bids,
    /// wins, impressions, clicks, CTR, spend, eCPM, CPC, detail page views,
    /// purchases, sales, ACOS, ROAS and over-delivery, cut by the
    /// dimensions of --by. Money in USD; spend is the ledger's, to the micro.
    Report(ReportArgs),
    /// Train the click and conversion model that max_cpc and target_cpa
    /// line items bid with, from the event journal's tracked impressions
    /// (with the features their bids were priced with), clicks and
    /// attributed purchases; written atomically to --out, for `serve
    /// --model`.
    Train(TrainArgs),
    /// Money state shared by replicas.
    Ledger {
        #[command(subcommand)]
        command: LedgerCommand,
    },
    /// Print the JSON Schema (draft-07) of the config files, for editors:
    /// completion and checks as account managers type.
    Schema {
        /// Only the files of this kind; default: any of the three.
        #[arg(long, value_enum)]
        kind: Option<SchemaKind>,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum SchemaKind {
    Advertiser,
    Exchange,
    #[value(name = "currency_rates")]
    CurrencyRates,
}

#[derive(clap::Args)]
struct ReportArgs {
    /// The config directory: budgets and pacing plans for the delivery
    /// section (the HTML page's charts).
    #[arg(long)]
    config: PathBuf,
    /// The serving bidder's state directory (it may be running).
    #[arg(long, default_value = "bidder-state")]
    state: PathBuf,
    /// First UTC day, YYYY-MM-DD (default: six days before --to).
    #[arg(long)]
    from: Option<String>,
    /// Last UTC day, YYYY-MM-DD (default: today).
    #[arg(long)]
    to: Option<String>,
    /// Dimensions, comma separated: day, advertiser, order, line_item,
    /// creative, exchange, keyword (the search-term report), audience (the
    /// audience that made the line item eligible, as kind:id), product (the
    /// product report).
    #[arg(long, default_value = "day")]
    by: String,
    #[arg(long, value_enum, default_value = "table")]
    format: ReportFormat,
    /// Write the report to this file instead of standard output.
    #[arg(long, short)]
    out: Option<PathBuf>,
}

#[derive(clap::Args)]
struct TrainArgs {
    /// The serving bidder's state directory (it may be running).
    #[arg(long, default_value = "bidder-state")]
    state: PathBuf,
    /// The model file to write (replaced atomically).
    #[arg(long)]
    out: PathBuf,
    /// First UTC day, YYYY-MM-DD (default: the first in the journal).
    #[arg(long)]
    from: Option<String>,
    /// Last UTC day, YYYY-MM-DD (default: the last in the journal).
    #[arg(long)]
    to: Option<String>,
    /// log2 of the weights per head, 16..=24 (default 20: an 8 MiB model).
    #[arg(long)]
    bits: Option<u8>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum ReportFormat {
    Table,
    Csv,
    Json,
    Html,
}

#[derive(clap::Args)]
struct SimulateArgs {
    #[arg(long)]
    config: PathBuf,
    /// Bid requests to send in turn: a JSON lines file (one request a line).
    #[arg(long, conflicts_with = "qps")]
    traffic: Option<PathBuf>,
    /// Requests per simulated second.
    #[arg(long, default_value_t = 1.0)]
    qps: f64,
    #[arg(long, default_value_t = 24)]
    hours: u32,
    /// Simulated start, RFC 3339 (default: the earliest flight start).
    #[arg(long)]
    start: Option<String>,
    /// Audience event files (*.jsonl) to load, as `serve --data` does;
    /// synthesised traffic uses their users for behavioural audiences.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Share of bids won.
    #[arg(long, default_value_t = 0.3)]
    win_rate: f64,
    /// Share of wins whose notice comes only after the bid's reservation
    /// expired (90 s after the bid).
    #[arg(long, default_value_t = 0.0)]
    late_wins: f64,
    /// Share of lost bids whose loss notice the exchange sends.
    #[arg(long, default_value_t = 1.0)]
    loss_notices: f64,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Where the traffic and its outcomes come from: `replay` (the default:
    /// --traffic or requests synthesised from the config, won at
    /// --win-rate) or `synthetic` (a world with known click and conversion
    /// rates and log-normal competing bids per exchange, in first-price
    /// auctions; see the README). The synthetic world ignores --traffic,
    /// --win-rate, --late-wins and --loss-notices.
    #[arg(long, value_enum, default_value_t = WorldKind::Replay)]
    world: WorldKind,
    /// A click and conversion model file for value-based line items, as
    /// `serve --model` takes (none: the priors).
    #[arg(long)]
    model: Option<PathBuf>,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum WorldKind {
    Replay,
    Synthetic,
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Directory whose *.yaml files make up the config.
    #[arg(long)]
    config: PathBuf,
    /// Directory of audience event files (*.jsonl).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Bid port: exchanges POST /openrtb2/bid here. Listening on all
    /// addresses (0.0.0.0, ::) needs --public-url: notice URLs must name an
    /// address exchanges can reach.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Admin port: /healthz, /readyz, /metrics, POST /v1/config/reload.
    #[arg(long, default_value = "127.0.0.1:9090")]
    admin_listen: SocketAddr,
    /// Bodies larger than this are refused with 413.
    #[arg(long, default_value_t = 1024 * 1024)]
    max_body_bytes: usize,
    /// What bid request bodies still being read may hold together, in
    /// bytes; past it a body is not read (a no-bid, `busy`): many
    /// connections each trickling a large body must not take the pod's
    /// memory.
    #[arg(long, env = "BIDDER_MAX_BODY_MEMORY", default_value_t = 128 << 20)]
    max_body_memory: usize,
    /// Milliseconds taken off tmax for the way back to the exchange.
    #[arg(long, default_value_t = 10)]
    tmax_margin_ms: u64,
    /// Deadline in milliseconds for requests without tmax.
    #[arg(long, default_value_t = 200)]
    default_tmax_ms: u64,
    /// URL at which exchanges reach the bid port, for win and billing
    /// notices (default: http://<listen address>).
    #[arg(long)]
    public_url: Option<String>,
    /// The https page telling users about this buyer's targeting: Native
    /// 1.2 slots that show a buyer's privacy link (`privacy: 1`) get it in
    /// the ad's `privacy`; without it they show the exchange's.
    #[arg(long, env = "BIDDER_PRIVACY_URL")]
    privacy_url: Option<String>,
    /// Bearer token that POST /v1/audience-events requires; without one,
    /// uploads are refused.
    #[arg(long, env = "BIDDER_AUDIENCE_TOKEN", hide_env_values = true)]
    audience_token: Option<String>,
    /// Our vendor id in the IAB Global Vendor List: under GDPR, behavioural
    /// audiences need a TCF consent string that consents to it. Without
    /// one, GDPR traffic is bought on context only.
    #[arg(long, env = "BIDDER_TCF_VENDOR_ID", default_value_t = 0)]
    tcf_vendor_id: u16,
    /// Deprecated: a secret on the command line shows in the process list.
    /// Use --notice-secret-file or BIDDER_NOTICE_SECRET.
    #[arg(long, hide = true, conflicts_with = "notice_secret_file")]
    notice_secret: Option<String>,
    /// A file whose content (trailing newline aside) is the key of the HMAC
    /// that signs notice URLs, at least 32 bytes, e.g. a mounted Kubernetes
    /// secret; or the environment's BIDDER_NOTICE_SECRET. Every replica
    /// must share it. Without either, a random one is made once and kept in
    /// the state directory (notice.secret, mode 0600).
    #[arg(long, env = "BIDDER_NOTICE_SECRET_FILE")]
    notice_secret_file: Option<PathBuf>,
    /// A file holding the bearer token every /v1/* endpoint of the admin
    /// port requires (or the environment's BIDDER_ADMIN_TOKEN). Without
    /// one, those endpoints answer 403.
    #[arg(long, env = "BIDDER_ADMIN_TOKEN_FILE")]
    admin_token_file: Option<PathBuf>,
    /// Hours a notice URL stays valid after its bid.
    #[arg(long, default_value_t = 24)]
    notice_ttl_hours: u64,
    /// How notice and tracking URLs are signed: `per-url` (one HMAC-SHA256
    /// each, as earlier versions) or `per-bid` (one SipHash of the bid id,
    /// under a key derived from the secret, keys a SipHash per URL: cheaper,
    /// most of all for VAST). Both are always read. `auto`: `per-url`, then
    /// `per-bid` once every reader has read both for
    /// `--url-signatures-soak-secs` (alone: this process's uptime; with
    /// `--state redis://…`: every replica under the prefix, as their
    /// heartbeats say). Builds before a2c5756 refuse today's `per-bid`
    /// URLs: a rollback to one after the soak loses the wins of the
    /// `per-bid` URLs still out (see the README).
    #[arg(
        long,
        value_enum,
        env = "BIDDER_URL_SIGNATURES",
        default_value = "auto"
    )]
    url_signatures: bidder::notice::UrlSignatures,
    /// Under `--url-signatures auto`, how long every reader must have read
    /// `per-bid` URLs before they are written: a rollback within it finds
    /// none.
    #[arg(long, env = "BIDDER_URL_SIGNATURES_SOAK_SECS", default_value_t = 3600)]
    url_signatures_soak_secs: u64,
    /// Seconds a bid holds its cost against its budgets while no win or
    /// loss notice comes.
    #[arg(long, default_value_t = 60)]
    reservation_ttl_secs: u64,
    /// Bids tracked at most (held, being charged, lost or awaited past
    /// their reservation), about 170 bytes each; past this a bid is not
    /// made (no-bid reason `state_unavailable`), budgeted or not.
    /// Unbounded by default: the table then holds every bid of the last
    /// reservation TTL.
    #[arg(long, env = "BIDDER_MAX_BIDS_IN_FLIGHT", value_parser = clap::value_parser!(u64).range(1..))]
    max_bids_in_flight: Option<u64>,
    /// Frequency windows kept at most (one per user and capped line item
    /// within its window, about 90 bytes each); past this a bid that would
    /// count a new user under a cap is not made (no-bid reason
    /// `state_unavailable`). With Redis, the replica's own windows for its
    /// bids in flight, beside those in Redis.
    #[arg(long, env = "BIDDER_MAX_FREQUENCY_WINDOWS", default_value_t = 4_000_000, value_parser = clap::value_parser!(u64).range(1..))]
    max_frequency_windows: u64,
    /// Open connections per port at most; more wait until one closes.
    #[arg(long, default_value_t = 4096, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    max_connections: u64,
    /// Seconds a client has to send a request's headers.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    header_timeout_secs: u64,
    /// Seconds an admin request's body (explain, audience uploads) may take
    /// to arrive; a bid body has the request's tmax at most.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    body_timeout_secs: u64,
    /// Seconds a keep-alive connection may sit idle between requests (the
    /// header timeout also bounds that wait: the shorter applies).
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=86400))]
    idle_timeout_secs: u64,
    /// Imps of one request that one line item may bid on.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=1000))]
    max_bids_per_line_item: u64,
    /// Networks of the proxies in front of the bid port (a load balancer,
    /// an ingress), comma separated, like 10.0.0.0/8: behind one of them
    /// a request comes from the last X-Forwarded-For address that is not
    /// one of them, which is what exchange profiles' allow_from checks.
    #[arg(long, env = "BIDDER_TRUSTED_PROXIES", value_delimiter = ',')]
    trusted_proxies: Vec<ipnet::IpNet>,
    /// Currency rates whose as_of is more days ago than this, or more days
    /// ahead, price nothing (requests that need them get no bid, reason
    /// currency). A rates file's own max_age_days applies instead, with a
    /// warning at each load where it is longer.
    #[arg(long, default_value_t = 7, value_parser = clap::value_parser!(u32).range(1..=3650))]
    max_rates_age_days: u32,
    /// Tracking (bid, event) pairs remembered to count each event once,
    /// about 10-18 bytes each; past it the oldest two hours are forgotten
    /// early (bidder_tracking_dedupe_evicted_total).
    #[arg(long, env = "BIDDER_MAX_TRACKED_EVENTS", default_value_t = 8_000_000, value_parser = clap::value_parser!(u64).range(1000..=1_000_000_000))]
    max_tracked_events: u64,
    /// Touches (up to four clicks and four impressions per shopper and
    /// advertiser) and counted conversions kept for attribution, at most
    /// about 300 bytes each (a shopper's repeated ad is held once); past it
    /// those too old for any window go first, then a tenth at random
    /// (bidder_attribution_evicted_total).
    #[arg(long, env = "BIDDER_MAX_ATTRIBUTION_ENTRIES", default_value_t = 4_000_000, value_parser = clap::value_parser!(u64).range(1000..=1_000_000_000))]
    max_attribution_entries: u64,
    /// Days of report history kept: event days and compacted charge
    /// generations older than this are removed (at start, then hourly).
    /// At least 98 are kept: attribution windows reach 90 days back from
    /// a conversion uploaded up to 7 days late, and the journal's touches
    /// and counted orders with them (91 to 97, taken by earlier versions,
    /// still start, as 98). Reports cover at most 400 days.
    #[arg(long, default_value_t = 400, value_parser = clap::value_parser!(u32).range(91..=3650))]
    report_retention_days: u32,
    /// Advertiser pixel events one client address may record a minute (0:
    /// no limit). Behind a load balancer every call comes from its
    /// address: raise this, or set 0 and rely on the per-user limit.
    #[arg(long, default_value_t = 6_000)]
    pixel_events_per_ip_per_minute: u32,
    /// Click and conversion model (`bidder train --out`) that max_cpc and
    /// target_cpa line items are priced with; read at start and on each
    /// reload. Missing or corrupt: the priors, with a warning.
    #[arg(long)]
    model: Option<PathBuf>,
    /// Seconds between a SIGTERM and closing the ports: `/readyz` answers
    /// 503 meanwhile, and requests are still served (keep it under the
    /// pod's termination grace period).
    #[arg(long, default_value_t = 5)]
    drain_secs: u64,
    /// Seconds between looks at the config files, to reload when they
    /// change (a Kubernetes ConfigMap update swaps them); 0: only SIGHUP and
    /// the reload endpoint reload.
    #[arg(long, default_value_t = 2)]
    config_poll_secs: u64,
    /// Members of all list audiences together at most (8 bytes each): a
    /// batch that would pass it is refused whole.
    #[arg(long, env = "BIDDER_MAX_LIST_MEMBERS", default_value_t = audiences::DEFAULT_MAX_MEMBERS)]
    max_list_members: usize,
    /// Shoppers the audience store holds at most (views, purchases and
    /// interests from --data, uploads and the pixel; some 115 bytes each
    /// with a few events). Anyone with a synced cookie can add one through
    /// the pixel: past this, a new shopper takes the place of the least
    /// recently active ones (bidder_audience_users_evicted_total), so that
    /// whoever fills the store first cannot keep it.
    #[arg(long, env = "BIDDER_MAX_AUDIENCE_USERS", default_value_t = audiences::DEFAULT_MAX_USERS as u64, value_parser = clap::value_parser!(u64).range(1..))]
    max_audience_users: u64,
    /// Events the audience store holds at most, 8 bytes each (a shopper
    /// keeps up to 1,024): past it, shoppers are dropped as past
    /// --max-audience-users, so made-up shoppers each filled toward the
    /// cap cannot take the pod's memory. Default: 16 per shopper of
    /// --max-audience-users (32,000,000 at its default).
    #[arg(long, env = "BIDDER_MAX_AUDIENCE_EVENTS", value_parser = clap::value_parser!(u64).range(1..))]
    max_audience_events: Option<u64>,
    /// Bytes the saved shopper events (STATE/audience-events, read back at
    /// start: some 127 bytes an event, about 150 MB a second) may hold
    /// together. The pixel writes there for anyone with a synced cookie:
    /// past this the oldest days are removed early, and pixel events that
    /// still do not fit are applied but not saved for a restart (uploads
    /// are saved all the same, up to twice this).
    #[arg(long, env = "BIDDER_MAX_AUDIENCE_LOG_BYTES", default_value_t = bidder::audience_log::DEFAULT_MAX_BYTES, value_parser = clap::value_parser!(u64).range(1..))]
    max_audience_log_bytes: u64,
    /// Where money state lives. A directory (the default): the embedded
    /// ledger, with the charge journal and its checkpoint (and the notice
    /// secret when none is given); spend is replayed from it at start and
    /// every charge is on disk before its notice is acknowledged. Or
    /// `redis://host:port[/db]` / `rediss://…`: replicas share budgets,
    /// charges and frequency caps in Redis (password in
    /// BIDDER_REDIS_PASSWORD, user in BIDDER_REDIS_USERNAME), and each keeps
    /// its own journal in --journal.
    #[arg(long, default_value = "bidder-state")]
    state: String,
    /// With --state redis://…: this replica's journal directory (its
    /// charges, its name, the state's epoch). Each replica needs its own,
    /// kept across restarts.
    #[arg(long)]
    journal: Option<PathBuf>,
    /// With --state redis://…: the prefix of every Redis key (deployments
    /// sharing one Redis use different ones).
    #[arg(long, default_value = "bidder:")]
    redis_prefix: String,
    /// The directory resolved from --state and --journal.
    #[arg(skip)]
    dir: PathBuf,
}

#[derive(Subcommand)]
enum LedgerCommand {
    /// Rebuild Redis's spend counters from every replica's journal (after
    /// Redis lost data), and report each difference. Replicas keep budgeted
    /// line items off while Redis has lost its data, and bid again once
    /// this has run.
    Reconcile {
        /// The Redis the replicas share (redis://… or rediss://…).
        #[arg(long)]
        state: String,
        /// A replica's journal directory; give every replica's.
        #[arg(long, required = true, num_args = 1..)]
        journal: Vec<PathBuf>,
        /// Report the differences, change nothing.
        #[arg(long)]
        dry_run: bool,
        /// A replica Redis knows whose journal is lost: rebuilt without it
        /// (its spend is then missing from the counters). Without this, a
        /// replica Redis knows and no --journal names is refused.
        #[arg(long)]
        without: Vec<String>,
        #[arg(long, default_value = "bidder:")]
        redis_prefix: String,
    },
}

fn is_redis(state: &str) -> bool {
    let s = state.to_ascii_lowercase();
    s.starts_with("redis://") || s.starts_with("rediss://")
}

fn redis_info(url: &str) -> anyhow::Result<shared::ConnectionInfo> {
    shared::connection_info(
        url,
        std::env::var("BIDDER_REDIS_USERNAME").ok(),
        std::env::var("BIDDER_REDIS_PASSWORD").ok(),
    )
    .map_err(anyhow::Error::msg)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    match cli.command {
        Command::Validate {
            config,
            state,
            redis,
            redis_prefix,
        } => validate(
            &config,
            state.as_deref(),
            redis.as_deref().map(|r| (r, redis_prefix.as_str())),
        ),
        Command::Schema { kind } => schema(kind),
        Command::Simulate(args) => match simulate(args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("bidder: {e:#}");
                ExitCode::FAILURE
            }
        },
        Command::Report(args) => match report(args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("bidder: {e:#}");
                ExitCode::FAILURE
            }
        },
        Command::Train(args) => match train(args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("bidder: {e:#}");
                ExitCode::FAILURE
            }
        },
        Command::Ledger {
            command:
                LedgerCommand::Reconcile {
                    state,
                    journal,
                    dry_run,
                    without,
                    redis_prefix,
                },
        } => match reconcile(&state, &journal, dry_run, &without, &redis_prefix) {
            Ok(true) => ExitCode::SUCCESS,
            // Differences found in a dry run: exit 2, so scripts can tell.
            Ok(false) => ExitCode::from(2),
            Err(e) => {
                eprintln!("bidder: {e:#}");
                ExitCode::FAILURE
            }
        },
        Command::Serve(args) => match serve(*args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("bidder: {e:#}");
                ExitCode::FAILURE
            }
        },
    }
}

fn init_logging(format: LogFormat) {
    // RUST_LOG takes `info` or `bidder=debug,info`-style targets; a bad
    // value falls back to info rather than silencing the logs.
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|s| s.parse::<tracing_subscriber::filter::Targets>().ok())
        .unwrap_or_else(|| {
            tracing_subscriber::filter::Targets::new().with_default(tracing::Level::INFO)
        });
    use std::io::IsTerminal as _;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    // A log line that cannot be written (a full disk under the log file,
    // a reader gone from the pipe) is lost, not reported: the report is an
    // eprintln!, which panics when stderr fails, and the panic ended
    // whichever thread was logging, the charge journal's writer among them.
    let fmt = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .log_internal_errors(false);
    let _ = match format {
        LogFormat::Text => fmt
            .with_ansi(std::io::stderr().is_terminal())
            .finish()
            .with(filter)
            .try_init(),
        // The event's fields beside `message` at the top level, as log
        // collectors index them (not nested under `fields`).
        LogFormat::Json => fmt
            .json()
            .flatten_event(true)
            .with_ansi(false)
            .finish()
            .with(filter)
            .try_init(),
    };
}

fn validate(
    dir: &std::path::Path,
    state: Option<&std::path::Path>,
    redis: Option<(&str, &str)>,
) -> ExitCode {
    match config::load_dir(dir) {
        Ok(config) => {
            if state.is_some() || redis.is_some() {
                let problems = match spent_problems(&config, state, redis) {
                    Ok(p) => p,
                    Err(e) => {
                        eprintln!("bidder: {e:#}");
                        return ExitCode::FAILURE;
                    }
                };
                if !problems.is_empty() {
                    for p in &problems {
                        println!("{p}");
                    }
                    let on: Vec<String> = state
                        .map(|s| s.display().to_string())
                        .into_iter()
                        .chain(redis.map(|(url, _)| url.to_string()))
                        .collect();
                    eprintln!(
                        "{}: invalid on {}: {} problem{}",
                        dir.display(),
                        on.join(" and "),
                        problems.len(),
                        if problems.len() == 1 { "" } else { "s" }
                    );
                    return ExitCode::FAILURE;
                }
            }
            let today = config::Clock::now(&config::SystemClock).date();
            for why in bidder::app::config_warnings(&config, today, &bidder::Settings::default()) {
                eprintln!("warning: {why}");
            }
            println!("{}: valid: {}", dir.display(), config.summary());
            ExitCode::SUCCESS
        }
        Err(problems) => {
            for p in &problems.0 {
                println!("{p}");
            }
            eprintln!(
                "{}: invalid: {} problem{}",
                dir.display(),
                problems.0.len(),
                if problems.0.len() == 1 { "" } else { "s" }
            );
            ExitCode::FAILURE
        }
    }
}

/// The rules a start would apply to `config` on top of its own, given
/// what was spent (read from a state directory, from Redis, or both):
/// what a restarted pod would refuse, found before it is.
fn spent_problems(
    config: &config::Config,
    state: Option<&std::path::Path>,
    redis: Option<(&str, &str)>,
) -> anyhow::Result<Vec<config::Problem>> {
    let mut kinds = match state {
        Some(state) => state_kinds(state)?,
        None => Default::default(),
    };
    if let Some((url, prefix)) = redis {
        let ids: Vec<&str> = config.line_items().map(|li| li.id.as_str()).collect();
        let read = shared::budget_kinds(redis_info(url)?, prefix, &ids)
            .map_err(|e| anyhow::anyhow!("--redis {url}: {e}"))?;
        match read {
            Some(read) => kinds.extend(read),
            None => eprintln!(
                "warning: --redis {url}: no bidder state under the prefix {prefix:?}: nothing \
                 spent there to check against (a first rollout, or check --redis-prefix)"
            ),
        }
    }
    // The record of the budgets last served: what a start on `state`
    // compares with (as a reload compares with the config in memory).
    let served = match state.map(bidder::served::Served::read) {
        Some(Ok(served)) => Some(served),
        Some(Err(e)) => {
            eprintln!("bidder: {e}; budget changes are checked without it, as a start on it would");
            None
        }
        None => None,
    };
    let now = config::Clock::now(&SystemClock);
    Ok(bidder::changes::budget_changes(
        None,
        served.as_ref(),
        config,
        now,
        &|id| kinds.get(id).copied(),
    ))
}

/// The budget types spent under that a start on `state` would know, read
/// from the checkpoint and journal without their lock, whether a bidder
/// runs on the directory or not.
fn state_kinds(
    state: &std::path::Path,
) -> anyhow::Result<std::collections::HashMap<String, ledger::BudgetKind>> {
    anyhow::ensure!(
        !is_redis(&state.to_string_lossy()),
        "--state {}: give the state directory (with Redis, the --journal one)",
        state.display()
    );
    anyhow::ensure!(
        state.is_dir(),
        "--state {}: no such directory",
        state.display()
    );
    let mut kinds = match ledger::journal::budget_kinds(state)? {
        Some(kinds) => kinds,
        // A first rollout's directory: nothing spent yet, nothing to check.
        None if std::fs::read_dir(state)
            .with_context(|| format!("reading {}", state.display()))?
            .next()
            .is_none() =>
        {
            eprintln!(
                "bidder: --state {}: empty, no bidder has run on it yet",
                state.display()
            );
            Default::default()
        }
        // Files, but none of a bidder's state: a wrong path is no proof that
        // nothing was spent.
        None => anyhow::bail!(
            "--state {}: no ledger.checkpoint and no charges.journal there; \
             give the directory a bidder runs on (serve's --state, or --journal with Redis)",
            state.display()
        ),
    };
    // With Redis, a line item may have spent on other replicas only: the
    // copies of their journals kept for reports (`peers/<replica>/`) say so.
    let peers = state.join(reports::log::PEERS);
    if let Ok(dirs) = std::fs::read_dir(&peers) {
        for dir in dirs.flatten().filter(|d| d.path().is_dir()) {
            let dir = dir.path();
            let generations = ledger::journal::generations(&dir)
                .with_context(|| format!("reading {}", dir.display()))?;
            ledger::journal::generation_kinds(&generations, &mut kinds)?;
        }
    }
    Ok(kinds)
}

fn schema(kind: Option<SchemaKind>) -> ExitCode {
    use std::io::Write as _;
    let schema = match kind {
        None => config::json_schema(),
        Some(kind) => config::json_schema_of(match kind {
            SchemaKind::Advertiser => config::FileKind::Advertiser,
            SchemaKind::Exchange => config::FileKind::Exchange,
            SchemaKind::CurrencyRates => config::FileKind::CurrencyRates,
        }),
    };
    let text = serde_json::to_string_pretty(&schema).expect("a JSON value always serializes");
    // Not println!: a closed pipe (`| head`) is an error to report, not a panic.
    match writeln!(std::io::stdout().lock(), "{text}") {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bidder: cannot write the schema: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The longest simulation: a leap year of hours. Past it a typo runs for
/// ever, long after every flight ended.
const MAX_SIMULATED_HOURS: u32 = 366 * 24;

fn simulate(args: SimulateArgs) -> anyhow::Result<()> {
    let config = load_config(&args.config, config::Secrets::Skipped)?;
    let start = match &args.start {
        Some(s) => config::Timestamp::parse_rfc3339(s)
            .map_err(|e| anyhow::anyhow!("--start {s:?}: {e}"))?,
        None => config
            .advertisers
            .iter()
            .flat_map(|a| &a.orders)
            .map(|o| o.flight.start.start())
            .min()
            .ok_or_else(|| anyhow::anyhow!("the config has no orders"))?,
    };
    let traffic: Vec<Vec<u8>> = match &args.traffic {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("reading {}", path.display()))?
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| l.as_bytes().to_vec())
            .collect(),
        None => Vec::new(),
    };
    // An empty file would fall back on synthesised requests, a run of
    // other traffic than the one asked for.
    if let (Some(path), true) = (&args.traffic, traffic.is_empty()) {
        anyhow::bail!("--traffic {}: no request in it", path.display());
    }
    anyhow::ensure!(
        config.line_items().next().is_some(),
        "the config has no line items: there is nothing to simulate"
    );
    anyhow::ensure!(
        (1..=MAX_SIMULATED_HOURS).contains(&args.hours),
        "--hours {}: give 1 to {MAX_SIMULATED_HOURS} (a leap year)",
        args.hours
    );
    for (name, v) in [
        ("--win-rate", args.win_rate),
        ("--late-wins", args.late_wins),
        ("--loss-notices", args.loss_notices),
    ] {
        anyhow::ensure!(
            (0.0..=1.0).contains(&v),
            "{name} {v}: give a share from 0 to 1"
        );
    }
    anyhow::ensure!(
        args.qps > 0.0 && args.qps <= 10_000.0,
        "--qps {}: give a rate above 0 and at most 10000",
        args.qps
    );
    let store = audiences::Store::new();
    store.set_retention_days(bidder::app::retention_days(&config));
    let mut users = Vec::new();
    if let Some(dir) = &args.data {
        load_data(&store, dir, start)?;
        users = bidder::traffic::users_in_dir(dir)
            .with_context(|| format!("reading users from {}", dir.display()))?;
    }
    let opts = bidder::simulate::Options {
        start,
        hours: args.hours,
        qps: if args.traffic.is_some() {
            1.0
        } else {
            args.qps
        },
        traffic,
        users,
        win_rate: args.win_rate,
        late_wins: args.late_wins,
        loss_notices: args.loss_notices,
        seed: args.seed,
        model_path: args.model.clone(),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    if args.world == WorldKind::Synthetic {
        let report = runtime.block_on(bidder::simulate::run_world(config, store, &opts));
        print!("{}", report.pacing.table());
        print!("{}", report.table());
        return Ok(());
    }
    let report = runtime.block_on(bidder::simulate::run(config, store, &opts));
    print!("{}", report.table());
    Ok(())
}

/// The config directory loaded, or every problem on standard error and an
/// error saying how many. `Secrets::Skipped` for the commands that decrypt
/// no price (report, simulate): who reads reports or plans a budget needs
/// no exchange's keys in their environment.
fn load_config(dir: &std::path::Path, secrets: config::Secrets) -> anyhow::Result<config::Config> {
    config::load_dir_with(dir, secrets).or_else(|problems| {
        for p in &problems.0 {
            eprintln!("{p}");
        }
        anyhow::bail!(
            "config in {} refused: {} problem(s)",
            dir.display(),
            problems.0.len()
        )
    })
}

fn train(args: TrainArgs) -> anyhow::Result<()> {
    use std::io::Write as _;
    let day = |flag: &str, v: &Option<String>| {
        v.as_deref()
            .map(|t| bidder::train::parse_day(flag, t))
            .transpose()
            .map_err(anyhow::Error::msg)
    };
    out_beside_state(&args.out, &args.state)?;
    let opts = bidder::train::Options {
        state: args.state,
        out: args.out,
        from: day("from", &args.from)?,
        to: day("to", &args.to)?,
        bits: args.bits,
        progress: true,
    };
    let summary = bidder::train::run(&opts)?;
    // Not println!: a closed pipe is an error to report, not a panic.
    writeln!(
        std::io::stdout().lock(),
        "{summary}model written to {}",
        opts.out.display()
    )?;
    Ok(())
}

/// Refuses an `--out` that is, or leads to, one of the bidder's own files
/// in the state directory (a report written over `charges.journal`
/// replaced the charges with a table): anything in its subdirectories
/// (events, audience events, lists, peers' copies) and the names it keeps
/// at its top. A file of one's own there (`STATE/model.bin`) is let be.
fn out_beside_state(out: &std::path::Path, state: &std::path::Path) -> anyhow::Result<()> {
    let Ok(state) = state.canonicalize() else {
        return Ok(());
    };
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => std::path::Path::new("."),
    };
    // Where it leads, when it is there (a link from outside is written
    // through), else where it would be made.
    let target = out.canonicalize().ok().or_else(|| {
        let name = out.file_name()?;
        Some(parent.canonicalize().ok()?.join(name))
    });
    let own = |rel: &std::path::Path| {
        let name = rel.to_string_lossy();
        rel.components().count() != 1
            || STATE_NAMES.contains(&&*name)
            || STATE_PREFIXES.iter().any(|p| name.starts_with(p))
    };
    // A hard link elsewhere to one of them is the same file under another
    // name (reports probe: `--out` a link to `charges.journal` wrote the
    // report over the charges).
    let mut linked = Vec::new();
    if let Ok(m) = std::fs::metadata(out) {
        linked_in(&state, &m, 3, &mut linked);
    }
    // Every name it has there: a link of one's own beside the journal is
    // still the journal (review finding: the first name found decided).
    if let Some(linked) = linked
        .iter()
        .find(|p| p.strip_prefix(&state).is_ok_and(own))
    {
        anyhow::bail!(
            "--out {}: the same file as {}, one of the bidder's own files in the state \
             directory; write it elsewhere",
            out.display(),
            linked.display()
        );
    }
    let Some(rel) = target.as_deref().and_then(|t| t.strip_prefix(&state).ok()) else {
        return Ok(());
    };
    if own(rel) {
        anyhow::bail!(
            "--out {}: one of the bidder's own files in the state directory {}; write it elsewhere",
            out.display(),
            state.display()
        );
    }
    Ok(())
}

/// The files in `dir`, and in its subdirectories `depth` deep, that are
/// the file `meta` describes (the same inode on the same device), into
/// `out`.
fn linked_in(
    dir: &std::path::Path,
    meta: &std::fs::Metadata,
    depth: u32,
    out: &mut Vec<std::path::PathBuf>,
) {
    use std::os::unix::fs::MetadataExt as _;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        // Not followed: a link in the state directory is not its file.
        let Ok(m) = entry.path().symlink_metadata() else {
            continue;
        };
        if m.is_dir() && depth > 0 {
            linked_in(&entry.path(), meta, depth - 1, out);
        } else if m.is_file() && m.dev() == meta.dev() && m.ino() == meta.ino() {
            out.push(entry.path());
        }
    }
}

/// The files a bidder keeps at the top of its state directory.
const STATE_NAMES: &[&str] = &[
    "LOCK",
    "served-budgets.json",
    "notice-ttl",
    "replica.name",
    "awaiting.jsonl",
];
/// ... and the beginnings of the others' names (journal generations,
/// checkpoints, the frequency file, the notice secret).
const STATE_PREFIXES: &[&str] = &["charges", "ledger", "frequency", "notice", "holds"];

fn report(args: ReportArgs) -> anyhow::Result<()> {
    use reports::render::Format;
    let config = load_config(&args.config, config::Secrets::Skipped)?;
    if !args.state.is_dir() {
        anyhow::bail!("{}: no such state directory", args.state.display());
    }
    if let Some(out) = &args.out {
        out_beside_state(out, &args.state)?;
    }
    // Spend is read from the charge journal: one missing or unreadable
    // would show every line item at 0.00 beside its impressions and
    // sales, a campaign bought for nothing.
    let ledger_files = ledger::journal::check_state(&args.state)
        .map_err(|e| anyhow::anyhow!("{e}; the report's spend cannot be read"))?;
    let events = reports::log::dir_of(&args.state);
    let has_events = std::fs::read_dir(&events).is_ok_and(|d| {
        d.flatten()
            .any(|e| e.file_name().to_string_lossy().ends_with(".events"))
    });
    if !ledger_files && has_events {
        anyhow::bail!(
            "{}: events are there but no charge journal (charges.journal) nor checkpoint: \
             the spend of this state is unknown (restore the state directory from a backup)",
            args.state.display()
        );
    }
    let now = config::Clock::now(&SystemClock);
    // The same parameter rules as GET /v1/reports, through its query
    // syntax: each value encoded, so an `&`, `+` or `%` in an argument is
    // part of it: `--by 'day&from=…'` is an unknown dimension, not a date.
    let enc = |v: &str| {
        percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC).to_string()
    };
    let mut query = format!("by={}", enc(&args.by));
    for (k, v) in [("from", &args.from), ("to", &args.to)] {
        if let Some(v) = v {
            query.push_str(&format!("&{k}={}", enc(v)));
        }
    }
    let format = match args.format {
        ReportFormat::Table => Format::Table,
        ReportFormat::Csv => Format::Csv,
        ReportFormat::Json => Format::Json,
        ReportFormat::Html => Format::Html,
    };
    let (q, _) =
        bidder::reporting::parse_params(&query, now.date(), 7, &[reports::Dim::Day], format)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    let src = reports::query::Sources {
        state: &args.state,
        config: Some(&config),
        now,
        progress: true,
    };
    let report = reports::query::run(&q, &src)?;
    let text = reports::render::render(&report, format);
    match &args.out {
        Some(path) => {
            std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?
        }
        None => {
            use std::io::Write as _;
            std::io::stdout().write_all(text.as_bytes())?;
        }
    }
    Ok(())
}

/// Loads `--data` into `store`. A bad line stops the start; an event that
/// could never match (an id past what requests and configs carry, which
/// versions before those limits took) is skipped, with a warning naming
/// the first few.
fn load_data(
    store: &audiences::Store,
    dir: &std::path::Path,
    now: config::Timestamp,
) -> anyhow::Result<()> {
    let loaded = store
        .append_dir(dir, now)
        .with_context(|| format!("loading audience data from {}", dir.display()))?;
    let skipped = &loaded.unmatchable;
    if skipped.lines > 0 {
        let first: Vec<String> = skipped.first.iter().map(ToString::to_string).collect();
        tracing::warn!(
            lines = skipped.lines,
            first = %first.join("; "),
            "audience data: events that could never match were skipped"
        );
    }
    Ok(())
}

/// `--url-signatures-soak-secs` in milliseconds, saturating.
fn soak_ms(secs: u64) -> i64 {
    i64::try_from(secs.saturating_mul(1000)).unwrap_or(i64::MAX)
}

/// The Redis ledger of this replica: its name is kept in its journal
/// directory (a restart finds its claims and leases again), and it may
/// create the shared state only while its own journal is empty.
fn connect_shared(
    url: &str,
    args: &ServeArgs,
    memory: ledger::Options,
    longest_reservation_secs: u64,
) -> anyhow::Result<shared::RedisLedger> {
    let dir = &args.dir;
    let replica = replica_name(dir)?;
    let journal_len = std::fs::metadata(dir.join("charges.journal")).map_or(0, |m| m.len());
    let fresh = !dir.join("ledger.checkpoint").exists() && journal_len <= 64;
    let mut opts = shared::Options::new(&replica, Arc::new(SystemClock));
    opts.prefix = args.redis_prefix.clone();
    // A stopped replica's bids may win until their holds would have ended:
    // its leases count that long after it stops (a config reloaded later
    // with a longer reservation is not seen here).
    // Bounded (2^40 ms, decades) so that Redis's Lua, whose numbers are
    // doubles, adds it to a time exactly: past 2^63 it wrapped negative
    // and gave the leases back at once.
    opts.retire_ms = i64::try_from(longest_reservation_secs.saturating_mul(1000))
        .unwrap_or(i64::MAX)
        .saturating_add(memory.late_horizon_ms)
        .min(1 << 40);
    opts.memory = memory;
    opts.epoch_file = Some(dir.join("shared.epoch"));
    opts.may_initialise = fresh;
    opts.per_bid_after_ms = soak_ms(args.url_signatures_soak_secs);
    tracing::info!(replica = %replica, prefix = %opts.prefix, "sharing state through Redis");
    shared::RedisLedger::connect(redis_info(url)?, opts).map_err(anyhow::Error::msg)
}

/// Creates the state directory (and what it needs above it) readable by
/// this user alone, where it does not exist yet: its journals hold keyed
/// user hashes, bids and features. An existing one keeps its mode.
fn private_dir(dir: &std::path::Path) -> anyhow::Result<()> {
    ledger::journal::create_private_dir(dir).with_context(|| format!("creating {}", dir.display()))
}

/// This replica's name, kept in its directory: made once from the host
/// name and a random suffix (a pod's volume keeps it across restarts; a
/// new volume is a new replica).
fn replica_name(dir: &std::path::Path) -> anyhow::Result<String> {
    private_dir(dir)?;
    let name_file = dir.join("replica.name");
    let replica = match std::fs::read_to_string(&name_file) {
        Ok(n) if !n.trim().is_empty() => n.trim().to_string(),
        _ => {
            let host = std::env::var("HOSTNAME").unwrap_or_default();
            let host: String = host
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
                .take(40)
                .collect();
            let name = format!("{host}-{:08x}", rand::random::<u32>())
                .trim_start_matches('-')
                .to_string();
            std::fs::write(&name_file, format!("{name}\n"))
                .and_then(|()| std::fs::File::open(&name_file)?.sync_all())
                .with_context(|| format!("writing {}", name_file.display()))?;
            name
        }
    };
    anyhow::ensure!(
        shared::mirror::valid_replica(&replica),
        "{}: {replica:?} is not a replica name (letters, digits, '-', '_', '.'; at most 64)",
        name_file.display()
    );
    Ok(replica)
}

/// Starts copying the other replicas' report files here (and this one's
/// to them): reports, attribution and training see the whole cluster.
fn start_mirror(url: &str, args: &ServeArgs, app: &Arc<App>) -> anyhow::Result<shared::Mirror> {
    let replica = replica_name(&args.dir)?;
    let mut opts = shared::MirrorOptions::new(&args.dir, &replica, Arc::new(SystemClock));
    opts.prefix = args.redis_prefix.clone();
    opts.keep_days = app.report_keep_days();
    opts.synced = Some(app.synced());
    let events = app.clone();
    opts.on_events = Box::new(move |bytes| {
        if let Some(e) = events.events() {
            e.peer_lines(bytes);
        }
    });
    let mirror =
        shared::Mirror::start(redis_info(url)?, opts).context("starting the report mirror")?;
    app.set_mirror_stats(mirror.stats.clone());
    Ok(mirror)
}

/// Where this replica stopped reading the other replicas' audience data.
const AUDIENCE_OFFSET: &str = "audience.offset";

fn read_offset(dir: &std::path::Path) -> String {
    // A new replica reads everything Redis still keeps.
    shared::read_stream_offset(&dir.join(AUDIENCE_OFFSET))
}

/// Applies the other replicas' audience data as it comes, and remembers
/// how far it got (a restart resumes there; applying a batch twice
/// changes nothing for lists, and adds a view once more at worst).
async fn apply_peer_audience(
    app: Arc<App>,
    mut rx: tokio::sync::mpsc::Receiver<shared::Published>,
    dir: PathBuf,
) {
    // Batches held for lists a newer config has (a rollout in progress)
    // are tried again as configs load.
    let mut retry = tokio::time::interval(Duration::from_secs(1));
    let mut last: Option<String> = None;
    let mut saved = String::new();
    loop {
        let p = tokio::select! {
            p = rx.recv() => p,
            _ = retry.tick() => {
                let a = app.clone();
                let _ = tokio::task::spawn_blocking(move || a.retry_held_lists()).await;
                if let Some(id) = &last {
                    save_audience_offset(&app, &dir, id, &mut saved);
                }
                continue;
            }
        };
        let Some(p) = p else { return };
        let id = p.id.clone();
        let a = app.clone();
        // List batches are fsync'd: off the async workers.
        if tokio::task::spawn_blocking(move || a.apply_peer_audience(&p))
            .await
            .is_err()
        {
            tracing::error!("applying another replica's audience data panicked");
        }
        save_audience_offset(&app, &dir, &id, &mut saved);
        last = Some(id);
    }
}

/// Remembers where a restart resumes reading the audience stream: after
/// `id`, or, while list batches are held (only in memory), just before
/// the oldest of them, so that a restart (a rollout that restarts pods
/// with the new config) reads them again rather than skipping them.
fn save_audience_offset(app: &App, dir: &std::path::Path, id: &str, saved: &mut String) {
    let resume = app
        .oldest_held()
        .map_or_else(|| id.to_string(), |h| stream_id_before(&h));
    if resume == *saved {
        return;
    }
    let path = dir.join(AUDIENCE_OFFSET);
    match std::fs::write(&path, format!("{resume}\n")) {
        Ok(()) => *saved = resume,
        Err(e) => {
            tracing::warn!(path = %path.display(), "cannot remember the audience offset: {e}")
        }
    }
}

/// The greatest stream id below `id` (reads are exclusive of the id they
/// start after).
fn stream_id_before(id: &str) -> String {
    let parsed = id
        .split_once('-')
        .and_then(|(ms, seq)| Some((ms.parse::<u64>().ok()?, seq.parse::<u64>().ok()?)));
    match parsed {
        Some((ms, seq)) if seq > 0 => format!("{ms}-{}", seq - 1),
        Some((ms, _)) if ms > 0 => format!("{}-{}", ms - 1, u64::MAX),
        _ => "0-0".to_string(),
    }
}

/// `bidder ledger reconcile`: prints what differs, then what was done.
/// `Ok(false)`: a dry run found differences.
fn reconcile(
    state: &str,
    journals: &[PathBuf],
    dry_run: bool,
    without: &[String],
    prefix: &str,
) -> anyhow::Result<bool> {
    anyhow::ensure!(
        is_redis(state),
        "--state {state:?}: give redis://… or rediss://…"
    );
    let info = redis_info(state)?;
    // Every replica Redis knows must have its journal read: one left out
    // (a path mistyped, a volume not mounted) rebuilt the counters without
    // its spend, and its line items then spent it again (replica probe).
    let mut given: Vec<String> = Vec::new();
    for dir in journals {
        match std::fs::read_to_string(dir.join("replica.name")) {
            // Two directories of one replica (a copy beside the original)
            // would count its spend twice.
            Ok(name) if given.contains(&name.trim().to_string()) => anyhow::bail!(
                "{}: a second journal of replica {:?}: give each replica's journal once \
                 (a copy of a directory counts its spend twice)",
                dir.display(),
                name.trim()
            ),
            Ok(name) => given.push(name.trim().to_string()),
            Err(e) => eprintln!(
                "{}: no replica.name ({e}): this journal is read, but matched to no replica",
                dir.display()
            ),
        }
    }
    let known =
        shared::reconcile::known_replicas(info.clone(), prefix).map_err(anyhow::Error::msg)?;
    let missing: Vec<String> = known
        .iter()
        .filter(|r| !given.contains(r) && !without.contains(r))
        .map(|r| format!("{r:?}"))
        .collect();
    if !missing.is_empty() {
        let why = format!(
            "Redis knows replica(s) {} whose journal no --journal names: give each one's journal \
             directory (its replica.name says whose it is), or --without NAME for a journal that \
             is lost (its spend is then missing from the rebuilt counters)",
            missing.join(", ")
        );
        // A dry run writes nothing: it reports what it can.
        anyhow::ensure!(dry_run, "{why}");
        eprintln!("warning: {why}");
    }
    let now = config::Clock::now(&SystemClock);
    let report = shared::reconcile::reconcile(info, prefix, journals, dry_run, now)
        .map_err(anyhow::Error::msg)?;
    let t = &report.totals;
    println!(
        "journals: {} records, {} bids charged, {} keys",
        t.records,
        t.bids,
        t.life.len()
    );
    for bid in &t.duplicates {
        println!("bid {bid} is in two journals: counted once in Redis, twice in reports");
    }
    for dir in &t.from_generations {
        println!(
            "{}: its replica is running; lifetime spend read from the journal generations kept \
             for reports (stop it to read its whole history)",
            dir.display()
        );
    }
    let units = |m: i64| format!("{:.6}", m as f64 / 1e6);
    for d in &report.differences {
        let day = d.day.map_or_else(
            || "lifetime".to_string(),
            |n| config::Date::from_days_since_epoch(n).to_string(),
        );
        println!(
            "{} {day}: journals {} redis {} (difference {})",
            d.key,
            units(d.journals),
            units(d.redis),
            units(d.journals - d.redis)
        );
    }
    if report.differences.is_empty() && t.duplicates.is_empty() {
        println!("no differences");
    } else if report.differences.is_empty() {
        println!("no differences in Redis; reports count the bids above twice");
    }
    match &report.epoch {
        Some(e) => println!(
            "written: spend of {} keys, {} charged bids marked; epoch {e}: replicas bid again",
            t.life.len(),
            report.marked
        ),
        None => println!("dry run: nothing written"),
    }
    // Bids in two journals stay there for as long as reports keep the
    // generations: exit 2 for them would keep a check red for a year and
    // hide the differences Redis can be mended from.
    Ok(!dry_run || report.differences.is_empty())
}

fn serve(mut args: ServeArgs) -> anyhow::Result<()> {
    let redis_url = is_redis(&args.state).then(|| args.state.clone());
    args.dir = match (&redis_url, &args.journal) {
        (Some(_), Some(dir)) => dir.clone(),
        (Some(_), None) => PathBuf::from("bidder-state"),
        (None, Some(_)) => anyhow::bail!(
            "--journal is for --state redis://…; with a directory --state, the journal is in it"
        ),
        (None, None) => PathBuf::from(&args.state),
    };
    if let Some(url) = &args.public_url {
        check_public_url(url)?;
    }
    // Set and empty (a template's blank) is as not set.
    args.privacy_url = args.privacy_url.take().filter(|u| !u.is_empty());
    if let Some(url) = &args.privacy_url {
        check_privacy_url(url)?;
    }
    if args.listen.ip().is_unspecified() && args.public_url.is_none() {
        anyhow::bail!(
            "--listen {} listens on every address, so notice URLs cannot name one: \
             give --public-url with the address exchanges reach the bid port at \
             (e.g. --public-url https://bidder.example.com)",
            args.listen
        );
    }
    // The signal handlers before anything slow: loading millions of
    // audience events takes seconds, and a SIGHUP then (a config reloader
    // sidecar's) found the default action and ended the process. One
    // received while starting is acted on once the bidder is up.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let mut signals = {
        let _in_runtime = runtime.enter();
        signals()
    };
    // Taken before the load: a change made after it (even before the
    // load) is then seen by the watcher, at worst reloading what loaded.
    let config_fingerprint = config::fingerprint(&args.config);
    let config = load_config(&args.config, config::Secrets::Read)?;
    // Before anything writes into it (list uploads, journals): made here,
    // the state directory is this user's alone.
    private_dir(&args.dir)?;
    // Retention first: loading drops events older than it, and the config
    // may look further back than the default.
    let store = audiences::Store::new();
    store.set_retention_days(bidder::app::retention_days(&config));
    store.set_max_users(usize::try_from(args.max_audience_users).unwrap_or(usize::MAX));
    let events = args
        .max_audience_events
        .unwrap_or_else(|| args.max_audience_users.saturating_mul(16));
    store.set_max_events(usize::try_from(events).unwrap_or(usize::MAX));
    if let Some(dir) = &args.data {
        load_data(&store, dir, config::Clock::now(&SystemClock))?;
    }
    // Then what uploads, pixel calls and other replicas added at run time
    // before this start (`STATE/audience-events`).
    let replayed =
        bidder::audience_log::replay(&args.dir, &store, config::Clock::now(&SystemClock))
            .context("reading the audience events of the state directory back")?;
    if replayed.skipped > 0 || replayed.unreadable > 0 {
        tracing::warn!(
            skipped_lines = replayed.skipped,
            unreadable_files = replayed.unreadable,
            "damaged audience events in the state directory were skipped"
        );
    }
    tracing::info!(
        users = store.users(),
        events = store.events(),
        from_state = replayed.events,
        "audience data loaded"
    );
    // List members: the `*.members` files of --data, then what uploads
    // wrote to the state directory (later, so a removal uploaded after a
    // file added the id stays removed).
    store.lists().set_limit(args.max_list_members);
    let started = std::time::Instant::now();
    bidder::metrics::install();
    bidder::app::load_lists(&store, &config, args.data.as_deref(), Some(&args.dir))
        .context("loading list audience members")?;
    tracing::info!(
        members = store.lists().members(),
        millis = started.elapsed().as_millis() as u64,
        "list audience members loaded"
    );

    let notice_secret = notice_secret(&args)?;
    // The TTL the last process ran with: notices of its bids keep it if
    // this one is longer (see bidder::notice_ttl). An unreadable record is
    // as none: the first start with this version fences nothing either.
    let notice_ttl = Duration::from_secs(args.notice_ttl_hours.max(1) * 3600);
    let notice_ttl_ms = i64::try_from(notice_ttl.as_millis()).unwrap_or(i64::MAX);
    let last_ttl = bidder::notice_ttl::read(&args.dir).unwrap_or_else(|e| {
        tracing::warn!(
            error = %e,
            "the record of the last notice TTL is unreadable; a raised --notice-ttl-hours \
             fences nothing this start"
        );
        None
    });
    let notice_ttl_fence = bidder::notice_ttl::fence(
        last_ttl,
        notice_ttl_ms,
        config::Clock::now(&SystemClock).as_millis(),
    );
    // As a profile's `tmax_default_ms` (`tmax_left_nothing`): every
    // request without a tmax would get no bid, reason `late`.
    if args.default_tmax_ms <= args.tmax_margin_ms {
        anyhow::bail!(
            "--default-tmax-ms {} leaves no time after --tmax-margin-ms {}: requests without a \
             tmax would never get a bid",
            args.default_tmax_ms,
            args.tmax_margin_ms
        );
    }
    // As the peer addresses they are compared with are written.
    let trusted_proxies: Vec<ipnet::IpNet> = args
        .trusted_proxies
        .iter()
        .map(|n| config::canonical_net(n.trunc()))
        .collect();
    // A proxy network that is every address (`0.0.0.0/0`, or
    // `::ffff:0:0/96` read as it) trusts anyone's X-Forwarded-For, and so
    // opens every profile's allow_from: refused as allow_from refuses it.
    if let Some(n) = args
        .trusted_proxies
        .iter()
        .zip(&trusted_proxies)
        .find_map(|(given, read)| (read.prefix_len() == 0).then_some(given))
    {
        anyhow::bail!(
            "--trusted-proxies {n} is every address: anyone could then say where a request came \
             from; list the proxies' own addresses"
        );
    }
    // A body as large as `--max-body-bytes` allows, gathered from several
    // reads, could never be read.
    if args.max_body_memory < args.max_body_bytes {
        anyhow::bail!(
            "--max-body-memory {} is less than --max-body-bytes {}: the largest bodies allowed \
             could never be read",
            args.max_body_memory,
            args.max_body_bytes
        );
    }
    let mut settings = Settings {
        max_body_bytes: args.max_body_bytes,
        max_body_memory: args.max_body_memory,
        tmax_margin: Duration::from_millis(args.tmax_margin_ms),
        default_tmax: Duration::from_millis(args.default_tmax_ms),
        admin_token: admin_token(&args)?,
        audience_token: audience_token(&args)?,
        privacy: bidder::privacy::PrivacySettings {
            vendor_id: args.tcf_vendor_id,
        },
        notice_secret: Some(notice_secret),
        notice_ttl,
        notice_ttl_fence,
        url_signatures: args.url_signatures,
        url_signatures_soak_ms: soak_ms(args.url_signatures_soak_secs),
        reservation_ttl: Duration::from_secs(args.reservation_ttl_secs.max(1)),
        max_bids_per_line_item: args.max_bids_per_line_item as usize,
        trusted_proxies,
        max_rates_age_days: args.max_rates_age_days,
        max_tracked_events: args.max_tracked_events as usize,
        max_attribution_entries: args.max_attribution_entries as usize,
        report_retention_days: args.report_retention_days.max(98),
        max_audience_log_bytes: args.max_audience_log_bytes,
        model_path: args.model.clone(),
        pixel_events_per_ip_per_minute: args.pixel_events_per_ip_per_minute,
        limits: bidder::server::Limits {
            max_connections: connection_cap(args.max_connections as usize),
            header_timeout: Duration::from_secs(args.header_timeout_secs),
            idle_timeout: Duration::from_secs(args.idle_timeout_secs),
        },
        body_timeout: Duration::from_secs(args.body_timeout_secs),
        ledger: ledger::Options {
            // Per-day spend is kept for as long as a bid's win may come.
            keep_days: args.notice_ttl_hours.max(1).div_ceil(24) as i64 + 1,
            max_bids: args
                .max_bids_in_flight
                .map_or(usize::MAX, |n| usize::try_from(n).unwrap_or(usize::MAX)),
            max_windows: usize::try_from(args.max_frequency_windows).unwrap_or(usize::MAX),
            ..ledger::Options::default()
        },
        ..Settings::default()
    };
    runtime.block_on(async move {
        let bid =
            listen(args.listen).with_context(|| format!("binding the bid port {}", args.listen))?;
        let admin = listen(args.admin_listen)
            .with_context(|| format!("binding the admin port {}", args.admin_listen))?;
        // Without --public-url, notices name the address actually bound
        // (port 0 asks the system for one).
        settings.privacy_url = args.privacy_url.clone();
        settings.public_url = match &args.public_url {
            Some(url) => url.clone(),
            None => format!("http://{}", bid.local_addr()?),
        };
        if !settings
            .public_url
            .to_ascii_lowercase()
            .starts_with("https://")
        {
            tracing::warn!(
                public_url = %settings.public_url,
                "the public URL is not https: ads carry tracking URLs on it, so video, audio \
                 and native ads will not bid on secure slots (imp.secure or an https page), \
                 nor banners where imp.secure is 1, and banners on other https pages carry \
                 http click and impression trackers, which browsers may block as mixed \
                 content; give --public-url https://…"
            );
        }
        let started = std::time::Instant::now();
        let memory_options = settings.ledger.clone();
        let mut app = App::new(
            settings,
            Arc::new(SystemClock),
            store,
            Some(args.config.clone()),
        );
        let mut shared_ledger = None;
        if let Some(url) = &redis_url {
            // The longest a bid of this config may hold (its profiles' and
            // the bidder's reservations), for reclaimed leases to outlast.
            let longest_reservation_secs = config
                .longest_reservation_ttl_secs()
                .map_or(0, u64::from)
                .max(args.reservation_ttl_secs);
            let shared = Arc::new(connect_shared(
                url,
                &args,
                memory_options,
                longest_reservation_secs,
            )?);
            app = app.with_shared_ledger(shared.clone());
            shared_ledger = Some(shared);
        }
        let (app, replayed) = app
            .with_journal(&args.dir)
            .with_context(|| format!("opening the charge journal in {}", args.dir.display()))?;
        // Once the directory is this process's (the journal's lock).
        if bidder::notice_ttl::needs_write(last_ttl, notice_ttl_ms, notice_ttl_fence) {
            bidder::notice_ttl::write(&args.dir, notice_ttl_ms, notice_ttl_fence)
                .with_context(|| format!("recording the notice TTL in {}", args.dir.display()))?;
        }
        if let Some(f) = notice_ttl_fence {
            tracing::info!(
                before_ms = f.before_ms,
                since_ms = f.since_ms,
                "--notice-ttl-hours was raised: notices of bids made before the raise keep the \
                 TTL they were made under, so that no win charged and since forgotten is \
                 charged again"
            );
        }
        app.load_model();
        if let Some(s) = &shared_ledger {
            s.replayed();
        }
        bidder::metrics::journal_replayed(replayed.skipped as u64, replayed.cut);
        tracing::info!(
            charges = replayed.charges,
            checkpoint_entries = replayed.checkpoint_entries,
            skipped = replayed.skipped,
            cut_bytes = replayed.cut,
            millis = started.elapsed().as_millis() as u64,
            dir = %args.dir.display(),
            "spend restored from the checkpoint and journal"
        );
        // A line item that spent under one budget type may not come back
        // under the other, across restarts too; with Redis, wherever it
        // spent (the ledger's cache of Redis is empty yet).
        let ledger = app.ledger();
        let elsewhere = match &redis_url {
            Some(url) => {
                let ids: Vec<&str> = config.line_items().map(|li| li.id.as_str()).collect();
                let info = redis_info(url)?;
                // No state under the prefix yet (a first start): nothing
                // spent there.
                let read_now = || {
                    shared::budget_kinds(info.clone(), &args.redis_prefix, &ids)
                        .map(Option::unwrap_or_default)
                };
                // A blip of Redis must not let a changed type through: a
                // few tries, a second apart, before going on without.
                let mut read = read_now();
                for _ in 0..4 {
                    if read.is_ok() {
                        break;
                    }
                    std::thread::sleep(Duration::from_secs(1));
                    read = read_now();
                }
                read.unwrap_or_else(|e| {
                    tracing::warn!(
                        error = %e,
                        "budget types not read from Redis after 5 tries: the config is checked \
                         against this replica's journal only (a reload checks it again)"
                    );
                    Default::default()
                })
            }
            None => Default::default(),
        };
        // What this directory last served: a budget change a reload would
        // refuse is refused here too.
        let served = bidder::served::Served::read(&args.dir)
            .map_err(|e| {
                tracing::warn!(
                    error = %e,
                    "budget changes are checked without the record of the budgets served"
                )
            })
            .ok();
        let problems =
            bidder::changes::budget_changes(None, served.as_ref(), &config, app.now(), &|id| {
                ledger
                    .budget_kind(id)
                    .or_else(|| elsewhere.get(id).copied())
            });
        if !problems.is_empty() {
            for p in &problems {
                eprintln!("{p}");
            }
            anyhow::bail!(
                "config in {} refused: {} problem(s)",
                args.config.display(),
                problems.len()
            );
        }
        let app = Arc::new(app);
        bidder::metrics::describe();
        let loaded = app.install(config);
        app.files_read(config_fingerprint);
        tracing::info!("config loaded: {}", loaded.summary);

        // A SIGTERM while starting (a rollout that moved on, a node being
        // drained): stop here, having served nothing, rather than start
        // and then drain.
        if term_pending(&mut signals).await {
            tracing::info!("stopped while starting: exiting before serving");
            app.save_holds(true);
            app.save_frequency(true);
            app.ledger().close();
            app.flush_events().await;
            return Ok(());
        }
        // Before serving: it needs nothing of the server, and a mirror that
        // cannot start stops the start while nothing has been served.
        let mirror = match &redis_url {
            Some(url) => Some(start_mirror(url, &args, &app)?),
            None => None,
        };
        // Last before serving, once the config and Redis were accepted:
        // what the file held is taken on (and the file removed) once, and a
        // start that fails after it writes it back.
        app.take_on_awaiting();
        let running = match bidder::server::start(app.clone(), bid, admin) {
            Ok(r) => r,
            Err(e) => {
                app.save_awaiting();
                return Err(e.into());
            }
        };
        // One line on stdout with the bound addresses: scripts and tests
        // that ask for port 0 read the real ports here.
        println!(
            "bidder listening: bid={} admin={}",
            running.bid_addr, running.admin_addr
        );
        tracing::info!(bid = %running.bid_addr, admin = %running.admin_addr, "serving");
        // Views and purchases of --data wait for the event journal's past to
        // be read back; bidding does not wait for them.
        if let Some(dir) = args.data.clone() {
            let app = app.clone();
            tokio::spawn(async move { attribute_data(&app, &dir).await });
        }
        if let Some(s) = &shared_ledger {
            let rx = s.subscribe(&read_offset(&args.dir));
            let app = app.clone();
            let dir = args.dir.clone();
            tokio::spawn(async move { apply_peer_audience(app, rx, dir).await });
        }
        if args.config_poll_secs > 0 {
            let app = app.clone();
            let dir = args.config.clone();
            let every = Duration::from_secs(args.config_poll_secs);
            tokio::spawn(async move { watch_config(app, dir, every).await });
        }

        wait_for_signals(&app, signals).await;
        // /readyz says 503 first, and the ports keep answering for the
        // grace period, so a load balancer stops routing here before the
        // listeners close (Kubernetes sends SIGTERM and removes the pod
        // from its endpoints at the same time, not in order).
        app.drain();
        tracing::info!(
            secs = args.drain_secs,
            "draining: /readyz answers 503; still serving"
        );
        tokio::time::sleep(Duration::from_secs(args.drain_secs)).await;
        tracing::info!("shutting down: finishing in-flight requests");
        let _ = running.shutdown.send(true);
        let _ = running.done.await;
        // What bids still hold (their notices may come after this process
        // is gone) for the next one to hold; then, with Redis, leases go
        // back to the other replicas, and writes still owed are sent.
        app.save_holds(true);
        app.save_frequency(true);
        app.sync_audience_log();
        // Impressions and clicks of bids charged by now count; the others
        // still waiting for a charge go on waiting in the next process.
        app.settle_awaiting();
        app.save_awaiting();
        app.ledger().close();
        app.flush_events().await;
        // Its last pass sends what was written and stayed so.
        if let Some(m) = mirror {
            tokio::task::spawn_blocking(move || drop(m)).await.ok();
        }
        Ok(())
    })
}

/// Attributes the views and purchases of the `--data` files. Loaded at
/// every start: those counted before are known from the event journal and
/// count nothing again.
async fn attribute_data(app: &App, dir: &std::path::Path) {
    let files = match audiences::jsonl_files(dir) {
        Ok(f) => f,
        Err(e) => {
            tracing::error!("{e}");
            return;
        }
    };
    let mut total = bidder::app::Uploaded::default();
    for file in files {
        let name = file.display().to_string();
        let mut skipped = Vec::new();
        let conversions = std::fs::read_to_string(&file)
            .map_err(|e| format!("{name}: {e}"))
            .and_then(|text| {
                app.data_conversions(&name, &text, &mut skipped)
                    .map_err(|e| e.to_string())
            });
        if !skipped.is_empty() {
            let first: Vec<String> = skipped.iter().take(5).map(ToString::to_string).collect();
            tracing::warn!(
                lines = skipped.len(),
                first = %first.join("; "),
                "audience data: sales that cannot be counted were left out of the reports"
            );
        }
        let result = match conversions {
            Ok(c) => app.attribute(c).await.map_err(|e| e.to_string()),
            Err(e) => Err(e),
        };
        match result {
            Ok(up) => {
                total.attributed += up.attributed;
                total.unattributed += up.unattributed;
                total.duplicate += up.duplicate;
            }
            Err(e) => tracing::error!("{name}: views and purchases not attributed: {e}"),
        }
    }
    tracing::info!(
        attributed = total.attributed,
        unattributed = total.unattributed,
        already_counted = total.duplicate,
        "audience data attributed"
    );
}

/// Connections per port that fit the process's open-file limit: both
/// ports together, with room left for the journal, the config and the
/// audience files. Past the limit, accept fails on both ports at once and
/// the admin port's separation is lost.
fn connection_cap(wanted: usize) -> usize {
    const RESERVE: usize = 128;
    let soft = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|l| {
            l.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3))
                .and_then(|v| v.parse::<usize>().ok())
        });
    match soft {
        Some(soft) if 2 * wanted + RESERVE > soft => {
            let cap = (soft.saturating_sub(RESERVE) / 2).max(1);
            tracing::warn!(
                "the open-file limit ({soft}) holds {cap} connections per port, not \
                 --max-connections {wanted}: raise it (ulimit -n) for more"
            );
            cap
        }
        _ => wanted,
    }
}

/// Shorter notice secrets are refused: the HMAC is only as strong as its key.
const MIN_SECRET_BYTES: usize = 32;

/// A secret from a file, trailing newline aside; never logged.
fn secret_file(path: &std::path::Path, what: &str) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the {what} from {}", path.display()))?;
    // Trailing white space is never part of a secret (an editor's newline,
    // a pasted space), and a header value could not carry it anyway.
    let secret = text.trim_end();
    anyhow::ensure!(
        !secret.is_empty(),
        "{}: the {what} file is empty",
        path.display()
    );
    Ok(secret.to_string())
}

/// A secret from the environment, if set and not empty.
fn secret_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|s| !s.is_empty())
}

/// Shorter admin tokens are refused: they guard explain (who is in which
/// audience) and reloads.
const MIN_TOKEN_BYTES: usize = 16;

/// The admin token: from `--admin-token-file`, else `BIDDER_ADMIN_TOKEN`.
fn admin_token(args: &ServeArgs) -> anyhow::Result<Option<String>> {
    let token = match &args.admin_token_file {
        Some(path) => Some(secret_file(path, "admin token")?),
        None => secret_env("BIDDER_ADMIN_TOKEN").map(|t| t.trim_end().to_string()),
    };
    long_enough(token, "admin token")
}

/// The audience-upload token, held to the admin token's length: it writes
/// purchases into reports and events into audiences.
fn audience_token(args: &ServeArgs) -> anyhow::Result<Option<String>> {
    long_enough(
        args.audience_token.clone().filter(|t| !t.is_empty()),
        "audience token",
    )
}

/// `token`, refused when shorter than [`MIN_TOKEN_BYTES`].
fn long_enough(token: Option<String>, what: &str) -> anyhow::Result<Option<String>> {
    if let Some(t) = &token {
        anyhow::ensure!(
            t.len() >= MIN_TOKEN_BYTES,
            "the {what} has {} bytes; at least {MIN_TOKEN_BYTES} are needed",
            t.len()
        );
    }
    Ok(token)
}

/// Refuses a `--privacy-url` a user could not follow from an ad: the
/// link sits in ads on https pages, so https, and a URL as written
/// (RFC 3986's characters, a host, no user name), of a length a link has.
fn check_privacy_url(given: &str) -> anyhow::Result<()> {
    let refuse = |why: &str| {
        anyhow::anyhow!(
            "--privacy-url {given:?}: {why}; give the https address of the page on this \
             buyer's targeting, e.g. https://bidder.example.com/privacy"
        )
    };
    if given.len() > 2048 {
        return Err(refuse("longer than 2,048 bytes"));
    }
    if let Some(c) = outside_url(given) {
        return Err(refuse(&format!(
            "{c:?} has no place in a URL as written (percent-encode it)"
        )));
    }
    if !given.to_ascii_lowercase().starts_with("https://") {
        return Err(refuse("it must start with https://"));
    }
    if bad_percent_escape(given) {
        return Err(refuse("a '%' not followed by two hex digits"));
    }
    let url = url::Url::parse(given).map_err(|e| refuse(&format!("not a URL ({e})")))?;
    host_without_user(&url).map_err(refuse)
}

/// The first character RFC 3986 does not let a URL hold as written.
fn outside_url(given: &str) -> Option<char> {
    given
        .chars()
        .find(|&c| !(c.is_ascii_alphanumeric() || "-._~:/?#[]@!$&'()*+,;=%".contains(c)))
}

/// A `%` not followed by two hex digits, which a URL parser mends or
/// lets through.
fn bad_percent_escape(given: &str) -> bool {
    let bytes = given.as_bytes();
    bytes.iter().enumerate().any(|(i, &b)| {
        b == b'%'
            && !(bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit))
    })
}

/// Why `url` is no address to give out: no host, or a user name or
/// password in it.
fn host_without_user(url: &url::Url) -> Result<(), &'static str> {
    if url.host_str().is_none_or(str::is_empty) {
        return Err("it names no host");
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("a user name or password has no place in it");
    }
    Ok(())
}

/// Refuses a `--public-url` the notice and tracking URLs could not be
/// built on: the bidder would serve, and every win it made go uncharged.
fn check_public_url(given: &str) -> anyhow::Result<()> {
    let refuse = |why: &str| {
        anyhow::anyhow!(
            "--public-url {given:?}: {why}; give the http(s) address exchanges reach the bid \
             port at, e.g. https://bidder.example.com"
        )
    };
    // The parser would drop white space and control characters silently;
    // the notices are written from the text as given.
    if given.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(refuse("it holds white space or a control character"));
    }
    // The parser mends `https:host`, `https:\\host` and `https:///host`
    // into a URL; the notices would carry the text as given.
    let lower = given.to_ascii_lowercase();
    if given.contains('\\') {
        return Err(refuse("it holds a backslash"));
    }
    // Only what RFC 3986 lets a URL hold as written: the notices are
    // written from the text into JSON and markup unescaped, and the parser
    // lets `"`, `<`, `{`, `|` and others through in a path (a `"` made
    // every answer JSON no exchange could read).
    if let Some(c) = outside_url(given) {
        return Err(refuse(&format!(
            "{c:?} has no place in a URL as written (percent-encode it; a host name in its \
             ASCII form)"
        )));
    }
    // Brackets hold an IPv6 host and nothing else.
    let after_host = given
        .split_once("://")
        .and_then(|(_, rest)| rest.find('/').map(|slash| &rest[slash..]));
    if after_host.is_some_and(|path| path.contains(['[', ']'])) {
        return Err(refuse("'[' or ']' has no place in a URL's path"));
    }
    let url = url::Url::parse(given).map_err(|e| refuse(&format!("not a URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(refuse("the scheme must be http or https"));
    }
    let rest = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"));
    let Some(rest) = rest.filter(|r| !r.starts_with('/')) else {
        return Err(refuse(
            "it must start with http:// or https:// and the host",
        ));
    };
    // What the parser would also mend or let through: an empty port
    // (`host:`), a `%` not followed by two hex digits, a host name with an
    // empty label or one that starts or ends with `-`.
    let authority = rest.split('/').next().unwrap_or("");
    if authority.ends_with(':') {
        return Err(refuse("a ':' with no port after it"));
    }
    if bad_percent_escape(given) {
        return Err(refuse("a '%' not followed by two hex digits"));
    }
    if let Some(url::Host::Domain(host)) = url.host() {
        let bad = host
            .strip_suffix('.')
            .unwrap_or(host)
            .split('.')
            .any(|l| l.is_empty() || l.starts_with('-') || l.ends_with('-'));
        if bad {
            return Err(refuse(
                "the host name has an empty label or one starting or ending with '-'",
            ));
        }
    }
    host_without_user(&url).map_err(refuse)?;
    // Paths are appended to it: `…?q=1/notice/win` is no notice URL.
    if given.contains(['?', '#']) {
        return Err(refuse(
            "a query or fragment cannot come before the notice paths",
        ));
    }
    Ok(())
}

/// The notice secret: read from a file or the environment, or else made
/// once and kept in the state directory so that notices of bids made
/// before a restart are still honoured.
fn notice_secret(args: &ServeArgs) -> anyhow::Result<String> {
    let given = match (&args.notice_secret_file, &args.notice_secret) {
        (Some(path), _) => Some(secret_file(path, "notice secret")?),
        (None, Some(s)) if !s.is_empty() => {
            tracing::warn!(
                "--notice-secret shows in the process list: use --notice-secret-file or \
                 BIDDER_NOTICE_SECRET"
            );
            Some(s.clone())
        }
        _ => {
            let secret = secret_env("BIDDER_NOTICE_SECRET");
            if secret
                .as_deref()
                .is_some_and(|s| s.trim_end().len() != s.len())
            {
                // Kept, as every earlier version kept it: trimmed now, the
                // key would change under the notices already out. But the
                // same secret from a file is read without it.
                tracing::warn!(
                    "BIDDER_NOTICE_SECRET ends in white space (a newline?), which is part of the \
                     signing key; the same secret given by --notice-secret-file is read without \
                     it, so switching between the two would refuse the notices already out"
                );
            }
            secret
        }
    };
    if let Some(secret) = given {
        anyhow::ensure!(
            secret.len() >= MIN_SECRET_BYTES,
            "the notice secret has {} bytes; at least {MIN_SECRET_BYTES} are needed \
             (e.g. `head -c 32 /dev/urandom | base64`)",
            secret.len()
        );
        return Ok(secret);
    }
    anyhow::ensure!(
        !is_redis(&args.state),
        "with --state redis://… every replica must sign and check notices with one secret: \
         give --notice-secret-file or BIDDER_NOTICE_SECRET"
    );
    let path = args.dir.join("notice.secret");
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let secret = text.trim_end_matches(['\n', '\r']);
            anyhow::ensure!(
                !secret.is_empty(),
                "{}: the kept notice secret is empty; remove the file to make a new one \
                 (outstanding notices will then be refused)",
                path.display()
            );
            Ok(secret.to_string())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            use std::io::Write as _;
            use std::os::unix::fs::OpenOptionsExt as _;
            private_dir(&args.dir)?;
            let secret: String = rand::random::<[u8; 32]>()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            // create_new: two processes starting at once never both write.
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .with_context(|| format!("creating {}", path.display()))?;
            f.write_all(secret.as_bytes())
                .and_then(|()| f.write_all(b"\n"))
                .and_then(|()| f.sync_all())
                .and_then(|()| std::fs::File::open(&args.dir)?.sync_all())
                .with_context(|| format!("writing {}", path.display()))?;
            tracing::warn!(
                file = %path.display(),
                "no --notice-secret: made one and kept it in the state directory; replicas must \
                 share one secret (--notice-secret-file or BIDDER_NOTICE_SECRET)"
            );
            Ok(secret)
        }
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// Reloads the config when its files change (besides SIGHUP and the
/// reload endpoint): Kubernetes updates a mounted ConfigMap by swapping a
/// symlink, which no signal announces. The files are looked at every
/// `every`; a change is reloaded once (a refused config keeps the one
/// serving, and is not retried until the files change again).
async fn watch_config(app: Arc<App>, dir: PathBuf, every: Duration) {
    let fingerprint = |dir: PathBuf| tokio::task::spawn_blocking(move || config::fingerprint(&dir));
    let mut settled = Settled::new(app.files_last_read());
    loop {
        tokio::time::sleep(every).await;
        let Ok(now) = fingerprint(dir.clone()).await else {
            continue;
        };
        if settled.reload(now, app.files_last_read()) {
            tracing::info!(dir = %dir.display(), "config files changed: reloading");
            let app = app.clone();
            let _ = tokio::task::spawn_blocking(move || app.reload()).await;
        }
    }
}

/// When the watch reloads: once a change has held still for a whole poll.
/// Files are seen changing while they are written (`cat >`, scp, an editor
/// saving in place). Loaded at the first sight of a change, the first part
/// of a file, valid on its own, was served: a line item without the
/// targeting the rest of the file gave it bid everywhere until the next
/// poll.
struct Settled {
    /// The files at the last poll.
    seen: u64,
}

impl Settled {
    fn new(seen: u64) -> Settled {
        Settled { seen }
    }

    /// Given the files' fingerprint now and as the last load read them
    /// (whoever asked for it: the watch, `SIGHUP`, the endpoint), whether
    /// to reload.
    fn reload(&mut self, now: u64, last_read: u64) -> bool {
        if now != self.seen {
            self.seen = now;
            return false;
        }
        now != last_read
    }
}

/// SIGHUP reloads the config; SIGTERM and Ctrl-C stop.
/// Registered as `serve` starts, long before the bidder says it is
/// listening: a SIGTERM or SIGHUP sent while it starts must not find the
/// default action (exit) still in place.
type Signals = Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>;

fn signals() -> Signals {
    use tokio::signal::unix::{signal, SignalKind};
    Some((
        signal(SignalKind::hangup()).ok()?,
        signal(SignalKind::terminate()).ok()?,
    ))
}

/// Whether a SIGTERM came (and was not yet acted on).
async fn term_pending(signals: &mut Signals) -> bool {
    match signals {
        // Polled once: a zero timeout polls what it wraps first.
        Some((_, term)) => tokio::time::timeout(Duration::ZERO, term.recv())
            .await
            .is_ok(),
        None => false,
    }
}

async fn wait_for_signals(app: &Arc<App>, signals: Signals) {
    let Some((mut hup, mut term)) = signals else {
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    // One reload waiting at most: the SIGHUPs that come while it waits
    // (a sidecar sending one per changed file) are the same reload, which
    // reads every file anyway.
    let waiting = Arc::new(std::sync::atomic::AtomicBool::new(false));
    loop {
        tokio::select! {
            _ = hup.recv() => {
                if waiting.swap(true, std::sync::atomic::Ordering::AcqRel) {
                    continue;
                }
                let app = app.clone();
                let waiting = waiting.clone();
                // Not awaited: a long reload (or one queued behind the
                // watch's) must not hold off a SIGTERM.
                drop(tokio::task::spawn_blocking(move || {
                    waiting.store(false, std::sync::atomic::Ordering::Release);
                    app.reload()
                }));
            }
            _ = term.recv() => return,
            _ = tokio::signal::ctrl_c() => return,
        }
    }
}

/// Connections the kernel keeps waiting for an `accept` (at most
/// `net.core.somaxconn`, 4096 on current kernels). A port at
/// `--max-connections` leaves new ones there until a slot frees; with
/// tokio's bind (std's 128) a client that kept 6,000 sockets open and
/// reopened each one closed made the kernel drop other clients'
/// connection attempts, which then retried after 1, 2 and 4 s.
const LISTEN_BACKLOG: u32 = 4096;

/// `addr` bound with [`LISTEN_BACKLOG`], as tokio's `TcpListener::bind`
/// binds otherwise (the address reusable at once after a restart).
fn listen(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

#[cfg(test)]
mod tests {
    use super::Settled;

    #[test]
    fn the_watch_reloads_a_change_once_it_has_held_still_for_a_poll() {
        let mut w = Settled::new(1);
        let mut read = 1;
        let poll = |w: &mut Settled, now: u64, read: &mut u64| {
            let reload = w.reload(now, *read);
            if reload {
                *read = now;
            }
            reload
        };
        assert!(!poll(&mut w, 1, &mut read), "nothing changed");
        // A file being written: seen at each poll as it grows.
        assert!(!poll(&mut w, 2, &mut read), "the first part");
        assert!(!poll(&mut w, 3, &mut read), "more of it");
        assert!(poll(&mut w, 3, &mut read), "still for a poll: loaded");
        assert!(!poll(&mut w, 3, &mut read), "loaded once");
        // Back to what was loaded before the last change: a change too.
        assert!(!poll(&mut w, 1, &mut read));
        assert!(poll(&mut w, 1, &mut read));
        // A change that comes and goes between two polls is not loaded.
        assert!(!poll(&mut w, 4, &mut read));
        assert!(!poll(&mut w, 1, &mut read));
        assert!(!poll(&mut w, 1, &mut read), "as loaded");
        // Loaded by a SIGHUP before it held still, then taken back: the
        // files as they are now differ from what serves, so they load.
        assert!(!poll(&mut w, 5, &mut read));
        read = 5;
        assert!(!poll(&mut w, 1, &mut read));
        assert!(poll(&mut w, 1, &mut read), "the files went back: reloaded");
    }

    /// A privacy page is an https URL as written; anything an ad could
    /// not link to is refused, naming the flag.
    #[test]
    fn privacy_urls_are_https_links() {
        for url in [
            "https://bidder.example.com/privacy",
            "https://bidder.example.com/privacy?lang=en#ads",
        ] {
            assert!(super::check_privacy_url(url).is_ok(), "{url}");
        }
        for (url, why) in [
            ("http://bidder.example.com/privacy", "https://"),
            ("https://bidder.example.com/pri vacy", "no place in a URL"),
            (
                "https://bidder.example.com/\"><script>",
                "no place in a URL",
            ),
            ("https://user:pw@bidder.example.com/", "user name"),
            ("https://bidder.example.com/p%", "'%'"),
            ("https://", "not a URL"),
        ] {
            let e = super::check_privacy_url(url).unwrap_err().to_string();
            assert!(
                e.starts_with("--privacy-url") && e.contains(why),
                "{url}: {e}"
            );
        }
        let long = format!("https://bidder.example.com/{}", "a".repeat(2048));
        assert!(super::check_privacy_url(&long).is_err());
    }

    /// What a public URL may be: the refusals (tested through `serve` in
    /// cli.rs) leave these alone.
    #[test]
    fn public_urls_that_notices_can_be_built_on_are_taken() {
        for url in [
            "https://bidder.example.com",
            "https://bidder.example.com/",
            "http://[::1]:8080",
            "http://127.0.0.1:9000/rtb",
            "https://bidder.example.com:8443/rtb%20x/~me",
            "https://xn--bdder-jua.example.com/it's",
        ] {
            assert!(super::check_public_url(url).is_ok(), "{url}");
        }
    }
}
