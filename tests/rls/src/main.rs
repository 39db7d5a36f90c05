//! switchboard-rls: Envoy's global rate-limit service (`ShouldRateLimit`, gRPC) with every
//! counter in Redis, for Switchboard's `fleet` backend.
//!
//! It reads envoyproxy/ratelimit's configuration format (what `switchboard render
//! --rls-config` writes) and differs from that engine where budgets need it:
//! - a call is counted all or nothing: a refused call counts nothing (no refund needed);
//! - negative hits refund, floored at 0;
//! - calls marked as settlements (gRPC metadata `x-switchboard-settle`, the settle filter's)
//!   are counted whatever the limit, never refused: the answer they pay for was given;
//! - windows are calendar periods in UTC (day, week from Monday, month, year) and `total`
//!   never resets; limits are u64;
//! - an answer names the descriptor over its limit (`x-switchboard-over`) and, when counted,
//!   sets dynamic metadata (`counted`), which the gateway role reads to tell a counted
//!   admission from one its filter let through while the service failed.
//!
//! Redis errors answer as gRPC `UNAVAILABLE` within `--redis-timeout`; the service stays up
//! and reconnects when Redis returns. SIGHUP reloads the configuration (a file that fails to
//! load leaves the previous one in force).

mod limits;
mod proto;
mod service;
mod store;

use clap::Parser;
use limits::Limits;
use service::{RateLimitServer, RateLimiter};
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use store::Store;
use switchboard_core::config::duration::Millis;

#[derive(Parser)]
#[command(name = "switchboard-rls", version, about)]
struct Args {
    /// Configuration files, or directories of `*.yaml` files (one domain per file).
    #[arg(long, required = true, value_name = "PATH")]
    config: Vec<PathBuf>,
    /// Redis, e.g. redis://127.0.0.1:6379 (use persistence: the counters are the spend).
    #[arg(long, default_value = "redis://127.0.0.1:6379")]
    redis: String,
    /// Address to serve gRPC on (port 0: any free port; the chosen one is printed).
    #[arg(long, default_value = "127.0.0.1:8081")]
    listen: String,
    /// Bound on each call to Redis (and on connecting to it).
    #[arg(long, default_value = "50ms", value_parser = Millis::parse)]
    redis_timeout: Millis,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("switchboard-rls: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("switchboard-rls: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(args: Args) -> Result<(), String> {
    let limits = Limits::load(&args.config)?;
    let store = Store::new(&args.redis, Duration::from_millis(args.redis_timeout.0))?;
    let limiter = Arc::new(RateLimiter::new(limits, store));
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .map_err(|e| format!("{}: {e}", args.listen))?;
    let address = listener.local_addr().map_err(|e| e.to_string())?;
    {
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "listening on {address}");
        let _ = stdout.flush();
    }
    tokio::spawn(reload_on_hangup(limiter.clone(), args.config.clone()));
    tonic::transport::Server::builder()
        .add_service(RateLimitServer(limiter))
        .serve_with_incoming_shutdown(
            // Small answers must not wait for delayed ACKs (Nagle): ~40 ms a call otherwise.
            tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
            stopped(),
        )
        .await
        .map_err(|e| e.to_string())
}

/// SIGTERM or SIGINT.
async fn stopped() {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => std::future::pending().await,
    }
}

async fn reload_on_hangup(limiter: Arc<RateLimiter>, paths: Vec<PathBuf>) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut hangup) = signal(SignalKind::hangup()) else {
        return;
    };
    while hangup.recv().await.is_some() {
        match Limits::load(&paths) {
            Ok(limits) => {
                let domains = limits.domains();
                if let Ok(mut current) = limiter.limits.write() {
                    *current = Arc::new(limits);
                }
                eprintln!("switchboard-rls: configuration reloaded ({domains} domains)");
            }
            Err(e) => eprintln!("switchboard-rls: reload failed, previous configuration kept: {e}"),
        }
    }
}
