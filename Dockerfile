# syntax=docker/dockerfile:1
# The bidder's image: `docker build -t registry.example.com/bidder:0.1.0 .`
# k8s/ deploys it; bidder/tests/k8s.rs checks that the manifests agree with
# this file (binary path, user, ports).

# Build: the workspace's locked dependencies, release profile, optimised
# with a profile of a training run (scripts/pgo.sh: about a fifth less CPU
# per bid request, twice the build time). `--build-arg PGO=0` builds the
# plain release profile instead. The training runs servers on loopback
# inside this stage, hence wrk, curl, python3 and redis-server here (none
# reach the final image). The caches survive between builds; the binary is
# copied out of the target cache in the same step.
FROM rust:1.95-slim-bookworm AS build
ARG PGO=1
# What the training needs, in a layer of its own: a change to the sources
# does not download it again.
RUN case "$PGO" in \
      1) apt-get update -qq \
         && apt-get install -y -qq --no-install-recommends wrk curl python3 redis-server >/dev/null \
         && rustup component add llvm-tools ;; \
      0) ;; \
      *) echo "PGO is 1 or 0, not $PGO" >&2; exit 1 ;; \
    esac
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    if [ "$PGO" = 1 ]; then \
      scripts/pgo.sh \
      && install -D -m 0755 target/pgo/release/bidder /out/bidder; \
    else \
      cargo build --release --locked -p bidder \
      && install -D -m 0755 target/release/bidder /out/bidder; \
    fi

# Run: glibc, libgcc, CA certificates (rediss://) and nothing else: no
# shell, no package manager. Debian 12, as the build stage, for the same
# glibc.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/bidder /usr/local/bin/bidder
# Not root; the same uid as the pods' runAsUser (k8s/base/bidder.yaml).
USER 10001:10001
# Bid port (exchanges, notices) and admin port (probes, metrics, /v1).
EXPOSE 8080 9090
ENTRYPOINT ["/usr/local/bin/bidder"]
