"""Poll an otpgate totp_url with Skyvern's own code, as a Skyvern run does at a 2FA prompt.

Started by tests/test_skyvern.py with the Python of an environment holding the
``skyvern`` package.  Argument: a JSON object with ``url``, ``api_key`` and the
run's ``task_id``/``workflow_run_id``.  It calls Skyvern's
``_get_otp_value_from_url`` (the body of each turn of ``poll_otp_value``: sign,
post, read the answer) and prints what Skyvern makes of the answer.
"""

import asyncio
import json
import sys

from skyvern.services.otp_service import WebhookOTPVerificationContext, _get_otp_value_from_url


async def main(args: dict[str, str]) -> None:
    context = WebhookOTPVerificationContext()
    value = await _get_otp_value_from_url(
        "o_otpgate_test",
        args["url"],
        args["api_key"],
        task_id=args.get("task_id"),
        workflow_run_id=args.get("workflow_run_id"),
        context=context,
    )
    print(
        json.dumps(
            {
                "value": value.value if value else None,
                "type": value.get_otp_type().value if value else None,
                "statuses": {str(k): v for k, v in context.statuses.items()},
                "conformed": context.contract_satisfied,
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))
