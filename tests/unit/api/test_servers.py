"""The read-only servers view over the instance registry."""

import hashlib

from tests.unit.api import base


class ServersTest(base.APITestCase):
    def setUp(self):
        super().setUp()
        self.web = self.define(name='web-1')
        self.db = self.define(name='db-1', start=False)
        self.foreign = self.define(name='web-foreign',
                                   project=base.OTHER_PROJECT)

    def names(self, resp):
        self.assertEqual(200, resp.status_int, resp.body)
        return [s['name'] for s in resp.json['servers']]

    def test_index_lists_own_projects_servers_with_links(self):
        resp = self.request('GET', '/v2.1/servers')
        self.assertEqual(['db-1', 'web-1'], self.names(resp))
        server = resp.json['servers'][1]
        self.assertEqual({'id', 'name', 'links'}, set(server))
        self.assertEqual('http://localhost/v2.1/servers/%s' % self.web,
                         server['links'][0]['href'])

    def test_name_filter_is_a_regular_expression_as_in_nova(self):
        self.assertEqual(['web-1'], self.names(
            self.request('GET', '/v2.1/servers?name=^web')))
        self.assertEqual(['db-1'], self.names(
            self.request('GET', '/v2.1/servers/detail?name=db-1')))
        self.assertEqual([], self.names(
            self.request('GET', '/v2.1/servers?name=nothing')))

    def test_invalid_name_pattern_is_400(self):
        self.assertFault(self.request('GET', '/v2.1/servers?name=(('), 400,
                         'badRequest', 'regular expression')

    def test_status_filter(self):
        self.assertEqual(['db-1'], self.names(
            self.request('GET', '/v2.1/servers/detail?status=SHUTOFF')))

    def test_detail_maps_registry_state_to_nova_status(self):
        resp = self.request('GET', '/v2.1/servers/detail')
        by_name = {s['name']: s for s in resp.json['servers']}
        self.assertEqual('ACTIVE', by_name['web-1']['status'])
        self.assertEqual('SHUTOFF', by_name['db-1']['status'])
        self.assertEqual(base.PROJECT, by_name['web-1']['tenant_id'])
        self.assertEqual(base.USER, by_name['web-1']['user_id'])
        self.assertEqual(
            hashlib.sha224((base.PROJECT + base.COMPUTE_HOST).encode())
            .hexdigest(), by_name['web-1']['hostId'])
        self.assertNotIn('OS-EXT-SRV-ATTR:host', by_name['web-1'])

    def test_admin_sees_the_compute_host(self):
        resp = self.request('GET', '/v2.1/servers/%s' % self.web,
                            token='admin', version='2.16')
        server = resp.json['server']
        self.assertEqual(base.COMPUTE_HOST, server['OS-EXT-SRV-ATTR:host'])
        self.assertEqual('UP', server['host_status'])

    def test_fields_follow_the_microversion(self):
        path = '/v2.1/servers/%s' % self.web
        old = self.request('GET', path, version='2.1').json['server']
        new = self.request('GET', path, version='2.26').json['server']
        for field in ('locked', 'description', 'tags'):
            self.assertNotIn(field, old)
            self.assertIn(field, new)

    def test_other_projects_server_is_404_for_members(self):
        self.assertFault(self.request('GET', '/v2.1/servers/%s'
                                      % self.foreign),
                         404, 'itemNotFound')

    def test_reader_may_show(self):
        resp = self.request('GET', '/v2.1/servers/%s' % self.web,
                            token='reader')
        self.assertEqual('web-1', resp.json['server']['name'])

    def test_all_tenants_is_for_admins(self):
        self.assertFault(self.request('GET', '/v2.1/servers?all_tenants=1'),
                         403, 'forbidden')
        names = self.names(self.request(
            'GET', '/v2.1/servers?all_tenants=1', token='admin'))
        self.assertIn('web-foreign', names)
        names = self.names(self.request(
            'GET', '/v2.1/servers?all_tenants=1&project_id=%s'
            % base.OTHER_PROJECT, token='admin'))
        self.assertEqual(['web-foreign'], names)

    def test_admin_without_all_tenants_sees_own_project_only(self):
        self.assertEqual(['db-1', 'web-1'], self.names(
            self.request('GET', '/v2.1/servers', token='admin')))

    def test_limit_and_marker_paginate_with_a_next_link(self):
        resp = self.request('GET', '/v2.1/servers?limit=1')
        self.assertEqual(['db-1'], self.names(resp))
        next_link = resp.json['servers_links'][0]['href']
        self.assertIn('marker=%s' % self.db, next_link)
        resp = self.request('GET', '/v2.1/servers?limit=1&marker=%s'
                            % self.db)
        self.assertEqual(['web-1'], self.names(resp))

    def test_bad_limit_and_unknown_marker_are_400(self):
        self.assertFault(self.request('GET', '/v2.1/servers?limit=-1'),
                         400, 'badRequest', 'limit')
        self.assertFault(self.request('GET', '/v2.1/servers?marker=nope'),
                         400, 'badRequest', 'marker')
        self.assertFault(self.request('GET',
                                      '/v2.1/servers?all_tenants=maybe',
                                      token='admin'),
                         400, 'badRequest', 'all_tenants')

    def test_servers_are_read_only(self):
        resp = self.request('DELETE', '/v2.1/servers/%s' % self.web)
        self.assertFault(resp, 405, 'badMethod')
        self.assertEqual('GET', resp.headers['Allow'])
