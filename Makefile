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

# The demo clip is made here: a public-domain portrait shipped in the scikit-image wheel, and a sentence
# spoken by espeak-ng (installed from Debian when possible; without it the clip carries a tone, not speech).
demo: setup
	mkdir -p $(DEMO_DIR)
	@command -v espeak-ng >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  { apt-get install -y -qq espeak-ng >/dev/null 2>&1 || { apt-get update -qq >/dev/null 2>&1 && \
	    apt-get install -y -qq espeak-ng >/dev/null 2>&1; }; }; } || echo "espeak-ng not available: the demo clip has a tone, not speech"
	$(VENV)/bin/omniemo synth --demo $(DEMO_DIR)/demo.mp4
	$(VENV)/bin/omniemo analyze $(DEMO_DIR)/demo.mp4 --report $(DEMO_DIR)/demo.html
	@echo "HTML report: $(DEMO_DIR)/demo.html"

# Few threads: small models on 2 busy cores get much slower with more.
test: setup
	OMP_NUM_THREADS=1 $(PY) -m pytest -q

bench: setup
	OMP_NUM_THREADS=1 $(PY) bench/bench_decode.py
	OMP_NUM_THREADS=1 $(PY) bench/bench_cues.py
	OMP_NUM_THREADS=1 $(PY) bench/bench_analyze.py
	OMP_NUM_THREADS=2 $(PY) bench/bench_models.py
	OMP_NUM_THREADS=2 $(PY) bench/bench_train.py

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache
