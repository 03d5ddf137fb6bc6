# The two commands of the README: `make run` and `make test`. Both set up what they need.
VENV := .venv
BIN := $(VENV)/bin

.PHONY: bootstrap run test lint check

bootstrap:
	@./scripts/bootstrap.sh

# Until the API server lands (issue 3) the service's face is the engine benchmark on a
# small disk: full + incremental snapshot, restore checked bit-exact, beside restic and borg.
run: bootstrap
	$(BIN)/disksnap bench --size 512MiB --json bench/results/engine-512MiB.json

lint: bootstrap
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

test: lint
	$(BIN)/python -m pytest
