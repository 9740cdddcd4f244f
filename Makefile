# The two quick-start commands: `make serve` and `make test` (see README.md).
# Dependencies come from uv.lock (every package pinned with its hashes). After changing
# pyproject.toml's dependencies run `make lock`; `make upgrade` (or `make upgrade PACKAGE=numpy`)
# moves pins to the newest versions pyproject.toml allows.
PYTHON ?= python3
VENV ?= .venv
UV_VERSION := 0.13.9
UV := $(VENV)/bin/uv
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml uv.lock | sha1sum | cut -c1-12)

# uv: install into $(VENV), never download a Python, trust the system's CA certificates.
export UV_PROJECT_ENVIRONMENT := $(abspath $(VENV))
export UV_PYTHON_DOWNLOADS := never
export UV_SYSTEM_CERTS ?= 1

CHROMIUM := /usr/bin/chromium

.PHONY: install serve test lint browser lock upgrade compose-smoke

$(UV):
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet uv==$(UV_VERSION)

# --inexact: packages installed by hand beside the locked ones are left alone.
$(STAMP): pyproject.toml uv.lock | $(UV)
	$(UV) sync --locked --inexact --extra test --python $(VENV)/bin/python
	rm -f $(VENV)/.installed-* && touch $(STAMP)

install: $(STAMP)

lock: | $(UV)
	$(UV) lock

upgrade: | $(UV)
	$(UV) lock $(if $(PACKAGE),--upgrade-package $(PACKAGE),--upgrade)

serve: $(STAMP)
	$(VENV)/bin/socialfer serve

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# The browser tests drive Debian's chromium (Playwright's own browser download is not used);
# as root on Debian this installs it, elsewhere install it yourself or those tests skip (fail under CI).
browser:
	@test -x $(CHROMIUM) || [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null || \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null)

test: lint browser
	$(VENV)/bin/python -m pytest -ra

# The compose stack for real (docker.io + docker-compose, minutes): not part of `make test` or CI.
SHARED_TOOLS ?= ../shared/tools
compose-smoke:
	$(SHARED_TOOLS)/compose-smoke $(CURDIR)
