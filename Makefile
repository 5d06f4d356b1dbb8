# The two set-up commands of the README are `make run` and `make test`; both install what they
# need (a pinned uv, then the locked environment) on a fresh machine with only Python 3.11+.
UV_VERSION := 0.13.8
UV := $(shell command -v uv >/dev/null 2>&1 && echo uv || echo python3 -m uv)

.PHONY: setup run test lint bench bento

setup:
	@$(UV) --version >/dev/null 2>&1 || python3 -m pip install --quiet "uv==$(UV_VERSION)"
	@$(UV) sync --locked --quiet

run: setup  ## the main job on embedded defaults
	$(UV) run icans demo

test: setup  ## the whole test suite (what CI runs)
	$(UV) run pytest -n 2

lint: setup
	$(UV) run ruff check . && $(UV) run ruff format --check .

bench: setup
	$(UV) run python benchmarks/bench_cohort.py

bento: setup  ## package the service as a Bento (requirements exported from uv.lock)
	$(UV) export --no-hashes --no-dev --no-emit-project --quiet > requirements/serving.txt
	$(UV) run bentoml build
