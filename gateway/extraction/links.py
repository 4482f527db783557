"""Find the action link of a message: the link a person clicks to sign in,
confirm an address, approve a device or sign-in, or reset a password.

Pure: no I/O, no logging, deterministic. ``extract_link`` reads a message in
four steps:

1. Candidates. In HTML, every ``<a href>`` with its text (or its images' alt
   text), whether it is drawn as a button (a background, padding or rounded
   corners on it or its cell, a ``button``/``btn`` class) and the words just
   before it; bare URLs in the visible text too. In a text part or an SMS,
   every ``http(s)://`` URL (also inside ``<...>`` or Markdown's ``[...](...)``)
   with the words before it on its line and the line above. The same URL
   seen twice is one candidate. Hrefs are read as a browser reads them
   (``&amp;`` is ``&``); the answer is that URL unchanged, also behind a
   click-tracking redirect, which is never unwrapped.
2. Never the answer: other schemes (``mailto:``, ``tel:``), images, links to
   social networks and app stores, a site's home page or bare sign-in page,
   and links whose URL or text says unsubscribe, preferences, privacy, terms,
   help, support, "view in browser", "not you?" (``linkwords.NOT_ACTION``, in
   many languages).
3. Each candidate is scored (``WEIGHTS``): action words (``linkwords``) in
   its text, just before it, in its URL's path and query (``verify``,
   ``token=``, ``magic``, ``reset``...), a long random token in the URL, a
   button's look, a second sight of the same URL (the "paste this link"
   fallback, also when tracked on its own: ``_merge_twins``); against it, a
   logo with no words.
4. The best candidate is the answer only when its score reaches
   ``THRESHOLD``, beats every other URL by ``MARGIN``, and the message as a
   whole reads as an authentication message (an action word somewhere, and
   fewer commerce words than a receipt or a newsletter has). Otherwise
   None: a wrong link is worse than none.

The weights were set by hand and measured on the labelled set under
``tests/data/links`` (``tests/test_links.py``): its kept-apart part, chosen by
a hash of each message's template family, was never used to set them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from html import unescape
from urllib.parse import unquote

from gateway.extraction.htmltext import visible_text
from gateway.extraction.linkwords import role_pattern

__all__ = ["KINDS", "Link", "extract_link"]

KINDS = ("sign_in", "confirm", "approve", "reset")
ACTIONS = frozenset(KINDS)
MAX_SUBJECT_CHARS = 1_000
MAX_TEXT_CHARS = 50_000
MAX_HTML_CHARS = 300_000
MAX_HTML_TAGS = 10_000  # the HTML part is read up to its 10,000th tag (action links come early)
MAX_CANDIDATES = 300
MAX_URL_CHARS = 4_096
CONTEXT_CHARS = 160  # the words "just before" a link

THRESHOLD = 5.0
MARGIN = 2.0
WEIGHTS = {
    "anchor_action": 4.0,  # its text names the action: "Verify email", "Sign in", "Anmelden"
    "context_action": 2.0,  # the words before it do: "click below to reset your password"
    "context_click": 1.0,  # "click", "tap", "copy and paste" right before it
    "context_secret": 1.0,  # "password", "account", "e-mail address" in its text or just before it
    "subject_action": 1.0,  # the subject names an action: "Verify your e-mail", "Reset password"
    "url_action": 2.0,  # /verify, ?token=, /magic, /reset-password, /auth/callback
    "url_token": 1.5,  # a long random token in the path or query
    "button": 2.0,  # drawn as a button
    "repeated": 1.0,  # the same URL twice: a button and its "paste this link" fallback
    "first": 0.5,  # the first link worth scoring in the message
    "alone": 1.0,  # no other link worth anything beside it, and its words or URL name an action
    "anchor_not_action": -8.0,  # "unsubscribe", "privacy", "help", "not you?"
    "image_only": -3.0,  # a logo or a picture with no words
    "plain_page": -8.0,  # a tracked link to the home page or a sign-in page (untracked: never)
    "static_page": -3.0,  # a page of plain words (/my/password): the same for everyone, no token
    "context_done": -3.0,  # just before it, an action done ("your password was changed"): a notice
    "commerce_message": -2.5,  # the message is about orders, receipts, offers
}

_ROLES, _BY_ROLE = role_pattern()
_ROLE_OF: dict[str, str | None] = {}  # a found word -> its role; a cache that changes no answer
MAX_ROLE_CACHE = 20_000
# A tag is read with its quoted attribute values (a ">" inside quotes is not its end) within
# TAG_WINDOW characters; past that, or with a quote left open, up to the next ">". Each
# reading then moves past what it read: the whole body is read in linear time. A reading
# with quotes that fails may look at a whole window before the plain one moves on a few
# characters ("<x y='>'" repeated: 20 KB took 190 ms): once failed ones have looked at
# QUOTED_WORK characters, the rest of the body is read the plain way.
TAG_WINDOW = 2_048
QUOTED_WORK = 32_768
_TAG = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9]*)((?:[^>\"']|\"[^\"]*\"|'[^']*')*)>")
_LOOSE_TAG = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9]*)([^>]*)>")
_ATTR = re.compile(r"([a-zA-Z_:][-a-zA-Z0-9_:.]*)\s*(?:=\s*(\"[^\"]*\"|'[^']*'|[^\s\"'>]+))?")
_SKIP = {"style", "script", "head", "title", "xml"}
_BLOCK = frozenset(
    (
        *("p", "div", "br", "tr", "td", "th", "li", "ul", "ol", "table", "tbody", "thead", "hr"),
        *("h1", "h2", "h3", "h4", "h5", "h6", "center", "section", "article", "header", "footer"),
        *("blockquote", "pre"),
    )
)
_URL = re.compile(
    r"https?://[\w\-.~:/?#@!$&*+,;=%]+(?:\([\w\-.~:/?#@!$&*+,;=%]*\)[\w\-.~:/?#@!$&*+,;=%]*)*",
    re.I | re.A,
)
_TRAILING = ".,;:!?'\"»。，、）》】"
_WS = re.compile(r"\s+")
_BUTTON_STYLE = re.compile(
    r"background(?:-color)?\s*:|padding\s*:\s*[1-9]|border-radius\s*:\s*[1-9]|display\s*:\s*inline-block"
    r"|border-width\s*:\s*[1-9]",
    re.I,
)
_BUTTON_CLASS = re.compile(r"button|btn|cta", re.I)
_CELL_BUTTON = re.compile(r"background(?:-color)?\s*:|border-radius\s*:\s*[1-9]", re.I)

# URLs that are never the answer, by host or by path.
_NEVER_HOST = re.compile(
    r"(?:^|\.)(?:apps\.apple\.com|itunes\.apple\.com|play\.google\.com|schema\.org|w3\.org)$"
)
# Social networks: a "follow us" link in anyone's mail, never the answer unless its URL is
# one made for this person (the network's own verification mail: a token, an action path).
_SOCIAL_HOST = re.compile(
    r"(?:^|\.)(?:facebook\.com|fb\.com|twitter\.com|x\.com|instagram\.com|linkedin\.com"
    r"|youtube\.com|youtu\.be|tiktok\.com|pinterest\.[a-z.]+|t\.me|wa\.me|discord\.gg"
    r"|threads\.net|vk\.com|weibo\.com|line\.me|snapchat\.com|reddit\.com|medium\.com)$"
)
_NEVER_PATH = re.compile(
    r"unsubscri|opt[-_]?out|/optout|list-unsubscribe|preferences|email[-_]?settings|notification[-_]?settings"
    r"|manage[-_]?(?:subscription|notification|email)|/privacy|privacy[-_]policy|/terms|/legal|/imprint|/impressum"
    r"|/help(?:[/?#]|$)|/support(?:[/?#]|$)|/faq|/contact(?:-us)?(?:[/?#]|$)|view[-_]?in[-_]?browser|web[-_]?version|/webview"
    r"|\.(?:png|jpe?g|gif|svg|webp|ico|css|js)(?:[?#]|$)",
    re.I,
)
_URL_ACTION = re.compile(
    r"verif|confirm|activat|validat|magic|log[-_]?in|sign[-_]?in|signin|/auth|oauth|passwordless|reset|"
    r"passw|recover|token=|otp|callback|approv|authori[sz]|/verify|/v/|one[-_]?time|e?mail[-_]?verification"
    r"|email[-_]?login|session|/ack",
    re.I,
)
_URL_KIND = (
    ("reset", re.compile(r"reset|passw|recover", re.I)),
    ("approve", re.compile(r"approv|authori[sz]|allow", re.I)),
    (
        "sign_in",
        re.compile(r"magic|log[-_]?in|sign[-_]?in|signin|passwordless|session|callback", re.I),
    ),
    ("confirm", re.compile(r"verif|confirm|activat|validat", re.I)),
)
# A site's own pages (its sign-in page, the account page), not a link made for one person.
_PLAIN_PAGE = re.compile(
    r"^/(?:[a-z]{2}(?:[-_][a-z]{2})?/)?(?:[a-z]+[-_/])*(?:log[-_]?in|log[-_]?on|sign[-_]?in|signin"
    r"|session/new|sessions?|account|accounts|home|dashboard|settings|profile|my[-_]?account)/?$"
)
_TOKEN = re.compile(r"[A-Za-z0-9_\-.~%]{16,}")
_TRACKER = re.compile(
    r"ct\.sendgrid\.net|/ls/click|/wf/click|mandrillapp\.com/track|list-manage\.com/track|hubspotlinks\.com"
    r"|hubspotemail\.net|pstmrk\.it|/e/c/|mailchi\.mp|sparkpostmail\.com|mjt\.lu|sendibt\d|/ss/c/"
    r"|awstrack\.me|rs6\.net|cmail\d+\.com|createsend\d*\.com|exct\.net|/track/click|/c/[A-Za-z0-9_-]{24,}"
    r"|/CL0/|/L0/|safelinks\.protection\.outlook\.com|urldefense\.(?:com|proofpoint\.com)"
    r"|(?:www\.)?google\.com/url\?",
    re.I,
)


@dataclass(frozen=True, slots=True)
class Link:
    """The action link of a message and what it does (one of ``KINDS``)."""

    url: str
    kind: str


@dataclass(slots=True)
class _Candidate:
    url: str
    order: int
    label: str = (
        ""  # the link's own words: its anchor text, or the text before a bare URL on its line
    )
    before: str = ""  # the words just before it
    button: bool = False
    image_only: bool = False
    seen: int = 1
    shown: str | None = None  # the URL its text shows, when that is not its href (a tracked copy)
    twin: str | None = None  # a button's destination, shown by its tracked "paste this link" copy


def _role_of(word: str) -> str | None:
    """The role a word found by ``_ROLES`` plays: the first role with a pattern matching it."""
    role = _ROLE_OF.get(word, "")
    if role == "":
        role = next(
            (r for r, pats in _BY_ROLE.items() if any(p.fullmatch(word) for p in pats)), None
        )
        if len(_ROLE_OF) < MAX_ROLE_CACHE:
            _ROLE_OF[word] = role
    return role


def _words(text: str) -> list[tuple[int, str]]:
    """Where the listed words of ``text`` stand, and the role of each."""
    found = []
    for m in _ROLES.finditer(text.lower()):
        role = _role_of(m.group(0))
        if role is not None:
            found.append((m.start(), role))
    return found


def _roles(text: str) -> dict[str, int]:
    """Which roles the listed words of ``text`` play, with the position of the first of each."""
    found: dict[str, int] = {}
    if text:
        for at, role in _words(text):
            found.setdefault(role, at)
    return found


def _clean_url(url: str) -> str:
    url = url.strip()
    while url and url[-1] in _TRAILING:
        url = url[:-1]
    if url.endswith(")") and url.count("(") < url.count(")"):
        url = url[:-1]
    return url


def _host_and_rest(url: str) -> tuple[str, str]:
    rest = url.split("://", 1)[1] if "://" in url else url
    host, sep, tail = rest.partition("/")
    host = host.rsplit("@", 1)[-1].split(":", 1)[0].lower()
    return host, sep + tail


def _plain_page(rest: str) -> bool:
    """A site's home page, sign-in page or account page, with nothing made for one person in it:
    following it signs nobody in and confirms nothing."""
    return rest.strip("/") in ("", "#", "#/") or bool(_PLAIN_PAGE.match(rest.lower()))


def _static_page(rest: str) -> bool:
    """A path of plain words, no query, nothing random (``/my/password``, ``/verify-email``):
    a page that is the same for everyone, where an action link names someone."""
    path = rest.split("#", 1)[0]
    if "?" in path:
        return False
    segments = [p for p in path.split("/") if p]
    if not segments or any(
        len(p) >= 16 or not p.replace("-", "").replace("_", "").isalpha() for p in segments
    ):
        return False
    return len(segments) >= 2 or len(segments[0]) >= 6


def _never(url: str) -> bool:
    """Never the answer: other schemes, social networks, unsubscribe, help, images."""
    if not url.lower().startswith(("http://", "https://")) or len(url) > MAX_URL_CHARS:
        return True
    host, rest = _host_and_rest(url)
    if not host or _NEVER_HOST.search(host) or _NEVER_PATH.search(rest) or _plain_page(rest):
        return True
    return bool(_SOCIAL_HOST.search(host)) and not (_URL_ACTION.search(rest) and _has_token(rest))


class _Collector:
    """Candidates in order of first appearance, merged by URL."""

    def __init__(self) -> None:
        self.by_url: dict[str, _Candidate] = {}

    def add(self, url: str, label: str, before: str, button: bool, image_only: bool) -> None:
        if _never(url):
            return
        label = _WS.sub(" ", label).strip()
        shown_match = _URL.match(label)
        shown = _clean_url(shown_match.group(0)) if shown_match else None
        known = self.by_url.get(url)
        if known is None:
            if len(self.by_url) >= MAX_CANDIDATES:
                return
            cand = _Candidate(url, len(self.by_url), label, before, button, image_only)
            cand.shown = shown if shown != url else None
            self.by_url[url] = cand
            return
        if known.shown is None and shown != url:
            known.shown = shown
        known.seen += 1
        known.button = known.button or button
        if (
            label
            and not _looks_like_url(label)
            and (not known.label or _looks_like_url(known.label))
        ):
            known.label, known.before = label, before
        known.image_only = known.image_only and image_only


def _looks_like_url(text: str) -> bool:
    t = text.strip().lower()
    return t.startswith(("http://", "https://", "www.")) or (" " not in t and "/" in t and "." in t)


def _attrs(raw: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for m in _ATTR.finditer(raw):
        value = m.group(2) or ""
        if value[:1] in "\"'":
            value = value[1:-1]
        out.setdefault(m.group(1).lower(), unescape(value))
    return out


def _scan(html: str) -> Iterator[tuple[str, str, str, bool]]:
    """An HTML body as ("text", chunk, "", False) and ("tag", name, raw attributes, closing),
    in order, up to its MAX_HTML_TAGS-th tag; comments, CDATA, doctypes and raw-text
    elements (style, script) left out."""
    pos, end = 0, len(html)
    tags = 0
    last_gt = html.rfind(">")
    quoted_work = QUOTED_WORK  # what readings with quotes that fail may still look at
    while pos < end:
        lt = html.find("<", pos)
        if lt < 0 or lt > last_gt:  # no tag can start here or later
            yield "text", html[pos:], "", False
            return
        if lt > pos:
            yield "text", html[pos:lt], "", False
        if html[lt + 1 : lt + 2] in ("!", "?"):  # a comment, CDATA, a doctype
            for opener, closer in (("<!--", "-->"), ("<![CDATA[", "]]>"), ("<", ">")):
                if html.startswith(opener, lt):
                    at = html.find(closer, lt + len(opener))
                    pos = end if at < 0 else at + len(closer)
                    break
        else:
            m = _TAG.match(html, lt, min(end, lt + TAG_WINDOW)) if quoted_work > 0 else None
            if m is None:
                if quoted_work > 0:  # (a failed reading looks at most at its window)
                    quoted_work -= min(end, lt + TAG_WINDOW) - lt
                m = _LOOSE_TAG.match(html, lt)
            if m is None:  # a "<" that starts no tag is text
                yield "text", "<", "", False
                pos = lt + 1
                continue
            pos = m.end()
            name, closing = m.group(2).lower(), m.group(1) == "/"
            if not closing and name in _SKIP:
                close = re.compile(f"</{name}\\s*>", re.I).search(html, pos)
                pos = close.end() if close else end
                continue
            yield "tag", name, m.group(3), closing
            tags += 1
            if tags >= MAX_HTML_TAGS:
                return


def _tail(parts: list[str], upto: int, chars: int) -> str:
    """The last ``chars`` characters of ``parts[:upto]`` joined (read from the end)."""
    out: list[str] = []
    need = chars
    for piece in reversed(parts[:upto]):
        out.append(piece[-need:])
        need -= len(piece)
        if need <= 0:
            break
    return "".join(reversed(out))


def _html_candidates(html: str) -> tuple[_Collector, str, str]:
    """The links of an HTML body, its visible text (block elements as line breaks),
    and that text with the links' own words blanked (where bare URLs are sought)."""
    found = _Collector()
    parts: list[str] = []
    size = 0
    anchor: dict[str, str] | None = None
    anchor_start = anchor_part = 0
    anchor_alts: list[str] = []
    cell_button = False
    inside: list[tuple[int, int]] = []  # where the links' own words are in the text
    for kind, value, raw, closing in _scan(html):
        if kind == "text":
            piece = _WS.sub(" ", unescape(value))
            if piece.strip() or (parts and not parts[-1].endswith((" ", "\n"))):
                parts.append(piece)
                size += len(piece)
            continue
        name = value
        if name in _BLOCK:
            parts.append("\n")
            size += 1
            if name in ("td", "th"):
                attrs = {} if closing else _attrs(raw)
                cell_button = "bgcolor" in attrs or bool(
                    _CELL_BUTTON.search(attrs.get("style", ""))
                )
        if name == "a":
            if closing and anchor is not None:
                label = "".join(parts[anchor_part:])
                words = label.strip()
                before = _tail(parts, anchor_part, CONTEXT_CHARS)
                style, klass = anchor.get("style", ""), anchor.get("class", "")
                button = (
                    bool(_BUTTON_STYLE.search(style) or _BUTTON_CLASS.search(klass)) or cell_button
                )
                image_only = not words and bool(anchor_alts)
                if not words:
                    label = " ".join(anchor_alts)
                found.add(_clean_href(anchor.get("href", "")), label, before, button, image_only)
                inside.append((anchor_start, size))
                anchor = None
            elif not closing:
                anchor, anchor_alts = _attrs(raw), []
                anchor_start, anchor_part = size, len(parts)
        elif name == "img" and anchor is not None:
            anchor_alts.append(_attrs(raw).get("alt", "") or "image")
    text = "".join(parts)
    return found, text, _blank_spans(text, inside)


