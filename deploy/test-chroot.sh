#!/usr/bin/env bash
# End-to-end test of install.sh and the Ansible role in a Debian bookworm root
# made with debootstrap. In a chroot: install, reinstall, keep an edited
# config, a failed upgrade that rolls back, a good upgrade, rollback, and an
# Ansible rollout with the local connection. Booted with systemd-nspawn: an
# upgrade gated on READY and health, and a failed start that rolls back. Then
# uninstall.
#
# Run it as root with `make deploy-test`. It needs debootstrap, systemd-nspawn
# (systemd-container) and network access to the Debian archive and PyPI. The
# root has no camera, screen, GPIO or Raspberry Pi archive, so the installer
# runs with --no-pi-packages, the selftest skips the hardware checks, and the
# daemon replays a recorded video on a headless display.
# EXPRESSION_PORTRAIT_DEPLOY_TEST_SUITE=trixie tests Debian trixie instead.
set -euo pipefail

readonly PROGRAM=${0##*/}
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
readonly REPO
readonly WORK=${EXPRESSION_PORTRAIT_DEPLOY_TEST_DIR:-/var/tmp/expression-portrait-deploy-test}
readonly SUITE=${EXPRESSION_PORTRAIT_DEPLOY_TEST_SUITE:-bookworm}
readonly MIRROR=${EXPRESSION_PORTRAIT_DEPLOY_TEST_MIRROR:-http://deb.debian.org/debian}
readonly BASE=$WORK/base-$SUITE
readonly CHROOT=$WORK/root
readonly ANSIBLE_CORE_VERSION=2.19.14
# The selftest checks that need real hardware are switched off in the chroot.
readonly SELFTEST_ARGS=${EXPRESSION_PORTRAIT_DEPLOY_TEST_SELFTEST_ARGS:---skip camera --skip display --skip buttons}
readonly INSTALL_OPTIONS=(--no-pi-packages --no-start --selftest-args "$SELFTEST_ARGS")

STARTED=$SECONDS
CHECKS=0
NSPAWN_PID=
CONTAINER_PID=

fail() {
    echo "$PROGRAM: FAILED: $*" >&2
    exit 1
}

check() {
    local description=$1
    shift
    if "$@"; then
        CHECKS=$((CHECKS + 1))
        echo "ok - $description"
    else
        fail "$description"
    fi
}

step() {
    printf '\n### %s (%ds)\n' "$*" $((SECONDS - STARTED))
}

# pip uses its own CA bundle unless PIP_CERT names another; point it at the system's,
# which carries the host's trusted CAs (see mount_chroot).
in_chroot() {
    chroot "$CHROOT" env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        HOME=/root LANG=C.UTF-8 PIP_CERT=/etc/ssl/certs/ca-certificates.crt "$@"
}

mount_chroot() {
    mount -t proc proc "$CHROOT/proc"
    mount --rbind /dev "$CHROOT/dev"
    mount --make-rslave "$CHROOT/dev"
    cp /etc/resolv.conf "$CHROOT/etc/resolv.conf"
    # The host's CA bundle, so HTTPS through a proxy that the host trusts works inside too.
    cp /etc/ssl/certs/ca-certificates.crt "$CHROOT/etc/ssl/certs/ca-certificates.crt"
}

unmount_chroot() {
    umount -R "$CHROOT/dev" 2>/dev/null || true
    umount "$CHROOT/proc" 2>/dev/null || true
}

cleanup() {
    if [[ -n $NSPAWN_PID ]] && kill -0 "$NSPAWN_PID" 2>/dev/null; then
        kill "$NSPAWN_PID" || true
        wait "$NSPAWN_PID" 2>/dev/null || true
    fi
    unmount_chroot
}

# Boot the chroot with systemd-nspawn, so systemd runs the unit for real: its
# sandbox, Type=notify READY and the installer's health gate.
boot_container() {
    unmount_chroot
    systemd-nspawn --quiet --register=no --keep-unit --machine=expression-portrait-test \
        --directory="$CHROOT" --boot >"$WORK/container.log" 2>&1 &
    NSPAWN_PID=$!
    local attempt
    for attempt in $(seq 30); do
        CONTAINER_PID=$(pgrep -P "$NSPAWN_PID" -x systemd || true)
        [[ -n $CONTAINER_PID ]] && break
        sleep 1
    done
    [[ -n $CONTAINER_PID ]] || fail "systemd did not start in the container after $attempt s; see $WORK/container.log"
    in_container systemctl is-system-running --wait >/dev/null || true
}

poweroff_container() {
    in_container systemctl poweroff || true
    wait "$NSPAWN_PID" || true
    NSPAWN_PID=
    CONTAINER_PID=
    mount_chroot
}

in_container() {
    nsenter --target "$CONTAINER_PID" --all -- env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        HOME=/root LANG=C.UTF-8 PIP_CERT=/etc/ssl/certs/ca-certificates.crt "$@"
}

# Run a command in the container, keep its output for output_has, and show it.
installed_in_container() {
    local status=0
    in_container "$@" >"$WORK/last.log" 2>&1 || status=$?
    cat "$WORK/last.log"
    return $status
}

status_healthy() {
    in_container expression-portrait status --json | python3 -c 'import json, sys; sys.exit(0 if json.load(sys.stdin)["healthy"] is True else 1)'
}

# Copy the repository's release files into the chroot at /root/$1, with $2 as version.
stage_source() {
    local name=$1 version=$2 target=$CHROOT/root/$1
    rm -rf "$target"
    mkdir -p "$target"
    tar -C "$REPO" --exclude=__pycache__ --exclude='*.egg-info' --exclude=.build -cf - \
        device models_tflite deploy setup.cfg pyproject.toml README.md |
        tar -C "$target" -xf -
    sed -i "s/^__version__ = .*/__version__ = \"$version\"/" "$target/device/expression_portrait/__init__.py"
    echo "/root/$name"
}

# Run a command in the chroot, keep its output for output_has, and show it.
installed() {
    local status=0
    in_chroot "$@" >"$WORK/last.log" 2>&1 || status=$?
    cat "$WORK/last.log"
    return $status
}

current_release() {
    basename "$(readlink "$CHROOT/opt/expression-portrait/current")"
}

output_has() {
    grep -qF -- "$1" "$WORK/last.log"
}

main() {
    [[ $(id -u) -eq 0 ]] || fail "run as root (debootstrap and chroot need it)"
    command -v debootstrap >/dev/null || fail "debootstrap is missing; run: apt-get install debootstrap"
    command -v systemd-nspawn >/dev/null || fail "systemd-nspawn is missing; run: apt-get install systemd-container"
    [[ -f $REPO/deploy/config.toml ]] || fail "the sample config $REPO/deploy/config.toml is missing"
    mkdir -p "$WORK"

    step "Debian $SUITE base (cached in $BASE)"
    if [[ ! -f $BASE/.complete ]]; then
        rm -rf "$BASE"
        debootstrap --variant=minbase --include=ca-certificates,systemd,python3,passwd \
            "$SUITE" "$BASE" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 ||
            fail "debootstrap failed; see $WORK/debootstrap.log"
        touch "$BASE/.complete"
    fi
    unmount_chroot
    rm -rf "$CHROOT"
    cp -a "$BASE" "$CHROOT"
    trap cleanup EXIT
    mount_chroot
    # A Raspberry Pi OS boot partition, for the console settings.
    mkdir -p "$CHROOT/boot/firmware"
    echo "console=serial0,115200 console=tty1 root=PARTUUID=0123abcd-02 rootfstype=ext4 fsck.repair=yes rootwait" \
        >"$CHROOT/boot/firmware/cmdline.txt"

    step "install 1.0.0"
    local source
    source=$(stage_source src-1.0.0 1.0.0)
    installed "$source/deploy/install.sh" install "${INSTALL_OPTIONS[@]}" || fail "install 1.0.0 exited $?"
    check "install reports installed" output_has "result: installed"
    check "current is 1.0.0" test "$(current_release)" = 1.0.0
    check "unit installed" cmp -s "$CHROOT$source/deploy/systemd/expression-portrait.service" \
        "$CHROOT/etc/systemd/system/expression-portrait.service"
    check "unit enabled" test -L "$CHROOT/etc/systemd/system/multi-user.target.wants/expression-portrait.service"
    check "sample config installed" cmp -s "$CHROOT$source/deploy/config.toml" "$CHROOT/etc/expression-portrait/config.toml"
    check "user in hardware groups" bash -c "in_groups=\$(chroot '$CHROOT' id -nG expression-portrait); for g in video render gpio input; do [[ \" \$in_groups \" == *\" \$g \"* ]] || exit 1; done"
    check "consoleblank=0 on cmdline" grep -q " consoleblank=0" "$CHROOT/boot/firmware/cmdline.txt"
    check "cmdline stays one line" test "$(wc -l <"$CHROOT/boot/firmware/cmdline.txt")" -eq 1
    check "command on PATH" in_chroot expression-portrait --version
    check "venv uses Debian's numpy" in_chroot /opt/expression-portrait/current/venv/bin/python -c \
        'import numpy, sys; print("numpy", numpy.__version__); sys.exit(0 if numpy.__file__.startswith("/usr/lib/python3/") else 1)'
    check "TFLite runtime loads as the service user" in_chroot runuser -u expression-portrait -- \
        /opt/expression-portrait/current/venv/bin/python -c \
        'from expression_portrait.runtime import find_runtime; print(find_runtime())'
    check "systemd-analyze verify on the installed tree" systemd-analyze verify --root="$CHROOT" expression-portrait.service

    step "reinstall the same tree"
    installed "$source/deploy/install.sh" install "${INSTALL_OPTIONS[@]}" || fail "reinstall exited $?"
    check "reinstall changes nothing" output_has "result: unchanged"
    check "consoleblank=0 added once" test "$(grep -o consoleblank=0 "$CHROOT/boot/firmware/cmdline.txt" | wc -l)" -eq 1

    step "an edited config survives an upgrade"
    printf '\n# edited on site\n' >>"$CHROOT/etc/expression-portrait/config.toml"
    cp "$CHROOT/etc/expression-portrait/config.toml" "$WORK/edited-config.toml"

    step "upgrade to a broken 1.0.1 rolls back"
    source=$(stage_source src-1.0.1 1.0.1)
    # A model file that no longer matches its manifest checksum fails the selftest.
    local model
    model=$(find "$CHROOT$source/models_tflite" -name '*.tflite' | head -n 1)
    [[ -n $model ]] || fail "no .tflite file under models_tflite to break"
    printf 'corrupt' >>"$model"
    local status=0
    installed "$source/deploy/install.sh" upgrade "${INSTALL_OPTIONS[@]}" || status=$?
    check "failed upgrade exits 3" test "$status" -eq 3
    check "failed upgrade names the selftest" output_has "failed at: selftest"
    check "current is back on 1.0.0" test "$(current_release)" = 1.0.0
    check "edited config kept" cmp -s "$WORK/edited-config.toml" "$CHROOT/etc/expression-portrait/config.toml"

    step "upgrade to a good 1.0.2"
    source=$(stage_source src-1.0.2 1.0.2)
    installed "$source/deploy/install.sh" upgrade "${INSTALL_OPTIONS[@]}" || fail "upgrade to 1.0.2 exited $?"
    check "upgrade reports upgraded" output_has "result: upgraded"
    check "current is 1.0.2" test "$(current_release)" = 1.0.2
    check "previous is 1.0.0" test "$(basename "$(readlink "$CHROOT/opt/expression-portrait/previous")")" = 1.0.0
    check "edited config kept" cmp -s "$WORK/edited-config.toml" "$CHROOT/etc/expression-portrait/config.toml"
    check "new sample beside the config" test -f "$CHROOT/etc/expression-portrait/config.toml.sample"

    step "rollback to 1.0.0"
    installed /opt/expression-portrait/current/deploy/install.sh rollback "${INSTALL_OPTIONS[@]}" || fail "rollback exited $?"
    check "current is 1.0.0 after rollback" test "$(current_release)" = 1.0.0
    check "previous is 1.0.2 after rollback" test "$(basename "$(readlink "$CHROOT/opt/expression-portrait/previous")")" = 1.0.2

    step "Ansible rollout of 1.0.3 with the local connection"
    in_chroot python3 -m venv /opt/ansible-test >/dev/null
    in_chroot /opt/ansible-test/bin/pip install --quiet --disable-pip-version-check \
        "ansible-core==$ANSIBLE_CORE_VERSION" || fail "pip could not install ansible-core in the chroot"
    source=$(stage_source src-1.0.3 1.0.3)
    cat >"$CHROOT/root/inventory.yml" <<EOF
kiosks:
  hosts:
    chroot-kiosk:
      ansible_connection: local
      ansible_python_interpreter: /usr/bin/python3
EOF
    installed env ANSIBLE_CONFIG="$source/deploy/ansible/ansible.cfg" \
        /opt/ansible-test/bin/ansible-playbook -i /root/inventory.yml "$source/deploy/ansible/rollout.yml" \
        -e expression_portrait_source="$source" \
        -e expression_portrait_start=false \
        -e "{\"expression_portrait_install_options\": [\"--no-pi-packages\", \"--no-start\", \"--selftest-args\", \"$SELFTEST_ARGS\"]}" ||
        fail "ansible rollout of 1.0.3 failed"
    check "ansible switched to 1.0.3" test "$(current_release)" = 1.0.3
    check "ansible recap has no failures" output_has "failed=0"
    installed env ANSIBLE_CONFIG="$source/deploy/ansible/ansible.cfg" \
        /opt/ansible-test/bin/ansible-playbook -i /root/inventory.yml "$source/deploy/ansible/rollout.yml" \
        -e expression_portrait_source="$source" -e expression_portrait_start=false \
        -e "{\"expression_portrait_install_options\": [\"--no-pi-packages\", \"--no-start\", \"--selftest-args\", \"$SELFTEST_ARGS\"]}" ||
        fail "second ansible rollout of 1.0.3 failed"
    check "second rollout changes nothing" output_has "changed=0"
    installed env ANSIBLE_CONFIG="$source/deploy/ansible/ansible.cfg" \
        /opt/ansible-test/bin/ansible-playbook -i /root/inventory.yml "$source/deploy/ansible/rollback.yml" \
        -e expression_portrait_start=false \
        -e "{\"expression_portrait_install_options\": [\"--no-pi-packages\", \"--no-start\", \"--selftest-args\", \"$SELFTEST_ARGS\"]}" ||
        fail "ansible rollback failed"
    check "ansible rolled back to 1.0.0" test "$(current_release)" = 1.0.0

    step "systemd: upgrade to 1.0.4 with READY and the health gate"
    boot_container
    # The kiosk replays a recorded face video on a headless display: the
    # container has no camera and no screen, but everything else is real.
    local video
    video=$(in_container runuser -u expression-portrait -- env HOME=/var/lib/expression-portrait \
        EXPRESSION_PORTRAIT_MEDIA_CACHE=/var/lib/expression-portrait/media \
        /opt/expression-portrait/current/venv/bin/python -c \
        'from expression_portrait import media; print(media.path("single_face.mp4"))') ||
        fail "could not fetch the test video single_face.mp4"
    mkdir -p "$CHROOT/etc/systemd/system/expression-portrait.service.d"
    cat >"$CHROOT/etc/systemd/system/expression-portrait.service.d/replay.conf" <<EOF
[Service]
ExecStart=
ExecStart=/opt/expression-portrait/current/venv/bin/expression-portrait run --replay $video --display headless
EOF
    source=$(stage_source src-1.0.4 1.0.4)
    installed_in_container "$source/deploy/install.sh" upgrade --no-pi-packages --selftest-args "$SELFTEST_ARGS" ||
        fail "upgrade to 1.0.4 under systemd exited $?; see journalctl in the container"
    check "upgrade under systemd reports upgraded" output_has "result: upgraded"
    check "installer saw status healthy" output_has "status --json reports healthy"
    check "service active under systemd" in_container systemctl is-active --quiet expression-portrait
    check "status --json reports healthy" status_healthy

    step "systemd: a release whose daemon cannot start rolls back"
    source=$(stage_source src-1.0.5 1.0.5)
    # Only `expression-portrait run` imports this module, so the config check and
    # the selftest pass and the failure shows at the start.
    printf '\nraise RuntimeError("this release cannot start")\n' >>"$CHROOT$source/device/expression_portrait/commands/run.py"
    status=0
    installed_in_container "$source/deploy/install.sh" upgrade --no-pi-packages --selftest-args "$SELFTEST_ARGS" ||
        status=$?
    check "failed start exits 3" test "$status" -eq 3
    check "failed start names READY" output_has "failed at: start (no READY=1 from the daemon)"
    check "current is back on 1.0.4" test "$(current_release)" = 1.0.4
    check "service active again" in_container systemctl is-active --quiet expression-portrait
    check "status healthy after rollback" status_healthy

    step "systemd: Ansible rollout of 1.0.3 gated on status --json"
    source=/root/src-1.0.3
    installed_in_container env ANSIBLE_CONFIG="$source/deploy/ansible/ansible.cfg" \
        /opt/ansible-test/bin/ansible-playbook -i /root/inventory.yml "$source/deploy/ansible/rollout.yml" \
        -e expression_portrait_source="$source" \
        -e "{\"expression_portrait_install_options\": [\"--no-pi-packages\", \"--selftest-args\", \"$SELFTEST_ARGS\"]}" ||
        fail "ansible rollout of 1.0.3 under systemd failed"
    check "ansible health gate passed" output_has "Wait for status --json to report healthy"
    check "ansible recap has no failures under systemd" output_has "failed=0"
    check "ansible gate needed no rescue" output_has "rescued=0"
    check "current is 1.0.3 under systemd" test "$(current_release)" = 1.0.3
    check "status healthy after the rollout" status_healthy
    in_container journalctl -u expression-portrait --no-pager -n 30 >"$WORK/journal.log" 2>&1 || true
    rm -rf "$CHROOT/etc/systemd/system/expression-portrait.service.d"
    poweroff_container

    step "uninstall"
    installed /opt/expression-portrait/current/deploy/install.sh uninstall --no-start || fail "uninstall exited $?"
    check "release tree removed" test ! -e "$CHROOT/opt/expression-portrait"
    check "unit removed" test ! -e "$CHROOT/etc/systemd/system/expression-portrait.service"
    check "consoleblank=0 removed" bash -c "! grep -q consoleblank=0 '$CHROOT/boot/firmware/cmdline.txt'"
    check "config kept without --purge" test -f "$CHROOT/etc/expression-portrait/config.toml"

    printf '\n%d passed, 0 failed in %ds (%s chroot, %s)\n' "$CHECKS" $((SECONDS - STARTED)) "$SUITE" "$(date -u +%Y-%m-%dT%H:%MZ)"
}

main "$@"
