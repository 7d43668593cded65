# Every target sets up its own virtual environment (.venv) from the lock file first.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
# Extra arguments for `make search`, e.g. make search ARGS="--num-samples 8"
ARGS ?=

.PHONY: search test test-fast test-matrix bench docs clean

$(STAMP): requirements.lock pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	# requirements.lock pins the exact set (torch 2.14.1 CUDA build, never the CPU-only 2.13 wheel).
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation --config-settings editable_mode=compat -e .
	touch $(STAMP)

search: $(STAMP)
	$(PY) tune/run_search.py --config search_spaces/smoke.yaml $(ARGS)

# pytest's temp folders: a new one per run. pytest's shared default (/tmp/pytest-of-$USER) lets one suite's
# clean-up delete the folders of another running beside it. Short and under /tmp, not in the checkout: some
# tests put Ray's socket paths under it (at most 107 bytes). Removed when the suite passes, kept (and named)
# when it fails. lint-imports first: the floors of pyproject.toml's [tool.importlinter] (docs: Architecture);
# then ruff, with the rules of pyproject.toml's [tool.ruff].
test: $(STAMP)
	$(VENV)/bin/lint-imports
	$(VENV)/bin/ruff check .
	tmp=$$(mktemp -d /tmp/signsearch-test-XXXXXX) && \
	  if $(PY) -m pytest tests -m "not crash_matrix" --basetemp=$$tmp; then rm -rf $$tmp; \
	  else status=$$?; echo "pytest's temp folders kept in $$tmp"; exit $$status; fi

# The edit-test loop (< 3 min): no test that starts Ray or a search process (marked slow), no crash matrix.
test-fast: $(STAMP)
	tmp=$$(mktemp -d /tmp/signsearch-test-XXXXXX) && \
	  if $(PY) -m pytest tests -m "not slow and not crash_matrix" --basetemp=$$tmp; then rm -rf $$tmp; \
	  else status=$$?; echo "pytest's temp folders kept in $$tmp"; exit $$status; fi

# The crash-point matrix (tests/tune/test_crash_matrix.py): every hold point x kill -9/SIGINT/SIGTERM x 1-/2-worker
# trials, 6 chains of ~10 sessions each (~40 min on 2 quiet cores), so not in `make test`.
test-matrix: $(STAMP)
	tmp=$$(mktemp -d /tmp/signsearch-matrix-XXXXXX) && \
	  if $(PY) -m pytest tests -m crash_matrix --basetemp=$$tmp; then rm -rf $$tmp; \
	  else status=$$?; echo "pytest's temp folders kept in $$tmp"; exit $$status; fi

bench: $(STAMP)
	$(PY) bench/train_overhead.py
	$(PY) bench/search_efficiency.py
	$(PY) bench/search_overhead.py
	$(PY) bench/gpu_throughput.py

# The documentation site (docs/, mkdocs.yml) into site/; --strict: a broken link or a missing page fails the build.
# The reference pages are generated from the code while it builds (docs/hooks.py).
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --site-dir site

clean:
	rm -rf $(VENV) .pytest_cache site
