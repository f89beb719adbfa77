# Till — the two commands a newcomer needs are `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install assets debs browser run test test-unit test-integration test-e2e lint fmt bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

static/vendor/.stamp: package.json package-lock.json
	npm ci --no-audit --no-fund --ignore-scripts
	mkdir -p static/vendor
	cp node_modules/htmx.org/dist/htmx.min.js static/vendor/htmx.min.js
	cp node_modules/htmx-ext-sse/dist/sse.min.js static/vendor/sse.min.js
	touch static/vendor/.stamp

assets: static/vendor/.stamp

install: $(STAMP) assets

# Debian packages: chromium for the browser tests (never a downloaded browser build), ffmpeg for the media
# worker, poppler-utils (pdftoppm / pdftotext) to read rendered receipts back in tests.
DEBS := chromium:/usr/bin/chromium ffmpeg:/usr/bin/ffmpeg poppler-utils:/usr/bin/pdftoppm
debs:
	@missing=""; for pair in $(DEBS); do [ -x "$${pair#*:}" ] || missing="$$missing $${pair%%:*}"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = "0" ]; then \
	    (apt-get update -qq || true) && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	  else echo "missing Debian packages:$$missing (run 'sudo apt-get install$$missing')" >&2; exit 1; fi; \
	fi

browser: debs

run: install
	-@$(MAKE) --no-print-directory debs  # video needs ffmpeg; the shop runs without it
	$(BIN)/till up

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

fmt: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test-unit: install
	$(BIN)/pytest -q tests/unit

test-integration: install
	$(BIN)/pytest -q tests/providers tests/integration

# Playwright (sync) runs in its own pytest process: it cannot share a loop with pytest-asyncio.
test-e2e: install debs
	$(BIN)/pytest -q -p no:asyncio tests/e2e

test: install debs lint
	$(BIN)/pytest -q tests/unit tests/providers tests/integration
	$(BIN)/pytest -q -p no:asyncio tests/e2e

bench: install
	$(BIN)/python bench/http_baseline.py

clean:
	rm -rf $(VENV) node_modules static/vendor .pytest_cache .mypy_cache .ruff_cache
