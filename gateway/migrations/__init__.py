"""Alembic migrations, run by ``otpgate serve`` (and ``otpgate migrate``) on start.

Each revision spells out its own DDL rather than reading the models, so an old
database is upgraded exactly as it was created back then.
"""
