"""A read-only servers view, from consoleauth's instance registry.

Enough of Nova's servers API for clients (openstacksdk, OSC, Horizon) to
find a server by id or name before they ask for its console. We own no
server data: every field comes from what the compute agents report, and
fields we cannot know have Nova's empty values.
"""

import hashlib
import re
import urllib.parse

from oslo_utils import strutils

from serialproxy.api import validation
from serialproxy.api.schemas import servers as schemas
from serialproxy import exception
from serialproxy import policy
from serialproxy.policies import servers as server_policies

# Registry state -> (Nova status, vm_state, power_state).
_STATES = {
    'running': ('ACTIVE', 'active', 1),
    'paused': ('PAUSED', 'paused', 3),
    'shutdown': ('SHUTOFF', 'stopped', 4),
    'shutoff': ('SHUTOFF', 'stopped', 4),
    'crashed': ('ERROR', 'error', 6),
    'suspended': ('SUSPENDED', 'suspended', 7),
}
_UNKNOWN_STATE = ('UNKNOWN', None, 0)

MAX_LIMIT = 1000


def lookup(req, consoleauth_api, server_id):
    """The registry entry of a server the caller may see, else 404.

    As in Nova, another project's server does not exist for a non-admin:
    a 403 would confirm that it does.
    """
    ctxt = req.context
    instance = consoleauth_api.get_instance(ctxt.to_rpc(), server_id)
    if not ctxt.is_admin and instance.get('project_id') != ctxt.project_id:
        raise exception.InstanceNotFound(instance_uuid=server_id)
    return instance


def target(instance):
    """The policy target of a server: its owner."""
    return {'project_id': instance.get('project_id'),
            'user_id': instance.get('user_id')}


class ViewBuilder:
    """Nova's server bodies, per microversion, from registry entries."""

    def _links(self, req, server_id):
        base = req.application_url
        return [{'rel': 'self',
                 'href': '%s/v2.1/servers/%s' % (base, server_id)},
                {'rel': 'bookmark',
                 'href': '%s/servers/%s' % (base, server_id)}]

    def basic(self, req, instance):
        return {'id': instance['uuid'], 'name': instance['name'],
                'links': self._links(req, instance['uuid'])}

    def show(self, req, instance, show_host):
        status, vm_state, power_state = _STATES.get(instance['state'],
                                                    _UNKNOWN_STATE)
        project_id = instance.get('project_id') or ''
        host_id = ''
        if instance.get('host'):
            # As Nova: a per-project hash, so tenants can tell whether two
            # servers share a host without learning the host's name.
            host_id = hashlib.sha224(
                (project_id + instance['host']).encode()).hexdigest()
        server = {
            'id': instance['uuid'],
            'name': instance['name'],
            'status': status,
            'tenant_id': project_id,
            'user_id': instance.get('user_id') or '',
            'hostId': host_id,
            'metadata': {},
            'addresses': {},
            'image': '',
            'flavor': {},
            'accessIPv4': '',
            'accessIPv6': '',
            'links': self._links(req, instance['uuid']),
            'OS-EXT-STS:vm_state': vm_state,
            'OS-EXT-STS:power_state': power_state,
            'OS-EXT-STS:task_state': None,
        }
        if show_host:
            server['OS-EXT-SRV-ATTR:host'] = instance.get('host')
            server['OS-EXT-SRV-ATTR:hypervisor_hostname'] = \
                instance.get('host')
        version = req.api_version
        if version >= '2.9':
            server['locked'] = False
        if version >= '2.16' and show_host:
            server['host_status'] = 'UP' if instance.get('host') else ''
        if version >= '2.19':
            server['description'] = None
        if version >= '2.26':
            server['tags'] = []
        return server


class ServersController:
    def __init__(self, consoleauth_api):
        self.consoleauth_api = consoleauth_api
        self.view = ViewBuilder()

    def _may_see_host(self, req, instance):
        return policy.get_enforcer().enforce(
            server_policies.PREFIX % 'show:host_status', target(instance),
            req.context)

    def _list(self, req):
        ctxt = req.context
        policy.authorize(ctxt, server_policies.PREFIX % 'index',
                         {'project_id': ctxt.project_id})
        query = req.GET
        all_tenants = False
        if 'all_tenants' in query:
            try:
                all_tenants = strutils.bool_from_string(
                    query['all_tenants'] or 'true', strict=True)
            except ValueError:
                raise exception.Invalid('Invalid all_tenants value.')
        project_id = ctxt.project_id
        if all_tenants:
            policy.authorize(ctxt,
                             server_policies.PREFIX % 'index:get_all_tenants',
                             {'project_id': ctxt.project_id})
            project_id = query.get('project_id') or query.get('tenant_id')
        instances = self.consoleauth_api.list_instances(ctxt.to_rpc())
        if project_id is not None:
            instances = [i for i in instances
                         if i.get('project_id') == project_id]
        if 'name' in query:
            # Nova matches names as regular expressions.
            try:
                pattern = re.compile(query['name'])
            except re.error:
                raise exception.Invalid('Invalid name filter: not a valid '
                                        'regular expression.')
            instances = [i for i in instances if pattern.search(i['name'])]
        if 'status' in query:
            wanted = query['status'].upper()
            instances = [i for i in instances
                         if _STATES.get(i['state'], _UNKNOWN_STATE)[0] ==
                         wanted]
        instances.sort(key=lambda i: (i['name'], i['uuid']))
        return self._paginate(req, instances)

    def _paginate(self, req, instances):
        query = req.GET
        links = []
        if 'marker' in query:
            uuids = [i['uuid'] for i in instances]
            try:
                start = uuids.index(query['marker']) + 1
            except ValueError:
                raise exception.Invalid('marker [%s] not found'
                                        % query['marker'])
            instances = instances[start:]
        limit = min(int(query.get('limit', MAX_LIMIT)), MAX_LIMIT)
        if len(instances) > limit:
            instances = instances[:limit]
            if instances:
                params = [(k, v) for k, v in query.items() if k != 'marker']
                params.append(('marker', instances[-1]['uuid']))
                links.append({'rel': 'next', 'href': req.path_url + '?' +
                              urllib.parse.urlencode(params)})
        return instances, links

    @validation.query_schema(schemas.index_query)
    def index(self, req):
        """GET /servers: id, name and links of each visible server."""
        instances, links = self._list(req)
        body = {'servers': [self.view.basic(req, i) for i in instances]}
        if links:
            body['servers_links'] = links
        return body

    @validation.query_schema(schemas.index_query)
    def detail(self, req):
        """GET /servers/detail: every field we have of each server."""
        instances, links = self._list(req)
        body = {'servers': [
            self.view.show(req, i, self._may_see_host(req, i))
            for i in instances]}
        if links:
            body['servers_links'] = links
        return body

    def show(self, req, server_id):
        instance = lookup(req, self.consoleauth_api, server_id)
        policy.authorize(req.context, server_policies.PREFIX % 'show',
                         target(instance))
        return {'server': self.view.show(
            req, instance, self._may_see_host(req, instance))}
