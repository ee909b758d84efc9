"""The watch page's player libraries: exact npm pins, locked, and the copies the coordinator
serves are byte for byte the pinned packages' builds, licences alongside (nothing from a CDN)."""

from __future__ import annotations

import json

import pytest

from scripts import vendor_player_libs as vendor

PLAYER = vendor.ROOT / "coordinator" / "player"


def _package(name: str) -> dict:
    path = vendor.PACKAGES / name / "package.json"
    if not path.is_file():
        pytest.fail(f"{path} is missing: run `make setup` (npm ci --prefix coordinator/player)")
    return json.loads(path.read_text())


def test_players_are_pinned_exactly_and_locked() -> None:
    wanted = json.loads((PLAYER / "package.json").read_text())["dependencies"]
    assert set(wanted) == {"mpegts.js", "hls.js"}
    lock = json.loads((PLAYER / "package-lock.json").read_text())["packages"]
    for name, version in wanted.items():
        assert version[0].isdigit(), f"{name} {version} is a range, not a pin"
        assert lock[f"node_modules/{name}"]["version"] == version
        assert lock[f"node_modules/{name}"]["integrity"].startswith("sha512-")
        assert _package(name)["version"] == version  # what `make setup` installed
        assert _package(name)["license"] == "Apache-2.0"


@pytest.mark.parametrize(("source", "name"), vendor.FILES)
def test_served_copies_are_the_pinned_packages_files(source: str, name: str) -> None:
    shipped = vendor.VENDOR / name
    assert shipped.read_bytes() == (vendor.PACKAGES / source).read_bytes(), (
        f"{shipped} differs from npm's {source}: run `python scripts/vendor_player_libs.py`"
    )


def test_the_vendor_folder_holds_only_what_the_script_copies() -> None:
    assert {path.name for path in vendor.VENDOR.iterdir()} == {name for _, name in vendor.FILES}


def test_licences_are_noted_for_each_player() -> None:
    notes = (PLAYER / "README.md").read_text()
    for name, version in json.loads((PLAYER / "package.json").read_text())["dependencies"].items():
        assert f"| [{name}](" in notes and f"| {version} | Apache-2.0" in notes
        licence = (vendor.VENDOR / f"{name}.LICENSE").read_text()
        assert "Apache License" in licence and "Version 2.0" in licence
