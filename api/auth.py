"""Who may call which REST route: API keys (only their hashes in settings) and four roles.

Every route carries exactly one :class:`Policy`, as a dependency made by :func:`policy` (the
callable keeps it in ``.policy``, so a test can find a route that has none). A client sends its key
as ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``; never in the URL, which servers and
proxies log. No key (or an unknown one) answers 401 with ``WWW-Authenticate: Bearer``, a known key
of the wrong role 403.

Keys are ``kgdx_`` plus 32 random bytes (url-safe base64). A plain SHA-256 of such a key is enough
to store it: slow password hashes protect low-entropy secrets, and a 256-bit random key has
nothing to guess. Hashes are compared with :func:`hmac.compare_digest`.

With no keys configured ("open mode", for development) every route is open, but only to loopback
clients; ``kgdx serve`` refuses to bind anything else, and the app logs a warning at startup.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import re
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any, get_args

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.routing import Route

from graph.settings import ApiKey, ApiRole, Settings

logger = logging.getLogger(__name__)

ROLES: tuple[str, ...] = get_args(ApiRole)
KEY_PREFIX = "kgdx_"
KEY_BYTES = 32
# token_urlsafe(32) is 43 characters; a key-shaped string anywhere in a URL or log is refused
KEY_SHAPE = re.compile(rf"{KEY_PREFIX}[A-Za-z0-9_-]{{43}}")
URL_KEY_PARAMS = frozenset({"api_key", "apikey", "api-key", "access_token"})
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="kgdx"'}
# the in-process test transport (starlette.testclient) has no socket: it is local by construction
_LOCAL_CLIENTS = frozenset({"testclient"})

_bearer = HTTPBearer(auto_error=False, description="Authorization: Bearer kgdx_...")
_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="kgdx_...")


def new_key() -> str:
    """A fresh API key: ``kgdx_`` and 32 random bytes, url-safe base64."""
    return KEY_PREFIX + secrets.token_urlsafe(KEY_BYTES)


def key_hash(key: str) -> str:
    """The hex SHA-256 stored in settings for ``key``."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def key_entry(name: str, role: str, key: str) -> ApiKey:
    """The settings entry for ``key`` (validated: a bad name or role raises)."""
    return ApiKey(name=name, role=role, sha256=key_hash(key))


def find_key(keys: tuple[ApiKey, ...], presented: str) -> ApiKey | None:
    """The configured entry whose hash matches ``presented``, compared in constant time."""
    digest = key_hash(presented)
    found = None
    for entry in keys:  # every entry is compared, so the time says nothing about which matched
        if hmac.compare_digest(digest, entry.sha256):
            found = entry
    return found


@dataclass(frozen=True)
class Policy:
    """Which roles may call a route; ``public`` routes also answer without a key."""

    name: str
    roles: frozenset[str]
    public: bool = False

    def allows(self, role: str) -> bool:
        return role in self.roles


