#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""v4v-vm against a hostile guest, without QEMU: `hostile.py CASE`.

This script plays QEMU's part of vhost-user (a memfd as the guest's RAM,
eventfds for kicks and interrupts) and the guest driver's part of the
virtqueues, so it can write what no stock driver would: descriptor loops,
buffers outside RAM, lengths past the chain, spoofed source CIDs, bad
queue indexes.  Against a real v4vd, a real v4v-vm and a real v4vcat in a
process domain, it checks that v4v-vm drops or resets exactly what it
should and goes on serving.  Exit 0 pass, 1 fail, 77 skip.
"""
import json
import os
import select
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time

BIN = os.environ.get("V4V_BIN", "")
V4VD = os.environ.get("V4VD", os.path.join(BIN, "v4vd"))
MEM = 1 << 20
NUM = 64
# guest-physical layout; QEMU's address of guest-physical 0 is UVA
UVA = 0x7F0000000000
RING = {0: (0x1000, 0x1400, 0x1600), 1: (0x2000, 0x2400, 0x2600)}  # desc, avail, used
RXBUF, TXBUF, BUFSZ = 0x10000, 0x60000, 4096
HDR = struct.Struct("<QQIIIHHIII")
OP_REQUEST, OP_RESPONSE, OP_RST, OP_SHUTDOWN, OP_RW, OP_CREDIT_UPDATE = 1, 2, 3, 4, 5, 6


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


class Env:
    """A v4vd in a temporary runtime directory; processes killed at exit."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="v4v-vmh-")
        os.environ["V4V_RUNTIME_DIR"] = self.dir
        os.environ.pop("V4V_DOMAIN_FD", None)
        self.procs = []
        self.spawn([V4VD, "--foreground", "--runtime-dir", self.dir],
                   stderr=open(self.path("v4vd.log"), "w"))
        self.wait("v4vd", lambda: self.ctl("stats", check=False) is not None)

    def path(self, name):
        return os.path.join(self.dir, name)

    def spawn(self, argv, **kw):
        p = subprocess.Popen(argv, **kw)
        self.procs.append(p)
        return p

    def ctl(self, *args, check=True):
        r = subprocess.run([os.path.join(BIN, "v4vctl"), "-j", *args], capture_output=True,
                           text=True)
        if r.returncode:
            if check:
                fail("v4vctl %s: %s" % (" ".join(args), r.stderr))
            return None
        return json.loads(r.stdout) if r.stdout.strip().startswith(("[", "{")) else r.stdout

    def domain(self, name):
        for d in self.ctl("domains"):
            if d["name"] == name:
                return d
        return None

    def wait(self, what, cond, secs=20):
        end = time.time() + secs
        while not cond():
            if time.time() > end:
                fail("timed out waiting for " + what)
            time.sleep(0.02)

    def close(self):
        for p in self.procs:
            p.kill()
            p.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


