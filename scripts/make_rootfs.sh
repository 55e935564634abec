#!/usr/bin/env bash
# The container image's whole file tree, from a gateway binary: the stripped binary, the
# shared libraries it links (its ldd closure, the dynamic loader included), CA
# certificates for upstream TLS, and /etc files naming a non-root user (65532). Nothing
# else: no shell, no package manager. The Dockerfile's final stage is exactly this tree
# (FROM scratch), and tests/integration/test_container.py runs the gateway inside it
# with chroot to prove it is complete.
#   scripts/make_rootfs.sh BINARY DIR
# The last line of output is "binary_bytes=N rootfs_bytes=M" (N: the stripped binary).
set -euo pipefail
binary="${1:?usage: make_rootfs.sh BINARY DIR}"
root="${2:?usage: make_rootfs.sh BINARY DIR}"

mkdir -p "$root/usr/local/bin" "$root/etc/gateway" "$root/etc/ssl/certs" "$root/tmp"
chmod 1777 "$root/tmp"
strip --strip-all -o "$root/usr/local/bin/gateway" "$binary"
chmod 0755 "$root/usr/local/bin/gateway"

# "libx.so => /lib/.../libx.so (0x...)" and the loader's "/lib64/ld-linux-x86-64.so.2 (0x...)".
ldd "$binary" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' |
  while read -r lib; do
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
  done

cat >"$root/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/sbin/nologin
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin
PASSWD
cat >"$root/etc/group" <<'GROUP'
root:x:0:
nonroot:x:65532:
GROUP
# glibc's files and dns lookups are built into libc.so.6 (2.34 and later).
echo "hosts: files dns" >"$root/etc/nsswitch.conf"
if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
  cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/"
  # OpenSSL's default locations on Debian.
  mkdir -p "$root/usr/lib/ssl"
  ln -sfn /etc/ssl/certs "$root/usr/lib/ssl/certs"
  ln -sfn /etc/ssl/certs/ca-certificates.crt "$root/usr/lib/ssl/cert.pem"
fi

binary_bytes=$(stat -c %s "$root/usr/local/bin/gateway")
rootfs_bytes=$(du -sb "$root" | cut -f1)
echo "binary_bytes=$binary_bytes rootfs_bytes=$rootfs_bytes"
