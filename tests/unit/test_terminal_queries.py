"""Terminal queries removed from replayed output, whole or in pieces."""

from serialproxy import terminal_queries
from tests.unit import base

# A prompt with busybox's cursor position query, device attributes
# queries, DECID, and sequences that only look like the start of one.
OUTPUT = (b'~ # \x1b[6nls\r\nbin\x1b[32m etc\x1b[0m\r\n~ # \x1b[6n\x1b[c'
          b'\x1b[>0c\x1b[5n\x1bZ\x1b[?6n\x1b[1;2H\x1b[=c!\x1b')
WITHOUT = b'~ # ls\r\nbin\x1b[32m etc\x1b[0m\r\n~ # \x1b[1;2H!\x1b'


class RemoveTest(base.TestCase):

    def test_queries_go_and_everything_else_stays(self):
        self.assertEqual(WITHOUT, terminal_queries.remove(OUTPUT))

    def test_output_cut_anywhere_loses_the_same_queries(self):
        for cut in range(len(OUTPUT) + 1):
            remover = terminal_queries.QueryRemover()
            shown = remover.feed(OUTPUT[:cut])
            shown += remover.feed(OUTPUT[cut:])
            shown += remover.end()
            self.assertEqual(WITHOUT, shown, cut)

    def test_byte_by_byte(self):
        remover = terminal_queries.QueryRemover()
        shown = b''.join(remover.feed(OUTPUT[i:i + 1])
                         for i in range(len(OUTPUT)))
        self.assertEqual(WITHOUT, shown + remover.end())

    def test_what_cannot_be_a_query_is_not_held(self):
        remover = terminal_queries.QueryRemover()
        self.assertEqual(b'abc', remover.feed(b'abc'))
        self.assertEqual(b'\x1b[1m', remover.feed(b'\x1b[1m'))
        self.assertEqual(b'', remover.feed(b'\x1b[12'))
        self.assertEqual(b'\x1b[12H', remover.feed(b'H'))
        # A begun "query" longer than any is passed on.
        long_csi = b'\x1b[' + b'1;' * 40
        self.assertEqual(long_csi, remover.feed(long_csi))
