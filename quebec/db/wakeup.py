"""Same-host wake-ups, for databases without LISTEN/NOTIFY (SQLite, MySQL and MariaDB).

Each listening worker binds a Unix datagram socket in a directory of its own user's, one per
database; a transaction that made jobs ready sends, once it commits, one empty datagram to every
socket there. Only workers on the enqueuing host hear it, and nothing is promised: a datagram
lost, refused or never sent (a full socket, another host) costs the woken worker at most its
polling interval, since polling carries on underneath. No statement is sent, so an idle worker
costs the database no more than its polls.
"""

import functools
import hashlib
import os
import socket
import stat
import tempfile
import threading
from pathlib import Path

from django.db import connections

_sender = None
_sender_lock = threading.Lock()
_listings = {}  # directory -> (its mtime, the sockets in it): listed again only when it changes


def directory(using):
    """The directory of the wake-up sockets of database ``using`` on this host, for this user."""
    connection = connections[using]
    settings = connection.settings_dict
    return _directory(connection.vendor, settings["HOST"], settings["PORT"], settings["NAME"])


@functools.cache
def _directory(vendor, host, port, name):
    identity = f"sqlite:{os.path.realpath(name)}" if vendor == "sqlite" else f"{vendor}:{host}:{port}:{name}"
    # Short names: a socket's whole path must fit in about 100 bytes (104 on macOS).
    digest = hashlib.sha256(identity.encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"quebec-wake-{os.getuid()}" / digest


def make_directory(path):
    """Create ``path`` and its parent, private to this user; False when either is not ours."""
    for part in (path.parent, path):
        try:
            part.mkdir(mode=0o700)
        except FileExistsError:
            pass
        info = part.lstat()
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
            return False
    return True


def wake_workers(using):
    """Send a wake-up to every worker of ``using`` listening on this host; never raises."""
    path = directory(using)
    try:
        for name in _sockets(path):
            _send(path / name)
    except OSError:
        pass  # no directory, or one we may not read: nobody to wake


def _sockets(path):
    mtime = path.stat().st_mtime_ns
    cached = _listings.get(path)
    if cached is None or cached[0] != mtime:
        cached = _listings[path] = (mtime, [name for name in os.listdir(path) if name.endswith(".sock")])
    return cached[1]


def _send(address):
    try:
        _sending_socket().sendto(b"", str(address))
    except ConnectionRefusedError:
        # Nobody has it open: its worker died without removing it.
        address.unlink(missing_ok=True)
    except OSError:
        pass  # gone meanwhile, or its queue is full: that worker has wake-ups waiting already


def _sending_socket():
    global _sender
    with _sender_lock:
        if _sender is None:
            _sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            _sender.setblocking(False)
        return _sender


class Inbox:
    """A worker's wake-up socket in the database's directory; removed by ``close()``."""

    def __init__(self, using, name):
        folder = directory(using)
        if not make_directory(folder):
            raise PermissionError(f"{folder} is not a private directory of this user")
        self.address = folder / f"{name[-8:]}.sock"  # the random end of the worker's name
        self.socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.address.unlink(missing_ok=True)
        self.socket.bind(str(self.address))

    def wait(self, timeout):
        """Wait up to ``timeout`` seconds for wake-ups; True when at least one came (all taken)."""
        self.socket.settimeout(timeout)
        try:
            self.socket.recv(1)
        except TimeoutError:
            return False
        self.socket.setblocking(False)
        try:
            while True:
                self.socket.recv(1)
        except BlockingIOError:
            pass
        return True

    def close(self):
        self.address.unlink(missing_ok=True)
        self.socket.close()
