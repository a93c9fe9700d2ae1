"""Masking: turn an error message into its pattern, the part that stays the same across variants.

`mask(message)` replaces what varies between occurrences of the same error with a
placeholder and keeps what carries meaning:

    <email>  addresses (any form the redactor recognises, angle brackets included)
    <url>    URLs (query strings, tokens and ids live there)
    <host>   IPv4 / IPv6 addresses and hostnames / domains (a known TLD as last label)
    <path>   file system paths
    <ts>     dates, times and timestamps
    <*>      numbers that are not protocol codes, UUIDs, hex and base64-ish ids,
             queue / session ids (Gmail's `a640c23a62f3a-4f1d...gsmtp` id), quoted
             single-token values and `key=value` values

Kept: SMTP reply codes and HTTP status codes where the context says they are codes
(`550 5.1.1`, `said: 550`, `HTTP Error 429`, `429 Too Many Requests`), RFC 3463
enhanced status codes (`5.1.1`, `4.7.28`), errno numbers, and every fixed word.
Python `bytes` reprs lose their `b` prefix and literal `\\n` escapes become spaces,
so an exception's str() and a log line give the same pattern. Runs of the same
placeholder collapse into one (a list of 1 or 5 addresses is the same error).
The result is at most 300 characters (a longer text keeps its head and its tail, see
`shorten`) and never contains an address; `masked` is the whole masked text, and
`evidence` the part of it categorize() reads (up to 1,024 characters, head and tail).

smtplib / aiosmtplib exceptions print the reply as a repr: `(550, b'5.1.1 ...')`,
`(553, '5.7.1 ...', 'me@x.com')`, a dict `{'a@x.com': (550, b'...'), ...}` or a list
`[SMTPRecipientRefused(550, '...', 'a@x.com'), ...]`. Each reply reads as the reply,
`550 5.1.1 <email>: ...`; a dict or list becomes its distinct masked replies in
first-seen order joined by `; `, so 1 or 50 identical refusals give one pattern.

Everything is compiled once at import; each step is skipped when a cheap substring
test shows it cannot apply.
"""

from __future__ import annotations

import re
import string

from mailscope.attributes import ERROR_PATTERN_MAX_CHARS
from mailscope.processors import redact as _redact

MAX_INPUT_CHARS = 4096

EMAIL = "<email>"
URL = "<url>"
HOST = "<host>"
PATH = "<path>"
TS = "<ts>"
VAR = "<*>"

# --- top-level domains that make a dotted token a hostname ------------------------
# Generic and common new gTLDs, internal/reserved names, and every assigned ccTLD.
_GTLDS = (
    "com net org edu gov mil int info biz name pro mobi aero coop museum jobs travel tel asia cat post xxx "
    "app dev ai io co me tv cc us uk eu email online site xyz top club shop store tech cloud space website "
    "live life world today news blog agency digital solutions services company group global network systems "
    "media studio design marketing click icu vip fun art ltd llc inc "
    "bank money finance capital ventures academy school university "
    "local localhost internal lan corp home test example invalid arpa onion localdomain intranet priv "
    "amazonaws cloudapp"
).split()
_CCTLDS = (
    "ac ad ae af ag ai al am ao aq ar as at au aw ax az ba bb bd be bf bg bh bi bj bm bn bo br bs bt bw by bz "
    "ca cd cf cg ch ci ck cl cm cn co cr cu cv cw cx cy cz de dj dk dm do dz ec ee eg er es et eu fi fj fk fm "
    "fo fr ga gb gd ge gf gg gh gi gl gm gn gp gq gr gs gt gu gw gy hk hm hn hr ht hu id ie il im in io iq ir "
    "is it je jm jo jp ke kg kh ki km kn kp kr kw ky kz la lb lc li lk lr ls lt lu lv ly ma mc md me mg mh mk "
    "ml mm mn mo mp mq mr ms mt mu mv mw mx my mz na nc ne nf ng ni nl no np nr nu nz om pa pe pf pg ph pk pl "
    "pm pn pr ps pt pw py qa re ro rs ru rw sa sb sc sd se sg sh si sk sl sm sn so sr ss st sv sx sy sz tc td "
    "tf tg th tj tk tl tm tn to tr tt tv tw tz ua ug uk us uy uz va vc ve vg vi vn vu wf ws ye yt za zm zw"
).split()
TLDS = frozenset(_GTLDS) | frozenset(_CCTLDS)

# file extensions: `main.py`, `chrome.exe` are files, not hosts (when the name has two labels)
FILE_EXTENSIONS = frozenset((
    "py pyc pyo pyx sh bash pl pm rb rs go c h cc cpp hpp cs java class jar war js mjs ts tsx jsx css html htm "
    "php asp aspx jsp md rst txt log json xml yaml yml toml ini cfg conf properties env lock tmp bak old "
    "exe dll so dylib sys bin dat db sqlite sql csv tsv pdf doc docx xls xlsx ppt zip gz tgz bz2 xz tar rar "
    "7z png jpg jpeg gif svg webp ico bmp tiff mp3 mp4 wav avi mov mkv eml msg mbox pem crt key p12 pfx der "
    "sock pid out err swp service socket timer mount"
).split())

# words with digits that are names, not values
KEEP_WORDS = frozenset((
    "ipv4 ipv6 ipv4/ipv6 tlsv1 sslv2 sslv3 smtputf8 8bitmime utf8 utf16 utf32 latin1 ascii7 x509 x400 "
    "sha1 sha224 sha256 sha384 sha512 md5 base64 base32 rot13 http2 http3 h2 h2c ssh2 imap4 imap4rev1 pop3 "
    "s3 ec2 sqs sns ses2 sesv2 v1 v2 v3 v4 urllib3 jinja2 psycopg2 boto3 python2 python3 py3 oauth2 "
    "smtp2go 2fa mfa2 x86 x64 amd64 arm64 aarch64 i386 i686 win32 win64 ucs2 ucs4 iso8601 rfc822 rfc2822 "
    "rfc5321 rfc5322 rfc3463 rfc6531 rfc7208 rfc7489 rfc6376 p256 ed25519 rsa2048 e164 3des aes128 aes256 "
    "chacha20 poly1305 tls1 dkim1 spf1 dmarc1 aiosmtplib2 l2tp p2p b2b b2c 1st 2nd 3rd 4th"
).split())

# --- compiled pieces ------------------------------------------------------------
_WS = re.compile(r"\s+")
_ESCAPES = re.compile(r"\\[rntfv](?![a-z]{3})|\\x[0-9a-fA-F]{2}")
_BYTES_PREFIX = re.compile(r"(?<![\w'\"])b(?=['\"])")
_WIN_PATH = re.compile(r"(?<![\w])[A-Za-z]:\\[^\s'\"<>|*?]*")
_URL = re.compile(r"(?i)\b(?:[a-z][a-z0-9+.-]{1,15}://|www\.)(?:\[[0-9a-f:.]+\]|[^\s'\"<>)\]}]|'(?=\w))+")
_ARN = re.compile(r"\barn:aws[\w-]*:[^\s,;)\]}'\"]*")
_AWS_REGION = re.compile(r"(?i)(?:us|eu|ap|ca|sa|me|af|il|mx|cn)-(?:gov-|iso-)?[a-z]+-\d")
_CASE_SEGMENT = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])")
_VOWELS = frozenset("aeiouyAEIOUY")
_NO_AEIOU = re.compile(r"[^aeiouAEIOU]{10,}")
_CONSONANTS5 = re.compile(r"[^aeiouyAEIOUY]{6}")

_EMAIL_LOCAL = r"(?:\"(?:[^\"\\\r\n]|\\.){1,64}\"|[\w!#$%*+/=?^`|~-][\w.!#$%&'*+/=?^`{|}~-]*)"
_EMAIL = re.compile(
    rf"<\s*{_EMAIL_LOCAL}(?:@|%40|\\u0040|&#64;|&#x40;)(?:{_redact._DOMAIN})\s*>"
    rf"|{_EMAIL_LOCAL}(?:@|%40|\\u0040|&#64;|&#x40;)(?:{_redact._DOMAIN})",
    re.IGNORECASE,
)

_MONTH = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)[a-z]*"
_WEEKDAY = r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)[a-z]*"
_CLOCK = r"\d{1,2}:\d{2}(?::\d{2})?(?:[.,]\d{1,9})?"
_ZONE = r"(?:\s?(?:Z|UTC|GMT|[+-]\d{2}:?\d{2}|[A-Z]{3,4}T))?"
_TS_TEXT = re.compile(
    rf"\b(?:{_WEEKDAY},?\s+)?(?:"
    rf"\d{{1,2}}[\s/-]{_MONTH}[\s/-]\d{{2,4}}(?:[\s:]+{_CLOCK})?"  # 01 Jan 2024 10:00:00 / 17/Jul/2005:23:21:54
    rf"|{_MONTH}\s+\d{{1,2}}(?:,?\s+\d{{4}})?(?:\s+{_CLOCK})?(?:\s+\d{{4}})?"  # Jan  5 10:22:33 / Jul 17 23:21:54 2005
    rf"){_ZONE}(?!\w|:(?!\s|$))"  # a colon and a space after it ends a log frame (`[<ts>: ERROR/...]`)
)
# RFC 2822 dates that name the weekday, wherever they sit (`a,Tue, 12 Jul 2024 10:22:33 +0000,b` in an
# Exchange message-tracking CSV row, `(Tue, ...)`, `date=Tue, ...`): when the token pass meets a
# weekday and its comma, the raw text is read with this and masked again, since the punctuation glued
# to either end of the date would hide it from the token pass
_TS_WEEKDAY = re.compile(
    rf"(?<![A-Za-z]){_WEEKDAY},\s*\d{{1,2}}[\s-]{_MONTH}[\s-]\d{{2,4}}(?:[\s:]+{_CLOCK})?{_ZONE}(?!\w|:(?!\s|$))"
)
_TS_NUM = re.compile(
    rf"(?<![\w.:/-])(?:\d{{4}}[-/.]\d{{1,2}}[-/.]\d{{1,2}}(?:[T\s_]{_CLOCK})?|\d{{1,2}}/\d{{1,2}}/\d{{2,4}}(?:\s{_CLOCK})?"
    rf"|{_CLOCK}){_ZONE}(?!\w|:(?!\s|$)|/\d)"  # 3/0/4/820/6 (haproxy timers) is no date
)
_UUID = re.compile(r"(?i)\b[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}\b")
_IPV6 = re.compile(
    r"(?i)(?<![\w:.])(?:IPv6:)?(?:"
    r"(?:[0-9a-f]{1,4}:){7}[0-9a-f]{1,4}(?::\d{1,5})?"  # a full address, with a port glued on as clients print it
    r"|(?:[0-9a-f]{1,4}:){1,7}:"
    r"|(?:[0-9a-f]{1,4}:){1,6}(?::[0-9a-f]{1,4}){1,6}"
    r"|::(?:[0-9a-f]{1,4}:){0,5}[0-9a-f]{1,4}"
    r"|(?=[0-9a-f:]*::)(?:[0-9a-f]{0,4}:){2,8}\d{5}"  # a compressed address with a 5-digit port glued on
    r"|::"
    r")(?:(?<=:)\d{1,3}(?:\.\d{1,3}){3})?(?:%[\w.]+)?(?![\w]|:[\w:])"
)
_IPV4 = re.compile(r"(?<![\w.])\d{1,3}(?:\.\d{1,3}){3}(?:/\d{1,2})?(?![\w.]*\w)")
_MAC = re.compile(r"(?i)\b[0-9a-f]{2}(?:[:-][0-9a-f]{2}){5}\b")
_HEX = re.compile(r"(?i)\b0x[0-9a-f]+\b")
_UNIX_PATH = re.compile(r"(?<![\w./:~<>*-])(?:~|\.{1,2})?/(?=[\w.~@%+-])[\w.~@%+-]*(?:/[\w.~@%+$-]*)*")
_QUOTED = re.compile(r"(?<![\w\\])(['\"`])([^'\"`\s]{1,200})\1(?!\w)(?!\s*:(?!\d))")
# the same, quoted with escaped quotes as a string inside a JSON string carries them: \"welcome\"
_ESCAPED_QUOTED = re.compile(r"(?<![\w\\])(\\\")([^'\"`\s\\]{1,200})\1(?!\w)(?!\s*:(?!\d))")
_KV = re.compile(
    r"(?<![\w.-])([A-Za-z_][\w.-]{0,40})=(<(?:email|url|host|path|ts|\*)>|\"[^\"]*\"|'[^']*'|[^\s,;&<>\"'(){}]*)"
)
_PLACEHOLDER = re.compile(r"<(?:email|url|host|path|ts|\*)>")
_RUNS = re.compile(r"(<(?:email|url|host|path|ts|\*)>)(?:(?:[\s,;|/]|\band\b)+\1)+")
_VAR_RUNS = re.compile(r"<\*>(?:[:._\-+/]?<\*>)+")
# candidate tokens for number / id / host masking: anything with a digit or a dot inside
_TOKEN = re.compile(r"(?<![\w])(?=[\w+-]*(?:\d|\.\w))\w[\w.+-]*\w|(?<![\w.])\d(?![\w.])")
# long letter-only tokens with random case (Postfix long queue ids, base52 ids)
_LETTERS_ID = re.compile(r"(?<![\w<])[A-Za-z]{10,}(?![\w>])")
# Exim message ids: 1rLm3x-0004Ab-Qz (classic), 1rLm3x-00000004Ab1-Qz1x (4.97 and later)
_EXIM_ID = re.compile(r"[0-9A-Za-z]{6}-(?:[0-9A-Za-z]{6}-[0-9A-Za-z]{2}|[0-9A-Za-z]{11}-[0-9A-Za-z]{4})")
_CODE_PAIR = re.compile(r"[2-5]\d\d-[245]\.\d{1,3}\.\d{1,3}")

