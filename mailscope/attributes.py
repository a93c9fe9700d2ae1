"""Every name mailscope exports, in one place.

Span names, attribute keys, metric instrument names and label values come from
../shared/CONTRACT.md. Code elsewhere imports these constants; it never spells a
contract name as a literal.
"""

# --- operations (value of mailscope.operation) and their span names ---------
OP_TEMPLATE_LOAD = "template.load"
OP_PERSONALIZE = "personalize"
OP_SEND = "send"
OP_SMTP_CONNECT = "smtp.connect"
OP_QUEUE_PUBLISH = "queue.publish"
OP_QUEUE_RECEIVE = "queue.receive"
OP_QUEUE_PROCESS = "queue.process"
# workflow operations of automation services (config-named functions only)
OP_TRIGGER = "trigger"
OP_SEGMENT = "segment"
OP_WORKFLOW_STEP = "workflow.step"

OPERATIONS = (
    OP_TEMPLATE_LOAD,
    OP_PERSONALIZE,
    OP_SEND,
    OP_SMTP_CONNECT,
    OP_QUEUE_PUBLISH,
    OP_QUEUE_RECEIVE,
    OP_QUEUE_PROCESS,
    OP_TRIGGER,
    OP_SEGMENT,
    OP_WORKFLOW_STEP,
)

SPAN_TEMPLATE_LOAD = "email.template.load"
SPAN_PERSONALIZE = "email.personalize"
SPAN_SEND = "email.send"
SPAN_SMTP_CONNECT = "smtp.connect"
SPAN_TRIGGER = "email.trigger"
SPAN_SEGMENT = "email.segment"
SPAN_WORKFLOW_STEP = "email.workflow.step"


def queue_span_name(operation: str, queue: str) -> str:
    """`send {queue}`, `receive {queue}` or `process {queue}`."""
    verb = {OP_QUEUE_PUBLISH: "send", OP_QUEUE_RECEIVE: "receive", OP_QUEUE_PROCESS: "process"}[operation]
    return f"{verb} {queue}"


SPAN_NAME_BY_OPERATION = {
    OP_TEMPLATE_LOAD: SPAN_TEMPLATE_LOAD,
    OP_PERSONALIZE: SPAN_PERSONALIZE,
    OP_SEND: SPAN_SEND,
    OP_SMTP_CONNECT: SPAN_SMTP_CONNECT,
    OP_TRIGGER: SPAN_TRIGGER,
    OP_SEGMENT: SPAN_SEGMENT,
    OP_WORKFLOW_STEP: SPAN_WORKFLOW_STEP,
}

# the delivery receiver (mailscope.delivery): one span per provider event; not in OPERATIONS,
# whose order the report uses for the send pipeline's own steps
OP_DELIVERY = "delivery"
SPAN_DELIVERY = "email.delivery"

# --- attribute keys set by instrumentors -------------------------------------
OPERATION = "mailscope.operation"

TEMPLATE_NAME = "email.template.name"
TEMPLATE_ENGINE = "email.template.engine"
TEMPLATE_CACHE_HIT = "email.template.cache_hit"
PERSONALIZATION_VARIABLES = "email.personalization.variables"
PERSONALIZATION_MISSING = "email.personalization.missing"
PERSONALIZATION_MISSING_NAMES = "email.personalization.missing_names"
CONTENT_BYTES = "email.content.bytes"
# email.template.engine values, and the name of an inline (from_string) template
ENGINE_JINJA2 = "jinja2"
ENGINE_LIQUID = "liquid"
ENGINE_DJANGO = "django"
ENGINE_CUSTOM = "custom"
TEMPLATE_INLINE_NAME = "<string>"

PROVIDER = "email.provider"
PROVIDER_SMTP = "smtp"  # the email.provider value of SMTP sends
SERVER_ADDRESS = "server.address"
SERVER_PORT = "server.port"
RECIPIENTS_COUNT = "email.recipients.count"
RECIPIENTS_DOMAINS = "email.recipients.domains"
RECIPIENTS_REFUSED = "email.recipients.refused"
MESSAGE_BYTES = "email.message.bytes"
MESSAGE_ID_HASH = "email.message.id_hash"
SMTP_RESPONSE_CODE = "smtp.response.code"
SMTP_ENHANCED_STATUS = "smtp.response.enhanced_status"
SMTP_TLS = "smtp.tls"
# send spans get one event per recipient the server refused; it carries
# smtp.response.code, smtp.response.enhanced_status and the recipient's domain only
EVENT_RECIPIENT_REFUSED = "email.recipient.refused"
RECIPIENT_DOMAIN = "email.recipient.domain"

MESSAGING_SYSTEM = "messaging.system"
MESSAGING_OPERATION_TYPE = "messaging.operation.type"
MESSAGING_DESTINATION_NAME = "messaging.destination.name"
MESSAGING_BATCH_MESSAGE_COUNT = "messaging.batch.message_count"
QUEUE_WAIT = "email.queue.wait"
# messaging.system of Celery tasks (the Redis list queue instrumentor says `redis`)
MESSAGING_SYSTEM_CELERY = "celery"
# on a Celery task's process span: the task's name, and how many times it was retried before
# this execution (0 on the first); the names opentelemetry-instrumentation-celery uses
CELERY_TASK_NAME = "celery.task_name"
CELERY_RETRIES = "celery.retries"
# receive-span event: a message's enqueue time lies more than 5 minutes in the
# future (clock skew), so its wait is unusable and not recorded
EVENT_QUEUE_WAIT_UNUSABLE = "email.queue.wait_unusable"

