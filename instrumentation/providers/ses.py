"""Amazon SES through boto3/botocore: one `email.send` span per send API call.

Calls covered: the `ses` client's `send_email`, `send_raw_email`,
`send_templated_email` and `send_bulk_templated_email`, and the `sesv2`
client's `send_email` (simple, raw and template content) and `send_bulk_email`.

Where the span comes from. botocore builds every client method at client-class
creation (`ClientCreator._create_api_method`); mailscope wraps the SES send
methods it builds there. Those methods call `BaseClient._make_api_call`, which
opentelemetry-instrumentation-botocore wraps for its AWS span, so that span is
always a child of the send span, whichever instrumentor was loaded first, and
never a duplicate. Clients created before instrumentation (say, at import time
of an app that calls `mailscope.configure()` later) are caught one level lower,
in `_make_api_call`; there the upstream AWS span may end up the parent of ours
when it was installed after mailscope.

What the span says: recipient count and domains (Destination lists; for a raw
message without Destinations, its To/Cc/Bcc headers), `email.message.bytes` for
raw messages (SES builds the MIME of the other calls itself, so their size is
not known), `messaging.batch.message_count` for the bulk calls, mapped headers
(raw messages, sesv2 simple content headers), `http.response.status_code`, and
the SES MessageId hashed like a Message-ID (bulk calls: when exactly one entry
was sent). Bulk entries SES did not accept count as refused recipients. An error
(`MessageRejected`, `Throttling`, `TooManyRequestsException`,
`AccountSendingPausedException`, `MailFromDomainNotVerified`...) sets
`error.type` to the AWS error code; the exception text (botocore's `An error
occurred (Code) when calling the X operation: message`) is what the errors stage
classifies.
"""

from __future__ import annotations

import contextvars
import functools
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import getaddresses

import wrapt

from mailscope._safety import internal_error
from mailscope.instrumentation.common import send as common
from mailscope.instrumentation.common import wrapper_layers
from mailscope.instrumentation.providers import tracking as delivery_tracking
from mailscope.instrumentation.providers.common import Outcome, Request, server_of_url

PROVIDER = "ses"
SEND_OPERATIONS = {
    "ses": frozenset({"SendEmail", "SendRawEmail", "SendTemplatedEmail", "SendBulkTemplatedEmail"}),
    "sesv2": frozenset({"SendEmail", "SendBulkEmail"}),
}
BULK_OPERATIONS = frozenset({"SendBulkTemplatedEmail", "SendBulkEmail"})
SUCCESS = frozenset({"Success", "SUCCESS"})
ADDRESS_LISTS = ("ToAddresses", "CcAddresses", "BccAddresses")
RECIPIENT_HEADERS = ("to", "cc", "bcc")

# the client whose send method is running on this thread/task (set by the method wrapper,
# so the _make_api_call fallback knows that call is traced already)
_traced_client: contextvars.ContextVar = contextvars.ContextVar("mailscope_ses_client", default=None)


# --- request ---------------------------------------------------------------------
def destination_addresses(destination) -> list:
    out: list = []
    if isinstance(destination, dict):
        for key in ADDRESS_LISTS:
            out.extend(common.normalize_recipients(destination.get(key)) or ())
    return out


def raw_bytes(data):
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    if isinstance(data, str):
        return data.encode("utf-8", "surrogateescape")
    return None


def raw_header_recipients(data: bytes) -> list:
    """To/Cc/Bcc addresses of a raw message (what SES sends to when Destinations is absent)."""
    head = data[: common.RAW_HEADER_SCAN_BYTES]
    message = BytesHeaderParser(policy=compat32).parsebytes(head)
    values = []
    for name in RECIPIENT_HEADERS:
        values.extend(str(v) for v in message.get_all(name, ()))
    return [address for _, address in getaddresses(values) if address]


def header_list(headers) -> dict:
    """sesv2's [{"Name": ..., "Value": ...}] as send_common's {lower-cased name: value}."""
    found = {}
    if isinstance(headers, (list, tuple)):
        for item in headers:
            if isinstance(item, dict) and isinstance(item.get("Name"), str) and item.get("Value") is not None:
                found.setdefault(item["Name"].lower(), str(item["Value"]))
    return found