_KV_CATEGORICAL_KEYS = frozenset(
    "status state result action outcome level severity type proto protocol method mode kind category "
    "dsn code reason_code smtp_code "
    # the sender's or server's own classification: Sendmail's `stat=Deferred`, Mandrill's
    # `"reject_reason":"hard-bounce"`, Elastic Email's `category=NoMailbox`, `"error":"timeout"`
    "stat reason reject_reason queued_reason bounce_reason bounce_class bounce_category subcategory "
    "sub_status substatus classification event verdict disposition error err error_code errorcode msg message"
.split())
# a value that is a word or words joined by `-` / `_` (hard-bounce, test-mode-limit, Unknown_Template), or a family
# and its member (Exchange's `[Message=SocketError:TimedOut]`)
_CATEGORY_SEP = re.compile(r"[-_:]")
# the quoted key right before a quoted value: `"reject_reason":`, `'status': `, `\"status\":`
_QUOTED_KEY_BEFORE = re.compile(
    r"""(?:\\?["']([A-Za-z_][\w.-]{0,40})\\?["']\s*:\s*|(?<![\w.-])([A-Za-z_][\w.-]{0,40})=)$"""
)
# `status=Error&category=NoMailbox&to=a@b.org&transaction=...`: a query string outside a URL
_QUERY = re.compile(r"[A-Za-z_][\w.-]{0,40}=[^\s&]*(?:&[A-Za-z_][\w.-]{0,40}=[^\s&]*)+")

# context that makes a 3-digit number a reply/status code
_CODE_BEFORE = re.compile(
    r"(?:said:|smtp;|error|code|status|http|reply|response|responded|returned|answer|ErrorCode|errno"
    # a field that holds the server's reply (OpenSMTPD's `result="550 ..."`, logfmt's `msg="421 ..."`, Sendmail's `stat=`)
    r"|result|msg|message|reason|stat|diagnostic|last_?error)"
    r"[\"'\s:=#]*$",
    re.IGNORECASE,
)
_CODE_AFTER = re.compile(r"[ -]?[245]\.\d{1,3}\.\d{1,3}(?![\d.]\d)|,\s*b?['\"]")
_HTTP_REASON_AFTER = re.compile(
    r"\s+(?:Client Error|Server Error|OK\b|Created|Accepted|No Content|Moved|Found|Not Modified|Bad Request|"
    r"Unauthori[sz]ed|Payment Required|Forbidden|Not Found|Method Not Allowed|Not Acceptable|"
    r"Request Time-?out|Conflict|Gone|Length Required|Precondition|Payload Too Large|"
    r"Request Entity Too Large|URI Too Long|Unsupported Media Type|Unprocessable|Too Many Requests|"
    r"Internal Server Error|Not Implemented|Bad Gateway|Service Unavailable|Service Temporarily|Gateway Time-?out)",
    re.IGNORECASE,
)
_UNIT_AFTER = re.compile(
    r"\s*(?:ms|s|sec|secs|seconds?|minutes?|hours?|days?|bytes?|[kmgt]i?b|kbytes|items?|records?|rows?|"
    r"files?|messages?|mails?|times|tries|attempts|retries|recipients?|connections?|threads?|%)\b",
    re.IGNORECASE,
)
_ERRNO_BEFORE = re.compile(r"(?:errno|winerror|\[error)\s*[=:]?\s*-?$", re.IGNORECASE)


# reply codes SMTP servers and HTTP APIs really send (RFC 5321, RFC 9110 and common extensions)
REAL_CODES = frozenset(
    "200 201 202 204 211 214 220 221 235 250 251 252 334 354 "
    "400 401 402 403 404 405 406 407 408 409 410 411 412 413 414 415 416 417 418 421 422 423 424 425 426 428 "
    "429 431 432 450 451 452 453 454 455 458 500 501 502 503 504 505 507 508 510 511 521 523 530 534 535 538 "
    "550 551 552 553 554 555 556 557".split()
)


def _is_smtp_or_http_code(digits: str) -> bool:
    return digits in REAL_CODES


def _number(text: str, start: int, end: int, digits: str) -> str:
    """A number inside a token (`"ErrorCode":406,`, `(451/100)`): a code only when named as one."""
    before = text[max(0, start - 24) : start]
    if _ERRNO_BEFORE.search(before):
        return digits
    if not _is_smtp_or_http_code(digits):
        return VAR
    after = text[end : end + 40]
    if _CODE_AFTER.match(after) or (start > 0 and _CODE_BEFORE.search(before) and not _UNIT_AFTER.match(after)):
        return digits
    return VAR


def _is_enhanced(parts) -> bool:
    return (
        len(parts) == 3
        and parts[0] in ("2", "4", "5")
        and 1 <= len(parts[1]) <= 3
        and 1 <= len(parts[2]) <= 3
    )


def _word(word: str) -> str:
    """A run of letters/digits/underscore without dots or hyphens, not random: name + number."""
    if word.isdigit():
        return VAR
    if word.isalpha() or word.lower() in KEEP_WORDS:
        return word
    if _LETTERS_DIGITS.fullmatch(word):
        # abcd123, us7284, relay01, Exchange01: a server or request id glued from a name and a
        # number is one value (the name part is as arbitrary as the number)
        return VAR
    # 351ms, 64kB, worker_12: keep the letters (a unit, a separated name), mask the number
    return _DIGIT_RUN.sub(VAR, word)


_LETTERS_DIGITS = re.compile(r"[A-Za-z]+\d+")


_DIGIT_RUN = re.compile(r"\d+")
_HEXCHARS = frozenset("0123456789abcdefABCDEF")
_SPLIT_WORDS = re.compile(r"([._+-]+)")
# Kubernetes pod / replica-set suffixes: `-7d9f8b6c5d-x2kq4`, drawn from a vowel-free alphabet
_K8S_SUFFIX = re.compile(r"-(?:[bcdfghjklmnpqrstvwxz2456789]{6,10}-)?[bcdfghjklmnpqrstvwxz2456789]{5}(?=$|[_.:,;)\]])")
# a minus sign in front of a masked number (blk_-1608..., [Errno -2] aside): the sign is part of the value
_NEGATIVE = re.compile(r"(?<![A-Za-z0-9>])-(?=<\*>)")
_B64_RUN = re.compile(r"(?<![\w+/])[A-Za-z0-9+/]{16,}={0,2}(?![\w+/=])")


def _is_hex(word: str) -> bool:
    return all(c in _HEXCHARS for c in word)


def _dns_label(label: str) -> bool:
    if not label or label[0] == "-" or label[-1] == "-":
        return False
    if label[0] == "_":  # _dmarc, _domainkey
        label = label[1:]
    return label.replace("-", "").isalnum()


_HOSTNAME = re.compile(r"(?:_?[^\W_](?:[\w-]*[^\W_])?\.)+[^\W\d_]{2,63}")


_REVERSE_DNS_FIRST = frozenset("com org net io edu gov android java javax jakarta".split())


def _hostlike(labels, token: str = "") -> bool:
    """Dotted token whose last label is a TLD and whose labels are DNS labels."""
    if len(labels) < 2:
        return False
    tld = labels[-1].lower()
    if tld not in TLDS or (len(labels) == 2 and tld in FILE_EXTENSIONS):
        return False
    if len(labels) >= 3 and labels[0] in _REVERSE_DNS_FIRST:
        return False  # com.tencent.mm, org.apache.kafka: a package name in reverse-domain notation
    if token:
        return _HOSTNAME.fullmatch(token) is not None
    for label in labels:
        if not _dns_label(label):
            return False
    return True


def _count_digits(text: str) -> int:
    return len(text) - len(text.translate(_NO_DIGITS))


_NO_DIGITS = str.maketrans("", "", "0123456789")


def _hex_letters(token: str) -> bool:
    """8 or more of a-f only, one case (feeaafbbc, DEADBEEF): a hex value that drew no digit; no
    word is spelled that way."""
    return len(token) >= 8 and (token.islower() or token.isupper()) and not token.lower().strip("abcdef")


