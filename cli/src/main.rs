//! `switchboard`: validates a filter configuration, renders it into an Envoy bootstrap (or Istio
//! manifests), imports a LiteLLM proxy configuration, makes virtual keys, and says what the
//! provider kinds are and which environment a configuration's providers read.

mod import;
mod kinds;
mod render;

use clap::{Args, Parser, Subcommand, ValueEnum};
use render::prices::{bake, PriceSource};
use render::{bootstrap, istio, prepare, Mock, Prepared, RenderOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use switchboard_core::config::Problem;
use switchboard_core::limits::keys::KEY_PREFIX;
use switchboard_core::limits::setup::key_entry;
use switchboard_core::runtime::unpriced_under_budget;
use switchboard_core::usage::litellm::PriceList;

#[derive(Parser)]
#[command(
    name = "switchboard",
    version,
    about = "Switchboard: an LLM gateway inside Envoy"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check a filter configuration: every problem with its path, and where each deployment's
    /// price comes from.
    Validate {
        #[command(flatten)]
        input: Input,
    },
    /// Print a complete Envoy bootstrap (or Istio manifests) for a filter configuration.
    Render {
        #[command(flatten)]
        input: Input,
        /// Path of switchboard.wasm as Envoy will see it.
        #[arg(long)]
        wasm: PathBuf,
        /// Send the providers (every one, or those of --mock-providers) to this base URL, with
        /// placeholder credentials (demos, tests).
        #[arg(long, value_name = "URL")]
        mock_upstream: Option<String>,
        /// With --mock-upstream: send only these providers there (the others stay real).
        #[arg(
            long,
            value_name = "NAME,...",
            value_delimiter = ',',
            requires = "mock_upstream"
        )]
        mock_providers: Option<Vec<String>>,
        #[arg(long, value_enum, default_value_t = Format::Yaml)]
        format: Format,
        /// The host the Istio Gateway and VirtualService serve (`--format istio`).
        #[arg(long, default_value = "llm.example.com")]
        istio_host: String,
        /// Write here instead of standard output.
        #[arg(short, long, value_name = "OUT")]
        output: Option<PathBuf>,
        /// Also write the rate-limit service's configuration (`limits.backend: fleet`):
        /// the keys' and teams' limits, for switchboard-rls or envoyproxy/ratelimit.
        #[arg(long, value_name = "OUT.yaml")]
        rls_config: Option<PathBuf>,
    },
    /// Convert another gateway's configuration into a filter configuration; what could not be
    /// carried over is listed on stderr.
    #[command(subcommand)]
    Import(ImportCommand),
    /// Virtual keys for clients (the configuration holds only their SHA-256).
    #[command(subcommand)]
    Key(KeyCommand),
    /// Print the table of provider kinds (Markdown, as in the README).
    Providers,
    /// Print the environment variables each provider of a configuration reads, one per line:
    /// provider, name, set|unset, required|optional (tab-separated).
    Env {
        /// The filter configuration (YAML or JSON).
        file: PathBuf,
    },
}

#[derive(Args)]
struct Input {
    /// The filter configuration (YAML or JSON).
    file: PathBuf,
    /// LiteLLM model_prices_and_context_window.json: prices for deployments without a
    /// `price:` (default: options.prices_file).
    #[arg(long, value_name = "PRICES.json")]
    prices: Option<PathBuf>,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Yaml,
    Json,
    /// Gateway + VirtualService + EnvoyFilter for an Istio ingress gateway.
    Istio,
}

