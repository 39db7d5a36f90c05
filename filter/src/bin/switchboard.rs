//! `switchboard validate FILE` and `switchboard render FILE --wasm PATH` (native only).

use std::process::ExitCode;

#[cfg(target_arch = "wasm32")]
fn main() {}

#[cfg(not(target_arch = "wasm32"))]
fn main() -> ExitCode {
    cli::main()
}

#[cfg(not(target_arch = "wasm32"))]
mod cli {
    use std::path::Path;
    use std::process::ExitCode;
    use switchboard::render::prices::{bake, PriceSource};
    use switchboard::render::{bootstrap, istio, prepare, RenderOptions};
    use switchboard::usage::litellm::PriceList;

    const USAGE: &str = "usage:
  switchboard validate FILE [--prices PRICES.json]
  switchboard render FILE --wasm PATH [--prices PRICES.json] [--mock-upstream URL]
                     [--format yaml|json|istio] [--istio-host HOST] [-o OUT]
  switchboard key new [NAME]
  switchboard key hash [NAME] < KEY

validate  checks a filter configuration and reports every problem with its path, and
          where each deployment's price comes from
render    prints a complete Envoy bootstrap for the configuration
            --wasm           path of switchboard.wasm as Envoy will see it
            --prices         LiteLLM model_prices_and_context_window.json: prices for the
                             deployments without a `price:` (default: options.prices_file)
            --mock-upstream  send every provider to this base URL (demos, tests)
            --format istio   Gateway + VirtualService + EnvoyFilter for an Istio ingress
                             gateway (--istio-host, default llm.example.com)
key new   prints a fresh random virtual key and the `keys:` entry to paste (only its SHA-256)
key hash  prints the `keys:` entry for a key read from standard input";

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

    pub fn main() -> ExitCode {
        let _ = log::set_logger(&LOGGER).map(|()| log::set_max_level(log::LevelFilter::Warn));
        let args: Vec<String> = std::env::args().skip(1).collect();
        match run(&args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(message) => {
                eprintln!("{message}");
                ExitCode::FAILURE
            }
        }
    }

    fn env(name: &str) -> Option<String> {
        std::env::var(name).ok()
    }

