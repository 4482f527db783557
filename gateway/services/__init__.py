"""Business rules: what the gateway does, independent of HTTP and SMTP.

Views and protocol adapters call these services; the services call the store.
"""
