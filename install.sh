#!/usr/bin/env bash
# Install pibridge on a Raspberry Pi as a systemd service that runs without root.
#
#   sudo ./install.sh                 install, or check that everything is in place
#   sudo ./install.sh --upgrade       reinstall the package and restart the service
#   sudo ./install.sh --uninstall     remove it, keeping config and data (--purge: those too)
#   ./install.sh --root DIR           stage the files under DIR (tests, packagers)
#
# Every step first looks at what is there and changes only what differs, so a
# second run changes nothing.  docs/install.md describes each step.  Run with
# --help for all options.
if [ -z "${BASH_VERSION:-}" ]; then
    echo "install.sh: run it with bash: sudo ./install.sh (or sudo bash install.sh)" >&2
    exit 2
fi
set -eEuo pipefail
# Whatever fails without a message of its own still says where and what.
on_error() {
    local status=$?
    printf 'install.sh: error: line %s: "%s" failed with exit status %s\n' "$1" "$2" "$status" >&2
    exit "$status"
}
trap 'on_error "$LINENO" "$BASH_COMMAND"' ERR
# The service user reads what root installs here: never inherit a private umask.
umask 022

readonly SERVICE=pibridge.service
readonly SERVICE_USER=pibridge
readonly HARDWARE_GROUPS=(gpio i2c spi dialout)
readonly VENV=/opt/pibridge
readonly LINK=/usr/local/bin/pibridge
readonly CONF_DIR=/etc/pibridge
readonly CONF=/etc/pibridge/config.toml
readonly STATE_DIR=/var/lib/pibridge
readonly UDEV_RULES=/etc/udev/rules.d/60-pibridge.rules
readonly UNIT=/etc/systemd/system/pibridge.service
readonly DROPIN_DIR=/etc/systemd/system/pibridge.service.d
readonly DROPIN=/etc/systemd/system/pibridge.service.d/10-backoff.conf
# systemd understands RestartSteps= (the back-off drop-in) from this version on.
readonly SYSTEMD_BACKOFF_VERSION=254
# Debian packages: always needed, then the hardware libraries where the
# distribution has them (lgpio: GPIO on a Pi 5 and on Trixie; libgpiod: DHT).
readonly REQUIRED_PACKAGES=(python3-venv i2c-tools)
readonly OPTIONAL_PACKAGES=(python3-lgpio python3-libgpiod)
readonly LIBGPIOD_PACKAGES=(libgpiod2 libgpiod3)
# Building a checkout without the network takes the system's setuptools and
# wheel (Bookworm's setuptools needs wheel for bdist_wheel).
readonly BUILD_PACKAGES=(python3-setuptools python3-wheel)

SCRIPT_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
readonly SCRIPT_DIR

usage() {
    cat <<EOF
usage: sudo ./install.sh [options]

Installs pibridge as the systemd service pibridge.service, run by the system
user '$SERVICE_USER' (groups ${HARDWARE_GROUPS[*]}), from a virtual environment in $VENV.

  --from SOURCE   install the package from a checkout (a directory with
                  pyproject.toml), a wheel (.whl), or the package index
                  ('pibridge', 'pibridge==0.2.0'); default: the checkout
                  this script is in
  --offline       do not use the network for Python packages (pip --no-index);
                  dependencies must come from Debian or sit next to the wheel
  --no-deps       install only pibridge itself, not its Python dependencies
  --with-1wire    also enable the 1-Wire interface (needs a reboot)
  --upgrade       reinstall the package (and its dependencies) and restart the service
  --uninstall     stop and remove the service, package, udev rules and command;
                  keeps $CONF_DIR, $STATE_DIR and the user
  --purge         like --uninstall, and also removes the config, the data and the user
  --root DIR      stage everything under DIR; run no command that changes this
                  machine (packages, services, udev, raspi-config)
  --dry-run       print every action instead of doing it
  -h, --help      show this help

Environment: PIBRIDGE_PYTHON  the Python (3.11+) that builds the virtual
environment (default /usr/bin/python3).

Exit status: 0 done, 1 failed, 2 bad option, 3 installed but 'pibridge check' failed.
EOF
}

say() { printf '%s\n' "$*"; }
step() { printf '==> %s\n' "$*"; }
note() { printf '    %s\n' "$*"; }
warn() { printf 'install.sh: warning: %s\n' "$*" >&2; }
die() {
    printf 'install.sh: error: %s\n' "$*" >&2
    exit 1
}
usage_error() {
    printf 'install.sh: %s (see --help)\n' "$*" >&2
    exit 2
}

# quoted ARG...: the command line as one would type it (quotes only where needed).
quoted() {
    local arg out=()
    for arg in "$@"; do
        if [[ $arg =~ ^[][A-Za-z0-9_./=:,+@%^-]+$ ]]; then
            out+=("$arg")
        else
            out+=("'${arg//\'/\'\\\'\'}'")
        fi
    done
    printf '%s' "${out[*]}"
}

