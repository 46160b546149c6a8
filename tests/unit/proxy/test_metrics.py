import asyncio

from serialproxy.proxy import admin
from serialproxy.proxy import metrics
from tests.unit import base


class ProxyMetricsTest(base.TestCase):
    def test_render_counts_sessions_bytes_refusals_and_setup(self):
        m = metrics.ProxyMetrics()
        m.bytes_to_guest += 12
        m.bytes_to_client += 3400
        m.refused(409, 'Console in use since 2026-01-01T00:00:00+00:00')
        m.refused(401, 'Invalid or expired token')
        m.refused(401, 'Invalid or expired token')
        m.session_set_up(0.02)
        m.session_set_up(3.0)
        text = m.render(active_sessions=7)
        for line in (
                'serialproxy_sessions_active 7',
                'serialproxy_sessions_total 2',
                'serialproxy_bytes_total{direction="to_guest"} 12',
                'serialproxy_bytes_total{direction="to_client"} 3400',
                'serialproxy_refusals_total{status="401",'
                'reason="Invalid or expired token"} 2',
                'serialproxy_session_setup_seconds_bucket{le="0.01"} 0',
                'serialproxy_session_setup_seconds_bucket{le="0.025"} 1',
                'serialproxy_session_setup_seconds_bucket{le="2.5"} 1',
                'serialproxy_session_setup_seconds_bucket{le="5.0"} 2',
                'serialproxy_session_setup_seconds_bucket{le="+Inf"} 2',
                'serialproxy_session_setup_seconds_count 2'):
            self.assertIn(line + '\n', text)

    def test_label_values_are_escaped(self):
        m = metrics.ProxyMetrics()
        m.refused(400, 'a "quoted" \\ reason')
        self.assertIn('reason="a \\"quoted\\" \\\\ reason"', m.render(0))


class FakeProxy:
    def __init__(self):
        self.metrics = metrics.ProxyMetrics()
        self.sessions = {'s': object()}
        self.serving = True

    def all_metrics(self):
        return [self.metrics]


class AdminListenerTest(base.TestCase):
    def get(self, proxy, target, method='GET'):
        async def scenario():
            server = await admin.start(proxy, '127.0.0.1', 0)
            port = server.sockets[0].getsockname()[1]
            reader, writer = await asyncio.open_connection('127.0.0.1', port)
            writer.write(('%s %s HTTP/1.1\r\nHost: x\r\n\r\n'
                          % (method, target)).encode())
            reply = await reader.read()
            writer.close()
            server.close()
            return reply.decode()
        return asyncio.run(scenario())

    def test_metrics_and_healthcheck(self):
        proxy = FakeProxy()
        reply = self.get(proxy, '/metrics')
        self.assertTrue(reply.startswith('HTTP/1.1 200 OK'))
        self.assertIn('text/plain; version=0.0.4', reply)
        self.assertIn('serialproxy_sessions_active 1\n', reply)
        self.assertTrue(self.get(proxy, '/healthcheck').startswith(
            'HTTP/1.1 200 OK'))
        proxy.serving = False
        self.assertTrue(self.get(proxy, '/healthcheck').startswith(
            'HTTP/1.1 503'))

    def test_unknown_paths_and_methods_are_refused(self):
        proxy = FakeProxy()
        self.assertTrue(self.get(proxy, '/').startswith('HTTP/1.1 404'))
        self.assertTrue(self.get(proxy, '/metrics', 'POST').startswith(
            'HTTP/1.1 405'))
