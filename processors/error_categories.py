"""Category and retryability of an error, from its pattern and its type.

The pattern (see error_patterns) keeps every fixed word, SMTP reply codes, HTTP
status codes and RFC 3463 enhanced status codes, so the category is a pure
function of (pattern, error type) and can be cached per pattern.

Order of evidence:
1. *Override wording*: phrases that mean one thing whatever code the server put
   in front of them. Servers misuse codes: Gmail answers `450 4.2.1` and
   `550 5.2.1` ("mailbox disabled") for receiving-rate limits and `5.4.5`
   (congestion) for sending quotas; Microsoft puts `5.1.8` (bad sender address)
   on outbound-spam blocks; Postfix greylisting says `4.2.0 Recipient address
   rejected`.
2. The enhanced status code (subject.detail), when it is specific.
3. Wording, most specific first.
4. The generic meaning of an ambiguous enhanced code (`x.7.1` policy, ...).
5. The SMTP reply code or HTTP status code.
6. The Python exception type (`TimeoutError`, `socket.gaierror`, `ssl.SSLError`,
   smtplib / aiosmtplib / requests / httpx / botocore exceptions), given or
   named in the text.
7. Word evidence (error_words): the words' vote, learnt from the labelled tuning
   corpora, when it is clear: for a text steps 1-6 did not recognise, and over
   a specific code, the generic wording of step 3 or a code that alone decided
   (steps 4 and 5) when it is clearer still (the OUTVOTE_ margins).
8. `unknown`.

Retryable: explicit permanent wording ("Retrying will NOT succeed", expired,
returned to sender) says no; a 4xx SMTP class says yes; rate limits say yes;
5xx SMTP says no; HTTP 408/429/5xx yes, other HTTP 4xx no; temporary wording
yes; otherwise by category (timeouts, infrastructure and full mailboxes are
transient).
"""

from __future__ import annotations

import re

from mailscope.processors.error_words import MARGIN, guess

RECIPIENT = "recipient"
MAILBOX_FULL = "mailbox_full"
RATE_LIMIT = "rate_limit"
REPUTATION = "reputation"
SENDER_AUTH = "sender_auth"
AUTHENTICATION = "authentication"
CONTENT = "content"
VALIDATION = "validation"
TIMEOUT = "timeout"
INFRASTRUCTURE = "infrastructure"
UNKNOWN = "unknown"

TRANSIENT = frozenset({TIMEOUT, INFRASTRUCTURE, RATE_LIMIT, MAILBOX_FULL})

# How clear the words' vote (error_words) must be to decide over a category the rules found, as a log-odds
# margin: over a specific enhanced code (step 2), over the generic wording of step 3, and over a code that
# alone decided (steps 4 and 5). An override phrase (step 1) and an exception type (step 6) are never
# outvoted. Chosen from retrospectives on the fourth to seventh waves' first runs (docs/errors-quality.md,
# "Words over a bare code", "Words over generic wording" and "A better vote").
OUTVOTE_WORDING = 3.0
OUTVOTE_SPECIFIC_CODE = 3.0
OUTVOTE_CODE = MARGIN


def _rx(*alternatives: str) -> re.Pattern:
    return re.compile("|".join(f"(?:{a})" for a in alternatives))


# --- 1. override wording (applied to the lower-cased pattern) ---------------------------
# substrings without which an override group cannot match (the newer groups, given as a third element): a cheap skip
_CONTENT_HINTS = ("spam url", "url in", "urls in", "attachment", "file", "banned: ", "header", "content", "embedded", "found in",
                  "detected in", "message size", "message length")
_CLIENT_CONFIG_HINTS = ("tls", "ssl", "encrypt", "secure", "recipients defined", "eenvelope", "no recipient", "plain", "no sender", "no from",
                        "any recipients", "no_recipients", "without")
