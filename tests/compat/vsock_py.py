# SPDX-License-Identifier: MIT
"""Python's socket.AF_VSOCK against libv4v-preload.so (run by vsock.sh).

Roles, one per process, each in its own v4v domain:
  echo PORT TYPE [fork]      accept connections, echo each until EOF
                             (fork: a child per connection, parent closes it;
                             exec: the child execs a new python on it)
  client CID PORT TYPE       non-blocking connect with selectors, 4 MiB each
                             way at once (stream) or 500 records (seqpacket)
  errors CID PORT            the Linux vsock errors and options
  closer PORT                accept, close at once (the peer's EOF, EPIPE)
  sendfile CID PORT FILE     socket.sendfile of FILE, then the echo back
  echo_check CID PORT FILE   send FILE, read it back whole, then close
  dgram_echo PORT / dgram CID PORT   SOCK_DGRAM, with and without connect
  inet IP PORT / inet_off IP         the opt-in AF_INET mapping
  sink PORT                  accept, read forever (to be killed)
  writer CID PORT            connect, write until an error; print it
  reader CID PORT            connect, read until EOF or an error; print it
  try_write CID PORT         connect, write a line, close
Exit 0 when the role's checks hold.
"""
import errno
import fcntl
import hashlib
import os
import random
import selectors
import socket
import struct
import sys
import time

IOCTL_VM_SOCKETS_GET_LOCAL_CID = 0x7B9
TYPES = {"stream": socket.SOCK_STREAM, "seqpacket": socket.SOCK_SEQPACKET}


def fail(msg):
    print("FAIL:", msg, file=sys.stderr, flush=True)
    sys.exit(1)


def listener(port, kind=socket.SOCK_STREAM):
    s = socket.socket(socket.AF_VSOCK, kind)
    s.bind((socket.VMADDR_CID_ANY, port))
    s.listen(16)
    return s


def echo_one(c, kind):
    while True:
        d = c.recv(1 << 20)
        if not d:
            break
        c.sendall(d)
    c.close()


def role_echo(port, kind, mode=""):
    s = listener(port, TYPES[kind])
    while True:
        c, peer = s.accept()
        if c.getpeername() != peer:
            fail("getpeername %r != accept's %r" % (c.getpeername(), peer))
        if mode == "exec":  # the socket as stdin and stdout of a new program
            pid = os.fork()
            if pid == 0:
                os.dup2(c.fileno(), 0)
                os.dup2(c.fileno(), 1)
                os.environ["PEER"] = "%d:%d" % peer
                os.execv(sys.executable, [sys.executable, __file__, "exec_child"])
            c.close()
            os.waitpid(pid, 0)
        elif mode == "fork":
            pid = os.fork()
            if pid == 0:
                s.close()
                echo_one(c, kind)
                os._exit(0)
            c.close()
            os.waitpid(pid, 0)
        else:
            echo_one(c, kind)


def role_exec_child():
    """After fork+exec: stdin is a vsock socket this program never made."""
    s = socket.socket(fileno=os.dup(0))
    if s.family != socket.AF_VSOCK or s.type != socket.SOCK_STREAM:
        fail("exec'd: family %r type %r" % (s.family, s.type))
    if "%d:%d" % s.getpeername() != os.environ["PEER"]:
        fail("exec'd: getpeername %r, parent saw %s" % (s.getpeername(), os.environ["PEER"]))
    os.close(0)
    os.close(1)
    echo_one(s, "stream")


