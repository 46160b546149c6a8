"""Who may push a one-time SSH key for a server's serial console."""

from oslo_policy import policy

from serialproxy.policies import base

NAME = 'serialproxy:serial_console:ssh_key'

rules = [
    policy.DocumentedRuleDefault(
        name=NAME,
        check_str=base.PROJECT_MEMBER_OR_ADMIN,
        description='Push a public key that opens a serial console port '
                    'of a server over SSH once. A console is write access '
                    'to the guest, so readers may not.',
        operations=[{'method': 'POST',
                     'path': '/servers/{server_id}/serial-console/ssh-keys'}],
        scope_types=['project']),
]


def list_rules():
    return rules