def _mask_word_token(token: str, text: str = "", start: int = 0) -> str:
    """One run of [word chars . + -]: number, code, enhanced code, IP, host, file, id or word."""
    if token.isalpha():
        if len(token) >= 8 and _hex_letters(token):
            return VAR
        if len(token) >= 10 and not (token.islower() or token.isupper() or token.istitle()):
            return _letters_id_word(token)
        return token
    if token.isdigit():
        return _number(text or token, start, start + len(token), token)
    if token[:3] in ("RFC", "rfc", "Rfc") and token[3:].lstrip("-").isdigit():
        return token
    if "-" in token:
        if _CODE_PAIR.fullmatch(token):
            return token
        if _AWS_REGION.fullmatch(token):
            return VAR
        if token[:4].isdigit() and _TS_NUM.fullmatch(token):
            return TS
        if len(token) == 36 and _UUID.fullmatch(token):
            return VAR
        if len(token) in (16, 23) and _EXIM_ID.fullmatch(token) and not (token.islower() or token.isupper()):
            return VAR
    if "." in token:
        labels = token.split(".")
        if all(label.isdigit() for label in labels if label):
            if _is_enhanced(labels):
                return token
            if len(labels) == 4 and all(len(label) <= 3 for label in labels):
                return HOST
            return VAR
        if _hostlike(labels, token):
            return HOST
        if len(labels) == 2 and labels[1].lower() in FILE_EXTENSIONS and labels[0]:
            return PATH
    if token[:2] in ("0x", "0X") and _is_hex(token[2:]):
        return VAR
    if not _has_digit(token) or token.lower() in KEEP_WORDS:
        return token
    parts = _SPLIT_WORDS.split(token)
    groups = 0
    dashed = "-" in token
    for part in parts:
        if _random_part(part) or (dashed and len(part) >= 8 and _is_hex(part) and not part.isdigit()):
            # a generated id (Gmail's a640c23a62f3a-4f1d..., SN4PR0601CA0005, pod hashes): all of it
            return VAR
        if part and part[0].isdigit():
            groups += 1
    if groups >= 3:
        # attempt_1445144423722_0020_m_000002_0, container_..._01_000004: a structured id
        return VAR
    masked = "".join(part if not part or part[0] in "._+-" else _word(part) for part in parts)
    if "-" + VAR in masked:
        masked = _NEGATIVE.sub("", masked)
    if masked.count(VAR) > 1:
        masked = _VAR_RUNS.sub(VAR, masked)
    return masked


def _random_part(part: str) -> bool:
    """Letters and digits interleaved (a640c23a, BN8NAM11FT066) or a hex run: generated, not named."""
    if len(part) < 3 or part.isalpha() or part.isdigit() or part[0] in "._+-":
        return False
    changes = 0
    digit = part[0].isdigit()
    for c in part[1:]:
        d = c.isdigit()
        if d != digit:
            changes += 1
            digit = d
    if changes >= 2:
        return part.lower() not in KEEP_WORDS
    if not _is_hex(part):
        # a name and its number (worker12, mta1234) or a number and its unit (351ms, 64kB),
        # unless the letters themselves are random (Postfix long queue ids: WdCZzzdrMjy5)
        letters = part.strip("0123456789")
        return len(letters) >= 5 and _letters_id_word(letters) == VAR
    # DE17977119, 726452723AE: Postfix queue ids; but 1024B, 45C are a number and its unit
    return len(part) >= 10 or (len(part) >= 8 and not part[0].isdigit())


def _token(match: re.Match) -> str:
    return _mask_word_token(match.group(), match.string, match.start())


def _letters_id(match: re.Match) -> str:
    return _letters_id_word(match.group())


def _letters_id_word(word: str) -> str:
    if word.islower() or word.isupper() or word.istitle():
        return word
    if _NO_AEIOU.fullmatch(word):
        return VAR  # Postfix long queue ids use a vowel-free alphabet: LyvpBDKYKrsc
    # CamelCase is made of pronounceable words; a random id is mostly 1-2 letter fragments
    # and consonant clusters no language has (Sklqksbyj)
    wordy = sum(
        len(seg) for seg in _CASE_SEGMENT.findall(word)
        if len(seg) >= 3 and not _VOWELS.isdisjoint(seg) and not _CONSONANTS5.search(seg)
    )
    return VAR if wordy < 0.6 * len(word) else word


def _base64(match: re.Match) -> str:
    run = match.group()
    if run.islower() or run.isupper():
        return run
    if run.count("/") >= 2 and all(
        seg.islower() or seg.isupper() or seg.istitle() or seg.isdigit() for seg in run.split("/") if seg
    ):
        return run  # a path (/home/rhlhvh/Maildir, /var/spool/postfix/deferred/4F3A21C0D3B), not base64
    letters = "".join(c for c in run if c.isalpha())
    return VAR if _has_digit(run) or _letters_id_word(letters) == VAR else run


def _quoted(match: re.Match) -> str:
    inner = match.group(2)
    if _PLACEHOLDER.fullmatch(inner) or inner.lower() in _HTTP_REASON_ONE:
        return match.group(0)  # `the response: "Forbidden"`: an HTTP reason phrase is the answer, not a value
    start = match.start()
    if start and match.string[start - 1] in ": =" and _keyed_word(match.string, start, inner):
        return match.group(0)  # `"reject_reason":"hard-bounce"`, `msg="Blocked"`: a categorical key's word value
    return VAR


# ... and any key named for a kind or a cause (`MessageCategory`, `bounce_classification`, `dropReason`)
_CATEGORICAL_SUFFIXES = ("type", "category", "classification", "reason", "status")


def _categorical_key(key: str) -> bool:
    low = key.lower()
    return low in _KV_CATEGORICAL_KEYS or low.endswith(_CATEGORICAL_SUFFIXES)


def _category_word(value: str) -> bool:
    """A word, or words joined by `-` / `_`, that does not look generated (an id, a hex run)."""
    if not value or len(value) > 32:
        return False
    if value.isalpha():
        return len(value) <= 24 and not _hex_letters(value) and _letters_id_word(value) != VAR
    parts = _CATEGORY_SEP.split(value)
    return len(parts) <= 5 and all(
        part.isalpha() and not _hex_letters(part) and _letters_id_word(part) != VAR for part in parts
    )


def _keyed_word(text: str, start: int, value: str) -> bool:
    """Is the quoted `value` starting at `start` the word value of a quoted categorical key?"""
    if not _category_word(value):
        return False
    key = _QUOTED_KEY_BEFORE.search(text, max(0, start - 48), start)
    return key is not None and _categorical_key(key.group(1) or key.group(2))


def _query_string(token: str) -> str:
    """Each `key=value` of a query string masked as a key-value pair; addresses read as addresses."""
    pieces = []
    for piece in token.split("&"):
        key, _, value = piece.partition("=")
        if "@" in value or "%40" in value:
            value = _EMAIL.sub(EMAIL, value)
        pieces.append(_kv_pair(key, value))
    return "&".join(pieces)


# JavaMail's quoting: Missing final '@domain' in string ``deploybot''
_TEX_QUOTED = re.compile(r"``[^\s`']{1,200}''")


def _kv(match: re.Match) -> str:
    return _kv_pair(match.group(1), match.group(2))


def _kv_pair(key: str, value: str) -> str:
    if not value or _PLACEHOLDER.fullmatch(value):
        return f"{key}={value}"
    if _categorical_key(key):
        bare = value.strip("\"'")
        if bare[-1:] == "]" and "[" not in bare:
            bare = bare[:-1]  # the key-value pair closes a bracket it sits in (`[Message=SocketError:TimedOut]`)
        if bare.isalpha() and len(bare) <= 24 or _category_word(bare):
            return f"{key}={value}"
        parts = bare.split(".")
        if _is_enhanced(parts) and all(p.isdigit() for p in parts) or (bare.isdigit() and _is_smtp_or_http_code(bare)):
            return f"{key}={value}"
    return f"{key}={VAR}"


def _simple_kv(token: str):
    """`delay=29,` / `relay=mx.example.org[192.0.2.1]:25,` without quotes or nesting: masked, else None."""
    key, _, value = token.partition("=")
    if not key or "=" in value or not (key[0].isalpha() or key[0] == "_"):
        return None
    if not key.replace("_", "").replace(".", "").replace("-", "").isalnum():
        return None
    tail = ""
    while value and (value[-1] in ",;)}" or (value[-1] == "]" and "[" not in value)):
        tail = value[-1] + tail
        value = value[:-1]
    if any(c in value for c in "<>()'\"`{}"):
        return None
    if value[-1:] == ":" and value[:-1].isalpha():
        value, tail = value[:-1], ":" + tail  # Sendmail's `stat=Deferred: Connection refused`
    return _kv_pair(key, value) + tail


def normalize(message: str) -> str:
    """Whitespace, escapes and bytes-repr prefixes made uniform; bounded length."""
    return " ".join(_tokens(message))


def _tokens(message: str) -> list:
    """`normalize`, as the list of whitespace-separated tokens."""
    return _split(_capped(message))


_CAPPED_HEAD = MAX_INPUT_CHARS // 2


def _capped(message: str) -> str:
    """At most MAX_INPUT_CHARS: a longer text keeps its head and its tail (a bounce body's cause is often its last
    line), each cut at a space or line break when one is in its outer half, joined by a line `...`."""
    if len(message) <= MAX_INPUT_CHARS:
        return message
    if _REPLY_HINT.search(message, 0, _CAPPED_HEAD) is not None:
        # a repr of many refusals (`{'a@...': (550, b'...'), ...}`) repeats one reply: its head is read as a whole
        return _head(message, MAX_INPUT_CHARS)
    head = _head(message, _CAPPED_HEAD)
    tail = message[len(message) - (MAX_INPUT_CHARS - _CAPPED_HEAD) :]
    cuts = [at for at in (tail.find(" "), tail.find("\n")) if at >= 0]
    if cuts and min(cuts) < len(tail) // 2:
        tail = tail[min(cuts) + 1 :]
    return head + "\n...\n" + tail


def _head(text: str, size: int) -> str:
    """The first `size` characters of `text`, cut at its last space or line break when that is in their second half."""
    head = text[:size]
    cut = max(head.rfind(" "), head.rfind("\n"))
    return head[:cut] if cut > size // 2 else head


def _split(text: str) -> list:
    """Escapes and bytes-repr prefixes made uniform, split at whitespace."""
    if "\\" in text:
        if ":\\" in text:
            text = _WIN_PATH.sub(PATH, text)
        text = _ESCAPES.sub(" ", text)
    if "b'" in text or 'b"' in text:
        text = _BYTES_PREFIX.sub("", text)
    return text.split()


