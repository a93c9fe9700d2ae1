"""Each provider's proof that a webhook request is its own.

- SendGrid (Signed Event Webhook): an ECDSA P-256 / SHA-256 signature, base64 DER in
  `X-Twilio-Email-Event-Webhook-Signature`, over the `X-Twilio-Email-Event-Webhook-Timestamp`
  header value followed by the raw body; verified with the account's verification key
  (base64 DER SubjectPublicKeyInfo as the dashboard shows it, or PEM).
- Mailgun: the body's `signature` object; `signature` is the hex HMAC-SHA256 of `timestamp`
  followed by `token`, keyed with the webhook signing key.
- Postmark: no signature; the webhook URL carries basic-auth credentials, compared in
  constant time.
- Amazon SES through SNS: the SNS message signature (SignatureVersion 1: SHA1withRSA,
  2: SHA256withRSA) over the canonical string of the message's fields, checked with the
  public key of the certificate at `SigningCertURL`. That URL must start with one of the
  allowed origins (default `https://sns.<region>.amazonaws.com`), so a forged message cannot
  name a certificate of its own; the topic must be one the receiver was told to accept.
  Certificates are fetched by a pluggable function and cached (a few per process).

Every function returns a reason from `REASONS` (or None when the request is genuine) and
never raises.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import threading
import urllib.request
from collections import OrderedDict
from urllib.parse import urlsplit

# rejection reasons: the `reason` label of mailscope.delivery.rejected_requests
UNSIGNED = "unsigned"  # no signature or credentials at all
BAD_SIGNATURE = "bad_signature"  # present but wrong (or the certificate cannot be had)
STALE = "stale"  # signed time outside the window
REPLAYED = "replayed"  # an event id handled already
NOT_CONFIGURED = "not_configured"  # no key for this provider: nothing can be verified
MALFORMED = "malformed"  # not the provider's JSON shape
TOO_LARGE = "too_large"
REASONS = (UNSIGNED, BAD_SIGNATURE, STALE, REPLAYED, NOT_CONFIGURED, MALFORMED, TOO_LARGE)

SENDGRID_SIGNATURE = "x-twilio-email-event-webhook-signature"
SENDGRID_TIMESTAMP = "x-twilio-email-event-webhook-timestamp"

MAX_CERT_BYTES = 65_536
CERT_TIMEOUT_S = 5.0
CERT_CACHE_MAX = 8


# --- SendGrid ------------------------------------------------------------------------
def load_sendgrid_key(text: str):
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import load_der_public_key, load_pem_public_key

    text = text.strip()
    if text.startswith("-----BEGIN"):
        key = load_pem_public_key(text.encode("ascii"))
    else:
        key = load_der_public_key(base64.b64decode("".join(text.split()), validate=True))
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise ValueError("not an EC public key")
    return key


def sendgrid(key, headers, body: bytes) -> str | None:
    """`key`: the loaded public key. Returns a rejection reason or None."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    signature, timestamp = headers.get(SENDGRID_SIGNATURE), headers.get(SENDGRID_TIMESTAMP)
    if not signature or not timestamp:
        return UNSIGNED
    try:
        key.verify(base64.b64decode(signature, validate=True), timestamp.encode("utf-8") + body,
                   ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError, TypeError):
        return BAD_SIGNATURE
    return None


# --- Mailgun -------------------------------------------------------------------------
def mailgun(signing_key: str, signature) -> str | None:
    """`signature`: the body's `signature` object."""
    if not isinstance(signature, dict):
        return UNSIGNED
    timestamp, token, digest = (signature.get(k) for k in ("timestamp", "token", "signature"))
    if not timestamp or not token or not digest:
        return UNSIGNED
    expected = hmac.new(signing_key.encode("utf-8"), f"{timestamp}{token}".encode("utf-8"), hashlib.sha256).hexdigest()
    return None if hmac.compare_digest(expected, str(digest).lower()) else BAD_SIGNATURE


