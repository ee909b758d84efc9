"""Schema-driven fuzzing (schemathesis) of every operation in the coordinator's OpenAPI document.

The real app behind a real uvicorn server, on the harness's PostgreSQL and Redis (and the fake
Headscale of test_mesh_client as its mesh), is called with
generated valid and invalid input, anonymously and with each caller's credentials (streamer,
friend, admin, node token, the SRS hook secret). Every answer must be documented: no 5xx, the
status code, content type, headers and body as the document says (422s included). Seeded
(`derandomize`), so a run is reproducible; each caller's count is printed, ≥ 1,000 in all.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from streamr_coordinator.app import create_app
from streamr_coordinator.settings import Settings

from .conftest import BOOTSTRAP, HOOK_SECRET
from .support import Api, served
from .test_mesh import _meshed
from .test_mesh_client import FakeHeadscale
from .test_mesh_client import fake as fake

CHECKS = [
    schemathesis.checks.not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
# Per operation and caller: valid input (the documented shapes) and input the document forbids.
EXAMPLES = {GenerationMode.POSITIVE: 3, GenerationMode.NEGATIVE: 2}
MINIMUM_CASES = 1000
CALLERS = ("anonymous", "streamer", "friend", "admin", "node", "hook secret")
# Operations that end the caller's own credentials run last, so the others run signed in.
SIGNING_OUT = ("/auth/logout", "/revoke-tokens", "DELETE /api/v1/node")
_cases_run: dict[str, int] = {}


@dataclass(frozen=True)
class Credentials:
    headers: dict[str, str]


@pytest.fixture
def coordinator(settings: Settings, fake: FakeHeadscale) -> Iterator[str]:
    """With a mesh (the spec-derived fake Headscale, which also checks every request we make)."""
    with served(create_app(_meshed(settings, fake))) as url:
        yield url


def _credentials(api: Api, caller: str) -> Credentials:
    """What each caller sends, with something of its own to act on (a stream, a node)."""
    if caller == "anonymous":
        return Credentials({})
    if caller == "hook secret":
        # SRS's hook relay sends the secret as a bearer token; origin-key takes X-Hook-Secret.
        return Credentials(
            {
                "Authorization": f"Bearer {HOOK_SECRET}",
                "X-Hook-Secret": HOOK_SECRET,
                "X-Bootstrap-Token": BOOTSTRAP,
            }
        )
    if caller == "node":
        friend = api.account("friend")
        node = api.node(friend, "fuzzed-node")
        return Credentials({"Authorization": f"Bearer {node['node_token']}"})
    account = api.account(caller)
    if caller == "streamer":
        api.stream(account, "fuzzed-stream")
    if caller == "friend":
        api.node(account, "fuzzed-node")
    return Credentials(account.auth)


def _signs_out_last(operation) -> tuple[bool, str]:
    label = f"{operation.method.upper()} {operation.path}"
    return any(marker in label for marker in SIGNING_OUT), label


def _fuzz(operation, mode: GenerationMode, url: str, credentials: Credentials) -> Callable:
    count = _cases_run

    @settings(
        max_examples=EXAMPLES[mode],
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case) -> None:
        case.call_and_validate(base_url=url, headers=credentials.headers, checks=CHECKS)
        count[label] = count.get(label, 0) + 1

    label = f"{mode.value} {operation.method.upper()} {operation.path}"
    return run


@pytest.mark.parametrize("caller", CALLERS)
def test_every_operation_answers_as_documented(caller: str, coordinator: str, api: Api) -> None:
    credentials = _credentials(api, caller)
    schema = schemathesis.openapi.from_url(f"{coordinator}/openapi.json")
    operations = sorted(
        (result.ok() for result in schema.get_all_operations()), key=_signs_out_last
    )
    assert len(operations) >= 40, "the document lost operations"
    before = sum(_cases_run.values())
    for operation in operations:
        for mode in EXAMPLES:
            try:
                _fuzz(operation, mode, coordinator, credentials)()
            except Unsatisfiable:
                # Nothing the document forbids can be sent (no input, or only free headers).
                assert mode is GenerationMode.NEGATIVE, f"no valid input for {operation.path}"
    ran = sum(_cases_run.values()) - before
    print(f"{caller}: {ran} cases over {len(operations)} operations")
    # Each caller's share of the ≥ 1,000 cases per run.
    assert ran >= MINIMUM_CASES / len(CALLERS), f"only {ran} cases as {caller}"
