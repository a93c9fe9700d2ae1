import logging

import pytest

from mailscope import config
from mailscope.config import DEFAULT_SLOW_THRESHOLDS, load_settings


def test_defaults_when_nothing_is_set():
    s = load_settings({})
    assert s.slow_thresholds == DEFAULT_SLOW_THRESHOLDS
    assert s.slow_thresholds[-1] == ("*", 1000.0)
    assert (s.slow_baseline_factor, s.slow_baseline_min_samples) == (3.0, 100)
    assert (s.memory, s.memory_spans, s.redact) == ("rss", None, "domain")
    assert (s.error_patterns_max, s.max_tracked_names) == (500, 1000)
    assert (s.templates, s.queues, s.queue_envelope) == (None, ("*queue*",), "off")  # None: the web-request rule
    assert s.operations == () and s.header_attributes == () and s.invalid == ()


def test_valid_values_parse_into_typed_fields():
    s = load_settings(
        {
            "MAILSCOPE_SLOW_THRESHOLDS": "email.send=250, smtp.*=80.5",
            "MAILSCOPE_SLOW_BASELINE_FACTOR": "0",
            "MAILSCOPE_MEMORY": "TraceMalloc",
            "MAILSCOPE_MEMORY_SPANS": "email.*,process *",
            "MAILSCOPE_QUEUE_REDIS_URL": "redis://127.0.0.1:6390/2",
            "MAILSCOPE_OPERATIONS": "personalize=app.content:Builder.build, send=app.ses:send",
            "MAILSCOPE_HEADER_ATTRIBUTES": "X-Campaign-ID=email.campaign.id",
        }
    )
    assert s.slow_thresholds[:2] == (("email.send", 250.0), ("smtp.*", 80.5))
    assert s.slow_thresholds[2:] == DEFAULT_SLOW_THRESHOLDS  # built-ins stay as the fallback
    assert s.slow_baseline_factor == 0.0
    assert s.memory == "tracemalloc"
    assert s.memory_spans == ("email.*", "process *")
    assert s.operations == (("personalize", "app.content", "Builder.build"), ("send", "app.ses", "send"))
    assert s.header_attributes == (("X-Campaign-ID", "email.campaign.id"),)
    assert s.invalid == ()


@pytest.mark.parametrize(
    "variable,value",
    [
        ("MAILSCOPE_SLOW_THRESHOLDS", "email.send"),
        ("MAILSCOPE_SLOW_THRESHOLDS", "email.send=-5"),
        ("MAILSCOPE_SLOW_THRESHOLDS", "email.send=nan"),
        ("MAILSCOPE_SLOW_BASELINE_FACTOR", "inf"),
        ("MAILSCOPE_SLOW_BASELINE_MIN_SAMPLES", "-1"),
        ("MAILSCOPE_SLOW_BASELINE_MIN_SAMPLES", "2.5"),
        ("MAILSCOPE_MEMORY_SPANS", "a,,b"),
        ("MAILSCOPE_QUEUES", "[abc"),
        ("MAILSCOPE_OPERATIONS", "send=nocolon"),
        ("MAILSCOPE_HEADER_ATTRIBUTES", "X-Id="),
        ("MAILSCOPE_QUEUE_REDIS_URL", "localhost:6379"),
    ],
)
def test_each_bad_value_warns_once_and_falls_back(variable, value, caplog):
    caplog.set_level(logging.WARNING, logger="mailscope")
    field = next(v.field for v in config.VARIABLES if v.env == variable)
    default = getattr(config.Settings(), field)
    for _ in range(3):  # reloading does not repeat the warning
        s = load_settings({variable: value})
        assert getattr(s, field) == default
        assert s.invalid == (variable,)
    warnings = [r.getMessage() for r in caplog.records if variable in r.getMessage()]
    assert len(warnings) == 1
    assert repr(value) in warnings[0] and "using the default" in warnings[0]


def test_overrides_win_over_the_environment():
    s = load_settings({"MAILSCOPE_REDACT": "off"}, redact="full", error_patterns_max=7)
    assert s.redact == "full" and s.error_patterns_max == 7


def test_docs_configuration_table_matches_the_config_module():
    from pathlib import Path

    page = (Path(__file__).resolve().parents[1] / "docs" / "configuration.md").read_text()
    assert config.markdown_table() in page, "regenerate docs/configuration.md's table from mailscope.config.markdown_table()"
