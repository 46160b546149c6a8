"""RPC over the in-process transport, with real servers, for unit tests."""

import fixtures
import oslo_messaging as messaging

from serialproxy import conf as sp_conf
from serialproxy import rpc


class InProcessRPC(fixtures.Fixture):
    """Initialises serialproxy.rpc in process, as serialproxy-all does;
    serves endpoints."""

    def _setUp(self):
        rpc.init(sp_conf.CONF, transport_url=rpc.IN_PROCESS_TRANSPORT_URL)
        self.addCleanup(rpc.cleanup)

    def serve(self, topic, endpoint, server='test-host'):
        target = messaging.Target(topic=topic, server=server)
        rpc_server = rpc.get_server(target, [endpoint])
        rpc_server.start()

        def stop():
            rpc_server.stop()
            rpc_server.wait()
        self.addCleanup(stop)
