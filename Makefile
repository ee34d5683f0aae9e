# Two commands on a fresh machine: `make demo` and `make test`. Both run `make setup` first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.omniemo-installed
DEMO_DIR ?= demo-out

.PHONY: setup demo test bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml requirements.lock requirements-nodeps.lock
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.lock
	$(PY) -m pip install --quiet --no-deps -r requirements-nodeps.lock
	$(PY) -m pip install --quiet --no-deps -e .
	touch $(STAMP)

demo: setup
	mkdir -p $(DEMO_DIR)
	$(VENV)/bin/omniemo synth $(DEMO_DIR)/demo.mp4 --duration 4
	$(VENV)/bin/omniemo probe $(DEMO_DIR)/demo.mp4

# Few threads: small models on 2 busy cores get much slower with more.
test: setup
	OMP_NUM_THREADS=1 $(PY) -m pytest -q

bench: setup
	OMP_NUM_THREADS=1 $(PY) bench/bench_decode.py

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache
