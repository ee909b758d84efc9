"""Checks over the whole session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.infra.support import check_unchanged


@pytest.fixture(scope="session", autouse=True)
def shared_evaluations_unchanged() -> Iterator[None]:
    """The program evaluations tests share (tests/infra/support.evaluated) are read-only: fail the
    session if a test changed one after its last reuse."""
    yield
    check_unchanged()
