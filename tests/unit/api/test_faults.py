import json

from serialproxy.api import faults
from serialproxy import exception
from tests.unit import base


class FromExceptionTest(base.TestCase):
    def body(self, exc):
        resp = faults.from_exception(exc)
        return resp.status_int, json.loads(resp.body)

    def test_exhausted_port_range_is_a_400_with_the_reason(self):
        status, body = self.body(exception.PortRangeExhausted(
            port_range='10000:20000', host='compute-1', busy=2))
        self.assertEqual(400, status)
        fault = body['badRequest']
        self.assertEqual(400, fault['code'])
        self.assertIn('No free serial console port', fault['message'])
        self.assertIn('10000:20000', fault['message'])
        self.assertIn('compute-1', fault['message'])

    def test_too_many_serial_ports_is_a_400(self):
        status, body = self.body(exception.SerialPortNumberLimitExceeded(
            allowed=3, virt_type='qemu'))
        self.assertEqual(400, status)
        self.assertIn('exceeds 3 for qemu', body['badRequest']['message'])

    def test_missing_console_log_is_a_404(self):
        status, body = self.body(exception.ConsoleLogNotFound(
            instance_uuid='u-1', reason='none configured'))
        self.assertEqual(404, status)
        self.assertIn('u-1 has no serial console log',
                      body['itemNotFound']['message'])
