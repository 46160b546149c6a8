"""Rules the others are built from: who is an admin, who owns a server."""

from oslo_policy import policy

# Keystone's default roles imply each other (admin > member > reader) and
# tokens carry the implied roles, so checking the lowest role suffices.
ADMIN = 'rule:context_is_admin'
PROJECT_MEMBER = 'role:member and project_id:%(project_id)s'
PROJECT_READER = 'role:reader and project_id:%(project_id)s'
PROJECT_MEMBER_OR_ADMIN = 'rule:project_member_or_admin'
PROJECT_READER_OR_ADMIN = 'rule:project_reader_or_admin'

rules = [
    policy.RuleDefault(
        'context_is_admin', 'role:admin',
        description='Who is an administrator of the whole cloud: may see '
                    'every server and every console session.'),
    policy.RuleDefault(
        'project_member_or_admin', '%s or (%s)' % (ADMIN, PROJECT_MEMBER),
        description='A member of the project that owns the server, or an '
                    'administrator.'),
    policy.RuleDefault(
        'project_reader_or_admin', '%s or (%s)' % (ADMIN, PROJECT_READER),
        description='A reader of the project that owns the server, or an '
                    'administrator.'),
]


def list_rules():
    return rules
