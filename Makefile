# The two commands a newcomer needs: `make demo` and `make test`.
.PHONY: demo test test-faults bench lint migrate serve worker

demo:            ## the whole system with the emulators and a seeded demo store
	scripts/bootstrap-venv
	.venv/bin/ambassador demo

test:            ## lint, types, layering, migrations, and the whole test suite
	scripts/test

test-faults:     ## only the fault-injection tests (worker kill -9 mid-drain, ...); also in `make test`
	scripts/bootstrap-venv dev
	bash -c 'source scripts/services && .venv/bin/python -m pytest -q -s -p no:cacheprovider -m faults'

lint:
	scripts/bootstrap-venv dev
	.venv/bin/ruff check . && .venv/bin/mypy && .venv/bin/lint-imports

bench:           ## benchmarks, each next to its naive baseline (prints tables)
	scripts/bootstrap-venv dev
	bash -c 'source scripts/services && .venv/bin/python bench/run_all.py $(BENCH_ARGS)'

migrate:
	scripts/bootstrap-venv
	.venv/bin/ambassador migrate
