# Two commands do everything on a fresh machine: `make demo` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
SYSTEM_PYTHON ?= python3
LINT_PATHS := codex_orchestrator flows tasks blocks tests deployments $(wildcard bench)
export PREFECT_SERVER_ANALYTICS_ENABLED := false
# apt-get needs root; use sudo when we are not root and it exists.
SUDO := $(shell [ "$$(id -u)" -ne 0 ] && command -v sudo >/dev/null && echo sudo)

.PHONY: demo test install system-deps lint typecheck schemas bench clean

$(VENV)/.installed: pyproject.toml
	$(SYSTEM_PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

install: $(VENV)/.installed

# bubblewrap (sandbox), OpenSSH server and client (the SSH tests start their own sshd), git (demo, tests),
# chromium (the browser test drives Debian's chromium through Playwright; Playwright cannot download one here).
system-deps:
	@if ! command -v bwrap >/dev/null || [ ! -x /usr/sbin/sshd ] || ! command -v ssh-keygen >/dev/null \
	   || ! command -v git >/dev/null || [ ! -x /usr/bin/chromium ]; then \
	  echo "installing bubblewrap, openssh-server, openssh-client, git, chromium"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq bubblewrap openssh-server openssh-client git \
	    chromium >/dev/null; \
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

test: install system-deps lint typecheck
	PREFECT_HOME=$$(mktemp -d) $(PY) -m pytest

bench: install system-deps
	PREFECT_HOME=$$(mktemp -d) $(PY) bench/gate_overhead.py
	PREFECT_HOME=$$(mktemp -d) $(PY) bench/exec_latency.py

clean:
	rm -rf $(VENV) .demo .runs .mypy_cache .ruff_cache .pytest_cache test-artifacts