def _blank_spans(text: str, spans: list[tuple[int, int]]) -> str:
    """``text`` with the given spans (the links' own words) replaced by spaces."""
    pieces, at = [], 0
    for start, end in spans:
        pieces.append(text[at:start])
        pieces.append(" " * (end - start))
        at = end
    pieces.append(text[at:])
    return "".join(pieces)


def _clean_href(href: str) -> str:
    """An href as a browser follows it (entities are decoded already): no outer white
    space, no line breaks."""
    return href.strip().replace("\n", "").replace("\r", "").replace("\t", "")


def _text_candidates(text: str, found: _Collector) -> None:
    """Bare URLs of a text with the words before them on their line and on the line above."""
    for m in _URL.finditer(text):
        url = _clean_url(m.group(0))
        window = max(0, m.start() - CONTEXT_CHARS)
        line_start = max(text.rfind("\n", window, m.start()) + 1, window)
        label = text[line_start : m.start()].strip(" \t<[(:-–—>")
        before = text[max(0, line_start - CONTEXT_CHARS) : line_start]  # the lines above
        found.add(url, label, before, False, False)


def _kind_of(roles: dict[str, int]) -> str | None:
    actions = [(at, role) for role, at in roles.items() if role in ACTIONS]
    if not actions:
        return None
    if "reset" in roles:
        return "reset"
    if "approve" in roles:
        return "approve"
    return min(actions)[1]


