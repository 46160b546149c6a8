from serialproxy import service
from tests.unit import base


class ComputeServiceStartTest(base.TestCase):
    def test_bad_port_range_stops_the_agent_with_the_reason(self):
        self.flags(group='serial_console', port_range='20000:10000')
        exc = self.assertRaises(SystemExit, service.compute_service_or_exit,
                                'serialproxy-compute')
        self.assertEqual(
            "serialproxy-compute: [serial_console] port_range '20000:10000' "
            "is not valid: lo must be below hi. Expected \"lo:hi\" with "
            "1 <= lo < hi <= 65535.", exc.code)

    def test_unusable_pool_path_stops_the_agent_with_the_path(self):
        self.flags(group='compute', port_pool_path='/proc/no/pool.sqlite')
        exc = self.assertRaises(SystemExit, service.compute_service_or_exit,
                                'serialproxy-compute')
        self.assertIn('/proc/no/pool.sqlite', exc.code)
