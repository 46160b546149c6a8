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

    def test_other_names_name_no_console(self):
        for name in ('root', UUID, UUID + '.port', UUID + '.port-1',
                     UUID.upper() + '.port0', UUID + '.port0\n',
                     UUID + '.port0' + 'x' * 100000, '', None,
                     UUID + '.port123'):
            self.assertIsNone(keys.parse_console_user(name), repr(name)[:80])


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
