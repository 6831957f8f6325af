# tmip_ryu: set up, test and demonstrate Transparent Mobile IP on Ryu.
# Every target that needs the machine set up depends on `setup`, which is
# idempotent: a second run changes nothing and takes about a second.

VENV := .venv
PYTHON := $(VENV)/bin/python
PYTEST := $(VENV)/bin/pytest

.PHONY: setup packages venv ovs test test-unit test-integration demo \
	bench clean

setup: packages venv ovs

packages:
	@sh scripts/install-debian-packages.sh

venv: packages
	@sh scripts/setup-venv.sh

ovs: packages
	@sh scripts/start-ovs.sh

# Every test: unit tests, then integration tests on real OVS and Mininet.
test: setup
	@sh scripts/check-root.sh "make test"
	$(PYTEST) tests

# Unit tests only: no root, no Open vSwitch, a few seconds.
test-unit:
	$(PYTEST) -m "not integration" tests

test-integration: setup
	@sh scripts/check-root.sh "make test-integration"
	$(PYTEST) -m integration tests

# Roam a host through every cell under load (root); options through
# DEMO_ARGS, e.g. make demo DEMO_ARGS='--cells 4 --interactive'.
demo: setup
	@sh scripts/check-root.sh "make demo"
	$(PYTHON) mininet/demo.py $(DEMO_ARGS)

# Every benchmark (root; Mininet, OVS, Kea): figures and ratios go to
# bench/results/<time>.json and .md.  BENCH_ARGS='--quick' for a short run.
bench: setup
	@sh scripts/check-root.sh "make bench"
	$(PYTHON) bench/run_all.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis build *.egg-info