# ---------------------------------------------------------------- options

ARGS=("$@")
ROOT=""
DRY_RUN=0
ACTION=install
UPGRADE=0
PURGE=0
FROM=""
OFFLINE=0
NO_DEPS=0
WITH_1WIRE=0

while [[ $# -gt 0 ]]; do
    # --option=value is --option value.
    if [[ $1 == --root=* || $1 == --from=* ]]; then
        set -- "${1%%=*}" "${1#*=}" "${@:2}"
    fi
    case $1 in
        --root)
            [[ $# -ge 2 && -n $2 ]] || usage_error "--root needs a directory"
            ROOT=$2
            shift
            ;;
        --from)
            [[ $# -ge 2 && -n $2 ]] || usage_error "--from needs a checkout directory, a wheel or 'pibridge' (the package index)"
            FROM=$2
            shift
            ;;
        --dry-run) DRY_RUN=1 ;;
        --upgrade) UPGRADE=1 ;;
        --uninstall) ACTION=uninstall ;;
        --purge)
            ACTION=uninstall
            PURGE=1
            ;;
        --offline) OFFLINE=1 ;;
        --no-deps) NO_DEPS=1 ;;
        --with-1wire) WITH_1WIRE=1 ;;
        -h | --help)
            usage
            exit 0
            ;;
        *) usage_error "unknown option '$1'" ;;
    esac
    shift
done

if [[ $ACTION == uninstall && $UPGRADE -eq 1 ]]; then
    usage_error "--upgrade and --uninstall exclude each other"
fi

