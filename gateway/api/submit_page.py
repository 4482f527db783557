"""The HTML a person sees at a ``submit_url``: one small form, no JavaScript.

Everything shown is escaped with ``html.escape``.  Every page goes out with
strict headers: a Content-Security-Policy that allows nothing but its own
inline style (by nonce) and form posts to its own origin, no framing, no
caching.

The referrer policy is ``same-origin`` rather than ``no-referrer``: the page
loads nothing and links nowhere, so the token in its URL never reaches
another origin either way, but under ``no-referrer`` browsers send
``Origin: null`` with the form's POST, which would defeat the Origin check
that refuses cross-site posts (see ``api.interactions``).
"""

from __future__ import annotations

import secrets
from html import escape

from aiohttp import web

from ..services.interactions import MAX_CODE, SubmitPage

_STYLE = """
body{font:18px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0 auto;
padding:1.25rem;max-width:28rem;color:#111;background:#fff}
h1{font-size:1.35rem;margin:.5rem 0 1rem}
.prompt{white-space:pre-wrap;overflow-wrap:anywhere;background:#f2f3f5;padding:.75rem;
border-radius:.5rem}
label{display:block;margin:1rem 0 .35rem;font-weight:600}
input{font-size:2rem;width:100%;box-sizing:border-box;padding:.5rem;text-align:center;
letter-spacing:.15em;border:2px solid #555;border-radius:.5rem}
button{font-size:1.3rem;width:100%;padding:.85rem;margin-top:1rem;border:0;border-radius:.5rem;
background:#1a56db;color:#fff}
.error{color:#a40000;font-weight:600}
.match{font-size:3.5rem;font-weight:700;letter-spacing:.12em;text-align:center;margin:.5rem 0;
font-variant-numeric:tabular-nums}
.decide{display:flex;gap:.75rem}.decide button{flex:1}
button.deny{background:#9b1c1c}
.muted{color:#555}
""".strip()


def _headers(nonce: str) -> dict[str, str]:
    return {
        "Content-Security-Policy": (
            f"default-src 'none'; style-src 'nonce-{nonce}'; form-action 'self'; "
            "frame-ancestors 'none'; base-uri 'none'"
        ),
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "same-origin",
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
    }


def _document(title: str, body: str, nonce: str) -> str:
    return (
        "<!doctype html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="robots" content="noindex">\n'
        f"<title>{escape(title)}</title>\n"
        f'<style nonce="{nonce}">{_STYLE}</style>\n'
        f"</head>\n<body>\n<main>\n{body}\n</main>\n</body>\n</html>\n"
    )


def _respond(status: int, title: str, body: str) -> web.Response:
    nonce = secrets.token_urlsafe(16)
    return web.Response(
        status=status,
        text=_document(title, body, nonce),
        content_type="text/html",
        charset="utf-8",
        headers=_headers(nonce),
    )


def time_left(seconds: int) -> str:
    """``4 min 05 s``, ``42 s``."""
    minutes, secs = divmod(max(0, seconds), 60)
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


def form(page: SubmitPage, *, error: str | None = None, status: int = 200) -> web.Response:
    """The form: the credential's name, the agent's prompt, the time left, one input."""
    name = escape(page.credential_name)
    parts = [f'<h1>Code for <span id="credential">{name}</span></h1>']
    if page.prompt:
        parts.append(f'<p class="prompt" id="prompt">{escape(page.prompt)}</p>')
    parts.append(
        f'<p id="time-left" class="muted">Answer within {time_left(page.seconds_left)}.</p>'
    )
    if error:
        tries = page.attempts_left
        parts.append(
            f'<p class="error" id="error" role="alert">{escape(error[:1].upper() + error[1:])} '
            f"({tries} {'try' if tries == 1 else 'tries'} left)</p>"
        )
    parts.append(
        '<form method="post">\n'
        '<label for="code">Code</label>\n'
        f'<input id="code" name="code" type="text" required maxlength="{MAX_CODE}" '
        'inputmode="numeric" autocomplete="one-time-code" autocapitalize="off" '
        'autocorrect="off" spellcheck="false" autofocus>\n'
        '<button type="submit">Send code</button>\n'
        "</form>"
    )
    return _respond(status, f"Code for {page.credential_name}", "\n".join(parts))


def approval(page: SubmitPage) -> web.Response:
    """An approval: the prompt, the number to match shown large, Approved and Denied."""
    name = escape(page.credential_name)
    parts = [f'<h1>Sign-in to <span id="credential">{name}</span></h1>']
    if page.prompt:
        parts.append(f'<p class="prompt" id="prompt">{escape(page.prompt)}</p>')
    if page.match:
        parts.append(
            "<p>Approve only if the sign-in screen shows this number:</p>\n"
            f'<p class="match" id="match" aria-label="Number to match">{escape(page.match)}</p>'
        )
    parts.append(
        f'<p id="time-left" class="muted">Answer within {time_left(page.seconds_left)}.</p>'
    )
    parts.append(
        '<form method="post" class="decide">\n'
        '<button type="submit" name="decision" value="approved">Approved</button>\n'
        '<button type="submit" name="decision" value="denied" class="deny">Denied</button>\n'
        "</form>"
    )
    return _respond(200, f"Sign-in to {page.credential_name}", "\n".join(parts))


def decided(decision: str) -> web.Response:
    if decision == "approved":
        return message(
            200, "Approved", "Thank you: the sign-in was approved. You can close this page."
        )
    return message(200, "Denied", "Thank you: the sign-in was denied. You can close this page.")


def done() -> web.Response:
    return message(200, "Code sent", "Thank you: the code was passed on. You can close this page.")


#: What a person reads for each refusal: a title and one sentence.
_REFUSALS = {
    400: ("That did not work", "The form was not sent correctly; go back and try again."),
    403: ("Not allowed", "This form can only be sent from its own page."),
    404: ("This link is not valid", "Check that you opened the whole link you were sent."),
    409: ("Already answered", "This request was already answered; nothing more to do."),
    410: ("This request has expired", "It is too late to answer it; ask for a new link."),
    413: ("Too long", "That is far too long to be a code."),
    429: ("Too many tries", "This request takes no more answers."),
}


def refusal(status: int, detail: str | None = None) -> web.Response:
    """A clear error page for *status*, with the gateway's own wording of the reason."""
    title, text = _REFUSALS.get(status, ("That did not work", "Something went wrong."))
    if detail and status not in (404, 409, 410):
        text = f"{text} ({detail})"
    return message(status, title, text)


def message(status: int, title: str, text: str) -> web.Response:
    body = f'<h1 id="title">{escape(title)}</h1>\n<p id="message">{escape(text)}</p>'
    return _respond(status, title, body)