# --- the token pass ---------------------------------------------------------------------
_EDGE = "()[]{}<>,;:'\"`!?.*"
_TS_WORDS = frozenset("Jan Feb Mar Apr May Jun Jul Aug Sep Sept Oct Nov Dec Mon Tue Wed Thu Fri Sat Sun".split())
_CODE_WORDS = frozenset(
    "said error code status http reply response responded returned answer errorcode statuscode status_code "
    "smtp; smtp dsn".split()
)
# HTTP reason phrases after a status code: one distinctive word, or the first two words
_HTTP_REASON_ONE = frozenset("unauthorized unauthorised forbidden conflict gone unprocessable misdirected".split())
_HTTP_REASON_TWO = frozenset((
    ("client", "error"), ("server", "error"), ("too", "many"), ("not", "found"), ("bad", "request"),
    ("bad", "gateway"), ("internal", "server"), ("service", "unavailable"), ("service", "temporarily"),
    ("gateway", "timeout"), ("gateway", "time-out"), ("payload", "too"), ("request", "timeout"),
    ("request", "entity"), ("method", "not"), ("not", "acceptable"), ("not", "implemented"),
    ("payment", "required"), ("precondition", "failed"), ("unsupported", "media"), ("length", "required"),
    ("request-uri", "too"), ("uri", "too"), ("insufficient", "storage"), ("network", "authentication"),
))
_UNITS = frozenset(
    "ms s sec secs second seconds minute minutes hour hours day days byte bytes b kb mb gb tb kib mib gib kbytes "
    "item items record records row rows file files message messages mail mails times tries attempts retries "
    "recipient recipients connection connections thread threads % percent".split()
)
# lower-case words that follow a reply code at the start of a real server reply
_SMTP_LEAD_WORDS = frozenset(
    "delivery relay message mailbox sorry user requested rejected rejecting error error: mail no not access "
    "authentication auth this your we unable domain sender recipient recipients bad invalid syntax too "
    "unrouteable address service temporary temporarily local transaction timeout connection command "
    "administrative requested permanent insufficient exceeded over quota blocked denied refused policy spam "
    "smtp helo ehlo sender must please try".split()
)
_TRANSCRIPT_MARKS = frozenset("< <- <-- <~ <** <~* <<< << <= smtp<< client: server: s: in:".split())
_REPLY_WORDS = frozenset("said smtp; smtp returned responded reply response answer dsn".split())
_FAILED_COLON = frozenset("failed: rejected: refused:".split())
_CODE_NAMERS = frozenset("response reply status smtp http".split())
_CODE_COLON_WORDS = frozenset("said: error: data: reply: response: command: dsn: smtp: code: status: diagnostic-code:".split())
_QUOTED_LOCAL_EMAIL = re.compile(rf"\"(?:[^\"\\\r\n]|\\.){{1,64}}\"(?:@|%40)(?:{_redact._DOMAIN})")
_ENHANCED_TOKEN = re.compile(r"[245]\.\d{1,3}\.\d{1,3}")
_HOST_LABEL = re.compile(r"[A-Za-z][\w-]*(?:\.[\w-]+)*")
_CACHE_MAX = 8192
_token_cache: dict = {}


def _has_digit(text: str) -> bool:
    for c in text:
        if c.isdigit():
            return True
    return False


def _simple(core: str) -> bool:
    """Only word characters, dots, hyphens and plus signs."""
    return core.replace(".", "").replace("-", "").replace("_", "").replace("+", "").isalnum()


_LONG_TOKEN = 512
_NAMED_ENDPOINT = re.compile(r"([(\[]?)[A-Za-z][\w-]*:\d{1,5}([)\],;.:]*)")
# `pid:4021`, `attempt:3`: a counter by its name, not a host and its port
_COUNTER_KEYS = frozenset(
    "pid ppid tid uid gid id jid port line lineno attempt attempts retry retries try tries count errno code status "
    "thread worker shard partition offset seq index pri priority queue job delay timeout ttl exit signal".split()
)
# `Worker(host:mailhog pid:4021)` (Delayed::Job), `node:relay-b`: the name after a host key is a host
_HOST_KEYED = re.compile(r"([(\[]?(?:host|hostname|server|node):)([A-Za-z][\w.-]*)([)\],;]*)", re.IGNORECASE)
_BRACKETED_SIMPLE = re.compile(r"[\w.+\-()\[\],;]*[()\[\]][\w.+\-()\[\],;:]*")
_BRACKET_SPLIT = re.compile(r"([()\[\]]+)")


def _mask_token(token: str) -> str:
    """Context-free masking of one whitespace-delimited token."""
    if token[:1] == "@" and 17 <= len(token) <= 33 and _is_hex(token[1:]):
        return TS  # daemontools / multilog TAI64N label (qmail's logs): @4000000065a1b2c3...
    if len(token) > _LONG_TOKEN:
        # a blob (base64, a minified payload): one value, and no regex gets to rescan it
        return _URL.sub(URL, token) if "://" in token[:32] else VAR
    if "&" in token and "=" in token and "://" not in token and _QUERY.fullmatch(token):
        return _query_string(token)
    if "->" in token:
        # Go's `read tcp 10.0.0.5:51234->[::1]:587:`: two endpoints, each masked as one
        return "->".join(_mask_token(piece) if piece else piece for piece in token.split("->"))
    if ":" in token:
        endpoint = _NAMED_ENDPOINT.fullmatch(token)
        if endpoint is not None:
            name = token[len(endpoint.group(1)) : token.index(":")]
            if name.lower() in _COUNTER_KEYS:
                return endpoint.group(1) + name + ":" + VAR + endpoint.group(2)
            # localhost:2525, mail:25, (relay01:587): a host name and its port, like any host:port
            return endpoint.group(1) + HOST + ":" + VAR + endpoint.group(2)
        keyed = _HOST_KEYED.fullmatch(token)
        if keyed is not None:
            return keyed.group(1) + HOST + keyed.group(3)
    core = token.strip(_EDGE)
    if core.lower() == "localhost" and "'" not in token and '"' not in token:
        return token.replace(core, HOST)
    if core and _simple(core) and "'" not in token and '"' not in token and "`" not in token and "::" not in token:
        # the common shapes: word, number, enhanced code, IP, host, id, with punctuation around
        if "-" in core and len(core) >= 12:
            masked = _K8S_SUFFIX.sub("-" + VAR, core)
            if masked != core:
                start = token.find(core)
                return token[:start] + _mask_word_token(masked) + token[start + len(core) :]
        if core == token:
            return _mask_word_token(core)
        start = token.find(core)
        return token[:start] + _mask_word_token(core, token, start) + token[start + len(core) :]
    if ("(" in token or "[" in token) and _BRACKETED_SIMPLE.fullmatch(token):
        # host[ip], AS(42012), blk_123(...): mask the pieces between the brackets one by one
        return "".join(
            piece if not piece or piece[0] in "()[]" else _mask_token(piece)
            for piece in _BRACKET_SPLIT.split(token)
        )
    t = token
    if "://" in t or "www." in t:
        t = _URL.sub(URL, t)
    if "@" in t or "%40" in t or "0040" in t or "&#" in t:
        t = _EMAIL.sub(EMAIL, t)
    if "arn:" in t:
        t = _ARN.sub(VAR, t)
    if t is token and "=" in t:
        kv = _simple_kv(t)
        if kv is not None:
            return kv
    if "-" in t and len(t) >= 12:
        t = _K8S_SUFFIX.sub("-" + VAR, t)
    if "=" in t:
        t = _KV.sub(_kv, t)
    digit = _has_digit(t)
    if ":::" in t:
        t = t.replace(":::", HOST + ":", 1)  # the unspecified address with a port (netstat's :::25)
    if not digit and ("::" in t or t.count(":") >= 7):
        t = _IPV6.sub(HOST, t)  # ::, ::ffff:abcd, febf:ffff:ffff:ffff:ffff:ffff:ffff:fffa (no decimal digit at all)
    if digit:
        if ":" in t:
            t = _TS_NUM.sub(TS, t)
            if t.count(":") >= 2:
                t = _IPV6.sub(HOST, t)
                t = _MAC.sub(VAR, t)
        elif "-" in t or "/" in t:
            t = _TS_NUM.sub(TS, t)
        if len(t) >= 32:
            t = _UUID.sub(VAR, t)
        if "." in t:
            t = _IPV4.sub(HOST, t)
        if "0x" in t or "0X" in t:
            t = _HEX.sub(VAR, t)
    if len(t) >= 16 and ("/" in t or "+" in t):
        t = _B64_RUN.sub(_base64, t)
    if "/" in t:
        t = _UNIX_PATH.sub(PATH, t)
    if "``" in t:
        t = _TEX_QUOTED.sub(VAR, t)
    if '\\"' in t:
        t = _ESCAPED_QUOTED.sub(_quoted, t)  # `"No such template \\"welcome\\""` inside a JSON string
    if "'" in t or '"' in t or "`" in t:
        t = _QUOTED.sub(_quoted, t)
    if digit or "." in t:
        t = _TOKEN.sub(_token, t)
        if t.count(VAR) > 1:
            t = _VAR_RUNS.sub(VAR, t)
    if len(t) >= 10 and not t.isalpha():
        t = _LETTERS_ID.sub(_letters_id, t)
    return t


def _core(token: str) -> str:
    return token.strip(_EDGE)


def _is_code_here(core: str, tokens, index: int, token: str) -> bool:
    """Is the 3-digit number `core` (token `index`) an SMTP reply or HTTP status code?"""
    nxt = tokens[index + 1] if index + 1 < len(tokens) else ""
    nxt_core = _core(nxt).lower()
    if index and core[0] in "2345":
        prev = tokens[index - 1]
        if prev.lower() in _TRANSCRIPT_MARKS or (prev[-1:] == ">" and "@" in prev and core[0] in "45"):
            # a debugging transcript's server line (swaks' `<** 550`, curl's `< 550`, PHPMailer's `SERVER -> CLIENT:
            # 550`, JavaMail's `RCPT TO:<ann@...>` then `550`): the reply's code, whatever word follows it
            return True
    if nxt_core in _UNITS:
        # `250 messages` is a count; `554 Connection refused`, `550 Message rejected` open a reply
        return index == 0 and nxt[:1].isupper() and core[0] in "45"
    if _ENHANCED_TOKEN.fullmatch(nxt_core) or nxt_core in _HTTP_REASON_ONE:
        return True
    if (
        index == 0 and core[0] in "45" and len(tokens) > 2 and not nxt_core.isalpha()
        and (_has_digit(nxt_core) or "." in nxt_core) and not nxt_core.replace(".", "").isdigit()
        and any(c.isalpha() for c in nxt_core)
    ):
        # `421 mwinf5c22 ME Service refuse`, `554 resimta-h2.comcast.net comcast ...`: a reply that
        # names the server first (RFC 5321 puts the domain there)
        return True
    if index + 2 < len(tokens) and (nxt_core, _core(tokens[index + 2]).lower()) in _HTTP_REASON_TWO:
        return True
    if token[0] == "(" and token[-1] == ",":
        return True
    if index == 0 and core[0] in "45" and len(tokens) > 2 and tokens[2] in ("SMTP", "ESMTP"):
        return True  # `421 mailhog SMTP incoming data timeout`: the server's name, then its protocol
    if index == 0:
        # `550 Unrouteable address`, `554 delivery error`, but not `408 double-hummer alignment exceptions`
        return nxt[:1].isupper() or nxt_core in _SMTP_LEAD_WORDS or (nxt[:1] != "" and nxt[:1] in "<#-")
    prev = tokens[index - 1]
    prev_core = prev.lower().strip(_EDGE + "=#")
    if prev_core == "http" or (
        prev_core in ("error", "status") and index >= 2 and _core(tokens[index - 2]).lower() == "http"
    ):
        return True  # `HTTP 503`, `HTTP Error 429`, `HTTP status 404`: named as an HTTP status
    if not nxt and (prev.lower() in _CODE_COLON_WORDS or prev.lower() in _FAILED_COLON):
        return True  # curl's `RCPT failed: 550`, `said: 550` with nothing after: the reply's code
    if prev_core == "code" and index >= 2 and _core(tokens[index - 2]).lower() in _CODE_NAMERS:
        return True  # SwiftMailer's `Expected response code 250 but got ...`
    named = token[-1] == ":" or nxt[:1].isupper() or (nxt[:1] != "" and nxt[:1] in "<-")
    if not (named or nxt_core.isalpha()):
        return False  # `failed with error 201` at the end, `status: 200 len: 5`: a value
    if prev_core in _REPLY_WORDS:
        return True
    if prev_core in _CODE_WORDS:
        return named  # `HTTP Error 429: Too Many`, not `Error 426 connecting to`
    # `host [ip]: 550 Unrouteable address`, `after end of data: 552 Message size ...`
    return prev[-2:] == "]:" or prev.lower() in _CODE_COLON_WORDS


