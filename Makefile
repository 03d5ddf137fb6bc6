# The two commands of the README: `make run` and `make test`. Both set up what they need.
VENV := .venv
BIN := $(VENV)/bin

.PHONY: bootstrap run bench bench-api bench-nbd test lint

bootstrap:
	@./scripts/bootstrap.sh

# The service on the embedded default: SQLite + a local chunk directory in ./data.
# data/bootstrap.json holds the endpoints, the default folder and an admin token.
run: bootstrap
	$(BIN)/disksnap serve --data-dir data

# The engine benchmark beside restic and borg (see bench/engine.py).
bench: bootstrap
	$(BIN)/disksnap bench --size 512MiB --json bench/results/engine-512MiB.json

# The REST API benchmark beside moto server's EC2 (see bench/api.py): 1,000 snapshots,
# 50 concurrent clients.
bench-api: bootstrap
	$(BIN)/disksnap bench api --json bench/results/api.json

# The NBD benchmark beside nbdkit's file plugin (see bench/nbd.py): 1 GiB both ways,
# 4 KiB write latency idle and during snapshots.
bench-nbd: bootstrap
	$(BIN)/python bench/nbd.py --size 1GiB --json bench/results/nbd.json

lint: bootstrap
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

test: lint
	$(BIN)/python -m pytest
