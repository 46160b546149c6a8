"""The seam of a resumed stream: the URL's query, the recent lines, and
where live output joins the log, with no gap and no repeat."""

from hypothesis import given
from hypothesis import strategies as st

from serialproxy.proxy import refusals
from serialproxy.proxy import seam
from tests.unit import base
from tests.unit import hypothesis_profiles  # noqa: F401


def seq(first, count):
    """What `seq first (first + count - 1)` prints: no 64 bytes of it
    repeat."""
    return b''.join(b'%d\n' % n for n in range(first, first + count))


def page(stream, start, end, first_available=0):
    return {'data': stream[start:end], 'start': start, 'next': end,
            'first_available': first_available, 'end': end}


class TestStreamRequest(base.TestCase):

    def test_nothing_asked_is_none(self):
        self.assertIsNone(seam.stream_request({'token': ['t']}))

    def test_resume_takes_an_offset(self):
        self.assertEqual(seam.StreamRequest(resume=1234),
                         seam.stream_request({'resume': ['1234']}))
        self.assertEqual(seam.StreamRequest(resume=0),
                         seam.stream_request({'resume': ['0']}))

    def test_offsets_alone_asks_offsets_without_resuming(self):
        self.assertEqual(seam.StreamRequest(resume=None),
                         seam.stream_request({'offsets': ['1']}))

    def test_resume_with_offsets_is_resume(self):
        self.assertEqual(seam.StreamRequest(resume=5), seam.stream_request(
            {'offsets': ['1'], 'resume': ['5']}))

    def test_bad_values_are_400_with_a_reason(self):
        for query in ({'resume': ['abc']}, {'resume': ['-1']},
                      {'resume': ['+1']}, {'resume': ['1.5']},
                      {'resume': ['\u0663']}, {'resume': ['1' * 21]},
                      {'resume': ['1', '2']}, {'offsets': ['2']},
                      {'offsets': ['1', '1']}, {'offsets': ['true']}):
            with self.subTest(query=query):
                refusal = self.assertRaises(refusals.Refusal,
                                            seam.stream_request, query)
                self.assertEqual(400, refusal.status)
                self.assertTrue(refusal.reason)


class TestLastLines(base.TestCase):

    def test_the_last_lines_with_the_unfinished_one(self):
        data = b'one\ntwo\nthree\n# '
        self.assertEqual(data.index(b'three'),
                         seam.last_lines_start(data, 2, cut=False))

    def test_a_cut_first_line_is_not_a_line(self):
        data = b'ne\ntwo\n'
        self.assertEqual(3, seam.last_lines_start(data, 5, cut=True))
        self.assertEqual(0, seam.last_lines_start(data, 5, cut=False))

    def test_no_lines_is_the_end(self):
        self.assertEqual(7, seam.last_lines_start(b'ne\ntwo\n', 0, False))