def role_client(cid, port, kind):
    t = TYPES[kind]
    s = socket.socket(socket.AF_VSOCK, t)
    s.setblocking(False)
    r = s.connect_ex((cid, port))
    if r not in (0, errno.EINPROGRESS):
        fail("connect_ex: %s" % os.strerror(r))
    sel = selectors.DefaultSelector()
    sel.register(s, selectors.EVENT_WRITE)
    if not sel.select(10):
        fail("connect did not finish")
    err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    if err:
        fail("SO_ERROR %s" % os.strerror(err))
    if s.getpeername() != (cid, port):
        fail("getpeername %r" % (s.getpeername(),))
    rnd = random.Random(7)
    if t == socket.SOCK_STREAM:
        out = rnd.randbytes(4 << 20)
        want = hashlib.sha256(out).hexdigest()
    else:
        out = [rnd.randbytes(rnd.choice([1, 100, 4096, 65536, 200000])) for _ in range(500)]
    got, sent, recs = hashlib.sha256(), 0, []
    nrecv, total = 0, len(out) if t == socket.SOCK_STREAM else sum(map(len, out))
    sel.modify(s, selectors.EVENT_READ | selectors.EVENT_WRITE)
    deadline = time.time() + 60
    nsent = 0
    while time.time() < deadline:
        done_send = (sent >= len(out)) if t == socket.SOCK_STREAM else nsent == len(out)
        if t == socket.SOCK_STREAM and nrecv == total:
            break
        if t == socket.SOCK_SEQPACKET and len(recs) == len(out):
            break
        ev = selectors.EVENT_READ | (0 if done_send else selectors.EVENT_WRITE)
        sel.modify(s, ev)
        for key, mask in sel.select(5):
            if mask & selectors.EVENT_WRITE:
                try:
                    if t == socket.SOCK_STREAM:
                        sent += s.send(out[sent:sent + 65536])
                    else:
                        s.send(out[nsent])
                        nsent += 1
                except BlockingIOError:
                    pass
            if mask & selectors.EVENT_READ:
                try:
                    d = s.recv(1 << 20)
                except BlockingIOError:
                    continue
                if t == socket.SOCK_STREAM:
                    if not d:
                        fail("EOF after %d of %d bytes" % (nrecv, total))
                    got.update(d)
                    nrecv += len(d)
                else:
                    recs.append(d)
    if t == socket.SOCK_STREAM:
        if nrecv != total or got.hexdigest() != want:
            fail("echo differs (%d of %d bytes)" % (nrecv, total))
    elif recs != out:
        bad = next(i for i in range(min(len(recs), len(out))) if recs[i] != out[i]) \
            if any(a != b for a, b in zip(recs, out)) else min(len(recs), len(out))
        fail("records differ at %d (%d of %d back)" % (bad, len(recs), len(out)))
    s.shutdown(socket.SHUT_WR)
    s.setblocking(True)
    if s.recv(10) != b"":
        fail("no EOF after our shutdown")
    s.close()
    print("client %s ok" % kind)


def role_errors(cid, port):
    # Nobody listens there: ECONNRESET, as Linux's vsock.
    s = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
    try:
        s.connect((cid, port + 1))
        fail("connect to a port nobody listens on succeeded")
    except ConnectionResetError:
        pass
    s.close()
    # The same, non-blocking: SO_ERROR says it.
    s = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
    s.setblocking(False)
    if s.connect_ex((cid, port + 1)) != errno.EINPROGRESS:
        fail("non-blocking connect did not say EINPROGRESS")
    sel = selectors.DefaultSelector()
    sel.register(s, selectors.EVENT_WRITE)
    if not sel.select(10):
        fail("failed non-blocking connect never became writable")
    if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) != errno.ECONNRESET:
        fail("SO_ERROR is not ECONNRESET")
    s.close()
    # Options: level AF_VSOCK, 8-byte values (Python passes them so).
    s = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
    v = s.getsockopt(socket.AF_VSOCK, socket.SO_VM_SOCKETS_BUFFER_SIZE)
    if v != 262144:
        fail("BUFFER_SIZE %r" % (v,))
    s.setsockopt(socket.AF_VSOCK, socket.SO_VM_SOCKETS_BUFFER_SIZE, 131072)
    v = s.getsockopt(socket.AF_VSOCK, socket.SO_VM_SOCKETS_BUFFER_SIZE)
    if v != 131072:
        fail("BUFFER_SIZE after set: %r" % (v,))
    if s.getsockopt(socket.SOL_SOCKET, socket.SO_TYPE) != socket.SOCK_STREAM:
        fail("SO_TYPE")
    if s.getsockopt(socket.SOL_SOCKET, socket.SO_DOMAIN) != socket.AF_VSOCK:
        fail("SO_DOMAIN")
    if s.getsockname() != (socket.VMADDR_CID_ANY, socket.VMADDR_PORT_ANY):
        fail("unbound getsockname %r" % (s.getsockname(),))
    try:
        fcntl.ioctl(s, IOCTL_VM_SOCKETS_GET_LOCAL_CID, b"\0" * 4)
        fail("GET_LOCAL_CID on a socket worked")
    except OSError as e:
        if e.errno != errno.ENOTTY:
            fail("GET_LOCAL_CID on a socket: %s" % e)
    # The device answers the domain's CID.
    with open("/dev/vsock", "rb") as dev:
        me = struct.unpack("I", fcntl.ioctl(dev, IOCTL_VM_SOCKETS_GET_LOCAL_CID, b"\0" * 4))[0]
    if me != int(os.environ["WANT_CID"]):
        fail("local CID %d, expected %s" % (me, os.environ["WANT_CID"]))
    s.bind((socket.VMADDR_CID_ANY, socket.VMADDR_PORT_ANY))
    name = s.getsockname()
    if name[0] != me or name[1] == socket.VMADDR_PORT_ANY:
        fail("bound getsockname %r" % (name,))
    try:
        s.bind((socket.VMADDR_CID_ANY, 1))
        fail("second bind worked")
    except OSError as e:
        if e.errno != errno.EINVAL:
            raise
    s.close()
    try:
        socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM).bind((cid + 100, 1))
        fail("bind to another CID worked")
    except OSError as e:
        if e.errno != errno.EADDRNOTAVAIL:
            raise
    # FD_SET users: our fds are small.
    fds = [socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM) for _ in range(4)]
    if max(f.fileno() for f in fds) >= 1024:
        fail("fd >= 1024")
    for f in fds:
        f.close()
    print("errors ok")


