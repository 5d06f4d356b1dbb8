# The two set-up commands of the README are `make run` and `make test`; both install what they
# need (a pinned uv, then the locked environment) on a fresh machine with only Python 3.11+.
UV_VERSION := 0.13.8
UV := $(shell command -v uv >/dev/null 2>&1 && echo uv || echo python3 -m uv)

.PHONY: setup browser postgres nginx run test test-fast fuzz lint docs docs-serve bench bento

# --compile-bytecode: the environment's packages are compiled once here. Where
# PYTHONDONTWRITEBYTECODE is set (CI images often set it), Python would otherwise compile
# mlflow, bentoml, xgboost and the rest again in every process: ~11 s of the ~17 s their
# imports take, in each test worker, CLI call and server the suite starts.
setup:
	@$(UV) --version >/dev/null 2>&1 || python3 -m pip install --quiet "uv==$(UV_VERSION)"
	@$(UV) sync --locked --quiet --compile-bytecode

# Debian's headless Chromium for the browser tests (tests/browser.py drives /usr/bin/chromium
# through Playwright; no browser is ever downloaded). Installed once with apt (as root, or
# through sudo); a no-op when already there. Its dependencies (libfontconfig1 ->
# fontconfig-config -> fonts-dejavu-core) bring the font the reports' sans-serif resolves to.
CHROMIUM := /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

browser:
	@test -x $(CHROMIUM) || { \
	  echo "Installing Debian's chromium for the browser tests (apt-get)"; \
	  $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive \
	    apt-get install -y -qq --no-install-recommends chromium >/dev/null && \
	  $(CHROMIUM) --version; }

# Debian's PostgreSQL for the shared tracking server (ops/tracking_server.py; its test
# starts a real one). Installed once with apt (as root, or through sudo) only when no
# /usr/lib/postgresql/*/bin/initdb exists; the cluster it creates is never used (the tracking
# server initialises its own under artifacts/tracking-server/).
postgres:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { \
	  echo "Installing Debian's postgresql for the tracking server (apt-get)"; \
	  $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive \
	    apt-get install -y -qq --no-install-recommends postgresql >/dev/null && \
	  ls /usr/lib/postgresql/*/bin/initdb; }

# Debian's nginx, the load balancer in front of two replicas in tests/test_scale_out.py (the
# test starts its own, with its own configuration, on 127.0.0.1). Installed once with apt.
NGINX := /usr/sbin/nginx

nginx:
	@test -x $(NGINX) || { \
	  echo "Installing Debian's nginx for the scale-out test (apt-get)"; \
	  $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive \
	    apt-get install -y -qq --no-install-recommends nginx >/dev/null && \
	  $(NGINX) -v; }

run: setup  ## the main job on embedded defaults
	$(UV) run icans demo

test: setup browser postgres nginx  ## the whole test suite (what CI runs)
	$(UV) run pytest -n 2 --dist worksteal

# The fast tier (tests/conftest.py): no trained champion, no server, no apt program, no large
# cohort; under 2 minutes on 2 cores. Needs nothing apt installs.
FAST := not champion and not server and not cluster and not postgres and not nginx and not browser and not slow

test-fast: setup  ## the fast tier: in-process tests on small inputs
	$(UV) run pytest -n 2 --dist worksteal -m "$(FAST)"

# The FHIR endpoint and the CDS Hooks service fuzzed with 3,000 new random cases a test (the
# suite runs the same 40 a test every time): tests/test_fhir_cds_fuzz.py, ~10 minutes on 2 cores.
fuzz: setup  ## the FHIR and CDS Hooks fuzzing at 3,000 cases a test
	ICANS_FUZZ_CASES=3000 $(UV) run pytest -n 2 -rP tests/test_fhir_cds_fuzz.py

lint: setup  ## style, the import layers and the types (the suite checks all three too)
	$(UV) run ruff check . && $(UV) run ruff format --check . && $(UV) run lint-imports && $(UV) run pyright

# The documentation site (mkdocs.yml, docs/): strict (a broken link, anchor or reference fails
# it) and offline (no fonts, CDN or plugin fetches anything). Built into site/ (not committed).
# NO_MKDOCS_2_WARNING silences Material's end-of-life banner, which is not a build warning.
docs: setup  ## the documentation site, built strictly into site/
	NO_MKDOCS_2_WARNING=1 $(UV) run mkdocs build --strict

docs-serve: setup  ## the documentation site on http://127.0.0.1:8000, rebuilt on every change
	NO_MKDOCS_2_WARNING=1 $(UV) run mkdocs serve

bench: setup
	$(UV) run python benchmarks/bench_cohort.py

bento: setup  ## package the service as a Bento (requirements exported from uv.lock)
	$(UV) export --no-hashes --no-dev --no-emit-project --quiet > requirements/serving.txt
	$(UV) run bentoml build
