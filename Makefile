# Every target installs what it needs first, so each works on a fresh machine.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
# uv from PATH, else the one pip installs as a module (works without touching PATH).
UV := $(shell command -v uv 2>/dev/null || echo "python3 -m uv")
NPM_FLAGS := --no-audit --no-fund --loglevel=error

.PHONY: install serve test compat-install browser-install postgres-install lint fmt typecheck check bench

install:
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 || \
		python3 -m pip install --quiet uv
	$(UV) sync --frozen --compile-bytecode
	@# PYTHONDONTWRITEBYTECODE may be set: compile our own sources once so start-up is fast.
	$(BIN)/python -m compileall -q src >/dev/null

serve: install
	$(BIN)/roost serve

compat-install:
	cd tests/compat && npm ci $(NPM_FLAGS)

# Debian's Chromium (tests/e2e/test_browser_origins.py) and tmux (the TUI tests,
# tests/compat/test_tui.py); installed when running as root (CI is root), else those tests
# skip and say what is missing.
browser-install:
	@{ command -v chromium && command -v tmux; } >/dev/null 2>&1 || [ "$$(id -u)" != 0 ] || { \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -qq --no-install-recommends chromium tmux >/dev/null; }

# PostgreSQL's server from Debian (tests/support/postgres.py starts a private throwaway
# cluster on loopback with it); installed when running as root (CI is root), else the
# PostgreSQL tests skip and say what is missing. The package's own cluster is not used.
postgres-install:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || \
		[ "$$(id -u)" != 0 ] || { \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -qq --no-install-recommends postgresql >/dev/null; }

test: install compat-install browser-install postgres-install
	$(BIN)/ruff format --check src tests bench
	$(BIN)/ruff check src tests bench
	$(BIN)/lint-imports
	$(BIN)/mypy src tests
	$(BIN)/pytest -n 2 --dist worksteal

lint: install
	$(BIN)/ruff format --check src tests bench
	$(BIN)/ruff check src tests bench
	$(BIN)/lint-imports

fmt: install
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

typecheck: install
	$(BIN)/mypy src tests

check: lint typecheck test

bench: install
	$(BIN)/python bench/roost_bench.py
