"""Schemathesis against Roost's own ``/doc``: no 5xx, and every response as the document says.

One real ``roost serve``; each operation gets ``_EXAMPLES`` valid and ``_EXAMPLES`` invalid
requests generated from the document (Hypothesis, derandomized so a run is reproducible). The
SSE streams are left out: a stream never ends, so a generated request would only time out
(``tests/e2e/test_events.py`` covers them). Failures are collected for every operation before
the test fails, and the counts are printed (``pytest -s`` shows them).
"""

from __future__ import annotations

from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.result import Err

from tests.support.server import RoostServer

pytestmark = pytest.mark.e2e

_EXAMPLES = 30
"""Generated requests per operation and generation mode; the whole test stays under a minute
on two cores."""

_STREAMS = {"/event", "/global/event"}
_RUNS_COMMANDS = {"/session/{sessionID}/shell"}
"""Generated bodies there are shell commands Roost would run on this machine: not sent."""

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


def _exercise(
    operation: Any, mode: GenerationMode, base_url: str, session: requests.Session
) -> tuple[int, list[str]]:
    """Send ``_EXAMPLES`` generated requests; return how many were sent and what failed."""
    sent = 0
    failures: list[str] = []

    @settings(
        max_examples=_EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def send(case: Any) -> None:
        nonlocal sent
        sent += 1
        try:
            case.call_and_validate(base_url=base_url, session=session, checks=CHECKS, timeout=30)
        except (AssertionError, BaseExceptionGroup) as exc:
            failures.append(f"{operation.label} ({mode.value}): {exc}")

    try:
        send()
    except Unsatisfiable:
        # An operation without parameters or body has no invalid request to generate.
        assert mode is GenerationMode.NEGATIVE and sent == 0, operation.label
    return sent, failures


def test_every_operation_answers_as_documented_and_never_with_a_5xx(server: RoostServer) -> None:
    schema = schemathesis.openapi.from_url(server.url + "/doc")
    operations = []
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            raise result.err()
        if result.ok().path not in _STREAMS | _RUNS_COMMANDS:
            operations.append(result.ok())
    sent = 0
    failures: list[str] = []
    with requests.Session() as session:
        for operation in operations:
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                count, failed = _exercise(operation, mode, server.url, session)
                sent += count
                failures.extend(failed)
    print(
        f"\nschemathesis: {len(operations)} operations, {sent} requests, {len(failures)} failures"
    )
    assert len(operations) >= 30
    assert sent >= len(operations) * 2
    errors = [line for line in server.log_lines if "ERROR" in line or "Traceback" in line]
    assert not failures, "\n\n".join(failures[:10]) + "\n\nserver log:\n" + "".join(errors[-20:])
    assert server.get("/global/health").json()["healthy"] is True