@dataclass(frozen=True)
class Principal:
    """The caller a request was authorised as (``role`` is ``None`` in open mode)."""

    name: str
    role: str | None


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address, or ``localhost``) is this machine only."""
    if host == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return (mapped or address).is_loopback


def _in_process(request: Request, client: str) -> bool:
    """The in-process test transport: its client name, and no forwarding header (through a
    trusted proxy uvicorn takes the client from ``X-Forwarded-For``, which anyone can write)."""
    return client in _LOCAL_CLIENTS and "x-forwarded-for" not in request.headers


def _refuse_key_in_url(request: Request) -> None:
    query = request.url.query
    if not query:
        return
    names = {name.lower() for name in request.query_params}
    if names & URL_KEY_PARAMS or KEY_SHAPE.search(query):
        raise HTTPException(
            status_code=400,
            detail="send the API key as 'Authorization: Bearer <key>' or 'X-API-Key', never in "
            "the URL (URLs are logged): treat that key as leaked and replace it",
        )


def authorize(request: Request, policy: Policy, presented: str | None) -> Principal | None:
    """The caller of ``request`` under ``policy``, or an HTTP 400/401/403.

    Returns ``None`` for an anonymous call of a public route.
    """
    _refuse_key_in_url(request)
    settings: Settings = request.app.state.settings
    if not settings.api_keys:
        client = request.client.host if request.client else None
        if client is not None and not (_in_process(request, client) or is_loopback(client)):
            raise HTTPException(
                status_code=403,
                detail="authentication is off (no API keys configured), so this server answers "
                "loopback clients only; configure keys (kgdx keys create)",
            )
        return Principal(name="open-mode", role=None)
    if not presented:
        if policy.public:
            return None
        raise HTTPException(
            status_code=401,
            detail="this route needs an API key: send 'Authorization: Bearer <key>'",
            headers=CHALLENGE,
        )
    entry = find_key(settings.api_keys, presented)
    if entry is None:
        raise HTTPException(status_code=401, detail="unknown API key", headers=CHALLENGE)
    if not policy.allows(entry.role):
        raise HTTPException(
            status_code=403,
            detail=f"role {entry.role!r} may not call this route "
            f"(allowed: {', '.join(sorted(policy.roles))})",
        )
    request.state.api_key_name = entry.name
    return Principal(name=entry.name, role=entry.role)


def policy(name: str, roles: tuple[str, ...], *, public: bool = False) -> Callable[..., Any]:
    """A FastAPI dependency enforcing a policy; the policy is kept in its ``.policy``."""
    unknown = set(roles) - set(ROLES)
    if unknown:
        raise ValueError(f"unknown roles {sorted(unknown)}; roles are {ROLES}")
    rule = Policy(name=name, roles=frozenset(roles), public=public)

    # async: it only compares hashes, so it runs on the event loop, not in a threadpool hand-off
    async def dependency(
        request: Request,
        bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
        header_key: Annotated[str | None, Depends(_api_key_header)],
    ) -> Principal | None:
        presented = bearer.credentials if bearer is not None else header_key
        return authorize(request, rule, presented)

    dependency.policy = rule  # type: ignore[attr-defined]
    dependency.__name__ = f"policy_{name}"
    return dependency


# admin is in every policy; "public" answers without a key (a key, when sent, must be valid)
PUBLIC = policy("public", ROLES, public=True)
ANY_KEY = policy("any_key", ROLES)
READ_PATIENTS = policy("read_patients", ("clinician", "researcher", "ingest", "admin"))
CLINICAL = policy("clinical", ("clinician", "researcher", "admin"))
QUERY = policy("query", ("researcher", "admin"))
WRITE_PATIENTS = policy("write_patients", ("ingest", "admin"))
PrincipalDep = Annotated[Principal | None, Depends(PUBLIC)]


def app_routes(app: FastAPI) -> list[Any]:
    """Every route the app serves, routes of included routers with their routers' settings."""
    return list(iter_route_contexts(app.routes))


def route_policies(route: Any) -> list[Policy]:
    """The policies of one route of :func:`app_routes` (nested dependencies included).

    A route that is not a FastAPI route (no dependencies at all) has none.
    """
    found = []
    root = getattr(route, "dependant", None)
    stack = [root] if root is not None else []
    while stack:
        dependant = stack.pop()
        rule = getattr(dependant.call, "policy", None)
        if isinstance(rule, Policy):
            found.append(rule)
        stack.extend(dependant.dependencies)
    return found


class RedactKeys(logging.Filter):
    """Blanks key-shaped strings in log records (a key a client put in a URL, say)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                KEY_SHAPE.sub(KEY_PREFIX + "[redacted]", a) if isinstance(a, str) else a
                for a in record.args
            )
        if isinstance(record.msg, str):
            record.msg = KEY_SHAPE.sub(KEY_PREFIX + "[redacted]", record.msg)
        return True


def _log_auth_mode(settings: Settings) -> None:
    if settings.api_keys:
        roles = sorted({key.role for key in settings.api_keys})
        logger.info("API keys: %d configured (roles: %s)", len(settings.api_keys), ", ".join(roles))
    else:
        logger.warning(
            "authentication is off: no API keys configured (KGDX_API_KEYS or [[api_keys]] in "
            "kgdx.toml); only loopback clients are served. Create a key with `kgdx keys create`."
        )


def install(app: FastAPI) -> None:
    """Give the docs routes (``/openapi.json``, ``/docs``, ``/redoc``) the ``any_key`` policy,
    log the authentication mode at startup, and redact keys from uvicorn's logs."""
    for route in list(app.router.routes):
        if isinstance(route, Route) and not isinstance(route, APIRoute):
            app.router.routes.remove(route)
            app.add_api_route(
                route.path,
                route.endpoint,
                methods=sorted(route.methods or {"GET"}),
                include_in_schema=False,
                dependencies=[Depends(ANY_KEY)],
                name=route.name,
            )
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[Any]:
        async with inner(app) as state:
            _log_auth_mode(app.state.settings)
            yield state

    app.router.lifespan_context = lifespan
    for name in ("uvicorn.access", "uvicorn.error"):
        target = logging.getLogger(name)
        if not any(isinstance(f, RedactKeys) for f in target.filters):
            target.addFilter(RedactKeys())


# OpenAPI entries of the answers every keyed route can give (the body is the app's error body)
AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "No API key, or an unknown one (WWW-Authenticate: Bearer)"},
    403: {"description": "The key's role may not call this route"},
}