_OVERRIDES = (
    (CONTENT, _rx(  # what the message carries, whatever the code or a word like `spam` or `banned` says
        r"spam url", r"\burls? in (?:the )?(?:message )?(?:content|body)",
        r"(?:banned|blocked|prohibited|forbidden|disallowed|blacklisted|unsafe|dangerous) (?:file|attachment)",
        r"attachment type", r"file (?:extension|type) (?:\S+ )?(?:is )?(?:not (?:allowed|permitted)|blocked|banned|detected)",
        r"(?:attachment|file)(?: type| extension)? (?:is )?(?:forbidden|not allowed|blocked|banned|prohibited)",
        # amavis's `BANNED: <name>`, Postfix's header_checks, a content filter's own verdict
        r"\bbanned: ", r"\bheader[_ ]checks?\b", r"\bcontent (?:reject(?:ed)?|filter(?:ed)?|violation)\b",
        r"spam (?:is )?(?:embedded|found|detected) in (?:the |your )?(?:e-?mail|message|body|content)",
        r"message (?:size|length) (?:is )?(?:more than|greater than|exceeds|over)\b",
    )),
    (CONTENT, _rx(  # a spam filter's verdict on the message itself (SpamAssassin's score, `classified as spam`): what to
        # review is the message, as the report's advice for content says; a block of the sender for spam (its IP, a
        # spam source, complaints, block lists) stays reputation (docs/errors-quality.md, "Spam verdicts")
        r"(?:message|e-?mail|mail|content)\b[^.;]{0,30}\b(?:classified|detected|identified|judged|considered|flagged|rejected|blocked|refused)(?: as| for being)? (?:likely )?spam\b",
        r"(?:looks|appears|seems) (?:like|to be) spam", r"blocked by spamassassin", r"spamassassin score", r"\bspam score\b",
        r"probability of spam", r"(?:suspected|suspicion of) spam\b(?! ?(?:ip|source|sender|host|server|network|domain|relay)s?\b)", r"^(?:<\*>-?)?(?:[45]\d\d[- ])?(?:[45]\.\d+\.\d+ )?spam message rejected",
        r"\bspam message rejected", r"rejected as (?:bulk ?/ ?)?spam\b", r"\bspam points\b", r"\bgtube\b", r"anti-?spam engine", r"spam detected\b",
        # what the message holds, by a filter's words: `spam content detected`, `may contain the spam contents`,
        # `refused by <name> antispam (score 9)`
        r"\bspam (?:contents?|patterns?|characteristics|features|signatures?)\b",
        r"(?:message|e-?mail|mail)\b[^.;]{0,30}\bcontains? (?:the )?spam\b", r"anti-?spam\b[^.;]{0,20}\(score\b",
    ), ("spam", "gtube")),
    (CONTENT, _rx(  # a filter's verdict on what the message carries: phishing, fraud, a threat, a data-loss rule
        r"(?:detected|identified|classified|flagged|judged|rejected) as (?:an? )?(?:phishing|fraud|malware|malicious)",
        r"(?:possible |suspected |likely )?(?:phishing|fraud) attempt", r"business e-?mail compromise",
        r"data loss prevention", r"\bdlp (?:rule|policy|violation)", r"url shorteners?\b",
        r"\bthreats? (?:found|detected)", r"harmful (?:e-?mail|message|content|attachment)",
        r"\bmalicious (?:links?|urls?|attachments?|content|files?|payload)\b",
    ), ("phishing", "fraud", "malware", "malicious", "compromise", "data loss", "dlp", "shortener", "threat", "harmful")),
    (RECIPIENT, _rx(
        r"marked as inactive", r"inactive (?:addresses|recipients?)", r"suppress(?:ed|ion) (?:list|sending)",
        r"suppression for (?:user|recipient|address)",
        r"has suppressed", r"previously bounced", r"^bounced address", r"history of bouncing",
        r"archived (?:recipient|mailbox|account)", r"(?:recipient|mailbox|account) (?:is |has been )?archived",
    )),
    (RECIPIENT, _rx(
        # Exchange's resolver: the recipient's domain does not exist, whatever the generic 4.4.0 around it says
        r"\bdns\.nonexistentdomain\b",
        # Postfix at DATA after every RCPT was refused: the recipients decided, not the client's request
        r"\bno valid recipients\b",
        # a server's x.1.1 (bad destination mailbox) that words it as an invalid address: the mailbox, not the syntax
        r"\b[45]\.1\.1\b[^;]{0,40}\bnot a valid (?:e-?mail )?address\b",
        # Yahoo's `554 delivery error: dd <reason>`: `dd`, the mailbox it does not deliver to
        r"\bdelivery error: dd\b",
    ), ("nonexistentdomain", "no valid recipients", "not a valid", "delivery error: dd")),
    (RECIPIENT, _rx(r"recipients? (?:address )?(?:is ?n[o']t|is not|are not|aren't) valid"), ("valid",)),
    (RECIPIENT, _rx(  # a marketing platform's own list says the contact may not be mailed: unsubscribed, suppressed,
        # bounced before, on the account's block list, without consent (Klaviyo, Brevo, Omnisend, listmonk, GetResponse)
        r"\b(?:contact|subscriber|member|person|profile|recipient)\b[^.;]{0,50}\b(?:is |was |has been )?"
        r"(?:suppressed|unsubscribed|non-?subscribed|blocklisted|blacklisted|cleaned)\b",
        r"\b(?:contact|subscriber|member)\b[^.;]{0,40}\b(?:has )?(?:e-?mail )?status (?:bounced|unsubscribed|cleaned|suppressed)",
        r"\bon (?:your|the) account(?:'s)? (?:blacklist|blocklist|block list|suppression list)",
        r"\bno marketing consent\b", r"\bin a compliance state\b", r"\bunsubscribed via\b",
        r"<email> is (?:suppressed|unsubscribed|blocklisted)\b",
    ), ("suppressed", "unsubscribed", "subscribed", "blocklisted", "blacklisted", "cleaned", "status", "account",
        "consent", "compliance")),
    (RECIPIENT, _rx(  # a list server that takes posts only from its members or its moderators (Sympa, Mailman)
        r"not allowed to (?:send|post) to this list", r"\b(?:unknown|no such) list\b", r"\bemergency moderation\b",
        r"\(send\.closed\)", r"\bposting to (?:this|the) list is (?:restricted|closed|not allowed)",
    ), ("list", "moderation", "send.closed")),
    (RECIPIENT, _rx(  # sending services' suppression: `Not delivering to unsubscribed address`
        r"not delivering to(?![^.;]*(?:spam|complain))", r"unsubscribed (?:address|recipient|user|contact)",
        r"(?:address|recipient)e?s? (?:is |was |has been )?suppressed", r"suppressed (?:address|recipient)",
    ), ("not delivering", "unsubscribed", "suppressed")),
    (SENDER_AUTH, _rx(
        # a text that names SPF, DKIM or DMARC, or an authentication level, is about the sender's
        # authentication even under a 421 rate-limit or an x.7.0 `other security` code
        r"\bspf\b[^.;]{0,30}(?:check|fail|validation|record|violation|softfail|permerror|temperror|did not pass|"
        r"polic|authori[sz]|align|perm(?:anent)? ?error|temp(?:orary)? ?error|=(?!pass))", r"authenticat[^.;]{0,30}\bspf\b", r"authentication level",
        r"sender policy framework", r"\bdkim\b", r"\bno signature data\b", r"\bdmarc\b", r"domainkeys", r"\bsender ?id \(pra\)", r"\bsender ?id (?:check )?fail",
        # ... but `Unauthenticated senders not allowed` (SendGrid's SMTP relay) asks for SMTP AUTH
        r"unauthenticated (?:e-?mail|mail|messages?|senders?)\b(?! (?:are )?not (?:allowed|permitted|accepted))",
        r"sender is unauthenticated",
        r"because it is unauthenticated", r"authenticate with either spf", r"\bptr record",
        r"reverse (?:dns|hostname|lookup|host name)", r"cannot find your (?:reverse )?hostname", r"\bopendkim\b", r"\bopendmarc\b[^;]{0,80}\b(?:fail|reject)", r"\barc (?:validation|seal)",
        r"not (?:designated|permitted|allowed) to send mail from", r"is not allowed to send mail from",
        # a sender the receiver believes forged, a platform the domain's owner has not authorised
        r"\b(?:fake|forged|spoofed) (?:sender|from\b)", r"\bpossible spoofing\b", r"message lacks (?:the )?required authentication", r"(?:not|n't) authori[sz]ed \S+ to send [^.;]{0,20}on (?:your|its|their) behalf",
    )),
    (VALIDATION, _rx(  # the client's own configuration: it must use TLS (not a credentials problem)
        r"must issue (?:a )?starttls(?: command)?(?![^;]*authenticat)", r"\b(?:start)?tls (?:is )?required\b(?![^;)]*(?:not offered|refused|not available|local problem))",
        r"unencrypted connection", r"encryption (?:is )?required", r"no recipients defined", r"\beenvelope\b",
        r"(?:auth\w*|login|credentials|password)\b[^.;]{0,20} over (?:an? )?(?:insecure|unencrypted|plain-?text|cleartext) (?:channel|connection)",
        r"no recipients? (?:address(?:es)? )?(?:found|specified|given|defined|set|provided)",
        r"^no recipient address(?:es)?\.?$", r"\bno (?:sender|from)(?: address)? (?:has been |was |is )?(?:specified|set|given|provided|defined)",
        r"(?:does ?n[o']t|does not) have any recipients", r"\bno_recipients\b", r"without (?:any )?(?:computed )?recipients\b",
        r"missing[_ ]requirement[^;]{0,30}\btls\b",
        r"requires? (?:a )?(?:secure|encrypted|tls) (?:connection|channel)(?! or the client was not authenticated)",
        r"already (?:using|negotiated|started|running|established) (?:tls|ssl|starttls)", r"(?:tls|ssl) (?:is )?already",
        # the mail did not travel over TLS, or the other end must offer it (Gmail 4.7.29, Microsoft 4.7.321)
        r"(?:not|n't|without)(?: been| being)? (?:sent )?(?:over|using|via|through) (?:a |an )?(?:tls|ssl|encrypted)",
        r"must (?:support|use|offer) (?:tls|ssl|starttls|encryption)", r"starttls[- ]not[- ]supported",
        # the other end does not offer the TLS the client is set to demand (smtplib, msmtp, curl's use_ssl)
        r"starttls (?:extension |command )?(?:is )?(?:not supported|unavailable|not available|not offered|not advertised)",
        r"(?:does ?n[o']t|does not|do not|don't) (?:support|offer) (?:the )?(?:tls|ssl|starttls|secure connections?)\b",
        r"requested ssl level", r"reserved for plain-?text",
        r"secure connection (?:is )?requi",  # mailx's `A secure connection is requiered(such as ssl)`
        # the client refuses to go on without TLS it was told to demand (Dart's mailer, denomailer, SwiftSMTP, an MTA's
        # TLS policy)
        r"\b(?:start)?tls was required\b", r"connection is not secure", r"\bnon[- ]secure connection",
        # a policy demands encryption the sender cannot apply (Google Workspace's S/MIME rule)
        r"requir(?:ed|es|ing) encryption", r"unable to encrypt",
        # settings that contradict each other or are missing (`EMAIL_USE_TLS/EMAIL_USE_SSL are mutually exclusive`)
        r"mutually exclusive",
    ), _CLIENT_CONFIG_HINTS + ("exclusive",)),
    (VALIDATION, _rx(  # the client speaks TLS to a plain-text port or plain text to a TLS one (implicit TLS on 587, STARTTLS
        # on 465), or the two ends share no TLS version: the client's TLS mode, port or version settings, not the network.
        # A server's own log of a peer's TLS trouble (Postfix's `TLS library problem`) is not this client's setting.
        r"^(?!.*tls library problem).*(?:wrong[ _]version[ _]number|unrecogni[sz]ed ssl message|first record does not look like a tls"
        r"|(?:ssl routines[^;]{0,40}|\[ssl: \w+\] )(?:unknown protocol|http request|packet length too long)|state=[^;]{0,60}unknown protocol"
        r"|unexpected packet format|corrupt message of type invalidcontenttype|oversized record received"
        r"|\[ssl\] record layer failure"  # OpenSSL 3.2 and later, for what 3.0 calls a wrong version number
        r"|unsupported[ _]protocol\b|protocol version (?:not supported|\S+ not accepted)|alert[ _]protocol[ _]version"
        r"|unsupported protocol version)",
    ), ("version", "unrecogni", "first record", "unknown protocol", "http request", "packet length", "packet format",
        "invalidcontenttype", "oversized record", "unsupported", "alert", "record layer")),
    (VALIDATION, _rx(  # the account or the service: no SMTP on this plan or service, another port to use, a sender it may
        # not use, a request with no recipient at all, a template that is not there
        r"(?:free|trial|basic) accounts? (?:cannot|can't|can ?not|may not|are not allowed to) send",
        r"sending (?:via|through|over) smtp is disabled", r"(?:does not|doesn't) support (?:imap/)?smtp",
        r"refused: use port", r"cannot be used as the sender", r"at least (?:a single|one) recipient",
        r"template\b[^.;]{0,40}\b(?:was not found|not found|does not exist)",
    ), ("accounts", "smtp is disabled", "support", "use port", "as the sender", "recipient", "template")),
    (VALIDATION, _rx(  # the sender's own provider: a From its login may not use, mail that must leave through its own server
        r"sender (?:address )?(?:is )?not authori[sz]ed for this (?:mailbox|account|user|login)",
        r"customers must (?:send|relay) (?:mail )?(?:via|through|using)",
        r"must (?:send|relay) (?:mail )?(?:via|through|using) (?:the |our |its |their )?[^.;]{0,30}\b(?:outgoing|outbound) (?:mail |smtp )?server",
    ), ("not authori", "must send", "must relay")),
    (VALIDATION, _rx(  # the client and server share no authentication mechanism: the client's settings, not its credentials
        r"(?:no|(?:can ?not|could not|unable to) (?:find|use) an?) (?:suitable|compatible|usable|supported|common|secure) "
        r"(?:sasl |smtp )?(?:authentication|auth|sasl|login) (?:method|mechanism)",
        r"(?:does ?n[o']t|does not) (?:support|advertise|offer) (?:any )?(?:supported )?(?:the )?(?:authentication|auth) (?:methods?|mechanisms?)",
        r"(?:authentication|auth) (?:method|mechanism) \S+ (?:is )?not supported", r"find an authenticator supported",
        r"(?:does ?n[o']t|does not) support (?:the )?\S+ (?:authentication|auth) (?:method|mechanism)",
        r"(?:authentication|authori[sz]ation|auth) (?:methods?|mechanisms?) could not be found",
    ), ("method", "mechanism", "authenticator")),
    (VALIDATION, _rx(  # a local sending tool (msmtp, nullmailer, dma, Postfix) that cannot read or lacks its own setup
        r"can ?not (?:open|read|load|parse) (?:the )?(?:config(?:uration)?|auth(?:entication)?|password|credentials?|account)"
        r"(?: file)?\b",
        r"support is not compiled in", r"\bnot compiled in\b", r"no remote hosts? (?:listed|configured|defined|specified)",
        r"\baccount \S+ not found in <path>", r"(?:can ?not|could not|unable to) set [^.;]{0,20}\btrust file",
        r"failed to bind (?:the )?source address",
    ), ("open", "read", "load", "parse", "compiled", "remote host", "not found in", "trust file", "source address")),
    (VALIDATION, _rx(  # the client's settings: a required setting is missing, a setting is misconfigured
        r"(?:missing|required|undefined|unset) (?:required )?(?:setting|config(?:uration)? (?:key|value|option)|option)\b",
        r"improperly ?configured", r"\bsettings?\b[^.;]{0,20}(?:is|are) (?:missing|required|not set)",
        # a file the library was told to attach, a local sendmail binary it was told to run
        r"could not (?:access|open|read) (?:the )?file", r"process could not be started", r"could not execute\b",
        r"unsupported (?:mail )?(?:transport|mailer|driver|scheme)\b", r"\bno provider for\b",
        r"key values? mismatch", r"(?:private )?key does not match (?:the )?certificate",
        # our own organisation's block list (Microsoft's Tenant Allow/Block List), not the recipient's or a reputation
        r"blocked by your (?:organi[sz]ation|administrator|admin)\b", r"tenant allow ?/? ?block list",
        # HELO / EHLO names the server will not take are the client's setting, even after `access denied`
        r"invalid (?:helo|ehlo)(?: name| hostname| host name| argument)?\b",
        r"null (?:sender|reverse-path) (?:is )?not (?:allowed|permitted|accepted)",
    ), ("setting", "config", "option", "file", "process", "blocked by your", "block list", "helo", "ehlo", "null",
        "execute", "unsupported", "provider", "mismatch", "does not match")),
    (VALIDATION, _rx(  # our own sender address is unknown there (sender address verification)
        r"sender address rejected: (?:user unknown|domain not found|undeliverable|unverified|not found)",
    ), ("sender address rejected",)),
    (VALIDATION, _rx(  # an address that does not parse: RFC 5322 addr-spec, parsers of address lists
        r"\baddr-spec\b", r"(?:can ?not|cannot|could not|unable to|failed to) parse[^.;]{0,20}\baddress",
        r"address ?list can ?not parse", r"address[^.;]{0,40}(?:does not|doesn't|do not) comply with rfc",
        # a library's own syntax check that names the field (PHPMailer's `Invalid address: (to): x`)
        r"invalid address: \((?:to|cc|bcc|from|reply-to|sender)\)",
        # Django's `Invalid address; only x could be parsed from "..."`
        r"could be parsed from",
    ), ("addr-spec", "parse", "comply", "invalid address: (")),
    (VALIDATION, _rx(  # the client breaks the protocol: not a rate limit (`too many`), not the recipient
        r"improper (?:use of )?(?:smtp )?(?:command )?pipelining", r"improper use of smtp",
        r"too many (?:unrecognized|unrecognised|unknown|invalid|bad|failed) commands", r"protocol violation",
        r"non-smtp command", r"\bbare newline\b", r"command (?:count|length) limit", r"synchroni[sz]ation error",
        r"too many errors after",
    ), ("improper", "commands", "protocol violation", "non-smtp", "bare newline", "command", "synchroni", "errors after")),
    (AUTHENTICATION, _rx(
        r"relay(?:ing)? (?:access )?(?:denied|not permitted|not allowed|prohibited)", r"unable to relay",
        r"not permitted to relay", r"relay not permitted", r"we do not relay", r"account is locked", r"locked out",
        r"sender address rejected: not logged in", r"must issue an? auth(?: command)?\b", r"relay(?:ing)? attempt",
        r"\bmust (?:first )?authenticate(?: first)?\b(?! (?:with|using) (?:spf|dkim))",
        r"requires? authentication (?:when|before|to send)",
        r"must issue a starttls[^;]*\bauthenticat",
        # wrong credentials, tried often (`535 5.7.0 Too many bad auth attempts`): not a rate limit
        r"too many (?:bad|failed|invalid|unsuccessful|wrong) (?:auth|authentication|login|logon|password)",
    )),
    (AUTHENTICATION, _rx(r"rcpthosts"), ("rcpthosts",)),  # qmail: `that domain isn't in my list of allowed rcpthosts`
    (AUTHENTICATION, _rx(  # OAuth 2 token errors (XOAUTH2 senders) and NetEase's `User has no permission`
        r"\binvalid_(?:grant|client|token)\b", r"\bunauthorized_client\b", r"\buser has no permission\b",
    ), ("invalid_", "unauthorized_client", "no permission")),
    (RECIPIENT, _rx(  # the recipient (a group, an organisation) restricts who may send to it
        r"delivery restriction", r"delivery not authori[sz]ed",
        r"not authenticated for (?:the )?(?:group|organi[sz]ation|distribution list|mailbox|public folder|mail user)",
        r"sendernotauthenticatedfor", r"allowed-senders", r"not in (?:the )?(?:allowed|accepted) senders",
        r"(?:only accepts?|accepts? only) (?:e-?mail|mail|messages) from (?:certain|specific|approved|authori[sz]ed) senders",
        r"not listed in (?:the )?(?:domino |public |global )?(?:directory|address book)",
        # a group, a list, a subscriber or an alias owner that will not take this sender's mail: moderators, members-only
        # groups, a sender the recipient blocked, an alias switched off, a no-reply address
        r"(?:rejected|declined) by (?:a |the )?moderator", r"moderator[^.;]{0,40}(?:rejected|declined)",
        r"(?:only accepts?|accepts? only) (?:e-?mail |mail |messages |posts )?from (?:its )?members",
        r"posts? from (?:people|users|senders) outside",
        r"not authori[sz]ed to (?:send|post) (?:mail |e-?mail |messages )?to (?:the |this )?(?:<\*> |\S+ )?(?:list|group)",
        r"(?:recipient|subscriber|user|addressee) has blocked (?:the |your |all )?(?:sender|messages|text messages|e-?mails?|you)",
        r"\bno-?reply address", r"\b(?:alias|mask|relay address|forwarding address)\b[^.;]{0,40}\b(?:disabled|paused|deactivated|set to block)",
        r"forwarding to this destination is paused", r"forwarding addresses? (?:which|that) (?:are|is) invalid",
        r"no (?:known )?account with this (?:e-?mail )?address",
        # a bounce to a forwarder's rewritten (SRS) address that cannot be turned back into the original sender
        r"\bsrs_reverse\b", r"invalid srs (?:recipient )?address", r"\bsrs (?:address|hash|time ?stamp)",
    ), ("restriction", "sendernotauthenticatedfor", "authenticated for", "allowed", "accepted senders", "not authori",
        "senders", "not listed in", "moderator", "members", "outside", "has blocked", "reply address", "alias", "mask",
        "relay address", "forwarding", "known account", "srs")),
    (REPUTATION, _rx(  # a receiver that will not take our mail, whatever code it uses (AOL's 521 5.2.1)
        r"will not accept (?:delivery of )?(?:this|your) (?:message|mail|e-?mail)",
        r"(?:will not|won't|does not|doesn't) accept (?:mail|messages|e-?mail) from (?:you|your|this)",
    ), ("accept",)),
    (CONTENT, _rx(  # the message's form: RFC 5322 compliance, a From address it must carry
        r"rfc ?5322[^.;]{0,40}complian", r"(?:include|have|contain|carry) a valid from\b", r"\bblank from\b",
    ), ("complian", "valid from", "blank from")),
    (REPUTATION, _rx(
        r"unsolicited", r"bad outbound sender", r"blocked senders?\b", r"sender (?:address |ip )?blocked", r"outbound spam", r"banned sender", r"gr[ae]ylist",
        r"deferred due to (?:unexpected volume or )?(?:excessive )?user complaints", r"\b(?:spam|user|abuse) complaints?\b",
        r"sender address rejected: access denied", r"\bpregreet\b",
        r"(?:bad|poor|low|negative) (?:sender |ip |domain |sending )?reputation", r"reputation (?:is )?(?:too low|bad|poor)",
        r"^[45]\d\d [^;]{0,80}connection (?:refused|rejected|denied) (?:from|for) <host>",
        r"\baup#",  # Charter / Spectrum: `AUP#In-1310`, a block under their acceptable use policy
        r"not yet authori[sz]ed to deliver",  # greylistd: greylisting without the word
        r"(?:you are|you're|your (?:ip|host|server) is) not (?:allowed|permitted) to connect",  # our address refused
        r"\bspam (?:ip|source|sender|host)s?\b", r"\b(?:rbl|dnsbl|dbl|surbl|uribl)s\b", r"failed an? (?:dbl|rbl|dnsbl) ",
    )),
    (REPUTATION, _rx(  # dynamic / residential address space, outgoing mail blocked, unusual activity
        r"dynamic(?:ally)?[- ](?:assigned )?ip", r"dynamic ip", r"residential (?:ip|space|address)",
        r"(?:outgoing|outbound)(?: e-?mail| mail| messages?)? (?:is |has been )?(?:blocked|disabled|suspended|restricted)",
        r"(?:unusual|suspicious|abnormal) (?:sending )?activity",
        r"sending (?:for|from|of) (?:this|your) account (?:is |has been )?(?:disabled|blocked|suspended|paused)",
        # a sending service paused the account (SES `Sending is paused for this account`): not a rate limit
        r"sending (?:is |has been )?(?:paused|suspended|disabled)\b",
    ), ("dynamic", "residential", "outgoing", "outbound", "unusual", "suspicious", "abnormal", "sending")),
    (RATE_LIMIT, _rx(
        r"receiving mail (?:at|too) (?:a )?(?:rate|quickly|fast)", r"receiving mail too quickly",
        r"\brate[ -]?limit", r"unusual rate", r"rate (?:of [a-z ]+ )?exceeded", r"throttl",
        r"(?:sending|send|daily|hourly|submission|message|messaging|outbound|recipient|api|request) (?:user )?(?:sending )?(?:quota|limit)s?\b(?! size)",
        r"submissionquota", r"threshold (?:exceeded|reached)", r"too many (?:open |simultaneous |parallel )?(?:messages|mails?|e-?mails|connections|requests|login|sessions|"
        r"concurrent|simultaneous|recipients|commands|auth)",
        r"max(?:imum)? (?:number of )?(?:e-?mails|messages?|mails|connections|recipients)\b[^.;]{0,20}\b(?:per|exceeded)",
        r"exceeded the max(?:imum)?", r"max(?:imum)? (?:sending|message|send) rate", r"out of credits",
        r"credits exceeded", r"messaging limits", r"please slow down", r"retry after",
        r"too much (?:mail|e-?mail|traffic|messages)", r"relay limit exceeded", r"excessive (?:volume|amount|number)(?!s? of data)",
        r"limit on the number of", r"number of (?:allowed |permitted )?(?:outgoing |sent )?(?:messages|e-?mails|recipients) (?:was |has been |is )?exceeded",
    )),
    (RATE_LIMIT, _rx(r"frequency (?:limit|exceeded|too high)", r"frequency of [^.;]{0,30}(?:is |was )?limited"), ("frequency",)),
    # a receiver that defers for the volume it gets from the sender, an API call over its quota (App Engine's mail.Send)
    (RATE_LIMIT, _rx(r"deferred due to (?:high |excessive )?volume\b", r"more quota than is available"), ("volume", "quota")),
    (RATE_LIMIT, _rx(r"(?:thread|session|concurrency|submission|sending) limits? (?:exceeded|reached)"), ("limit",)),
    (MAILBOX_FULL, _rx(
        r"mailbox (?:is )?full", r"mailbox (?:size )?(?:quota|limit) exceeded", r"\bover ?quota",
        r"out of storage", r"inbox is full", r"full mailbox", r"mailbox has exceeded", r"quotaexceededexception",
        r"exceeded storage allocation", r"user has exceeded (?:their|his|her) quota",
        r"quota exceeded while writing", r"maildir over quota",
    )),
    (MAILBOX_FULL, _rx(r"(?:exhausted|used up|run out of)[^.;]{0,30}\b(?:storage|disk space|mailbox space)"),
     ("exhausted", "used up", "run out of")),
    (INFRASTRUCTURE, _rx(  # certificate trouble, over the x.7.5 `cryptographic failure` code (Postfix dsn=4.7.5)
        r"certificate (?:is )?(?:not verified|not trusted|untrusted|verif(?:y|ication) failed|has expired|expired|revoked)",
        r"self[- ]signed certificate", r"unable to get local issuer", r"unknown (?:issuer|authority|ca)\b",
        r"\bdane\b", r"\btlsa\b",
    ), ("certificate", "issuer", "authority", "unknown ca", "dane", "tlsa")),
    (INFRASTRUCTURE, _rx(  # .NET's words for a failed TLS handshake (not SMTP AUTH), a connect the local OS
        # refused (SELinux), Haraka's `Tried all MXs`
        r"authentication failed because the remote party", r"a call to sspi failed",
        r"(?:failed to|unable to|could not|couldn't) connect[^.;]{0,40}: permission denied", r"tried all mxs?\b",
    ), ("remote party", "sspi", "permission denied", "tried all")),
    (INFRASTRUCTURE, _rx(  # a service the MTA relies on failed: its scanner, its spam filter, its authentication server;
        # not the message's content nor the sender's login
        r"(?:virus |malware |spam |content )?scanner (?:error|failure|failed|unavailable|not available|not responding)",
        r"(?:virus|malware|spam|content) scanning (?:service |engine )?(?:error|failure|failed|unavailable|not available|not responding)",
        r"(?:clamd?|spamd|spamassassin|amavisd?|rspamd|milter|antivirus)\b[^;]{0,60}(?:unable to connect|could not connect|"
        r"connection refused|servers? failed|not responding|unavailable)",
        r"all \w+ servers failed", r"(?:connection lost to|lost connection to|unable to connect to|cannot connect to) (?:the )?auth(?:entication)? server",
    ), ("scanner", "scanning", "clam", "spam", "amavis", "milter", "antivirus", "servers failed", "auth")),
    (INFRASTRUCTURE, _rx(  # Gmail's `421 4.7.0 Try again later, closing connection`: three corpora labelled it, and
        # infrastructure is the answer all three accept (the others: reputation in one, rate limit in another)
        r"try again later,? closing connection",
    ), ("closing connection",)),
    (INFRASTRUCTURE, _rx(  # Postfix's resolver said TRY_AGAIN (`Host not found, try again`): a DNS failure of the moment,
        # not a domain that does not exist; or the name server answered nonsense
        r"host not found, try again", r"malformed name server reply",
    ), ("try again", "malformed")),
    (AUTHENTICATION, _rx(  # an MTA's SASL client could not log in to its relay (Postfix: `SASL authentication failed; ...`),
        # whatever the server's words after it
        r"\bsasl authentication failed\b",
    ), ("sasl",)),
    (VALIDATION, _rx(  # the client tried a plain-text login the server only takes over TLS (Dovecot's `disallowed plaintext auth`)
        r"disallowed plain-?text auth", r"plain-?text auth(?:entication)? (?:is )?(?:disallowed|not allowed|disabled)",
    ), ("plaintext", "plain-text")),
    (CONTENT, _rx(  # the message is bigger than the receiver takes (Dovecot's `Mail size is larger than the maximum size allowed`)
        r"\b(?:mail|message|e-?mail) size (?:is )?(?:larger|bigger|greater) than\b",
    ), ("larger than", "bigger than", "greater than")),
    (RECIPIENT, _rx(  # a person who is gone: an organisation's own answer for a closed mailbox
        r"\b(?:has|have) left the (?:company|organi[sz]ation|firm|university|school)\b",
        r"\bno longer (?:works?|employed|with (?:the|this|our) (?:company|organi[sz]ation))\b",
    ), ("left the", "no longer")),
    (REPUTATION, _rx(  # a client that talks before the greeting is treated as a bot (Sendmail's greet_pause, postscreen's PREGREET)
        r"\bpre-?greet(?:ing)? traffic\b",
    ), ("greet",)),
    (TIMEOUT, _rx(  # Postfix tells the sender its mail is still not delivered after delay_warning_time
        r"\bsender delay notification\b", r"\bdelay(?:ed)? (?:warning|notice) (?:sent|to sender)\b",
    ), ("delay notification", "delay warning", "delayed warning", "delay notice", "delayed notice")),
    (INFRASTRUCTURE, _rx(  # a reply that says only that a connection failed (Exchange's `421 4.2.1 Unable to connect.`
        # inside its queue's LastError): the code is the reporter's wrapper, the words are the event
        r"^[45]\d\d [45]\.\d\.\d{1,3} unable to connect\.?$",
    ), ("unable to connect",)),
    (INFRASTRUCTURE, _rx(  # a mail loop is routing trouble, whatever the code (x.6.0 would read as content)
        r"mail (?:forwarding )?loop", r"exceeded <\*> hops", r"too many hops", r"hop count (?:exceeded|too high)",
        r"loops? back to myself", r"too many \"?received:?\"? headers", r"\bloop detected\b", r"\blooping (?:message|mail)\b",
    ), ("loop", "hops", "hop count", "received")),
    (INFRASTRUCTURE, _rx(  # the mail system's own files and sockets: a path it cannot reach, a crash of its own
        r"<path>\)?(?: failed)?:? permission denied", r"missing \+[rwx] perm", r"connect to (?:<path>|private/\S+|public/\S+) failed",
        r"\]: panic: ", r"older than (?:its )?source file",
    ), ("permission denied", " perm", "private/", "public/", "panic:", "older than")),
    (INFRASTRUCTURE, _rx(  # a serverless runtime or container that died under the sender (memory, a signal, no instance)
        r"\boom ?killed\b", r"runtime exited with error", r"signal: killed", r"exited before completing (?:the )?request",
        r"no available instance",
    ), ("oom", "runtime exited", "killed", "exited before", "available instance")),
    (TIMEOUT, _rx(  # the function's own time: a request timeout, a CPU time limit (not a sending rate limit)
        r"(?:maximum |max )?request timeout\b", r"cpu time limit", r"exceeded (?:the |its )?(?:cpu )?time limit",
    ), ("timeout", "time limit")),
    (TIMEOUT, _rx(
        r"message (?:has )?expired", r"expired after", r"delivery time expired", r"too long in (?:the )?queue",
        r"retry timeout exceeded", r"handshake (?:timeout|timed out)", r"\btime ?limit (?:exceeded|reached)",
        r"\bconnection timed out\b", r"\btimedout\b",  # Windows' SocketError names (Exchange: `Connection dropped due to TimedOut`)
        r"did not respond to (?:a |the |our )?connection attempt",
        r"in the time limit specified", r"exceeded (?:the )?(?:allowable|allowed|maximum) connection time",
    )),
    (TIMEOUT, _rx(r"(?:in|on) the queue too long", r"queued (?:for )?too long", r"(?:envelope|delivery) (?:has )?expired"),
     ("queue", "expired")),
    (TIMEOUT, _rx(  # Sendmail's `DSN: Cannot send message for 5 days`: the queue gave up after its age
        r"(?:cannot|could not|couldn't|unable to) (?:send|deliver)[^.;]{0,20} for (?:<\*>|\d+|over|more than) [^.;]{0,12}(?:days?|hours?)",
        r"(?:cannot|could not|couldn't|unable to) deliver for the last <\*> (?:seconds|minutes|hours)",
    ), (" days", " day", " hours", " hour", "for the last")),
    (VALIDATION, _rx(
        r"not a valid rfc-?\s?5321", r"not a valid (?:e-?mail )?address", r"(?:address|e-?mail)[^.;]{0,30}not (?:properly |correctly )?formatted",
        r"(?:incorrectly|badly|improperly) formatted", r"malformed (?:e-?mail )?address", r"address syntax",
    )),
)