    fn run(args: &[String]) -> Result<(), String> {
        let (command, rest) = args.split_first().ok_or(USAGE)?;
        if command == "key" {
            return key(rest);
        }
        let mut file = None;
        let mut wasm = None;
        let mut mock = None;
        let mut format = "yaml".to_owned();
        let mut out = None;
        let mut istio_host = "llm.example.com".to_owned();
        let mut prices = None;
        let mut it = rest.iter();
        while let Some(arg) = it.next() {
            let mut value = || {
                it.next()
                    .cloned()
                    .ok_or(format!("{arg} needs a value\n\n{USAGE}"))
            };
            match arg.as_str() {
                "--wasm" => wasm = Some(value()?),
                "--mock-upstream" => mock = Some(value()?),
                "--format" => format = value()?,
                "--istio-host" => istio_host = value()?,
                "--prices" => prices = Some(value()?),
                "-o" | "--output" => out = Some(value()?),
                "-h" | "--help" => return Err(USAGE.into()),
                other if !other.starts_with('-') && file.is_none() => file = Some(other.to_owned()),
                other => return Err(format!("unexpected argument `{other}`\n\n{USAGE}")),
            }
        }
        let file = file.ok_or(format!("missing FILE\n\n{USAGE}"))?;
        let text = std::fs::read_to_string(&file).map_err(|e| format!("{file}: {e}"))?;
        let report_problems = |problems: Vec<switchboard::config::Problem>| {
            let lines: Vec<String> = problems.iter().map(|p| format!("{file}: {p}")).collect();
            format!("{}\n{} problem(s) found", lines.join("\n"), problems.len())
        };
        let mut prepared = prepare(&text, &env, mock.as_deref()).map_err(report_problems)?;
        // --prices, else options.prices_file (relative to the configuration file).
        let prices_path = prices.or_else(|| {
            let configured = prepared.gateway.options.prices_file.as_deref()?;
            let base = Path::new(&file).parent().unwrap_or(Path::new("."));
            Some(base.join(configured).to_string_lossy().into_owned())
        });
        let list = match &prices_path {
            Some(path) => {
                let json = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
                Some(PriceList::parse(&json).map_err(|e| format!("{path}: {e}"))?)
            }
            None => None,
        };
        let priced = bake(&mut prepared, list.as_ref(), &env).map_err(report_problems)?;
        match command.as_str() {
            "validate" => {
                let gw = &prepared.gateway;
                println!(
                    "{file}: ok ({} providers, {} models, {} deployments)",
                    gw.providers.len(),
                    gw.models.len(),
                    gw.deployments.len()
                );
                for deployment in &priced {
                    println!("  price: {deployment}");
                }
                let limits = &gw.limits;
                println!(
                    "  auth: {}; {} keys, {} teams",
                    if limits.auth_required {
                        "a key is required"
                    } else {
                        "open (requests without a key are served)"
                    },
                    limits.keys.len(),
                    limits.teams.len()
                );
                for warning in switchboard::limits::unpriced_under_budget(gw) {
                    println!("  warning: {warning}");
                }
                Ok(())
            }
            "render" => {
                let wasm = wasm.ok_or(format!("render needs --wasm PATH\n\n{USAGE}"))?;
                if list.is_some() {
                    for missing in priced.iter().filter(|p| p.source == PriceSource::Missing) {
                        eprintln!("warning: {missing}");
                    }
                }
                let text = if format == "istio" {
                    // The path inside the gateway pod, taken as given.
                    let docs = istio(&prepared, &RenderOptions { wasm_path: wasm }, &istio_host);
                    let mut text = String::new();
                    for doc in docs {
                        text.push_str("---\n");
                        text.push_str(&serde_yaml::to_string(&doc).map_err(|e| e.to_string())?);
                    }
                    text
                } else {
                    let wasm = std::fs::canonicalize(&wasm)
                        .map_err(|e| format!("{wasm}: {e}"))?
                        .to_string_lossy()
                        .into_owned();
                    let value = bootstrap(&prepared, &RenderOptions { wasm_path: wasm });
                    match format.as_str() {
                        "json" => {
                            serde_json::to_string_pretty(&value).map_err(|e| e.to_string())?
                        }
                        "yaml" => serde_yaml::to_string(&value).map_err(|e| e.to_string())?,
                        other => return Err(format!("unknown format `{other}`")),
                    }
                };
                match out {
                    Some(path) => std::fs::write(&path, text).map_err(|e| format!("{path}: {e}")),
                    None => {
                        print!("{text}");
                        Ok(())
                    }
                }
            }
            other => Err(format!("unknown command `{other}`\n\n{USAGE}")),
        }
    }

    /// `key new [NAME]`, `key hash [NAME]`. The key goes to stdout once and is never stored.
    fn key(args: &[String]) -> Result<(), String> {
        use switchboard::limits::{config::key_entry, keys::KEY_PREFIX};
        let (sub, rest) = args.split_first().ok_or(USAGE)?;
        let name = match rest {
            [] => "my-app",
            [name] => name.as_str(),
            _ => return Err(format!("too many arguments\n\n{USAGE}")),
        };
        match sub.as_str() {
            "new" => {
                use base64::Engine as _;
                let mut random = [0u8; 32];
                getrandom::fill(&mut random).map_err(|e| format!("no randomness: {e}"))?;
                let key = format!(
                    "{KEY_PREFIX}{}",
                    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random)
                );
                println!("key:  {key}");
                println!("      (give it to the client; it is shown only now)");
                println!("config, under `keys:` (add team, models, budget, rpm, tpm, ...):");
                println!("  {}", key_entry(name, &key));
                Ok(())
            }
            "hash" => {
                let mut key = String::new();
                std::io::stdin()
                    .read_line(&mut key)
                    .map_err(|e| format!("stdin: {e}"))?;
                let key = key.trim();
                if key.is_empty() {
                    return Err("no key on standard input".into());
                }
                println!("{}", key_entry(name, key));
                Ok(())
            }
            other => Err(format!("unknown key command `{other}`\n\n{USAGE}")),
        }
    }
}
