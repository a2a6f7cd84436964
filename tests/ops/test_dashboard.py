"""The admin index is the dashboard: figures from the cache table only, refreshed by ops.dashboard_refresh."""

import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from celery import states
from django.core.management import call_command
from django.utils import timezone
from django_celery_results.models import TaskResult

from backoffice.ops import selectors
from backoffice.ops.dashboard import visible_panels
from backoffice.ops.models import DashboardPanel
from backoffice.ops.services import dashboard_refresh
from backoffice.ops.tasks import dashboard_refresh_task

pytestmark = pytest.mark.django_db

# reports: backoffice/reports; notes: tests/portal_app
ALL_PANELS = ["pipeline", "points", "orders", "alerts", "tasks", "workers", "queues", "beat", "reports", "notes"]


@pytest.fixture
def no_workers(monkeypatch):
    """Celery's ping answers nobody (no worker running), without waiting for the broadcast timeout."""
    monkeypatch.setattr(selectors.celery_app.control, "ping", lambda **kwargs: [])


def _result(name, status, done, seconds=1.0):
    result = TaskResult.objects.create(task_id=str(uuid.uuid4()), task_name=name, status=status, worker="w1@host")
    # date_done is auto_now: set the times afterwards, as a worker finishing then would have.
    TaskResult.objects.filter(pk=result.pk).update(date_started=done - timedelta(seconds=seconds), date_done=done)


def test_dashboard_renders_with_an_empty_database(client, superuser):
    client.force_login(superuser)

    response = client.get("/admin/")

    assert response.status_code == 200
    assert [panel.key for panel in response.context["panels"]] == ALL_PANELS
    assert response.content.decode().count("no figures yet") == len(ALL_PANELS)
    assert DashboardPanel.objects.count() == 0  # the page never computes figures itself


def test_refresh_with_flower_and_worker_stopped_still_fills_every_panel(
    client, superuser, redis_client, no_workers, flower_down
):
    outcome = dashboard_refresh()

    assert outcome == {key: "ok" for key in ALL_PANELS if key != "pipeline"}  # pipeline shows points' figures
    client.force_login(superuser)
    response = client.get("/admin/")
    body = response.content.decode()
    assert response.status_code == 200
    assert "no figures yet" not in body
    assert "No worker answered." in body
    assert "never (beat is not running)" in body
    assert body.count('<td class="queue-length">0</td>') == 5  # default, points, orders, exports, reports


def test_task_panel_counts_successes_and_failures_per_hour_and_the_slowest(redis_client, no_workers):
    now = timezone.now().replace(minute=30, second=0, microsecond=0)
    _result("points.apply", states.SUCCESS, now - timedelta(minutes=10), seconds=0.5)
    _result("points.apply", states.SUCCESS, now - timedelta(hours=2), seconds=7.25)
    _result("orders.expire", states.FAILURE, now - timedelta(hours=2))
    _result("orders.expire", states.SUCCESS, now - timedelta(hours=30))  # outside the 24 h window
    _result("points.apply", states.STARTED, now - timedelta(minutes=5))  # not finished

    dashboard_refresh(now=now, panels=["tasks"])

    data = DashboardPanel.objects.get(key="tasks").data
    assert len(data["hours"]) == 24
    assert data["success"][-1] == 1 and data["success"][-3] == 1 and sum(data["success"]) == 2
    assert data["failure"][-3] == 1 and sum(data["failure"]) == 1
    assert data["by_name"] == [
        {"task_name": "points.apply", "success": 2, "failure": 0},
        {"task_name": "orders.expire", "success": 0, "failure": 1},
    ]
    assert [(row["task_name"], row["seconds"]) for row in data["slowest"]] == [
        ("points.apply", 7.25),
        ("points.apply", 0.5),
    ]


def test_points_and_orders_panels_count_the_ledger_and_orders(django_user_model, redis_client):
    from orders.models import Order
    from points.models import PendingEvent
    from points.services import ledger_append, points_redeem

    user = django_user_model.objects.create_user("alice")
    ledger_append(user_id=user.id, amount=50, kind="award", idempotency_key="a1")
    ledger_append(user_id=user.id, amount=25, kind="award", idempotency_key="a2")
    points_redeem(user_id=user.id, amount=30, idempotency_key="r1")
    now = timezone.now()
    event = PendingEvent.objects.create(event_id=uuid.uuid4(), user_id=user.id, action_id=1, occurred_at=now)
    PendingEvent.objects.filter(pk=event.pk).update(created_at=now - timedelta(seconds=90))
    for number, status, needs_refund in [("o1", "paid", False), ("o2", "expired", True), ("o3", "paid", False)]:
        Order.objects.create(
            number=number,
            user=user,
            status=status,
            subtotal=Decimal("10"),
            total=Decimal("10"),
            expires_at=now + timedelta(minutes=30),
            needs_refund=needs_refund,
        )

    dashboard_refresh(now=now, panels=["points", "orders"])

    points = DashboardPanel.objects.get(key="points").data
    assert points["awarded"][-1] == 75 and sum(points["awarded"]) == 75
    assert points["redeemed"][-1] == 30 and sum(points["redeemed"]) == 30
    assert points["outbox_backlog"] == 1
    assert points["outbox_oldest_seconds"] == 90
    assert (points["captured_hour"], points["applied_hour"]) == (1, 0)
    orders = DashboardPanel.objects.get(key="orders").data
    assert orders["by_status"] == [
        {"status": "paid", "counts": [0] * 13 + [2]},
        {"status": "expired", "counts": [0] * 13 + [1]},
    ]
    assert orders["flagged_for_refund"] == 1


