"""The dashboard's "Alerts firing now" panel, declared in backoffice/alerts/portal.py."""

import pytest
from django.urls import reverse
from django.utils import timezone

from backoffice.ops.services import dashboard_refresh
from tests.alerts.factories import AlertRuleFactory

pytestmark = pytest.mark.django_db


def test_the_panel_shows_what_fires_now_to_ops_and_not_to_analysts(client, ops, analyst, redis_client):
    AlertRuleFactory(name="queue piling up", threshold=10, firing_since=timezone.now(), last_value=42)
    AlertRuleFactory(name="all quiet", threshold=10, last_value=1)
    assert dashboard_refresh(panels=["alerts"]) == {"alerts": "ok"}

    client.force_login(ops)
    page = client.get(reverse("admin:index")).content.decode()
    assert "Alerts firing now" in page and "queue piling up" in page and "42 / 10" in page
    assert "all quiet" not in page

    client.force_login(analyst)
    page = client.get(reverse("admin:index")).content.decode()
    assert "Alerts firing now" not in page and "queue piling up" not in page
