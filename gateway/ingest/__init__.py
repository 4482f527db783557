"""The ingest worker: mail and texts parsed, extracted, sealed and committed in a second process.

- :mod:`.worker`: the gateway's side (starts the process, hands messages over, restarts it);
- :mod:`.process`: the worker process itself, built by :func:`gateway.app.build_ingest`.
"""