#[derive(Subcommand)]
enum ImportCommand {
    /// A LiteLLM proxy config.yaml: model_list, router_settings and litellm_settings become
    /// providers, models, fallbacks, aliases and options, validated before they are written.
    #[command(after_help = import::EXIT_STATUS_HELP)]
    Litellm {
        /// LiteLLM's config.yaml.
        file: PathBuf,
        /// Write here instead of standard output.
        #[arg(short, long, value_name = "OUT")]
        output: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum KeyCommand {
    /// Print a fresh random key and the `keys:` entry to paste (only its SHA-256).
    New {
        #[arg(default_value = "my-app")]
        name: String,
    },
    /// Print the `keys:` entry for a key read from standard input.
    Hash {
        #[arg(default_value = "my-app")]
        name: String,
    },
}

/// Prints `warn!` lines (e.g. unset provider keys) to stderr.
struct StderrLog;

impl log::Log for StderrLog {
    fn enabled(&self, m: &log::Metadata) -> bool {
        m.level() <= log::Level::Warn
    }
    fn log(&self, r: &log::Record) {
        if self.enabled(r.metadata()) {
            eprintln!("{}: {}", r.level().as_str().to_lowercase(), r.args());
        }
    }
    fn flush(&self) {}
}

static LOGGER: StderrLog = StderrLog;

fn main() -> ExitCode {
    let _ = log::set_logger(&LOGGER).map(|()| log::set_max_level(log::LevelFilter::Warn));
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Validate { input } => validate(&input),
        Command::Render {
            input,
            wasm,
            mock_upstream,
            mock_providers,
            format,
            istio_host,
            output,
            rls_config,
        } => {
            let mock = mock_upstream.as_deref().map(|url| Mock {
                url,
                providers: mock_providers.as_deref(),
            });
            render(
                &input,
                &wasm,
                mock.as_ref(),
                format,
                &istio_host,
                output.as_deref(),
            )
            .and_then(|text| {
                let Some(path) = rls_config else {
                    return Ok(text);
                };
                write_service_config(&input, mock.as_ref(), &path).map(|()| text)
            })
        }
        Command::Import(ImportCommand::Litellm { file, output }) => {
            return import::litellm(&file, output.as_deref())
        }
        Command::Key(command) => key(command),
        Command::Providers => Ok(kinds::table()),
        Command::Env { file } => provider_env(&file),
    };
    match result {
        Ok(text) => print_out(&text),
        Err(message) => {
            eprintln!("{message}");
            ExitCode::FAILURE
        }
    }
}

/// Writes to standard output; a reader that went away (`| head`) ends the command quietly.
fn print_out(text: &str) -> ExitCode {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("stdout: {e}");
            ExitCode::FAILURE
        }
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Reads, validates and prices a configuration; `mock` sends providers there.
fn load(
    input: &Input,
    mock: Option<&Mock>,
) -> Result<(Prepared, Vec<render::prices::DeploymentPrice>, bool), String> {
    let file = input.file.display().to_string();
    let text = std::fs::read_to_string(&input.file).map_err(|e| format!("{file}: {e}"))?;
    let report_problems = |problems: Vec<Problem>| {
        let lines: Vec<String> = problems.iter().map(|p| format!("{file}: {p}")).collect();
        format!("{}\n{} problem(s) found", lines.join("\n"), problems.len())
    };
    let mut prepared = prepare(&text, &env, mock).map_err(report_problems)?;
    // --prices, else options.prices_file (relative to the configuration file).
    let prices_path = input.prices.clone().or_else(|| {
        let configured = prepared.runtime.options.prices_file.as_deref()?;
        let base = input.file.parent().unwrap_or(Path::new("."));
        Some(base.join(configured))
    });
    let list = match &prices_path {
        Some(path) => {
            let shown = path.display();
            let json = std::fs::read_to_string(path).map_err(|e| format!("{shown}: {e}"))?;
            Some(PriceList::parse(&json).map_err(|e| format!("{shown}: {e}"))?)
        }
        None => None,
    };
    let priced = bake(&mut prepared, list.as_ref(), &env).map_err(report_problems)?;
    Ok((prepared, priced, list.is_some()))
}

fn validate(input: &Input) -> Result<String, String> {
    let (prepared, priced, _) = load(input, None)?;
    let rt = &prepared.runtime;
    let mut out = format!(
        "{}: ok ({} providers, {} models, {} deployments)\n",
        input.file.display(),
        rt.providers.len(),
        rt.models.len(),
        rt.deployments.len()
    );
    for deployment in &priced {
        out.push_str(&format!("  price: {deployment}\n"));
    }
    let limits = &rt.limits;
    out.push_str(&format!(
        "  auth: {}; {} keys, {} teams\n",
        if limits.auth_required {
            "a key is required"
        } else {
            "open (requests without a key are served)"
        },
        limits.keys.len(),
        limits.teams.len()
    ));
    out.push_str(&match &limits.fleet {
        None => "  limits: counted in this Envoy's shared data (backend: local)\n".to_owned(),
        Some(f) => format!(
            "  limits: counted by the rate-limit service at {}:{} (backend: fleet, domain `{}`, \
             timeout {}ms, failing {}); max_parallel stays per Envoy\n",
            f.address,
            f.port,
            f.domain,
            f.timeout.0,
            if f.fail_open { "open" } else { "closed" }
        ),
    });
    for warning in unpriced_under_budget(rt) {
        out.push_str(&format!("  warning: {warning}\n"));
    }
    Ok(out)
}

fn render(
    input: &Input,
    wasm: &Path,
    mock: Option<&Mock>,
    format: Format,
    istio_host: &str,
    output: Option<&Path>,
) -> Result<String, String> {
    let (prepared, priced, imported) = load(input, mock)?;
    if imported {
        for missing in priced.iter().filter(|p| p.source == PriceSource::Missing) {
            eprintln!("warning: {missing}");
        }
    }
    let text = match format {
        Format::Istio => {
            // The path inside the gateway pod, taken as given.
            let opts = RenderOptions {
                wasm_path: wasm.display().to_string(),
            };
            let mut text = String::new();
            for doc in istio(&prepared, &opts, istio_host) {
                text.push_str("---\n");
                text.push_str(&serde_yaml::to_string(&doc).map_err(|e| e.to_string())?);
            }
            text
        }
        Format::Yaml | Format::Json => {
            let wasm_path = std::fs::canonicalize(wasm)
                .map_err(|e| format!("{}: {e}", wasm.display()))?
                .display()
                .to_string();
            let value = bootstrap(&prepared, &RenderOptions { wasm_path });
            match format {
                Format::Json => serde_json::to_string_pretty(&value).map_err(|e| e.to_string())?,
                _ => serde_yaml::to_string(&value).map_err(|e| e.to_string())?,
            }
        }
    };
    match output {
        Some(path) => {
            std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))?;
            Ok(String::new())
        }
        None => Ok(text),
    }
}

