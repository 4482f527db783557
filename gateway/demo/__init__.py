"""``otpgate demo``: the gateway, a sample site with 2FA accounts of each kind, and an agent.

``site`` is the sample site (aiohttp, server-rendered forms), ``agent`` the
demo agent (the SDK and headless Chromium), ``person`` the person who gives
a code or approves a push when ``--auto`` plays them, ``runner`` what starts it all.
"""
