"""``python -m gateway``: the same as the ``otpgate`` command."""

from .cli import main

raise SystemExit(main())