def _url_kind(url: str) -> str | None:
    _, rest = _host_and_rest(url)
    for kind, pattern in _URL_KIND:
        if pattern.search(rest):
            return kind
    return None


def _score(cand: _Candidate, first: bool, subject_action: bool) -> tuple[float, str | None]:
    """A candidate's score and the kind of link its words say it is."""
    w = WEIGHTS
    label_roles = _roles(cand.label) if not _looks_like_url(cand.label) else {}
    before_roles = _roles(cand.before[-CONTEXT_CHARS:])
    score = w["subject_action"] if subject_action else 0.0
    kind = _kind_of(label_roles)
    if "not_action" in label_roles:
        score += w["anchor_not_action"]
    if kind:
        score += w["anchor_action"]
    before_kind = _kind_of(before_roles)
    if before_kind:
        score += w["context_action"]
        kind = kind or before_kind
    if "done" in before_roles and not before_kind:
        score += w["context_done"]
    if "click" in before_roles or "click" in label_roles:
        score += w["context_click"]
    if "secret" in before_roles or "secret" in label_roles:
        score += w["context_secret"]
    target = _where(cand)
    if target is not None:
        rest = _host_and_rest(target)[1]
        if _URL_ACTION.search(rest):
            score += w["url_action"]
            kind = kind or _url_kind(target)
        if _has_token(rest):
            score += w["url_token"]
        if _plain_page(rest):
            score += w["plain_page"]  # behind a tracked redirect: the page it leads to
        elif _static_page(rest):
            score += w["static_page"]
    if cand.button:
        score += w["button"]
    if cand.seen > 1:
        score += w["repeated"]
    if first:
        score += w["first"]
    if cand.image_only and not kind:
        score += w["image_only"]
    return score, kind


