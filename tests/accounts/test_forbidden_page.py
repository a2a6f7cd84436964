"""A refused page is the admin's frame with a way back; under /api/ a refusal stays JSON."""

import pytest

from backoffice.accounts.roles import ANALYSTS
from tests.accounts.staff import staff_user

pytestmark = pytest.mark.django_db


def test_a_refused_page_keeps_the_portal_frame_and_offers_a_way_back(client):
    client.force_login(staff_user("analyst", role=ANALYSTS))

    response = client.get("/ops/workers/", HTTP_REFERER="http://testserver/admin/")

    assert response.status_code == 403
    page = response.content.decode()
    assert 'id="header"' in page and 'id="nav-sidebar"' in page
    assert 'id="go-back" href="http://testserver/admin/"' in page
    assert 'id="go-home" href="/admin/"' in page


def test_a_refusal_never_links_back_to_another_site(client):
    client.force_login(staff_user("analyst", role=ANALYSTS))

    page = client.get("/ops/workers/", HTTP_REFERER="https://evil.example/").content.decode()

    assert "evil.example" not in page
    assert 'id="go-home"' in page
