"""The policy enforcer: one per process, rules from serialproxy.policies."""

from oslo_policy import policy as oslo_policy

from serialproxy import conf as sp_conf
from serialproxy import exception
from serialproxy import policies

CONF = sp_conf.CONF

_ENFORCER = None


def get_enforcer():
    """The process's enforcer; also the oslo.policy.enforcer entry point."""
    global _ENFORCER
    if _ENFORCER is None:
        _ENFORCER = oslo_policy.Enforcer(CONF)
        _ENFORCER.register_defaults(policies.list_rules())
    return _ENFORCER


def reset():
    """Forget the enforcer, so tests see the rules of their own CONF."""
    global _ENFORCER
    if _ENFORCER is not None:
        _ENFORCER.clear()
    _ENFORCER = None


def authorize(context, action, target):
    """Raise PolicyNotAuthorized (403) unless context may do action."""
    try:
        return get_enforcer().authorize(
            action, target, context, do_raise=True,
            exc=exception.PolicyNotAuthorized, action=action)
    except oslo_policy.InvalidScope:
        raise exception.PolicyNotAuthorized(action=action)


def check_is_admin(context):
    """Whether context passes the context_is_admin rule."""
    return get_enforcer().enforce(
        'context_is_admin', {'project_id': context.project_id}, context)
