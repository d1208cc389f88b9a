"""The Runtime API a sandbox serves its function process."""

import socket
import struct
import time

from lambdapack.local.runtime_api import PREFIX, RuntimeAPI


def _reset(connection: socket.socket) -> None:
    """Close as a killed process's socket ends: with a reset, not a FIN."""
    connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    connection.close()


def test_a_function_process_killed_mid_request_prints_no_traceback(capfd):
    """A killed runtime client resets its connections (a timeout, an out-of-memory kill, a
    stopped environment): the sandbox reports that; the server prints nothing."""
    api = RuntimeAPI()
    try:
        host, port = api.address.split(":")
        # Between requests on a kept-alive connection (the server waits for the next line) ...
        idle = socket.create_connection((host, int(port)))
        idle.sendall(f"POST {PREFIX}/invocation/none/response HTTP/1.1\r\nContent-Length: 0\r\n\r\n".encode())
        assert b"400" in idle.recv(4096).split(b"\r\n")[0]  # an unknown request id, answered
        _reset(idle)
        # ... and in the middle of one.
        half = socket.create_connection((host, int(port)))
        half.sendall(f"POST {PREFIX}/invocation/x/response HTTP/1.1\r\nContent-Length: 10".encode())
        _reset(half)
        time.sleep(0.3)
    finally:
        api.close()
    err = capfd.readouterr().err
    assert "Traceback" not in err and "Exception occurred" not in err, err
