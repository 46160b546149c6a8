"""serialproxy-console --ssh: which host keys it trusts, how it runs ssh."""

import asyncssh
import fixtures

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
        self.assertEqual(['-p', '2222', '--', 'u.port0@192.0.2.9'],
                         argv[-4:])

    def test_refused_key_exits_1_with_the_apis_reason(self):
        self.assertEqual(1, console_ssh.main([
            'no-such-server', '--api-url', 'http://127.0.0.1:9']))


class DestinationTest(base.TestCase):
    """The API's user@host reaches ssh only when it is a user and a host."""

    def answer(self, user='u.port0', host='192.0.2.9', port=2222):
        return {'user': user, 'host': host, 'port': port, 'host_keys': [],
                'host_key_fingerprints': []}

    def test_destination_follows_double_dash(self):
        argv = console_ssh.ssh_argv(
            'ssh', self.answer(), '/tmp/id', '/tmp/kh')
        self.assertEqual(['--', 'u.port0@192.0.2.9'], argv[-2:])

    def test_user_and_host_names_and_addresses_pass(self):
        for user, host in (
                ('6f1d5c9e-0a8b-4f37-9a52-2f4e0b7c1d11.port0',
                 'console.example.com'),
                ('u.port0', '2001:db8::1'), ('u_1.port12', 'lb-1.')):
            self.assertEqual(
                '%s@%s' % (user, host), console_ssh.ssh_destination(
                    self.answer(user, host)))

    def test_bad_users_hosts_and_ports_are_refused(self):
        for answer in (self.answer(user='-oProxyCommand=touch x'),
                       self.answer(user='-l'), self.answer(user=''),
                       self.answer(user='a@b'), self.answer(user='a b'),
                       self.answer(user='a/b'), self.answer(user='a\nb'),
                       self.answer(host='-oProxyCommand=touch x'),
                       self.answer(host='-h'), self.answer(host=''),
                       self.answer(host='a b'), self.answer(host='h\n'),
                       self.answer(host='h;id'), self.answer(host='-a.b'),
                       self.answer(host='a' * 64 + '.example'),
                       self.answer(host=None), self.answer(user=7),
                       self.answer(port='-1'), self.answer(port=0),
                       self.answer(port=70000)):
            self.assertRaises(console_ssh.ConsoleSSHError,
                              console_ssh.ssh_destination, answer)

    def test_user_starting_with_dash_exits_1_without_running_ssh(self):
        stderr = self.useFixture(fixtures.StringStream('stderr'))
        self.useFixture(fixtures.MonkeyPatch('sys.stderr', stderr.stream))
        run = self.useFixture(fixtures.MockPatch(
            'subprocess.call', return_value=0)).mock
        answer = self.answer(user='-oProxyCommand=touch x')
        line, fingerprint = host_key()
        answer.update(host_keys=[line], host_key_fingerprints=[fingerprint])
        self.useFixture(fixtures.MockPatch(
            'serialproxy.cmd.console_ssh.push_key', return_value=answer))
        self.assertEqual(1, console_ssh.main(['server']))
        run.assert_not_called()
        stderr.stream.flush()
        self.assertIn("the API gave an SSH user that is not a user name: "
                      "'-oProxyCommand=touch x'",
                      stderr.getDetails()['stderr'].as_text())
