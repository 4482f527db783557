"""``otpgate demo``: the gateway, a sample site with four 2FA accounts, and an agent.

``site`` is the sample site (aiohttp, server-rendered forms), ``agent`` the
demo agent (the SDK and headless Chromium), ``person`` the person who gives
the fourth code when ``--auto`` plays them, ``runner`` what starts it all.
"""
