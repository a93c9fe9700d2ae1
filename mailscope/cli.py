"""The `mailscope` command: `classify`, `report` and `webhooks serve`."""

from __future__ import annotations

import argparse
import json
import sys


def _classify(args) -> int:
    from mailscope.processors.errors import classify, read_messages

    out = sys.stdout
    for message in read_messages(sys.stdin):  # streams; an endless line cannot exhaust memory
        result = classify(message)
        out.write(
            json.dumps(
                {
                    "category": result.category,
                    "retryable": result.retryable,
                    "pattern": result.pattern,
                    "fingerprint": result.fingerprint,
                },
                ensure_ascii=False,
            )
            + "\n"
        )
    out.flush()
    return 0


def _report(args) -> int:
    from mailscope.report import run_report

    return run_report(args)


def _webhooks_serve(args) -> int:
    from mailscope.delivery import serve

    return serve(args.host, args.port)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mailscope", description="mailscope: email-aware OpenTelemetry tools")
    sub = parser.add_subparsers(dest="command", required=True)

    classify = sub.add_parser(
        "classify",
        help="classify error messages (one per stdin line) into JSON lines",
        description="Reads one error message per line on stdin; writes one JSON object per line: "
        "category, retryable, pattern, fingerprint.",
    )
    classify.set_defaults(func=_classify)

    report = sub.add_parser(
        "report",
        help="debugging report from OTLP JSON trace files or Jaeger",
        description="Where the time went, what broke and what to fix first, from OTLP JSON-lines trace files "
        "or from Jaeger's query API (streamed in bounded memory). Exit status: 0 (also when there are no "
        "spans), 1 for a missing or unreadable path or a Jaeger that cannot be read, 2 for a bad option value.",
    )
    report.add_argument("paths", nargs="*", metavar="PATH", help="OTLP JSON-lines files or folders of them")
    report.add_argument("--jaeger", metavar="URL",
                        help="read traces from Jaeger's query API at URL (e.g. http://localhost:16686) instead "
                        "of files; without --since, the last 24 hours")
    report.add_argument("--json", action="store_true", help="machine-readable JSON output")
    report.add_argument("--html", metavar="FILE", help="also write a self-contained HTML page")
    report.add_argument("--service", help="only spans of this service.name")
    report.add_argument("--since", help="only spans starting at or after this time (ISO 8601 or unix seconds)")
    report.add_argument("--until", help="only spans starting before this time (ISO 8601 or unix seconds)")
    report.add_argument("--operation", help="only spans whose mailscope.operation or span name matches this glob")
    report.set_defaults(func=_report)

    webhooks = sub.add_parser("webhooks", help="provider delivery-event webhooks")
    webhooks_sub = webhooks.add_subparsers(dest="webhooks_command", required=True)
    serve = webhooks_sub.add_parser(
        "serve",
        help="the standalone delivery-event receiver",
        description="Receives provider event webhooks at POST /mailgun, /sendgrid, /postmark and /ses, verifies "
        "them with the MAILSCOPE_WEBHOOK_* keys and records one email.delivery span per event. Run it under "
        "opentelemetry-instrument like any service.",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8787, help="port to listen on (default 8787)")
    serve.set_defaults(func=_webhooks_serve)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
