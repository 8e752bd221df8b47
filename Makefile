# Everything runs from a virtualenv the Makefile makes itself from requirements.lock.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
CLINICS ?= clinics.yaml
OUTPUTDIR ?= output
PORT ?= 8000
PYTEST_ARGS ?=
BENCH_ARGS ?=
export PYTHONPATH := $(CURDIR)/plugins

.PHONY: help setup html serve validate apply-update geocode publish test lint browser golden clean bench
.PHONY: java audit deploy-tools
NODE_STAMP := node_modules/.installed

help:
	@echo "make html      build the site into $(OUTPUTDIR) (CLINICS=..., OUTPUTDIR=...)"
	@echo "make serve     serve $(OUTPUTDIR) on http://127.0.0.1:$(PORT)/"
	@echo "make validate  check $(CLINICS) and list every problem"
	@echo "make apply-update FILE=...  apply a clinic's profile update to $(CLINICS), print the diff (DRY_RUN=1)"
	@echo "make publish   build with publishconf.py, verify, deploy to TARGET=... (ALLOW_PLACEHOLDERS=1, DRY_RUN=1)"
	@echo "make geocode   look up locations without geo (network!) into geocode-cache.json (REFRESH=1 redoes all)"
	@echo "make test      run the whole test suite (installs Chromium if missing)"
	@echo "make lint      ruff over the code (part of make test)"
	@echo "make golden    regenerate the golden pages in tests/golden (review the diff!)"
	@echo "make audit     Lighthouse on key pages of the built site (scores must be >= 95)"
	@echo "make bench     build 1,000 and 10,000 synthetic clinics against a naive Pelican site (slow; BENCH_ARGS=...)"

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

# A clinic's profile update (README, "Profile updates"): refused with every problem listed, or written
# in place with a backup in $(CLINICS).backups/ and a line in $(CLINICS).updates.log.
apply-update: $(STAMP)
	@test -n "$(FILE)" || { echo "make apply-update: say which update to apply: make apply-update FILE=update.yaml [CLINICS=$(CLINICS)]" >&2; exit 2; }
	$(PY) -m clinic_directory apply-update "$(FILE)" --registry "$(CLINICS)" $(if $(DRY_RUN),--dry-run)

# Check, build with publishconf.py, verify, deploy (README, "Publishing"). TARGET: a directory,
# user@host:path (rsync over SSH), s3://bucket/prefix or ghpages:<git remote>; the default is
# publishconf.py's CLINIC_DIRECTORY_PUBLISH_TARGET. The live site is untouched on any failure.
publish: $(STAMP)
	$(PY) -m clinic_directory publish --settings publishconf.py --registry "$(CLINICS)" \
	  $(if $(TARGET),--target "$(TARGET)") \
	  $(if $(filter 1 yes true,$(ALLOW_PLACEHOLDERS)),--allow-placeholders) \
	  $(if $(filter 1 yes true,$(DRY_RUN)),--dry-run)

# The only target that uses the network: Nominatim, one request a second. Review and commit the cache.
geocode: $(STAMP)
	$(PY) -m clinic_directory geocode --settings pelicanconf.py --registry $(CLINICS) $(if $(REFRESH),--refresh)

# Browser tests drive Debian's Chromium; install it when it is missing.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "Installing Debian's chromium for the browser tests"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium; }

# The publish tests deploy over rsync to an SSH server on loopback: Debian's rsync and OpenSSH.
deploy-tools:
	@{ command -v rsync && command -v ssh && test -x /usr/sbin/sshd; } >/dev/null 2>&1 || { \
	  echo "Installing Debian's rsync and openssh-server for the publish tests"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq rsync openssh-client openssh-server; }

# The Nu HTML Checker (vnu.jar) runs on Java 17+: Debian's default JRE when there is none.
java:
	@command -v java >/dev/null 2>&1 || { \
	  echo "Installing Debian's default-jre-headless for the HTML checker"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq default-jre-headless; }

# npm packages of the quality gates, exactly as locked: vnu-jar (tests), lighthouse (audit).
# --ignore-scripts: vnu-jar's install script would download a Java runtime; we use Debian's.
$(NODE_STAMP): package.json package-lock.json
	@command -v npm >/dev/null 2>&1 || { \
	  echo "Installing Debian's nodejs and npm for the quality gates"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq nodejs npm; }
	npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	touch $@

test: $(STAMP) browser java deploy-tools $(NODE_STAMP) lint
	$(PY) -m pytest $(PYTEST_ARGS)

# The code style pyproject.toml sets (pyflakes, pycodestyle, bugbear, import order); part of `make test`.
lint: $(STAMP)
	$(PY) -m ruff check plugins tests bench

# Lighthouse (mobile, simulated throttling) on the home page, a clinic, /find/ and an article of the
# sample site, in Debian's Chromium; fails when a score is below 95. Slow, so not part of `make test`.
audit: $(STAMP) browser $(NODE_STAMP)
	$(PY) tests/lighthouse_audit.py --min-score 95

# Synthetic registries of 1,000 and 10,000 clinics, built in every scenario next to a naive Pelican
# site; medians and ratios to bench-results/ (README, "Performance"). Takes about twenty minutes.
# BENCH_ARGS="--sizes 1000 --runs 3" for a quick look.
bench: $(STAMP) browser
	$(PY) bench/run.py $(BENCH_ARGS)

golden: $(STAMP)
	$(PY) -m pytest tests/test_golden.py --update-golden

clean:
	rm -rf $(OUTPUTDIR) .pytest_cache cache .publish
