"""Who may look up what a console token opens."""

from oslo_policy import policy

from serialproxy.policies import base

NAME = 'serialproxy:console_auth_tokens:show'

rules = [
    policy.DocumentedRuleDefault(
        name=NAME,
        check_str=base.ADMIN,
        description='Show the instance, host and port a console token '
                    'opens. Operators only: it reveals hypervisor '
                    'addresses.',
        operations=[{'method': 'GET',
                     'path': '/os-console-auth-tokens/{console_token}'}],
        scope_types=['project']),
]


def list_rules():
    return rules