class Guest:
    """QEMU's side of vhost-user, and the guest driver's of the queues."""

    def __init__(self, env, sock_path):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.connect(sock_path)
        self.s.settimeout(10)
        self.memfd = os.memfd_create("guest-ram")
        os.ftruncate(self.memfd, MEM)
        import mmap
        self.mem = mmap.mmap(self.memfd, MEM)
        self.kick = {q: os.eventfd(0, os.EFD_NONBLOCK) for q in (0, 1)}
        self.call = {q: os.eventfd(0, os.EFD_NONBLOCK) for q in (0, 1)}
        self.avail_idx = {0: 0, 1: 0}
        self.used_seen = {0: 0, 1: 0}
        self.next_tx = 0

    # vhost-user messages
    def send(self, req, payload=b"", fds=(), reply=False):
        msg = struct.pack("<III", req, 1, len(payload)) + payload
        if fds:
            socket.send_fds(self.s, [msg], list(fds))
        else:
            self.s.sendall(msg)
        if reply:
            hdr = self.recvall(12)
            r, flags, size = struct.unpack("<III", hdr)
            if r != req or not flags & 4:
                fail("reply to %d: request %d flags %#x" % (req, r, flags))
            return self.recvall(size)
        return None

    def recvall(self, n):
        b = b""
        while len(b) < n:
            c = self.s.recv(n - len(b))
            if not c:
                fail("v4v-vm closed the vhost-user socket")
            b += c
        return b

    def setup(self):
        feats = struct.unpack("<Q", self.send(1, reply=True))[0]
        if not feats & (1 << 32) or not feats & (1 << 30):
            fail("features %#x lack VERSION_1 or PROTOCOL_FEATURES" % feats)
        pf = struct.unpack("<Q", self.send(15, reply=True))[0]
        if not pf & (1 << 9):
            fail("protocol features %#x lack CONFIG" % pf)
        self.send(16, struct.pack("<Q", 1 << 9))
        self.send(3)
        cfg = self.send(24, struct.pack("<III", 0, 8, 0) + bytes(8), reply=True)
        self.cid = struct.unpack("<Q", cfg[12:20])[0]
        self.send(2, struct.pack("<Q", (1 << 32) | (1 << 30)))
        self.send(5, struct.pack("<II", 1, 0) + struct.pack("<QQQQ", 0, MEM, UVA, 0),
                  fds=[self.memfd])
        for q in (0, 1):
            self.ring(q, *RING[q])
        self.post_rx(32)

    def ring(self, q, desc, avail, used, num=NUM):
        self.send(8, struct.pack("<II", q, num))
        self.send(9, struct.pack("<IIQQQQ", q, 0, UVA + desc, UVA + used, UVA + avail, 0))
        self.send(10, struct.pack("<II", q, 0))
        self.send(12, struct.pack("<Q", q), fds=[self.kick[q]])
        self.send(13, struct.pack("<Q", q), fds=[self.call[q]])
        self.send(18, struct.pack("<II", q, 1))

    # the queues
    def desc(self, q, i, addr, length, flags, nxt=0):
        struct.pack_into("<QIHH", self.mem, RING[q][0] + 16 * i, addr, length, flags, nxt)

    def offer(self, q, head):
        avail = RING[q][1]
        struct.pack_into("<H", self.mem, avail + 4 + 2 * (self.avail_idx[q] % NUM), head)
        self.avail_idx[q] = (self.avail_idx[q] + 1) & 0xFFFF
        struct.pack_into("<H", self.mem, avail + 2, self.avail_idx[q])
        os.eventfd_write(self.kick[q], 1)

    def post_rx(self, n):
        for _ in range(n):
            i = self.avail_idx[0] % NUM
            self.desc(0, i, RXBUF + BUFSZ * i, BUFSZ, 2)
            self.offer(0, i)

    def used(self, q, secs=5):
        """Wait for the next used element of q: (id, len)."""
        end = time.time() + secs
        used = RING[q][2]
        while struct.unpack_from("<H", self.mem, used + 2)[0] == self.used_seen[q]:
            if time.time() > end:
                return None
            select.select([self.call[q]], [], [], 0.05)
        k = self.used_seen[q] % NUM
        self.used_seen[q] = (self.used_seen[q] + 1) & 0xFFFF
        return struct.unpack_from("<II", self.mem, used + 4 + 8 * k)

    def tx_raw(self, descs):
        """Offer a tx chain of (addr, len, flags, next) at the next slots."""
        base = self.next_tx
        for k, d in enumerate(descs):
            self.desc(1, (base + k) % NUM, *d)
        self.next_tx = (base + len(descs)) % NUM
        self.offer(1, base)
        u = self.used(1)
        if u is None or u[0] != base:
            fail("tx chain %d not returned (used %r)" % (base, u))

    def tx(self, dst_cid, src_port, dst_port, op, payload=b"", flags=0, src_cid=None, length=None):
        h = HDR.pack(self.cid if src_cid is None else src_cid, dst_cid, src_port, dst_port,
                     len(payload) if length is None else length, 1, op, flags, 262144, 0)
        slot = TXBUF + BUFSZ * (self.next_tx % 64)
        self.mem[slot:slot + len(h) + len(payload)] = h + payload
        nxt = (self.next_tx + 1) % NUM
        self.tx_raw([(slot, len(h) + len(payload), 0, nxt)])

    def rx(self, secs=5):
        """The next packet v4v-vm gave the guest: (header tuple, payload)."""
        u = self.used(0, secs)
        if u is None:
            return None
        i, n = u
        off = RXBUF + BUFSZ * i
        h = HDR.unpack_from(self.mem, off)
        self.post_rx(1)
        return h, bytes(self.mem[off + 44:off + n])


