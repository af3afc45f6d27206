"""The HTTPS stand-ins (Azure Resource Manager, the fault proxy) keep serving while a client
sits on a connection without finishing its TLS handshake — as a deploy client does when its
deadline interrupts it mid-connect and its socket is not closed until garbage collection.
The handshake happens in the connection's own thread, so neither other clients nor the
server's shutdown wait for that one."""

from __future__ import annotations

import socket
import ssl
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from mlcompile.emulate.services.azure_arm import ArmStandIn, serve, tls_certificate

sys.path.insert(0, str(Path(__file__).parent / "stand_ins"))
from fault_proxy import FaultProxy  # noqa: E402


@contextmanager
def arm(certificate: tuple[Path, Path]) -> Iterator[str]:
    server, url = serve(ArmStandIn(), certificate=certificate)
    try:
        yield url
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def fault_proxy(certificate: tuple[Path, Path]) -> Iterator[str]:
    upstream, upstream_url = serve(ArmStandIn())
    try:
        with FaultProxy(upstream_url, certificate=certificate) as proxy:
            yield proxy.url
    finally:
        upstream.shutdown()
        upstream.server_close()


def _stopped_within(seconds: float, stop: Callable[[], None]) -> bool:
    stopper = threading.Thread(target=stop, daemon=True)
    stopper.start()
    stopper.join(seconds)
    return not stopper.is_alive()


@pytest.mark.parametrize("stand_in", [arm, fault_proxy], ids=["arm", "fault-proxy"])
def test_a_client_that_never_finishes_its_handshake_holds_up_no_one(stand_in: Callable, tmp_path: Path) -> None:
    running = ExitStack()
    url = running.enter_context(stand_in(tls_certificate(tmp_path)))
    address = urlsplit(url)
    silent = socket.create_connection((address.hostname, address.port))  # connects, says nothing
    try:
        time.sleep(0.2)  # the server has accepted it
        with pytest.raises(urllib.error.HTTPError) as answer:  # the empty stand-in answers 404, promptly
            urllib.request.urlopen(url.rstrip("/") + "/subscriptions/none", timeout=5, context=ssl._create_unverified_context())
        assert answer.value.code == 404
        assert _stopped_within(5, running.close)  # with the silent client still connected
    finally:
        silent.close()
        running.close()
