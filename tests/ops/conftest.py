import pytest

from tests.accounts.staff import SUPERUSER


@pytest.fixture
def plain_staff(role_user):
    return role_user(None, "plain")


@pytest.fixture
def superuser(role_user):
    return role_user(SUPERUSER, "root")


FLOWER_AUTH = "portal:flower-secret-for-tests"


@pytest.fixture
def live_flower(tmp_path, redis_client, settings):
    """A real Flower process on a free loopback port with basic auth; the portal is pointed at it."""
    from backoffice.embedded_redis import free_port
    from tests import processes

    port = free_port()
    proc = processes.flower(tmp_path, port, FLOWER_AUTH)
    proc.url = f"http://127.0.0.1:{port}/ops/flower"
    settings.FLOWER_URL = proc.url
    settings.FLOWER_BASIC_AUTH = FLOWER_AUTH
    yield proc
    proc.stop()


@pytest.fixture
def flower_down(settings):
    """FLOWER_URL at a loopback port where nothing listens."""
    from backoffice.embedded_redis import free_port

    settings.FLOWER_URL = f"http://127.0.0.1:{free_port()}/ops/flower"
    settings.FLOWER_BASIC_AUTH = FLOWER_AUTH
