"""Command-line and config-file parsing shared by the service commands."""

from oslo_log import log as logging

from serialproxy import conf as sp_conf

CONF = sp_conf.CONF

# Chatty libraries whose debug output drowns ours.
_QUIET_LOGGERS = ['amqp=WARN', 'amqplib=WARN', 'kombu=WARN',
                  'oslo.messaging=INFO', 'oslo_messaging=INFO',
                  'urllib3=WARN', 'stevedore=WARN', 'websockify=WARN']


def parse_args(argv, default_config_files=None):
    """Parse argv and config files into CONF and set up logging."""
    logging.register_options(CONF)
    logging.set_defaults(
        default_log_levels=logging.get_default_log_levels() + _QUIET_LOGGERS)
    CONF(argv[1:], project='serialproxy',
         default_config_files=default_config_files)
    logging.setup(CONF, 'serialproxy')
