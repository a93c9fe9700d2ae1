"""`capture`: mailscope_templates instrumented with an in-memory SDK for one test, removed after it."""

import pytest

from mailscope.instrumentation.templates import TemplateInstrumentor
from tests.support.template_capture import Capture


@pytest.fixture
def capture():
    cap = Capture()
    TemplateInstrumentor().instrument(**cap.providers)
    try:
        yield cap
    finally:
        TemplateInstrumentor().uninstrument()
        cap.shutdown()