def _message_kind(roles: dict[str, int]) -> str | None:
    return _kind_of(roles)


def extract_link(*, channel: str, subject: str = "", text: str = "", html: str = "") -> Link | None:
    """The action link of this message (sign in, confirm, approve, reset), or None.

    ``channel`` is ``"sms"`` or ``"email"``; an SMS has only ``text``. For an
    e-mail with an HTML part the links of the HTML are read (they are what a
    person clicks), else the bare URLs of the text part.
    """
    del channel  # the same reading serves both channels
    subject = visible_text(subject[:MAX_SUBJECT_CHARS]).replace("\n", " ").strip()
    found = _Collector()
    body = ""
    if html:
        found, body, outside = _html_candidates(html[:MAX_HTML_CHARS])
        _text_candidates(outside, found)
    if not found.by_url:
        body = text[:MAX_TEXT_CHARS]
        _text_candidates(body, found)
    if not found.by_url:
        return None
    return _decide(list(found.by_url.values()), subject, visible_text(body))


def _decide(cands: list[_Candidate], subject: str, body: str) -> Link | None:
    message_roles = _roles(subject)
    body_words = _words(body) if body else []
    body_roles: dict[str, int] = {}
    for at, role in body_words:
        body_roles.setdefault(role, at)
    said = any(r in ACTIONS for r in message_roles) or any(r in ACTIONS for r in body_roles)
    commerce = _commerce([role for _, role in _words(subject)] + [role for _, role in body_words])
    scored = []
    first = True
    subject_action = any(r in ACTIONS for r in message_roles)
    for cand in _merge_twins(cands):
        score, kind = _score(cand, first, subject_action)
        if score > 0:
            first = False
        scored.append((score + commerce, -cand.order, cand, kind))
    scored.sort(key=lambda s: (s[0], s[1]), reverse=True)
    best_score, _, best, kind = scored[0]
    runner_up = scored[1][0] if len(scored) > 1 else float("-inf")
    says = _url_says_action(_where(best))
    if runner_up <= 0 and (says or _names_action(best.label)):
        best_score += WEIGHTS["alone"]
    if best_score < THRESHOLD or best_score - runner_up < MARGIN:
        return None
    if not said and not says:
        return None  # no action named in words the lexicon knows: only the URL can say it is one
    kind = kind or _message_kind(message_roles) or _message_kind(body_roles) or "confirm"
    return Link(best.url, kind)


