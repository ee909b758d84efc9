"""Fixtures for the boot-script tests: a throwaway Debian root per test, program runs per stack."""

from __future__ import annotations

import base64
import shutil
from collections.abc import Iterator

import pytest

from offline.harness import ProgramRun
from tests.boot.debian_root import DebianRoot
from tests.infra.support import evaluated


@pytest.fixture
def root() -> Iterator[DebianRoot]:
    assert shutil.which("buildah"), "buildah is missing: run scripts/install-system-deps.sh"
    assert shutil.which("chroot"), "chroot is missing"
    debian = DebianRoot()
    yield debian
    debian.remove()


def user_data_of(run: ProgramRun, name: str) -> str:
    """The user data a host gets in `run`: an instance's as given, a launch template's decoded."""
    resource = run.named(name)
    if resource.type == "aws:ec2/launchTemplate:LaunchTemplate":
        return base64.b64decode(resource.inputs["userData"]).decode()
    return resource.inputs["userData"]


@pytest.fixture(scope="session")
def prod() -> ProgramRun:
    return evaluated("prod")


@pytest.fixture(scope="session")
def dev() -> ProgramRun:
    return evaluated("dev")
