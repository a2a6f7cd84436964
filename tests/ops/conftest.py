import pytest

from backoffice.accounts.roles import ANALYSTS, OPERATORS, OPS
from tests.accounts.staff import staff_user


@pytest.fixture
def ops_user(db):
    return staff_user("ops", role=OPS)


@pytest.fixture
def operator_user(db):
    return staff_user("operator", role=OPERATORS)


@pytest.fixture
def analyst_user(db):
    return staff_user("analyst", role=ANALYSTS)


@pytest.fixture
def plain_staff(db):
    return staff_user("plain")


@pytest.fixture
def superuser(db):
    return staff_user("root", superuser=True)


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