# the connection itself failed, and no reply came to say anything else (no reply code in the text):
# infrastructure, whatever other words (`timeout -1` in JavaMail's connect error) are around it
_CONNECTION_FAILED = _rx(
    r"connection refused", r"econnrefused", r"actively refused", r"greeting never received",
    r"unable to read data from the transport", r"have been failing", r"network is unreachable",
    r"no route to host", r"connection reset", r"econnreset", r"forcibly closed",
)

# ... unless the refusal says why: `Connection refused. (ip) is listed on the Exploits Block List`
_LISTED = _rx(r"listed (?:on|in|at|by)", r"block ?list", r"black ?list", r"deny ?list", r"\bdnsbl\b", r"\brbl\b")
_CONNECTION_HINTS = ("refused", "greeting", "transport", "failing", "unreachable", "route", "reset", "forcibly")
_OVERRIDES_HINTED = tuple(
    (entry[0], entry[1], entry[2] if len(entry) > 2 else _CONTENT_HINTS if index == 0 else None)
    for index, entry in enumerate(_OVERRIDES)
)

# --- 2 and 4. enhanced status codes ---------------------------------------------------
# subject.detail -> category; None = ambiguous: let the wording decide, then fall back
_ENHANCED = {
    (1, 0): None, (1, 1): RECIPIENT, (1, 2): RECIPIENT, (1, 3): VALIDATION, (1, 4): RECIPIENT,
    (1, 5): RECIPIENT, (1, 6): RECIPIENT, (1, 7): VALIDATION, (1, 8): VALIDATION, (1, 9): RECIPIENT,
    (1, 10): RECIPIENT,
    (2, 0): None, (2, 1): RECIPIENT, (2, 2): MAILBOX_FULL, (2, 3): CONTENT, (2, 4): INFRASTRUCTURE,
    (3, 0): None, (3, 1): INFRASTRUCTURE, (3, 2): INFRASTRUCTURE, (3, 3): None, (3, 4): CONTENT,
    (3, 5): INFRASTRUCTURE,
    (4, 0): None, (4, 1): None, (4, 2): None, (4, 3): INFRASTRUCTURE, (4, 4): RECIPIENT, (4, 5): None,
    (4, 6): INFRASTRUCTURE, (4, 7): TIMEOUT, (4, 14): INFRASTRUCTURE,
    (5, 0): None, (5, 1): VALIDATION, (5, 2): VALIDATION, (5, 3): RATE_LIMIT, (5, 4): VALIDATION,
    (5, 5): VALIDATION, (5, 6): VALIDATION,
    (7, 0): None, (7, 1): None, (7, 2): REPUTATION, (7, 3): None, (7, 4): None,  # (7, 5), (7, 6): below
    (7, 7): CONTENT, (7, 8): AUTHENTICATION, (7, 9): None, (7, 10): AUTHENTICATION,
    (7, 11): AUTHENTICATION, (7, 12): AUTHENTICATION, (7, 13): AUTHENTICATION, (7, 14): AUTHENTICATION,
    (7, 15): None, (7, 16): RECIPIENT, (7, 17): RECIPIENT, (7, 18): RECIPIENT, (7, 19): RECIPIENT,
    (7, 20): SENDER_AUTH, (7, 21): SENDER_AUTH, (7, 22): SENDER_AUTH, (7, 23): SENDER_AUTH,
    (7, 24): SENDER_AUTH, (7, 25): SENDER_AUTH, (7, 26): SENDER_AUTH, (7, 27): VALIDATION,
    (7, 28): RATE_LIMIT, (7, 29): SENDER_AUTH, (7, 30): INFRASTRUCTURE,
    (7, 139): AUTHENTICATION,
}
# what an ambiguous code means when no wording decided
_SUBJECT_DEFAULT = {
    0: None, 1: RECIPIENT, 2: RECIPIENT, 3: INFRASTRUCTURE, 4: INFRASTRUCTURE, 5: VALIDATION, 6: CONTENT,
    7: REPUTATION,
}


