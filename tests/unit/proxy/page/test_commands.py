"""The console page's SysRq and NMI commands: what passes, what is told."""

import json

import oslo_messaging as messaging

from serialproxy import exception
from serialproxy.proxy.page import commands as pc
from serialproxy import sysrq
from tests.unit import base

BOTH = (pc.SYSRQ, pc.NMI)


class PermissionsTest(base.TestCase):
    def test_only_page_permissions_are_taken_from_a_tokens_modes(self):
        self.assertEqual(('sysrq', 'nmi'),
                         pc.permissions_of(['view', 'nmi', 'take_over',
                                            'sysrq']))
        self.assertEqual(('sysrq',), pc.permissions_of(['sysrq', 'view']))
        self.assertEqual((), pc.permissions_of(['view', 'take_over']))
        self.assertEqual((), pc.permissions_of(None))

    def test_permissions_note_lists_them_in_order(self):
        self.assertEqual({'permissions': ['sysrq', 'nmi']},
                         json.loads(pc.permissions_note(BOTH)))


class ParseTest(base.TestCase):
    def assertRefused(self, text, *message_parts, permissions=BOTH):
        error = self.assertRaises(pc.CommandRefused, pc.parse, text,
                                  permissions)
        for part in message_parts:
            self.assertIn(part, str(error))
        return str(error)

    def test_every_kernel_sysrq_key_is_a_command(self):
        for key in sysrq.KEYS:
            command = pc.parse(json.dumps({'sysrq': key}), BOTH)
            self.assertEqual(pc.Command(pc.SYSRQ, key), command)
            self.assertEqual({'sysrq': key}, command.note)
        self.assertEqual(35, len(sysrq.KEYS))  # 0-9 and b-z

    def test_nmi_is_a_command(self):
        command = pc.parse('{"nmi": true}', BOTH)
        self.assertEqual(pc.Command(pc.NMI), command)
        self.assertEqual({'nmi': True}, command.note)
        self.assertEqual('NMI', str(command))

    def test_keys_outside_the_kernels_set_are_refused_naming_the_set(self):
        for key in ('a', 'H', 'hh', '', ' ', '\u0433', 'ab'):
            self.assertRefused(json.dumps({'sysrq': key}),
                               'is not a SysRq key', sysrq.KEYS)
        for value in (1, None, True, ['h'], {'key': 'h'}):
            self.assertRefused(json.dumps({'sysrq': value}),
                               'is not a SysRq key')

    def test_anyone_may_ask_for_their_permissions(self):
        for permissions in (BOTH, ()):
            self.assertEqual(pc.Command(pc.ASK_PERMISSIONS),
                             pc.parse('{"permissions": true}', permissions))
        self.assertRefused('{"permissions": 1}', '{"permissions": true}')

    def test_nmi_must_be_asked_for_with_true(self):
        for value in (1, 'true', False, None, {}):
            self.assertRefused(json.dumps({'nmi': value}),
                               '{"nmi": true}')

    def test_malformed_messages_are_told_the_usage(self):
        for text in ('', 'h', '{"sysrq": "h"', '"sysrq"', '["sysrq", "h"]',
                     'null', '{}', '{"sysrq": "h", "nmi": true}', '1'):
            message = self.assertRefused(text, pc.USAGE)
            self.assertLess(len(message), 200, text)

    def test_unknown_command_is_named_shortened(self):
        message = self.assertRefused(json.dumps({'reboot' * 20: True}),
                                     'Unknown command', pc.USAGE)
        self.assertIn('reboot' * 6, message)
        self.assertNotIn('reboot' * 7, message)

    def test_long_text_is_refused_before_it_is_parsed(self):
        text = json.dumps({'sysrq': 'h', 'pad': ' ' * pc.MAX_COMMAND_LENGTH})
        self.assertRefused(text, 'too long')

    def test_commands_the_token_does_not_allow_are_refused(self):
        self.assertRefused('{"nmi": true}', 'NMI is not allowed',
                           permissions=(pc.SYSRQ,))
        self.assertRefused('{"sysrq": "h"}', 'SysRq is not allowed',
                           permissions=())
        self.assertEqual(pc.Command(pc.SYSRQ, 'b'),
                         pc.parse('{"sysrq": "b"}', (pc.SYSRQ,)))

    def test_a_bad_key_is_told_before_a_missing_permission(self):
        # The page learns what it did wrong, not only that it may not.
        self.assertRefused('{"sysrq": "a"}', 'is not a SysRq key',
                           permissions=())


class NotesTest(base.TestCase):
    def test_sent_and_error_notes(self):
        self.assertEqual({'sent': {'sysrq': 'h'}}, json.loads(
            pc.sent_note(pc.Command(pc.SYSRQ, 'h'))))
        self.assertEqual({'sent': {'nmi': True}}, json.loads(
            pc.sent_note(pc.Command(pc.NMI))))
        self.assertEqual({'error': 'no'}, json.loads(pc.error_note('no')))

    def test_failures_are_told_without_remote_details(self):
        sysrq_h = pc.Command(pc.SYSRQ, 'h')
        cases = [
            (exception.InstanceNotRunning(instance_uuid='i-1'),
             'SysRq h not sent: Instance i-1 is not running.'),
            (messaging.MessagingTimeout('60 s'),
             'SysRq h not sent: the compute host did not answer in time'),
            (messaging.RemoteError('NoSuchMethod', 'send_sysrq', 'tb'),
             'SysRq h not sent: the compute host is too old for it'),
            (messaging.RemoteError('KeyError', 'secret', 'Traceback...'),
             'SysRq h not sent: the console service is unavailable'),
            (RuntimeError('bug at 0xdead'),
             'SysRq h not sent: internal error in the console proxy'),
        ]
        for error, expected in cases:
            self.assertEqual(expected, pc.failure_reason(sysrq_h, error))
        self.assertEqual('NMI not sent: the console service is unavailable',
                         pc.failure_reason(pc.Command(pc.NMI),
                                           messaging.MessageDeliveryFailure()))


class MenuKeysTest(base.TestCase):
    def test_every_key_has_a_label_and_only_those(self):
        self.assertEqual(sorted(sysrq.KEYS), sorted(sysrq.LABELS))
        for key, label in sysrq.LABELS.items():
            self.assertTrue(0 < len(label) <= 45, key)

    def test_the_destructive_keys_say_why_they_are_confirmed(self):
        self.assertEqual(sorted(sysrq.DESTRUCTIVE),
                         sorted(sysrq.CONSEQUENCES))
        script = pc.page_script().decode()
        self.assertTrue(script.startswith('// Generated'))
        keys = json.loads(script.split(' = ', 1)[1].rstrip(';\n'))
        self.assertEqual({'key': 'b', 'label': sysrq.LABELS['b'],
                          'confirm': sysrq.CONSEQUENCES['b']},
                         [k for k in keys if k['key'] == 'b'][0])