if [[ -n $ROOT ]]; then
    [[ $ROOT == /* ]] || ROOT="$PWD/$ROOT"
    ROOT=${ROOT%/}
    [[ -n $ROOT ]] || usage_error "--root / is the running system: leave --root out instead"
    [[ ! -e $ROOT || -d $ROOT ]] || usage_error "--root $ROOT is not a directory"
elif [[ $(id -u) -ne 0 ]]; then
    die "must run as root to install a system service: sudo $0${ARGS[*]:+ $(quoted "${ARGS[@]}")} (or stage into a directory with --root DIR)"
fi

# The target path $1 as seen from here: under DIR with --root.
at() { printf '%s%s' "$ROOT" "$1"; }

# ---------------------------------------------------------------- actions
#
# Every change goes through change() (files, accounts, the package) or
# on_target() (commands that act on the running system: packages, services,
# udev, raspi-config).  Both print the command; --dry-run stops there, and
# --root skips on_target() commands altogether.

CHANGES=0

change() {
    CHANGES=$((CHANGES + 1))
    if ((DRY_RUN)); then
        note "would run: $(quoted "$@")"
        return 0
    fi
    note "+ $(quoted "$@")"
    local status=0
    "$@" || status=$?
    ((status == 0)) || die "'$(quoted "$@")' failed with exit status $status"
}

on_target() {
    if [[ -n $ROOT ]]; then
        note "left for the target system (--root): $(quoted "$@")"
        return 0
    fi
    change "$@"
}

# ensure_dir PATH MODE: a directory with exactly this mode.
ensure_dir() {
    local path
    path=$(at "$1")
    if [[ ! -d $path ]]; then
        change install -d -m "$2" "$path"
    fi
    ensure_mode "$path" "$2"
}

# ensure_parent PATH: the directory that will hold PATH exists (0755, like the system's).
ensure_parent() {
    local parent
    parent=$(dirname -- "$(at "$1")")
    [[ -d $parent ]] || change install -d -m 0755 "$parent"
}

# ensure_file SOURCE PATH MODE: PATH holds exactly SOURCE's bytes, with this mode.
# Returns 0 when it changed the content, 1 when the content was already right.
ensure_file() {
    local path
    path=$(at "$2")
    if [[ -f $path ]] && cmp -s -- "$1" "$path"; then
        ensure_mode "$path" "$3"
        return 1
    fi
    ensure_parent "$2"
    change install -m "$3" "$1" "$path"
    return 0
}

ensure_mode() {
    # Missing only in a dry run, where the action creating it was printed already.
    [[ -e $1 ]] || return 0
    [[ $(stat -c %a -- "$1") == "${2#0}" ]] || change chmod "$2" "$1"
}

# ---------------------------------------------------------------- accounts
#
# On this machine accounts are looked up with getent (so LDAP and the like
# count); with --root in DIR/etc/passwd and DIR/etc/group, which the shadow
# tools edit there through --prefix.  Without those files in DIR the accounts
# and the ownership of files are left for the target system.

ACCOUNTS=1
PREFIX_OPTS=()
if [[ -n $ROOT ]]; then
    PREFIX_OPTS=(--prefix "$ROOT")
    [[ -f $ROOT/etc/passwd && -f $ROOT/etc/group ]] || ACCOUNTS=0
fi

# account passwd|group NAME: print the account's line, fail when there is none.
account() {
    if [[ -z $ROOT ]]; then
        getent "$1" "$2"
    else
        awk -F: -v name="$2" '$1 == name { print; found = 1; exit } END { exit !found }' "$ROOT/etc/$1"
    fi
}

# ids USER GROUP: print "uid:gid", fail when either does not exist (yet).
ids() {
    local uid gid
    uid=$(account passwd "$1" | cut -d: -f3) || return 1
    gid=$(account group "$2" | cut -d: -f3) || return 1
    printf '%s:%s' "$uid" "$gid"
}

# ensure_owner PATH USER GROUP
ensure_owner() {
    local path want
    ((ACCOUNTS)) || return 0
    path=$(at "$1")
    if ! want=$(ids "$2" "$3"); then
        # Only in a dry run: the account would have been created above.
        change chown "$2:$3" "$path"
        return 0
    fi
    if [[ -e $path ]] && [[ $(stat -c %u:%g -- "$path") == "$want" ]]; then
        return 0
    fi
    change chown "$want" "$path"
}

# ---------------------------------------------------------------- install steps

RESTART_NEEDED=0
REBOOT_NEEDED=0

check_sources() {
    local file
    for file in examples/config.toml udev/60-pibridge.rules systemd/pibridge.service systemd/10-backoff.conf; do
        [[ -f $SCRIPT_DIR/$file ]] ||
            die "$SCRIPT_DIR/$file is missing: run install.sh from a pibridge checkout or release archive"
    done
}

PYTHON=${PIBRIDGE_PYTHON:-}
choose_python() {
    if [[ -z $PYTHON ]]; then
        if [[ -x /usr/bin/python3 ]]; then PYTHON=/usr/bin/python3; else PYTHON=python3; fi
    fi
    command -v "$PYTHON" >/dev/null 2>&1 ||
        die "no Python at '$PYTHON': install python3 (sudo apt-get install python3-venv) or set PIBRIDGE_PYTHON"
    "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
        die "pibridge needs Python 3.11 or newer; $PYTHON is $("$PYTHON" -c 'import platform; print("Python", platform.python_version())' 2>/dev/null || echo "not a working Python"). Raspberry Pi OS Bookworm and Trixie have it; point PIBRIDGE_PYTHON at another if this one is wrong."
}

# SOURCE: what pip installs.  SOURCE_KIND: checkout, wheel or index.
SOURCE=""
SOURCE_KIND=""
choose_source() {
    if [[ -n $FROM && ! -e $FROM && $FROM =~ ^pibridge([[:space:]]*[\<\>=!~].*)?$ ]]; then
        SOURCE=$FROM SOURCE_KIND=index
    elif [[ -n $FROM ]]; then
        [[ -e $FROM ]] || die "--from $FROM: no such file or directory"
        FROM=$(cd -- "$(dirname -- "$FROM")" && pwd -P)/$(basename -- "$FROM")
        if [[ -d $FROM && -f $FROM/pyproject.toml ]]; then
            SOURCE=$FROM SOURCE_KIND=checkout
        elif [[ -f $FROM && $FROM == *.whl ]]; then
            SOURCE=$FROM SOURCE_KIND=wheel
        else
            die "--from $FROM is neither a pibridge checkout (a directory with pyproject.toml) nor a wheel (.whl)"
        fi
    elif [[ -f $SCRIPT_DIR/pyproject.toml ]]; then
        SOURCE=$SCRIPT_DIR SOURCE_KIND=checkout
    else
        SOURCE=pibridge SOURCE_KIND=index
    fi
    if ((OFFLINE)) && [[ $SOURCE_KIND == index ]]; then
        die "--offline cannot reach the package index: give the package with --from PATH (a checkout or a wheel)"
    fi
}

# Debian's view of the packages, asked once each (dpkg and apt are slow on a
# Pi Zero): INSTALLED and CANDIDATE map package names to "1" and a version.
declare -A INSTALLED=() CANDIDATE=()

read_package_state() {
    local package status
    while read -r package status; do
        [[ $status == ii ]] && INSTALLED[$package]=1
    done < <(dpkg-query -W -f='${Package} ${db:Status-Abbrev}\n' "$@" 2>/dev/null || true)
    read_candidates "$@"
}

read_candidates() {
    local package="" key value
    while read -r key value; do
        if [[ $key != Candidate: && $key == *: && -z $value ]]; then
            package=${key%:}
        elif [[ $key == Candidate: && -n $package && $value != "(none)" ]]; then
            CANDIDATE[$package]=$value
        fi
    done < <(apt-cache policy "$@" 2>/dev/null || true)
}

installed() { [[ -n ${INSTALLED[$1]:-} ]]; }
available() { [[ -n ${CANDIDATE[$1]:-} ]]; }

install_packages() {
    step "System packages"
    if [[ -n $ROOT ]]; then
        note "left for the target system (--root): ${REQUIRED_PACKAGES[*]} ${OPTIONAL_PACKAGES[*]} and libgpiod2 or libgpiod3"
        return 0
    fi
    if ! command -v apt-get >/dev/null 2>&1 || ! command -v dpkg-query >/dev/null 2>&1; then
        warn "no apt-get here: install Python's venv module, i2c-tools, lgpio and libgpiod with your package manager"
        return 0
    fi
    local package install=() unavailable=() libgpiod=0 required=("${REQUIRED_PACKAGES[@]}")
    ((OFFLINE)) && [[ $SOURCE_KIND == checkout ]] && required+=("${BUILD_PACKAGES[@]}")
    read_package_state "${required[@]}" "${OPTIONAL_PACKAGES[@]}" "${LIBGPIOD_PACKAGES[@]}" "$AGENT_PACKAGE"
    for package in "${required[@]}"; do
        installed "$package" || install+=("$package")
    done
    for package in "${LIBGPIOD_PACKAGES[@]}"; do
        installed "$package" && libgpiod=1
    done
    for package in "${OPTIONAL_PACKAGES[@]}"; do
        installed "$package" && continue
        if available "$package"; then install+=("$package"); else unavailable+=("$package"); fi
    done
    ((libgpiod)) || pick_libgpiod || unavailable+=(libgpiod)
    if [[ ${#install[@]} -eq 0 ]]; then
        note "nothing to install: every package pibridge uses that apt offers is installed"
        report_unavailable "${unavailable[@]}"
        return 0
    fi
    on_target apt-get update -q
    # Fresh package lists may offer what the old ones did not.
    ((DRY_RUN)) || read_candidates "${OPTIONAL_PACKAGES[@]}" "${LIBGPIOD_PACKAGES[@]}"
    local still=()
    for package in "${unavailable[@]}"; do
        if [[ $package == libgpiod ]]; then
            pick_libgpiod || still+=("$package")
        elif available "$package"; then
            install+=("$package")
        else
            still+=("$package")
        fi
    done
    report_unavailable "${still[@]}"
    on_target env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${install[@]}"
}

# pick_libgpiod: add the libgpiod this release has (Bookworm libgpiod2,
# Trixie libgpiod3) to the caller's install list; fail when apt has neither.
pick_libgpiod() {
    local package
    for package in "${LIBGPIOD_PACKAGES[@]}"; do
        if available "$package"; then
            install+=("$package")
            return 0
        fi
    done
    return 1
}

report_unavailable() {
    local package
    for package in "$@"; do
        note "$package is not available from apt here: GPIO (lgpio) or DHT (gpiod) then depend on the PyPI packages"
    done
}

create_accounts() {
    step "Service user '$SERVICE_USER' in groups ${HARDWARE_GROUPS[*]}"
    if ((!ACCOUNTS)); then
        note "left for the target system (--root): $ROOT/etc/passwd or group is missing"
        note "create there: groups ${HARDWARE_GROUPS[*]}, system user $SERVICE_USER in them; then chown $STATE_DIR to it"
        return 0
    fi
    local group line members missing=()
    for group in "${HARDWARE_GROUPS[@]}"; do
        account group "$group" >/dev/null || change groupadd "${PREFIX_OPTS[@]}" --system "$group"
    done
    if ! account passwd "$SERVICE_USER" >/dev/null; then
        # A group left from an earlier install is taken over rather than refused.
        local own_group=(--user-group)
        account group "$SERVICE_USER" >/dev/null && own_group=(--gid "$SERVICE_USER")
        change useradd "${PREFIX_OPTS[@]}" --system "${own_group[@]}" --home-dir "$STATE_DIR" --no-create-home \
            --shell /usr/sbin/nologin --comment "pibridge sensor bridge" "$SERVICE_USER"
        missing=("${HARDWARE_GROUPS[@]}")
    else
        for group in "${HARDWARE_GROUPS[@]}"; do
            line=$(account group "$group") || {
                missing+=("$group")
                continue
            }
            members=$(cut -d: -f4 <<<"$line")
            [[ ",$members," == *",$SERVICE_USER,"* ]] || missing+=("$group")
        done
    fi
    if [[ ${#missing[@]} -gt 0 ]]; then
        local joined
        joined=$(
            IFS=,
            printf '%s' "${missing[*]}"
        )
        change usermod "${PREFIX_OPTS[@]}" --append --groups "$joined" "$SERVICE_USER"
        RESTART_NEEDED=1
    fi
}

create_state_dir() {
    step "State directory $STATE_DIR (outbox, client key and certificate)"
    ensure_dir "$STATE_DIR" 0700
    ensure_owner "$STATE_DIR" "$SERVICE_USER" "$SERVICE_USER"
}

# installed_version: the pibridge version in the virtual environment, or nothing.
installed_version() {
    [[ -x $(at "$VENV")/bin/python ]] || return 0
    "$(at "$VENV")/bin/python" -c 'import importlib.metadata as m; print(m.version("pibridge"))' 2>/dev/null || true
}

# With --root the environment is built in DIR/opt/pibridge but must run as
# /opt/pibridge: point its scripts' #! lines and activate files there.
rewrite_staged_paths() {
    "$1/bin/python" - "$1" "$VENV" <<'PY'
import pathlib, sys
staged, target = sys.argv[1].encode(), sys.argv[2].encode()
venv = pathlib.Path(sys.argv[1])
for path in [*venv.joinpath("bin").iterdir(), venv / "pyvenv.cfg"]:
    if path.is_symlink() or not path.is_file():
        continue
    data = path.read_bytes()
    if staged in data:
        path.write_bytes(data.replace(staged, target))
PY
}

# copy_checkout: a scratch copy of the checkout in $SCRATCH, without what a
# developer's tree holds besides the sources.  Removed when install.sh exits.
SCRATCH=""
remove_scratch() {
    [[ -z $SCRATCH ]] || rm -rf -- "$SCRATCH" "$SCRATCH.tar"
}
trap remove_scratch EXIT
copy_checkout() {
    SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/pibridge-build.XXXXXX")
    local archive="$SCRATCH.tar" status=0
    # GNU tar exits 1 when something changed while it read the tree (a test run or an editor
    # writing next to the sources: a new cache directory makes "." itself change); every file
    # it did copy is whole.  2 is a real failure.
    tar -C "$SOURCE" -cf "$archive" --warning=no-file-changed --exclude=./.git --exclude=./.venv \
        --exclude=./build --exclude=./dist --exclude='*.egg-info' --exclude=__pycache__ \
        --exclude=.pytest_cache --exclude=.hypothesis . || status=$?
    if ((status > 1)); then
        rm -f -- "$archive"
        die "cannot copy the checkout $SOURCE (tar exit status $status)"
    fi
    tar -C "$SCRATCH" -xf "$archive"
    rm -f -- "$archive"
}

# pip_install COMMAND...: a change like any other, with a hint where pip fails.
pip_install() {
    CHANGES=$((CHANGES + 1))
    if ((DRY_RUN)); then
        note "would run: $(quoted "$@")"
        return 0
    fi
    note "+ $(quoted "$@")"
    "$@" || die "pip could not install pibridge from $SOURCE (its message is above).$(
        ((OFFLINE)) && printf ' Offline, every dependency must be installed already (Debian packages) or sit as a wheel next to the pibridge wheel; --no-deps skips them.'
    )"
}

install_package() {
    step "Virtual environment $VENV"
    local venv
    venv=$(at "$VENV")
    if [[ -e $venv ]] && ! "$venv/bin/python" -c '' >/dev/null 2>&1; then
        note "$VENV exists but its Python does not run (was Python upgraded?): building it anew"
        change rm -rf -- "$venv"
    fi
    if [[ ! -e $venv/bin/python ]]; then
        ensure_parent "$VENV"
        # System site-packages: the venv sees Debian's python3-lgpio and
        # python3-libgpiod, which have no wheels on PyPI for every Pi.
        change "$PYTHON" -m venv --system-site-packages "$venv"
    fi

    step "Package pibridge from $SOURCE"
    local version
    version=$(installed_version)
    if [[ -n $version && $UPGRADE -eq 0 ]]; then
        note "pibridge $version is installed (--upgrade reinstalls it)"
        return 0
    fi
    local pip=("$venv/bin/python" -m pip install --disable-pip-version-check --no-input --no-cache-dir --quiet)
    ((NO_DEPS)) && pip+=(--no-deps)
    if ((OFFLINE)); then
        pip+=(--no-index)
        # A wheelhouse: the dependencies' wheels may sit next to pibridge's.
        [[ $SOURCE_KIND == wheel ]] && pip+=(--find-links "$(dirname -- "$SOURCE")")
        # Build with the setuptools already here rather than fetching one.
        [[ $SOURCE_KIND == checkout ]] && pip+=(--no-build-isolation)
    fi
    if ((OFFLINE)) && [[ $SOURCE_KIND == checkout ]] && ((!DRY_RUN)) &&
        ! "$venv/bin/python" -c 'import setuptools, wheel' >/dev/null 2>&1; then
        die "building $SOURCE offline needs setuptools and wheel: apt-get install ${BUILD_PACKAGES[*]}, or install from a wheel (--from pibridge-*.whl)"
    fi
    local source=$SOURCE
    if [[ $SOURCE_KIND == checkout ]] && ((!DRY_RUN)); then
        copy_checkout
        source=$SCRATCH
        note "building from a copy of $SOURCE: pip would leave root-owned build files in the checkout"
    fi
    if ((UPGRADE)); then
        pip_install "${pip[@]}" --upgrade "$source"
        # pip rebuilds a checkout every time, but takes a wheel of the version
        # already installed as "satisfied": replace the package itself explicitly.
        [[ $SOURCE_KIND == wheel ]] && pip_install "${pip[@]}" --force-reinstall --no-deps "$source"
    else
        pip_install "${pip[@]}" "$source"
    fi
    [[ -n $ROOT ]] && change rewrite_staged_paths "$venv"
    RESTART_NEEDED=1
}

# GPIO on a Pi 5 and on Trixie goes through lgpio; the DHT driver (Blinka)
# through libgpiod's Python module.  Debian's packages provide both where they
# exist; elsewhere try the PyPI packages, and say plainly if that fails too.
# importable PYTHON MODULE: the module and its C library load.  lgpio is probed
# through its extension _lgpio: importing lgpio itself starts a thread that
# leaves .lgd-nfy pipes in the current directory.
importable() {
    "$1" -c "import ${2/#lgpio/_lgpio}" >/dev/null 2>&1
}

check_hardware_modules() {
    [[ -z $ROOT ]] || return 0
    grep -qs 'Raspberry Pi' /proc/device-tree/model || return 0
    step "Hardware libraries in the virtual environment"
    local python=$VENV/bin/python module purpose pip
    if ((DRY_RUN)) && [[ ! -x $python ]]; then
        note "would check that lgpio and gpiod import in $VENV"
        return 0
    fi
    for module in lgpio gpiod; do
        [[ $module == lgpio ]] && purpose="GPIO sensors" || purpose="DHT sensors"
        if importable "$python" "$module"; then
            note "$module imports"
            continue
        fi
        pip=("$python" -m pip install --disable-pip-version-check --no-input --no-cache-dir --quiet "$module")
        if ((DRY_RUN)); then
            change "${pip[@]}"
        elif ((!OFFLINE)) && note "+ $(quoted "${pip[@]}")" && "${pip[@]}" && importable "$python" "$module"; then
            CHANGES=$((CHANGES + 1))
        else
            warn "$module does not import in $VENV: $purpose will not work. Install Debian's python3-${module/gpiod/libgpiod} and run install.sh again."
        fi
    done
}

link_command() {
    step "Command $LINK"
    local link
    link=$(at "$LINK")
    if [[ -L $link && $(readlink -- "$link") == "$VENV/bin/pibridge" ]]; then
        note "links to $VENV/bin/pibridge"
        return 0
    fi
    if [[ -e $link || -L $link ]] && [[ ! -L $link ]]; then
        die "$LINK exists and is not a link into $VENV: move it away and run install.sh again"
    fi
    ensure_parent "$LINK"
    change ln -sfn "$VENV/bin/pibridge" "$link"
}

install_config() {
    step "Configuration $CONF"
    ensure_dir "$CONF_DIR" 0750
    ensure_owner "$CONF_DIR" root "$SERVICE_USER"
    if [[ -e $(at "$CONF") ]]; then
        note "keeping the existing $CONF"
        return 0
    fi
    change install -m 0640 "$SCRIPT_DIR/examples/config.toml" "$(at "$CONF")"
    ensure_owner "$CONF" root "$SERVICE_USER"
    RESTART_NEEDED=1
}

install_udev_rules() {
    step "udev rules $UDEV_RULES"
    if ensure_file "$SCRIPT_DIR/udev/60-pibridge.rules" "$UDEV_RULES" 0644; then
        if [[ -z $ROOT ]] && ! systemd_running; then
            note "udev is not running here (a chroot?): the rules apply at the next boot"
            return 0
        fi
        on_target udevadm control --reload-rules
        on_target udevadm trigger --subsystem-match=gpio --subsystem-match=i2c-dev --subsystem-match=spidev \
            --subsystem-match=tty --subsystem-match=bcm2835-gpiomem --subsystem-match=rpi-gpiomem
    else
        note "up to date"
    fi
}

SYSTEMCTL=(systemctl)
systemd_version() {
    systemctl --version 2>/dev/null | awk 'NR == 1 { print $2 + 0 }'
}

# systemd_running: the machine was booted with systemd (not a chroot or container build).
SYSTEMD_STATE=""
systemd_running() {
    [[ -n $SYSTEMD_STATE ]] || SYSTEMD_STATE=$(systemctl is-system-running 2>/dev/null || true)
    [[ -n $SYSTEMD_STATE && $SYSTEMD_STATE != offline ]]
}

install_unit() {
    step "systemd unit $UNIT"
    command -v systemctl >/dev/null 2>&1 || die "systemctl not found: pibridge runs as a systemd service"
    [[ -n $ROOT ]] && SYSTEMCTL=(systemctl "--root=$ROOT")
    local reload=0 version
    ensure_file "$SCRIPT_DIR/systemd/pibridge.service" "$UNIT" 0644 && reload=1
    version=$(systemd_version)
    if [[ ${version:-0} -ge $SYSTEMD_BACKOFF_VERSION ]]; then
        ensure_file "$SCRIPT_DIR/systemd/10-backoff.conf" "$DROPIN" 0644 && reload=1
    else
        note "systemd ${version:-?} restarts every 5 s; the growing back-off needs systemd $SYSTEMD_BACKOFF_VERSION"
    fi
    if ((reload)); then
        RESTART_NEEDED=1
        if [[ -z $ROOT ]] && systemd_running; then on_target systemctl daemon-reload; fi
    else
        note "up to date"
    fi
    if "${SYSTEMCTL[@]}" is-enabled --quiet "$SERVICE" 2>/dev/null; then
        note "enabled at boot"
    else
        change "${SYSTEMCTL[@]}" enable "$SERVICE"
    fi
}

enable_interfaces() {
    if ((WITH_1WIRE)); then step "I2C and 1-Wire interfaces"; else step "I2C interface"; fi
    if [[ -n $ROOT ]]; then
        on_target raspi-config nonint do_i2c 0
        ((WITH_1WIRE)) && on_target raspi-config nonint do_onewire 0
        return 0
    fi
    if ! command -v raspi-config >/dev/null 2>&1; then
        note "no raspi-config here: enable I2C yourself (dtparam=i2c_arm=on in config.txt)"
        return 0
    fi
    # raspi-config's get_* print 0 when the interface is on.
    if [[ $(raspi-config nonint get_i2c) == 0 ]]; then
        note "I2C is on"
    else
        on_target raspi-config nonint do_i2c 0
    fi
    if ((WITH_1WIRE)); then
        if [[ $(raspi-config nonint get_onewire) == 0 ]]; then
            note "1-Wire is on"
        else
            on_target raspi-config nonint do_onewire 0
            REBOOT_NEEDED=1
        fi
    fi
}

# The agent pibridge sends to: looked at, never installed (it is TeamViewer's package).
readonly AGENT_PACKAGE=teamviewer-iot-agent
readonly AGENT_SERVICE=teamviewer-iot-agent
readonly AGENT_CA=/var/lib/teamviewer-iot-agent/certs/TeamViewerAuthority.crt
AGENT_MISSING=0

check_agent() {
    step "TeamViewer IoT Agent"
    if [[ -n $ROOT ]]; then
        note "left for the target system (--root): pibridge needs the agent running on the Pi"
        return 0
    fi
    if ! installed "$AGENT_PACKAGE" && [[ ! -e $AGENT_CA ]]; then
        AGENT_MISSING=1
        note "not installed: pibridge keeps every reading in its outbox until the agent is there"
        local arch foreign
        arch=$(dpkg --print-architecture 2>/dev/null || true)
        foreign=$(dpkg --print-foreign-architectures 2>/dev/null || true)
        if [[ $arch == arm64 ]] && ! grep -qx armhf <<<"$foreign"; then
            note "the agent is built for armhf only; on this 64-bit system add that architecture first:"
            note "  sudo dpkg --add-architecture armhf && sudo apt-get update"
        fi
        note "then install the agent as TeamViewer describes (docs/install.md, 'The TeamViewer IoT Agent')"
        return 0
    fi
    if systemd_running && ! systemctl is-active --quiet "$AGENT_SERVICE"; then
        AGENT_MISSING=1
        note "installed but not running: sudo systemctl start $AGENT_SERVICE"
    else
        note "installed"
    fi
    [[ -e $AGENT_CA ]] || note "its CA file $AGENT_CA is not there yet; it appears when the agent first starts"
}

start_service() {
    step "Service $SERVICE"
    if [[ -n $ROOT ]]; then
        note "left for the target system (--root): systemctl start $SERVICE"
        return 0
    fi
    if ! systemd_running; then
        note "systemd is not running here (a chroot?): the service starts at the next boot"
        return 0
    fi
    if [[ ! -e $CONF ]] && ((!DRY_RUN)); then
        note "no $CONF: not starting the service"
        return 0
    fi
    if ! systemctl is-active --quiet "$SERVICE"; then
        on_target systemctl start "$SERVICE"
    elif ((RESTART_NEEDED)); then
        on_target systemctl restart "$SERVICE"
    else
        note "running"
    fi
}

CHECK_FAILED=0
run_check() {
    step "pibridge check"
    local check=(runuser -u "$SERVICE_USER" -- "$VENV/bin/pibridge" check --config "$CONF")
    if [[ -n $ROOT ]]; then
        note "left for the target system (--root): $(quoted "${check[@]}")"
    elif ! systemd_running; then
        note "not on the running Pi (a chroot?): run the check there: $(quoted "${check[@]}")"
    elif ((DRY_RUN)); then
        note "would run: $(quoted "${check[@]}")"
    else
        # As the service user, so missing permissions show up here, not in the
        # journal; from the state directory, as the unit runs it (lgpio puts
        # its pipes in the working directory, and sudo's may be private).
        note "+ (cd $STATE_DIR && $(quoted "${check[@]}"))"
        (cd "$STATE_DIR" && "${check[@]}") || CHECK_FAILED=1
    fi
}

next_steps() {
    say ""
    if ((CHECK_FAILED)); then
        say "pibridge is installed, but 'pibridge check' found problems (listed above). Fix $CONF, then:"
    else
        say "Next:"
    fi
    if ((AGENT_MISSING)); then
        say "  0. Install or start the TeamViewer IoT Agent (see 'TeamViewer IoT Agent' above);"
        say "     until it runs, readings wait in pibridge's outbox."
    fi
    say "  1. Edit $CONF: the agent's address and CA file, and your"
    say "     sensors (docs/configuration.md, docs/drivers.md)."
    say "  2. Read every sensor once, as the service would:"
    say "       cd /tmp && sudo -u $SERVICE_USER pibridge check --config $CONF"
    say "  3. Apply the config:   sudo systemctl restart pibridge"
    say "  4. Follow the log:     journalctl -u pibridge -f"
    say "     Outbox and sensors: sudo pibridge status"
    if ((REBOOT_NEEDED)); then
        say "  Reboot once: 1-Wire was switched on and takes effect at boot."
    fi
}

# ---------------------------------------------------------------- uninstall

uninstall() {
    [[ -n $ROOT ]] && SYSTEMCTL=(systemctl "--root=$ROOT")
    step "Service $SERVICE"
    if [[ -z $ROOT ]] && command -v systemctl >/dev/null 2>&1; then
        if systemctl is-active --quiet "$SERVICE" 2>/dev/null; then on_target systemctl stop "$SERVICE"; fi
    fi
    if [[ -e $(at "$UNIT") ]] && "${SYSTEMCTL[@]}" is-enabled --quiet "$SERVICE" 2>/dev/null; then
        change "${SYSTEMCTL[@]}" disable "$SERVICE"
    fi
    local removed_unit=0 path
    for path in "$DROPIN" "$UNIT"; do
        if [[ -e $(at "$path") ]]; then
            change rm -f -- "$(at "$path")"
            removed_unit=1
        fi
    done
    # Keep the directory when `systemctl edit` put the administrator's overrides in it.
    if [[ -d $(at "$DROPIN_DIR") ]] && [[ -z $(ls -A -- "$(at "$DROPIN_DIR")") ]]; then
        change rmdir -- "$(at "$DROPIN_DIR")"
    fi
    if ((removed_unit)) && [[ -z $ROOT ]] && systemd_running; then on_target systemctl daemon-reload; fi

    step "udev rules $UDEV_RULES"
    if [[ -e $(at "$UDEV_RULES") ]]; then
        change rm -f -- "$(at "$UDEV_RULES")"
        if [[ -n $ROOT ]] || systemd_running; then on_target udevadm control --reload-rules; fi
    fi

    step "Command $LINK and virtual environment $VENV"
    local link
    link=$(at "$LINK")
    if [[ -L $link && $(readlink -- "$link") == "$VENV/bin/pibridge" ]]; then
        change rm -f -- "$link"
    fi
    [[ -e $(at "$VENV") ]] && change rm -rf -- "$(at "$VENV")"

    if ((!PURGE)); then
        step "Kept: $CONF_DIR, $STATE_DIR (buffered readings, client key and certificate), user $SERVICE_USER"
        note "install.sh --purge removes them too"
        return 0
    fi
    step "Purge: $CONF_DIR, $STATE_DIR and user $SERVICE_USER"
    for path in "$CONF_DIR" "$STATE_DIR"; do
        [[ -e $(at "$path") ]] && change rm -rf -- "$(at "$path")"
    done
    if ((ACCOUNTS)); then
        if account passwd "$SERVICE_USER" >/dev/null; then change userdel "${PREFIX_OPTS[@]}" "$SERVICE_USER"; fi
        # userdel removes the user's own group only where USERGROUPS_ENAB says so.
        if ((!DRY_RUN)) && account group "$SERVICE_USER" >/dev/null; then
            change groupdel "${PREFIX_OPTS[@]}" "$SERVICE_USER"
        fi
    fi
    note "kept: the groups ${HARDWARE_GROUPS[*]} and the Debian packages, which other programs use"
}

# ---------------------------------------------------------------- main

summary() {
    say ""
    if ((CHANGES == 0)); then
        say "Nothing to change: pibridge is ${1}."
    elif ((DRY_RUN)); then
        say "Dry run: $CHANGES change(s) would be made; nothing was changed."
    else
        say "Done: $CHANGES change(s) made."
    fi
}

main() {
    [[ -n $ROOT ]] && say "Staging under $ROOT (--root): this machine is left alone."
    ((DRY_RUN)) && say "Dry run: printing the actions, changing nothing."
    if [[ $ACTION == uninstall ]]; then
        uninstall
        summary "not installed"
        return 0
    fi
    check_sources
    choose_python
    choose_source
    install_packages
    create_accounts
    create_state_dir
    install_package
    check_hardware_modules
    link_command
    install_config
    install_udev_rules
    install_unit
    enable_interfaces
    check_agent
    start_service
    run_check
    summary "installed and up to date"
    next_steps
    ((CHECK_FAILED)) && exit 3
    return 0
}

main
