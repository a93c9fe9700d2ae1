"""The OTel Resource (service.name, OTEL_RESOURCE_ATTRIBUTES, detector output) is redacted too."""

import json
import logging

import pytest
from opentelemetry.sdk.resources import Resource

from mailscope import _safety
from mailscope import attributes as attr
from mailscope import resource as res
from mailscope.exporters.otlp_file import read_metric_points, read_spans
from tests.support.launcher import file_export_env, run_instrumented, write_script

CONTACT = "oncall.team@example.com"
OWNER = "jane.doe@example.net"
PAGER = "pager@example.org"


@pytest.fixture(autouse=True)
def fresh_log_once():
    _safety.reset_for_tests()
    yield
    _safety.reset_for_tests()


# --- the helper ------------------------------------------------------------------
def test_overrides_hold_only_the_changed_entries_redacted():
    attributes = {
        "team.contact": CONTACT,
        "team.list": ("ops", PAGER),
        "team.nested": {"lead": OWNER, "size": 3},
        "team.raw": OWNER.encode(),
        "team.size": 7,
        "deployment.environment": "prod",
        "host.tags": ("a", "b"),
    }
    overrides, address_keys = res.redacted_overrides(attributes, "domain")
    assert overrides == {
        "team.contact": "<redacted>@example.com",
        "team.list": ("ops", "<redacted>@example.org"),
        "team.nested": {"lead": "<redacted>@example.net", "size": 3},
        "team.raw": b"<redacted>@example.net",
    }
    assert address_keys == []
    full, _ = res.redacted_overrides(attributes, "full")
    assert full["team.contact"] == "<redacted>@<redacted>"
    assert full["team.list"] == ("ops", "<redacted>@<redacted>")
    assert res.redacted_overrides(attributes, "off") == ({}, [])


def test_a_key_holding_an_address_is_reported_redacted_and_its_value_masked():
    overrides, address_keys = res.redacted_overrides({CONTACT: OWNER, "ok": "fine"}, "domain")
    assert overrides == {CONTACT: "<redacted>@example.net"}
    assert address_keys == ["<redacted>@example.com"]


def test_a_value_the_redaction_cannot_process_is_masked_whole(monkeypatch, caplog):
    def broken(text, mode):
        raise RuntimeError("redaction bug")

    monkeypatch.setattr(res, "redact", broken)
    with caplog.at_level(logging.WARNING, logger="mailscope"):
        overrides, _ = res.redacted_overrides({"team.contact": CONTACT}, "domain")
    assert overrides == {"team.contact": "<redacted>"}
    assert "could not be redacted" in caplog.text
    assert CONTACT not in caplog.text


def test_sdk_resource_built_from_the_result_carries_no_address(monkeypatch):
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", f"team.contact={CONTACT},team.pager=pager%40example.org,tier=gold")
    monkeypatch.setenv("OTEL_SERVICE_NAME", f"newsletter-{OWNER}")
    base = {attr.DISTRO_NAME: "mailscope"}
    assert CONTACT in str(dict(Resource.create(dict(base)).attributes))  # what the SDK alone would export

    given = res.redacted_resource_attributes(base, "domain")
    built = Resource.create(given).attributes  # what _initialize_components does with it
    text = str(dict(built))
    for address in (CONTACT, OWNER, PAGER):
        assert address not in text
    assert built["team.contact"] == "<redacted>@example.com"
    assert built["team.pager"] == "<redacted>@example.org"
    assert built["service.name"] == "<redacted>@example.net"
    assert built["tier"] == "gold" and "tier" not in given  # clean entries are left to the SDK
    assert built[attr.DISTRO_NAME] == "mailscope"
    assert res.redacted_resource_attributes(base, "off") == base


def test_failure_to_build_the_resource_logs_once_and_keeps_the_setup(monkeypatch, caplog):
    def broken(base):
        raise RuntimeError("detector exploded")

    monkeypatch.setattr(res, "_detected", broken)
    base = {attr.DISTRO_NAME: "mailscope"}
    with caplog.at_level(logging.WARNING, logger="mailscope"):
        assert res.redacted_resource_attributes(base, "domain") == base
        assert res.redacted_resource_attributes(base, "domain") == base
    assert caplog.text.count("could not redact the OpenTelemetry resource") == 1


# --- end to end, under the real launcher -------------------------------------------
APP = """
import sys

from opentelemetry import trace

tracer = trace.get_tracer("shop.app")
with tracer.start_as_current_span("handle-order"):
    with tracer.start_as_current_span("email.send", attributes={"mailscope.operation": "send", "email.provider": "smtp"}):
        pass
# one write: print("app-result", x) writes its parts separately, and an exporter writing to stdout from
# its own thread (the bad-config test sends traces there) can land between them
sys.stdout.write(f"app-result {sum(range(10))}\\n")
"""


def _run(tmp_path, mode, resource_attributes):
    traces, metrics = tmp_path / "traces.jsonl", tmp_path / "metrics.jsonl"
    env = file_export_env(
        traces, metrics,
        MAILSCOPE_REDACT=mode,
        OTEL_RESOURCE_ATTRIBUTES=resource_attributes,
        OTEL_SERVICE_NAME=f"newsletter-{OWNER}",
    )
    result = run_instrumented(write_script(tmp_path, APP), env)
    assert result.returncode == 0, result.stderr
    assert "app-result 45" in result.stdout
    spans = read_spans(str(traces))
    points = list(read_metric_points(str(metrics)))
    assert spans and points  # both signals were exported
    return result, traces.read_text(), metrics.read_text(), spans[0]["resource"], points[0]["resource"]


EXPECTED = {
    "domain": ("<redacted>@example.com", "<redacted>@example.net"),
    "full": ("<redacted>@<redacted>", "<redacted>@<redacted>"),
    "off": (CONTACT, f"newsletter-{OWNER}"),
}


@pytest.mark.parametrize("mode", ["domain", "full", "off"])
def test_exported_resource_follows_the_redaction_mode(tmp_path, mode):
    _, trace_text, metric_text, span_resource, metric_resource = _run(
        tmp_path, mode, f"team.contact={CONTACT},deployment.environment=prod"
    )
    contact, service = EXPECTED[mode]
    for resource in (span_resource, metric_resource):
        assert resource["team.contact"] == contact
        assert resource["service.name"] == service
        assert resource["deployment.environment"] == "prod"
        assert resource[attr.DISTRO_NAME] == "mailscope"
    for raw in (trace_text, metric_text):
        json.loads(raw.splitlines()[0])  # the raw text searched below is the real export
        if mode == "off":
            assert CONTACT in raw and OWNER in raw
        else:
            assert CONTACT not in raw and OWNER not in raw
            assert "oncall.team@" not in raw and "jane.doe" not in raw
            assert ("example.com" in raw) == (mode == "domain")


def test_a_key_holding_an_address_is_warned_about_without_leaking_it(tmp_path):
    result, trace_text, _, span_resource, _ = _run(tmp_path, "domain", f"{CONTACT}=team-a")
    warnings = [line for line in result.stderr.splitlines() if "cannot be removed" in line]
    assert len(warnings) == 1, result.stderr
    assert "<redacted>@example.com" in warnings[0]
    assert CONTACT not in result.stderr
    # the documented limit: the key stays, its (address-free) value too
    assert span_resource[CONTACT] == "team-a"
    assert OWNER not in trace_text
