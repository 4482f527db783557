"""Persistence: the schema, the database handle and the queries.

The store answers questions and records facts; it never sends events or talks
to the network.  Services call it; it calls nothing above it.
"""
