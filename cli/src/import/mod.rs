//! `switchboard import`: another gateway's configuration → a Switchboard filter configuration,
//! validated as `switchboard validate` does before it is written, and a report on stderr of
//! everything that could not be carried over. LiteLLM's proxy `config.yaml` is the one
//! source so far.

mod litellm;
mod report;
mod yaml;

use crate::render::prepare;
use crate::render::prices::bake;
use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;

/// Exit status: written, with items left out (listed on stderr). 1 is an error (nothing
/// written) as for every command, 2 a usage error (clap's), 0 everything carried over.
pub const EXIT_LEFT_OUT: u8 = 3;

/// What `--help` says about the exit status.
pub const EXIT_STATUS_HELP: &str = "Exit status: 0 everything carried over; 3 written, \
without the items listed on stderr (`left out: <path in the LiteLLM file>: <why>`); 1 error, \
nothing written; 2 usage error. `note:` lines (changes worth knowing) do not change the \
status.";

/// `import litellm FILE [-o OUT]`.
pub fn litellm(file: &Path, output: Option<&Path>) -> ExitCode {
    let shown = file.display().to_string();
    let text = match std::fs::read_to_string(file) {
        Ok(text) => text,
        Err(e) => return fail(&format!("{shown}: {e}")),
    };
    let source = file
        .file_name()
        .map_or(shown.clone(), |n| n.to_string_lossy().into_owned());
    let converted = match litellm::convert(&text, &source, &|name: &str| std::env::var(name).ok()) {
        Ok(converted) => converted,
        Err(message) => return fail(&format!("{shown}: {message}")),
    };
    if let Err(problems) = validate(&converted.yaml) {
        return fail(&format!(
            "{shown}: the converted configuration does not validate (a bug in the importer; \
             nothing written):\n{problems}"
        ));
    }
    let written = match output {
        Some(path) => std::fs::write(path, &converted.yaml)
            .map(|()| path.display().to_string())
            .map_err(|e| format!("{}: {e}", path.display())),
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout
                .write_all(converted.yaml.as_bytes())
                .and_then(|()| stdout.flush())
                .map(|()| "standard output".to_owned())
                .map_err(|e| format!("stdout: {e}"))
        }
    };
    let written = match written {
        Ok(to) => to,
        Err(message) => return fail(&message),
    };
    let report = &converted.report;
    let left_out = report.left_out_count();
    eprint!("{}", report.lines());
    eprintln!(
        "{shown} → {written}: {} models, {} providers, {} deployments; {}",
        converted.models,
        converted.providers,
        converted.deployments,
        if left_out == 0 {
            "everything carried over".to_owned()
        } else {
            format!("{left_out} item(s) left out (exit status {EXIT_LEFT_OUT})")
        }
    );
    if left_out == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_LEFT_OUT)
    }
}

fn fail(message: &str) -> ExitCode {
    eprintln!("{message}");
    ExitCode::FAILURE
}

/// What `switchboard validate` checks, with every variable the configuration reads taken as
/// set: the output must not depend on the environment of the machine that imports it.
fn validate(yaml: &str) -> Result<(), String> {
    let env = |name: &str| Some(format!("set-{name}"));
    let problems = match prepare(yaml, &env, None) {
        Ok(mut prepared) => match bake(&mut prepared, None, &env) {
            Ok(_) => return Ok(()),
            Err(problems) => problems,
        },
        Err(problems) => problems,
    };
    Err(problems
        .iter()
        .map(|p| format!("  {p}"))
        .collect::<Vec<_>>()
        .join("\n"))
}
