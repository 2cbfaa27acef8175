# faceledger: `make run` starts the service on the embedded default; `make test` checks everything.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

export FACELEDGER_HOME ?= $(CURDIR)/faceledger-data

.PHONY: install browser postgres run test lint typecheck bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

lint: install
	$(VENV)/bin/ruff check faceledger tests bench
	$(VENV)/bin/mypy faceledger

# The browser tests drive a real Chromium: Debian's `chromium` (apt-get install chromium) when
# missing, or else Playwright's own build (playwright install chromium); see scripts/ensure-browser.
browser: install
	@scripts/ensure-browser $(PY)

# The database tests start a throwaway PostgreSQL server of their own (tests/pg.py) from Debian's
# postgresql binaries: scripts/ensure-postgres installs them (apt-get) when they are missing.
postgres:
	@scripts/ensure-postgres >/dev/null

test: lint browser postgres
	$(VENV)/bin/pytest -q

# init once (a note, not an error, when the data home exists); serve prints the sign-in last.
run: install
	@$(VENV)/bin/faceledger init --if-needed
	@$(VENV)/bin/faceledger serve

bench: install
	$(PY) -m pip install --quiet --no-deps face_recognition==1.3.0
	$(PY) bench/run_all.py --lfw $(or $(LFW),../shared/facedata/lfw) --out bench/results $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
