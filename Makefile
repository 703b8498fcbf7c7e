# urok: the two commands of the README are `make run` and `make test` (.ci/run calls `make test`).
PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
HOST   ?= 127.0.0.1
PORT   ?= 8080

.PHONY: run test lint unit e2e browser-deps build-deps system-deps clean bench-forwarding

# the venv is (re)built when pyproject.toml changes
$(VENV)/.installed: pyproject.toml sfu/_sendmmsg.c sfu/_fastpath.c benchmarks/_rxbatch.c media/_rnnoise_accel.c | build-deps
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PIP) install --quiet --upgrade pip >/dev/null
	@$(PIP) install --quiet -e . 2>&1 | grep -v "is ignored" || true
	@$(PY) -c "import signaling, sfu" && touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	@$(PIP) install --quiet -e '.[test]' 2>&1 | grep -v "is ignored" || true
	@$(PY) -c "import sfu._sendmmsg, sfu._fastpath, benchmarks._rxbatch, media._rnnoise_accel" || \
		{ echo "the C extensions did not build (a C compiler and Python headers are needed)"; exit 1; }
	@$(PY) -c "import pytest, hypothesis, mypy, playwright" && touch $@

run: $(VENV)/.installed
	$(VENV)/bin/urok serve --dev --host $(HOST) --port $(PORT)

# system packages, installed when missing (Debian 12, root): a C compiler for the extensions
# (before the venv is built), and for the tests also chromium
build-deps:
	@bash scripts/system-deps.sh build

system-deps:
	@bash scripts/system-deps.sh test

lint: $(VENV)/.installed-test
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

test: $(VENV)/.installed-test system-deps lint
	$(PY) -m pytest -q -p no:cacheprovider

unit: $(VENV)/.installed-test
	$(PY) -m pytest -q tests/unit tests/sfu

bench-forwarding: $(VENV)/.installed
	$(PY) -m benchmarks.forwarding

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache build *.egg-info
