"""Address shapes an app plausibly exports that the redaction must still see."""

import pytest

from mailscope.processors.redact import redact


@pytest.mark.parametrize(
    "text, expected",
    [
        # a per-recipient template name: an address with a file suffix glued on
        ("welcome-ann@example.org.html", "<redacted>@example.org.html"),
        ("templates/ann@example.org.json", "templates/<redacted>@example.org.json"),
        # an asset name (one name and a suffix after the @) is no address
        ("logo@2x.png", "logo@2x.png"),
    ],
)
def test_address_with_a_file_suffix_is_masked_and_asset_names_are_not(text, expected):
    assert redact(text) == expected
