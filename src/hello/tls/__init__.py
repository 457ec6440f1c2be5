"""TLS for hello's listeners: server SSL contexts built from certificate files."""

from hello.tls.context import ALPN_PROTOCOLS, create_ssl_context, load_server_context

__all__ = ["ALPN_PROTOCOLS", "create_ssl_context", "load_server_context"]
