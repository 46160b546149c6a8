"""Options of the [libvirt] group used by the compute agent."""

from oslo_config import cfg

libvirt_group = cfg.OptGroup(
    'libvirt',
    title='Libvirt options',
    help='How the compute agent reaches the hypervisor.')

libvirt_opts = [
    cfg.StrOpt('connection_uri',
               default='qemu:///system',
               help='Libvirt connection URI of the local hypervisor.'),
]


def register_opts(conf):
    conf.register_group(libvirt_group)
    conf.register_opts(libvirt_opts, group=libvirt_group)


def list_opts():
    return {libvirt_group: libvirt_opts}