def _timestamp_span(tokens, index: int) -> int:
    """Number of tokens starting at `index` that form a written-out timestamp (0 if none)."""
    window = " ".join(tokens[index : index + 7])
    match = _TS_TEXT.match(window)
    if match is None:
        return 0
    end = match.end()
    if end < len(window) and window[end] != " ":
        # `... 02:46:35 +0000]`, `... 2024,`: closing punctuation ends the token, a word character does not
        if window[end] not in "]),;." or (end + 1 < len(window) and window[end + 1] != " "):
            return 0
    return window.count(" ", 0, end) + 1


_USER_BEFORE = frozenset(("for", "invalid", "illegal", "unknown", "of"))
_USER_AFTER = frozenset(("from", "[preauth]", "by"))
# words that follow `for user` / `invalid user` in a sentence, never a login name there
# (`mailbox for user is full`)
_NOT_A_LOGIN = frozenset(
    "is was are has had have does did not cannot can't account mailbox quota exceeded over at on in to "
    "the a an and or of with".split()
)
_PAREN_NAME = re.compile(r"\(([A-Za-z_][\w.-]*)\)([,.;:]?)")


def _is_state(word: str) -> bool:
    return len(word) >= 3 and word.replace("_", "").isalpha() and word.isupper()


_HOST_PORT = re.compile(r"(?<![\w\]\[])(?<!<host>)(?<!<\*>)(?:\[<host>\]|<host>):<\*>(?![\w.]|:\S)")
# HELO names and host names that are single words, recognisable only by their place:
# `helo=<localhost>`, `<ip-10-1-2-3>: Helo command rejected`, Exim's `H=(app) [ip]`,
# `host: mail, port: 25`, `lookup mailhog on ...`, `ENOTFOUND smtp`, `connecting to mail on port 25`
# (a closing quote and brackets may follow, when the line sits in a JSON record: `helo=<app>"}`)
_ANGLE_NAME = re.compile(r"([A-Za-z_][\w.-]*=)?<((?:[\w.-]|<\*>|<host>)+|\[<host>\])>([:.,;)]?(?:[\"'][,}\]]*)?)")
_PAREN_HOST = re.compile(r"([A-Za-z_][\w.-]*=)?\((?:[\w.-]|<\*>|<host>|\[<host>\])+\)")
_LABEL = re.compile(r"(?:[A-Za-z]|<\*>)(?:[\w-]|<\*>)*([,;.]?)")
_NAME_BRACKET = re.compile(r"(?:[A-Za-z]|<\*>)(?:[\w.-]|<\*>)*(\[[^\[\]]*\][:,;]?)")
_PORT_WORDS = frozenset(("port", "port:", "Port"))
_HOST_BEFORE = frozenset(
    "host: port: hostname lookup enotfound eai_again etimeout eservfail enodata econnrefused ehlo helo "
    "unknownhostexception: java.net.unknownhostexception:".split()
)
# words that follow `lookup`, `EHLO` ... and are no host (`lookup error for`, `Helo command rejected`)
_NOT_A_HOST = frozenset(
    "error errors failed failure failures timeout table command rejected for of on from to name hostname argument "
    "required not is was the a with and".split()
)
# cheap tests on the joined text decide whether the token walk of _mask_host_names can change anything
_ANGLE_TRIGGER = re.compile(r"<(?!(?:email|url|host|path|ts|\*)>)[\w.\[<-]")
_HOST_WORDS = ("host: ", "port: ", "hostname ", "lookup ", "enotfound ", "eai_again ", "hostexception: ", " on port ",
               "etimeout ", "eservfail ", "enodata ", "econnrefused ", "ehlo ", "helo ", "name matching ",
               "valid for ", "wanted to match ", "getaddrinfo for ")


def _host_names_here(text: str) -> bool:
    if ") [<host>]" in text or ("<" in text and _ANGLE_TRIGGER.search(text) is not None):
        return True
    low = text.lower()
    for word in _HOST_WORDS:
        if word in low:
            return True
    # `host mail[...]`, `host mail [...`, `connect to mail port 25`, unless the name was a host already
    return ("host " in low and ("[" in text or " :" in text) and low.count("host ") != low.count("host <host>")) or (
        " port " in low and "connect" in low and low.count(" to ") != low.count(" to <host>")
    )


_PLACEHOLDER_NAMES = frozenset(("email", "url", "host", "path", "ts", "*"))


def _mask_host_names(out: list) -> None:
    last = len(out) - 1
    for index, word in enumerate(out):
        first = word[:1]
        if (first == "<" and word[:3] != VAR) or "=<" in word:
            if index and out[index - 1] in _ADDRESS_SLOT:
                continue  # `recipient address <john.doe>`: an address, see below
            match = _ANGLE_NAME.fullmatch(word)
            if match is not None:
                name = match.group(2)
                if name not in _PLACEHOLDER_NAMES and not (name.isalpha() and name.isupper()):
                    out[index] = (match.group(1) or "") + HOST + match.group(3)
        elif (first == "(" or "=(" in word) and index < last and out[index + 1].startswith("[<host>]"):
            match = _PAREN_HOST.fullmatch(word)
            if match is not None:
                out[index] = (match.group(1) or "") + "(" + HOST + ")"
        elif index and (first.isalpha() or word[:3] == VAR):
            before = out[index - 1].lower()
            if before in _HOST_BEFORE and word.rstrip(",;.").lower() not in _NOT_A_HOST or (
                # Java's `No subject alternative DNS name matching mail found`
                before == "matching" and index >= 2 and out[index - 2].lower() == "name"
            ) or (
                before == "to" and index + 2 <= last and out[index + 1] == "on" and out[index + 2] == "port"
            ) or (
                # curl's `Failed to connect to mail port 587`, msmtp's `cannot connect to mail, port 25`,
                # `unable to establish SMTP connection to mailhog port 25`
                before == "to" and index < last and out[index + 1] in _PORT_WORDS
                and index >= 2 and out[index - 2].lower().startswith("connect")
            ) or (
                # SwiftMailer's `with host mail [Connection timed out #110]`, `with host mail :stream_socket_client()`
                before == "host" and index < last and out[index + 1][:1] in ("[", ":")
            ) or (
                # PHP's `getaddrinfo for mail failed`
                before == "for" and index >= 2 and out[index - 2].lower() == "getaddrinfo"
            ) or (
                # Go's x509 `certificate is not valid for any names, but wanted to match mail`
                before == "match" and index >= 3 and out[index - 2] == "to" and out[index - 3] == "wanted"
            ) or (
                # Go's x509 `certificate is valid for mail, not smtp`: the names compared are hosts
                index >= 2 and (before == "for" and out[index - 2] == "valid" or before == "not" and out[index - 2] == HOST + ",")
            ):
                match = _LABEL.fullmatch(word)
                if match is not None and (before != "port:" or word[:1].isalpha() or match.group(1) == ","):
                    out[index] = HOST + match.group(1)  # `port: 25` is a port, `port: relay01, 25` a host
            elif before == "host" and word[-1] == "]":
                # Postfix's `host deploybot[10.0.0.1] said:` (also `host mail[/var/run/...]`): name[address]
                match = _NAME_BRACKET.fullmatch(word)
                if match is not None:
                    out[index] = HOST + match.group(1)


_CONTEXT_WORDS = frozenset(("user", "User", "USER", "for", "For", "FOR", "from", "From", "FROM", "part", "template", "Template"))
# `Template welcome does not exist`: the word between a named resource and what is wrong with it is its name
_NAMED_STATE = frozenset("does doesn't not is isn't was wasn't could couldn't cannot can't has hasn't failed".split())
# `The recipient address <john.doe> is not valid`: what an address slot holds is an address
_ADDRESS_SLOT = frozenset(("address", "Address", "recipient", "Recipient", "sender", "Sender", "mailbox", "Mailbox"))
_BRACKETED = re.compile(r"<(?:[^<>\s]|<\*>)+>([:.,;]?)")


# `Mailer [smtp] is not defined`, `Address in mailbox given [deploybot] does not comply`: a single
# token in brackets that a noun introduces, or that what is wrong with it follows, is a name
_BRACKET_NAME = re.compile(r"\[(?:[A-Za-z_][\w.-]*|<\*>)\]([.,:;]?)")
_NAME_NOUNS = frozenset(
    "mailer transport driver template view channel queue connection profile account mailbox domain given named "
    "called".split()
)
# Postfix's `sendmail: fatal: deploybot(1000): No recipient addresses found`: a user name and its uid
_USER_UID = re.compile(r"[A-Za-z_][\w.-]*\(<\*>\):")
_USER_UID_BEFORE = frozenset(("fatal:", "warning:", "error:", "panic:"))


def _mask_named_values(out: list) -> None:
    last = len(out) - 1
    for index in range(1, last + 1):
        word = out[index]
        first = word[:1]
        if first == "[":
            before = out[index - 1]
            if not before.isalpha():
                continue
            match = _BRACKET_NAME.fullmatch(word)
            if match is None:
                continue
            inner = word[1 : word.index("]")]
            if inner == VAR or inner.isupper():
                continue  # `[INFO]`, `[ERROR]`: a log level
            if before.lower() in _NAME_NOUNS or (index < last and out[index + 1].lower() in _NAMED_STATE):
                out[index] = "[" + VAR + "]" + match.group(1)
        elif first.isalpha() and word[-2:] == "):" and out[index - 1] in _USER_UID_BEFORE:
            if _USER_UID.fullmatch(word):
                out[index] = VAR + "(" + VAR + "):"