# --- Postmark ------------------------------------------------------------------------
def postmark(credentials: str, authorization: str | None) -> str | None:
    """`authorization`: the Authorization header; `credentials`: `user:password`."""
    if not authorization:
        return UNSIGNED
    scheme, _, value = authorization.strip().partition(" ")
    if scheme.lower() != "basic":
        return UNSIGNED
    try:
        given = base64.b64decode(value.strip(), validate=True)
    except ValueError:
        return BAD_SIGNATURE
    return None if hmac.compare_digest(given, credentials.encode("utf-8")) else BAD_SIGNATURE


# --- Amazon SNS ----------------------------------------------------------------------
NOTIFICATION_FIELDS = ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
CONFIRMATION_FIELDS = ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type")


def sns_string_to_sign(message: dict) -> bytes | None:
    """The canonical string: `Name\\nvalue\\n` for each signed field present, in the documented order."""
    kind = message.get("Type")
    if kind == "Notification":
        names = NOTIFICATION_FIELDS
    elif kind in ("SubscriptionConfirmation", "UnsubscribeConfirmation"):
        names = CONFIRMATION_FIELDS
    else:
        return None
    parts = []
    for name in names:
        value = message.get(name)
        if value is None:
            if name == "Subject":
                continue
            return None
        parts.append(f"{name}\n{value}\n")
    return "".join(parts).encode("utf-8")


def _origin_pattern(origin: str):
    scheme, _, host = origin.partition("://")
    labels = [r"[a-z0-9-]+" if label == "*" else re.escape(label) for label in host.split(".")]
    return re.compile(re.escape(scheme) + "://" + r"\.".join(labels) + r"(?=/)")


class CertificateSource:
    """SNS signing certificates from allowed origins only: `fetch(url) -> PEM bytes` is pluggable
    (default: an HTTP GET with a timeout and a size limit); results are cached per URL."""

    def __init__(self, origins, fetch=None):
        self.patterns = tuple(_origin_pattern(o) for o in origins)
        self.fetch = fetch or fetch_url
        self._cache: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def origin_allowed(self, url) -> bool:
        """`url` starts with an allowed origin (an SNS SubscribeURL, say)."""
        if not isinstance(url, str):
            return False
        try:
            if urlsplit(url).username or urlsplit(url).password:
                return False
        except ValueError:
            return False
        lowered = url.lower()
        return any(p.match(lowered) for p in self.patterns)

    def allowed(self, url) -> bool:
        """`url` may name a signing certificate: an allowed origin, a `.pem` path, nothing else."""
        if not isinstance(url, str) or not url.lower().endswith(".pem"):
            return False
        try:
            parts = urlsplit(url)
        except ValueError:
            return False
        if parts.username or parts.password or parts.query or parts.fragment:
            return False
        lowered = url.lower()
        return any(p.match(lowered) for p in self.patterns)

    def public_key(self, url):
        """The certificate's public key, or None (not allowed, not fetched, not a certificate)."""
        if not self.allowed(url):
            return None
        with self._lock:
            key = self._cache.get(url)
            if key is not None:
                self._cache.move_to_end(url)
                return key
        try:
            from cryptography.x509 import load_pem_x509_certificate

            key = load_pem_x509_certificate(self.fetch(url)).public_key()
        except Exception:
            return None
        with self._lock:
            self._cache[url] = key
            while len(self._cache) > CERT_CACHE_MAX:
                self._cache.popitem(last=False)
        return key


def fetch_url(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=CERT_TIMEOUT_S) as response:  # noqa: S310 (origin allow-listed)
        data = response.read(MAX_CERT_BYTES + 1)
    if len(data) > MAX_CERT_BYTES:
        raise ValueError("certificate too large")
    return data


def sns(certificates: CertificateSource, message: dict) -> str | None:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    signature, url, version = message.get("Signature"), message.get("SigningCertURL"), message.get("SignatureVersion")
    if not signature or not url:
        return UNSIGNED
    algorithm = {"1": hashes.SHA1(), "2": hashes.SHA256()}.get(str(version))
    canonical = sns_string_to_sign(message)
    if algorithm is None or canonical is None:
        return BAD_SIGNATURE
    key = certificates.public_key(url)
    if key is None:
        return BAD_SIGNATURE
    try:
        key.verify(base64.b64decode(signature, validate=True), canonical, padding.PKCS1v15(), algorithm)
    except (InvalidSignature, ValueError, TypeError):
        return BAD_SIGNATURE
    return None
