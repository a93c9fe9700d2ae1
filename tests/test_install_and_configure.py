"""Packaging and programmatic set-up."""

import json
import shutil
import subprocess
import sys

import pytest

from mailscope.exporters.otlp_file import read_spans
from tests.support.launcher import REPO, base_env, write_script


@pytest.fixture(scope="module")
def regular_install(tmp_path_factory):
    """A regular (non-editable) install of this checkout into a folder of its own."""
    # from a copy without build output: setuptools would reuse a stale build/lib
    source = tmp_path_factory.mktemp("src") / "mailscope"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(
        ".venv", ".git", "build", "*.egg-info", "__pycache__", "demo-output", ".hypothesis"))
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
         "--disable-pip-version-check", "--target", str(target), str(source)],
        check=True, capture_output=True, timeout=300,
    )
    return target


def test_regular_install_imports_from_anywhere_including_the_repo_root(regular_install, tmp_path):
    target = regular_install
    installed = target / "mailscope"
    for sub in ("instrumentation", "processors", "exporters", "report"):
        assert (installed / sub / "__init__.py").is_file(), sub
    assert not (target / "processors").exists()  # no bare top-level names
    probe = (
        "import mailscope.instrumentation.smtp, mailscope.processors.pipeline, mailscope.exporters.otlp_file;"
        "print(mailscope.processors.pipeline.__file__)"
    )
    env = base_env(PYTHONPATH=target)
    elsewhere = subprocess.run([sys.executable, "-c", probe], env=env, cwd=tmp_path, capture_output=True, text=True)
    assert elsewhere.returncode == 0, elsewhere.stderr
    assert elsewhere.stdout.startswith(str(installed))
    # the repository root as cwd puts the source folder first on sys.path
    at_root = subprocess.run([sys.executable, "-c", probe], env=env, cwd=REPO, capture_output=True, text=True)
    assert at_root.returncode == 0, at_root.stderr


# Paths users may have typed: they must survive any reorganisation of the tree.
PUBLIC_PATHS = [
    "mailscope:configure",
    "mailscope.instrumentation.queue:processing",
    "mailscope.instrumentation.queue:strip_envelope",
    "mailscope.processors.errors:classify",
    "mailscope.cli:main",
    "mailscope.report:run_report",
    "mailscope.delivery:wsgi_app",
    "mailscope.delivery:asgi_app",
]
ENTRY_POINT_GROUPS = ("opentelemetry_distro", "opentelemetry_configurator", "opentelemetry_instrumentor")

PUBLIC_PROBE = """
import importlib, json, sys
from importlib.metadata import entry_points
found = {}
for path in sys.argv[1:]:
    module, name = path.split(":")
    found[path] = sys.modules[getattr(importlib.import_module(module), name).__module__].__file__
for group in %r:
    for ep in entry_points(group=group):
        if ep.value.startswith("mailscope."):
            loaded = ep.load()
            found[group + ":" + ep.name] = sys.modules[loaded.__module__].__file__
print(json.dumps(found))
""" % (ENTRY_POINT_GROUPS,)


def test_public_import_paths_and_entry_points_load_from_a_regular_install(regular_install, tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", PUBLIC_PROBE, *PUBLIC_PATHS],
        env=base_env(PYTHONPATH=regular_install), cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert set(PUBLIC_PATHS) <= set(found)
    names = sorted(key.split(":")[1] for key in found if key.split(":")[0] in ENTRY_POINT_GROUPS)
    assert names == sorted(["mailscope", "mailscope", "mailscope_templates", "mailscope_smtp", "mailscope_queue",
                            "mailscope_operations", "mailscope_providers"])
    for key, path in found.items():
        assert path.startswith(str(regular_install)), (key, path)  # the installed copy, not the checkout

CONFIGURE_APP = """
import sys
import mailscope
from opentelemetry import trace

ok = mailscope.configure(service_name="prog", traces_exporter="otlp_json_file", metrics_exporter="none",
                         traces_file=sys.argv[1])
again = mailscope.configure()
tracer = trace.get_tracer("prog")
try:
    with tracer.start_as_current_span("work"):
        raise ValueError("x")
except ValueError:
    pass
trace.get_tracer_provider().shutdown()
print(ok, again)
"""


def test_configure_sets_up_the_sdk_with_the_pipeline_once(tmp_path):
    traces = tmp_path / "t.jsonl"
    result = subprocess.run(
        [sys.executable, str(write_script(tmp_path, CONFIGURE_APP)), str(traces)],
        env=base_env(), capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True False"
    assert "already configured" in result.stderr
    (span,) = read_spans(str(traces))
    assert span["resource"]["service.name"] == "prog"
    assert span["resource"]["telemetry.distro.name"] == "mailscope"
    assert span["attributes"]["error.type"] == "ValueError"
