# sitekit: deploy many Django sites from one codebase.
#   make up     bring up the local stack (nginx, supervisor, one gunicorn master per site) and print the URLs
#   make test   run the tests (unit, Django, 10,000-site nginx, end to end on a throwaway stack, the multi-host rehearsal,
#               the Vagrant environment on docker)
#   make test-vagrant  vagrant up the four machines with the docker provider, provision twice, check the sites, destroy
#   make down   stop everything `make up` started
#   make rotate rotate the local stack's logs now (what logrotate's daily run does on a server)
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= /usr/bin/python3
VENV ?= .venv
PORT ?= 8080
TLS_PORT ?= 8443
STACK ?= $(CURDIR)/.stack
ENV ?= local
PYTEST_ARGS ?=

BIN := $(VENV)/bin
export ANSIBLE_CONFIG := $(CURDIR)/ansible/ansible.cfg

.PHONY: help up down deploy check test test-vagrant lint bench venv system-deps test-deps urls rotate

help:
	@sed -n 's/^#   //p' $(MAKEFILE_LIST)

## venv: the tooling virtualenv (Ansible, the sitekit CLI, test and lint tools), rebuilt when the pins change
venv: $(VENV)/.installed
$(VENV)/.installed: requirements.txt requirements-dev.txt pyproject.toml
	@if ! $(PYTHON) -c 'import ensurepip, venv' 2>/dev/null; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv; \
	  else echo "sitekit: $(PYTHON) cannot create virtualenvs: run 'sudo apt-get install python3-venv' and retry" >&2; exit 1; fi; fi
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $@

## system-deps: nginx and logrotate (installed with apt when run as root; otherwise says what to install)
system-deps:
	@missing=""; \
	[ -x /usr/sbin/nginx ] || missing="$$missing nginx-light"; \
	[ -x /usr/sbin/logrotate ] || missing="$$missing logrotate"; \
	$(PYTHON) -c 'import ensurepip, venv' 2>/dev/null || missing="$$missing python3-venv"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "sitekit: installing$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	  else echo "sitekit: missing$$missing: run 'sudo apt-get install$$missing' and retry" >&2; exit 1; fi; \
	fi

up: system-deps venv deploy urls

deploy: venv
	$(BIN)/ansible-playbook -i inventories/$(ENV) ansible/site.yml \
	  -e sitekit_root=$(STACK) -e sitekit_public_port=$(PORT) -e sitekit_tls_port=$(TLS_PORT)

urls: venv
	@$(BIN)/sitekit urls $(ENV) --port $(PORT) --tls-port $(TLS_PORT)

# nginx stops on SIGQUIT to its master (`nginx -s quit` would first load the configuration, and
# open every site's logs, under this shell's open-files limit).
down:
	@if [ -S $(STACK)/run/supervisor.sock ]; then \
	  $(BIN)/supervisorctl -c $(STACK)/etc/supervisord.conf shutdown >/dev/null || true; fi
	@if [ -f $(STACK)/run/nginx.pid ]; then \
	  kill -QUIT "$$(cat $(STACK)/run/nginx.pid)" 2>/dev/null || true; fi
	@for i in $$(seq 1 100); do \
	  [ -e $(STACK)/run/supervisord.pid ] || [ -e $(STACK)/run/nginx.pid ] || break; sleep 0.2; done
	@echo "sitekit: local stack stopped"

# -f: rotate now, whatever the logs' age or size; the state file stays with the stack
rotate:
	/usr/sbin/logrotate --force --state $(STACK)/var/logrotate.status $(STACK)/etc/logrotate.d

check: venv
	$(BIN)/sitekit check

## test-deps: what the test suite needs beyond the stack (vagrant validates the Vagrantfile and, with
## docker.io, brings it up with the docker provider; pebble and
## certbot obtain a certificate over ACME on the test stack; chromium, with libnss3-tools' certutil
## for its trust store, is the real browser of tests/e2e/test_browser.py)
test-deps: system-deps
	@missing=""; \
	command -v vagrant >/dev/null || missing="$$missing vagrant"; \
	command -v dockerd >/dev/null || missing="$$missing docker.io"; \
	command -v certbot >/dev/null || missing="$$missing certbot"; \
	command -v pebble >/dev/null || missing="$$missing pebble"; \
	[ -x /usr/bin/chromium ] || missing="$$missing chromium"; \
	[ -x /usr/bin/certutil ] || missing="$$missing libnss3-tools"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "sitekit: installing$$missing (the Vagrant, ACME and browser tests)"; \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	  else echo "sitekit: missing$$missing: run 'sudo apt-get install --no-install-recommends$$missing'" >&2; exit 1; fi; \
	fi

# The tests in two runs: those that share no stack (unit, Django) spread over the CPUs
# (pytest-xdist), then the end-to-end, scale, rehearsal and Vagrant tests one at a time (their
# stacks, load windows and timings would compete). Both run; either failing fails the target,
# an interrupted one (Ctrl-C) stops it. PYTEST_ARGS go to both: options (-x, -k EXPR, -m MARK;
# a run that -k or -m leaves empty is no failure), not paths (.venv/bin/pytest PATH runs one).
PARALLEL_TESTS := tests/unit tests/django tests/test_vagrantfile.py
SERIAL_TESTS := tests/e2e tests/scale tests/rehearsal tests/vagrant
test: test-deps venv
	@status=0; \
	for run in "-n auto $(PARALLEL_TESTS)" "$(SERIAL_TESTS)"; do \
	  $(BIN)/pytest $$run $(PYTEST_ARGS); code=$$?; \
	  case "$$code:$(PYTEST_ARGS)" in \
	    0:*|5:-[km]\ *|5:*\ -[km]\ *) ;; \
	    2:*) exit 2 ;; \
	    *) status=$$code ;; \
	  esac; \
	done; \
	exit $$status

test-vagrant: test-deps venv
	$(BIN)/pytest tests/test_vagrantfile.py tests/vagrant $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/yamllint -s .
	cd ansible && ../$(BIN)/ansible-lint --profile production site.yml ../roles

bench: system-deps venv
	$(BIN)/python bench/memory.py
	$(BIN)/python bench/pool_memory.py
