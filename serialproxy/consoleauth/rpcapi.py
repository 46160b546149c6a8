"""Client side of the consoleauth RPC API; what other services import."""

import oslo_messaging as messaging

from serialproxy import rpc

TOPIC = 'serialproxy-consoleauth'


class ConsoleAuthAPI:
    """Calls to topic serialproxy-consoleauth.

    1.0 - initial version
    1.1 - instance_event
    """

    VERSION_CAP = '1.1'

    def __init__(self):
        target = messaging.Target(topic=TOPIC, version='1.0')
        self.client = rpc.get_client(target, version_cap=self.VERSION_CAP)

    def authorize_console(self, ctxt, instance_uuid, compute_host, host,
                          port, index=0, console_type='serial'):
        return self.client.call(
            ctxt, 'authorize_console', instance_uuid=instance_uuid,
            compute_host=compute_host, host=host, port=port, index=index,
            console_type=console_type)

    def check_token(self, ctxt, token):
        return self.client.call(ctxt, 'check_token', token=token)

    def revoke_tokens(self, ctxt, instance_uuid):
        return self.client.call(ctxt, 'revoke_tokens',
                                instance_uuid=instance_uuid)

    def report_instances(self, ctxt, host, instances):
        return self.client.call(ctxt, 'report_instances', host=host,
                                instances=instances)

    def instance_event(self, ctxt, host, event, instance):
        """A call, not a cast: one agent's events then land in order."""
        return self.client.prepare(version='1.1').call(
            ctxt, 'instance_event', host=host, event=event,
            instance=instance)

    def get_instance(self, ctxt, instance_uuid):
        return self.client.call(ctxt, 'get_instance',
                                instance_uuid=instance_uuid)

    def list_instances(self, ctxt, host=None):
        return self.client.call(ctxt, 'list_instances', host=host)