def test_points_panels_render_the_pipeline_and_the_ledger(client, superuser, django_user_model, redis_client):
    from points.models import PendingEvent
    from points.services import ledger_append

    user = django_user_model.objects.create_user("bob")
    ledger_append(user_id=user.id, amount=40, kind="award", idempotency_key="b1")
    PendingEvent.objects.create(event_id=uuid.uuid4(), user_id=user.id, action_id=1, occurred_at=timezone.now())
    dashboard_refresh(panels=["points"])
    client.force_login(superuser)

    body = client.get("/admin/").content.decode()

    assert '<strong class="outbox-backlog">1</strong>' in body
    assert '<td class="captured-hour">1</td>' in body
    assert "Captured: requests that matched an active points task" in body  # says what it counts
    assert '<td class="applied-hour">0</td>' in body
    assert '<td class="awarded">40</td>' in body
    assert '<td class="redeemed">0</td>' in body
    assert f"<title>{timezone.localdate():%m-%d} awarded: 40</title>" in body  # today's bar, with its tooltip
    assert body.count('<rect class="ok"') == 1


def test_dashboard_renders_with_demo_data(client, superuser, redis_client, no_workers):
    call_command("setup_portal", "--demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    dashboard_refresh_task()  # the periodic task, called as the worker would

    client.force_login(superuser)
    response = client.get("/admin/")

    body = response.content.decode()
    assert response.status_code == 200
    assert "no figures yet" not in body
    assert "Dashboard refresh" in body  # the default schedule shows among beat's next runs
    assert body.count('<svg class="bar-chart"') >= 2


def test_a_source_that_fails_keeps_the_last_figures_and_their_age(redis_client, monkeypatch, no_workers):
    earlier = timezone.now() - timedelta(minutes=10)
    dashboard_refresh(now=earlier, panels=["queues"])

    def broker_down(**kwargs):
        raise ConnectionError("broker down")

    monkeypatch.setattr(selectors, "panel_queues", broker_down)  # compute is imported by dotted path per run
    outcome = dashboard_refresh(panels=["queues"])

    assert outcome == {"queues": "error: broker down"}
    row = DashboardPanel.objects.get(key="queues")
    assert row.refreshed_at == earlier
    assert row.data == {
        "queues": [
            {"queue": "default", "length": 0},
            {"queue": "points", "length": 0},
            {"queue": "orders", "length": 0},
            {"queue": "exports", "length": 0},
            {"queue": "reports", "length": 0},
        ]
    }


def test_stale_panel_says_so(client, superuser, redis_client, no_workers):
    dashboard_refresh(now=timezone.now() - timedelta(minutes=10), panels=["queues"])
    client.force_login(superuser)

    body = client.get("/admin/").content.decode()

    assert "updated 10 min ago · stale" in body


def test_queue_lengths_count_waiting_messages(redis_client):
    from backoffice.tasks import ping_task

    ping_task.apply_async(queue="points")
    ping_task.apply_async(queue="points", priority=5)
    ping_task.apply_async()

    assert selectors.queue_lengths() == [
        {"queue": "default", "length": 1},
        {"queue": "points", "length": 2},
        {"queue": "orders", "length": 0},
        {"queue": "exports", "length": 0},
        {"queue": "reports", "length": 0},
    ]


@pytest.mark.parametrize(
    ("who", "panels"),
    [
        ("superuser", ALL_PANELS),
        ("plain_staff", []),
    ],
)
def test_each_user_sees_the_panels_of_what_it_may_read(request, who, panels):
    assert visible_panels(request.getfixturevalue(who)) == panels


def test_a_panel_follows_its_source_permission(plain_staff):
    from django.contrib.auth.models import Permission

    plain_staff.user_permissions.add(
        Permission.objects.get(codename="view_ops"), Permission.objects.get(codename="view_taskresult")
    )
    plain_staff = type(plain_staff).objects.get(pk=plain_staff.pk)  # fresh permission cache

    assert visible_panels(plain_staff) == ["tasks", "workers", "queues"]


def test_dashboard_page_reads_only_the_cache(client, superuser, redis_client, no_workers, django_assert_num_queries):
    dashboard_refresh()
    client.force_login(superuser)
    client.get("/admin/")  # warm-up: the points capture middleware loads its actions once per process

    # session, user, the cached panels: nothing scans a ledger or a result table.
    with django_assert_num_queries(3):
        assert client.get("/admin/").status_code == 200


def test_beat_panel_shows_the_last_tick_and_the_next_five_runs(redis_client, settings):
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    now = timezone.now()
    redis_client.set(settings.BEAT_HEARTBEAT_KEY, (now - timedelta(seconds=3)).timestamp())
    for minutes in (6, 1, 5, 3, 2, 4):
        every, _ = IntervalSchedule.objects.get_or_create(every=minutes, period=IntervalSchedule.MINUTES)
        PeriodicTask.objects.create(
            name=f"every {minutes} min", task="backoffice.ping", interval=every, last_run_at=now
        )
    PeriodicTask.objects.create(name="disabled", task="backoffice.ping", interval=every, enabled=False)

    data = selectors.panel_beat(now=now)

    assert data["last_tick"] == (now - timedelta(seconds=3)).isoformat()
    assert [run["name"] for run in data["next_runs"]] == [f"every {m} min" for m in (1, 2, 3, 4, 5)]
    first_due = timezone.datetime.fromisoformat(data["next_runs"][0]["due"])
    assert timedelta(seconds=55) < first_due - now <= timedelta(seconds=60)
    assert data["enabled"] == 6
