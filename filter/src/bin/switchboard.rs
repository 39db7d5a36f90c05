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
    use std::process::ExitCode;
    use switchboard::render::{bootstrap, istio, prepare, RenderOptions};

    const USAGE: &str = "usage:
  switchboard validate FILE
  switchboard render FILE --wasm PATH [--mock-upstream URL] [--format yaml|json|istio]
                     [--istio-host HOST] [-o OUT]

validate  checks a filter configuration and reports every problem with its path
render    prints a complete Envoy bootstrap for the configuration
            --wasm           path of switchboard.wasm as Envoy will see it
            --mock-upstream  send every provider to this base URL (demos, tests)
            --format istio   Gateway + VirtualService + EnvoyFilter for an Istio ingress
                             gateway (--istio-host, default llm.example.com)";

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
        let mut file = None;
        let mut wasm = None;
        let mut mock = None;
        let mut format = "yaml".to_owned();
        let mut out = None;
        let mut istio_host = "llm.example.com".to_owned();
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
                "-o" | "--output" => out = Some(value()?),
                "-h" | "--help" => return Err(USAGE.into()),
                other if !other.starts_with('-') && file.is_none() => file = Some(other.to_owned()),
                other => return Err(format!("unexpected argument `{other}`\n\n{USAGE}")),
            }
        }
        let file = file.ok_or(format!("missing FILE\n\n{USAGE}"))?;
        let text = std::fs::read_to_string(&file).map_err(|e| format!("{file}: {e}"))?;
        let prepared = prepare(&text, &env, mock.as_deref()).map_err(|problems| {
            let lines: Vec<String> = problems.iter().map(|p| format!("{file}: {p}")).collect();
            format!("{}\n{} problem(s) found", lines.join("\n"), problems.len())
        })?;
        match command.as_str() {
            "validate" => {
                let gw = &prepared.gateway;
                println!(
                    "{file}: ok ({} providers, {} models, {} deployments)",
                    gw.providers.len(),
                    gw.models.len(),
                    gw.deployments.len()
                );
                Ok(())
            }
            "render" => {
                let wasm = wasm.ok_or(format!("render needs --wasm PATH\n\n{USAGE}"))?;
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
}
