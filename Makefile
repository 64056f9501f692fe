# Every target that needs Python creates or refreshes its own virtualenv first,
# so `make demo` and `make test` are the only commands a newcomer types.
#
#   make test                  the test suite with LiteRT (ai-edge-litert, numpy 2)
#   make test RUNTIME=tflite   the same suite with tflite-runtime 2.14 and numpy<2
#                              (the Raspberry Pi OS bookworm combination; Python 3.11 only)

PYTHON ?= python3
RUNTIME ?= litert

ifeq ($(RUNTIME),tflite)
VENV ?= .venv-tflite
else ifeq ($(RUNTIME),litert)
VENV ?= .venv
else
$(error RUNTIME=$(RUNTIME) is not known: use RUNTIME=litert or RUNTIME=tflite)
endif

# Extra groups from setup.cfg; CI adds `systemd` (systemd-python, built against libsystemd-dev).
EXTRAS ?= test,bench
BIN := $(VENV)/bin
comma := ,
STAMP := $(VENV)/.installed-$(RUNTIME)-$(subst $(comma),-,$(EXTRAS))
PYTEST_ARGS ?=

.PHONY: all venv demo test lint bench models fidelity deploy-test clean check-system media

all: test

# Fail early, naming the Debian package, rather than with a compiler error later.
check-system:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' || \
		{ echo "error: $(PYTHON) is older than 3.11; install python3 (3.11 to 3.13)" >&2; exit 1; }
	@$(PYTHON) -c 'import venv, ensurepip' 2>/dev/null || \
		{ echo "error: $(PYTHON) cannot create virtualenvs; run: sudo apt-get install python3-venv" >&2; exit 1; }
ifneq (,$(findstring systemd,$(EXTRAS)))
	@pkg-config --exists libsystemd 2>/dev/null && command -v gcc >/dev/null || \
		{ echo "error: EXTRAS=systemd builds systemd-python; run: sudo apt-get install gcc pkg-config libsystemd-dev python3-dev" >&2; exit 1; }
endif

$(STAMP): setup.cfg pyproject.toml | check-system
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --disable-pip-version-check -q --upgrade pip
	$(BIN)/python -m pip install --disable-pip-version-check -q -e '.[$(EXTRAS),$(RUNTIME)]'
	@touch $@

venv: $(STAMP)

media: $(STAMP)
	$(BIN)/expression-portrait media

test: $(STAMP)
	@$(BIN)/python -c 'from expression_portrait.runtime import find_runtime; print("TFLite runtime under test:", find_runtime())'
	$(BIN)/python -m pytest $(PYTEST_ARGS)

demo: $(STAMP)
	$(BIN)/expression-portrait demo

lint: $(STAMP)
	$(BIN)/ruff check device tests models_tflite/build.py

bench: $(STAMP)
	$(BIN)/python -m expression_portrait.bench

models:
	$(MAKE) -C models_tflite

fidelity: $(STAMP)
	$(BIN)/python tools/fidelity.py

clean:
	rm -rf .venv .venv-tflite demo-output .pytest_cache .ruff_cache build *.egg-info device/*.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

# install.sh and the Ansible role end to end in a debootstrapped Debian bookworm chroot.
# Needs root, debootstrap and the network (Debian archive, PyPI); deploy/README.md has
# the last measured run.
deploy-test:
	@command -v debootstrap >/dev/null && command -v systemd-nspawn >/dev/null || { echo "error: make deploy-test needs debootstrap and systemd-nspawn; run: sudo apt-get install debootstrap systemd-container" >&2; exit 1; }
	bash deploy/test-chroot.sh
