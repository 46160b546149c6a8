"""[console] access_default: the cloud level of the access switch.

In a module of its own (the [console] group's other options are the
proxy's): consoleauth is what reads it, and decides every console's
access from it and the project and server switches in its database
(serialproxy/consoleauth/access.py).
"""

from oslo_config import cfg

from serialproxy.conf import console

ENABLED = 'enabled'
DISABLED = 'disabled'
FORCED_OFF = 'forced_off'

access_opts = [
    cfg.StrOpt('access_default',
               default=ENABLED,
               choices=[
                   (ENABLED, 'Serial consoles are open unless a project '
                             'or server is switched off.'),
                   (DISABLED, 'Serial consoles are closed unless a '
                              'project or server is switched on.'),
                   (FORCED_OFF, 'Every serial console is closed, '
                                'whatever the projects\' and servers\' '
                                'switches say: a break-glass "nobody".'),
               ],
               help='The cloud level of serial console access. A server\'s '
                    'own switch wins over its project\'s, which wins over '
                    'this one (PUT /v2.1/servers/{id}/serial-console/'
                    'access, /v2.1/os-serial-console-access/{project_id}, '
                    'or serialproxy-manage access); forced_off wins over '
                    'them all. Read by serialproxy-consoleauth: set it the '
                    'same in every consoleauth\'s config. A change takes '
                    'effect when consoleauth restarts, which then ends '
                    'the live sessions it turns off (close code 4009).'),
]


def register_opts(conf):
    conf.register_group(console.console_group)
    conf.register_opts(access_opts, group=console.console_group)


def list_opts():
    return {console.console_group: access_opts}
