"""The console page's own scripts, run under Node.

The decoder of the console's output, the pacing of Send text, the
settings and the stream offsets a reconnect resumes at are plain scripts
the page loads; page_scripts.js checks them (random cases seeded, the
seed printed on failure). Node comes with
tools/test-setup.sh, as the page's npm packages do.
"""

import os
import shutil
import subprocess

from tests.unit import base

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                      'page_scripts.js')
NODE_TIMEOUT = 120


class PageScriptsTest(base.TestCase):

    def run_check(self, name):
        node = shutil.which('node') or shutil.which('nodejs')
        if node is None:
            self.fail('node is needed to test the console page\'s scripts: '
                      'run tools/test-setup.sh (Debian package nodejs)')
        result = subprocess.run([node, SCRIPT, name], capture_output=True,
                                text=True, timeout=NODE_TIMEOUT)
        self.assertEqual(0, result.returncode,
                         result.stdout + result.stderr)
        self.assertEqual('ok %s\n' % name, result.stdout)

    def test_utf8_cut_at_every_boundary_decodes_whole(self):
        self.run_check('decoder_every_boundary')

    def test_utf8_in_random_frames_decodes_whole(self):
        self.run_check('decoder_random_frames')

    def test_history_then_live_output_is_one_stream(self):
        self.run_check('decoder_history_then_live')

    def test_invalid_bytes_show_as_replacement_wherever_cut(self):
        self.run_check('decoder_invalid_bytes_show_as_replacement')

    def test_a_new_session_decodes_from_a_clean_state(self):
        self.run_check('decoder_new_session_starts_clean')

    def test_send_text_chunks_keep_characters_whole(self):
        self.run_check('paced_chunks_keep_characters_whole')

    def test_send_text_sends_everything_or_stops_when_told(self):
        self.run_check('paced_sender_sends_all_then_stops_when_told')

    def test_settings_come_from_defaults_storage_then_query(self):
        self.run_check('settings_come_from_defaults_storage_and_query')

    def test_resume_offset_is_the_note_plus_every_byte_received(self):
        self.run_check('resume_offset_is_the_note_plus_bytes_received')

    def test_resume_says_gaps_and_restarts_and_counts_no_unknown_offset(
            self):
        self.run_check('resume_gap_restart_and_proxies_without_offsets')

    def test_reconnect_pauses_grow_and_spread_a_herd(self):
        self.run_check('reconnect_pauses_grow_and_spread_a_herd')

    def test_terminal_answers_are_told_from_typed_keys(self):
        self.run_check('terminal_answers_are_told_from_keys')
