"""Admin login lockout (django-axes, turned back on here): per user and client address, the address taken
safely behind the proxy."""

import pytest
from django.test import RequestFactory

from backoffice.accounts.client_ip import client_ip_address
from tests.accounts.staff import PASSWORD

pytestmark = pytest.mark.django_db

LOGIN = "/admin/login/?next=/admin/"


@pytest.fixture
def axes_on(settings):
    settings.AXES_ENABLED = True
    settings.AXES_FAILURE_LIMIT = 5
    settings.TRUSTED_PROXY_COUNT = 0


def _login(client, password, **meta):
    return client.post(LOGIN, {"username": "ops", "password": password}, **meta)


def test_fifth_failure_locks_the_user_at_that_address_even_with_the_right_password(role_user, client, axes_on):
    role_user(None, "ops")
    for _ in range(4):
        assert _login(client, "wrong", REMOTE_ADDR="10.0.0.1").status_code == 200  # the form again
    assert _login(client, "wrong", REMOTE_ADDR="10.0.0.1").status_code == 429

    response = _login(client, PASSWORD, REMOTE_ADDR="10.0.0.1")

    assert response.status_code == 429
    assert "_auth_user_id" not in client.session


def test_the_same_user_from_another_address_still_signs_in(role_user, client, axes_on):
    user = role_user(None, "ops")
    for _ in range(5):
        _login(client, "wrong", REMOTE_ADDR="10.0.0.1")

    response = _login(client, PASSWORD, REMOTE_ADDR="10.0.0.2")

    assert response.status_code == 302 and response["Location"] == "/admin/"
    assert client.session["_auth_user_id"] == str(user.pk)


def test_forged_forwarded_for_does_not_dodge_the_lockout_without_a_proxy(role_user, client, axes_on):
    role_user(None, "ops")
    for attempt in range(5):
        _login(client, "wrong", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR=f"192.0.2.{attempt}")

    assert _login(client, PASSWORD, REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="192.0.2.99").status_code == 429


def test_behind_nginx_the_client_is_the_address_nginx_appended(role_user, client, axes_on, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    role_user(None, "ops")
    for attempt in range(5):  # the attacker forges the left part; nginx appends the real address
        _login(client, "wrong", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR=f"192.0.2.{attempt}, 203.0.113.7")

    locked = _login(client, PASSWORD, REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="1.2.3.4, 203.0.113.7")
    other_client = _login(client, PASSWORD, REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="198.51.100.20")

    assert locked.status_code == 429
    assert other_client.status_code == 302  # everyone behind nginx is not locked out with the attacker


@pytest.mark.parametrize(
    ("proxies", "remote", "forwarded", "expected"),
    [
        (0, "10.0.0.1", "192.0.2.1", "10.0.0.1"),
        (1, "127.0.0.1", "192.0.2.1, 203.0.113.7", "203.0.113.7"),
        (2, "127.0.0.1", "192.0.2.1, 203.0.113.7, 10.1.1.1", "203.0.113.7"),
        (1, "127.0.0.1", "", "127.0.0.1"),
        (2, "127.0.0.1", "203.0.113.7", "127.0.0.1"),
        (1, "127.0.0.1", "192.0.2.1, not-an-address", "127.0.0.1"),
    ],
)
def test_client_address(settings, proxies, remote, forwarded, expected):
    settings.TRUSTED_PROXY_COUNT = proxies
    request = RequestFactory().get("/", REMOTE_ADDR=remote, HTTP_X_FORWARDED_FOR=forwarded)

    assert client_ip_address(request) == expected