def _mask_context_values(out: list) -> None:
    """Values that are words, recognisable only by their neighbours:
    login names (`for user root`, `invalid user admin`, `password for root from`),
    a name in parentheses after a masked value (`process <*> (java)`), and
    state transitions (`from RUNNING to FAILED`)."""
    last = len(out) - 1
    for index in range(1, last + 1):
        before = out[index - 1]
        if index < last and out[index + 1] == "Error:" and _ENHANCED_TOKEN.fullmatch(before):
            # Postfix puts its own name between the code and `Error:` (`421 4.7.0 mail Error: too many ...`): a host,
            # whether it is a single word or a dotted name
            word = out[index]
            if word != HOST and _HOST_LABEL.fullmatch(word):
                out[index] = HOST
            continue
        if before in _CONTEXT_WORDS:
            word = out[index]
            if not word[:1].isalnum():
                continue
            low = before.lower()
            if low == "user":
                if index >= 2 and out[index - 2].lower() in _USER_BEFORE and word.lower() not in _NOT_A_LOGIN:
                    out[index] = VAR + (word[-1] if word[-1] in ".,;:" else "")
            elif low == "for":
                if index < last and out[index + 1].lower() in _USER_AFTER:
                    out[index] = VAR
            elif low == "template":
                if index < last and out[index + 1].lower() in _NAMED_STATE and word.lower() not in _NAMED_STATE:
                    out[index] = VAR
            elif low == "part":
                if index >= 2 and out[index - 2].lower() == "local":
                    out[index] = VAR + (word[-1] if word[-1] in ".,;:" else "")  # `Unknown local part deploybot in`
            elif (
                index + 2 <= last and out[index + 1].lower() == "to"
                and _is_state(word) and _is_state(out[index + 2].rstrip(".,;"))
            ):
                tail = out[index + 2]
                out[index] = VAR
                out[index + 2] = VAR + (tail[-1] if tail[-1] in ".,;" else "")
        elif before in _ADDRESS_SLOT:
            word = out[index]
            if word[:1] == "<" and not _PLACEHOLDER.match(word):
                match = _BRACKETED.fullmatch(word)
                if match is not None:
                    out[index] = EMAIL + match.group(1)
        elif before == VAR:
            word = out[index]
            if word[:1] == "(" and word[-1] in "),.;:":
                match = _PAREN_NAME.fullmatch(word)
                if match is not None:
                    out[index] = f"({VAR}){match.group(2)}"


# --- exception reprs of SMTP replies ---------------------------------------------------
# smtplib's and aiosmtplib's exceptions print their args: `(550, b'5.1.1 ...')`,
# `(553, '5.7.1 ...', 'me@x.com')`, `{'a@x.com': (550, b'...'), ...}` (smtplib's
# SMTPRecipientsRefused), `[SMTPRecipientRefused(550, '...', 'a@x.com'), ...]` (aiosmtplib's).
# Each reply is read as the reply it is, `550 5.1.1 ...`; the addresses around it are dropped.

# A str / bytes literal; a quote before a word character is text (`'o'brien@x.org'` from a
# hand-made repr): the closing quote of a real repr is never followed by one
_LITERAL = r"'[^'\\]*(?:(?:\\.|'(?=\w))[^'\\]*)*'|\"[^\"\\]*(?:(?:\\.|\"(?=\w))[^\"\\]*)*\""
_REPLY_HINT = re.compile(r"\((?:-1|[2-5]\d\d), b?['\"]")
_REPLY_REPR = re.compile(
    rf"(?:(?P<dict>\{{)(?:{_LITERAL}): |(?P<list>\[)[A-Za-z_][\w.]*|(?P<more>, )(?:(?:{_LITERAL}): |[A-Za-z_][\w.]*))?"
    rf"(?P<reply>\((?P<code>-1|[2-5]\d\d), (?P<bytes>b?)(?P<text>{_LITERAL})(?:, b?(?:{_LITERAL}))?\))",
    re.S,
)
_LITERAL_ESCAPE = re.compile(r"(?:\\x[0-9a-fA-F]{2})+|\\u[0-9a-fA-F]{4}|\\U[0-9a-fA-F]{8}|\\(.)", re.S)
_ESCAPED_CHARS = {"n": " ", "r": " ", "t": " ", "f": " ", "v": " ", "a": " ", "b": " ", "0": " "}


def _unescape(body: str, raw_bytes: bool) -> str:
    """The text of a str / bytes repr body: `\\n` and `\\r\\n` become spaces, bytes decode as UTF-8."""
    if "\\" not in body:
        return body

    def one(match: re.Match) -> str:
        char = match.group(1)
        if char is not None:
            return _ESCAPED_CHARS.get(char, char)
        escape = match.group()
        if escape[1] == "x":
            data = bytes.fromhex(escape.replace("\\x", ""))
            return data.decode("utf-8", "replace") if raw_bytes else data.decode("latin-1")
        try:
            return chr(int(escape[2:], 16))
        except (ValueError, OverflowError):
            return " "

    return _LITERAL_ESCAPE.sub(one, body)


def _reply_text(match: re.Match, masked: dict) -> str:
    """`550 <masked reply text>` for one reply tuple; `masked` caches text -> pattern per message."""
    body = match.group("text")[1:-1]
    pattern = masked.get(body)
    if pattern is None:
        pattern = _mask_text(_unescape(body, match.group("bytes") == "b"))
        masked[body] = pattern
    code = match.group("code")
    return f"{code} {pattern}" if pattern else code


def _mask_replies(text: str, truncated: bool) -> str:
    """`mask` of text holding reply reprs: each run of replies (a dict or list of them, or one
    tuple) becomes its distinct masked replies in first-seen order joined by `; `, so 1 or 50
    identical refusals read the same; the text around them is masked as usual."""
    pieces = []
    masked: dict = {}
    matches = list(_REPLY_REPR.finditer(text))
    pos = index = 0
    while index < len(matches):
        first = matches[index]
        closer = "}" if first.group("dict") else "]" if first.group("list") else ""
        start = first.start() if first.group("more") is None else first.start("reply")
        replies = [_reply_text(first, masked)]
        end = first.end()
        index += 1
        while index < len(matches) and matches[index].start() == end and matches[index].group("more"):
            reply = _reply_text(matches[index], masked)
            if reply not in replies:
                replies.append(reply)
            end = matches[index].end()
            index += 1
        if closer:
            if text.startswith(closer, end):
                end += 1
            elif truncated and text.startswith(",", end) and closer not in text[end:]:
                end = len(text)  # the cap cut the container in the middle of an entry
        if start > pos and text[start - 1] == "(" and text.startswith(")", end):
            start -= 1  # SMTPRecipientsRefused({...}), SMTPDataError(552, b'...'): the exception's own repr
            end += 1
        before = _mask_text(text[pos:start]) if start > pos else ""
        if before:
            pieces.append(before)
        pieces.append("; ".join(replies))
        pos = end
    after = _mask_text(text[pos:]) if pos < len(text) else ""
    if after:
        pieces.append(after)
    return " ".join(pieces)


def mask(message: str) -> str:
    """The pattern of `message`: variable parts replaced by placeholders, <= 300 chars."""
    return shorten(masked(message))


# a long text keeps its beginning and its end: a bounce body's or a traceback's cause is often in its
# last line, after boilerplate that alone would fill the pattern
_HEAD_CHARS = 150
_ELLIPSIS = " ... "
# what categorize() reads of a longer masked text: its head and its tail, enough for a bounce body's
# boilerplate and its cause, while a 4 KB text of rule words costs at most a few milliseconds once
CATEGORIZE_MAX_CHARS = 1024
_CATEGORIZE_HEAD_CHARS = 256


def shorten(text: str, limit: int = ERROR_PATTERN_MAX_CHARS, head_chars: int = _HEAD_CHARS) -> str:
    """At most `limit` characters of a masked text: all of it, or its head and its tail, each cut at a
    space when one is near. The pattern is shorten(masked(message))."""
    if len(text) <= limit:
        return text
    head = text[:head_chars]
    cut = head.rfind(" ")
    if cut > head_chars - 40:
        head = head[:cut]
    tail = text[len(text) - (limit - len(head) - len(_ELLIPSIS)) :]
    cut = tail.find(" ")
    if 0 <= cut < 40:
        tail = tail[cut + 1 :]
    return head + _ELLIPSIS + tail


def evidence(full: str) -> str:
    """What categorize() reads of a masked text: all of it up to CATEGORIZE_MAX_CHARS, else its head and tail."""
    return shorten(full, CATEGORIZE_MAX_CHARS, _CATEGORIZE_HEAD_CHARS)


def masked(message: str) -> str:
    """The masked text of `message` (at most MAX_INPUT_CHARS of it, head and tail), whatever its length. `mask` shortens it to
    the pattern, `evidence` to what categorize() reads."""
    text = _capped(message)
    frame = ""
    if text[:1] in _FRAME_FIRST:
        match = _SYSLOG_FRAME.match(text) or _SYSLOG_5424.match(text)
        if match is not None:
            frame = _frame(match)
            text = text[match.end() :]
    if "delivery " in text and (": deferral: " in text or ": failure: " in text):
        text = _QMAIL_REPORT.sub(_qmail_report, text)
    if "\\" in text and ('\\"' in text or "\\u00" in text or "\\/" in text):
        text = _JSON_ESCAPES.sub(_json_unescaped, text)
    if '"@' in text:
        text = _AT_KEY.sub('"', text)
    if "]: " in text:
        text = _SYSLOG_INSIDE.sub(_frame, text)
    if '"' in text or "'" in text:
        text = _QUOTED_MONTH_TS.sub(TS, text)
        if "_failure, " in text:
            text = _GEN_SMTP_HOST.sub(r"\1" + HOST + r"\2", text)
    if "ubject:" in text or "UBJECT:" in text:
        text = _SUBJECT_VALUE.sub(rf"\g<field> {VAR}", text)
    if "(" in text and (", '" in text or ", b" in text or ', "' in text) and _REPLY_HINT.search(text):
        pattern = _mask_replies(text, len(text) < len(message))
    else:
        pattern = _mask_text(text)
    if frame:
        pattern = frame + pattern
    if "<email>" in pattern and (" <email>" in pattern or " <<email>" in pattern):
        pattern = _DISPLAY_QUOTED.sub(_display_quoted, pattern)
        pattern = _DISPLAY_IN_QUOTES.sub(rf"\g<open>{VAR} ", pattern)
        pattern = _DISPLAY_AFTER_FIELD.sub(rf"\g<field> {VAR} ", pattern)
        pattern = _DISPLAY_TITLE.sub(_display_title, pattern)
        if ", <*> <" in pattern:
            pattern = _DISPLAY_LAST_FIRST.sub(_display_last_first, pattern)
    if "<ts>" in pattern and " <ts>" in pattern:
        pattern = _WEEKDAY_TS.sub(TS, pattern)
    if "onnected to " in pattern or "onnecting to " in pattern or "esolv" in pattern or "CN = " in pattern or " ESMTP" in pattern:
        pattern = _HOST_BY_PLACE.sub(_host_by_place, pattern)
        pattern = _BANNER_HOST.sub(rf"\1 {HOST} ", pattern)
    return pattern


