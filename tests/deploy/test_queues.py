"""Long work (exports, reports) has its own queues and worker in every deploy shape; housekeeping stores no rows."""

import re
from pathlib import Path

import pytest
from django.conf import settings
from django_celery_results.models import TaskResult

from backoffice.celery import app

ROOT = Path(__file__).resolve().parents[2]
FAST = {"default", "points", "orders"}
LONG = {"exports", "reports"}


@pytest.mark.parametrize(
    ("task", "queue"),
    [
        ("exports.run", "exports"),
        ("reports.daily_send", "reports"),
        ("points.events_process_batch", "points"),
        ("orders.expire", "orders"),
        ("notify.sms_send", "default"),
        ("exports.notify_ready", "default"),
        ("backoffice.ping", "default"),
    ],
)
def test_routes(task, queue):
    assert app.amqp.router.route({}, task)["queue"].name == queue


def test_the_queues_are_the_two_sets():
    assert {q.name for q in settings.CELERY_TASK_QUEUES} == FAST | LONG


def _queue_sets(text: str) -> list[set[str]]:
    return [set(match.split(",")) for match in re.findall(r'--queues(?:[= ]|", ")([a-z,]+)', text)]


def test_the_procfile_runs_one_worker_per_queue_set_and_the_long_one_prefetches_one():
    procfile = (ROOT / "deploy" / "Procfile").read_text()
    assert _queue_sets(procfile) == [FAST, LONG]
    long_line = next(line for line in procfile.splitlines() if line.startswith("worker_long:"))
    assert "--prefetch-multiplier 1" in long_line and "--concurrency ${LONG_WORKER_CONCURRENCY:-1}" in long_line


@pytest.mark.parametrize("path", ["deploy/docker-compose.yml", "deploy/supervisord.conf"])
def test_every_deploy_shape_runs_the_same_split(path):
    text = (ROOT / path).read_text()
    assert sorted(map(sorted, _queue_sets(text))) == sorted(map(sorted, [FAST, LONG]))
    assert re.search(r'--prefetch-multiplier(?:[= ]|", ")1\b', text)


def test_the_systemd_queue_sets_match():
    systemd = ROOT / "deploy" / "systemd"
    sets = {
        path.stem: set(re.search(r"^CONSUME_QUEUES=(\S+)$", path.read_text(), re.MULTILINE).group(1).split(","))
        for path in systemd.glob("worker-*.env")
    }
    assert sets == {"worker-fast": FAST, "worker-long": LONG}
    assert "WORKER_PREFETCH_MULTIPLIER=1" in (systemd / "worker-long.env").read_text()


@pytest.mark.django_db
def test_the_outbox_relay_stores_no_result_while_other_tasks_keep_theirs(monkeypatch):
    from backoffice.tasks import ping_task
    from points.tasks import outbox_relay_task

    for task in (outbox_relay_task, ping_task):  # store as a worker would, through the real result backend
        monkeypatch.setattr(task, "store_eager_result", True)

    outbox_relay_task.apply()
    assert TaskResult.objects.count() == 0
    ping_task.apply()
    assert TaskResult.objects.count() == 1  # so the check above could have seen a row


def _settings_with(env: dict) -> dict:
    import json
    import os
    import subprocess
    import sys

    code = (
        "import json, backoffice.settings as s; print(json.dumps({'amqp': s.BROKER_IS_AMQP, "
        "'options': s.CELERY_BROKER_TRANSPORT_OPTIONS, 'queues': [(q.name, q.exchange.type, q.queue_arguments) "
        "for q in s.CELERY_TASK_QUEUES], 'cache': s.CACHES['default']['LOCATION'], 'broker': s.CELERY_BROKER_URL}))"
    )
    run = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "ENV_FILE": "/dev/null", **env},
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return json.loads(run.stdout)


def test_rabbitmq_as_broker_means_quorum_queues_and_publisher_confirms_with_redis_still_the_cache():
    found = _settings_with({"CELERY_BROKER_URL": "amqp://guest:guest@127.0.0.1:5672/bo", "REDIS_URL": "redis://r:1/2"})

    assert found["amqp"] is True and found["broker"].startswith("amqp://")
    assert found["options"]["confirm_publish"] is True
    assert {name for name, _, _ in found["queues"]} == FAST | LONG
    assert all(kind == "topic" and args == {"x-queue-type": "quorum"} for _, kind, args in found["queues"])
    assert found["cache"] == "redis://r:1/2"


def test_without_a_broker_url_redis_is_the_broker():
    found = _settings_with({"CELERY_BROKER_URL": "", "REDIS_URL": "redis://r:1/2"})

    assert found["amqp"] is False and found["broker"] == "redis://r:1/2"
    assert all(kind == "direct" and not args for _, kind, args in found["queues"])
