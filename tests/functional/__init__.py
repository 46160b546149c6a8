# The world these tests build moved to tests/harness, which benchmarks
# share; its modules are still reachable as tests.functional.<name>.
from tests.harness import fixtures  # noqa: F401
from tests.harness import proxy_world  # noqa: F401
