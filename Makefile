# Every target sets up its own virtual environment (.venv) from the lock file first.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
# Extra arguments for `make search`, e.g. make search ARGS="--num-samples 8"
ARGS ?=

.PHONY: search test test-matrix bench clean

$(STAMP): requirements.lock pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	# requirements.lock pins the exact set (torch 2.14.1 CUDA build, never the CPU-only 2.13 wheel).
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation --config-settings editable_mode=compat -e .
	touch $(STAMP)

search: $(STAMP)
	$(PY) tune/run_search.py --config search_spaces/smoke.yaml $(ARGS)

test: $(STAMP)
	$(PY) -m pytest tests

# The crash-point matrix alone (also part of `make test`): every hold point x kill -9/SIGINT/SIGTERM x 1-/2-worker.
test-matrix: $(STAMP)
	$(PY) -m pytest tests -m crash_matrix

bench: $(STAMP)
	$(PY) bench/train_overhead.py
	$(PY) bench/search_efficiency.py
	$(PY) bench/search_overhead.py
	$(PY) bench/gpu_throughput.py

clean:
	rm -rf $(VENV) .pytest_cache
