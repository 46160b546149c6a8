"""Who may read a server's serial console history by byte offset."""

from oslo_policy import policy

from serialproxy.policies import base

NAME = 'serialproxy:serial_console_output:show'

rules = [
    policy.DocumentedRuleDefault(
        name=NAME,
        check_str=base.PROJECT_READER_OR_ADMIN,
        description='Read what a server\'s serial console printed, by '
                    'byte offset since boot. Readers of the owning '
                    'project may: it takes no seat on the console and '
                    'types nothing. Operators who treat boot output as '
                    'secret tighten it to members.',
        operations=[{'method': 'GET',
                     'path': '/servers/{server_id}/serial-console/output'}],
        scope_types=['project']),
]


def list_rules():
    return rules
