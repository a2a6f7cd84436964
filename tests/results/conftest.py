import pytest

from tests.schedules.helpers import make_staff


@pytest.fixture
def operator(db):
    return make_staff("operator")


@pytest.fixture
def analyst(db):
    return make_staff("analyst")


@pytest.fixture
def ops(db):
    return make_staff("ops")
