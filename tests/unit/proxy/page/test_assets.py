import os

import fixtures

from serialproxy.proxy.page import assets as page_assets
from tests.unit import base
from tests.unit.proxy.fakes import install_page_assets as install


class FindRootTest(base.TestCase):
    """Which copy of the page's npm files a proxy serves."""

    def setUp(self):
        super().setUp()
        self.checkout = os.path.join(self.state_path, 'node_modules')
        self.built = os.path.join(self.state_path, 'serialproxy', 'vendor')
        self.useFixture(fixtures.MonkeyPatch(
            'serialproxy.proxy.page.assets.CHECKOUT_ROOT', self.checkout))
        self.useFixture(fixtures.MonkeyPatch(
            'serialproxy.proxy.page.assets.BUILT_ROOT', self.built))

    def test_configured_path_wins_even_when_empty(self):
        install(self.checkout)
        install(self.built)
        self.assertEqual('/srv/page', page_assets.find_root('/srv/page'))

    def test_checkout_node_modules_before_the_built_copy(self):
        install(self.checkout)
        install(self.built)
        self.assertEqual(self.checkout, page_assets.find_root())

    def test_installed_package_serves_its_built_copy(self):
        install(self.built)
        self.assertEqual(self.built, page_assets.find_root())

    def test_incomplete_node_modules_is_passed_over(self):
        install(self.checkout, ['@xterm/xterm/lib/xterm.js'])
        install(self.built)
        self.assertEqual(self.built, page_assets.find_root())

    def test_neither_names_the_checkout_with_what_is_missing(self):
        self.assertEqual(self.checkout, page_assets.find_root())
        self.assertEqual(len(page_assets.SERVED),
                         len(page_assets.missing(self.checkout)))


class LockDigestTest(base.TestCase):

    def test_digest_is_that_of_both_files_in_order(self):
        # What tools/test-setup.sh computes with
        # cat package.json package-lock.json | sha256sum.
        for name, text in (('package.json', 'a'), ('package-lock.json', 'b')):
            with open(os.path.join(self.state_path, name), 'w') as f:
                f.write(text)
        self.assertEqual('fb8e20fc2e4c3f248c60c39bd652f3c1'
                         '347298bb977b8b4d5903b85055620603',
                         page_assets.lock_digest(self.state_path))

    def test_stamp_is_read_as_its_first_word(self):
        stamp = os.path.join(self.state_path, 'stamp')
        self.assertIsNone(page_assets.read_stamp(stamp))
        with open(stamp, 'w') as f:
            f.write('abc  -\n')
        self.assertEqual('abc', page_assets.read_stamp(stamp))