/// `env FILE`: the report of `kinds::env_report` against this process's environment.
fn provider_env(file: &Path) -> Result<String, String> {
    let shown = file.display();
    let text = std::fs::read_to_string(file).map_err(|e| format!("{shown}: {e}"))?;
    kinds::env_report(&text, &env).map_err(|p| format!("{shown}: {p}"))
}

/// `render --rls-config`: the rate-limit service's configuration from the keys and teams.
fn write_service_config(input: &Input, mock: Option<&Mock>, path: &Path) -> Result<(), String> {
    let (prepared, _, _) = load(input, mock)?;
    let rt = &prepared.runtime;
    let Some(fleet) = &rt.limits.fleet else {
        return Err(format!(
            "{}: --rls-config needs `limits: {{backend: fleet, ...}}`",
            input.file.display()
        ));
    };
    let source = input.file.display().to_string();
    let (text, notes) = render::fleet::service_file(rt, fleet, &source)?;
    for note in notes {
        eprintln!("note: {note}");
    }
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}

/// `key new`, `key hash`. A new key goes to stdout once and is never stored.
fn key(command: KeyCommand) -> Result<String, String> {
    match command {
        KeyCommand::New { name } => {
            use base64::Engine as _;
            let mut random = [0u8; 32];
            getrandom::fill(&mut random).map_err(|e| format!("no randomness: {e}"))?;
            let key = format!(
                "{KEY_PREFIX}{}",
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random)
            );
            Ok(format!(
                "key:  {key}\n      (give it to the client; it is shown only now)\n\
                 config, under `keys:` (add team, models, budget, rpm, tpm, ...):\n  {}\n",
                key_entry(&name, &key)
            ))
        }
        KeyCommand::Hash { name } => {
            let mut key = String::new();
            std::io::stdin()
                .read_line(&mut key)
                .map_err(|e| format!("stdin: {e}"))?;
            let key = key.trim();
            if key.is_empty() {
                return Err("no key on standard input".into());
            }
            Ok(format!("{}\n", key_entry(&name, key)))
        }
    }
}
