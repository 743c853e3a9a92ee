#!/usr/bin/env bash
# Builds the production image from the project's Dockerfile and runs tgmon inside it, on a machine with
# no Docker engine and no container registry (`make image-test`, after `make wheelhouse`).
#
# - buildah builds and runs containers without a daemon; the vfs storage driver and chroot isolation
#   need neither overlay mounts nor user namespaces, so they work inside a container or a sandbox too.
# - With no registry to pull python:3.11-slim from, the base image is made from Debian's packages:
#   debootstrap bookworm (whose python3 is 3.11, like the default base) into build/image-test/, once.
#
# Needs root (debootstrap and buildah's storage). Installs buildah and debootstrap with apt-get if missing.
# Delete build/image-test/ (and `buildah rmi localhost/tgmon-base:bookworm`) to refresh the base.
set -euo pipefail
cd "$(dirname "$0")/.."

WORK=build/image-test
ROOTFS=$WORK/rootfs-bookworm
BASE_IMAGE=localhost/tgmon-base:bookworm
IMAGE=localhost/tgmon:image-test
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
# --storage-driver on every call: the default (overlay) needs kernel support a sandbox may not give.
BUILDAH=(buildah --storage-driver vfs)
# A network namespace with nothing in it. Chroot isolation shares the host's network (buildah refuses
# --network none with it), so the whole buildah process goes into one: what builds and runs there
# provably needs no index and downloads nothing.
OFFLINE=(unshare --net --)

step() { printf '\n==> %s\n' "$*"; }
fail() {
    printf 'image-test: FAILED: %s\n' "$*" >&2
    exit 1
}
timings=()
timed() { # timed LABEL COMMAND...: runs it, keeps "LABEL: N s" for the summary
    local label=$1 start=$SECONDS
    shift
    "$@"
    timings+=("$label: $((SECONDS - start)) s")
}

[[ $(id -u) -eq 0 ]] || fail "needs root (debootstrap, buildah's storage in /var/lib/containers)"
ls build/wheelhouse/tgmon-"$VERSION"-*.whl >/dev/null 2>&1 \
    || fail "no tgmon $VERSION wheel in build/wheelhouse/: run \`make wheelhouse\` (\`make image-test\` does)"

# --- tools ------------------------------------------------------------------------------------------
if ! command -v buildah >/dev/null || ! command -v debootstrap >/dev/null; then
    step "installing buildah and debootstrap (apt-get)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        buildah debootstrap debian-archive-keyring >/dev/null
fi

# --- base image: Debian bookworm + python3, standing in for python:3.11-slim --------------------------
# The tree is made in $ROOTFS.partial; only a finished one gets the cached name.
debootstrap_tree() {
    # minbase: what a slim image has (dpkg, apt, coreutils, passwd for useradd). The rest is what the
    # official slim image adds on top: a venv-capable Python, CA certificates, netbase and tzdata (the
    # service's time zones; zoneinfo has no built-in data).
    rm -rf "$ROOTFS" "$ROOTFS.partial"
    debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates,netbase,tzdata \
        bookworm "$ROOTFS.partial" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 \
        || fail "debootstrap failed: see $WORK/debootstrap.log"
}

