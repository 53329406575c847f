# Two commands for a fresh Debian machine (see README.md):
#   make demo   sets everything up and runs the validator demo on the embedded default
#   make test   sets everything up and runs the linters, the type checker and the tests

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PACKAGES := yamlconfig readers calypso sam validator lab

# The real PC/SC stack for the end-to-end tests (pcscd with the vpcd virtual reader), and what
# pip needs to compile pyscard (there is no Linux wheel), and the deploy tests' tools
# (systemd-analyze and systemd-sysusers, shellcheck), and cardpeek (tests/interop: a real client
# reads the emulated Navigo-like card), and PostgreSQL (the office database tests start a private
# server of their own: lab/postgres.py). Installed with apt-get when missing.
SYSTEM_PACKAGES := pcscd vsmartcard-vpcd libpcsclite-dev pkg-config gcc python3-dev systemd shellcheck cardpeek postgresql

.PHONY: demo test lint typecheck unit setup system-deps clean

setup: $(STAMP)

# Order-only: checking the system packages never forces a venv rebuild by itself.
$(STAMP): pyproject.toml | system-deps
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "Python 3.11 or newer is needed ($(PYTHON) is older)"; exit 1; }
	@$(PYTHON) -c "import ensurepip, venv" 2>/dev/null || \
		{ echo "python3-venv is missing: apt-get install python3-venv"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	@if pkg-config --exists libpcsclite 2>/dev/null; then \
		echo "$(BIN)/python -m pip install --quiet -e '.[dev,pcsc,nfc]'"; \
		$(BIN)/python -m pip install --quiet -e '.[dev,pcsc,nfc]'; \
	else \
		echo "libpcsclite-dev is missing: installing without pyscard (the PC/SC tests will skip)"; \
		$(BIN)/python -m pip install --quiet -e '.[dev,nfc]'; \
	fi
	@touch $@

# Installs the missing SYSTEM_PACKAGES as root, or through sudo when it needs no password;
# otherwise says what to install and goes on (the PC/SC tests then skip with the reason).
system-deps:
	@command -v dpkg >/dev/null 2>&1 || \
		{ echo "system-deps: no dpkg here; install pcscd, vpcd (vsmartcard) and libpcsclite by hand"; exit 0; }; \
	missing=""; \
	for pkg in $(SYSTEM_PACKAGES); do \
		dpkg -s $$pkg 2>/dev/null | grep -q '^Status: install ok installed' || missing="$$missing $$pkg"; \
	done; \
	[ -z "$$missing" ] && exit 0; \
	if [ "$$(id -u)" = 0 ]; then sudo=""; \
	elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo="sudo"; \
	else \
		echo "system-deps: missing:$$missing"; \
		echo "system-deps: run 'sudo apt-get install -y$$missing' (PC/SC tests skip meanwhile)"; \
		exit 0; \
	fi; \
	echo "system-deps: installing$$missing"; \
	$$sudo apt-get update -qq && \
	DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq --no-install-recommends $$missing

demo: $(STAMP)
	$(BIN)/validator demo --taps 20 --seed 1

lint: $(STAMP)
	$(BIN)/ruff check $(PACKAGES) tests
	$(BIN)/ruff format --check $(PACKAGES) tests

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest -q

test: lint typecheck unit

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

# Replay benchmark (a 200,000-tap journal; taps/s per mode and peak memory; takes minutes),
# then the network day (bench-replay-network).
.PHONY: bench-replay
bench-replay: $(STAMP)
	$(BIN)/python -m validator.bench.replay_journal
	$(MAKE) bench-replay-network

# Replay of a simulated network day (1,000 validators, 100 stations, 1,000,000 taps, built once
# into /tmp: about ten minutes on two cores, then each replay run takes minutes): in process,
# with 1 and 2 Dask workers, the scaling ratio, peak memory, a year's worker-hours.
# QUICK=1: 100,000 taps. NETDAY_VALIDATORS, NETDAY_STATIONS, NETDAY_TAPS; NETDAY_MACS=1 adds MACs.
.PHONY: bench-replay-network
bench-replay-network: $(STAMP)
	QUICK=$(QUICK) $(BIN)/python -m validator.bench.netday.replay

# Ingest benchmark (a 100,000-tap journal into a private PostgreSQL with fsync on; taps/s).
.PHONY: bench-ingest
bench-ingest: $(STAMP)
	$(BIN)/python -m validator.bench.ingest

# Shipping benchmark: validator ship -> the collector -> a private PostgreSQL with fsync on
# (files, taps and MB per second; seconds and bytes per run on a growing current file).
.PHONY: bench-ship
bench-ship: $(STAMP)
	$(BIN)/python -m lab.shipbench

# Per scenario: APDU counts, modelled tap time (sequential baseline vs engine), host cost split,
# taps through pcscd and vpcd; then per-tap cost with 10^6 journal entries and cards seen
# (a few minutes; `validator bench --json` for the JSON document).
.PHONY: bench
bench: $(STAMP)
	$(BIN)/validator bench

# Reliability and security campaign (tear sweep, hostile cards, fuzzing, crashes, infrastructure
# faults, security, soak, shipping faults): a table ending with "violations: N". Full: under an
# hour; QUICK=1: every part reduced, under 5 minutes. The default test run calls every part at
# smoke size.
.PHONY: reliability
reliability: $(STAMP)
	$(BIN)/python -m lab.reliability $(if $(QUICK),--quick,)
