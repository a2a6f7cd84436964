# The ops fixtures (an ops user, a real Flower process) serve these tests too.
from tests.ops.conftest import live_flower, ops_user  # noqa: F401
