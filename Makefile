# One command each for a newcomer: `make demo` and `make test`. Everything else is a step of those.
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
PYTEST_ARGS ?=

.PHONY: test check services services-down browser bench-tools demo venv tools clean

# The whole suite on a fresh machine: Python deps, Kafka + PostgreSQL, lint, types, tests.
test: check services browser tools bench-tools
	eval "$$(scripts/services env)" && OCPI_TARIFFS_BIN=$(OCPI_TARIFFS) $(VENV)/bin/pytest $(PYTEST_ARGS)

check: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

services: venv
	scripts/services up

# The report's browser test renders in Debian's chromium; installed here when missing.
browser:
	scripts/browser

# wrk, the API benchmark's load generator (a small run of the benchmark is in the suite).
bench-tools:
	scripts/bench-tools

services-down:
	scripts/services down

demo: venv
	$(VENV)/bin/evledger demo

venv: $(STAMP)

# The independent OCPI tariff engine (Rust) that the OCPI differential tests price against.
# Built once into evledger's cache, like the Kafka jars, so that every checkout shares it
# (a cold build takes 3.5-5 minutes on 2 busy cores); skipped when
# present. 0.45.0 is the last release that builds with rustc 1.95; --locked keeps its
# dependencies at the versions it was released with.
OCPI_TARIFFS_ROOT ?= $(or $(EVLEDGER_CACHE_DIR),$(HOME)/.cache/evledger)/ocpi-tariffs-cli-0.45.0
OCPI_TARIFFS := $(OCPI_TARIFFS_ROOT)/bin/ocpi-tariffs

tools: $(OCPI_TARIFFS)

$(OCPI_TARIFFS):
	@command -v cargo >/dev/null || { echo "cargo (the Rust toolchain) is needed to build" \
	  "ocpi-tariffs-cli for the OCPI differential tests: see https://rustup.rs"; exit 1; }
	cargo install --locked ocpi-tariffs-cli --version 0.45.0 --root $(OCPI_TARIFFS_ROOT)

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-* && touch $@

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