# a display name before an address is a person's name (`"Ann Lee" <ann@...>`, `To: Ann Lee <ann@...>`, a parser's
# `string ``Ann Lee <ann@...>''`): it leaves with the address. Quoted, inside the quotes that hold the address, or after a
# header or field name
_DISPLAY_QUOTED = re.compile(r"(?P<q>[\"'])[^\"'<>]{1,64}(?P=q) (?=<<?email>)")
_NAME_WORDS = r"(?:[A-Z][a-z][\w'.-]*|<\*>)(?: (?:[A-Z][\w'.-]*|<\*>)){0,3}"
_DISPLAY_IN_QUOTES = re.compile(rf"(?P<open>(?:``|[\"'`(])){_NAME_WORDS} (?=<<?email>)")
_DISPLAY_AFTER_FIELD = re.compile(
    r"(?P<field>(?i:\b(?:to|from|cc|bcc|reply-to|sender|recipient)|\((?:to|cc|bcc|from|reply-to)\)):)"
    r" (?!<email>)(?:[^\W\d_]|[ '.-]|<\*>){1,64}? (?=<<?email>)"
)
# or, anywhere else, one to four capitalised words right before it (`rejected: Ann Lee <ann@...>`, `deliver to Ann Lee
# <ann@...>`), as redaction masks them (processors/redact.py), but not a reply's own words (`Invalid Recipient <...>`)
_DISPLAY_TITLE = re.compile(rf"(?:(?<=[\s(\[{{,;:])|(?<=^)){_NAME_WORDS} (?=<<?email>)")


def _display_quoted(match: re.Match) -> str:
    return f"{match.group('q')}{VAR}{match.group('q')} "


# a directory's `Lee, Ann <ann@...>`: the last name before the comma goes with the first name masked above
_DISPLAY_LAST_FIRST = re.compile(r"(?:(?<=[\s\"'`(\[:])|(?<=^))([A-Z][\w'.-]*), <\*> (?=<<?email>)")


def _display_last_first(match: re.Match) -> str:
    return f"{VAR} " if _redact.name_words([match.group(1)]) else match.group()


def _display_title(match: re.Match) -> str:
    words = match.group().split()
    kept = _redact.name_words(["N" if word == VAR else word for word in words])  # a masked value is part of a name
    if not kept:
        return match.group()
    return " ".join(words[:-kept] + [VAR]) + " "


# a bounce or a queue quotes the message's Subject (`Your message Subject: Ann, your order shipped was not delivered`):
# rendered text, which can hold personalization values, and different in every campaign. It is masked up to the
# next field or the report's own words, or to the end of the line
_SUBJECT_VALUE = re.compile(
    r"(?P<field>(?i:\bsubject:))[ \t]*(?=[^ \t\r\n])(?!<\*>(?:\s|$))[^\n]+?(?=\s*(?:\||$)|\s+(?i:"
    r"(?:sent|date|from|to|cc|bcc|message-id|sender|recipients?|size|status|reason|diagnostic)\s*:"
    r"|(?:this|your) message\b|the following\b|(?:was|has|could) not (?:be(?:en)? )?delivered"
    r"|from \S+\[))",
    re.MULTILINE,
)
# a queue listing's arrival time (`mailq`: `Tue Feb  5 13:54:39`): the weekday belongs to the time stamp
_WEEKDAY_TS = re.compile(r"\b(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) <ts>")
# a one-word host name only its place marks, in what debugging output prints (`Connected to mailhog.`, `Resolved mail as`,
# an openssl subject `CN = smtp`) and in a greeting (`<- 220 mail ESMTP Postfix`): the name varies, the event does not
_HOST_BY_PLACE = re.compile(
    r"(?i)\b((?:connected|connecting) to|resolving host|CN =|resolved(?= \S+ as\b)) "
    r"(?!(?:the|a|an|server|remote|host|peer)\b)([A-Za-z][\w-]*|<\*>)(?=[\s.:,]|$)(?! (?:server|host)\b)"
)
# the greeting as a transcript prints it (`<- 220 mail ESMTP`, `S: 220 relay01 ESMTP`): code and name, whichever of
# them the passes before took for a variable
_BANNER_HOST = re.compile(
    r"(?<=[<>:.*-] )([245]\d\d(?: [245]\.\d{1,3}\.\d{1,3})?|<\*>)(?: (?:<\*>|<host>|[A-Za-z][\w-]*))? (?=ESMTP\b)"
)


def _host_by_place(match: re.Match) -> str:
    return f"{match.group(1)} {HOST}"


# A syslog frame (RFC 3164 `Jan  5 10:22:33 mx1 postfix/smtp[123]: `, or an RFC 3339 time stamp
# as rsyslog writes it): time stamp, host name, program and pid say where an event was logged,
# not what it is. The host is masked whatever its name (mx1, mail, legacy-app), the pid too, and
# the program keeps its family (`postfix-out/smtp`, `postfix/lmtp` -> `postfix`; `sm-mta` -> `sm`).
_SYSLOG_MONTH_STAMP = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) +\d{1,2} \d{2}:\d{2}:\d{2}(?:\.\d{1,9})?"
_SYSLOG_STAMP = (
    rf"(?:{_SYSLOG_MONTH_STAMP}(?: \d{{4}})?|\d{{4}}-\d{{2}}-\d{{2}}T\d{{2}}:\d{{2}}:\d{{2}}(?:[.,]\d{{1,9}})?(?:Z|[+-]\d{{2}}:?\d{{2}})?)"
)
_SYSLOG_HOST_PROGRAM = r" +[\w][\w.:-]*(?:/[\w.-]+)? +(?P<prog>[A-Za-z][\w.()-]*(?:/[\w.()-]+)*)"
_SYSLOG_FRAME = re.compile(rf"(?:<\d{{1,3}}>\d?\s?)?{_SYSLOG_STAMP}{_SYSLOG_HOST_PROGRAM}(?P<pid>\[\d+\])?: +")
# RFC 5424: `<34>1 2024-01-05T10:22:33.123Z mx1 postfix 1234 ID47 - message` (nil values are `-`)
_SYSLOG_5424 = re.compile(
    r"<\d{1,3}>1 +(?:[A-Z][a-z]{2}, \d{1,2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2}(?: [+-]\d{4})?|\S+(?: \d{2}:\d{2}:\d{2}\S*)?)"
    r" +\S+ +(?P<prog>[A-Za-z][\w.()/-]*|-) +(?P<pid>\S+) +\S+ +(?:-|(?:\[[^\]]*\])+) +"
)
_FRAME_FIRST = frozenset("JFMASOND<0123456789")
# A log record as a pipeline ships it (journald JSON, ECS, Loki, a container's json-file log): the same syslog frame
# inside the record (after `"MESSAGE":"`, `"log":"`, `stderr F `), masked like one that opens the text; the record's
# JSON escapes decoded (`\"`, Go's `\u003c` for `<`), and a key named with a leading `@` (`"@timestamp"`, Serilog's
# `"@x"`) read as a key, not as half an address
_SYSLOG_INSIDE = re.compile(rf"(?<=[\s\"'=>\[(,]){_SYSLOG_STAMP}{_SYSLOG_HOST_PROGRAM}(?P<pid>\[\d+\]): +")
_JSON_ESCAPES = re.compile(r'\\(?:u00(?:3[cCeE]|26|27)|["/])')
_JSON_UNESCAPED = {"u003c": "<", "u003C": "<", "u003e": ">", "u003E": ">", "u0026": "&", "u0027": "'", '"': '"', "/": "/"}
# (only where a key can start: `"ann"@example.com":` is a quoted local part and its address, which must stay one)
_AT_KEY = re.compile(r'(?:(?<=[\s{,\[])|^)"@(?=[A-Za-z_][\w.]{0,40}"\s*:)')
# a syslog time stamp right after a quote (`"time"=>"Oct 14 10:00:01"` in a Fluentd record), which the token pass
# cannot see for the quote glued to it
_QUOTED_MONTH_TS = re.compile(rf"(?<=[\"']){_SYSLOG_MONTH_STAMP}(?= |[\"'])")

# gen_smtp's failure tuples (Swoosh, Bamboo): `{:permanent_failure, ~c"mail", ~c"550 ..."}` names the relay it tried
# second, as a charlist, a string or a binary, whether a single word or a dotted name
_GEN_SMTP_HOST = re.compile(
    r"(\b(?:permanent|temporary|network)_failure, (?:~c|<<)?[\"'])[A-Za-z0-9][\w.:-]*([\"'](?:>>)?, )"
)


# qmail-send logs a delivery report with its spaces turned into `_` (`deferral: Connected_to_192.0.2.7_but_greeting_failed./
# Remote_host_said:_421_..._too_many_connections/`): read with its spaces back, so its words and codes are seen. An address
# stays one piece with the words glued before it (`sender_address_ann@example.org` cannot tell where `ann_lee` would start):
# it is masked whole, all but the reply codes in front of it, which name no one
_QMAIL_REPORT = re.compile(r"(\bdelivery \d+: (?:deferral|failure): )(\S+)")
_QMAIL_AT = re.compile(r"@|%40")
_QMAIL_LOCAL = frozenset(string.ascii_letters + string.digits + "_.!#$%&'*+=?^`{|}~-")  # what a local part may hold
_QMAIL_DOMAIN = re.compile(r"\[[^\]/\s]{0,64}\]|[^\W_](?:(?:[^\W_]|[.-]){0,253}[^\W_])?")  # a domain has no `_`
_LEADING_CODES = re.compile(r"_?(?:[245]\d\d|[245]\.\d{1,3}\.\d{1,3})(?=_)")


def _qmail_addresses(report: str):
    """(start, end) of each address in a qmail report, its local part with the words glued before it: one pass."""
    floor = 0
    for at in _QMAIL_AT.finditer(report):
        if at.start() < floor:
            continue
        domain = _QMAIL_DOMAIN.match(report, at.end())
        if domain is None:
            continue
        start = at.start()
        if start > floor and report[start - 1] == '"':
            opening = report.rfind('"', floor, start - 1)
            if opening >= 0 and "/" not in report[opening:start]:
                start = opening
        else:
            while start > floor and (report[start - 1] in _QMAIL_LOCAL or not report[start - 1].isascii()
                                     and report[start - 1].isalnum()):
                start -= 1
        if start == at.start():
            continue
        yield start, domain.end()
        floor = domain.end()


def _qmail_report(match: re.Match) -> str:
    report = match.group(2)
    pieces, end = [], 0
    for start, stop in _qmail_addresses(report) if ("@" in report or "%40" in report) else ():
        pieces.append(report[end:start].replace("_", " "))
        local = report[start:stop]
        codes = _LEADING_CODES.match(local)
        while codes is not None:
            pieces.append(codes.group().replace("_", " "))
            local = local[codes.end() :]
            codes = _LEADING_CODES.match(local)
        pieces.append((" " if local.startswith("_") else "") + local.lstrip("_"))
        end = stop
    pieces.append(report[end:].replace("_", " "))
    return match.group(1) + "".join(pieces)


