"""`socialfer serve` keeps answering while slow clients hold connections (slowloris)."""

from __future__ import annotations

import socket
import time
from contextlib import ExitStack
from pathlib import Path

import pytest
import requests

from tests.support import free_port, socialfer_process
from tests.test_e2e import wait_for_api

SLOW_CLIENTS = 100
BOUND = 5.0  # seconds; measured in milliseconds (bench/slow_clients.py), the threaded server never answered


@pytest.mark.slow
def test_healthz_answers_while_100_clients_trickle_their_requests(tmp_path: Path) -> None:
    port = free_port()
    env = {"SOCIALFER_DATA_DIR": str(tmp_path), "SOCIALFER_DATABASE_URL": None, "SOCIALFER_BROKER_URL": None}
    base = f"http://127.0.0.1:{port}"
    with (
        socialfer_process(["serve", "--port", str(port), "--no-worker"], env, tmp_path / "serve.log"),
        ExitStack() as stack,
    ):
        wait_for_api(base)
        clients = [
            stack.enter_context(socket.create_connection(("127.0.0.1", port), timeout=5)) for _ in range(SLOW_CLIENTS)
        ]
        for client in clients:
            client.sendall(b"GET /api/v1/stats HTTP/1.1\r\nHost: x\r\n")
        for _ in range(3):
            for client in clients:
                client.sendall(b"X")  # a header byte, never the end of the headers
            started = time.monotonic()
            response = requests.get(f"{base}/healthz", timeout=BOUND)
            assert response.status_code == 200 and time.monotonic() - started < BOUND
            time.sleep(0.5)
