"""mailscope.instrumentation: OpenTelemetry instrumentors for the libraries email services use.

One subpackage per library family, each with its instrumentor in `__init__.py`
(the `opentelemetry_instrumentor` entry point) and one module per library it
wraps:

- `smtp/`: smtplib and aiosmtplib (`email.send`, `smtp.connect`);
- `queue/`: Redis lists used as email queues (`send/receive/process {queue}`);
- `templates/`: Jinja2 and python-liquid (`email.template.load`, `email.personalize`);
- `providers/`: HTTP email APIs: SES, SendGrid, Mailgun, Postmark;
- `operations.py`: the app's own functions named in `MAILSCOPE_OPERATIONS`.

`common/` holds what the families share: the provider-neutral description of
a send (`send.py`), the wrapper layers that let instrumentors stack and
uninstrument cleanly (`wrapper_layers.py`), and failure marking (`failures.py`).
"""
