"""The node kit refuses what the coordinator would refuse, before it does anything: its name pattern
and capacity limit are the API's own (schemas.py), and its README says the same. The ports it
announces are the ones the edge config it renders listens on."""

from __future__ import annotations

import re
from pathlib import Path

from streamr_coordinator import schemas

from srs import render

ROOT = Path(__file__).resolve().parents[2]
SETUP = (ROOT / "node" / "setup.sh").read_text()


def _shell_value(name: str) -> str:
    match = re.search(rf"^{name}=(.+)$", SETUP, re.MULTILINE)
    assert match, f"node/setup.sh defines no {name}"
    return match.group(1).strip("'\"")


def _api_capacity_limit() -> int:
    field = schemas.NodeIn.model_fields["capacity_viewers"]
    return next(rule.le for rule in field.metadata if getattr(rule, "le", None) is not None)


def test_setup_uses_the_apis_name_pattern() -> None:
    assert _shell_value("NAME_PATTERN") == schemas.NAME_PATTERN


def test_setup_and_its_readme_use_the_apis_capacity_limit() -> None:
    limit = _api_capacity_limit()
    assert int(_shell_value("MAX_CAPACITY")) == limit
    assert f"viewers this box can serve (1-{limit})" in (ROOT / "node" / "README.md").read_text()


def test_setup_announces_the_ports_the_rendered_edge_listens_on() -> None:
    assert int(_shell_value("EDGE_HTTP_PORT")) == render.HTTP_PORT
    assert int(_shell_value("EDGE_HTTPS_PORT")) == render.HTTPS_PORT
