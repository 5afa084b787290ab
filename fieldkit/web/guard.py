"""What keeps ``fieldkit serve`` safe to run: who may connect, and what a page may load.

* The server binds 127.0.0.1 by default. On any other address it starts only with a token
  (``serve.token`` in the settings, or one generated with ``--new-token``), and every request
  must carry it: ``Authorization: Bearer TOKEN``, or once ``?token=TOKEN`` (which sets an
  HttpOnly, SameSite=Strict cookie and redirects to the same address without it, so the token
  does not stay in the address bar or in ``Referer`` headers). Anything else is 401.
* On a loopback address without a token, only loopback ``Host`` headers are accepted, so that a
  web page cannot reach the server through a DNS name rebound to 127.0.0.1.
* Every response carries a Content-Security-Policy that allows nothing but this server's own
  pictures, sound and style sheet: no script at all, no frames, no form posted elsewhere.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
from http.cookies import SimpleCookie
from urllib.parse import parse_qsl, urlencode

from starlette.datastructures import Headers
from starlette.responses import PlainTextResponse, RedirectResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fieldkit.errors import ConfigError

__all__ = ["CSP", "COOKIE", "TokenGuard", "SecurityHeaders", "is_loopback", "require_token", "new_token"]

CSP = ("default-src 'none'; img-src 'self'; media-src 'self'; style-src 'self'; script-src 'none'; "
       "form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
COOKIE = "fieldkit_token"
LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1", "[::1]"}


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address) is this machine only: 127.0.0.0/8, ::1 or localhost."""
    if host.strip("[]") in ("localhost", "::1"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def new_token() -> str:
    """A fresh random token: 32 bytes, URL-safe."""
    return secrets.token_urlsafe(32)


def require_token(host: str, token: str | None) -> str | None:
    """The token the server enforces, or refuse to serve a non-loopback address without one.

    Raises
    ------
    ConfigError
        ``host`` is not a loopback address and no token is given.
    """
    if token is None and not is_loopback(host):
        raise ConfigError(
            f"refusing to serve the catalogue on {host} without a token: anyone who can reach that address "
            "could read it.",
            hint="Set serve.token in fieldkit.toml (or FIELDKIT_SERVE__TOKEN), pass --new-token to generate "
                 "one, or bind 127.0.0.1.")
    return token


def _host_name(headers: Headers) -> str:
    host = headers.get("host", "")
    if host.startswith("["):
        return host[: host.find("]") + 1]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class TokenGuard:
    """ASGI middleware: 401 for a request without the token; a loopback-only ``Host`` without one."""

    def __init__(self, app: ASGIApp, token: str | None) -> None:
        self.app = app
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = Headers(scope=scope)
        if self.token is None:
            if _host_name(headers) not in LOOPBACK_NAMES:
                return await PlainTextResponse("unexpected Host header\n", 400)(scope, receive, send)
            return await self.app(scope, receive, send)
        query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        offered = [v for k, v in query if k == "token"]
        if offered and self._matches(offered[0]):
            return await self._set_cookie(scope, query)(scope, receive, send)
        if self._matches(self._from_headers(headers)):
            return await self.app(scope, receive, send)
        response = PlainTextResponse("401: this fieldkit server needs its token (open the address it printed).\n",
                                     401, headers={"WWW-Authenticate": 'Bearer realm="fieldkit"'})
        await response(scope, receive, send)

    def _matches(self, offered: str | None) -> bool:
        return offered is not None and hmac.compare_digest(offered.encode(), self.token.encode())

    @staticmethod
    def _from_headers(headers: Headers) -> str | None:
        auth = headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            return auth[7:].strip()
        morsel = SimpleCookie(headers.get("cookie", "")).get(COOKIE)
        return morsel.value if morsel else None

    def _set_cookie(self, scope: Scope, query: list[tuple[str, str]]) -> RedirectResponse:
        rest = urlencode([(k, v) for k, v in query if k != "token"])
        path = "/" + scope["path"].lstrip("/")  # never "//host": that would send the browser elsewhere
        response = RedirectResponse(path + (f"?{rest}" if rest else ""), 303)
        response.set_cookie(COOKIE, self.token, httponly=True, samesite="strict", path="/")
        return response


class SecurityHeaders:
    """ASGI middleware: the Content-Security-Policy and its companions on every response."""

    HEADERS = [(b"content-security-policy", CSP.encode()), (b"x-content-type-options", b"nosniff"),
               (b"referrer-policy", b"no-referrer"), (b"x-frame-options", b"DENY"),
               (b"cross-origin-resource-policy", b"same-origin")]

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *self.HEADERS]
            await send(message)

        await self.app(scope, receive, with_headers)