def expect_rx(g, op, what, dst_port=None):
    p = g.rx()
    if p is None:
        fail("%s: no packet to the guest" % what)
    h = p[0]
    if h[6] != op or (dst_port is not None and h[3] != dst_port):
        fail("%s: got op %d to port %d, expected op %d" % (what, h[6], h[3], op))
    return p


def expect_quiet(g, what):
    p = g.rx(secs=0.5)
    if p is not None:
        fail("%s: unexpected packet op %d" % (what, p[0][6]))


def start(env):
    sock = env.path("vm.sock")
    vmm = env.spawn([os.path.join(BIN, "v4v-vm"), "--socket", sock, "--name", "vm1", "--verbose"],
                    stderr=open(env.path("vmm.log"), "w"))
    env.wait("v4v-vm's socket", lambda: os.path.exists(sock))
    g = Guest(env, sock)
    g.setup()
    if g.cid != env.domain("vm1")["domid"] + 2:
        fail("GET_CONFIG cid %d for domain %d" % (g.cid, env.domain("vm1")["domid"]))
    return vmm, g


def sink(env, port):
    out = env.path("sink.out")
    env.spawn([os.path.join(BIN, "v4v-run"), "-q", "--name", "sink", "--",
               os.path.join(BIN, "v4vcat"), "-l", str(port)],
              stdin=subprocess.DEVNULL, stdout=open(out, "w"), stderr=subprocess.DEVNULL)
    env.wait("the sink's ring", lambda: any(
        r["name"] == "sink" and r["aport"] == port for r in env.ctl("rings")))
    return env.domain("sink")["domid"] + 2, out


def alive(env, vmm, g, sink_cid):
    """v4v-vm still serves: an unknown connection is reset."""
    if vmm.poll() is not None:
        fail("v4v-vm exited (%d)" % vmm.returncode)
    g.tx(sink_cid, 4444, 4445, OP_RW, b"x")
    expect_rx(g, OP_RST, "RW on no connection", dst_port=4444)


def t_chains(env):
    """Malformed chains are returned unused and change nothing."""
    vmm, g = start(env)
    cid, _ = sink(env, 6000)
    n = g.next_tx
    g.tx_raw([(MEM - 8, 44, 0, 0)])  # past the end of RAM
    g.tx_raw([(1 << 62, 44, 0, 0)])  # nowhere
    g.tx_raw([(TXBUF, 44, 1, (n + 3) % NUM), (TXBUF, 44, 1, (n + 2) % NUM)])  # a loop
    g.tx_raw([(TXBUF, 44, 1, NUM + 5)])  # next past the table
    g.tx_raw([(TXBUF, 44, 4, 0)])  # indirect, not negotiated
    g.tx_raw([(TXBUF, 20, 0, 0)])  # shorter than a header
    g.tx_raw([(RXBUF, 44, 2, 0)])  # writable only
    expect_quiet(g, "malformed chains")
    alive(env, vmm, g, cid)


