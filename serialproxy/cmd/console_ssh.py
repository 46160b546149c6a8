"""serialproxy-console --ssh SERVER: a console over SSH, with a key of
the moment.

Makes an ed25519 key pair in memory (or takes the user's), pushes the
public half through the API, trusts only the host keys the API names
(checked against their fingerprints), and runs ssh as the console user.
The private half of a key made here is written for ssh into a directory
only this user can read, and removed when ssh exits; it is good for one
sign-in within [ssh] key_ttl anyway.
"""

import argparse
import ipaddress
import os
import re
import shutil
import subprocess
import sys
import tempfile

import asyncssh

from serialproxy.cmd import api_client
from serialproxy.ssh import keys as ssh_keys

PROG = 'serialproxy-console --ssh'
# What a user name may hold (POSIX's portable characters, never a leading
# '-'), and a host name (RFC 1123 labels); an IP address also passes.
# Anything else from the API could reach ssh as an option or a second word.
USER_NAME = re.compile(r'[A-Za-z0-9_][A-Za-z0-9._-]{0,127}\Z')
HOST_LABEL = re.compile(r'(?!-)[A-Za-z0-9-]{1,63}(?<!-)\Z')


class ConsoleSSHError(Exception):
    """Why the console cannot be opened; the message is for the user."""


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog=PROG, description='Open a server\'s serial console over SSH '
                               'with a one-time key.')
    parser.add_argument('server', help='the server\'s id')
    parser.add_argument('--index', type=int, default=0,
                        help='serial port of the server (default 0)')
    api_client.add_arguments(parser)
    parser.add_argument('--key',
                        help='your private key file (its public half in '
                             'KEY.pub); a new ed25519 key otherwise')
    parser.add_argument('--ssh', default='ssh', dest='ssh_command',
                        help='the ssh program to run')
    return parser.parse_args(argv)


def push_key(api_url, token, server, index, public_key):
    """The API's answer to the key, or ConsoleSSHError saying why not."""
    try:
        answer = api_client.request(
            api_url, token, 'POST',
            '/v2.1/servers/%s/serial-console/ssh-keys' % server,
            {'ssh_key': {'public_key': public_key, 'index': index}})
        return answer['ssh_key']
    except api_client.APIError as exc:
        if exc.status is None:
            raise ConsoleSSHError(str(exc))
        raise ConsoleSSHError('the API refused the key: %s' % exc)
    except (KeyError, TypeError) as exc:
        raise ConsoleSSHError('cannot reach the API at %s: %s'
                              % (api_url, exc))


def trusted_host_keys(answer):
    """The host keys whose fingerprints the API named; none is an error
    (ssh would then ask the user to trust whatever it is shown)."""
    wanted = set(answer.get('host_key_fingerprints') or ())
    trusted = []
    for line in answer.get('host_keys') or ():
        try:
            key = asyncssh.import_public_key(line)
        except (asyncssh.KeyImportError, ValueError):
            continue
        if ssh_keys.fingerprint_of(key) in wanted:
            trusted.append(line)
    if not trusted:
        raise ConsoleSSHError('the API named no host key to trust for '
                              '%s:%s' % (answer['host'], answer['port']))
    return trusted


def _is_host_name(host):
    if not isinstance(host, str) or not host or len(host) > 253:
        return False
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        pass
    labels = host[:-1].split('.') if host.endswith('.') else \
        host.split('.')
    return all(HOST_LABEL.match(label) for label in labels)


def ssh_destination(answer):
    """user@host from the API's answer, or ConsoleSSHError if either, or
    the port, is not what it should be."""
    user, host, port = answer.get('user'), answer.get('host'), \
        answer.get('port')
    if not isinstance(user, str) or not USER_NAME.match(user):
        raise ConsoleSSHError('the API gave an SSH user that is not a user '
                              'name: %r' % (user,))
    if not _is_host_name(host):
        raise ConsoleSSHError('the API gave an SSH host that is not a host '
                              'name or address: %r' % (host,))
    if type(port) is not int or not 0 < port < 65536:
        raise ConsoleSSHError('the API gave an SSH port that is not a port '
                              'number: %r' % (port,))
    return '%s@%s' % (user, host)


def ssh_argv(ssh_command, answer, identity, known_hosts):
    """ssh's command line; the destination after '--', so that nothing
    the API says is read as an option."""
    return [ssh_command, '-t', '-F', '/dev/null',
            '-o', 'IdentitiesOnly=yes', '-o', 'IdentityFile=%s' % identity,
            '-o', 'PasswordAuthentication=no',
            '-o', 'KbdInteractiveAuthentication=no',
            '-o', 'StrictHostKeyChecking=yes',
            '-o', 'UserKnownHostsFile=%s' % known_hosts,
            '-o', 'GlobalKnownHostsFile=/dev/null',
            '-p', str(answer['port']),
            '--', ssh_destination(answer)]


def main(argv):
    args = parse_args(argv)
    workdir = tempfile.mkdtemp(prefix='serialproxy-ssh-')
    try:
        if args.key:
            identity = args.key
            try:
                with open(args.key + '.pub') as f:
                    public_key = f.read().strip()
            except OSError as exc:
                raise ConsoleSSHError('cannot read %s.pub: %s'
                                      % (args.key, exc))
        else:
            key = asyncssh.generate_private_key('ssh-ed25519')
            public_key = key.export_public_key().decode().strip()
            identity = os.path.join(workdir, 'id_ed25519')
            fd = os.open(identity, os.O_WRONLY | os.O_CREAT | os.O_EXCL,
                         0o600)
            with os.fdopen(fd, 'wb') as out:
                out.write(key.export_private_key())
        answer = push_key(args.api_url, args.token, args.server,
                          args.index, public_key)
        ssh_destination(answer)  # before the host is written anywhere
        known_hosts = os.path.join(workdir, 'known_hosts')
        with open(known_hosts, 'w') as out:
            out.write(ssh_keys.known_hosts_line(
                answer['host'], answer['port'], trusted_host_keys(answer)))
        try:
            return subprocess.call(ssh_argv(args.ssh_command, answer,
                                            identity, known_hosts))
        except OSError as exc:
            raise ConsoleSSHError('cannot run %s: %s'
                                  % (args.ssh_command, exc))
    except ConsoleSSHError as exc:
        print('%s: %s' % (PROG, exc), file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
