"""Stage: record `mailscope.operation.duration` for every mailscope operation span.

Durations are taken from finished spans, so every instrumentor gets the metric
without timing anything itself, and the labels agree with the span attributes.
The stage runs after the analysis stages so an error span's category label is
already known. High-variety labels pass through LabelCaps. Values are aggregated
in process and merged into the SDK's histogram when metrics are collected
(`mailscope.histograms`): an SDK record per operation span would cost about as
much as the span.
"""

from __future__ import annotations

from mailscope import attributes as attr
from mailscope.histograms import HotHistogram
from mailscope.metrics import (
    DESTINATION_LABELS_MAX,
    DURATION_BUCKETS_S,
    PROVIDER_LABELS_MAX,
    TEMPLATE_NAME_LABELS_MAX,
    LabelCap,
    instruments,
)

_TEMPLATE_OPS = (attr.OP_TEMPLATE_LOAD, attr.OP_PERSONALIZE)
_SEND_OPS = (attr.OP_SEND, attr.OP_SMTP_CONNECT)
_QUEUE_OPS = (attr.OP_QUEUE_PUBLISH, attr.OP_QUEUE_RECEIVE, attr.OP_QUEUE_PROCESS)
# the one attribute each operation's labels are made from (see _labels)
_LABEL_KEYS = {
    **{op: attr.TEMPLATE_NAME for op in _TEMPLATE_OPS},
    **{op: attr.PROVIDER for op in _SEND_OPS},
    **{op: attr.MESSAGING_DESTINATION_NAME for op in _QUEUE_OPS},
}
OK_LABELS_CACHE = 1024
_OPERATION = attr.OPERATION


class OperationMetricsStage:
    name = "operation_metrics"
    quick_only_with = attr.OPERATION  # quick() does nothing on other spans (the pipeline skips it)

    def __init__(self):
        self._histogram = None
        self._template_cap = LabelCap(TEMPLATE_NAME_LABELS_MAX)
        self._provider_cap = LabelCap(PROVIDER_LABELS_MAX)
        self._destination_cap = LabelCap(DESTINATION_LABELS_MAX)
        self._ok_labels: dict = {}  # (operation, label attribute value) -> labels of a healthy span

    def labels(self, draft, operation: str) -> dict:
        return self._labels(draft.attributes, operation, draft.is_error)

    def _labels(self, attributes, operation: str, is_error: bool) -> dict:
        labels = {attr.OPERATION: operation}
        if operation in _TEMPLATE_OPS:
            name = attributes.get(attr.TEMPLATE_NAME)
            if name is not None:
                labels[attr.TEMPLATE_NAME] = self._template_cap(str(name))
        elif operation in _SEND_OPS:
            provider = attributes.get(attr.PROVIDER)
            if provider is not None:
                labels[attr.PROVIDER] = self._provider_cap(str(provider))
        elif operation in _QUEUE_OPS:
            destination = attributes.get(attr.MESSAGING_DESTINATION_NAME)
            if destination is not None:
                labels[attr.MESSAGING_DESTINATION_NAME] = self._destination_cap(str(destination))
        if is_error:
            labels[attr.LABEL_OUTCOME] = attr.OUTCOME_ERROR
            category = attributes.get(attr.ERROR_CATEGORY)
            if category is not None:
                labels[attr.ERROR_CATEGORY] = category
        else:
            labels[attr.LABEL_OUTCOME] = attr.OUTCOME_OK
        return labels

    def __call__(self, draft) -> None:
        attributes = draft.attributes
        operation = attributes.get(attr.OPERATION)
        if operation is None:
            return
        self._record(draft.duration_ns, self._labels(attributes, str(operation), draft.is_error))

    def quick(self, span, name, attributes):
        """The pipeline's fast path (a finished SDK span that did not fail): writes nothing."""
        operation = attributes.get(_OPERATION)
        if operation is None:
            return None
        start, end = span._start_time, span._end_time
        # the labels of a healthy span depend on its operation and one attribute: remembered
        # (bounded; the LabelCaps decide once per value, as they would again)
        try:
            cache_key = (operation, attributes.get(_LABEL_KEYS.get(operation)))
            labels = self._ok_labels.get(cache_key)
        except TypeError:  # an unhashable value: not remembered
            labels = cache_key = None
        if labels is None:
            labels = self._labels(attributes, str(operation), False)
            if cache_key is not None and len(self._ok_labels) < OK_LABELS_CACHE:
                self._ok_labels[cache_key] = labels
        histogram = self._histogram
        if histogram is None:
            histogram = self._histogram = HotHistogram(instruments().operation_duration, DURATION_BUCKETS_S)
        histogram.record((end - start if start is not None and end is not None else 0) / 1e9, labels)
        return None

    def _record(self, duration_ns: int, labels: dict) -> None:
        histogram = self._histogram
        if histogram is None:
            histogram = self._histogram = HotHistogram(instruments().operation_duration, DURATION_BUCKETS_S)
        histogram.record(duration_ns / 1e9, labels)
