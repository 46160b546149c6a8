"""Who may obtain a serial console URL of a server."""

from oslo_policy import policy

from serialproxy.policies import base

NAME = 'serialproxy:remote_consoles:create'

rules = [
    policy.DocumentedRuleDefault(
        name=NAME,
        check_str=base.PROJECT_MEMBER_OR_ADMIN,
        description='Obtain a serial console URL, whose token may type '
                    'in the console (its mode "write"). A console is write '
                    'access to the guest, so readers may not. Also decides '
                    'whether a pushed one-time SSH key may type; a '
                    'watch-only URL needs serialproxy:serial_console:view '
                    'instead.',
        operations=[
            {'method': 'POST', 'path': '/servers/{server_id}/remote-consoles'},
            {'method': 'POST',
             'path': '/servers/{server_id}/action (os-getSerialConsole)'},
            {'method': 'POST',
             'path': '/v2/{tenant_id}/servers/{server_id}/'
                     'get-serial-console'},
            {'method': 'POST',
             'path': '/servers/{server_id}/serial-console/ssh-keys'}],
        scope_types=['project']),
]


def list_rules():
    return rules
