"""Compat tests drive a real ``roost serve`` with OpenCode's own Node clients.

``make test`` installs them (``npm ci`` here); outside CI a checkout without
``node_modules`` skips these tests instead of failing.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

COMPAT_DIR = Path(__file__).parent
NODE_MODULES = COMPAT_DIR / "node_modules"
OPENCODE_BIN = NODE_MODULES / "opencode-linux-x64" / "bin" / "opencode"


def require_node_modules() -> None:
    """Skip locally when the Node clients are not installed; in CI they must be."""
    if not NODE_MODULES.is_dir():
        if os.environ.get("CI"):
            pytest.fail("tests/compat/node_modules is missing: run `make compat-install`")
        pytest.skip("Node clients not installed (make compat-install)")