def role_closer(port):
    s = listener(port)
    c, _ = s.accept()
    c.close()
    s.close()


def role_after_close(cid, port):
    s = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
    s.connect((cid, port))
    s.settimeout(10)
    if s.recv(10) != b"":
        fail("no EOF after the peer closed")
    try:
        s.send(b"x")
        fail("send after the peer closed succeeded")
    except BrokenPipeError:
        pass
    print("after close ok")


def role_sendfile(cid, port, path):
    s = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
    s.connect((cid, port))
    size = os.path.getsize(path)
    if os.fork() == 0:  # the child reads the echo while the parent sends
        got = hashlib.sha256()
        n = 0
        while n < size:
            d = s.recv(1 << 20)
            if not d:
                break
            got.update(d)
            n += len(d)
        with open(path, "rb") as f:
            ok = n == size and got.hexdigest() == hashlib.sha256(f.read()).hexdigest()
        os._exit(0 if ok else 1)
    with open(path, "rb") as f:
        if s.sendfile(f) != size:
            fail("sendfile short")
    _, st = os.wait()
    if st != 0:
        fail("the forked reader saw a different echo")
    print("sendfile ok")


def role_echo_check(cid, port, path):
    """Send FILE, read it all back, only then close (no half-close first)."""
    data = open(path, "rb").read()
    s = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
    s.connect((cid, port))
    s.settimeout(20)
    s.sendall(data)
    got = b""
    while len(got) < len(data):
        d = s.recv(1 << 16)
        if not d:
            break
        got += d
    s.close()
    if got != data:
        fail("echo: %d of %d bytes, %s" % (len(got), len(data),
                                           "same" if data.startswith(got) else "different"))


def role_dgram_echo(port):
    s = socket.socket(socket.AF_VSOCK, socket.SOCK_DGRAM)
    s.bind((socket.VMADDR_CID_ANY, port))
    while True:
        d, peer = s.recvfrom(65536)
        s.sendto(b"echo:" + d, peer)


