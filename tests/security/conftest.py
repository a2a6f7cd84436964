# The ops fixtures (a real Flower process) serve these tests too; the role users come from tests/conftest.py.
from tests.ops.conftest import live_flower  # noqa: F401
