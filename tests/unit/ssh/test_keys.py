"""Public keys users push, console user names, and host keys."""

import os
import stat

import asyncssh

from serialproxy import conf as sp_conf
from serialproxy import exception
from serialproxy.ssh import keys
from tests.unit import base

UUID = '0d6a4f3e-6a39-4d0e-8f5e-2b1b2d0e6c11'


def openssh_line(key_type, **options):
    return asyncssh.generate_private_key(
        key_type, **options).export_public_key().decode()


class PublicKeyTest(base.TestCase):

    def test_ed25519_key_gives_the_fingerprint_ssh_prints(self):
        private = asyncssh.generate_private_key('ssh-ed25519')
        key = keys.PublicKey.parse(
            private.export_public_key().decode() + ' user@host\n')
        self.assertEqual(private.get_fingerprint('sha256'), key.fingerprint)
        self.assertTrue(key.fingerprint.startswith('SHA256:'))
        self.assertEqual('ssh-ed25519', key.algorithm)

    def test_ecdsa_key_is_accepted(self):
        key = keys.PublicKey.parse(openssh_line('ecdsa-sha2-nistp256'))
        self.assertEqual('ecdsa-sha2-nistp256', key.algorithm)

    def test_short_rsa_key_is_refused(self):
        error = self.assertRaises(
            exception.InvalidSSHKey, keys.PublicKey.parse,
            openssh_line('ssh-rsa', key_size=1024))
        self.assertIn('2048 bits', str(error))

    def test_unknown_key_types_are_refused_by_name(self):
        for line in ('ssh-dss AAAAB3NzaC1kc3MAAACBAP', 'foo AAAA',
                     'ssh-ed25519-cert-v01@openssh.com AAAA'):
            error = self.assertRaises(exception.InvalidSSHKey,
                                      keys.PublicKey.parse, line)
            self.assertIn('is not accepted', str(error))

    def test_garbage_after_a_known_type_is_refused(self):
        for line in ('ssh-ed25519', 'ssh-ed25519 !!!', 'ssh-ed25519 AAAA'):
            self.assertRaises(exception.InvalidSSHKey,
                              keys.PublicKey.parse, line)

    def test_type_must_match_the_data(self):
        data = openssh_line('ssh-ed25519').split()[1]
        self.assertRaises(exception.InvalidSSHKey,
                          keys.PublicKey.parse, 'ssh-rsa ' + data)

    def test_private_key_is_not_a_public_key(self):
        private = asyncssh.generate_private_key('ssh-ed25519')
        self.assertRaises(exception.InvalidSSHKey, keys.PublicKey.parse,
                          private.export_private_key().decode())

    def test_huge_and_empty_input_is_refused(self):
        for text in ('', '   ', None, 7, 'ssh-ed25519 ' + 'A' * 10000):
            self.assertRaises(exception.InvalidSSHKey,
                              keys.PublicKey.parse, text)


class ConsoleUserTest(base.TestCase):

    def test_user_names_server_and_port(self):
        self.assertEqual((UUID, 2), keys.parse_console_user(UUID + '.port2'))
        self.assertEqual(UUID + '.port0', keys.console_user(UUID, 0))
        self.assertFalse(keys.watches(UUID + '.port2'))

    def test_view_suffix_names_the_same_console_to_watch(self):
        name = keys.console_user(UUID, 1, watching=True)
        self.assertEqual(UUID + '.port1.view', name)
        self.assertEqual((UUID, 1), keys.parse_console_user(name))
        self.assertTrue(keys.watches(name))
        for other in (UUID + '.view', 'root.view'):
            self.assertIsNone(keys.parse_console_user(other), other)
            self.assertFalse(keys.watches(other))
        # A console's name with a suffix that is not an option: refused
        # with a reason, not taken as another name.
        for other in (UUID + '.port1.view.view', UUID + '.port1.viewer'):
            self.assertEqual((UUID, 1), keys.parse_console_user(other))
            self.assertFalse(keys.watches(other))
            self.assertRaises(exception.InvalidConsoleUser,
                              keys.console_user_options, other)

    def test_resume_option_names_the_same_console_with_an_offset(self):
        for name, view in ((UUID + '.port0.resume=1234', False),
                           (UUID + '.port0.view.resume=1234', True),
                           (UUID + '.port0.resume=1234.view', True)):
            self.assertEqual((UUID, 0), keys.parse_console_user(name))
            self.assertEqual(1234,
                             keys.console_user_options(name)['resume'])
            self.assertEqual(view, keys.watches(name))
        for other in (UUID + '.port0.resume', UUID + '.port0.resume=',
                      UUID + '.port0.resume=-1', UUID + '.port0.resume=x',
                      UUID + '.port0.resume=1.resume=2',
                      UUID + '.port0.view=1', UUID + '.port0.rewind=1',
                      UUID + '.port0.resume=' + '1' * 21):
            self.assertRaises(exception.InvalidConsoleUser,
                              keys.console_user_options, other)
            self.assertFalse(keys.watches(other))

    def test_other_names_name_no_console(self):
        for name in ('root', UUID, UUID + '.port', UUID + '.port-1',
                     UUID.upper() + '.port0', UUID + '.port0\n',
                     UUID + '.port0' + 'x' * 100000, '', None,
                     UUID + '.port123'):
            self.assertIsNone(keys.parse_console_user(name), repr(name)[:80])


