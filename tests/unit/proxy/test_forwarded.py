import email.message

from serialproxy.proxy import forwarded
from serialproxy.proxy.refusals import Refusal
from tests.unit import base


def headers(*pairs):
    message = email.message.Message()
    for name, value in pairs:
        message[name] = value
    return message


class TrustedProxiesTest(base.TestCase):
    trusted = forwarded.TrustedProxies(['10.0.0.0/24', '2001:db8::1'])

    def test_addresses_and_networks_are_trusted_others_not(self):
        self.assertIn('10.0.0.7', self.trusted)
        self.assertIn('2001:db8::1', self.trusted)
        self.assertIn('::ffff:10.0.0.7', self.trusted)
        self.assertNotIn('10.0.1.7', self.trusted)
        self.assertNotIn('2001:db8::2', self.trusted)
        self.assertNotIn('not-an-address', self.trusted)
        self.assertNotIn('10.0.0.7', forwarded.TrustedProxies())

    def test_a_bad_entry_is_an_error_naming_it(self):
        exc = self.assertRaises(forwarded.InvalidTrustedProxy,
                                forwarded.TrustedProxies, ['10.0.0.0/33'])
        self.assertIn('10.0.0.0/33', str(exc))

    def test_forwarded_for_from_a_trusted_peer_names_the_client(self):
        self.assertEqual(
            ('198.51.100.7', 'https'),
            self.trusted.client('10.0.0.5', headers(
                ('X-Forwarded-For', '198.51.100.7'),
                ('X-Forwarded-Proto', 'HTTPS'))))

    def test_headers_from_any_other_peer_are_ignored(self):
        self.assertEqual(
            ('192.0.2.9', None),
            self.trusted.client('192.0.2.9', headers(
                ('X-Forwarded-For', '198.51.100.7'),
                ('X-Forwarded-Proto', 'https'))))

    def test_rightmost_untrusted_address_of_the_chain_is_the_client(self):
        # The client wrote 203.0.113.66 itself; 198.51.100.7 is what the
        # first trusted hop saw; 10.0.0.9 is a second trusted hop.
        self.assertEqual(
            '198.51.100.7',
            self.trusted.client('10.0.0.5', headers(
                ('X-Forwarded-For', '203.0.113.66, 198.51.100.7'),
                ('X-Forwarded-For', '10.0.0.9')))[0])

    def test_forged_garbage_left_of_the_client_is_never_read(self):
        self.assertEqual(
            '198.51.100.7',
            self.trusted.client('10.0.0.5', headers(
                ('X-Forwarded-For', 'made-up, 198.51.100.7')))[0])

    def test_a_chain_of_trusted_hops_only_names_its_first(self):
        self.assertEqual(
            '10.0.0.8',
            self.trusted.client('10.0.0.5', headers(
                ('X-Forwarded-For', '10.0.0.8, 10.0.0.9')))[0])

    def test_without_the_headers_the_trusted_peer_is_the_client(self):
        self.assertEqual(('10.0.0.5', None),
                         self.trusted.client('10.0.0.5', headers()))

    def test_ports_and_brackets_are_taken_off(self):
        for written, client in (('198.51.100.7:4711', '198.51.100.7'),
                                ('[2001:db8::7]:4711', '2001:db8::7'),
                                ('[2001:db8::7]', '2001:db8::7'),
                                ('2001:db8::7', '2001:db8::7')):
            self.assertEqual(client, self.trusted.client(
                '10.0.0.5', headers(('X-Forwarded-For', written)))[0])

    def test_malformed_headers_from_a_trusted_peer_are_400(self):
        for pair in (('X-Forwarded-For', 'not-an-address'),
                     ('X-Forwarded-For', ''),
                     ('X-Forwarded-For', '198.51.100.7,,'),
                     ('X-Forwarded-Proto', 'gopher')):
            refusal = self.assertRaises(
                Refusal, self.trusted.client, '10.0.0.5', headers(pair))
            self.assertEqual(400, refusal.status)
            self.assertIn(pair[0], refusal.reason)

    def test_proto_chain_takes_the_nearest_hop(self):
        self.assertEqual('http', self.trusted.client('10.0.0.5', headers(
            ('X-Forwarded-Proto', 'https, http')))[1])
