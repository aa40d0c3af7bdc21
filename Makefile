# The targets are what CI runs (.ci/run); `make check` runs them all in the current environment.
.PHONY: install lint typecheck unit test check schemas bench

install:
	pip install -e '.[test]'

lint:
	ruff check .
	ruff format --check .

typecheck:
	mypy

unit:
	pytest tests/unit -q

test:
	pytest --ignore=tests/unit

check: lint typecheck unit test

schemas:
	python -m ledger.schema_export schemas

bench:
	pip install -e '.[bench]'
	python benchmarks/bench_ingest.py
