"""Who may do what: the roles of API keys and the access each route needs.

Every ``/v1`` route declares one :class:`Access` next to its handler (see
``gateway.api.openapi.route``); the route is refused with 403 unless the
caller's role grants it.  The table here is the only place the rules live:
the route guard, the OpenAPI document and the role tests all read it.

- ``owner``: everything in its tenant, and the only role that manages API
  keys and reads the audit trail.
- ``manager``: everything about credentials, forwards, webhooks and
  interactions, except reading secrets (passwords, codes, links, backup codes).
- ``agent``: reads secrets and runs logins and interactions; may read the
  configuration but never create, change or delete it.

A key may also be limited to a list of credentials: every other credential
then answers 404, and routes that reach the whole tenant (creating
credentials, webhooks, keys, the audit trail) answer 403.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"
    OWNER = "owner"
    MANAGER = "manager"
    AGENT = "agent"


#: The roles a tenant's key may have (the admin key belongs to no tenant).
TENANT_ROLES = (Role.OWNER, Role.MANAGER, Role.AGENT)


class Access(StrEnum):
    """What a route does, as far as permission goes."""

    #: Manage tenants: the admin key only.
    ADMIN = "admin"
    #: Manage API keys, read the audit trail.
    OWNER = "owner"
    #: Create, change or delete configuration.
    CONFIGURE = "configure"
    #: Read a secret: a password, a code, a link, a backup code.
    SECRET = "secret"  # noqa: S105 (a kind of route, not a password)
    #: Read configuration and state, run interactions and logins.
    USE = "use"


GRANTS: dict[Role, frozenset[Access]] = {
    Role.ADMIN: frozenset({Access.ADMIN}),
    Role.OWNER: frozenset({Access.OWNER, Access.CONFIGURE, Access.SECRET, Access.USE}),
    Role.MANAGER: frozenset({Access.CONFIGURE, Access.USE}),
    Role.AGENT: frozenset({Access.SECRET, Access.USE}),
}

#: Path prefixes of the routes that reach one credential (or an object of
#: one): the only routes a key limited to some credentials may call, besides
#: the list of credentials, which it sees filtered.
CREDENTIAL_BOUND = ("/v1/credentials/{id}", "/v1/interactions/{id}", "/v1/logins/{id}")


def credential_bound(method: str, path: str) -> bool:
    return path.startswith(CREDENTIAL_BOUND) or (method == "GET" and path == "/v1/credentials")


def allows(role: str, access: Access) -> bool:
    try:
        return access in GRANTS[Role(role)]
    except ValueError:
        return False


def who_may(access: Access) -> list[str]:
    """The roles granted *access*, for the OpenAPI document and error messages."""
    return [role.value for role, grants in GRANTS.items() if access in grants]
