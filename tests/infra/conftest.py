"""Fixtures over the shared program runs: each stack x mode is evaluated once per session."""

from __future__ import annotations

import pytest

from offline.harness import ProgramRun
from tests.infra.support import STACKS, evaluated

MODES = {"update": False, "preview": True}


@pytest.fixture(scope="session")
def dev() -> ProgramRun:
    return evaluated("dev")


@pytest.fixture(scope="session")
def prod() -> ProgramRun:
    return evaluated("prod")


@pytest.fixture(
    scope="session",
    params=[(stack, mode) for stack in STACKS for mode in MODES],
    ids=[f"{stack}-{mode}" for stack in STACKS for mode in MODES],
)
def any_run(request: pytest.FixtureRequest) -> ProgramRun:
    """Every stack, in update and in preview mode."""
    stack, mode = request.param
    return evaluated(stack, preview=MODES[mode])


@pytest.fixture(scope="session", params=STACKS)
def updated(request: pytest.FixtureRequest) -> ProgramRun:
    """Every stack in update mode (ids known, so references can be followed)."""
    return evaluated(request.param)
