"""Loaded by subprocesses the tests start (PYTHONPATH): any connection that is not to
loopback raises, so a test proves the command touched no network."""

import ipaddress
import socket

_connect = socket.socket.connect


def _loopback_only(self: socket.socket, address: object) -> object:
    host = address[0] if isinstance(address, tuple) else None
    if isinstance(host, str):
        try:
            if not ipaddress.ip_address(host).is_loopback:
                raise OSError(f"network access blocked in tests: {address!r}")
        except ValueError:
            if host != "localhost":
                raise OSError(f"network access blocked in tests: {address!r}") from None
    return _connect(self, address)  # type: ignore[arg-type]


socket.socket.connect = _loopback_only  # type: ignore[method-assign,assignment]
