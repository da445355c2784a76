# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test test-quick lint bench bench-env bench-models clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,spark,matching]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/regulars --store demo/regulars.duckdb demo --out demo

# Two workers, one test file each at a time (a file's shared fixtures are built once).
XDIST := -n 2 --dist loadfile

test: $(STAMP)
	$(BIN)/python -m pytest $(XDIST)

test-quick: $(STAMP)
	$(BIN)/python -m pytest $(XDIST) -m "not spark and not slow"

lint: $(STAMP)
	$(BIN)/ruff format --check src tests bench
	$(BIN)/ruff check src tests bench

bench: $(STAMP)
	$(BIN)/python bench/import_bench.py

# lifetimes, for bench/models_bench.py, in its own environment.
.venv-bench/.installed: bench/requirements-lifetimes.txt
	test -x .venv-bench/bin/python || $(PY) -m venv .venv-bench
	.venv-bench/bin/python -m pip install --quiet -r bench/requirements-lifetimes.txt
	touch .venv-bench/.installed

bench-env: .venv-bench/.installed

bench-models: $(STAMP) bench-env
	$(BIN)/python bench/models_bench.py

clean:
	rm -rf $(VENV) .venv-bench demo .pytest_cache