def _enhanced_category(subject: int, detail: int):
    """(specific category or None, fallback category or None)."""
    if (subject, detail) in _ENHANCED:
        specific = _ENHANCED[(subject, detail)]
        return specific, _SUBJECT_DEFAULT.get(subject)
    if subject == 6:
        return CONTENT, CONTENT
    if subject == 7 and detail in (5, 6):
        # RFC 3463's cryptographic failures: Postfix's TLS trouble (`dsn=4.7.5 ... Cannot start TLS`) and
        # signature failures (`5.7.5 Permanent error evaluating DMARC`): the words decide, signatures by default
        return None, SENDER_AUTH
    if subject == 7 and detail >= 100:
        # Microsoft's extended x.7.1xx-7xx codes: restrictions, spam and IP blocks
        return REPUTATION, REPUTATION
    if subject == 4 and detail >= 100:
        return None, INFRASTRUCTURE
    return None, _SUBJECT_DEFAULT.get(subject)


# --- 3. wording, most specific first ---------------------------------------------------
_WORDING = (
    (VALIDATION, _rx(  # our sender identity is the problem, not the recipient
        r"sender address rejected", r"sender (?:domain|address) (?:not found|invalid|unknown|must exist)",
        r"sender (?:address )?verif(?:y|ication)[^.;]{0,10}fail", r"verification failed for", r"sender signature", r"sender identity",
        r"(?:is )?not (?:a )?verified", r"unverified", r"not owned by", r"send ?as ?denied", r"send as this",
        r"sandbox", r"test purposes only", r"pending approval", r"(?:^|[:\"] ?)domain not found: ",
        r"mail ?from domain",
        r"(?:can )?only send (?:testing |test )?e-?mails? to your own", r"(?:must|needs? to) be verified",
        r"verify (?:a|your|the) (?:sending )?domain", r"(?:right|permission) to send (?:mail |e-?mail |messages? )?(?:on behalf|as)\b",
        r"send (?:mail |e-?mail )?on behalf of", r"(?:envelope )?(?:from|sender) address[^.;]{0,40}not accepted",
        r"\btest[- ]mode\b",  # a sending service's test mode (Mandrill's `test-mode-limit`) only delivers to a few
        # the sender's own identity: an unresolvable From domain, a From that is not the account's
        r"unresolvable[^;]{0,30}\b(?:from|sender|envelope)\b",
        r"not one of your addresses", r"(?:from|sender) address[^.;]{0,40}must match", r"must match your authenticated",
        r"\bno mx\b[^.;]{0,30}\b(?:from|sender)\b", r"requires? (?:a )?valid sender",
        # a library that refuses to build what it was given: a header, an encoding, a message without a body
        r"invalid character[^.;]{0,30}\bheader", r"more than one [^.;]{0,20}header", r"^unknown encoding\b",
        r"header values? can'?t contain", r"^(?:an? )?(?:message|attachment|e-?mail)s? must have\b",
        r"provide a valid from\b",  # GoDaddy's IB50x: the From the sender chose
    )),
    (SENDER_AUTH, _rx(r"\bspf\b", r"\bptr\b", r"your hostname", r"authentication results", r"\bunsigned\b", r"\bnot signed\b")),
    (AUTHENTICATION, _rx(
        r"authenticat(?:ion|e)[^.;]{0,30}(?:fail|unsuccessful|required|invalid|incorrect|denied|rejected|error)",
        r"(?:not |un)authenticated", r"authentication data", r"auth(?:entication)? extension",
        r"\bsmtp auth\b", r"\bsasl\b", r"credential", r"password", r"username", r"(?<![\w-])log ?in\b", r"sign-?in",
        r"unauthori[sz]ed", r"forbidden", r"authori[sz]ation", r"api[ _-]?key", r"\btokens?\b", r"token ?id",
        r"not authori[sz]ed to perform", r"accessdenied", r"signature ?does ?not ?match", r"secret access key",
        r"access key", r"application-specific password", r"\bsmtp ?client ?authentication",
        r"must issue a starttls", r"\bauthenticate\b", r"permission denied", r"fail(?:ed|ure|s)?(?: to)? authenticat",
        r"permission (?:<\*>|'[^']{1,80}'|\S{1,80}) denied", r"\bpermission_denied\b",
        r"\bauthentifi(?:cation|zierung)", r"\bauth failed\b", r"unexpected (?:server )?challenge",
    )),
    (AUTHENTICATION, _rx(r"auth(?:entication)?[_-]?fail"), ("auth_fail", "authfail", "auth-fail", "authentication_fail")),
    (AUTHENTICATION, _rx(  # no mechanism in common: `No suitable authentication method`, `server doesn't support AUTH`
        r"(?:authentication|auth|sasl|login) (?:method|mechanism|type)s?\b", r"(?:does ?n[o']t|not) support(?:s|ed)? (?:the )?auth(?:entication)?\b",
        r"\bmechanisms?\b[^.;]{0,30}(?:do(?:es)? not (?:fulfill|satisfy|meet)|not (?:supported|available)|unavailable)",
        r"\bauth (?:is )?not (?:supported|enabled|available|offered|advertised)",
    ), ("method", "mechanism", "type", "support", "auth not", "auth is not")),
    (CONTENT, _rx(r"virus", r"malware", r"malicious", r"executable", r"attachment", r"infected")),
    (REPUTATION, _rx(r"spam", r"junk", r"phish", r"\bbulk\b", r"resolver\.rst", r"reputation")),
    (CONTENT, _rx(
        r"message (?:size|length)", r"size (?:limit|exceeds)", r"exceeds? [^.;]{0,30}size", r"too (?:large|big)",
        r"bytes long", r"attachment", r"virus", r"malware", r"executable", r"content", r"\bmime\b",
        r"headers?\b", r"message-id", r"rfc ?(?:5322|2822|822)", r"codec", r"encod(?:e|ing)\b", r"lines? (?:is |are )?too long",
        r"\b8-?bit\b", r"message (?:is )?(?:empty|malformed|corrupt)",
    )),
    (INFRASTRUCTURE, _rx(r"disk quota", r"insufficient system", r"system storage", r"too many open files")),
    (RATE_LIMIT, _rx(
        r"quota", r"\brate\b", r"limit exceeded", r"exceed(?:ed|ing)[^.;]{0,20}limit", r"credits", r"per (?:connection|hour|day|minute|second)",
        r"too many", r"try again in \d", r"\blimit reached",
    )),
    (MAILBOX_FULL, _rx(r"mailbox[^.;]{0,20}(?:full|quota|storage)", r"\bstorage\b[^.;]{0,20}(?:full|exceeded)",
                       r"(?:account|mailbox|user) storage (?:limit|quota)")),
    (RECIPIENT, _rx(
        r"user unknown", r"unknown (?:user|recipient|address|local ?part|mailbox)", r"no such (?:user|mailbox|recipient|address|account|person)",
        r"(?:account|mailbox|address|user|recipient)[^.;]{0,60}(?:does not|doesn't|did not|do not) exist",
        r"may not exist", r"does ?n[o']t have an? \S+ account",
        r"(?:address|mailbox|recipient|user|account)[^.;]{0,40}(?:could ?n[o']t|cannot|can't|can not) be found",
        r"recipients? (?:not found|unknown|rejected|invalid)", r"recip(?:ient)?notfound",
        r"(?:some |all |the )?recipients (?:failed|were (?:refused|rejected))",  # Haraka's, nodemailer's summaries
        r"recipient address rejected: access denied",
        r"(?:mailbox|address|user|recipient|account) (?:is )?(?:currently |permanently )?(?:not found|unavailable|disabled|inactive|deactivated|suspended|closed|discontinued|frozen|terminated)",
        r"(?:account|mailbox) has been (?:disabled|deactivated|suspended|closed|discontinued)",
        r"unroute?able", r"\bno mx\b", r"\bnull ?mx\b", r"nonexistent domain", r"non-existent domain",
        r"domain(?: name)?(?: <host>)? (?:does not exist|not found|name not found)", r"host or domain name not found",
        r"bad destination", r"invalid (?:recipient|mailbox)", r"not our customer", r"resolver\.adr",
        r"undeliverable address", r"address not found", r"mailbox unavailable", r"no longer (?:active|available|valid)",
        r"is not a known user", r"hard bounce", r"unable to deliver your message \(ex: unknown user",
        r"invalid address", r"recipients? (?:address )?(?:is ?n[o']t|is not|are not|aren't) valid",
        r"recipient(?: address)?[^.;]{0,40}not accepted", r"(?:no answer|does not contain an answer)[^;]{0,60}\bin mx\b",
        r"hard[- ]bounce", r"\bno ?mailbox\b", r"(?:could not|couldn't|cannot|can't|unable to) find (?:a |any |the )?mail ?servers?\b", r"mx records? points? to non-?existent", r"\bunsub\b",  # sending services' reason words (`NoMailbox`, `unsub`)
    )),
    (REPUTATION, _rx(
        r"block ?list", r"black ?list", r"deny ?list", r"blocked using", r"listed (?:in|on|at|by)", r"\brbl\b",
        r"\bdnsbl\b", r"complain", r"policy reasons", r"policy (?:violation|restriction)", r"rejected for policy",
        r"administrative prohibition", r"prohibited", r"banned", r"not accepted from this ip", r"traffic not accepted",
        r"access denied", r"not authori[sz]ed", r"sending (?:paused|suspended|disabled)", r"account (?:sending )?(?:paused|suspended)",
        r"suspended", r"paused", r"\babuse\b", r"deferred due to", r"not allowed", r"denied", r"forwarding",
        r"client host rejected", r"blocked", r"policy", r"messages from <host>[^.;]{0,40}deferred",
    )),
    (REPUTATION, _rx(r"block (?:temporarily|permanently)", r"service refused", r"refused service"), ("block ", "refused")),
    # Postfix puts this in front of every RCPT-stage restriction: evidence only when nothing else spoke
    (RECIPIENT, _rx(r"recipient address rejected")),
    (INFRASTRUCTURE, _rx(  # the server answered with something that is not a reply: its side, not the request's
        r"(?:server|peer|remote(?: host)?) (?:sent|returned|gave) an? (?:invalid|malformed|unexpected|bad|garbled) "
        r"(?:reply|response|answer|greeting|message)",
        r"(?:reply|response|message|answer) (?:from|of) the (?:server|peer|remote host) (?:was|is) (?:malformed|invalid|garbled)",
    )),
    (INFRASTRUCTURE, _rx(
        r"\[ssl", r"\bssl", r"\btls\b", r"starttls", r"certificate", r"handshake", r"tls error",
    )),
    (TIMEOUT, _rx(
        r"timed? ?out", r"time-?out", r"deadline exceeded", r"took too long", r"expired", r"time ?limit", r"\btoo old\b",
        r"too long in (?:the )?queue", r"did not (?:properly )?respond after", r"failed to respond (?:in|within)",
    )),
    (VALIDATION, _rx(
        r"invalid", r"malformed", r"syntax", r"bad ?request", r"missing", r"required", r"not (?:contain )?a valid",
        r"illegal", r"pars(?:e|ing)", r"unrecognized command", r"command not (?:recognized|implemented)",
        r"bad sequence", r"need \w+ command", r"helo command rejected", r"invalid helo", r"fully-qualified",
        r"not supported", r"please run connect", r"parameter", r"\bjson\b", r"must contain", r"bad request",
        r"not implemented", r"unprocessable",
    )),
    (VALIDATION, _rx(  # the request names something that is not there or not set up (a recipient was decided above)
        r"does ?n[o']t exist", r"unconfigured", r"not configured",
        r"(?:may|must|can|cannot|can't|should)(?: not)? be (?:an? )?(?:blank|empty|nil|null|none)\b",
        r"must (?:specify|provide|set|supply|configure|define)\b", r"\bnot defined\b",
        r"must be (?:specified|provided|set|given|supplied)\b", r"expected [^.;]{0,30} to be (?:set|specified|provided|given)\b",
        r"must be an? (?:list|tuple|string|str|dict|array|sequence|instance)\b",
        r"no such (?:template|mailer|transport|sender|configuration|setting|key|identity|list)\b",
    ), ("exist", "configured", " be ", "must ", "defined", "no such", "expected")),
)

