"""The ``otpgate`` command line.

    otpgate serve                 run the gateway (HTTP API, SMTP listener, workers)
    otpgate keys rotate           add a master key version and rewrap every data key
    otpgate keys retire N         remove master key version N (refused while in use)
    otpgate keys list             versions in the ring and how many data keys each wraps
    otpgate migrate               bring the database schema up to date and exit
    otpgate status [--json]       replicas seen lately, and the work waiting (counts only)
    otpgate extract [--explain]   JSON Lines in, one {"id", "code", "link"} line out per input
    otpgate demo [--auto]         a gateway, a sample site with each kind of 2FA, and an agent
    otpgate mcp [--http H:P]      a Model Context Protocol server for agents (the mcp extra)

Configuration comes from the ``OTPGATE_*`` environment variables (see README).
A configuration problem ends the command with one line on standard error and
exit status 2.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from . import __version__
from .errors import ConfigError, OtpgateError
from .settings import Settings, unknown_variables

_EXTRACT_HELP = """\
Read JSON Lines on standard input and write one JSON line per input line, in
order, with the extractor the gateway uses. Blank lines are skipped.

input, one object a line:
  id        string or number (required), copied to the answer
  channel   "sms" or "email" (required)
  subject   string (optional): the mail's subject
  text      string (optional): the plain body, or the text message
  html      string (optional): the HTML body

output, one object a line:
  {"id": ..., "code": "<code>" | null, "link": "<url>" | null}
  a line that cannot be read gives {"id", "code": null, "link": null,
  "error": "<reason>"}, with the input's id when it had a usable one (else
  null); the reason never repeats the content.
  with --explain each answer also has "outcome" (code, none or ambiguous),
  "reason" and "candidates" (value, score, link), best first.

