//! The `switchyard` command.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

mod keys;

use clap::{Args, Parser, Subcommand};
use switchyard_gateway::{ServeOptions, config, demo, runtime::Runtime};
use switchyard_providers::mock::{self, Faults};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc asks the kernel for transparent huge pages on its arenas, so the first byte touched in
/// each 2 MiB of heap brings in all 2 MiB: at rest that was 14 of the gateway's 31 MB. A gateway's
/// heap is many small, short-lived buffers; it gains nothing measurable from huge pages (see
/// docs/performance.md) and pays for them in memory, so they are turned off for this process
/// before its threads start. Pages mapped before `main` keep what they have.
fn small_pages_only() {
    #[cfg(target_os = "linux")]
    if let Err(e) = rustix::thread::disable_transparent_huge_pages(true) {
        eprintln!("warning: cannot turn transparent huge pages off ({e}); memory use will be higher");
    }
}

#[derive(Parser)]
#[command(name = "switchyard", version, about = "A self-hosted LLM gateway and model router")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway.
    Serve {
        /// The config file (default: ./switchyard.yaml if present, else the environment).
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// The address to listen on (default: server.listen, else 127.0.0.1:4141).
        #[arg(long)]
        listen: Option<String>,
        /// Allow listening on a non-loopback address with no key configured.
        #[arg(long)]
        insecure_no_auth: bool,
    },
    /// Run the gateway in front of simulated providers: no keys, no network.
    Demo {
        #[arg(long)]
        listen: Option<String>,
    },
    /// Run a simulated OpenAI-protocol provider for tests and local work.
    Mock(MockArgs),
    /// Work with config files.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Make, list, rotate and revoke virtual keys on a running gateway.
    Keys(keys::KeysArgs),
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Validate a config file; errors name the line and column.
    Check { file: PathBuf },
}

#[derive(Args)]
struct MockArgs {
    /// The address to listen on; port 0 picks a free one (printed on start).
    #[arg(long, default_value = "127.0.0.1:4010")]
    listen: SocketAddr,
    /// Delay before the response headers, in milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Number of content chunks in a streamed answer (default: one per word).
    #[arg(long)]
    chunks: Option<usize>,
    /// Delay between stream chunks, in milliseconds.
    #[arg(long, default_value_t = 0)]
    chunk_delay_ms: u64,
    /// Answer length in words (= tokens).
    #[arg(long)]
    words: Option<usize>,
    /// Answer every request with this status.
    #[arg(long)]
    status: Option<u16>,
    /// With --status: send this retry-after, in seconds.
    #[arg(long)]
    retry_after: Option<u64>,
    /// Fail this fraction of requests with a 500 (0.0 to 1.0).
    #[arg(long, default_value_t = 0.0)]
    error_rate: f64,
    /// Stop sending after this many stream chunks, keeping the connection open.
    #[arg(long)]
    stall_after: Option<usize>,
    /// Cut the connection after this many stream chunks.
    #[arg(long)]
    cut_after: Option<usize>,
    /// Send broken data: `json` or `sse`.
    #[arg(long)]
    malformed: Option<String>,
    /// Apply --status only to the first N requests, then answer normally.
    #[arg(long)]
    fail_first: Option<u64>,
    /// The `code` in error bodies (e.g. context_length_exceeded).
    #[arg(long)]
    error_code: Option<String>,
    /// Answer 401 to this bearer key.
    #[arg(long)]
    deny_key: Option<String>,
    /// Make this fraction of requests slow (0.0 to 1.0), evenly spread.
    #[arg(long, default_value_t = 0.0)]
    tail_rate: f64,
    /// The extra delay of a slow request, in milliseconds.
    #[arg(long, default_value_t = 0)]
    tail_ms: u64,
}

fn main() -> ExitCode {
    small_pages_only();
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SWITCHYARD_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    if let Command::Config { command: ConfigCommand::Check { file } } = &cli.command {
        return check(file);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve { config, listen, insecure_no_auth } => {
                switchyard_gateway::run(ServeOptions { config, listen, insecure_no_auth })
                    .await
                    .map_err(|e| e.to_string())
            }
            Command::Demo { listen } => demo::run(listen).await.map_err(|e| e.to_string()),
            Command::Mock(args) => mock::serve(args.listen, faults(&args)).await.map_err(|e| e.to_string()),
            Command::Config { .. } => Ok(()),
            Command::Keys(args) => keys::run(args).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn faults(a: &MockArgs) -> Faults {
    Faults {
        latency: Duration::from_millis(a.latency_ms),
        status: a.status,
        retry_after: a.retry_after,
        error_rate: a.error_rate.clamp(0.0, 1.0),
        chunks: a.chunks,
        chunk_delay: Duration::from_millis(a.chunk_delay_ms),
        words: a.words,
        stall_after: a.stall_after,
        cut_after: a.cut_after,
        malformed: a.malformed.clone(),
        fail_first: a.fail_first,
        error_code: a.error_code.clone(),
        deny_key: a.deny_key.clone(),
        tail_rate: a.tail_rate.clamp(0.0, 1.0),
        tail: Duration::from_millis(a.tail_ms),
    }
}

fn check(file: &std::path::Path) -> ExitCode {
    let cfg = match config::load(file) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    match Runtime::build(&cfg, &file.display().to_string()) {
        Ok(rt) => {
            for w in &rt.warnings {
                eprintln!("warning: {w}");
            }
            println!("{}: OK ({} models, {} providers)", file.display(), cfg.models.len(), cfg.providers.len());
            ExitCode::SUCCESS
        }
        Err(errors) => {
            for e in errors {
                eprintln!("error: {}: {e}", file.display());
            }
            ExitCode::FAILURE
        }
    }
}
