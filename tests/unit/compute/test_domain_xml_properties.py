"""The compute agent's domain XML reader under any XML hypothesis can
think of: it names only real TCP ports, or says the XML is invalid.

Domain XML comes from libvirt, but libvirt keeps what an operator or a
tool wrote into it (virsh edit), so the reader must not believe it.
"""

import xml.sax.saxutils

from hypothesis import given
from hypothesis import strategies as st

from serialproxy.compute import domain_xml
from serialproxy import exception
from tests.unit import base
from tests.unit import hypothesis_profiles  # noqa: F401

ports = st.sampled_from(['10000', '0', '-1', '65535', '65536', '+7',
                         '99999999999', ' 10001', '1e3', '\u0663\u0663',
                         '']) | st.integers(-10, 70000).map(str)
anything = st.text(max_size=12)


def attributes(**values):
    """Some of the named attributes, each drawn from its strategy."""
    return st.fixed_dictionaries({}, optional=values)


def element(tag, attrs, children=''):
    text = ''.join(' %s=%s' % (name, xml.sax.saxutils.quoteattr(value))
                   for name, value in attrs.items())
    return '<%s%s>%s</%s>' % (tag, text, children, tag)


@st.composite
def serial_devices(draw):
    """<serial>s mostly of the kind the reader takes: TCP, bind mode."""
    source = element('source', draw(st.fixed_dictionaries(
        {'mode': st.sampled_from(['bind'] * 4 + ['connect', ''])},
        optional={'host': st.sampled_from(['::', '0.0.0.0', '127.0.0.1',
                                           '']) | anything,
                  'service': ports | anything})))
    target = element('target', draw(attributes(port=ports | anything)))
    others = draw(st.permutations([target, '<log/>']))
    return element(
        draw(st.sampled_from(['serial'] * 4 + ['console'])),
        {'type': draw(st.sampled_from(['tcp'] * 4 + ['pty', '']))},
        source + ''.join(others[:draw(st.integers(0, 2))]))


@st.composite
def domains(draw):
    devices = ''.join(draw(st.lists(serial_devices(), max_size=5)))
    return "<domain type='kvm'><name>d</name><devices>%s</devices>" \
           "</domain>" % devices


class DomainXMLPropertiesTest(base.TestCase):
    def check(self, xml_text):
        try:
            ports = domain_xml.tcp_serial_ports(xml_text, '192.0.2.1')
        except exception.DomainXMLInvalid:
            return
        for port in ports:
            self.assertIsInstance(port['port'], int)
            self.assertTrue(1 <= port['port'] <= 65535, port)
            self.assertGreaterEqual(port['index'], 0)
            self.assertNotIn(port['host'], ('', '0.0.0.0', '::', '[::]'))
        self.assertEqual(sorted(p['index'] for p in ports),
                         [p['index'] for p in ports])

    @given(domains())
    def test_generated_domains(self, xml_text):
        self.check(xml_text)

    @given(st.text(max_size=300))
    def test_any_text(self, xml_text):
        self.check(xml_text)
        try:
            domain_xml.console_log_file(xml_text)
            domain_xml.owner(xml_text)
        except exception.DomainXMLInvalid:
            pass
