"""Every example configuration validates, renders, and Envoy accepts the rendered bootstrap."""

import subprocess
from pathlib import Path

import pytest

from harness import CLI, ENVOY, LOGS, ROOT, WASM

EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_renders_and_envoy_validates(example: Path):
    subprocess.run([str(CLI), "validate", str(example)], check=True, capture_output=True)
    LOGS.mkdir(parents=True, exist_ok=True)
    out = LOGS / f"example-{example.stem}.envoy.yaml"
    subprocess.run([str(CLI), "render", str(example), "--wasm", str(WASM), "-o", str(out)],
                   check=True, capture_output=True)
    result = subprocess.run([str(ENVOY), "--mode", "validate", "-c", str(out), "-l", "error"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_validate_reports_problems_with_paths(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("providers: {p: {kind: antropic}}\nmodels:\n- {name: m, deployments: [{provider: q, model: x}]}\n")
    result = subprocess.run([str(CLI), "validate", str(bad)], capture_output=True, text=True)
    assert result.returncode == 1
    assert "providers.p.kind: unknown provider kind `antropic`" in result.stderr
    assert "models[0].deployments[0].provider: unknown provider `q`" in result.stderr


def test_istio_manifest_is_what_the_renderer_makes():
    committed = (ROOT / "envoy/istio/switchboard.yaml").read_text()
    body = "\n".join(line for line in committed.splitlines() if not line.startswith("#")).strip()
    rendered = subprocess.run(
        [str(CLI), "render", str(ROOT / "examples/quickstart.yaml"), "--format", "istio",
         "--wasm", "/etc/switchboard/switchboard.wasm"],
        check=True, capture_output=True, text=True).stdout.strip()
    assert body == rendered, "envoy/istio/switchboard.yaml is stale: regenerate it (see its header)"
