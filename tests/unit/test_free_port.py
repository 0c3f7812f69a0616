"""The integration tests' servers get ports the kernel never hands out for bind(0), so a vLLM
engine starting in the same process cannot take the port before uvicorn binds it."""

import socket

from tests.servers import _ephemeral_range, free_port


def test_free_port_is_bindable_and_below_the_ephemeral_range():
    low, _ = _ephemeral_range()
    for _ in range(20):
        port = free_port()
        assert 1024 <= port < low
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))


def test_the_kernel_hands_out_bind_zero_ports_only_inside_the_ephemeral_range():
    """The property the fix relies on: bind(0) stays inside the ephemeral range."""
    low, high = _ephemeral_range()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        assert low <= sock.getsockname()[1] <= high
