"""Who may press SysRq keys on a server, and who may inject an NMI."""

from oslo_policy import policy

from serialproxy.policies import base

SYSRQ = 'serialproxy:serial_console:sysrq'
NMI = 'serialproxy:serial_console:nmi'

rules = [
    policy.DocumentedRuleDefault(
        name=SYSRQ,
        check_str=base.PROJECT_MEMBER_OR_ADMIN,
        description='Send a SysRq key to a server (Alt+SysRq+key on its '
                    'keyboard): who may use its console may ask its kernel '
                    'for help, a sync or a reboot.',
        operations=[{'method': 'POST',
                     'path': '/servers/{server_id}/serial-console/sysrq'}],
        scope_types=['project']),
    policy.DocumentedRuleDefault(
        name=NMI,
        check_str=base.ADMIN,
        description='Inject a non-maskable interrupt into a server. Guests '
                    'often panic on one (kernel.panic_on_unrecovered_nmi, '
                    'kdump), so administrators only.',
        operations=[{'method': 'POST',
                     'path': '/servers/{server_id}/serial-console/nmi'}],
        scope_types=['project']),
]


def list_rules():
    return rules
