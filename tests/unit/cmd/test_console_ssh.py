"""serialproxy-console --ssh: which host keys it trusts, how it runs ssh."""

import asyncssh

from serialproxy.cmd import console_ssh
from serialproxy.ssh import keys
from tests.unit import base


def host_key():
    key = asyncssh.generate_private_key('ssh-ed25519')
    return (key.export_public_key().decode().strip(),
            key.get_fingerprint('sha256'))


class TrustedHostKeysTest(base.TestCase):

    def answer(self, host_keys, fingerprints):
        return {'host': '192.0.2.9', 'port': 2222, 'user': 'u.port0',
                'host_keys': host_keys,
                'host_key_fingerprints': fingerprints}

    def test_only_keys_with_a_named_fingerprint_are_trusted(self):
        (good, good_fp), (other, _) = host_key(), host_key()
        self.assertEqual([good], console_ssh.trusted_host_keys(
            self.answer([good, other], [good_fp])))

    def test_no_matching_key_is_an_error(self):
        (line, _), (_, other_fp) = host_key(), host_key()
        self.assertRaises(console_ssh.ConsoleSSHError,
                          console_ssh.trusted_host_keys,
                          self.answer([line, 'garbage'], [other_fp]))

    def test_known_hosts_names_a_non_default_port_in_brackets(self):
        line, _ = host_key()
        self.assertEqual('[192.0.2.9]:2222 %s\n' % line,
                         keys.known_hosts_line('192.0.2.9', 2222,
                                               [line + ' comment']))
        self.assertEqual('h %s\n' % line,
                         keys.known_hosts_line('h', 22, [line]))

    def test_ssh_checks_host_keys_strictly_with_one_identity(self):
        argv = console_ssh.ssh_argv(
            'ssh', self.answer([], []), '/tmp/id', '/tmp/kh')
        self.assertIn('StrictHostKeyChecking=yes', argv)
        self.assertIn('IdentitiesOnly=yes', argv)
        self.assertEqual(['-p', '2222', 'u.port0@192.0.2.9'], argv[-3:])

    def test_refused_key_exits_1_with_the_apis_reason(self):
        self.assertEqual(1, console_ssh.main([
            'no-such-server', '--api-url', 'http://127.0.0.1:9']))
