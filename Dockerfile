# barycenter-user-sync: a distroless image holding only the esbuild bundle and
# the Argon2 addon (dist/). Multi-arch:
#   docker buildx build --platform linux/amd64,linux/arm64 \
#     --build-arg SOURCE_URL=https://your.git/host/barycenter-user-sync -t IMAGE --push .

# The build stage runs on the build machine's own platform (no emulation);
# build.mjs then places the Argon2 addon of the *target* platform in dist/.
FROM --platform=$BUILDPLATFORM node:24-bookworm-slim AS build
ARG TARGETARCH
WORKDIR /src
COPY package.json package-lock.json ./
# Behind a TLS-inspecting proxy, npm needs the proxy's CA: give it with --secret id=npm-ca,src=ca.pem.
# A secret is mounted for the RUN step only, never in a layer; without one, nothing changes.
# No install scripts: the build needs none (esbuild and the Argon2 addon come as platform
# packages), and npm versions differ on whether they run them.
RUN --mount=type=cache,target=/root/.npm --mount=type=secret,id=npm-ca \
    if [ -f /run/secrets/npm-ca ]; then export NODE_EXTRA_CA_CERTS=/run/secrets/npm-ca; fi; \
    npm ci --no-audit --no-fund --ignore-scripts
COPY build.mjs deps.ts sync.ts ./
# (build.mjs fetches the other architecture's Argon2 addon from the registry when cross-building.)
RUN --mount=type=cache,target=/root/.npm --mount=type=secret,id=npm-ca \
    if [ -f /run/secrets/npm-ca ]; then export NODE_EXTRA_CA_CERTS=/run/secrets/npm-ca; fi; \
    node build.mjs --target "linux-${TARGETARCH}"

# No shell, no package manager: Node.js and dist/. Runs as "nonroot" (uid 65532)
# unless the pod says otherwise, and needs no writable root filesystem.
FROM gcr.io/distroless/nodejs24-debian12:nonroot
ARG VERSION=0.1.0
ARG SOURCE_URL=""
LABEL org.opencontainers.image.title="barycenter-user-sync" \
      org.opencontainers.image.description="Syncs users from a JSON file into Barycenter's database before it starts" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.source="${SOURCE_URL}" \
      org.opencontainers.image.licenses="MIT"
COPY --from=build /src/dist/ /app/
USER nonroot
# A 1 MiB young generation keeps a 10,000-user sync under half the chart's 256Mi memory limit
# (Argon2 itself needs 19 MiB a thread); the cost is a few more, cheap, scavenges.
# Hot functions are compiled on the main thread, not on helper threads: under the chart's
# cpu: 200m every thread draws on the same 20 ms per 100 ms, and a run of a few hundred
# milliseconds ends before much of the helpers' work pays (a no-change re-sync of 1,000 users:
# about 40 ms less CPU, 15 % less wall time in that cgroup, 2 to 4 % more at 10,000 on 2 free cores).
ENTRYPOINT ["/nodejs/bin/node", "--max-semi-space-size=1", "--no-concurrent-recompilation", "--no-concurrent-sparkplug", "/app/sync.mjs"]
