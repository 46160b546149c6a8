"""Who may see and end live console sessions (our extension)."""

from oslo_policy import policy

from serialproxy.policies import base

PREFIX = 'serialproxy:console_sessions:%s'

rules = [
    policy.DocumentedRuleDefault(
        name=PREFIX % 'index',
        check_str=base.PROJECT_READER_OR_ADMIN,
        description='List the live serial console sessions of a server, '
                    'so a project can see who holds its console.',
        operations=[{'method': 'GET',
                     'path': '/servers/{server_id}/serial-console/sessions'}],
        scope_types=['project']),
    policy.DocumentedRuleDefault(
        name=PREFIX % 'delete',
        check_str=base.ADMIN,
        description='Force-disconnect one or all serial console sessions '
                    'of a server, optionally revoking its console tokens.',
        operations=[
            {'method': 'DELETE',
             'path': '/servers/{server_id}/serial-console/sessions'},
            {'method': 'DELETE',
             'path': '/servers/{server_id}/serial-console/sessions/'
                     '{session_id}'}],
        scope_types=['project']),
]


def list_rules():
    return rules