_WORDING_HINTED = tuple((entry[0], entry[1], entry[2] if len(entry) > 2 else None) for entry in _WORDING)

# generic transient-failure wording: after the fallback of an ambiguous enhanced code
_GENERIC_INFRA = _rx(
    r"connection (?:refused|reset|closed|aborted|lost|dropped|unexpectedly)", r"lost connection",
    r"broken pipe", r"unreachable", r"no route to host", r"name or service not known", r"name resolution",
    r"nodename nor servname", r"getaddrinfo", r"failed to resolve", r"\bdns\b", r"\beof\b", r"service unavailable",
    r"service (?:is )?(?:not |temporarily )?(?:un)?available", r"temporar", r"try (?:again|later)", r"server busy",
    r"too busy", r"system problem", r"internal (?:server )?error", r"internal failure", r"local (?:problem|error)",
    r"bad gateway", r"disconnected", r"unexpectedly closed", r"resources", r"queue file", r"loops? back",
    r"mail loop", r"hop count", r"configuration", r"network", r"socket", r"too many open files", r"server error",
    r"connect call failed", r"error connecting", r"failed to establish", r"could not connect", r"unable to connect",
    r"cannot connect", r"callout", r"retry time not reached", r"\bdefer", r"not available", r"try again later",
    r"closing (?:connection|transmission channel)", r"out of memory", r"unavailable",
    r"lost (?:input )?channel", r"\bfrozen\b", r"no such host", r"unable to process", r"greeting", r"socket close",
    r"connection (?:was |has been |is )(?:refused|reset|closed|aborted|lost|dropped)", r"(?:failed|unable) to (?:connect|establish)",
    r"(?:has been |was )?closed unexpectedly", r"but got code \"\"", r"\bhost not found\b", r"\benodata\b",
    r"\b(?:server|host|service)s? (?:is |are )?(?:down|offline)\b",
    r"could ?n[o']t connect", r"empty (?:response|reply)", r"no (?:response|reply) from",
    r"(?:terminated|exited|died|crashed) unexpectedly", r"unexpected (?:server |internal )?error", r"servfail",
    r"nameservers? failed", r"no such file or directory", r"\bbusy\b", r"server misbehaving", r"could not instantiate",
    r"short response", r"lookup error", r"\bcorrupt", r"execution of (?:the )?script[^;]{0,40}failed",
    r"load average", r"\bnot connected\b", r"without being connected", r"inaccessible host", r"unexpected disconnection",
    r"failure when receiving data from the peer", r"failed sending data to the peer", r"weird server reply",
    r"server returned nothing", r"\bend of file\b", r"\bsyserr\b",
)
# wording of a transient server-side problem: decides over the generic fallback of an ambiguous
# enhanced code (x.7.0 is `other security`, x.3.0 `other system status`)
_SYSTEM_TROUBLE = _rx(
    r"system problem", r"server (?:is )?busy", r"too busy", r"load average",
    r"temporar(?:il)?y (?:unavailable|failure|problem|error)", r"unable to process", r"currently unavailable",
    r"temporary (?:server |system |local )?(?:error|failure|problem)", r"service (?:is )?(?:temporarily )?unavailable",
)