class TestJoinPoint(base.TestCase):

    def test_a_long_overlap_is_trusted(self):
        stream = seq(1, 100)
        tail, live = stream[:300], stream[200:]
        self.assertEqual(200, seam.join_point(tail, live))

    def test_a_short_overlap_waits_for_the_log(self):
        stream = seq(1, 100)
        tail, live = stream[:210], stream[200:]
        self.assertIsNone(seam.join_point(tail, live))
        # Once the log stopped growing and holds all the socket gave.
        self.assertEqual(200, seam.join_point(stream, live, final=True))

    def test_a_log_that_stopped_behind_the_socket_is_waited_for(self):
        # virtlogd held back by a loaded host: the log is quiet but ends
        # before the lines printed while the client was away, and the
        # socket already gives what came after them. Joining there left
        # a hole (the e2e resume test lost 7 of 300 lines).
        stream = seq(1, 100)
        away = stream.index(b'27\n'), stream.index(b'34\n')
        tail, live = stream[:away[0]], stream[away[1]:]
        self.assertIsNone(seam.join_point(tail, live, final=True))
        self.assertIsNone(seam.join_point(stream[:away[1] + 3], live,
                                          final=True))
        self.assertEqual(away[1], seam.join_point(stream, live, final=True))
        # A few bytes the socket gave, not yet in a quiet log.
        self.assertIsNone(seam.join_point(b'line 1\n', b'2\n', final=True))
        self.assertEqual(7, seam.join_point(b'line 1\n2\n', b'2\n',
                                            final=True))

    def test_live_shorter_than_the_tail_waits_for_live(self):
        stream = seq(1, 100)
        tail, live = stream[:300], stream[200:220]
        self.assertIsNone(seam.join_point(tail, live))

    def test_no_overlap_waits_for_the_log_to_reach_the_socket(self):
        stream = seq(1, 100)
        self.assertIsNone(seam.join_point(stream[:100], stream[150:]))

    def test_a_chance_match_in_a_partial_overlap_is_not_taken(self):
        # live "ab" could begin tail[1:] ("abX"), but the socket never
        # gave the "X": "ab" came after it, and is waited for in the log.
        self.assertIsNone(seam.join_point(b'aabX', b'ab'))
        self.assertIsNone(seam.join_point(b'aabX', b'ab', final=True))
        self.assertEqual(4, seam.join_point(b'aabXab', b'ab', final=True))

    def test_a_periodic_stream_is_the_known_ambiguity(self):
        # Dots every second: any join looks right; the longest overlap
        # is taken (documented in seam.py).
        tail, live = b'.' * 100, b'.' * 100
        self.assertEqual(0, seam.join_point(tail, live))


class TestSeamSteps(base.TestCase):

    def seam(self, stream, start, end):
        return seam.Seam(seam.StreamRequest(resume=start),
                         page(stream, start, end))

    def test_nothing_is_sent_before_the_tail_is_read(self):
        the_seam = self.seam(seq(1, 50), 0, 10)
        the_seam.live_data(b'x')
        self.assertEqual(b'', the_seam.step(final=True))

    def test_an_idle_guest_sends_nothing_and_waits(self):
        stream = seq(1, 50)
        the_seam = self.seam(stream, 0, len(stream))
        the_seam.tail_read(page(stream, len(stream), len(stream)))
        self.assertEqual(b'', the_seam.step(final=True))
        self.assertTrue(the_seam.idle)
        self.assertFalse(the_seam.joined)

    def test_a_quiet_tail_without_live_bytes_is_sent_and_the_seam_moves(
            self):
        stream = seq(1, 50)
        the_seam = self.seam(stream, 0, 20)
        the_seam.tail_read(page(stream, 20, 40))
        self.assertEqual(b'', the_seam.step())
        self.assertEqual(stream[20:40], the_seam.step(final=True))
        self.assertEqual(40, the_seam.tail_start)
        self.assertTrue(the_seam.idle)
        # The guest prints again: joined where the log says.
        the_seam.live_data(stream[40:])
        the_seam.tail_read(page(stream, 40, len(stream)))
        self.assertEqual(stream[40:], the_seam.step(final=True))
        self.assertTrue(the_seam.joined)

    def test_live_output_read_late_is_not_sent_twice(self):
        # The guest's side was paused while the client took its history:
        # the log showed the echo of a typed command first, quiet, and
        # the tail went out; the socket's copy of it comes after. (The
        # phone search test saw its command and output twice.)
        stream = seq(1, 50)
        the_seam = self.seam(stream, 0, 20)
        the_seam.tail_read(page(stream, 20, 40))
        self.assertEqual(stream[20:40], the_seam.step(final=True))
        the_seam.live_data(stream[30:])
        the_seam.tail_read(page(stream, 40, len(stream)))
        self.assertEqual(stream[40:], the_seam.step(final=True))
        self.assertTrue(the_seam.joined)


@st.composite
def streams(draw):
    """A stream without repeats of MIN_OVERLAP bytes: seq output, or
    bytes that are all different."""
    if draw(st.booleans()):
        return seq(draw(st.integers(1, 10 ** 6)), draw(st.integers(0, 400)))
    return bytes(draw(st.permutations(range(256)))[:draw(
        st.integers(0, 256))])


