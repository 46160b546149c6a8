"""Default policy rules, in code; etc/serialproxy/policy.yaml.sample is
generated from them (``tox -e genpolicy``) and operators override them in
a policy file.
"""

import itertools

from serialproxy.policies import base
from serialproxy.policies import console_access
from serialproxy.policies import console_auth_tokens
from serialproxy.policies import console_modes
from serialproxy.policies import console_output
from serialproxy.policies import console_sessions
from serialproxy.policies import remote_consoles
from serialproxy.policies import serial_console_keys
from serialproxy.policies import serial_console_output
from serialproxy.policies import servers
from serialproxy.policies import ssh_keys


def list_rules():
    return list(itertools.chain(
        base.list_rules(),
        servers.list_rules(),
        remote_consoles.list_rules(),
        console_output.list_rules(),
        console_auth_tokens.list_rules(),
        console_sessions.list_rules(),
        serial_console_keys.list_rules(),
        serial_console_output.list_rules(),
        ssh_keys.list_rules(),
        console_modes.list_rules(),
        console_access.list_rules(),
    ))
