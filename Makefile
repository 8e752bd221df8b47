# Everything runs from a virtualenv the Makefile makes itself from requirements.lock.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
CLINICS ?= clinics.yaml
OUTPUTDIR ?= output
PORT ?= 8000
PYTEST_ARGS ?=
export PYTHONPATH := $(CURDIR)/plugins

.PHONY: help setup html serve validate test browser golden clean

help:
	@echo "make html      build the site into $(OUTPUTDIR) (CLINICS=..., OUTPUTDIR=...)"
	@echo "make serve     serve $(OUTPUTDIR) on http://127.0.0.1:$(PORT)/"
	@echo "make validate  check $(CLINICS) and list every problem"
	@echo "make test      run the whole test suite (installs Chromium if missing)"
	@echo "make golden    regenerate the golden pages in tests/golden (review the diff!)"

$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.lock
	touch $@

setup: $(STAMP)

html: $(STAMP)
	$(PY) -m clinic_directory build --settings pelicanconf.py --output $(OUTPUTDIR) --registry $(CLINICS) --quiet

serve:
	@test -d $(OUTPUTDIR) || $(MAKE) html
	$(PY) -m http.server $(PORT) --bind 127.0.0.1 --directory $(OUTPUTDIR)

validate: $(STAMP)
	$(PY) -m clinic_directory validate $(CLINICS)

# Browser tests drive Debian's Chromium; install it when it is missing.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "Installing Debian's chromium for the browser tests"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium; }

test: $(STAMP) browser
	$(PY) -m pytest $(PYTEST_ARGS)

golden: $(STAMP)
	$(PY) -m pytest tests/test_golden.py --update-golden

clean:
	rm -rf $(OUTPUTDIR) .pytest_cache
