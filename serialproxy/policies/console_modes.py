"""Who may watch a console (mode=view) or take it over (mode=take_over).

The proxy has no policy of its own: when the API issues a console URL it
checks these rules for the requester and records the modes that passed
with the token in consoleauth; the proxy's lease call then refuses a mode
the token does not carry (403). Typing ('write') is the URL's own rule
(serialproxy.policies.remote_consoles); a watch-only URL ("mode": "view"
in the request) needs the view rule alone and carries no 'write'. A
one-time SSH key carries 'view' likewise, for a .view user.
"""

from oslo_policy import policy

from serialproxy.policies import base

VIEW = 'serialproxy:serial_console:view'
TAKE_OVER = 'serialproxy:serial_console:take_over'

# mode in the console URL's query -> the rule allowing it
RULE_OF_MODE = {'view': VIEW, 'take_over': TAKE_OVER}

_OPERATIONS = [{'method': 'POST',
                'path': '/servers/{server_id}/remote-consoles'}]
_VIEW_OPERATIONS = _OPERATIONS + [
    {'method': 'POST', 'path': '/servers/{server_id}/serial-console/ssh-keys'}]

rules = [
    policy.DocumentedRuleDefault(
        name=VIEW,
        check_str=base.PROJECT_READER_OR_ADMIN,
        description='Watch a serial console read-only (mode=view in the '
                    'console URL) while another user types in it. Checked '
                    'when the URL is issued, and carried by its token. '
                    'Also lets a user obtain a watch-only console URL '
                    '("mode": "view" in the request body) without '
                    'serialproxy:remote_consoles:create: its token can '
                    'neither type in the console nor take it over. '
                    'Checked too when a one-time SSH key is pushed, and '
                    'carried by the key: its user may then watch as '
                    '<server id>.port<N>.view.',
        operations=_VIEW_OPERATIONS,
        scope_types=['project']),
    policy.DocumentedRuleDefault(
        name=TAKE_OVER,
        check_str=base.PROJECT_MEMBER_OR_ADMIN,
        description='Take a serial console over from its current user '
                    '(mode=take_over in the console URL), who is '
                    'disconnected with close code 4006. Checked when the '
                    'URL is issued, and carried by its token.',
        operations=_OPERATIONS,
        scope_types=['project']),
]


def list_rules():
    return rules
