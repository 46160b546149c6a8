"""The one CONF of serialproxy, with every option group registered."""

from oslo_config import cfg

from serialproxy.conf import api
from serialproxy.conf import compute
from serialproxy.conf import console
from serialproxy.conf import console_access
from serialproxy.conf import consoleauth
from serialproxy.conf import database
from serialproxy.conf import libvirt
from serialproxy.conf import serial_console
from serialproxy.conf import service
from serialproxy.conf import ssh

CONF = cfg.CONF

OPTION_MODULES = (api, compute, console, console_access, consoleauth,
                  database, libvirt, serial_console, service, ssh)

for _module in OPTION_MODULES:
    _module.register_opts(CONF)
