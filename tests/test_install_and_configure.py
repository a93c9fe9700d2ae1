"""Packaging and programmatic set-up."""

import subprocess
import sys

from mailscope.exporters.otlp_file import read_spans
from tests.support.launcher import REPO, base_env, write_script


def test_regular_install_imports_from_anywhere_including_the_repo_root(tmp_path):
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
         "--disable-pip-version-check", "--target", str(target), str(REPO)],
        check=True, capture_output=True, timeout=300,
    )
    installed = target / "mailscope"
    for sub in ("instrumentation", "processors", "exporters"):
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
