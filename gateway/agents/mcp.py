"""``otpgate mcp``: the gateway's logins as Model Context Protocol tools.

    OTPGATE_URL=http://127.0.0.1:8080 OTPGATE_API_KEY=<an agent key> otpgate mcp
    otpgate mcp --http 127.0.0.1:8765        # streamable HTTP at http://127.0.0.1:8765/mcp

Built on the official ``mcp`` package (``pip install 'otpgate[mcp]'``) and
the SDK.  Tools: ``list_credentials``, ``start_login``, ``wait_for_code``,
``wait_for_link``, ``reject_code``, ``finish_login``, ``ask_person`` and
``wait_for_person``.

What a tool returns goes into the language model's context, and from there
into transcripts, provider logs and whatever the model writes next.  So the
two tools that would return a secret, ``wait_for_code`` (a one-time code)
and ``wait_for_link`` (a sign-in link, which signs in whoever opens it),
refuse with a tool error unless the server runs with ``OTPGATE_MCP_REVEAL=1``;
they refuse before asking the gateway, so nothing is used up by a refusal.
Every other tool returns ids, names, statuses and times only.  A browser
integration that types the code itself (``gateway.agents.browser_use``, the
SDK's ``fill_code``) keeps it out of the context altogether.

``ask_person`` returns the interaction's ``submit_url`` on purpose: in a chat
the person the model talks to is the one who answers, and the model relays
the link.  The link lets whoever has it answer that one request; it is not a
code nor a way into the account.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, Literal

from mcp.server.fastmcp import FastMCP
from mcp.server.fastmcp.exceptions import ToolError

from gateway.client import AsyncClient, CodeTimeout, LinkTimeout, OtpgateClientError

DEFAULT_URL = "http://127.0.0.1:8080"

#: Said by the two tools that refuse, so the model (and its operator) know why and what to do.
REFUSAL = (
    "{tool} is off: it would put a {what} into the model's context (and so into "
    "transcripts and logs). Let a browser integration type it instead (otpgate's "
    "Browser Use actions, or the SDK's fill_code/open_link), or restart the MCP "
    "server with OTPGATE_MCP_REVEAL=1 to allow it."
)

INSTRUCTIONS = """\
otpgate holds the accounts' two-factor codes and sign-in links. To sign in:
list_credentials, start_login (the account is yours until finish_login),
make the site send its code or link, wait_for_code or wait_for_link, and
finish_login with the outcome. reject_code when the site refused a code:
the next one is newer. ask_person asks a person for a code or to approve a
push prompt; give them its submit_url."""


def _when(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _failure(exc: OtpgateClientError) -> ToolError:
    """The SDK's errors name a status, a code and the gateway's text: never a secret."""
    return ToolError(str(exc))


def build_server(
    client: AsyncClient,
    *,
    reveal: bool,
    host: str = "127.0.0.1",
    port: int = 8000,
) -> FastMCP:
    """The MCP server whose tools call the gateway through ``client`` (closed when it stops)."""

    @asynccontextmanager
    async def lifespan(_: FastMCP) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await client.close()

    server = FastMCP(
        "otpgate",
        instructions=INSTRUCTIONS,
        host=host,
        port=port,
        lifespan=lifespan,
    )

    @server.tool()
    async def list_credentials() -> dict[str, Any]:
        """The accounts this key may sign in to: ids, names, usernames and their factors."""
        try:
            found = await client.credentials()
        except OtpgateClientError as exc:
            raise _failure(exc) from None
        return {
            "credentials": [
                {
                    "id": c.id,
                    "name": c.name,
                    "username": c.username,
                    "inbox": c.inbox,
                    "phone_number": c.phone_number,
                    "has_password": c.has_password,
                    "authenticator": c.authenticator.kind if c.authenticator else None,
                }
                for c in found
            ]
        }

    @server.tool()
    async def start_login(credential_id: str, ttl: int = 300, wait: float = 0) -> dict[str, Any]:
        """Open a login to the account before making the site send a code or link.

        Only what arrives after this is handed to the login, and no other agent
        gets it. ttl: seconds until the gateway ends the login as failed (1-900).
        wait: seconds to queue behind another agent's open login.
        """
        try:
            login = await client.open_login(credential_id, ttl=ttl, wait=wait)
        except OtpgateClientError as exc:
            raise _failure(exc) from None
        return {
            "login_id": login.id,
            "credential_id": login.credential_id,
            "status": login.status,
            "expires_at": _when(login.expires_at),
        }

    @server.tool()
    async def wait_for_code(login_id: str, wait: float = 60) -> dict[str, Any]:
        """The login's one-time code (email, text, authenticator or a person), waiting up to wait s.

        Handed out once. Refused unless the server allows codes into the context.
        """
        if not reveal:
            raise ToolError(REFUSAL.format(tool="wait_for_code", what="one-time code"))
        try:
            login = await client.get_login(login_id)
            code = await login.code(wait=wait)
        except CodeTimeout:
            return {"login_id": login_id, "outcome": "no_code"}
        except OtpgateClientError as exc:
            raise _failure(exc) from None
        return {
            "login_id": login_id,
            "outcome": "code",
            "code": code.value,
            "source": code.source,
            "expires_at": _when(code.expires_at),
        }

    @server.tool()
    async def wait_for_link(login_id: str, wait: float = 60) -> dict[str, Any]:
        """The login's sign-in or confirmation link, waiting up to wait s. Handed out once.

        Refused unless the server allows links into the context.
        """
        if not reveal:
            raise ToolError(REFUSAL.format(tool="wait_for_link", what="sign-in link"))
        try:
            login = await client.get_login(login_id)
            link = await login.link(wait=wait)
        except LinkTimeout:
            return {"login_id": login_id, "outcome": "no_link"}
        except OtpgateClientError as exc:
            raise _failure(exc) from None
        return {"login_id": login_id, "outcome": "link", "url": link.url, "kind": link.kind}

    @server.tool()
    async def reject_code(login_id: str) -> dict[str, Any]:
        """The site refused the code or link handed out last: the next one will be newer."""
        try:
            login = await client.get_login(login_id)
            await login.reject()
        except OtpgateClientError as exc:
            raise _failure(exc) from None
        return {"login_id": login_id, "rejected": True}

    @server.tool()
    async def finish_login(
        login_id: str, outcome: Literal["succeeded", "failed"]
    ) -> dict[str, Any]:
        """End the login with how it went; the account is free for the next one."""
        try:
            login = await client.get_login(login_id)
            await login.finish(outcome)
        except OtpgateClientError as exc:
            raise _failure(exc) from None
        return {"login_id": login_id, "status": login.status}

    @server.tool()
    async def ask_person(
        credential_id: str,
        kind: Literal["code", "approval"] = "code",
        prompt: str | None = None,
        match: str | None = None,
    ) -> dict[str, Any]:
        """Ask a person for the account's code, or (kind="approval") to approve a sign-in.

        Give the person submit_url (they answer there; the tenant's webhooks get it
        too). match: the number the site shows, for the person to compare. A
        person's code reaches the open login: take it with wait_for_code. Follow
        the answer with wait_for_person.
        """
        try:
            asked = await client.create_interaction(
                credential_id, prompt=prompt, kind=kind, match=match
            )
        except OtpgateClientError as exc:
            raise _failure(exc) from None
        return {
            "interaction_id": asked.id,
            "kind": asked.kind,
            "status": asked.status,
            "expires_at": _when(asked.expires_at),
            "submit_url": asked.submit_url,
        }

    @server.tool()
    async def wait_for_person(interaction_id: str, wait: float = 120) -> dict[str, Any]:
        """How a request to a person stands, waiting up to wait s for it to leave pending.

        status: pending, answered (a code was given), approved, denied or expired.
        """
        try:
            asked = await client.interaction(interaction_id, wait=wait)
        except OtpgateClientError as exc:
            raise _failure(exc) from None
        return {"interaction_id": asked.id, "kind": asked.kind, "status": asked.status}

    return server


def parse_listen(value: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:PORT`` for IPv6) as a host and a port number."""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"--http takes HOST:PORT, such as 127.0.0.1:8765 (got {value!r})")
    return host.removeprefix("[").removesuffix("]"), int(port)


def from_env(environ: dict[str, str] | None = None) -> tuple[str, str, bool]:
    """``OTPGATE_URL``, ``OTPGATE_API_KEY`` and ``OTPGATE_MCP_REVEAL``, checked."""
    env = dict(os.environ if environ is None else environ)
    key = env.get("OTPGATE_API_KEY", "").strip()
    if not key:
        raise ValueError("OTPGATE_API_KEY must hold the gateway API key (an agent-role key)")
    reveal = env.get("OTPGATE_MCP_REVEAL", "0").strip()
    if reveal not in ("0", "1"):
        raise ValueError("OTPGATE_MCP_REVEAL is 0 (the default) or 1")
    return env.get("OTPGATE_URL", DEFAULT_URL).strip() or DEFAULT_URL, key, reveal == "1"


def run(http: str | None) -> None:
    """Serve over stdio, or streamable HTTP at ``http`` (``HOST:PORT``), until stopped."""
    url, key, reveal = from_env()
    host, port = parse_listen(http) if http else ("127.0.0.1", 8000)
    server = build_server(AsyncClient(url, key), reveal=reveal, host=host, port=port)
    server.run("streamable-http" if http else "stdio")
