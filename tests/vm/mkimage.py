#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Build what the VM tests boot (tests/vm/vm.sh).

  mkimage.py vmlinux VMLINUZ OUT
      the uncompressed kernel (an ELF with a PVH entry note) out of a
      bzImage: find the XZ stream the boot code would unpack, unpack it.
  mkimage.py initrd OUT DEST=SRC... DEST@TEXTFILE...
      an uncompressed newc cpio: /dev/console, the directories the paths
      need, each SRC file at DEST (mode kept), and /init.
"""
import lzma
import os
import stat
import sys


def vmlinux(src, out):
    data = open(src, "rb").read()
    magic = b"\xfd7zXZ\x00"
    at = data.find(magic)
    while at >= 0:
        try:
            d = lzma.LZMADecompressor(format=lzma.FORMAT_XZ)
            elf = d.decompress(data[at:])
            if elf[:4] == b"\x7fELF":
                open(out + ".tmp", "wb").write(elf)
                os.rename(out + ".tmp", out)
                return 0
        except lzma.LZMAError:
            pass
        at = data.find(magic, at + 1)
    print("mkimage: no XZ-compressed ELF kernel inside %s" % src, file=sys.stderr)
    return 1


class Cpio:
    def __init__(self, f):
        self.f, self.ino, self.dirs = f, 1, set()

    def entry(self, name, mode, body=b"", rdev=(0, 0)):
        self.ino += 1
        name_b = name.encode() + b"\0"
        fields = [self.ino, mode, 0, 0, 1, 0, len(body), 0, 0, rdev[0], rdev[1],
                  len(name_b), 0]
        hdr = b"070701" + b"".join(b"%08X" % v for v in fields)
        self.f.write(hdr + name_b)
        self.f.write(b"\0" * (-(len(hdr) + len(name_b)) % 4))
        self.f.write(body)
        self.f.write(b"\0" * (-len(body) % 4))

    def mkdirs(self, path):
        parts = path.strip("/").split("/")[:-1]
        for i in range(len(parts)):
            d = "/".join(parts[: i + 1])
            if d not in self.dirs:
                self.dirs.add(d)
                self.entry(d, stat.S_IFDIR | 0o755)

    def file(self, dest, body, mode):
        self.mkdirs(dest)
        self.entry(dest.strip("/"), stat.S_IFREG | mode, body)

    def end(self):
        self.entry("TRAILER!!!", 0)


def initrd(out, specs):
    with open(out + ".tmp", "wb") as f:
        c = Cpio(f)
        for d in ("dev", "proc", "sys", "tmp", "bin"):
            c.dirs.add(d)
            c.entry(d, stat.S_IFDIR | 0o755)
        c.entry("dev/console", stat.S_IFCHR | 0o600, rdev=(5, 1))
        for s in specs:
            dest, src = s.split("=", 1)
            mode = stat.S_IMODE(os.stat(src).st_mode)
            c.file(dest, open(src, "rb").read(), mode)
        c.end()
    os.rename(out + ".tmp", out)
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "vmlinux":
        sys.exit(vmlinux(sys.argv[2], sys.argv[3]))
    if len(sys.argv) >= 3 and sys.argv[1] == "initrd":
        sys.exit(initrd(sys.argv[2], sys.argv[3:]))
    print(__doc__, file=sys.stderr)
    sys.exit(1)
