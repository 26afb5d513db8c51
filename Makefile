# headrace: the README's commands. Only python3 and make are assumed; everything else is
# installed into .venv by the `venv` target (uv from PyPI, then the project and its tools).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test bench up down status lint fmt schemas clean

$(STAMP): pyproject.toml scripts/system-deps.sh
	@sh scripts/system-deps.sh
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check uv
	@$(BIN)/uv pip install --quiet --python $(BIN)/python -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)  ## start the embedded stack, run the compare-models example, stop
	$(BIN)/python -m examples.demo

test: $(STAMP)  ## unit, integration and end-to-end tests against a real broker and PostgreSQL
	$(BIN)/python -m pytest -q -n 2 --dist loadgroup

bench: $(STAMP)  ## benchmarks (not part of test)
	$(BIN)/python -m bench

up: $(STAMP)
	$(BIN)/headrace up

down: $(STAMP)
	$(BIN)/headrace down

status: $(STAMP)
	$(BIN)/headrace status

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy headrace contracts services tests bench
	$(BIN)/lint-imports
	$(BIN)/python scripts/check_test_docstrings.py tests

fmt: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

schemas: $(STAMP)  ## regenerate contracts/schemas from the pydantic models
	$(BIN)/python -m contracts.generate

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
