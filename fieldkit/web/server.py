"""Start ``fieldkit serve``: check the bind and the token, open the catalogue read-only, run uvicorn."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from fieldkit.catalogue.readonly import open_read_only
from fieldkit.errors import ConfigError
from fieldkit.web.guard import is_loopback, new_token, require_token

if TYPE_CHECKING:
    from fieldkit.workspace import Workspace

__all__ = ["ServePlan", "plan_serve", "run"]


@dataclass(frozen=True)
class ServePlan:
    """What ``fieldkit serve`` is about to run: where, with which token, over which workspace."""

    workspace: Workspace
    host: str
    port: int
    token: str | None
    token_generated: bool

    @property
    def url(self) -> str:
        """The address to open; with a token, the one that lets a browser in."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        base = f"http://{host}:{self.port}/"
        return f"{base}?token={quote(self.token)}" if self.token else base

    def to_dict(self) -> dict[str, Any]:
        # The token is printed once, at start, to the person who started the server: it is how they
        # get in. It is never logged by the server, and a token from the settings is not repeated.
        return {"workspace": str(self.workspace.root), "host": self.host, "port": self.port,
                "loopback": is_loopback(self.host), "token_required": self.token is not None,
                "url": self.url if self.token_generated or not self.token else self.url.split("?")[0],
                "read_only": True}


def plan_serve(ws: Workspace, host: str, port: int, *, generate_token: bool = False) -> ServePlan:
    """Check the bind and the token, and swap the workspace's catalogue for a read-only one.

    Parameters
    ----------
    ws : Workspace
        Opened (its schema checked); its catalogue handle is replaced by a read-only one.
    host, port
        Where to listen. Any non-loopback ``host`` needs a token.
    generate_token : bool
        Make a fresh token instead of ``serve.token`` from the settings.

    Raises
    ------
    ConfigError
        A non-loopback ``host`` and no token, or an address that cannot be listened on.
    """
    from fieldkit.workspace import Workspace

    configured = ws.settings.serve.token
    token = new_token() if generate_token else (configured.get_secret_value() if configured else None)
    require_token(host, token)
    _check_bindable(host, port)
    ws.close()
    read_only = Workspace(ws.loaded, _catalogue=open_read_only(ws.paths.catalogue_url))
    return ServePlan(read_only, host, port, token, generate_token)


def _check_bindable(host: str, port: int) -> None:
    """Fail with a clear message now, rather than as a log line of uvicorn's, when the port is taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}.",
                              hint="Choose another --port (or --host), or stop the program that uses it.") from exc


def run(plan: ServePlan) -> None:
    """Serve until interrupted (Ctrl-C), then close the catalogue."""
    import uvicorn

    from fieldkit.web.pages import create_app

    app = create_app(plan.workspace, token=plan.token)
    try:
        # access_log off: with a token, the first request's address carries it.
        uvicorn.run(app, host=plan.host, port=plan.port, log_level="warning", access_log=False,
                    server_header=False)
    finally:
        plan.workspace.close()