def t_headers(env):
    """Bad headers: dropped silently, or answered with RST, never acted on."""
    vmm, g = start(env)
    cid, _ = sink(env, 6001)
    g.tx(cid, 1000, 6001, OP_REQUEST, src_cid=g.cid + 1)  # spoofed source
    expect_quiet(g, "a spoofed REQUEST")
    g.tx(cid, 1001, 6001, OP_RW, b"abc", length=5000)  # length past the chain
    expect_quiet(g, "a length past the chain")
    g.tx(1, 1002, 6001, OP_REQUEST)  # cid 1: nothing here
    expect_rx(g, OP_RST, "REQUEST to cid 1", dst_port=1002)
    g.tx(g.cid, 1003, 6001, OP_REQUEST)  # itself
    expect_rx(g, OP_RST, "REQUEST to its own cid", dst_port=1003)
    g.tx(cid, 1004, 6001, 99)  # unknown op
    expect_rx(g, OP_RST, "unknown op", dst_port=1004)
    g.tx(cid, 1005, 6001, OP_REQUEST, b"zz")  # payload on a REQUEST
    expect_rx(g, OP_RST, "REQUEST with payload", dst_port=1005)
    g.tx(cid, 1006, 6001, OP_RST)  # an RST for nothing: no answer
    expect_quiet(g, "an RST for no connection")
    if env.domain("sink")["rx_msgs"] != 0:
        fail("the sink received something")
    alive(env, vmm, g, cid)


def t_stream(env):
    """A well-formed connection still works after all that; credit moves."""
    vmm, g = start(env)
    cid, out = sink(env, 6002)
    g.tx(cid, 2000, 6002, OP_REQUEST)
    expect_rx(g, OP_RESPONSE, "REQUEST to the sink", dst_port=2000)
    data = os.urandom(60000)
    for k in range(6):  # 360 KB: past buf_alloc, so credit must come back
        g.tx(cid, 2000, 6002, OP_RW, data[:3000] if k % 2 else data[:3900])
    g.tx(cid, 2000, 6002, OP_SHUTDOWN, flags=3)
    credit = 0
    while True:
        p = g.rx()
        if p is None:
            fail("no RST after the guest's close")
        if p[0][6] == OP_CREDIT_UPDATE:
            credit = p[0][9]
        if p[0][6] == OP_RST:
            break
    env.wait("the sink to finish", lambda: env.domain("sink") is None)
    want = (data[:3900] + data[:3000]) * 3
    if open(out, "rb").read() != want:
        fail("the sink got %d bytes, not the %d sent" % (os.path.getsize(out), len(want)))
    if credit and credit > len(want):
        fail("fwd_cnt %d past what was sent" % credit)
    alive(env, vmm, g, cid)


def t_guest_rst(env):
    """A guest RST on an open connection resets the v4v peer: it reads the data sent
    before, then ECONNRESET (v4v_sock_abort), not an end of stream."""
    vmm, g = start(env)
    out, err = env.path("rst.out"), env.path("rst.err")
    peer = env.spawn([os.path.join(BIN, "v4v-run"), "-q", "--name", "sink", "--",
                      os.path.join(BIN, "v4vcat"), "-l", "6003"],
                     stdin=subprocess.DEVNULL, stdout=open(out, "w"), stderr=open(err, "w"))
    env.wait("the sink's ring", lambda: any(
        r["name"] == "sink" and r["aport"] == 6003 for r in env.ctl("rings")))
    cid = env.domain("sink")["domid"] + 2
    g.tx(cid, 3000, 6003, OP_REQUEST)
    expect_rx(g, OP_RESPONSE, "REQUEST to the sink", dst_port=3000)
    g.tx(cid, 3000, 6003, OP_RW, b"before the reset")
    g.tx(cid, 3000, 6003, OP_RST)
    env.wait("the sink to end", lambda: peer.poll() is not None)
    if peer.returncode == 0 or "reset" not in open(err).read():
        fail("the v4v peer did not see a reset (exit %d): %s" % (peer.returncode,
                                                                 open(err).read()))
    if open(out, "rb").read() != b"before the reset":
        fail("the sink got %r" % open(out, "rb").read())
    while g.rx(secs=0.5) is not None:
        pass  # the sink's own end of stream, sent before our RST
    alive(env, vmm, g, cid)