update_tree() {
    # debootstrap takes bookworm as released: add its security and point updates, as the official image has.
    cat >"$ROOTFS.partial/etc/apt/sources.list" <<EOF
deb $MIRROR bookworm main
deb $MIRROR bookworm-updates main
deb $SECURITY_MIRROR bookworm-security main
EOF
    chroot "$ROOTFS.partial" /bin/sh -c \
        'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get upgrade -y -qq' >>"$WORK/debootstrap.log" 2>&1 \
        || fail "updating the Debian tree failed: see $WORK/debootstrap.log"
    # What debian:bookworm-slim (under python:3.11-slim) leaves out too: package caches, manuals,
    # translations and documentation but the licences. Keeps the image size printed below comparable.
    chroot "$ROOTFS.partial" apt-get clean
    rm -rf "$ROOTFS.partial"/var/lib/apt/lists/* "$ROOTFS.partial"/usr/share/{man,info,locale}/*
    find "$ROOTFS.partial/usr/share/doc" -mindepth 1 ! -type d ! -name copyright -delete
    find "$ROOTFS.partial/usr/share/doc" -mindepth 1 -type d -empty -delete
}

make_base_image() {
    local ctr
    ctr=$("${BUILDAH[@]}" from scratch)
    # buildah unpacks a local tar archive it is given; /dev, /proc and /sys are mounted at run time.
    tar --numeric-owner --exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' \
        -C "$ROOTFS" -cf "$WORK/rootfs.tar" .
    "${BUILDAH[@]}" add "$ctr" "$WORK/rootfs.tar" / >/dev/null
    rm -f "$WORK/rootfs.tar"
    # The environment python:3.11-slim sets.
    "${BUILDAH[@]}" config --env LANG=C.UTF-8 \
        --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        --cmd '["python3"]' "$ctr"
    "${BUILDAH[@]}" commit --rm --quiet "$ctr" "$BASE_IMAGE" >/dev/null
}

mkdir -p "$WORK"
if "${BUILDAH[@]}" inspect --type image "$BASE_IMAGE" >/dev/null 2>&1; then
    step "base image $BASE_IMAGE: cached"
else
    if [[ -x $ROOTFS/usr/bin/python3 ]]; then
        step "Debian bookworm tree: cached in $ROOTFS"
    else
        step "debootstrap bookworm (minbase + python3) into $ROOTFS"
        timed "debootstrap" debootstrap_tree
        timed "Debian security and point updates" update_tree
        mv "$ROOTFS.partial" "$ROOTFS"
    fi
    step "importing $ROOTFS as $BASE_IMAGE"
    timed "base image import" make_base_image
fi

# --- the project's image ----------------------------------------------------------------------------
step "buildah bud (Dockerfile, base $BASE_IMAGE)"
# --format docker: the OCI image format has no HEALTHCHECK; Docker's keeps it.
# Offline: the build needs no package index (it installs from build/wheelhouse/).
timed "image build" "${OFFLINE[@]}" "${BUILDAH[@]}" bud --isolation chroot --format docker --pull=never \
    --build-arg PYTHON_IMAGE="$BASE_IMAGE" --tag "$IMAGE" --file Dockerfile .

# --- run tgmon in it --------------------------------------------------------------------------------
data=$(mktemp -d)
ctr="" pid="" runner=""
cleanup() {
    # A check that failed midway may leave its tgmon (and the buildah run around it) going.
    if [[ -n $runner ]] && kill -0 "$runner" 2>/dev/null; then
        [[ -n $pid ]] && kill -TERM "$pid" 2>/dev/null
        wait "$runner" 2>/dev/null || true
    fi
    [[ -n $ctr ]] && "${BUILDAH[@]}" rm "$ctr" >/dev/null 2>&1
    rm -rf "$data"
}
trap cleanup EXIT
chown 10001:10001 "$data" # a fresh /data volume, owned by the image's user
ctr=$("${BUILDAH[@]}" from --pull=never "$IMAGE")
# buildah run mounts a fresh internal folder on an image VOLUME, over any --volume given for it; this
# working container (not the image) forgets the VOLUME so that /data is the host folder we inspect.
"${BUILDAH[@]}" config --volume /data- "$ctr"
# No network for tgmon either: nothing may be downloaded at run time (the dictionaries come with the wheels).
in_image() { "${OFFLINE[@]}" "${BUILDAH[@]}" run --isolation chroot --volume "$data:/data" "$ctr" -- "$@"; }

step "checks"
checks=()

healthcheck=$("${BUILDAH[@]}" inspect --type image --format '{{.Docker.Config.Healthcheck.Test}}' "$IMAGE")
[[ $healthcheck == '[CMD tgmon health]' ]] || fail "image HEALTHCHECK is '$healthcheck', expected [CMD tgmon health]"
checks+=("HEALTHCHECK in the image config: $healthcheck")

uid=$(in_image id -u)
[[ $uid == 10001 ]] || fail "runs as uid $uid, not 10001"
checks+=("runs as uid 10001 (not root)")

version=$(in_image tgmon --version)
[[ $version == "tgmon $VERSION" ]] || fail "tgmon --version printed '$version', expected 'tgmon $VERSION'"
checks+=("tgmon --version: $version")

start=$SECONDS
in_image tgmon demo >"$WORK/demo.out" 2>"$WORK/demo.err" \
    || fail "tgmon demo exited non-zero: see $WORK/demo.out and $WORK/demo.err"
timings+=("tgmon demo: $((SECONDS - start)) s")
printed=$(grep -c ' · rules: ' "$WORK/demo.out" || true)
logged=$(wc -l <"$data/demo/alerts.jsonl")
((printed > 0)) || fail "tgmon demo printed no alert: see $WORK/demo.out"
((printed == logged)) || fail "tgmon demo printed $printed alerts but logged $logged in alerts.jsonl"
grep -q '"event": "store.migrated"' "$WORK/demo.err" || fail "no JSON log lines on stderr (TGMON_LOG_FORMAT=json)"
checks+=("tgmon demo (no network): exit 0, $printed alerts printed and in /data/demo/alerts.jsonl, JSON logs")

# The README's upgrade step: an online backup of the archive into the volume.
backup=$(in_image tgmon backup /data/backup.db --data-dir /data/demo 2>/dev/null) \
    || fail "tgmon backup failed in the image"
[[ -f $data/backup.db && $backup == "backup written: /data/backup.db"* ]] || fail "tgmon backup printed: $backup"
checks+=("tgmon backup /data/backup.db: ${backup#backup written: }")

health_rc=0
health=$(in_image tgmon health 2>&1) || health_rc=$?
((health_rc != 0)) || fail "tgmon health exited 0 with no service running: $health"
# buildah adds its own lines about the exit status to the same stream: keep tgmon's.
reason=$(grep -m1 '^unhealthy: ' <<<"$health" || true)
[[ $reason == "unhealthy: no heartbeat at /data/heartbeat.json: tgmon run is not running" ]] \
    || fail "tgmon health gave no clear reason: $health"
checks+=("tgmon health with no service: exit $health_rc, \"$reason\"")

# SIGTERM, as `docker stop` sends it: tgmon must stop by itself, keep what it has stored and exit 0.
# Chroot isolation shares the host's process table, so the signal goes to the tgmon process directly.
descendants() { # "PID NAME" of every process under PID $1
    local child
    for child in $(ps -o pid= --ppid "$1"); do
        echo "$child $(ps -o comm= -p "$child")"
        descendants "$child"
    done
}
in_image tgmon demo --rate 2 --data-dir /data/sigterm >"$WORK/sigterm.out" 2>"$WORK/sigterm.err" &
runner=$!
for _ in $(seq 60); do
    pid=$(descendants "$runner" | awk '$2 == "tgmon" { print $1; exit }' || true)
    [[ -n $pid ]] && break
    sleep 0.5
done
[[ -n $pid ]] || fail "tgmon demo did not start for the SIGTERM check: see $WORK/sigterm.err"
sleep 4 # long enough to be storing posts
kill -TERM "$pid"
sigterm_rc=0
wait "$runner" || sigterm_rc=$?
((sigterm_rc == 0)) || fail "tgmon exited $sigterm_rc on SIGTERM: see $WORK/sigterm.err"
grep -q '"event": "signal.received"' "$WORK/sigterm.err" || fail "tgmon did not log the SIGTERM: see $WORK/sigterm.err"
stored=$(wc -l <"$data/sigterm/demo/alerts.jsonl")
checks+=("SIGTERM while replaying: logged, stopped cleanly, exit 0 ($stored alerts kept)")

# No root-owned leftovers in the volume: the service could not write them back.
foreign=$(find "$data" ! -uid 10001 -printf '%P\n' | grep -v '^$' || true)
[[ -z $foreign ]] || fail "files in /data not owned by uid 10001: $foreign"
checks+=("everything written to /data is owned by uid 10001")

size=$("${BUILDAH[@]}" images --format '{{.Size}}' "$IMAGE")
# Superseded builds of $IMAGE are left untagged; drop them so vfs storage (whole copies) does not pile up.
"${BUILDAH[@]}" rmi --prune >/dev/null 2>&1 || true

printf '\nimage-test: OK: %s (%s, base %s)\n' "$IMAGE" "$size" "$BASE_IMAGE"
printf '  - %s\n' "${checks[@]}"
printf 'timings:\n'
printf '  - %s\n' "${timings[@]}"