# on segment operations: len() of the sized collection the function returned
SEGMENT_SIZE = "email.segment.size"
# arguments MAILSCOPE_OPERATIONS entries name are recorded as attributes of str, int or bool
# values only; strings redacted, then cut to this many characters
CAPTURED_VALUE_MAX_CHARS = 100

DELIVERY_STATUS = "email.delivery.status"
DELIVERY_LATENCY = "email.delivery.latency"
DELIVERY_DELIVERED = "delivered"
DELIVERY_BOUNCED = "bounced"
DELIVERY_DEFERRED = "deferred"
DELIVERY_DROPPED = "dropped"
DELIVERY_COMPLAINED = "complained"
DELIVERY_OPENED = "opened"
DELIVERY_CLICKED = "clicked"
DELIVERY_UNSUBSCRIBED = "unsubscribed"
DELIVERY_STATUSES = (
    DELIVERY_DELIVERED, DELIVERY_BOUNCED, DELIVERY_DEFERRED, DELIVERY_DROPPED,
    DELIVERY_COMPLAINED, DELIVERY_OPENED, DELIVERY_CLICKED, DELIVERY_UNSUBSCRIBED,
)
# statuses whose spans are ERROR spans, classified like synchronous send errors
DELIVERY_FAILURES = (DELIVERY_BOUNCED, DELIVERY_DEFERRED, DELIVERY_DROPPED)

ERROR_TYPE = "error.type"
# OTel HTTP semantic convention: the HTTP status of an HTTP email provider's answer on send spans
HTTP_RESPONSE_STATUS_CODE = "http.response.status_code"
# the same under the older HTTP semantic conventions (what requests/httpx instrumentations still
# emit by default); read, never written
HTTP_STATUS_CODE_LEGACY = "http.status_code"

# limits the contract puts on list-valued attributes
MAX_MISSING_NAMES = 20
MAX_RECIPIENT_DOMAINS = 10

# --- analysis attributes set by the span processors ---------------------------
SLOW = "mailscope.slow"
SLOW_REASON = "mailscope.slow.reason"
SLOW_THRESHOLD_MS = "mailscope.slow.threshold_ms"
SLOW_BASELINE_P95_MS = "mailscope.slow.baseline_p95_ms"
SLOW_CONSISTENT = "mailscope.slow.consistent"
SLOW_REASON_THRESHOLD = "threshold"
SLOW_REASON_BASELINE = "baseline"

ERROR_CATEGORY = "mailscope.error.category"
ERROR_RETRYABLE = "mailscope.error.retryable"
ERROR_PATTERN = "mailscope.error.pattern"
ERROR_FINGERPRINT = "mailscope.error.fingerprint"
ERROR_OCCURRENCES = "mailscope.error.occurrences"
ERROR_PATTERN_MAX_CHARS = 300

ERROR_CATEGORIES = (
    "recipient",
    "mailbox_full",
    "rate_limit",
    "reputation",
    "sender_auth",
    "authentication",
    "content",
    "validation",
    "timeout",
    "infrastructure",
    "unknown",
)

MEMORY_RSS_DELTA = "mailscope.memory.rss_delta_bytes"
MEMORY_RSS = "mailscope.memory.rss_bytes"
MEMORY_ALLOC_DELTA = "mailscope.memory.alloc_delta_bytes"

# --- OTel semantic-convention keys mailscope reads ---------------------------
EXCEPTION_EVENT = "exception"
EXCEPTION_TYPE = "exception.type"
EXCEPTION_MESSAGE = "exception.message"
EXCEPTION_STACKTRACE = "exception.stacktrace"

# the function a config-named trigger, segment or workflow.step operation wraps (module.qualname)
CODE_FUNCTION_NAME = "code.function.name"

# database client spans (other instrumentations'; `mailscope report` finds DB time with these)
DB_SYSTEM = "db.system"
DB_SYSTEM_NAME = "db.system.name"

# --- resource attributes ------------------------------------------------------
SERVICE_NAME = "service.name"
SERVICE_INSTANCE_ID = "service.instance.id"
PROCESS_PID = "process.pid"
DISTRO_NAME = "telemetry.distro.name"
DISTRO_VERSION = "telemetry.distro.version"

# --- metrics ------------------------------------------------------------------
METRIC_OPERATION_DURATION = "mailscope.operation.duration"
METRIC_TEMPLATE_CACHE = "mailscope.template.cache"
METRIC_RECIPIENTS = "mailscope.recipients"
METRIC_QUEUE_DEPTH = "mailscope.queue.depth"
METRIC_QUEUE_OLDEST_AGE = "mailscope.queue.oldest_age"
METRIC_QUEUE_WAIT = "mailscope.queue.wait"
METRIC_SLOW_OPERATIONS = "mailscope.slow_operations"
METRIC_ERRORS = "mailscope.errors"
METRIC_MEMORY_DELTA = "mailscope.memory.delta"

METRIC_DELIVERY_EVENTS = "mailscope.delivery.events"
METRIC_DELIVERY_LATENCY = "mailscope.delivery.latency"
METRIC_DELIVERY_REJECTED = "mailscope.delivery.rejected_requests"

# metric label keys that are not span attributes
LABEL_OUTCOME = "outcome"
LABEL_SPAN_NAME = "span.name"
LABEL_REASON = "reason"  # mailscope.delivery.rejected_requests
OUTCOME_OK = "ok"
OUTCOME_ERROR = "error"
OUTCOME_ACCEPTED = "accepted"
OUTCOME_REFUSED = "refused"
LABEL_OVERFLOW = "other"
