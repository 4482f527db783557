"""otpgate: a self-hosted gateway that lets browser agents get through two-factor logins."""

__version__ = "0.1.0"
