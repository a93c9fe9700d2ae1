"""The binaries `make binaries` builds, and the shipped configs they load."""

from __future__ import annotations

import subprocess

import pytest
import yaml

from tests.support.collector import collector_binary
from tests.support.stack import AGENT_YAML, GATEWAY_YAML, OTEL


@pytest.mark.parametrize("config", [AGENT_YAML, GATEWAY_YAML], ids=lambda p: p.name)
def test_the_shipped_collector_configs_load_in_the_built_collector(config):
    done = subprocess.run([collector_binary(), "validate", "--config", str(config)], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]


def test_the_build_holds_exactly_the_components_the_builder_config_lists():
    done = subprocess.run([collector_binary(), "components"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    built = yaml.safe_load(done.stdout)
    config = yaml.safe_load((OTEL / "collector" / "builder-config.yaml").read_text())
    for kind in ("receivers", "processors", "exporters", "extensions"):
        modules = {entry["module"] for entry in built.get(kind) or []}
        assert modules == {entry["gomod"] for entry in config[kind]}, kind
