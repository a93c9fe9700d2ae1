import pytest

from mailscope import _safety


@pytest.fixture(autouse=True)
def _fresh_log_once():
    # each test sees mailscope's once-only warnings afresh
    _safety.reset_for_tests()
    yield
