"""Who may see and set the serial console access switches.

A project's switch decides for its servers without one of their own; a
server's switch wins over its project's; the cloud's [console]
access_default = forced_off wins over both (serialproxy/consoleauth/
access.py). By default only administrators set a project's switch, and a
server's may also be set by its own project's members: a site that wants
a project's "off" to hold against its members sets the server rule to
admin too, or uses forced_off.
"""

from oslo_policy import policy

from serialproxy.policies import base

PREFIX = 'serialproxy:serial_console_access:%s'
PROJECT_SHOW = PREFIX % 'project:show'
PROJECT_UPDATE = PREFIX % 'project:update'
PROJECT_INDEX = PREFIX % 'project:index'
SERVER_SHOW = PREFIX % 'server:show'
SERVER_UPDATE = PREFIX % 'server:update'

_PROJECT_PATH = '/os-serial-console-access/{project_id}'
_SERVER_PATH = '/servers/{server_id}/serial-console/access'

rules = [
    policy.DocumentedRuleDefault(
        name=PROJECT_SHOW,
        check_str=base.PROJECT_READER_OR_ADMIN,
        description='See whether a project\'s servers may open serial '
                    'consoles, and which level decided.',
        operations=[{'method': 'GET', 'path': _PROJECT_PATH}],
        scope_types=['project']),
    policy.DocumentedRuleDefault(
        name=PROJECT_UPDATE,
        check_str=base.ADMIN,
        description='Turn serial console access of a project on or off, '
                    'or back to the cloud\'s default. Turning it off ends '
                    'the project\'s live console sessions (close code '
                    '4009) and drops its one-time SSH keys.',
        operations=[{'method': 'PUT', 'path': _PROJECT_PATH},
                    {'method': 'DELETE', 'path': _PROJECT_PATH}],
        scope_types=['project']),
    policy.DocumentedRuleDefault(
        name=PROJECT_INDEX,
        check_str=base.ADMIN,
        description='List the projects whose serial console access '
                    'switch is set.',
        operations=[{'method': 'GET', 'path': '/os-serial-console-access'}],
        scope_types=['project']),
    policy.DocumentedRuleDefault(
        name=SERVER_SHOW,
        check_str=base.PROJECT_READER_OR_ADMIN,
        description='See whether a server\'s serial console may be '
                    'opened, and which level decided.',
        operations=[{'method': 'GET', 'path': _SERVER_PATH}],
        scope_types=['project']),
    policy.DocumentedRuleDefault(
        name=SERVER_UPDATE,
        check_str=base.PROJECT_MEMBER_OR_ADMIN,
        description='Turn serial console access of one server on or off, '
                    'or back to its project\'s. A server\'s switch wins '
                    'over its project\'s (not over the cloud\'s '
                    'forced_off); set this rule to rule:context_is_admin '
                    'so that members cannot reopen a server in a project '
                    'an administrator turned off.',
        operations=[{'method': 'PUT', 'path': _SERVER_PATH},
                    {'method': 'DELETE', 'path': _SERVER_PATH}],
        scope_types=['project']),
]


def list_rules():
    return rules