# --- 5. reply codes ------------------------------------------------------------------
_SMTP_CODES = {
    421: INFRASTRUCTURE, 450: INFRASTRUCTURE, 451: INFRASTRUCTURE, 452: INFRASTRUCTURE, 454: INFRASTRUCTURE,
    455: VALIDATION, 500: VALIDATION, 501: VALIDATION, 502: VALIDATION, 503: VALIDATION, 504: VALIDATION,
    521: RECIPIENT, 523: CONTENT, 530: AUTHENTICATION, 534: AUTHENTICATION, 535: AUTHENTICATION,
    538: AUTHENTICATION, 550: RECIPIENT, 551: RECIPIENT, 552: MAILBOX_FULL, 553: VALIDATION, 554: REPUTATION,
    555: VALIDATION, 556: RECIPIENT,
}
_HTTP_CODES = {
    400: VALIDATION, 401: AUTHENTICATION, 402: RATE_LIMIT, 403: AUTHENTICATION, 404: VALIDATION, 405: VALIDATION,
    406: VALIDATION, 407: AUTHENTICATION, 408: TIMEOUT, 409: VALIDATION, 410: VALIDATION, 411: VALIDATION,
    412: VALIDATION, 413: CONTENT, 414: VALIDATION, 415: VALIDATION, 422: VALIDATION, 429: RATE_LIMIT,
    504: INFRASTRUCTURE,
}
_HTTP_CONTEXT = re.compile(
    r"\bhttps?\b|client error|server error|for url|<url>|too many requests|unauthori[sz]ed|forbidden|bad request|"
    r"internal server error|service unavailable|bad gateway|gateway time|payload too large|errorcode|\"errors\"|"
    r"unprocessable|not found for url|request entity"
)

