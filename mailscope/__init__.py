"""mailscope: email-aware OpenTelemetry instrumentation and in-process span analysis.

Run an app under `opentelemetry-instrument` and mailscope configures itself
through its distro and configurator entry points. Apps that do not use the
launcher call `mailscope.configure(**overrides)`.
"""

import os as _os

from mailscope.version import __version__

# In a source checkout, instrumentation/, processors/, exporters/ and report/ sit beside
# this folder rather than inside it (setuptools' package-dir maps them into
# mailscope.* when installed). When this folder is the one imported, as happens
# with the repository root as the working directory even if a regular install
# exists, let the sibling folders serve as the subpackages too. Installed copies
# contain the subpackages and skip this.
_here = _os.path.dirname(_os.path.abspath(__file__))
if not _os.path.isdir(_os.path.join(_here, "processors")):
    _root = _os.path.dirname(_here)
    if _os.path.isfile(_os.path.join(_root, "processors", "pipeline.py")):
        __path__.append(_root)  # noqa: F821 - module __path__


def configure(**overrides) -> bool:
    """Set up the OpenTelemetry SDK with mailscope's pipeline, and instrument.

    Keyword arguments: `service_name`, `traces_exporter`, `metrics_exporter`
    (OTel exporter names such as `otlp`, `otlp_json_file`, `prometheus`,
    `console`, `none`), `instrument` (default True), and any `Settings` field
    (`slow_thresholds="email.*=200"`, `redact="full"`, ...), given as the same text
    the environment variable takes or as a typed value. Returns True when the SDK
    was configured by this call. Never raises.
    """
    from mailscope.bootstrap import configure as _configure

    return _configure(**overrides)


__all__ = ["__version__", "configure"]
