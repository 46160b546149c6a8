"""Who may see servers in the read-only servers view."""

from oslo_policy import policy

from serialproxy.policies import base

PREFIX = 'serialproxy:servers:%s'

rules = [
    policy.DocumentedRuleDefault(
        name=PREFIX % 'index',
        check_str=base.PROJECT_READER_OR_ADMIN,
        description='List the servers of the caller\'s project.',
        operations=[{'method': 'GET', 'path': '/servers'},
                    {'method': 'GET', 'path': '/servers/detail'}],
        scope_types=['project']),
    policy.DocumentedRuleDefault(
        name=PREFIX % 'index:get_all_tenants',
        check_str=base.ADMIN,
        description='List the servers of every project '
                    '(all_tenants=1 / all_projects).',
        operations=[{'method': 'GET', 'path': '/servers'},
                    {'method': 'GET', 'path': '/servers/detail'}],
        scope_types=['project']),
    policy.DocumentedRuleDefault(
        name=PREFIX % 'show',
        check_str=base.PROJECT_READER_OR_ADMIN,
        description='Show one server.',
        operations=[{'method': 'GET', 'path': '/servers/{server_id}'}],
        scope_types=['project']),
    policy.DocumentedRuleDefault(
        name=PREFIX % 'show:host_status',
        check_str=base.ADMIN,
        description='See the compute host attributes of a server '
                    '(OS-EXT-SRV-ATTR:*, host_status).',
        operations=[{'method': 'GET', 'path': '/servers/{server_id}'},
                    {'method': 'GET', 'path': '/servers/detail'}],
        scope_types=['project']),
]


def list_rules():
    return rules
