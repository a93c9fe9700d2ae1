# The README's two commands: `make demo` and `make test`. Both install what they need.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=

# command=Debian package, installed with apt-get when missing and running as root
SYSTEM_DEPS_TEST := redis-server=redis-server prometheus=prometheus promtool=prometheus chromium=chromium docker-compose=docker-compose rabbitmq-server=rabbitmq-server
SYSTEM_DEPS_DEMO := redis-server=redis-server

.PHONY: test demo bench install system-deps-test system-deps-demo clean binaries stack

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Editable install: the source tree is what runs, whatever the working directory.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[test]'
	@touch $@

install: $(STAMP)

# The `logs` extra, outside the venv: only the test of its handler puts it on PYTHONPATH (in the venv,
# `opentelemetry-instrument` would load it into every launcher test). Its pin is the extra's.
LOGGING_EXTRA := build/extra/logging/.installed
$(LOGGING_EXTRA): pyproject.toml | $(STAMP)
	rm -rf build/extra/logging
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps --target build/extra/logging \
		"$$($(BIN)/python -c 'import tomllib; print(*tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]["logs"])')"
	@touch $@

system-deps-test:
	@scripts/system-deps.sh $(SYSTEM_DEPS_TEST)

system-deps-demo:
	@scripts/system-deps.sh $(SYSTEM_DEPS_DEMO)

# The Collector distribution and Jaeger v2, built from pinned Go modules (Go and the Go module
# proxy are on these machines; the module and build caches make a second build fast). Each file
# target depends on what pins it, so a second `make` rebuilds nothing. Cold build times: docs/stack.md.
COLLECTOR_PINS := otel-config/collector/builder-config.yaml otel-config/collector/go.mod otel-config/collector/go.sum
JAEGER_PINS := otel-config/jaeger/go.mod otel-config/jaeger/go.sum

build/otelcol-mailscope: $(COLLECTOR_PINS) scripts/build-collector.sh
	scripts/build-collector.sh

build/jaeger: $(JAEGER_PINS) scripts/build-jaeger.sh
	scripts/build-jaeger.sh

binaries: build/otelcol-mailscope build/jaeger

test: $(STAMP) $(LOGGING_EXTRA) system-deps-test binaries
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The demo needs only the `demo` extra: a fresh clone installs in well under a minute.
DEMO_STAMP := $(VENV)/.installed-demo
$(DEMO_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[demo]'
	@touch $@

demo: $(DEMO_STAMP) system-deps-demo
	$(BIN)/python -m examples.demo

bench: $(STAMP) system-deps-demo
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) demo-output *.egg-info build

# The production path on this host without Docker: Jaeger v2, two gateways and an agent from the
# shipped configs, the demo through them; prints the Jaeger and Prometheus URLs; Ctrl-C stops it.
stack: $(STAMP) system-deps-demo binaries
	$(BIN)/python scripts/stack.py