def _merge_twins(cands: list[_Candidate]) -> list[_Candidate]:
    """Candidates, each tracked "paste this link" copy folded into the button before it.

    Mail services give every link its own tracked URL, so a button and the
    copy of its link below it ("If the button does not work, paste this URL:
    https://example.com/verify?token=...") are two URLs; the copy's text shows
    where both lead. That destination becomes the button's evidence, and the
    button, which a person clicks, the answer.
    """
    out: list[_Candidate] = []
    for cand in cands:
        if (
            cand.shown is not None
            and _looks_like_url(cand.label)  # a copy: its own words are the URL
            and _target(cand.url) is None
            and _url_says_action(cand.shown)
        ):
            button = next((b for b in reversed(out) if b.button and b.shown is None), None)
            if (
                button is not None
                and button.twin is None
                and _target(button.url) is None
                and "not_action" not in _roles(button.label)
            ):
                button.twin = cand.shown
                continue
        out.append(cand)
    return out


def _where(cand: _Candidate) -> str | None:
    """The URL that says where a candidate leads: its own, the one inside its tracked URL,
    its tracked copy's, or the one its text shows."""
    return _target(cand.url) or cand.twin or cand.shown


def _target(url: str) -> str | None:
    """The URL whose path says where a link leads: itself, or behind a click-tracking redirect
    the URL written into it (``.../CL0/https:%2F%2Fexample.com%2Fverify...``), else None."""
    if not _TRACKER.search(url):
        return url
    rest = unquote(_host_and_rest(url)[1])
    at = max(rest.find("https://"), rest.find("http://"))
    return rest[at:] if at >= 0 else None


def _names_action(label: str) -> bool:
    """A link's own words name an action ("Sign in", "Verify email")."""
    return not _looks_like_url(label) and _kind_of(_roles(label)) is not None


def _url_says_action(url: str | None) -> bool:
    """A URL (behind tracking: the one written into it) naming an action, with a random token."""
    target = _target(url) if url is not None else None
    if target is None:
        return False
    rest = _host_and_rest(target)[1]
    return bool(_URL_ACTION.search(rest) and _has_token(rest))


def _has_token(rest: str) -> bool:
    """A long random-looking run (letters and digits) in a URL's path or query."""
    for m in _TOKEN.finditer(rest):
        run = m.group(0)
        if any(c.isdigit() for c in run) and any(c.isalpha() for c in run):
            return True
    return False


def _commerce(roles: list[str]) -> float:
    """The commerce weight of a message: many order, receipt or offer words and few action words."""
    commerce = actions = 0
    for role in roles:
        if role == "commerce":
            commerce += 1
        elif role in ACTIONS:
            actions += 1
    return WEIGHTS["commerce_message"] if commerce >= 3 and commerce > actions else 0.0
