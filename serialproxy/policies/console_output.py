"""Who may read the console log of a server."""

from oslo_policy import policy

from serialproxy.policies import base

NAME = 'serialproxy:console_output:show'

rules = [
    policy.DocumentedRuleDefault(
        name=NAME,
        check_str=base.PROJECT_MEMBER_OR_ADMIN,
        description='Read a server\'s console output. Boot logs can hold '
                    'secrets, so as Nova: members, not readers.',
        operations=[{'method': 'POST',
                     'path': '/servers/{server_id}/action '
                             '(os-getConsoleOutput)'}],
        scope_types=['project']),
]


def list_rules():
    return rules