class TestSeamProperty(base.TestCase):

    @given(streams(), st.data())
    def test_no_gap_and_no_repeat(self, stream, data):
        """For any stream, any point where QEMU accepts the connection,
        any lag of the log behind the socket and any split of the live
        bytes: the client gets every byte from where its history starts,
        once, in order.

        The model: the guest prints; before QEMU accepts the connection
        what it prints goes to the log only, after it to the socket and
        then the log; the log lags by any amount; the socket's bytes
        reach the proxy in any pieces; "quiet" is a read of a log that
        stopped growing, everything printed having reached the log and
        the proxy; a "stall" is a log found unchanged while it is still
        behind the socket, or a socket not read yet, which the layer
        takes for quiet all the same.
        """
        size = len(stream)
        tail_start = data.draw(st.integers(0, size), 'tail_start')
        start = data.draw(st.integers(0, tail_start), 'history_start')
        the_seam = seam.Seam(seam.StreamRequest(resume=start),
                             page(stream, start, tail_start))
        self.assertEqual(start, the_seam.note().offset)
        sent = bytearray(the_seam.history)
        printed = logged = delivered = tail_start
        accepted = None
        events = data.draw(st.lists(st.tuples(
            st.sampled_from(['print', 'accept', 'deliver', 'read',
                             'stall', 'quiet']),
            st.integers(0, 300)), max_size=40), 'events')
        events.append(('end', 0))
        for kind, amount in events:
            final = False
            if kind == 'end':
                if accepted is None:
                    accepted = delivered = printed
                kind = 'quiet'
            if kind == 'print':
                printed = min(size, printed + amount)
                if accepted is None:
                    delivered = printed
            elif kind == 'accept' and accepted is None:
                accepted = delivered = printed
            elif kind == 'deliver' and accepted is not None:
                was, delivered = delivered, min(printed, delivered + amount)
                the_seam.live_data(stream[was:delivered])
            elif kind == 'read':
                logged = max(logged, printed - amount)
                if logged >= the_seam.tail_start:
                    the_seam.tail_read(page(stream, the_seam.tail_start,
                                            logged))
            elif kind == 'stall':
                # Two reads found the log unchanged, but it is behind
                # what the socket gave (virtlogd held back), or the
                # proxy has not read the socket yet (the guest's side
                # paused): the layer says final all the same.
                if logged >= the_seam.tail_start:
                    the_seam.tail_read(page(stream, the_seam.tail_start,
                                            logged))
                final = True
            elif kind == 'quiet':
                logged = printed
                if accepted is not None:
                    the_seam.live_data(stream[delivered:printed])
                    delivered = printed
                the_seam.tail_read(page(stream, the_seam.tail_start,
                                        logged))
                final = True
            sent += the_seam.step(final)
            # Never a byte that is not the stream's, in its place.
            self.assertEqual(stream[start:start + len(sent)], bytes(sent))
            if the_seam.joined:
                # Everything up to the live bytes held, no more.
                self.assertEqual(delivered, start + len(sent))
                return
        # Not joined: the guest printed nothing since QEMU accepted.
        self.assertEqual(printed, accepted)
        self.assertLessEqual(start + len(sent), accepted)
        self.assertEqual(the_seam.tail_start, start + len(sent))

    def test_offsets_alone_sends_the_recent_lines_raw(self):
        stream = b'boot\r\nline one\r\nline two\r\n# '
        the_seam = seam.Seam(seam.StreamRequest(),
                             page(stream, 0, len(stream)), replay_lines=2)
        note = the_seam.note()
        self.assertEqual(b'line two\r\n# ', the_seam.history)
        self.assertEqual(stream.index(b'line two'), note.offset)
        self.assertIsNone(note.requested)
        self.assertEqual(len(the_seam.history), note.history)

    def test_a_log_that_began_again_is_refused(self):
        the_seam = seam.Seam(seam.StreamRequest(resume=0),
                             page(b'abc', 0, 3))
        self.assertRaises(ValueError, the_seam.tail_read,
                          page(b'x', 1, 1))

    def test_the_note(self):
        self.assertEqual(
            '{"stream": {"offset": 10, "requested": 4, '
            '"first_available": 10, "history": 3}}',
            seam.StreamStart(10, 4, 10, 3).note())