# --- 6. exception types ------------------------------------------------------------------
_TYPES = {
    TIMEOUT: (
        "timeouterror timeout sockettimeout connecttimeout readtimeout writetimeout pooltimeout connecttimeouterror "
        "readtimeouterror smtptimeouterror smtpconnecttimeouterror smtpreadtimeouterror softtimelimitexceeded "
        "timelimitexceeded deadlineexceeded timeoutexpired sockettimeoutexception opentimeout etimedout "
        # .NET: a send that a time-out token cancelled (MailKit with a CancellationTokenSource, HttpClient's Timeout
        # surfacing as `A task was canceled.`)
        "operationcanceledexception taskcanceledexception"
    ),
    INFRASTRUCTURE: (
        "connectionrefusederror connectionreseterror connectionabortederror connectionerror brokenpipeerror "
        "gaierror herror sslerror sslcertverificationerror ssleoferror sslzeroreturnerror sslsyscallerror "
        "certificateerror smtpserverdisconnected smtpconnecterror smtpconnectresponseerror endpointconnectionerror "
        "newconnectionerror maxretryerror remotedisconnected protocolerror remoteprotocolerror connecterror "
        "networkerror nameresolutionerror oserror memoryerror operationalerror interfaceerror "
        "serviceunavailableerror internalservererror servererror badgatewayerror gatewaytimeouterror "
        # other senders: JavaMail / Jakarta Mail, .NET, nodemailer's error codes, Ruby's Errno
        "mailconnectexception connectexception unknownhostexception sslhandshakeexception socketexception "
        "ioexception econnrefused econnreset esocket econnection edns etls ehostunreach enetunreach"
    ),
    AUTHENTICATION: (
        "smtpauthenticationerror nocredentialserror partialcredentialserror unauthorizederror forbiddenerror "
        "autherror authenticationerror invalidclienttokenid expiredtoken accessdenied accessdeniedexception "
        "authenticationfailedexception authenticationexception eauth"
    ),
    RECIPIENT: (
        "smtprecipientsrefused smtprecipientrefused smtpaddressfailedexception smtpfailedrecipientexception "
        "smtpfailedrecipientsexception"
    ),
    VALIDATION: (
        "smtpsenderrefused smtpheloerror smtpnotsupportederror smtpnotsupported badrequestserror badrequesterror "
        "headerparseerror invalidheaderdefect paramvalidationerror invalidparametervalue messagerejected"
    ),
    CONTENT: (
        "smtpdataerror unicodeencodeerror unicodedecodeerror payloadtoolargeerror undefinederror "
        "templatesyntaxerror templateerror liquidsyntaxerror liquidundefinederror"
    ),
    RATE_LIMIT: "toomanyrequestserror throttlingexception throttling ratelimiterror",
    REPUTATION: "accountsendingpausedexception",
}
TYPE_CATEGORY = {name: cat for cat, names in _TYPES.items() for name in names.split()}
_TYPE_IN_TEXT = re.compile(r"\b(" + "|".join(sorted(TYPE_CATEGORY, key=len, reverse=True)) + r")\b")

# --- codes found in a pattern --------------------------------------------------------------
_ENHANCED_RX = re.compile(r"(?<![\w.])([245])\.(\d{1,3})\.(\d{1,3})(?![\w]|\.\d)")
_REPLY_RX = re.compile(r"(?<![\w.<*/-])([45][0-5]\d)(?![\w.]|\.\d)")

# --- retryability wording ----------------------------------------------------------------
_PERMANENT = _rx(
    r"will not succeed", r"permanently (?:deferred|rejected|failed|blocked|disabled)", r"permanent (?:failure|error)(?! evaluating)",
    r"do not retry", r"don't retry", r"returned to sender", r"status=bounced", r"retry timeout exceeded",
    r"permanent fatal", r"message (?:was |has been )?discarded",
    r"message expired", r"status=expired", r"too long in (?:the )?queue", r"giving up",
    r"loops? back to myself", r"mail (?:forwarding )?loop",
    r"(?:failed to|unable to|could not|couldn't) connect[^.;]{0,40}: permission denied",  # the local OS forbids the connection (SELinux): a setting, not a fault
)
# qmail's `I'm not going to try again; ... in the queue too long`, OpenSMTPD's `Envelope expired`, Mailgun's `Too old`
_PERMANENT_PHRASES = ("not going to try again", "the queue too long", "envelope expired", "too old", "cannot send message for")
# the sender's own classification says transient (SES `bounceType=Transient`, lettre's `transient
# error (451)`): retryable even under a 5.x.x code
_TRANSIENT = _rx(r"\btransient\b", r"soft ?bounce")
_TEMPORARY = _rx(
    r"temporar", r"try (?:again|later)", r"retry later", r"please retry", r"resend [^.;]{0,30}later", r"\bdeferr?",
    r"later time", r"gr[ae]ylist", r"status=deferred",
)


_NAMESPACE = re.compile(r"\.|::|\\")


def vote_codes(text: str) -> tuple:
    """The codes of a lower-cased pattern as features of the words' vote: `enh:7.1` and `enhsub:7` for an
    enhanced status code, `code:550` for a reply or status code."""
    return _vote_codes(_ENHANCED_RX.search(text), _REPLY_RX.search(text))


def _vote_codes(enhanced, reply) -> tuple:
    found = ()
    if enhanced is not None:
        found = (f"enh:{int(enhanced.group(2))}.{int(enhanced.group(3))}", f"enhsub:{int(enhanced.group(2))}")
    if reply is not None:
        found += ("code:" + reply.group(1),)
    return found


def _type_key(error_type: str | None) -> str:
    """The class name without its module or namespace: Python `smtplib.X`, Ruby `Net::X`, PHP `A\\B\\X`."""
    if not error_type:
        return ""
    return _NAMESPACE.split(error_type)[-1].lower().rstrip("()")