example:
  echo '{"id": 1, "channel": "sms", "text": "Your code is 482913"}' | otpgate extract
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="otpgate",
        description="A self-hosted gateway that lets browser agents get through 2FA logins.",
    )
    parser.add_argument("--version", action="version", version=f"otpgate {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser(
        "serve",
        help="run the gateway",
        description="Run the gateway: the HTTP API, the SMTP listener and the workers.",
        epilog=_main_settings(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    keys = sub.add_parser("keys", help="manage the master key ring")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    rotate = keys_sub.add_parser(
        "rotate", help="add a master key version and rewrap every data key"
    )
    rotate.add_argument(
        "--rewrap-only",
        action="store_true",
        help="add no version; rewrap whatever is not under the active one yet",
    )
    retire = keys_sub.add_parser("retire", help="remove a master key version no longer in use")
    retire.add_argument("version", type=int)
    keys_sub.add_parser("list", help="show versions and how many data keys each wraps")
    sub.add_parser("migrate", help="bring the database schema up to date")
    status = sub.add_parser(
        "status", help="replicas seen lately and the work waiting (counts only)"
    )
    status.add_argument("--json", action="store_true", help="one JSON object")
    extract = sub.add_parser(
        "extract",
        help="extract codes and action links from JSON Lines on standard input",
        description=_EXTRACT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    extract.add_argument(
        "--explain",
        action="store_true",
        help="also print each message's outcome, the reason and its candidates with their scores",
    )
    audit = sub.add_parser("audit", help="check or export the audit trail")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True, metavar="ACTION")
    verify = audit_sub.add_parser(
        "verify", help="recompute every tenant's hash chain; exit 1 at the first broken seq"
    )
    verify.add_argument("--tenant", help="only this tenant's chain")
    export = audit_sub.add_parser("export", help="every event as JSON Lines on standard output")
    export.add_argument("--tenant", help="only this tenant's events")
    demo = sub.add_parser(
        "demo",
        help="run a gateway, a sample site with each kind of 2FA, and an agent that logs in",
    )
    demo.add_argument(
        "--auto",
        action="store_true",
        help="a second browser page plays the person who gives a code and approves a push",
    )
    demo.add_argument(
        "--chromium",
        type=Path,
        default=Path("/usr/bin/chromium"),
        help="the Chromium the agent drives (default: /usr/bin/chromium)",
    )
    mcp = sub.add_parser(
        "mcp",
        help="serve the gateway's logins as Model Context Protocol tools (stdio by default)",
        description="Talks to the gateway at OTPGATE_URL (default http://127.0.0.1:8080) with "
        "the key in OTPGATE_API_KEY. Codes and links stay out of the model's context unless "
        "OTPGATE_MCP_REVEAL=1.",
    )
    mcp.add_argument(
        "--http",
        metavar="HOST:PORT",
        help="serve streamable HTTP at http://HOST:PORT/mcp instead of stdio",
    )
    return parser


#: The settings ``otpgate serve --help`` lists (README has them all).
_MAIN_SETTINGS = (
    "OTPGATE_DATA_DIR",
    "OTPGATE_DATABASE_URL",
    "OTPGATE_HTTP",
    "OTPGATE_SMTP",
    "OTPGATE_INBOX_DOMAIN",
    "OTPGATE_PUBLIC_URL",
    "OTPGATE_ADMIN_KEY",
    "OTPGATE_TWILIO_AUTH_TOKEN",
    "OTPGATE_LOG_LEVEL",
)


def _main_settings() -> str:
    """The main settings with their defaults and help, from their declarations."""
    from .settings import SETTINGS

    by_name = {s.name: s for s in SETTINGS}
    lines = ["main settings (environment variables; README lists every one):"]
    for name in _MAIN_SETTINGS:
        spec = by_name[name]
        lines.append(f"  {name}  (default {spec.shown.strip('`')})")
        lines.append(f"      {spec.help.replace('`', '')}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "extract":
            from .extraction.extractor import run_jsonl

            return run_jsonl(sys.stdin, sys.stdout, explain=args.explain)
        if args.command == "demo":
            # Its own gateway and settings: the caller's OTPGATE_* variables are not read.
            from .demo.runner import run_cli

            return run_cli(auto=args.auto, chromium=args.chromium)
        if args.command == "mcp":
            # A client of a gateway, configured by its own variables (see gateway.agents.mcp).
            return _mcp(args.http)
        settings = Settings.from_env()
        from .logs import configure

        configure(settings.log_format, settings.log_level)
        for name in unknown_variables(os.environ):
            print(f"otpgate: warning: {name} is not a known setting", file=sys.stderr)
        if args.command == "serve":
            from .app import run

            os.umask(0o077)  # the database and key files are the gateway's alone
            asyncio.run(run(settings))
        elif args.command == "migrate":
            asyncio.run(_migrate(settings))
        elif args.command == "status":
            asyncio.run(_status(settings, as_json=args.json))
        elif args.command == "keys":
            asyncio.run(_keys(settings, args))
        elif args.command == "audit":
            return asyncio.run(_audit(settings, args))
    except ConfigError as exc:
        print(f"otpgate: {exc}", file=sys.stderr)
        return 2
    except OtpgateError as exc:
        print(f"otpgate: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


def _mcp(http: str | None) -> int:
    try:
        from .agents import mcp
    except ImportError as exc:
        print(f"otpgate: {exc}; install it with: pip install 'otpgate[mcp]'", file=sys.stderr)
        return 2
    try:
        mcp.run(http)
    except ValueError as exc:
        print(f"otpgate: {exc}", file=sys.stderr)
        return 2
    return 0


async def _migrate(settings: Settings) -> None:
    from .app import opened_store

    async with opened_store(settings) as db:
        print(f"otpgate: database at revision {await db.revision()}")


async def _status(settings: Settings, *, as_json: bool) -> None:
    import json
    import time

    from .app import opened_store
    from .services.replicas import status

    async with opened_store(settings, migrate=False) as db:
        report = await status(db, now=time.time())
    if as_json:
        print(json.dumps(report, indent=2))
        return
    print(f"replicas seen in the last {report['window_seconds']} s: {len(report['replicas'])}")
    for r in report["replicas"]:
        state = "draining" if r["draining"] else "serving"
        print(
            f"  {r['hostname']} pid {r['pid']}: {state}, up {r['up_seconds']} s, "
            f"last seen {r['seen_seconds_ago']} s ago"
        )
    for name, count in report["waiting"].items():
        print(f"{name.replace('_', ' ')}: {count}")


async def _keys(settings: Settings, args: argparse.Namespace) -> None:
    from .app import opened_store
    from .services import keys
    from .vault import KeyRing

    ring = KeyRing.load(settings.master_key_file)
    async with opened_store(settings) as db:
        if args.keys_command == "rotate":
            result = await keys.rotate(db, ring, add_version=not args.rewrap_only)
            print(
                f"otpgate: master key version {result.version} is active; "
                f"rewrapped {result.rewrapped} data key(s)"
            )
        elif args.keys_command == "retire":
            await keys.retire(db, ring, args.version)
            print(f"otpgate: retired master key version {args.version}")
        else:
            usage = await keys.usage(db)
            for version in ring.versions:
                active = " (active)" if version == ring.active_version else ""
                print(f"version {version}{active}: wraps {usage.get(version, 0)} data key(s)")


async def _audit(settings: Settings, args: argparse.Namespace) -> int:
    import json

    from .app import opened_store
    from .services.audit import AuditTrail

    async with opened_store(settings, migrate=False) as db:
        trail = AuditTrail(db)
        if args.audit_command == "export":
            async for event in trail.export(args.tenant):
                sys.stdout.write(json.dumps(event, ensure_ascii=False) + "\n")
            return 0
        result = await trail.verify(args.tenant)
    for broken in result.broken:
        print(
            f"otpgate: tenant {broken.tenant_id}: the chain breaks at seq {broken.seq}: "
            f"{broken.reason}",
            file=sys.stderr,
        )
    if result.broken:
        return 1
    print(f"otpgate: {result.tenants} chain(s), {result.events} event(s): intact")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
