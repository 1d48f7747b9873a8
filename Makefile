# Two commands do everything on a fresh machine: `make demo` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
SYSTEM_PYTHON ?= python3
LINT_PATHS := codex_orchestrator flows tasks blocks tests deployments $(wildcard bench)
export PREFECT_SERVER_ANALYTICS_ENABLED := false
# apt-get needs root; use sudo when we are not root and it exists.
SUDO := $(shell [ "$$(id -u)" -ne 0 ] && command -v sudo >/dev/null && echo sudo)

NODE_SDK := sdk/node
# node --test runs test files one at a time on a 2-core machine; two at once lets the Prefect-backed approval test
# overlap the rest. The flag exists from node 20.10; older nodes run them one by one.
NODE_TEST_FLAGS := $(shell node -e 'const [a, b] = process.versions.node.split(".").map(Number); \
  console.log(a > 20 || (a === 20 && b >= 10) ? "--test-concurrency=2" : "")' 2>/dev/null)

.PHONY: demo test node-test install system-deps lint typecheck schemas bench clean

$(VENV)/.installed: pyproject.toml
	$(SYSTEM_PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

install: $(VENV)/.installed

# bubblewrap (sandbox), OpenSSH server and client (the SSH tests start their own sshd), git (demo, tests),
# node and npm (the Node.js SDK in sdk/node), chromium (the browser test drives Debian's chromium through
# Playwright; Playwright cannot download one here), postgresql (tests/deploy and bench/scale_out.py start a
# private server on it; pg_trgm, which Prefect needs there, ships in Debian's postgresql-15 package).
system-deps:
	@if ! command -v bwrap >/dev/null || [ ! -x /usr/sbin/sshd ] || ! command -v ssh-keygen >/dev/null \
	   || ! command -v git >/dev/null || ! command -v node >/dev/null || ! command -v npm >/dev/null \
	   || [ ! -x /usr/bin/chromium ] || ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
	  echo "installing bubblewrap, openssh-server, openssh-client, git, nodejs, npm, chromium, postgresql"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq bubblewrap openssh-server openssh-client git \
	    $$(command -v node >/dev/null || echo nodejs) $$(command -v npm >/dev/null || echo npm) chromium \
	    postgresql >/dev/null; \
	fi

demo: install system-deps
	mkdir -p .demo/prefect-home
	PREFECT_HOME=$(CURDIR)/.demo/prefect-home $(VENV)/bin/codex-orchestrator demo --dir .demo

lint: install
	$(VENV)/bin/ruff check $(LINT_PATHS)
	$(VENV)/bin/ruff format --check $(LINT_PATHS)

typecheck: install
	$(VENV)/bin/mypy

schemas: install
	$(VENV)/bin/codex-orchestrator schema --out schemas
	cd $(NODE_SDK) && ([ -d node_modules ] || npm ci --no-audit --no-fund) && npm run generate

test: install system-deps lint typecheck
	PREFECT_HOME=$$(mktemp -d) $(PY) -m pytest
	$(MAKE) --no-print-directory node-test

# The Node.js SDK: install from the lock file (its `prepare` builds dist/), fail if the generated types are stale
# against schemas/, type-check, then node's test runner against this checkout's CLI.
node-test: install system-deps
	cd $(NODE_SDK) && npm ci --no-audit --no-fund
	cd $(NODE_SDK) && npm run --silent check-generated
	cd $(NODE_SDK) && npm run --silent typecheck
	cd $(NODE_SDK) && CODEX_ORCHESTRATOR_CLI=$(CURDIR)/$(VENV)/bin/codex-orchestrator \
	  node --test $(NODE_TEST_FLAGS) test/*.test.mjs

bench: install system-deps
	PREFECT_HOME=$$(mktemp -d) $(PY) bench/gate_overhead.py
	PREFECT_HOME=$$(mktemp -d) $(PY) bench/exec_latency.py
	PREFECT_HOME=$$(mktemp -d) $(PY) bench/fanout.py
	PREFECT_HOME=$$(mktemp -d) $(PY) bench/scale_out.py

clean:
	rm -rf $(VENV) .demo .runs .mypy_cache .ruff_cache .pytest_cache test-artifacts $(NODE_SDK)/node_modules $(NODE_SDK)/dist