def t_bad_queue(env):
    """A ring outside RAM is never used; a corrupt avail index stops only its queue."""
    vmm, g = start(env)
    cid, _ = sink(env, 6003)
    g.send(9, struct.pack("<IIQQQQ", 1, 0, UVA + MEM - 16, UVA + 0x2600, UVA + 0x2400, 0))
    g.offer(1, 0)
    if g.used(1, secs=0.5) is not None:
        fail("a queue whose descriptors lie outside RAM was used")
    g.ring(1, *RING[1])  # put it right: the old offer (an empty chain) comes back
    if g.used(1) is None:
        fail("the offer made while the ring was bad never came back")
    g.next_tx = 1
    alive(env, vmm, g, cid)
    struct.pack_into("<H", g.mem, RING[1][1] + 2, (g.avail_idx[1] + 1000) & 0xFFFF)
    os.eventfd_write(g.kick[1], 1)
    env.wait("v4v-vm to report the corrupt queue",
             lambda: "tx queue is corrupt" in open(env.path("vmm.log")).read())
    if vmm.poll() is not None:
        fail("v4v-vm died of a corrupt queue")
    feats = g.send(1, reply=True)  # the vhost-user side still answers
    if len(feats) != 8:
        fail("GET_FEATURES after a corrupt queue")


def t_bad_messages(env):
    """Malformed vhost-user messages: refused; an unreadable one ends v4v-vm, and its domain."""
    vmm, g = start(env)
    cid, _ = sink(env, 6004)
    g.send(5, struct.pack("<II", 9, 0))  # nine regions, no fds
    g.send(8, struct.pack("<II", 7, 64))  # queue 7
    g.send(24, struct.pack("<III", 0, 4000, 0))  # config larger than the message
    # A table whose region has no fd, then one past the end of its memfd
    # (the mapping itself is fine; no access may go past MEM either way).
    g.send(5, struct.pack("<II", 1, 0) + struct.pack("<QQQQ", 0, MEM, UVA, 0))
    g.send(5, struct.pack("<II", 1, 0) + struct.pack("<QQQQ", 0, MEM, UVA, 4095),
           fds=[g.memfd])
    # Each bad table leaves none behind: set the good one again.
    g.send(5, struct.pack("<II", 1, 0) + struct.pack("<QQQQ", 0, MEM, UVA, 0), fds=[g.memfd])
    alive(env, vmm, g, cid)
    # v4v-vm logs as it handles them, which may be after the data path
    # answered: wait (bounded) for the lines, never a fixed sleep.
    want = ["refusing malformed vhost-user request %d " % r for r in (5, 24)]
    want.append("cannot map the guest memory table")
    deadline = time.monotonic() + 10
    while True:
        log = open(env.path("vmm.log")).read()
        missing = [w for w in want if w not in log]
        if not missing:
            break
        if time.monotonic() > deadline:
            fail("not refused (%s): %s" % (missing[0], log))
        time.sleep(0.01)
    g.s.sendall(struct.pack("<III", 1, 1, 1 << 20))  # a 1 MiB payload
    try:
        vmm.wait(timeout=10)
    except subprocess.TimeoutExpired:
        fail("v4v-vm kept going after an oversized message")
    env.wait("vm1's domain to go", lambda: env.domain("vm1") is None)


def main():
    if len(sys.argv) != 2 or "t_" + sys.argv[1] not in globals():
        print("usage: hostile.py chains|headers|stream|guest_rst|bad_queue|bad_messages", file=sys.stderr)
        sys.exit(1)
    for b in ("v4v-vm", "v4vctl", "v4v-run", "v4vcat"):
        if not os.access(os.path.join(BIN, b), os.X_OK):
            print("SKIP: %s is not built" % b, file=sys.stderr)
            sys.exit(77)
    env = Env()
    try:
        globals()["t_" + sys.argv[1]](env)
    except SystemExit:
        for f in ("vmm.log", "v4vd.log"):
            try:
                sys.stderr.write("--- %s:\n%s" % (f, open(env.path(f)).read()[-2000:]))
            except OSError:
                pass
        raise
    finally:
        env.close()


if __name__ == "__main__":
    main()
