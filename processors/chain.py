"""The enrichment chain, composed in one visible place.

Order matters and is deliberate:
0. redaction.early   - span name and attributes lose their email addresses first, so
                       no stage below turns one into a metric label or a table key
1. error_type        - failed spans get `error.type` (others' spans included)
   slow              - threshold / learned-baseline slowness (reads the duration only)
   memory            - RSS delta over the span (MAILSCOPE_MEMORY=off leaves it out)
   errors            - category / retryable / pattern / fingerprint / occurrences of failed spans
2. operation_metrics - `mailscope.operation.duration` from mailscope operation spans

   (after errors, so the duration metric of a failed span carries its category)
3. redaction         - masks every email address in everything exported; always
                       last so nothing added after it can carry an address out.
"""

from __future__ import annotations

from mailscope.config import Settings, settings as current_settings
from mailscope.processors.error_type import ErrorTypeStage
from mailscope.processors.errors import ErrorsStage
from mailscope.processors.memory import MemoryStage
from mailscope.processors.operation_metrics import OperationMetricsStage
from mailscope.processors.pipeline import Pipeline
from mailscope.processors.redact import EarlyRedactionStage, RedactionStage
from mailscope.processors.slow import SlowStage


def build_stages(config: Settings) -> list:
    return [
        EarlyRedactionStage(config.redact),  # privacy_critical, like the last stage
        ErrorTypeStage(),
        SlowStage(config),
        *([MemoryStage(config)] if config.memory != "off" else []),
        ErrorsStage(config),
        OperationMetricsStage(),
        RedactionStage(config.redact),  # always last: privacy_critical
    ]


def build_pipeline(config: Settings | None = None) -> Pipeline:
    return Pipeline(build_stages(config or current_settings()))
