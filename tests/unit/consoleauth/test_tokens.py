import hashlib

from serialproxy.consoleauth import tokens
from tests.unit import base


class TokensTest(base.TestCase):
    def test_new_tokens_are_long_and_distinct(self):
        issued = {tokens.new_token() for _ in range(200)}
        self.assertEqual(200, len(issued))
        for token in issued:
            self.assertGreaterEqual(len(token), 43)
            self.assertRegex(token, r'^[A-Za-z0-9_-]+$')

    def test_hash_is_sha256_hex_of_the_token(self):
        self.assertEqual(hashlib.sha256(b'abc').hexdigest(),
                         tokens.hash_token('abc'))
        self.assertNotEqual(tokens.hash_token('abc'),
                            tokens.hash_token('abd'))
