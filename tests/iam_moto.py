"""moto's server with IAM enforced as the local AWS enforces it (``lambdapack.local.motoseam``:
every request signed by a key moto knows, checked against the caller's policies), for the
tests that need AWS's APIs but run no function. Started by ``tests/conftest.py`` in a
process of its own (moto reads ``INITIAL_NO_AUTH_ACTION_COUNT=0`` once, at import).

Standard output: one JSON line ``{"port": P, "admin": [KEY_ID, SECRET]}`` once serving, and
again after each line read on standard input, which clears every backend (a fresh AWS)
and makes a new administrator."""

from __future__ import annotations

import json
import sys
import threading


def main() -> None:
    from moto.moto_api._internal.models import moto_api_backend

    from lambdapack.local import motoseam

    motoseam.enforce_iam()
    server = motoseam.make_server("127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, name="moto", daemon=True).start()

    def announce() -> None:
        print(json.dumps({"port": server.server_address[1], "admin": motoseam.create_admin()}), flush=True)

    announce()
    for _ in sys.stdin:
        moto_api_backend.reset()
        announce()


if __name__ == "__main__":
    main()