def _raw_request(data, destinations, explicit: bool) -> Request:
    request = Request()
    raw = raw_bytes(data)
    if raw is not None:
        request.size = len(raw)
        request.headers = common.headers_from_raw(raw)
    if explicit:
        request.recipients = destinations
    elif raw is not None:
        request.recipients = raw_header_recipients(raw)
    return request


def describe_request(service: str, operation: str, params) -> Request:
    """The Request of one SES send call from its boto3 keyword arguments."""
    if not isinstance(params, dict):
        return Request()
    if operation == "SendRawEmail":
        destinations = common.normalize_recipients(params.get("Destinations")) or []
        raw = params.get("RawMessage")
        return _raw_request(raw.get("Data") if isinstance(raw, dict) else None, destinations,
                            explicit=bool(destinations))
    if operation == "SendBulkTemplatedEmail":
        entries = params.get("Destinations") or []
        recipients: list = []
        for entry in entries if isinstance(entries, (list, tuple)) else ():
            if isinstance(entry, dict):
                recipients.extend(destination_addresses(entry.get("Destination")))
        return Request(recipients=recipients, batch=len(entries) if isinstance(entries, (list, tuple)) else None)
    if operation == "SendBulkEmail":
        entries = params.get("BulkEmailEntries") or []
        recipients = []
        headers: dict = {}
        for entry in entries if isinstance(entries, (list, tuple)) else ():
            if isinstance(entry, dict):
                recipients.extend(destination_addresses(entry.get("Destination")))
        template = (params.get("DefaultContent") or {}).get("Template") if isinstance(params.get("DefaultContent"), dict) else None
        if isinstance(template, dict):
            headers = header_list(template.get("Headers"))
        return Request(recipients=recipients, batch=len(entries) if isinstance(entries, (list, tuple)) else None,
                       headers=headers)
    destination = params.get("Destination")
    if service == "sesv2":
        content = params.get("Content") if isinstance(params.get("Content"), dict) else {}
        raw = content.get("Raw")
        if isinstance(raw, dict):
            addresses = destination_addresses(destination)
            return _raw_request(raw.get("Data"), addresses, explicit=bool(addresses))
        for kind in ("Simple", "Template"):
            part = content.get(kind)
            if isinstance(part, dict):
                return Request(recipients=destination_addresses(destination), headers=header_list(part.get("Headers")))
    # ses SendEmail / SendTemplatedEmail, sesv2 without recognisable content
    return Request(recipients=destination_addresses(destination))


# --- response ----------------------------------------------------------------------
def _entry_destinations(operation: str, params) -> list:
    key = "Destinations" if operation == "SendBulkTemplatedEmail" else "BulkEmailEntries"
    entries = params.get(key) if isinstance(params, dict) else None
    if not isinstance(entries, (list, tuple)):
        return []
    return [destination_addresses(e.get("Destination")) if isinstance(e, dict) else [] for e in entries]


def status_code_of(response) -> int | None:
    metadata = response.get("ResponseMetadata") if isinstance(response, dict) else None
    code = metadata.get("HTTPStatusCode") if isinstance(metadata, dict) else None
    return code if isinstance(code, int) else None


def describe_result(operation: str, params, result) -> Outcome:
    """The Outcome of a send call that returned `result`."""
    outcome = Outcome(status_code=status_code_of(result))
    if not isinstance(result, dict):
        return outcome
    if operation not in BULK_OPERATIONS:
        message_id = result.get("MessageId")
        if isinstance(message_id, str):
            outcome.message_ids.append(message_id)
        return outcome
    statuses = result.get("Status") if operation == "SendBulkTemplatedEmail" else result.get("BulkEmailEntryResults")
    if not isinstance(statuses, list):
        return outcome
    per_entry = _entry_destinations(operation, params)
    first_failure = None
    for index, entry in enumerate(statuses):
        if not isinstance(entry, dict):
            continue
        status = entry.get("Status")
        if status in SUCCESS or (status is None and entry.get("MessageId")):  # moto leaves Status out
            if isinstance(entry.get("MessageId"), str):
                outcome.message_ids.append(entry["MessageId"])
            continue
        text = str(entry.get("Error") or status)
        if first_failure is None:
            first_failure = (str(status), text)
        for address in per_entry[index] if index < len(per_entry) else ():
            outcome.refusals.append((address, None, text))
    if first_failure is not None and not outcome.message_ids:
        outcome.failure = first_failure  # no entry was sent
    return outcome


