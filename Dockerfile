# The Onboard server image: `docker build -t onboard .` (or `docker compose up`, compose.yaml).
#
# Build stage: the workspace's own release build, with the same cargo command as `make bench`
# (scripts/bench.sh) and the lock file as CI uses it. Nothing needs a system library: no
# OpenSSL, no libpq (TLS is rustls; PostgreSQL is spoken in Rust); a C compiler is enough.
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p onboard-server --bin onboard \
 && cp target/release/onboard /usr/local/bin/onboard

# Runtime stage: Debian slim, the one binary, an unprivileged user. The binary links only libc,
# libm and libgcc_s; the CA roots for SENS, Twilio, PortOne and OpenID providers are built in.
FROM debian:bookworm-slim
RUN useradd --system --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin onboard
COPY --from=build /usr/local/bin/onboard /usr/local/bin/onboard
USER 10001:10001
WORKDIR /tmp
# Listen on every interface of the container; everything else comes from the environment
# (.env.example lists every setting). Logs go to standard error.
ENV ONBOARD_ADDR=0.0.0.0:8080
EXPOSE 8080
# `onboard health` asks /health/ready (PostgreSQL and Redis answer) on ONBOARD_ADDR.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
  CMD ["onboard", "health"]
ENTRYPOINT ["onboard"]
CMD ["serve"]
