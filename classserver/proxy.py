"""The class server's reverse proxy: HAProxy (Debian's ``haproxy`` package), configured here.

Each browser is kept on one page server by a cookie the proxy sets (``cvx_page_server``), on every
request, the websocket's included: not by client IP, since a whole class may share one address.
The proxy checks each page server's ``/_stcore/health`` every second; when one is down, a browser
pinned to it is sent to another (``option redispatch``), which sets the cookie anew. Streamlit's
frontend reconnects on its own, and the user's work is in the shared workspace store.
"""
from __future__ import annotations

import shutil

__all__ = ["COOKIE", "haproxy_binary", "haproxy_config"]

COOKIE = "cvx_page_server"


def haproxy_binary() -> str | None:
    """HAProxy's path, or None when it is not installed (``apt-get install haproxy``)."""
    return shutil.which("haproxy") or next((p for p in ("/usr/sbin/haproxy",) if shutil.which(p)), None)


def haproxy_config(host: str, port: int, page_servers: list[tuple[str, int]], *, tls_pem: str = "") -> str:
    """HAProxy's configuration for ``page_servers`` (``(name, port)`` on 127.0.0.1) behind ``host:port``.

    Args:
        host: the address to listen on (``0.0.0.0``: every interface).
        port: the port students open.
        page_servers: each page server's name (the cookie's value) and port.
        tls_pem: a PEM with the certificate and its key: the proxy speaks HTTPS, and the cookie is ``secure``.

    Returns:
        The configuration file's text.

    Example:
        >>> text = haproxy_config("127.0.0.1", 8501, [("p1", 8601), ("p2", 8602)])
        >>> "cookie cvx_page_server insert indirect nocache httponly" in text
        True
        >>> "server p2 127.0.0.1:8602 check cookie p2" in text
        True
    """
    bind = f"bind {host}:{port}" + (f" ssl crt {tls_pem}" if tls_pem else "")
    secure = " secure" if tls_pem else ""
    servers = "\n".join(f"    server {name} 127.0.0.1:{p} check cookie {name}" for name, p in page_servers)
    return f"""\
# Written by classserver (scripts/serve.sh) at each start: edit class.toml, not this file.
global
    maxconn 4096

defaults
    mode http
    option forwardfor
    option redispatch
    retries 2
    timeout connect 3s
    timeout client 120s
    timeout server 120s
    # A websocket (one per browser tab) stays open as long as the tab.
    timeout tunnel 24h

frontend students
    {bind}
    default_backend page_servers

backend page_servers
    balance leastconn
    cookie {COOKIE} insert indirect nocache httponly{secure} attr "SameSite=Lax"
    option httpchk GET /_stcore/health
    http-check expect status 200
    default-server inter 1s fall 2 rise 1
{servers}
"""
