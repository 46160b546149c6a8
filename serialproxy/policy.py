"""The policy enforcer: one per process, rules from serialproxy.policies."""

import re
import threading
import time

from oslo_policy import _checks
from oslo_policy import policy as oslo_policy

from serialproxy import conf as sp_conf
from serialproxy import exception
from serialproxy import policies

CONF = sp_conf.CONF

# What a target's owner fields hold while the owner is not known yet: no
# credential equals it (HTTP headers, where credentials come from, cannot
# carry a NUL), so every check on the owner fails on it.
UNKNOWN_OWNER = '\x00'
# Checks that pass for a known owner whenever they pass for UNKNOWN_OWNER:
# on it they fail unless they do not look at the target at all. Not
# NotCheck (it turns such a failure into a pass) nor checks that ask
# another service (http:).
_OWNER_MONOTONE_LEAVES = (_checks.RoleCheck, _checks.GenericCheck,
                          _checks.TrueCheck, _checks.FalseCheck)

# The fields of a policy target that say who owns it (servers.target).
OWNER_FIELDS = ('project_id', 'user_id')
_TARGET_FIELD = re.compile(r'%\((\w+)\)s')

_ENFORCER = None
_ENFORCER_LOCK = threading.Lock()
# How often the policy file and policy.d are looked for and checked for
# changes. oslo.policy does it on every check: with no policy file it
# searches every config directory again each time, a sixth of a console
# URL's CPU in the API, several checks per request.
POLICY_FILE_CHECK_INTERVAL = 1.0
_next_file_check = 0.0


def get_enforcer():
    """The process's enforcer; also the oslo.policy.enforcer entry point.

    Published only once its rules are registered and loaded: the first
    requests of an API worker's threads arrive together, and one must
    not find a half-made enforcer (PolicyNotRegistered, a 500).
    """
    global _ENFORCER
    if _ENFORCER is None:
        with _ENFORCER_LOCK:
            if _ENFORCER is None:
                enforcer = oslo_policy.Enforcer(CONF)
                enforcer.register_defaults(policies.list_rules())
                _reload_if_changed(enforcer)
                _ENFORCER = enforcer
    elif time.monotonic() >= _next_file_check:
        with _ENFORCER_LOCK:
            if time.monotonic() >= _next_file_check:
                _reload_if_changed(_ENFORCER)
    return _ENFORCER


def _reload_if_changed(enforcer):
    """Load the rules if the policy files changed, then let the checks
    until the next interval use them as they are (use_conf off: an
    enforce() then leaves the files alone)."""
    global _next_file_check
    enforcer.use_conf = True
    enforcer.load_rules()
    enforcer.use_conf = False
    _next_file_check = time.monotonic() + POLICY_FILE_CHECK_INTERVAL


def reset():
    """Forget the enforcer, so tests see the rules of their own CONF."""
    global _ENFORCER, _next_file_check
    _next_file_check = 0.0
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


def allows(context, action, target):
    """Whether context may do action, without raising."""
    try:
        return bool(get_enforcer().enforce(action, target, context))
    except oslo_policy.InvalidScope:
        return False


def check_is_admin(context):
    """Whether context passes the context_is_admin rule."""
    return get_enforcer().enforce(
        'context_is_admin', {'project_id': context.project_id}, context)


def _passes_for_every_owner(check, rules, depth=0):
    """Whether check, having passed on UNKNOWN_OWNER, passes on any owner:
    true of and/or trees of monotone leaves (a rule: reference is
    followed; a missing rule fails, as oslo.policy has it)."""
    if depth > 16:  # a cycle of rule: references, or a tree too deep
        return False
    if isinstance(check, (oslo_policy.AndCheck, oslo_policy.OrCheck)):
        return all(_passes_for_every_owner(c, rules, depth + 1)
                   for c in check.rules)
    if isinstance(check, oslo_policy.RuleCheck):
        rule = rules.get(check.match)
        return rule is None or _passes_for_every_owner(rule, rules,
                                                       depth + 1)
    return type(check) in _OWNER_MONOTONE_LEAVES


def authorized_for_any_owner(context, action, project_id=None):
    """Whether context may do action to a target of project_id (of any
    project when None), whoever in it owns the target.

    For a call that learns the owner only once it is done: when this is
    true, authorize() on the real owner would pass as well. False when
    the rule refuses an unknown owner, or could refuse a known one that
    it accepted unknown (a "not" on the owner): the caller then looks the
    owner up first and calls authorize().
    """
    target = {'project_id': UNKNOWN_OWNER if project_id is None
              else project_id,
              'user_id': UNKNOWN_OWNER}
    try:
        authorize(context, action, target)
    except exception.PolicyNotAuthorized:
        return False
    enforcer = get_enforcer()
    return _passes_for_every_owner(enforcer.rules.get(action),
                                   enforcer.rules)


def reads_unknown_owner(action, project_id=None):
    """Whether action's rule may read an owner field that is unknown while
    only project_id (nothing, when None) is: then a refusal by
    authorized_for_any_owner() is not yet the answer for the real owner.
    Otherwise the rule's answer is the same whoever owns the target.
    """
    unknown = set(OWNER_FIELDS)
    if project_id is not None:
        unknown.discard('project_id')
    enforcer = get_enforcer()
    return _looks_at(enforcer.rules.get(action), enforcer.rules, unknown)


def _looks_at(check, rules, fields, depth=0):
    """Whether check may read one of fields of the target: a leaf that
    substitutes one into its match, or one it cannot see into."""
    if depth > 16:
        return True
    if isinstance(check, (oslo_policy.AndCheck, oslo_policy.OrCheck)):
        return any(_looks_at(c, rules, fields, depth + 1)
                   for c in check.rules)
    if isinstance(check, _checks.NotCheck):
        return _looks_at(check.rule, rules, fields, depth + 1)
    if isinstance(check, oslo_policy.RuleCheck):
        rule = rules.get(check.match)
        return rule is not None and _looks_at(rule, rules, fields,
                                              depth + 1)
    if isinstance(check, (_checks.TrueCheck, _checks.FalseCheck)):
        return False
    if isinstance(check, (_checks.RoleCheck, _checks.GenericCheck)):
        return bool(fields & set(_TARGET_FIELD.findall(check.match)))
    return True
