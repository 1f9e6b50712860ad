"""A pure-ASGI request-size limit: a body over ``Settings.max_request_bytes`` answers 413.

The body is read here, before any route, dependency or JSON parser sees it: a ``Content-Length``
over the limit is refused without reading a byte of the body, and a body without one (chunked) is
counted as it streams and refused as soon as the count passes the limit, so at most the limit plus
one chunk of the server's (uvicorn reads 64 KiB at a time) is ever held. A body within the limit
is handed to the app unchanged. Nothing downstream runs for a refused request, so nothing is
written.

The limit is read from the app's settings per request (they are only known once the app has
started; see :func:`api.rest.create_app`).
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.problems import problem


def _limit(scope: Scope) -> int:
    settings = getattr(getattr(scope.get("app"), "state", None), "settings", None)
    if settings is None:  # not started (no lifespan): the default
        from graph.settings import Settings

        return Settings.model_fields["max_request_bytes"].default
    return settings.max_request_bytes


async def _refuse(scope: Scope, receive: Receive, send: Send, status: int, detail: str) -> None:
    # "Connection: close": the rest of the body is never read
    await problem(status, detail, headers={"connection": "close"})(scope, receive, send)


class BodyLimit:
    """Refuse request bodies larger than the app's ``max_request_bytes`` with a 413 problem."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = _limit(scope)
        too_large = (
            f"the request body is larger than this server's limit of {limit:,} bytes "
            "(KGDX_MAX_REQUEST_BYTES); send less, e.g. fewer or shorter reports per request"
        )
        declared = [v for k, v in scope.get("headers", ()) if k.lower() == b"content-length"]
        if declared:
            try:
                length = int(declared[0])
            except ValueError:
                length = -1
            if length < 0 or len(set(declared)) > 1:
                await _refuse(scope, receive, send, 400, "the Content-Length header is not valid")
                return
            if length > limit:
                await _refuse(scope, receive, send, 413, too_large)
                return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away: nothing to answer
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await _refuse(scope, receive, send, 413, too_large)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        await self.app(scope, _replay(b"".join(chunks), receive), send)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives the buffered body once, then the server's own messages (so a
    disconnect is still seen)."""
    pending: list[Message] = [{"type": "http.request", "body": body, "more_body": False}]

    async def replayed() -> Message:
        if pending:
            return pending.pop()
        return await receive()

    return replayed


__all__ = ["BodyLimit"]
