from __future__ import annotations

import socket

from vllmtune.util.net import free_port, port_free


def test_a_listening_port_is_not_free_and_is_free_once_closed() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert port_free("127.0.0.1", port) is False
    assert port_free("127.0.0.1", port) is True


def test_free_port_can_be_listened_on() -> None:
    port = free_port()
    assert 0 < port < 65536
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))  # raises if it was not free
        s.listen()
        assert port_free("127.0.0.1", port) is False


def test_an_address_not_on_this_machine_is_not_free() -> None:
    assert port_free("192.0.2.1", free_port()) is False  # TEST-NET-1: cannot be bound here
