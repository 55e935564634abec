# The gateway as a container image: a Debian stage builds the binary with Bazel, and the
# final stage is only the tree scripts/make_rootfs.sh makes from it: the stripped binary
# (about 1.4 MB), the shared libraries it links (its ldd closure: libc, libstdc++,
# libssl/libcrypto, libuv, libre2), CA certificates and /etc/passwd naming the non-root
# user 65532. No shell, no package manager. (A fully static binary is not practical with
# Debian's packages: there is no libuv.a, and a static glibc cannot resolve names.)
# tests/integration/test_container.py runs the gateway inside that same tree with chroot.
#
#   docker build -t gateway .
#   docker run --rm -p 8080:8080 -e GATEWAY_LISTEN=0.0.0.0:8080 \
#     -e GATEWAY_UPSTREAM=app.internal:8080 gateway             # sidecar: no file needed
#   docker run --rm -v $PWD/conf:/etc/gateway:ro -e GATEWAY_CONFIG=/etc/gateway/gateway.toml gateway

FROM debian:bookworm AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      bazel-bootstrap g++ libuv1-dev libssl-dev libtomlplusplus-dev node-llhttp libre2-dev \
      catch2 binutils ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN bazel build //gateway:gateway \
 && bash scripts/make_rootfs.sh bazel-bin/gateway/gateway /rootfs

FROM scratch
COPY --from=build /rootfs/ /
USER 65532:65532
# The admin listener stays on loopback unless GATEWAY_ADMIN says otherwise (a non-loopback
# admin address needs GATEWAY_ADMIN_TOKEN or GATEWAY_ADMIN_TOKEN_FILE; /ready and
# /healthz answer probes without it).
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/gateway"]
