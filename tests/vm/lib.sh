# SPDX-License-Identifier: MIT
# shellcheck shell=bash
# shellcheck disable=SC2154 # (src, dir, cache and guest_bin are the caller's)
# shellcheck disable=SC2034 # (qemu_pid and vmm_pid are for the caller)
#
# Booting a v4v guest, shared by tests/vm/vm.sh, scripts/demo and
# tests/vm/boot.sh (v4v-bench's guests): Debian's stock kernel fetched and
# unpacked once into a cache, an initramfs per guest (busybox-static, our
# static tests/vm/guest, the virtio and vsock modules, the guest's
# /test.sh), v4v-vm started on a socket, QEMU (TCG, 1 vCPU, 128 MiB) booted
# on it, and its serial console waited on.  Bash, sourced.
#
# The caller sets: src (the source tree), dir (a private directory for the
# sockets, images and consoles), cache (where the kernel is kept),
# guest_bin (the guest program); and defines fail MESSAGE (does not return)
# and wait_for DESCRIPTION COMMAND... (polls until COMMAND succeeds, for at
# most $WAIT_SECS s, else fails).  v4v-vm and qemu-system-x86_64 are looked
# up in PATH.

kdir=
declare -A qemu_pid vmm_pid
vm_modules="virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci vsock
	vmw_vsock_virtio_transport_common vmw_vsock_virtio_transport"

# The kernel and its modules, fetched (~72 MB) and unpacked once per cache.
prepare_kernel() {
	mkdir -p "$cache"
	exec 9>"$cache/.lock"
	flock 9
	if [ ! -s "$cache/vmlinux" ]; then
		echo "fetching Debian's linux-image-amd64 (~72 MB) into $cache" >&2
		rm -rf "$cache/deb" "$cache/root"
		mkdir -p "$cache/deb"
		local dep
		(cd "$cache/deb" && apt-get download -q linux-image-amd64 >/dev/null 2>&1) ||
			fail "apt-get download linux-image-amd64 failed (run apt-get update?)"
		dep=$(dpkg-deb -f "$cache"/deb/linux-image-amd64_*.deb Depends |
			grep -o 'linux-image-[0-9][^ ,]*' | head -n 1)
		[ -n "$dep" ] || fail "linux-image-amd64 depends on no kernel package"
		(cd "$cache/deb" && apt-get download -q "$dep" >/dev/null 2>&1) ||
			fail "apt-get download $dep failed"
		# Only the kernel and the modules we load (the package is ~400 MB unpacked).
		mkdir -p "$cache/root"
		dpkg-deb --fsys-tarfile "$cache"/deb/"$dep"_*.deb |
			tar -x -C "$cache/root" --wildcards './boot/vmlinuz-*' \
				'./lib/modules/*/kernel/drivers/virtio/*' \
				'./lib/modules/*/kernel/net/vmw_vsock/*' ||
			fail "cannot unpack $dep"
		python3 "$src/tests/vm/mkimage.py" vmlinux "$cache"/root/boot/vmlinuz-* \
			"$cache/vmlinux" || fail "cannot unpack the kernel"
		rm -rf "$cache/deb"
	fi
	exec 9>&-
	kdir=$(echo "$cache"/root/lib/modules/*/kernel)
}

# initrd NAME: the initramfs for guest NAME, running $dir/NAME.test.sh.
initrd() {
	local name=$1 m f args=()
	args+=("init=$src/tests/vm/init" "bin/busybox=/bin/busybox" "bin/guest=$guest_bin"
		"test.sh=$dir/$name.test.sh")
	for m in $vm_modules; do
		f=$(find "$kdir" -name "$m.ko" -o -name "$m.ko.xz" -o -name "$m.ko.zst" | head -n 1)
		[ -n "$f" ] || fail "module $m.ko is not in the kernel package"
		case $f in # busybox insmod wants them plain
		*.xz) xz -dc "$f" >"$dir/$m.ko" && f=$dir/$m.ko ;;
		*.zst) zstd -qdc "$f" >"$dir/$m.ko" && f=$dir/$m.ko ;;
		esac
		args+=("lib/modules/$m.ko=$f")
	done
	python3 "$src/tests/vm/mkimage.py" initrd "$dir/$name.initrd" "${args[@]}" ||
		fail "cannot build the initramfs"
}

# start_vm NAME [v4v-vm options]: the backend, its socket ready.
start_vm() {
	local name=$1
	shift
	v4v-vm --socket "$dir/$name.sock" --name "$name" ${VMM_VERBOSE:+--verbose} "$@" 2>"$dir/$name.vmm" &
	vmm_pid[$name]=$!
	wait_for "v4v-vm $name's socket" test -S "$dir/$name.sock"
}

# qemu_exec NAME: become QEMU for guest NAME (its initrd built already).
qemu_exec() {
	local name=$1
	exec qemu-system-x86_64 -nodefaults -no-user-config -display none -accel tcg -smp 1 \
		-m 128M -object memory-backend-memfd,id=mem0,size=128M,share=on \
		-machine pc,memory-backend=mem0 \
		-chardev socket,id=c0,path="$dir/$name.sock" -device vhost-user-vsock-pci,chardev=c0 \
		-kernel "$cache/vmlinux" -initrd "$dir/$name.initrd" \
		-append "console=ttyS0 quiet panic=-1 no_timer_check" \
		-serial file:"$dir/$name.console" -no-reboot 2>"$dir/$name.qemu"
}

# boot NAME: QEMU for guest NAME (its /test.sh written already), in the
# background; its pid in qemu_pid[NAME].
boot() {
	local name=$1
	initrd "$name"
	qemu_exec "$name" &
	qemu_pid[$name]=$!
}

console_has() { grep -q -- "$2" "$dir/$1.console" 2>/dev/null; }

# TEXT on NAME's console, or its QEMU gone (qemu_dead set) without it.
qemu_dead=
console_or_dead() {
	console_has "$1" "$2" && return 0
	kill -0 "${qemu_pid[$1]}" 2>/dev/null && return 1
	console_has "$1" "$2" || qemu_dead=1
}

# wait_console NAME TEXT [SECS]: fails at once if QEMU exits without it.
wait_console() {
	WAIT_SECS=${3:-120} wait_for "'$2' on $1's console" console_or_dead "$1" "$2"
	[ -z "$qemu_dead" ] || fail "QEMU for $1 exited before '$2' appeared on its console"
}
