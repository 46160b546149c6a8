"""Who may press SysRq keys on a server, and who may inject an NMI.

The REST calls check these rules. The console page cannot make those
calls (it holds a console token, not a Keystone token): when the API
issues a console URL it checks them too and records those that passed
on the token (its modes 'sysrq' and 'nmi'), and the proxy lets the page
send only what its token carries. An SSH user holds a one-time key, not
a token: the API checks them when it takes the key, the key carries
those that passed, and the proxy sends a break's SysRq key only when
'sysrq' is among them.
"""

from oslo_policy import policy

from serialproxy.policies import base

SYSRQ = 'serialproxy:serial_console:sysrq'
NMI = 'serialproxy:serial_console:nmi'

# token mode the console page's menu needs -> the rule allowing it
RULE_OF_PERMISSION = {'sysrq': SYSRQ, 'nmi': NMI}

rules = [
    policy.DocumentedRuleDefault(
        name=SYSRQ,
        check_str=base.PROJECT_MEMBER_OR_ADMIN,
        description='Send a SysRq key to a server (Alt+SysRq+key on its '
                    'keyboard): who may use its console may ask its kernel '
                    'for help, a sync or a reboot. Also checked when a '
                    'console URL is issued (its page then offers SysRq) '
                    'and when a one-time SSH key is pushed (its session '
                    'may then send SysRq after a break, ssh\'s ~B).',
        operations=[{'method': 'POST',
                     'path': '/servers/{server_id}/serial-console/sysrq'},
                    {'method': 'POST',
                     'path': '/servers/{server_id}/remote-consoles'},
                    {'method': 'POST',
                     'path': '/servers/{server_id}/serial-console/'
                             'ssh-keys'}],
        scope_types=['project']),
    policy.DocumentedRuleDefault(
        name=NMI,
        check_str=base.ADMIN,
        description='Inject a non-maskable interrupt into a server. Guests '
                    'often panic on one (kernel.panic_on_unrecovered_nmi, '
                    'kdump), so administrators only. Also checked when a '
                    'console URL is issued (its page then offers NMI) '
                    'and when a one-time SSH key is pushed (recorded on '
                    'it; SSH has no NMI yet).',
        operations=[{'method': 'POST',
                     'path': '/servers/{server_id}/serial-console/nmi'},
                    {'method': 'POST',
                     'path': '/servers/{server_id}/remote-consoles'},
                    {'method': 'POST',
                     'path': '/servers/{server_id}/serial-console/'
                             'ssh-keys'}],
        scope_types=['project']),
]


def list_rules():
    return rules