class ConsoleUserOptionsTest(base.TestCase):
    """What a console user name asks for after its port, as GCP's
    <instance>.port=1.replay-lines=N."""

    def reason(self, name):
        error = self.assertRaises(exception.InvalidConsoleUser,
                                  keys.console_user_options, name)
        return error.message

    def test_plain_name_asks_for_nothing(self):
        self.assertEqual({}, keys.console_user_options(UUID + '.port0'))

    def test_replay_lines_is_a_whole_number_of_lines(self):
        for text, lines in (('500', 500), ('0', 0), ('007', 7)):
            name = UUID + '.port0.replay-lines=' + text
            self.assertEqual((UUID, 0), keys.parse_console_user(name))
            self.assertEqual({'replay-lines': lines},
                             keys.console_user_options(name))

    def test_options_go_with_view_in_any_order(self):
        for name in (UUID + '.port1.view.replay-lines=3',
                     UUID + '.port1.replay-lines=3.view'):
            self.assertEqual({'view': True, 'replay-lines': 3},
                             keys.console_user_options(name))
            self.assertTrue(keys.watches(name))
            self.assertEqual((UUID, 1), keys.parse_console_user(name))

    def test_bad_values_are_refused_with_a_reason(self):
        for text in ('x', '-1', '', '+3', ' 3', '\u0663', '9' * 19):
            reason = self.reason(UUID + '.port0.replay-lines=' + text)
            self.assertIn('replay-lines takes a whole number, 0 or more',
                          reason)
        # A dot begins the next option.
        self.assertIn("unknown option '5'",
                      self.reason(UUID + '.port0.replay-lines=1.5'))

    def test_unknown_and_repeated_options_are_refused_with_a_reason(self):
        reason = self.reason(UUID + '.port0.replay=5')
        self.assertIn("unknown option 'replay=5'", reason)
        self.assertIn('replay-lines=N', reason)
        self.assertIn("unknown option 'replay-lines'",
                      self.reason(UUID + '.port0.replay-lines'))
        self.assertIn("unknown option ''", self.reason(UUID + '.port0.'))
        self.assertIn('replay-lines given twice', self.reason(
            UUID + '.port0.replay-lines=1.replay-lines=2'))
        self.assertIn('names no console', self.reason('root'))

    def test_long_names_name_nothing(self):
        name = UUID + '.port0.replay-lines=' + '1' * 100
        self.assertIsNone(keys.parse_console_user(name))


class HostKeysTest(base.TestCase):

    def test_keys_are_made_once_private_to_the_owner(self):
        key_dir = os.path.join(self.state_path, 'ssh')
        paths = keys.ensure_host_keys(key_dir)
        self.assertEqual(2, len(paths))
        first = [open(p, 'rb').read() for p in paths]
        for path in paths:
            self.assertEqual(0o600, stat.S_IMODE(os.stat(path).st_mode))
        self.assertEqual(first, [open(p, 'rb').read()
                                 for p in keys.ensure_host_keys(key_dir)])
        fingerprints = keys.host_key_fingerprints(key_dir)
        self.assertEqual(
            [asyncssh.read_private_key(p).get_fingerprint('sha256')
             for p in paths], fingerprints)

    def test_no_keys_no_fingerprints(self):
        self.assertEqual([], keys.host_key_fingerprints(
            os.path.join(self.state_path, 'none')))


class OptionsTest(base.TestCase):

    def test_defaults_are_off_2222_and_a_minute(self):
        conf = sp_conf.CONF
        self.assertFalse(conf.ssh.enabled)
        self.assertEqual(2222, conf.ssh.listen_port)
        self.assertEqual(60, conf.ssh.key_ttl)
        self.assertEqual(os.path.join(conf.state_path, 'ssh'),
                         conf.ssh.host_key_dir)
