# One command each for a newcomer: `make demo` and `make test`. Everything else is a step of those.
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
PYTEST_ARGS ?=

.PHONY: test check services services-down browser demo venv clean

# The whole suite on a fresh machine: Python deps, Kafka + PostgreSQL, lint, types, tests.
test: check services browser
	eval "$$(scripts/services env)" && $(VENV)/bin/pytest $(PYTEST_ARGS)

check: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

services: venv
	scripts/services up

# The report's browser test renders in Debian's chromium; installed here when missing.
browser:
	scripts/browser

services-down:
	scripts/services down

demo: venv
	$(VENV)/bin/evledger demo

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-* && touch $@

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