def _json_unescaped(match: re.Match) -> str:
    return _JSON_UNESCAPED[match.group()[1:]]


def _frame(match: re.Match) -> str:
    program = match.group("prog")
    family = program.split("/", 1)[0]
    if "-" in family and "(" not in family:
        family = family.split("-", 1)[0]
    pid = match.group("pid")
    return f"{TS} {HOST} {family}{'[' + VAR + ']' if pid and pid != '-' else ''}: "


_KEYED_VALUE = re.compile(r"(['\"])([A-Za-z][\w-]{0,31})\1[,;}\]]*")


def _mask_text(text: str, weekdays: bool = True) -> str:
    """`mask` of capped text that holds no exception repr of an SMTP reply; `weekdays`: a token
    that may open an RFC 2822 date with its weekday has not been seen yet."""
    tokens = _split(text)
    if not tokens:
        return ""
    if '"@' in text or '"%40' in text:
        tokens = _QUOTED_LOCAL_EMAIL.sub(EMAIL, " ".join(tokens)).split(" ")
    count = len(tokens)
    out = []
    append = out.append
    cache = _token_cache
    get = cache.get
    ts_words = _TS_WORDS
    keyed = '": ' in text or "': " in text
    index = -1
    while index + 1 < count:
        index += 1
        token = tokens[index]
        if keyed and token[:1] in "\"'" and index and tokens[index - 1][-2:] in ('":', "':"):
            match = _KEYED_VALUE.fullmatch(token)
            if match is not None and _keyed_word(tokens[index - 1] + " ", len(tokens[index - 1]) + 1, match.group(2)):
                append(token)  # `"status": "rejected",`: the value of a categorical key (see _quoted)
                continue
        if weekdays and token[-1] == "," and (token[:3] in ts_words or token[-4:-1] in ts_words or token[-4:-1] == "day"):
            # `Tue, 12 Jul ...`, `(Tue, ...`, `a,Tue, ...`: see _TS_WEEKDAY. Before the token cache, so that a
            # `(Tue,` cached from a text without a date cannot hide the next text's date
            dated = _TS_WEEKDAY.sub(TS, text)
            if dated != text:
                return _mask_text(dated, False)
            weekdays = False
        hit = get(token)
        if hit is not None:  # most tokens: fixed words, with or without punctuation
            append(hit)
            continue
        if token[:3] in ts_words:
            span = _timestamp_span(tokens, index)
            if span:
                trail = tokens[index + span - 1]
                append(TS + (trail[-1] if trail[-1] in ",;)]" else ""))
                index += span - 1
                continue
            append(token)  # a month or weekday name standing alone: context-dependent, not cached
            continue
        if token.isalpha():
            masked = token
            if token == "localhost":
                masked = HOST
            elif len(token) >= 8 and _hex_letters(token):
                masked = VAR
            elif len(token) >= 10 and not (token.islower() or token.isupper() or token.istitle()):
                masked = _letters_id_word(token)
        else:
            core = _core(token)
            if core.isdigit() and "::" not in token:
                if len(core) <= 2 and index + 1 < count and tokens[index + 1][:3] in ts_words:
                    span = _timestamp_span(tokens, index)  # 01 Jan 2024 10:00:00
                    if span:
                        trail = tokens[index + span - 1]
                        append(TS + (trail[-1] if trail[-1] in ",;)]" else ""))
                        index += span - 1
                        continue
                if index > 0 and tokens[index - 1].lower().endswith(("errno", "rfc")):
                    masked = token  # errno values and RFC numbers are names
                elif core in REAL_CODES and _is_code_here(core, tokens, index, token):
                    masked = token
                else:
                    masked = token.replace(core, VAR, 1)
                append(masked)
                continue
            masked = _mask_token(token)
            if (masked is not token and masked != token and _has_digit(token)) or "@" in token or len(token) >= 64:
                append(masked)  # holds a value: caching it would only churn the cache
                continue
        if len(cache) >= _CACHE_MAX:
            cache.clear()
        cache[token] = masked
        append(masked)
    _mask_context_values(out)
    return _finish(" ".join(out))


_FINISH_CACHE_MAX = 2048
_finish_cache: dict = {}
# values that only their place tells: the text of a header a filter logged (Postfix's `reject: header
# Subject: <any words> from host[ip]`), and what PHPMailer could not read as an address
# (`Invalid address: (to): deploybot`)
_LOGGED_HEADER = re.compile(r"(\bheader [A-Za-z][\w-]*: ).+?( from <host>\[)")
_ADDRESS_OF_KIND = re.compile(r"(\baddress: \((?:to|cc|bcc|from|reply-to|sender)\): )(?!<)\S+", re.IGNORECASE)


# Java's InetAddress.toString(), `name/address`: one host whatever the name (`mail/::1`, `relay01/10.0.0.5`)
_NAME_SLASH_ADDRESS = re.compile(r"(?<![\w/<>*-])(?:[A-Za-z][\w.-]*|<\*>|<host>)/<host>(?![\w/])")
# Celery's worker log frame, `Task app.tasks.send_welcome[<id>] retry: ...`: the task's name is where it
# happened, not what happened (as a syslog program name is)
_TASK_FRAME = re.compile(r"(\bTask )[A-Za-z_][\w.:-]*\[(?=<\*>\])")
# a scanner's name for what it found: `552 5.7.1 virus Eicar-Test-Signature detected by Zoho Mail`
_VIRUS_NAME = re.compile(r"(\b[Vv]irus )(?!<)[A-Za-z](?:[\w.:/!-]|<\*>)*( (?:detected|found)\b)")
# ... and after `infected with` (ASSP's `Mail appears infected with <name> -- disinfect`, Haraka's clamd plugin)
_INFECTED_WITH = re.compile(r"(\binfected with )(?!<|an? |the )[A-Za-z](?:[\w.:/!-]|<\*>)*(?=$|[\s\"'),;])")
# the value a library could not use: PHPMailer's `Unknown encoding: <name>`
_UNKNOWN_ENCODING = re.compile(r"(\b[Uu]nknown encoding: )\S+")
# Sendmail's `<local part>... User unknown`: what the brackets hold is the address it talks about
_SENDMAIL_ADDRESS = re.compile(r"<(?!(?:email|url|host|path|ts|\*)>)[^<>\s]+>(?=\.\.\.)")
# hosts that only their place tells: Go's `dial tcp: address mail: missing port in address`, msmtp's
# `cannot locate host mail: Name or service not known`, IIS's `<time> MAILHOST SMTPSVC 4000:` log lines and
# Exchange message tracking's `SERVER\Default Frontend SERVER` connector names
_PLACED_HOST = re.compile(
    r"(\bdial \w+: address |\bcannot locate host )(?!<host>)(?:[\w.-]|<\*>)+(?=: )|(<ts> )(?:[\w.-]|<\*>|<host>)+(?= SMTPSVC\b)"
)
# the server's name right after its reply code (`421 mailhog SMTP incoming data timeout`), a quoted endpoint
# (`host "mail:<port>"`), the names a library quotes: Ruby mail's `can not parse |name|`, Rails's `Missing
# template <path> with`, Laravel's `View [<name>] not found`
_NAMED_PLACES = re.compile(
    r"^([245]\d\d[ -])(?!<host>)(?:[a-z][\w.-]*|<\*>)(?= E?SMTP\b| Service\b)"
    r'|(")(?:[A-Za-z][\w.-]*|<host>):<\*>(?=")'
    r"|(\bcan ?not parse \|)[^|\s]+(?=\|)"
    r"|(\bMissing template )\S+(?= with\b)"
    r"|(\bView \[)[^\]\s]+(?=\] not found)"
)
_NAMED_PLACE_VALUE = {1: HOST, 2: HOST, 3: VAR, 4: VAR, 5: VAR}
_EXCHANGE_CONNECTOR = re.compile(
    r"(?:[\w.-]|<\*>|<host>)+\\((?:Default|Client|Outbound Proxy) (?:Frontend|Proxy)) (?:[\w.-]|<\*>|<host>)+(?=,)"
)


def _named_place(match: re.Match) -> str:
    group = match.lastindex
    return match.group(group) + _NAMED_PLACE_VALUE[group]


def _finish(joined: str) -> str:
    """The passes over the joined tokens: a pure function of that text, cached (variants of one
    error join to the same text once their values are masked)."""
    hit = _finish_cache.get(joined)
    if hit is not None:
        return hit
    text = joined
    if " [" in text or "): " in text:
        out = text.split(" ")
        _mask_named_values(out)
        text = " ".join(out)
    if _host_names_here(text):
        out = text.split(" ")
        _mask_host_names(out)
        text = " ".join(out)
    if "header " in text and " from <host>[" in text:
        text = _LOGGED_HEADER.sub(r"\1" + VAR + r"\2", text)
    if "): " in text and "ddress: (" in text:
        text = _ADDRESS_OF_KIND.sub(r"\1" + VAR, text)
    if "/<host>" in text:
        text = _NAME_SLASH_ADDRESS.sub(HOST, text)  # Java's `mail/10.0.0.5`: a host and its address
    if "Task " in text and "[<*>]" in text:
        text = _TASK_FRAME.sub(r"\1" + VAR + "[", text)
    if "irus " in text:
        text = _VIRUS_NAME.sub(r"\1" + VAR + r"\2", text)
    if "infected with " in text:
        text = _INFECTED_WITH.sub(r"\1" + VAR, text)
    if "nknown encoding: " in text:
        text = _UNKNOWN_ENCODING.sub(r"\1" + VAR, text)
    if ">..." in text:
        text = _SENDMAIL_ADDRESS.sub(EMAIL, text)
    if "address " in text or "locate host " in text or " SMTPSVC" in text:
        text = _PLACED_HOST.sub(lambda m: (m.group(1) or m.group(2)) + HOST, text)
    if "SMTP" in text or "Service" in text or ':<*>"' in text or "parse |" in text or "template " in text or "View [" in text:
        text = _NAMED_PLACES.sub(_named_place, text)
    if "\\" in text and (" Frontend " in text or " Proxy " in text):
        text = _EXCHANGE_CONNECTOR.sub(HOST + r"\\\1 " + HOST, text)
    if "<" in text:
        if ":<*>" in text:
            # [::1]:2525, ::1:2525, 127.0.0.1:2525, localhost:2525: an endpoint reads as its host,
            # so the port masks the same way whichever notation the host came in
            text = _HOST_PORT.sub(HOST, text)
        text = _RUNS.sub(r"\1", text)
    if "@" in text:
        # anything still shaped like local@host (root@localhost, a@b, Temporal's `pid@host@`) is an address too
        text = " ".join(EMAIL if "@" in t.strip("@") else t for t in text.split(" ")).replace(EMAIL + "@", EMAIL)
    if len(joined) <= 1024 and "@" not in joined:  # nothing shaped like an address is kept
        if len(_finish_cache) >= _FINISH_CACHE_MAX:
            _finish_cache.clear()
        _finish_cache[joined] = text
    return text
