# Two commands on a fresh machine: `make serve` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CONFIG ?= $(wildcard airlock.toml)

.PHONY: serve test lint typecheck unit clean help hf0 hf1 deps-chromium deps-system mutation

help:
	@echo "make serve   create .venv, install, run the proxy on 127.0.0.1:8080"
	@echo "make test    install the test extras, lint, type-check and run the whole suite"
	@echo "make mutation  mutation testing of the security-carrying modules (docs/testing.md)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# opa-golib-python-bindings: real OPA (v1.20, a Go shared library) in-process, the engine
# `policy.engine = "auto"` picks when it is installed (README, "Policy engine"), and the stand-in
# OPA server and `policy test` in the tests.  Its metadata says Python >= 3.14 but it runs on 3.11,
# hence --ignore-requires-python.  Where no wheel fits the platform, `make serve` goes on with
# regopy; `make test` needs it.
GOLIB := opa-golib-python-bindings==0.4.4

$(VENV)/.installed: pyproject.toml Makefile | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	$(BIN)/python -m pip install --quiet --ignore-requires-python $(GOLIB) \
	  || echo "$(GOLIB) is not installable here: the proxy will use the regopy engine"
	touch $@

$(VENV)/.installed-test: pyproject.toml Makefile | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	$(BIN)/python -m pip install --quiet --ignore-requires-python $(GOLIB)
	touch $(VENV)/.installed $@

# pytest-xdist workers for `make test` (each runs its own fake servers; tests bind port 0).
TEST_WORKERS ?= 2

# Other hub client series, each in its own environment, for the tests: 0.x (the series
# transformers 4.x pins) and the late 1.x (httpx; per-process `.incomplete`, resume only within
# one call; the hostile-upstream tests).  `.venv-hf<N>` holds huggingface_hub $(HF_VERSION_<N>).
HF0 := .venv-hf0
HF1 := .venv-hf1
HF_VERSION_0 := 0.36.2
HF_VERSION_1 := 1.33.0
.venv-hf%/.installed:
	$(PYTHON) -m venv .venv-hf$*
	echo "*" > .venv-hf$*/.gitignore  # keep the environment out of git
	.venv-hf$*/bin/python -m pip install --quiet 'huggingface_hub==$(HF_VERSION_$*)'
	touch $@

hf0: $(HF0)/.installed
hf1: $(HF1)/.installed

# Debian's chromium for the admin page's browser tests (driven by playwright; never a browser
# download).  Installed only as root and only when missing; otherwise those tests skip and say
# why, except under CI (CI=true), where they fail (tests/require.py).
deps-chromium:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
	  && (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) \
	  >/dev/null; } || echo "chromium not installed (not root?): the browser tests will skip (fail in CI)"

# Debian packages for the deploy tests: iproute2 and nftables (ip, nft) for the restricted runner
# built in network namespaces (tests/integration/test_deploy_netns.py), systemd (systemd-analyze
# and the system's units) for the unit file's checks (tests/integration/test_deploy_services.py).
# Installed only as root and only the missing ones; otherwise those tests skip and say why,
# except under CI (CI=true), where they fail (tests/require.py).
deps-system:
	@PATH="$$PATH:/usr/sbin:/sbin"; missing=""; \
	  command -v ip >/dev/null 2>&1 || missing="$$missing iproute2"; \
	  command -v nft >/dev/null 2>&1 || missing="$$missing nftables"; \
	  { command -v systemd-analyze && [ -d /usr/lib/systemd/system ]; } >/dev/null 2>&1 \
	  || missing="$$missing systemd"; \
	  [ -z "$$missing" ] || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && (apt-get update -qq \
	  && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing) >/dev/null; } \
	  || echo "not installed (not root?):$$missing: the deploy tests needing them will skip (fail in CI)"

# Go's collector in the embedded OPA engine: fewer, bounded collections (proxy/runtime.py).
serve: $(VENV)/.installed
	GOGC=$${GOGC:-400} GOMEMLIMIT=$${GOMEMLIMIT:-192MiB} $(BIN)/airlock serve $(if $(CONFIG),--config $(CONFIG))

lint: $(VENV)/.installed-test
	$(BIN)/ruff check proxy mirror_store tests
	$(BIN)/ruff format --check proxy mirror_store tests

typecheck: $(VENV)/.installed-test
	$(BIN)/mypy

test: lint typecheck hf0 hf1 deps-chromium deps-system
	$(BIN)/python -m pytest -m "not network" -n $(TEST_WORKERS)

# Mutation testing of the security-carrying modules ([tool.mutmut] in pyproject.toml; method,
# results and equivalent mutants in docs/testing.md).  Not part of `make test`.  MODULES narrows
# a run to mutmut name globs, e.g. `make mutation MODULES="proxy.ranges* mirror_store.fill*"`;
# MUTATION_JOBS is mutmut's --max-children.  Results are cached in mutants/ (`mutmut results`).
MODULES ?=
MUTATION_JOBS ?= 1
$(VENV)/.installed-mutation: pyproject.toml Makefile $(VENV)/.installed-test
	$(BIN)/python -m pip install --quiet -e '.[test,mutation]'
	touch $@

mutation: hf0 hf1 $(VENV)/.installed-mutation
	mkdir -p mutants && ln -sfn ../$(HF0) mutants/$(HF0) && ln -sfn ../$(HF1) mutants/$(HF1)
	$(BIN)/mutmut run --max-children $(MUTATION_JOBS) $(foreach m,$(MODULES),'$(m)')
	$(BIN)/mutmut results

clean:
	rm -rf $(VENV) $(HF0) $(HF1) var .mypy_cache .ruff_cache .pytest_cache mutants
