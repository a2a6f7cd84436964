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
