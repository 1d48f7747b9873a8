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

.PHONY: demo test node-test node-install install system-deps phoenix lint typecheck schemas codex-schema bench clean

$(VENV)/.installed: pyproject.toml
	$(SYSTEM_PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

install: $(VENV)/.installed

# Arize Phoenix, the OTLP trace backend the telemetry tests start on loopback: in a venv of its own, since its
# dependency pins are not Prefect's (tests/otel_backend.py finds it there, or at $CODEX_PHOENIX).
PHOENIX_VENV ?= .venv-phoenix
$(PHOENIX_VENV)/.installed:
	$(SYSTEM_PYTHON) -m venv $(PHOENIX_VENV)
	$(PHOENIX_VENV)/bin/python -m pip install -q --upgrade pip
	$(PHOENIX_VENV)/bin/python -m pip install -q 'arize-phoenix==20.26.1'
	touch $@

phoenix: $(PHOENIX_VENV)/.installed

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

# Two worker processes, a test file each at a time (module-scoped servers start once): most tests wait on
# servers, PTYs and sandboxes rather than compute, so two overlap well on two cores. PYTEST_WORKERS=0 runs serially.
PYTEST_WORKERS ?= 2
# The Node.js SDK is built before pytest: tests/test_node_sdk_layout.py loads every file node --test discovers.
test: install system-deps phoenix lint typecheck node-install
	PREFECT_HOME=$$(mktemp -d) $(PY) -m pytest $(if $(filter 0,$(PYTEST_WORKERS)),,-n $(PYTEST_WORKERS) --dist loadfile)
	$(MAKE) --no-print-directory node-test

# The Node.js SDK: install from the lock file (its `prepare` builds dist/), once per lock file.
node-install: $(NODE_SDK)/node_modules/.installed
$(NODE_SDK)/node_modules/.installed: $(NODE_SDK)/package-lock.json $(NODE_SDK)/package.json $(wildcard $(NODE_SDK)/src/*.ts)
	cd $(NODE_SDK) && npm ci --no-audit --no-fund
	touch $@

# Fail if the generated types are stale against schemas/, type-check, then node's test runner against this
# checkout's CLI. Plain `node --test`: what it discovers (every file under test/) is what runs, so helpers live in
# support/.
node-test: install system-deps node-install
	cd $(NODE_SDK) && npm run --silent check-generated
	cd $(NODE_SDK) && npm run --silent typecheck
	cd $(NODE_SDK) && CODEX_ORCHESTRATOR_CLI=$(CURDIR)/$(VENV)/bin/codex-orchestrator \
	  node --test $(NODE_TEST_FLAGS)

# Each script prints its tables; bench/summary.py then prints issue 13's per-call cost table from their
# JSON lines (every figure, its target, met or missed, and its spread).
bench: install system-deps
	@out=$$(mktemp -d); failed=0; \
	PREFECT_HOME=$$(mktemp -d) $(PY) bench/gate_overhead.py | tee $$out/gate_overhead.txt || failed=1; \
	PREFECT_HOME=$$(mktemp -d) $(PY) bench/exec_latency.py | tee $$out/exec_latency.txt || failed=1; \
	PREFECT_HOME=$$(mktemp -d) $(PY) bench/startup.py | tee $$out/startup.txt || failed=1; \
	PREFECT_HOME=$$(mktemp -d) $(PY) bench/fanout.py || failed=1; \
	PREFECT_HOME=$$(mktemp -d) $(PY) bench/telemetry_overhead.py || failed=1; \
	PREFECT_HOME=$$(mktemp -d) $(PY) bench/scale_out.py || failed=1; \
	PREFECT_HOME=$$(mktemp -d) $(PY) bench/prefect_cost.py || failed=1; \
	PREFECT_HOME=$$(mktemp -d) $(PY) bench/interrupt.py || failed=1; \
	$(PY) bench/hostile_requests.py || failed=1; \
	PREFECT_HOME=$$(mktemp -d) $(PY) bench/agent_gate.py || failed=1; \
	$(PY) bench/summary.py $$out/gate_overhead.txt $$out/exec_latency.txt $$out/startup.txt || failed=1; \
	exit $$failed

clean:
	rm -rf $(VENV) $(PHOENIX_VENV) .demo .runs .mypy_cache .ruff_cache .pytest_cache test-artifacts $(NODE_SDK)/node_modules $(NODE_SDK)/dist

# The app-server protocol schema of the pinned codex (openai-codex-cli-bin), committed; tests/agents checks it.
codex-schema: install
	rm -rf .codex-schema && $$($(PY) -c 'from codex_cli_bin import bundled_codex_path as p; print(p())') \
	  app-server generate-json-schema --out .codex-schema
	rm -f schemas/codex-app-server/*.json && cp .codex-schema/*.json schemas/codex-app-server/ && rm -rf .codex-schema