def _type_category(error_type: str | None):
    key = _type_key(error_type)
    category = TYPE_CATEGORY.get(key)
    if category is None and error_type and key == "error" and "template" in error_type.lower():
        category = CONTENT  # Ruby's ActionView::Template::Error: a template that failed to render
    return category


# several refused recipients in one exception (smtplib's dict, aiosmtplib's list) reach us as
# their distinct replies joined by "; " (error_patterns): the first reply decides. A `; 550`
# with no reply code before it (`diagnostic-code: smtp; 550 ...`) starts the first reply.
_NEXT_REPLY = re.compile(r"; (?:-1|[2-5]\d\d)(?= |$)")
_REPLY_BEFORE = re.compile(r"(?:^|[\s:(])(?:-1|[2-5]\d\d) ")


# advice a library appends to every failure (fastapi-mail's `check your credentials or email service
# configuration`, PHP's `verify your "SMTP" ... setting`): it names no cause, so the rest decides
_ADVICE = re.compile(
    r",?\s*(?:please )?(?:check|verify) your (?:credentials|settings?|configuration|email service|[^.;]{0,40}\bsettings?\b)[^.;]*"
)
# Postfix's `delivery temporarily suspended: <reason>`: the reason after it decides
# RFC 3463's own description of an enhanced code, which an MTA may print after it (PowerMTA's accounting records:
# `5.7.1 (delivery not authorized, message refused)`, `5.2.2 (mailbox full)`): it says no more than the code, so it is
# read as the code, not as words. Any other text in parentheses is the server's and is kept.
_RFC3463_DESCRIPTIONS = (
    "undefined status", "other undefined status", "other or undefined status", "other address status",
    "bad destination mailbox address", "bad destination system address", "bad destination mailbox address syntax",
    "destination mailbox address ambiguous", "destination address valid", "destination mailbox has moved, no forwarding address",
    "bad sender's mailbox address syntax", "bad sender's system address", "recipient address has null mx",
    "sender address has null mx", "other or undefined mailbox status", "mailbox disabled, not accepting messages",
    "mailbox full", "message length exceeds administrative limit", "mailing list expansion problem",
    "other or undefined mail system status", "mail system full", "system not accepting network messages",
    "system not capable of selected features", "message too big for system", "system incorrectly configured",
    "other or undefined network or routing status", "no answer from host", "bad connection", "directory server failure",
    "routing server failure", "unable to route", "mail system congestion", "network congestion", "routing loop detected",
    "delivery time expired", "other or undefined protocol status", "invalid command", "syntax error", "too many recipients",
    "invalid command arguments", "wrong protocol version", "other or undefined media error", "media not supported",
    "conversion required and prohibited", "conversion required but not supported", "conversion with loss performed",
    "conversion failed", "other or undefined security status", "other security status",
    "delivery not authorized, message refused", "mailing list expansion prohibited",
    "security conversion required but not possible", "security features not supported", "cryptographic failure",
    "cryptographic algorithm not supported", "message integrity failure",
)
_RFC3463_DESCRIBED = re.compile(
    r"(?<![\w.])([245]\.\d{1,3}\.\d{1,3}) \((?:" + "|".join(re.escape(d) for d in _RFC3463_DESCRIPTIONS) + r")\)"
)
_SUSPENDED_PREFIX = "delivery temporarily suspended: "
# .NET's SmtpException puts its status code's description before the server's reply
# (`Exceeded storage allocation. The server response was: 5.3.4 Message size exceeds ...`): the reply decides
_SERVER_RESPONSE = "the server response was: "
# Exchange's queue (`451 4.4.0 Primary target IP address responded with: "421 4.7.66 TLS 1.0 and 1.1 are not supported."
# Attempted failover ...`): the generic 4.4.0 carries the remote's own reply, in quotes, which decides
_RESPONDED_WITH = 'responded with: "'


def categorize(pattern: str, error_type: str | None = None, *, words: bool = True) -> tuple[str, bool]:
    """(category, retryable) for a masked pattern and an optional exception type name.
    `words=False`: no word evidence (step 7), for a part of the text tried before the whole."""
    text = pattern.lower()
    if " (" in text:
        text = _RFC3463_DESCRIBED.sub(r"\1", text)
    if _SUSPENDED_PREFIX in text:
        text = text.replace(_SUSPENDED_PREFIX, "")
    inner = None  # the category of the remote's own reply that Exchange's queue quotes
    if _SERVER_RESPONSE in text:
        reply = text.split(_SERVER_RESPONSE, 1)[1]
        if reply.strip():
            category, retryable = categorize(reply, error_type, words=False)
            if category != UNKNOWN:
                return category, retryable
    elif _RESPONDED_WITH in text:
        reply = text.split(_RESPONDED_WITH, 1)[1].split('"', 1)[0]
        if reply.strip():
            inner = categorize(reply, error_type)[0]  # a whole reply: its words may vote; whether to retry is the queue's
            if inner == UNKNOWN:
                inner = None
    if " your " in text and ("check" in text or "verify" in text):
        stripped = _ADVICE.sub("", text)
        if stripped != text:
            category, retryable = categorize(stripped, error_type, words=False)
            if category != UNKNOWN:
                return category, retryable
    if "; " in text:
        for cut in _NEXT_REPLY.finditer(text):
            if _REPLY_BEFORE.search(text, 0, cut.start()):
                text = text[: cut.start()]
                break
    enhanced = _ENHANCED_RX.search(text)
    klass = subject = detail = None
    if enhanced is not None:
        klass, subject, detail = int(enhanced.group(1)), int(enhanced.group(2)), int(enhanced.group(3))
    reply = _REPLY_RX.search(text)
    code = int(reply.group(1)) if reply is not None else None
    # 400-418 and 429 are not SMTP replies; other codes need HTTP wording around them
    http = code is not None and enhanced is None and (
        400 <= code <= 418 or code == 429 or _HTTP_CONTEXT.search(text) is not None
    )
    if http and code > 511:
        http = False  # 512-599 are no HTTP status: 550, 554 are SMTP replies whatever the words around them
    elif http and reply.start() == 0 and code in _SMTP_CODES and "<url>" in text:
        # `421 Sender address blocked - <url>`: a server reply that links its documentation
        http = _HTTP_CONTEXT.search(text.replace("<url>", "")) is not None

    if inner is not None:
        return inner, _retryable(text, inner, klass, code, http)
    category = None
    if '"field":' in text and '"field":null' not in text:
        category = VALIDATION  # an API's field-level error (`"field":"attachments.0.content"`): the request's shape
    for name, rx, hints in _OVERRIDES_HINTED if category is None else ():
        if hints is not None and not any(hint in text for hint in hints):
            continue  # none of the words this group needs: skip its regex
        if rx.search(text):
            category = name
            break
    if (
        category is None and reply is None and enhanced is None
        and any(hint in text for hint in _CONNECTION_HINTS) and _CONNECTION_FAILED.search(text)
        and _LISTED.search(text) is None
    ):
        category = INFRASTRUCTURE
    fallback = None
    outvote = None  # how clear a vote must be to decide over the category found so far; None: it cannot
    if category is None and enhanced is not None:
        category, fallback = _enhanced_category(subject, detail)
        if category is not None:
            outvote = OUTVOTE_SPECIFIC_CODE
    if category is None:
        for name, rx, hints in _WORDING_HINTED:
            if hints is not None and not any(hint in text for hint in hints):
                continue
            if rx.search(text):
                category = name
                outvote = OUTVOTE_WORDING
                break
    if category is None and fallback is not None and _SYSTEM_TROUBLE.search(text):
        category = INFRASTRUCTURE
    if category is None:
        category = fallback
        if category is not None:
            outvote = OUTVOTE_CODE
    if category is None and _GENERIC_INFRA.search(text):
        category = INFRASTRUCTURE
    if category is None and code is not None:
        if http:
            category = _HTTP_CODES.get(code) or (INFRASTRUCTURE if code >= 500 else VALIDATION)
        else:
            category = _SMTP_CODES.get(code)
            if category is not None:
                outvote = OUTVOTE_CODE
    if category is None:
        category = _type_category(error_type)
        if category is None:
            named = _TYPE_IN_TEXT.search(text)
            if named is not None:
                category = TYPE_CATEGORY[named.group(1)]
    if words and (category is None or outvote is not None):
        # the words' vote: for a text no rule recognised, and, when clearer still, over a code or generic
        # wording (a 550 is `recipient` only for want of anything better; see the OUTVOTE_ margins)
        # (the codes found above, in the same text: no second search)
        voted = guess(text, _type_key(error_type), None if category is None else outvote, _vote_codes(enhanced, reply))
        if voted is not None:
            category = voted
    if category is None:
        category = UNKNOWN
    return category, _retryable(text, category, klass, code, http)


def _retryable(text: str, category: str, klass, code, http: bool) -> bool:
    if _PERMANENT.search(text) or any(phrase in text for phrase in _PERMANENT_PHRASES):
        return False
    smtp_class = klass if klass is not None else (code // 100 if code is not None and not http else None)
    if smtp_class == 4:
        return True
    if "transient" in text or "bounce" in text:
        if _TRANSIENT.search(text):
            return True
    if category == RATE_LIMIT:
        return True
    if smtp_class == 5 or category == AUTHENTICATION and smtp_class is None and "fail" in text:
        return False
    if http:
        return code in (408, 425, 429) or code >= 500
    if _TEMPORARY.search(text):
        return True
    return category in TRANSIENT
