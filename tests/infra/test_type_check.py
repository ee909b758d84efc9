"""`make lint` type-checks against pulumi-aws's own types: what mocks accept, pyright refuses."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from offline.harness import ROOT

PYRIGHT = ROOT / "tools" / "node_modules" / ".bin" / "pyright"


def pyright(tmp_path: Path, source: str) -> list[str]:
    (tmp_path / "snippet.py").write_text(source)
    (tmp_path / "pyrightconfig.json").write_text(
        json.dumps({"venvPath": str(ROOT), "venv": ".venv", "pythonVersion": "3.11"})
    )
    result = subprocess.run(
        [str(PYRIGHT), "--outputjson", "-p", str(tmp_path / "pyrightconfig.json")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    report = json.loads(result.stdout)
    return [d["message"] for d in report["generalDiagnostics"] if d["severity"] == "error"]


def test_a_misspelt_keyword_and_a_misspelt_input_key_are_errors(tmp_path: Path) -> None:
    errors = pyright(
        tmp_path,
        "import pulumi_aws as aws\n"
        'aws.lb.TargetGroup("tg", port=80, protocol="HTTP", health_check={"pathh": "/health"})\n'
        'aws.lb.LoadBalancer("lb", load_balancer_typ="application")\n',
    )
    assert len(errors) == 2, errors
    assert any('"health_check"' in error for error in errors)
    assert any("No overloads" in error for error in errors)


def test_the_correct_spelling_passes(tmp_path: Path) -> None:
    errors = pyright(
        tmp_path,
        "import pulumi_aws as aws\n"
        'aws.lb.TargetGroup("tg", port=80, protocol="HTTP", health_check={"path": "/health"})\n'
        'aws.lb.LoadBalancer("lb", load_balancer_type="application")\n',
    )
    assert errors == []


def test_make_lint_runs_pyright_over_the_infrastructure_and_ops_code() -> None:
    makefile = (ROOT / "Makefile").read_text()
    lint = makefile[makefile.index("\nlint:") : makefile.index("\n\n", makefile.index("\nlint:"))]
    assert "tools/node_modules/.bin/pyright" in lint
    config = (ROOT / "pyproject.toml").read_text()
    assert 'include = ["components", "program.py", "stack_config", "offline", "ops"]' in config
