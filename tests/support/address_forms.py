"""The shapes an email address takes in exported bytes, and a search for them.

`address_forms(address)` gives the address raw, URL-encoded (`%40`, and
`quote_plus`), JSON-escaped (`\\u0040`), quoted-printable (`=40`), lower-cased,
and its local part followed by each form of the `@`: a domain-only redaction
keeps the domain, so the local part with its separator is what must never
appear. `leaks(addresses, blobs)` lists (where, address, form) for each hit.
"""

from __future__ import annotations

import json
import quopri
import urllib.parse

_SEPARATORS = ("@", "%40", "\\u0040", "=40")


def address_forms(address: str) -> set[bytes]:
    local = address.split("@", 1)[0]
    forms = {
        address,
        urllib.parse.quote(address, safe=""),
        urllib.parse.quote_plus(address),
        json.dumps(address)[1:-1],
        quopri.encodestring(address.encode()).decode().strip(),
        *(address.replace("@", sep) for sep in _SEPARATORS),
        *(local + sep for sep in _SEPARATORS),
    }
    return {f.encode() for f in forms} | {f.lower().encode() for f in forms}


def leaks(addresses, blobs: dict) -> list[tuple[str, str, bytes]]:
    """(where, address, form) for every form of every address found in `blobs` ({where: bytes})."""
    found = []
    for address in addresses:
        for form in address_forms(address):
            for where, blob in blobs.items():
                if form in blob:
                    found.append((where, address, form))
    return found
