"""JSON replies: every JSON body the gateway answers with, errors included.

A body is one line of JSON ending in a newline, as text tools (``curl``, a
shell's prompt, line-oriented logs) expect.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web
from aiohttp.typedefs import LooseHeaders


def _dumps(data: Any) -> str:
    return json.dumps(data) + "\n"


def json_response(
    data: Any, *, status: int = 200, headers: LooseHeaders | None = None
) -> web.Response:
    """*data* as an ``application/json`` body ending in a newline."""
    return web.json_response(data, status=status, headers=headers, dumps=_dumps)
