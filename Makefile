# The two commands of the quick start: `make demo` and `make test`.
# Both bootstrap a virtualenv in .venv and install the package against constraints.txt.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
UV     := $(VENV)/bin/uv
UV_VERSION := 0.13.9
EXTRAS ?= test
LINT_PATHS := airflow_provider_osscse tests dags scripts bench

# Let Python and pytest cache bytecode (and pytest's rewritten test modules) in __pycache__: with
# PYTHONDONTWRITEBYTECODE set, every run recompiles Airflow and re-rewrites ~270 modules (~10 s).
unexport PYTHONDONTWRITEBYTECODE

.PHONY: venv test test-fast test-deployment lint demo docs bench lock clean

# Bytecode is compiled at install time (uv only does it when asked; the editable project in place), since
# with PYTHONDONTWRITEBYTECODE set no command would ever write it: `osscse inspect` took 3.1 s without it, 1.3 s with.
$(VENV)/.installed: pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(VENV)/bin/pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"
	$(UV) pip install --quiet --compile-bytecode --python $(PY) -c constraints.txt -e ".[$(EXTRAS)]"
	$(PY) -m compileall -q airflow_provider_osscse
	@touch $@

venv: $(VENV)/.installed

test: venv lint
	@bash scripts/ensure-postgres.sh
	@bash scripts/ensure-redis.sh
	$(PY) -m pytest $(PYTEST_ARGS)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --quiet --site-dir build/site

# The tier that needs no service (no OSS/KMS server, OpenBao or PostgreSQL) and nothing slow; under 20 s
# (two pytest-xdist workers: each imports Airflow once, the RSA-heavy tests split between them).
# tests/conftest.py marks the others (`services`, `slow`) from the fixtures they use.
test-fast: venv
	$(PY) -m pytest -n 2 -m "not services and not slow" $(PYTEST_ARGS)

# Only the tier that runs a real Airflow deployment (tests/deployment): PostgreSQL as the metadata DB, Redis
# as the Celery broker, api-server, scheduler, dag-processor, triggerer and two Celery workers as processes;
# `make test` runs it too.
test-deployment: venv
	@bash scripts/ensure-postgres.sh
	@bash scripts/ensure-redis.sh
	$(PY) -m pytest -m deployment $(PYTEST_ARGS)

# Lint, format and type checks (configured in pyproject.toml; .pre-commit-config.yaml runs the same).
lint: venv
	$(VENV)/bin/ruff check $(LINT_PATHS)
	$(VENV)/bin/ruff format --check $(LINT_PATHS)
	$(VENV)/bin/mypy

demo: venv
	$(PY) scripts/demo.py

docs: venv
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --site-dir build/site

# The benchmarks (BENCH_ARGS go to the throughput ones); e.g. make bench BENCH_ARGS="--sizes 256M,2G --repeat 3" (see bench/README.md).
bench: venv
	$(PY) bench/cli_startup.py
	$(PY) bench/core_throughput.py $(BENCH_ARGS)
	$(PY) bench/transfer_throughput.py $(BENCH_ARGS)
	$(PY) bench/many_objects.py $(MANY_ARGS)

# Refresh the lock: re-resolve every dependency (all extras) to the newest allowed versions.
lock:
	@test -x $(UV) || { $(PYTHON) -m venv $(VENV) && $(VENV)/bin/pip install --quiet "uv==$(UV_VERSION)"; }
	$(UV) pip compile pyproject.toml --extra test --python-version 3.11 --no-header --upgrade -o constraints.txt

clean:
	rm -rf $(VENV) build site .pytest_cache .demo
