import json

from serialproxy.api import faults
from serialproxy import exception
from tests.unit import base


class FromExceptionTest(base.TestCase):
    def body(self, exc):
        resp = faults.from_exception(exc, admin=True)
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


class TenantFaultTest(base.TestCase):
    """Only an admin's fault names a compute host or a file path."""

    INTERNAL = [
        (exception.HypervisorUnavailable(host='compute-7'), 'compute-7'),
        (exception.PortPoolUnavailable(host='compute-7', reason='locked'),
         'compute-7'),
        (exception.PortRangeExhausted(port_range='10000:20000',
                                      host='compute-7', busy=2),
         'compute-7'),
        (exception.ConsoleLogNotFound(
            instance_uuid='u-1',
            reason='/var/log/libvirt/qemu/u-1-serial.log does not exist'),
         '/var/log'),
        (exception.ConsoleOutputUnavailable(host='compute-7',
                                            instance_uuid='u-1'),
         'compute-7'),
    ]

    def message(self, exc, admin):
        resp = faults.from_exception(exc, admin=admin)
        [fault] = json.loads(resp.body).values()
        return resp.status_int, fault['message']

    def test_non_admin_faults_name_no_host_nor_path(self):
        for exc, internal in self.INTERNAL:
            status, message = self.message(exc, admin=False)
            self.assertEqual(exc.code, status)
            self.assertNotIn(internal, message)
            self.assertTrue(message)

    def test_admin_faults_keep_host_and_path(self):
        for exc, internal in self.INTERNAL:
            self.assertIn(internal, self.message(exc, admin=True)[1])

    def test_faults_without_internals_read_the_same_for_everyone(self):
        exc = exception.InstanceNotRunning(instance_uuid='u-1')
        self.assertEqual(self.message(exc, admin=True),
                         self.message(exc, admin=False))
