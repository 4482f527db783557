"""Poll an otpgate totp_url with Skyvern's own code, as a Skyvern run does at a 2FA prompt.

Started by tests/test_skyvern.py with the Python of an environment holding the
``skyvern`` package, with the ``totp_url`` and the Skyvern API key as arguments.
For each line on standard input (a run's ``task_id``/``workflow_run_id`` as
JSON) it calls Skyvern's
``_get_otp_value_from_url`` (the body of each turn of ``poll_otp_value``: sign,
post, read the answer) on the app ``start_forge_app`` builds, as Skyvern's
server does, and prints a line: what Skyvern makes of the answer.
"""

import asyncio
import json
import sys

from skyvern.forge.forge_app_initializer import start_forge_app
from skyvern.services.otp_service import WebhookOTPVerificationContext, _get_otp_value_from_url


async def main(url: str, api_key: str) -> None:
    start_forge_app()  # as Skyvern's server does at start: its HTTP client lives there
    loop = asyncio.get_running_loop()
    while line := await loop.run_in_executor(None, sys.stdin.readline):
        run = json.loads(line)
        context = WebhookOTPVerificationContext()
        value = await _get_otp_value_from_url(
            "o_otpgate_test",
            url,
            api_key,
            task_id=run.get("task_id"),
            workflow_run_id=run.get("workflow_run_id"),
            context=context,
        )
        answer = {
            "value": value.value if value else None,
            "type": value.get_otp_type().value if value else None,
            "statuses": {str(k): v for k, v in context.statuses.items()},
            "conformed": context.contract_satisfied,
        }
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
