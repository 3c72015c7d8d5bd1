# accessbot — every target does its own set-up, idempotently (a stamp file skips work already done).
PY      ?= python3.11
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
NPMSTAMP:= node_modules/.installed

.PHONY: demo test soak bench setup npm chromium poppler clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

$(NPMSTAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

setup: $(STAMP) $(NPMSTAMP)

npm: $(NPMSTAMP)

# Debian's chromium drives the browser tests; a new machine does not have it.
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium (needed by the browser tests)"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	  || echo "could not install chromium: browser tests will say why they skip"; }

# poppler-utils (pdftotext, pdftoppm) read the evidence report's PDF in the tests; a new machine does not have it.
poppler:
	@command -v pdftotext >/dev/null 2>&1 || { \
	  echo "installing Debian's poppler-utils (the report tests read PDFs with it)"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq poppler-utils >/dev/null) \
	  || echo "could not install poppler-utils: the PDF tests will say why they skip"; }

# `make demo PERSON=pattif@contoso.com`: be another person of .m365agentsplayground.yml in the Playground.
demo: setup
	$(BIN)/accessbot demo $(if $(PERSON),--as $(PERSON))

# pytest exits 5 when it collected nothing: that is a broken suite, said as such, never a pass.
test: setup chromium poppler
	@$(BIN)/python -m pytest -q $(PYTEST_ARGS); rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "pytest collected no tests: the suite is broken" >&2; fi; exit $$rc

# Every benchmark in bench/, one after another at its default (realistic) size, each printing its figures and
# the ratios measured in its own run (docs/benchmarks.md says what each measures). About 13 minutes on 2 idle
# cores; fanout alone takes 3.5 of them, because Teams' 50 messages/s is its ceiling.
BENCHES := decision_path decision_slack first_contacts campaign_open past_campaigns fanout fanout_slack graph_collection csp_collection partner_rounds run_pruning instances ledger_appends report
# bench.instances runs accessbot on PostgreSQL: the local server unless told otherwise.
ACCESSBOT_BENCH_POSTGRES_URL ?= postgresql://postgres@127.0.0.1:5432/test
export ACCESSBOT_BENCH_POSTGRES_URL

bench: setup
	@set -e; for b in $(BENCHES); do echo "== bench.$$b"; $(BIN)/python -m bench.$$b; echo; done

# kill -9 of a real server under decision load, 200 rounds (the default suite runs 20): 5 to 11 minutes.
SOAK_ROUNDS ?= 200
soak: setup
	ACCESSBOT_KILL9_ROUNDS=$(SOAK_ROUNDS) $(BIN)/python -m pytest -q -s -p no:cacheprovider tests/reliability/test_kill9_under_decision_load.py

clean:
	rm -rf $(VENV) node_modules .accessbot
