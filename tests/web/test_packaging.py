"""The coordinator's wheel (what the image installs) carries the templates and static files."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
import zipfile
from importlib import metadata
from importlib.resources import files
from pathlib import Path

COORDINATOR = Path(__file__).resolve().parents[2] / "coordinator"
WEB = COORDINATOR / "src" / "streamr_coordinator" / "web"


def test_wheel_ships_every_template_and_static_file(tmp_path: Path) -> None:
    # Built in isolation with the pinned setuptools, as the image's `pip install` does.
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path)]
    source = tmp_path / "source"  # a copy, so the build leaves nothing in the work tree
    shutil.copytree(
        COORDINATOR,
        source,
        ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__", "node_modules"),
    )
    subprocess.run([*command, str(source)], check=True)
    (wheel,) = tmp_path.glob("streamr_coordinator-*.whl")
    shipped = set(zipfile.ZipFile(wheel).namelist())
    expected = {
        f"streamr_coordinator/web/{path.relative_to(WEB).as_posix()}"
        for folder in ("templates", "static")
        for path in (WEB / folder).rglob("*")
        if path.is_file()
    }
    assert len(expected) >= 8
    assert expected <= shipped, sorted(expected - shipped)


def test_the_docs_assets_come_from_a_pinned_runtime_dependency() -> None:
    """The image installs the wheel's dependencies, so Swagger UI's files are in it too."""
    project = tomllib.loads((COORDINATOR / "pyproject.toml").read_text())["project"]
    (pin,) = [r for r in project["dependencies"] if r.startswith("fastapi-offline==")]
    assert metadata.version("fastapi-offline") == pin.split("==")[1]
    assets = files("fastapi_offline") / "static"
    for name in ("swagger-ui-bundle.js", "swagger-ui.css", "favicon.png"):
        assert (assets / name).is_file(), name
