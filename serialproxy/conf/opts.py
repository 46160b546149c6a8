"""Feeds oslo-config-generator through the oslo.config.opts entry point."""

import collections

from serialproxy import conf


def list_opts():
    """Our option groups, merged by group, for the sample generator."""
    grouped = collections.defaultdict(list)
    for module in conf.OPTION_MODULES:
        for group, opts in module.list_opts().items():
            grouped[group].extend(opts)
    return [(group, opts) for group, opts in grouped.items()]