def error_details(exc) -> tuple[str | None, int | None]:
    """(AWS error code, HTTP status) of a botocore ClientError; (None, None) for anything else."""
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return None, None
    error = response.get("Error")
    code = error.get("Code") if isinstance(error, dict) else None
    return (str(code) if code else None), status_code_of(response)


# --- hooks -----------------------------------------------------------------------------
def service_of(client) -> str | None:
    try:
        return client.meta.service_model.service_name
    except AttributeError:
        return None


class SESProbe(wrapper_layers.ImportProbe):
    """Installs the botocore wrappers when botocore.client is imported."""

    module_name = "botocore.client"
    label = "botocore"

    def install(self, module) -> None:
        self.patch(module.ClientCreator, "_create_api_method", self._create_api_method)
        self.patch(module.BaseClient, "_make_api_call", self._make_api_call)

    # --- ClientCreator._create_api_method(py_operation_name, operation_name, service_model)
    def _create_api_method(self, wrapped, instance, args, kwargs):
        method = wrapped(*args, **kwargs)
        try:
            operation = args[1] if len(args) > 1 else kwargs.get("operation_name")
            model = args[2] if len(args) > 2 else kwargs.get("service_model")
            operations = SEND_OPERATIONS.get(getattr(model, "service_name", None))
            if operations is not None and operation in operations:
                service = model.service_name
                return wrapt.FunctionWrapper(method, functools.partial(self._api_method, service, operation))
        except Exception:
            internal_error("ses client method")
        return method

    def _api_method(self, service, operation, wrapped, instance, args, kwargs):
        # the generated method: client.send_email(**params) -> _make_api_call(operation, params)
        if not self.active or args or instance is None:
            return wrapped(*args, **kwargs)
        marker = _traced_client.set(instance)
        try:
            return self._traced(service, operation, instance, kwargs, wrapped, args, kwargs)
        finally:
            _traced_client.reset(marker)

    # --- BaseClient._make_api_call(operation_name, api_params): clients made before instrumentation
    def _make_api_call(self, wrapped, instance, args, kwargs):
        if not self.active or _traced_client.get() is instance:
            return wrapped(*args, **kwargs)
        try:
            operation = args[0] if args else kwargs.get("operation_name")
            operations = SEND_OPERATIONS.get(service_of(instance))
            traced = operations is not None and operation in operations
        except Exception:
            internal_error("ses api call")
            traced = False
        if not traced:
            return wrapped(*args, **kwargs)
        params = args[1] if len(args) > 1 else kwargs.get("api_params")
        return self._traced(service_of(instance), operation, instance, params, wrapped, args, kwargs)

    def _traced(self, service, operation, client, params, wrapped, args, kwargs):
        telemetry = self.telemetry
        send = None
        try:
            send = telemetry.start(PROVIDER, server_of_url(getattr(client.meta, "endpoint_url", None)))
            telemetry.describe(send, describe_request(service, operation, params))
        except Exception:
            internal_error("ses send start")
        if send is not None and delivery_tracking.enabled():
            tagged = delivery_tracking.guarded(delivery_tracking.ses_params, service, operation, params, send)
            if tagged is not None:
                if params is kwargs:  # the generated method: client.send_email(**params)
                    kwargs = tagged
                elif len(args) > 1:  # _make_api_call(operation_name, api_params)
                    args = (args[0], tagged) + tuple(args[2:])
                else:
                    kwargs = {**kwargs, "api_params": tagged}
        try:
            result = wrapped(*args, **kwargs)
        except BaseException as exc:
            if send is not None:
                code, status = None, None
                try:
                    code, status = error_details(exc)
                except Exception:
                    internal_error("ses error")
                telemetry.end_error(send, exc, error_name=code, outcome=Outcome(status_code=status))
            raise
        if send is not None:
            outcome = None
            try:
                outcome = describe_result(operation, params, result)
            except Exception:
                internal_error("ses result")
            telemetry.end_ok(send, outcome)
        return result