def role_dgram(cid, port):
    s = socket.socket(socket.AF_VSOCK, socket.SOCK_DGRAM)
    if s.type != socket.SOCK_DGRAM:
        fail("dgram SO_TYPE %r" % s.type)
    s.bind((socket.VMADDR_CID_ANY, 7777))
    s.settimeout(10)
    for msg in [b"one", b"", b"x" * 60000, b"last"]:
        s.sendto(msg, (cid, port))
        d, peer = s.recvfrom(65536)
        if d != b"echo:" + msg or peer != (cid, port):
            fail("dgram echo %r from %r" % (d[:20], peer))
    # Connected: send/recv, and the boundaries hold.
    s.connect((cid, port))
    if s.getpeername() != (cid, port):
        fail("dgram getpeername %r" % (s.getpeername(),))
    s.send(b"a")
    s.send(b"bc")
    if s.recv(100) != b"echo:a" or s.recv(100) != b"echo:bc":
        fail("connected dgram")
    # Truncation, as a datagram socket does.
    s.send(b"0123456789")
    if s.recv(4) != b"echo":
        fail("short read of a datagram")
    s.send(b"z")
    if s.recv(100) != b"echo:z":
        fail("the rest of a truncated datagram was not dropped")
    print("dgram ok")


def role_inet(ip, port):
    """AF_INET through V4V_VSOCK_INET: a TCP client that never heard of vsock."""
    s = socket.create_connection((ip, port), timeout=10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if s.getpeername() != (ip, port) or s.family != socket.AF_INET:
        fail("inet getpeername %r" % (s.getpeername(),))
    if not s.getsockname()[0].startswith(ip.rsplit(".", 2)[0]):
        fail("inet getsockname %r" % (s.getsockname(),))
    data = random.Random(3).randbytes(200000)
    s.sendall(data)
    got = b""
    while len(got) < len(data):
        d = s.recv(1 << 16)
        if not d:
            break
        got += d
    if got != data:
        fail("inet echo: %d of %d bytes" % (len(got), len(data)))
    s.close()
    print("inet ok")


def role_inet_off(ip):
    """Without V4V_VSOCK_INET nothing is mapped: the kernel answers."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind((ip, 0))
        fail("bind to %s worked: mapped without being asked" % ip)
    except OSError as e:
        if e.errno != errno.EADDRNOTAVAIL:
            raise
    print("inet off ok")


def role_sink(port):
    s = listener(port)
    c, _ = s.accept()
    while c.recv(1 << 20):
        pass


def role_writer(cid, port):
    s = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
    s.connect((cid, port))
    print("connected", flush=True)
    buf = b"z" * 65536
    try:
        while True:
            s.send(buf)
    except OSError as e:
        print("error", errno.errorcode.get(e.errno, e.errno), flush=True)


def role_reader(cid, port):
    s = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
    s.connect((cid, port))
    s.send(b"hi")
    print("connected", flush=True)
    try:
        while s.recv(1 << 20):
            pass
        print("eof", flush=True)
    except OSError as e:
        print("error", errno.errorcode.get(e.errno, e.errno), flush=True)


def role_try_write(cid, port):
    s = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
    s.connect((cid, port))
    s.sendall(b"let in")
    s.close()


def main():
    role, args = sys.argv[1], sys.argv[2:]
    if role == "echo":
        role_echo(int(args[0]), args[1], args[2] if len(args) > 2 else "")
    elif role == "exec_child":
        role_exec_child()
    elif role == "client":
        role_client(int(args[0]), int(args[1]), args[2])
    elif role == "errors":
        role_errors(int(args[0]), int(args[1]))
    elif role == "closer":
        role_closer(int(args[0]))
    elif role == "after_close":
        role_after_close(int(args[0]), int(args[1]))
    elif role == "sendfile":
        role_sendfile(int(args[0]), int(args[1]), args[2])
    elif role == "echo_check":
        role_echo_check(int(args[0]), int(args[1]), args[2])
    elif role == "dgram_echo":
        role_dgram_echo(int(args[0]))
    elif role == "dgram":
        role_dgram(int(args[0]), int(args[1]))
    elif role == "inet":
        role_inet(args[0], int(args[1]))
    elif role == "inet_off":
        role_inet_off(args[0])
    elif role == "sink":
        role_sink(int(args[0]))
    elif role == "writer":
        role_writer(int(args[0]), int(args[1]))
    elif role == "reader":
        role_reader(int(args[0]), int(args[1]))
    elif role == "try_write":
        role_try_write(int(args[0]), int(args[1]))
    else:
        fail("unknown role " + role)


main()
