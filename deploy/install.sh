#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Install (or upgrade, or uninstall) the Calypso gate validator on a Debian host.
#
#   sudo deploy/install.sh                  install or upgrade; then: systemctl enable --now calypso-validator
#   sudo deploy/install.sh --enable         the same, and enable and start the service
#   sudo deploy/install.sh --uninstall      remove program, unit and rules; keep journals, config, keys
#   deploy/install.sh --destdir /tmp/root --no-package --no-apt    stage into a throw-away root
#
# Idempotent: run it again to upgrade the package or to repair modes and owners. It never
# overwrites a configuration file, and never deletes a journal.
set -eu

NAME=calypso-validator
SERVICE_USER=calypso-validator
PREFIX=/opt/calypso-validator
ETC=/etc/calypso-validator
STATE=/var/lib/calypso-validator
JOURNAL=$STATE/journal
UNIT_DIR=/etc/systemd/system
UDEV_DIR=/etc/udev/rules.d
SYSUSERS_DIR=/etc/sysusers.d
WRAPPER=/usr/local/bin/calypso-validator
DOC_DIR=/usr/local/share/doc/calypso-validator
UDEV_RULES=60-calypso-validator-nfc.rules
APT_PACKAGES="python3 python3-venv python3-dev gcc pkg-config libpcsclite-dev pcscd"

SOURCE=$(cd "$(dirname "$0")/.." && pwd)
DESTDIR=${DESTDIR:-}
PACKAGE=1
APT=1
DEMO=0
ENABLE=0
ACTION=install

usage() {
    sed -n '3,11s/^# \{0,1\}//p' "$0"
    cat <<EOF
Options:
  --destdir DIR   install under DIR (tests, packaging); also \$DESTDIR
  --source DIR    the project to install (default: $SOURCE)
  --no-package    do not create the virtual environment or install the package
  --no-apt        do not apt-get install the system packages ($APT_PACKAGES)
  --demo          install the embedded default configuration (simulation, emulated readers)
  --enable        systemctl enable --now $NAME once installed
  --uninstall     remove what install put in place, except journals, configuration and keys
EOF
}

while [ $# -gt 0 ]; do
    case $1 in
        --destdir) DESTDIR=$2; shift ;;
        --destdir=*) DESTDIR=${1#*=} ;;
        --source) SOURCE=$2; shift ;;
        --source=*) SOURCE=${1#*=} ;;
        --no-package) PACKAGE=0 ;;
        --no-apt) APT=0 ;;
        --demo) DEMO=1 ;;
        --enable) ENABLE=1 ;;
        --uninstall) ACTION=uninstall ;;
        -h|--help) usage; exit 0 ;;
        *) echo "install.sh: unknown option $1" >&2; usage >&2; exit 64 ;;
    esac
    shift
done

DESTDIR=${DESTDIR%/}
say() { echo "install.sh: $*"; }
is_root() { [ "$(id -u)" = 0 ]; }
# systemctl and udevadm act on the running system: only for a real install on a systemd host.
live_system() { [ -z "$DESTDIR" ] && [ -d /run/systemd/system ]; }

if [ -z "$DESTDIR" ] && ! is_root; then
    echo "install.sh: run as root (or give --destdir to stage into a directory)" >&2
    exit 77
fi

# --- uninstall -----------------------------------------------------------------------------

if [ "$ACTION" = uninstall ]; then
    if live_system; then
        systemctl disable --now "$NAME.service" 2>/dev/null || true
    fi
    rm -f "$DESTDIR$UNIT_DIR/$NAME.service" "$DESTDIR$UDEV_DIR/$UDEV_RULES" "$DESTDIR$WRAPPER"
    rm -rf "$DESTDIR$PREFIX" "$DESTDIR$DOC_DIR"
    if live_system; then
        systemctl daemon-reload
        udevadm control --reload-rules 2>/dev/null || true
    fi
    say "removed the program, the unit, the udev rules, the wrapper and the documentation"
    say "kept: $DESTDIR$JOURNAL (journals), $DESTDIR$ETC (configuration and keys),"
    say "      the user $SERVICE_USER and $DESTDIR$SYSUSERS_DIR/$NAME.conf (owner of the journals)"
    exit 0
fi

# --- system packages ----------------------------------------------------------------------

if [ "$APT" = 1 ] && [ -z "$DESTDIR" ] && command -v apt-get >/dev/null 2>&1; then
    missing=""
    for pkg in $APT_PACKAGES; do
        dpkg -s "$pkg" 2>/dev/null | grep -q '^Status: install ok installed' || missing="$missing $pkg"
    done
    if [ -n "$missing" ]; then
        say "apt-get install$missing"
        apt-get update -qq
        # shellcheck disable=SC2086 # one word per package
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing
    fi
fi

# --- user ---------------------------------------------------------------------------------

install -d -m 0755 "$DESTDIR/etc" "$DESTDIR$SYSUSERS_DIR"
install -m 0644 "$SOURCE/deploy/sysusers/$NAME.conf" "$DESTDIR$SYSUSERS_DIR/$NAME.conf"
if command -v systemd-sysusers >/dev/null 2>&1; then
    if [ -n "$DESTDIR" ]; then
        systemd-sysusers --root="$DESTDIR" "$DESTDIR$SYSUSERS_DIR/$NAME.conf"
    else
        systemd-sysusers "$SYSUSERS_DIR/$NAME.conf"
    fi
elif [ -z "$DESTDIR" ]; then
    getent passwd "$SERVICE_USER" >/dev/null || useradd --system --user-group \
        --home-dir "$STATE" --no-create-home --shell /usr/sbin/nologin \
        --comment "Calypso gate validator" "$SERVICE_USER"
else
    say "systemd-sysusers is missing: no user created under $DESTDIR"
fi

# Owners: by name on the live system, by number from the staged /etc/passwd under DESTDIR.
owner() {  # owner USER GROUP -> "uid:gid" or "name:name", empty if unknown or not root
    is_root || return 0
    if [ -z "$DESTDIR" ]; then
        echo "$1:$2"
        return 0
    fi
    uid=0
    gid=0
    [ "$1" = root ] || uid=$(awk -F: -v u="$1" '$1 == u { print $3 }' "$DESTDIR/etc/passwd" 2>/dev/null)
    [ "$2" = root ] || gid=$(awk -F: -v g="$2" '$1 == g { print $3 }' "$DESTDIR/etc/group" 2>/dev/null)
    [ -n "$uid" ] && [ -n "$gid" ] && echo "$uid:$gid"
    return 0
}
ROOT_SERVICE=$(owner root "$SERVICE_USER")
SERVICE_SERVICE=$(owner "$SERVICE_USER" "$SERVICE_USER")
set_owner() {  # set_owner OWNER PATH...
    own=$1; shift
    [ -n "$own" ] && chown "$own" "$@"
    return 0
}

# --- directories --------------------------------------------------------------------------

install -d -m 0750 "$DESTDIR$ETC"
set_owner "$ROOT_SERVICE" "$DESTDIR$ETC"
install -d -m 0750 "$DESTDIR$STATE" "$DESTDIR$JOURNAL"
set_owner "$SERVICE_SERVICE" "$DESTDIR$STATE" "$DESTDIR$JOURNAL"
# An upgrade gives back what a validator run as root left behind (journal files, the lock):
# the service could not append to them and would stop with exit 3. Symlinks are not followed.
if [ -n "$SERVICE_SERVICE" ]; then
    find "$DESTDIR$JOURNAL" -mindepth 1 \( ! -user "${SERVICE_SERVICE%%:*}" -o ! -group "${SERVICE_SERVICE##*:}" \) \
        -exec chown -h "$SERVICE_SERVICE" {} +
fi

# --- configuration (installed once, never overwritten) ---------------------------------------

config_file() {  # config_file SOURCE TARGET-NAME
    target="$DESTDIR$ETC/$2"
    if [ -e "$target" ]; then
        say "kept $ETC/$2"
    else
        install -m 0640 "$1" "$target"
        say "installed $ETC/$2"
    fi
}
if [ "$DEMO" = 1 ]; then
    first=0
    [ -e "$DESTDIR$ETC/validator.yaml" ] || first=1
    config_file "$SOURCE/config/validator.yaml" validator.yaml
    if [ "$first" = 1 ]; then
        sed -i "s#^journal_dir:.*#journal_dir: $JOURNAL#" "$DESTDIR$ETC/validator.yaml"
    fi
    config_file "$SOURCE/config/keys.sim.yaml" keys.sim.yaml
    install -d -m 0750 "$DESTDIR$ETC/cards" "$DESTDIR$ETC/cards/pki" "$DESTDIR$ETC/pki"
    for card in "$SOURCE"/config/cards/*.yaml "$SOURCE"/config/cards/pki/*.yaml; do
        [ -e "$card" ] || continue
        config_file "$card" "${card#"$SOURCE"/config/}"
    done
    # The test PKI's root public key, which the demo settings trust (test material; its
    # private keys stay in the checkout).
    config_file "$SOURCE/config/pki/test_pki_root.yaml" pki/test_pki_root.yaml
else
    config_file "$SOURCE/deploy/config/validator.yaml" validator.yaml
fi
config_file "$SOURCE/config/fares.yaml" fares.yaml

# --- the journal key (DESIGN section 6: generated at install when none exists) ----------------

CONF="$DESTDIR$ETC/validator.yaml"
setting() {  # setting NAME -> the value of a top-level NAME: line of validator.yaml, unquoted
    sed -n "s/^$1:[[:space:]]*//p" "$CONF" | tail -n 1 | sed 's/[[:space:]]*#.*$//; s/^["'"'"']//; s/["'"'"']$//'
}
in_etc() {  # in_etc PATH -> the staged path of a configuration-relative or absolute PATH
    case $1 in
        /*) echo "$DESTDIR$1" ;;
        *) echo "$DESTDIR$ETC/$1" ;;
    esac
}
JOURNAL_KEY=$(setting journal_key_file)
case $JOURNAL_KEY in
    ""|null|"~")
        JOURNAL_KEY=journal.key
        if grep -q '^journal_key_file:' "$CONF"; then
            sed -i "s#^journal_key_file:.*#journal_key_file: $JOURNAL_KEY#" "$CONF"
        else
            printf '\n# HMAC key of the journal chain (hex): generated by install.sh, never shown.\njournal_key_file: %s\n' \
                "$JOURNAL_KEY" >> "$CONF"
        fi
        say "validator.yaml: journal_key_file: $JOURNAL_KEY"
        ;;
esac
JOURNAL_KEY_PATH=$(in_etc "$JOURNAL_KEY")
if [ ! -e "$JOURNAL_KEY_PATH" ]; then
    # 32 random bytes as hex, created 0600 (never readable by anyone else, not even briefly).
    (umask 077 && od -An -tx1 -N32 /dev/urandom | tr -d ' \n' > "$JOURNAL_KEY_PATH" && echo >> "$JOURNAL_KEY_PATH")
    say "generated the journal key $JOURNAL_KEY (32 random bytes)"
fi
SAM_KEYS_PATH=$(in_etc "$(setting keys)")

# --- modes and owners -------------------------------------------------------------------------

# Modes and owners are repaired on every run: root writes, the service reads. Secret files are
# left out here: key files (keys*.yaml, the file named by keys:, the journal key) and any file
# that is already private (mode 0600 or tighter: a key under a name this script cannot know).
# An upgrade never makes a file group-readable that was not, nor gives it to root: the validator
# refuses a production key file that group or others may read (sam/keys.py).
is_key_file() {  # is_key_file PATH
    case $(basename "$1") in keys*.yaml) return 0 ;; esac
    [ "$1" = "$SAM_KEYS_PATH" ] || [ "$1" = "$JOURNAL_KEY_PATH" ]
}
find "$DESTDIR$ETC" -type d -exec chmod 0750 {} +
if [ -n "$ROOT_SERVICE" ]; then
    find "$DESTDIR$ETC" -type d -exec chown "$ROOT_SERVICE" {} +
fi
find "$DESTDIR$ETC" -type f | while IFS= read -r file; do
    is_key_file "$file" && continue
    if [ -z "$(find "$file" -perm -0040)" ] && [ -z "$(find "$file" -perm /0004)" ]; then
        continue  # private (0600 or tighter): left exactly as it is
    fi
    chmod 0640 "$file"
    set_owner "$ROOT_SERVICE" "$file"
done
# Key files: readable by the service only (validator doctor checks it); the public simulation
# keys like the rest of the configuration.
done_keys=" "
for keys in "$DESTDIR$ETC"/keys*.yaml "$SAM_KEYS_PATH" "$JOURNAL_KEY_PATH"; do
    [ -f "$keys" ] || continue
    case $done_keys in *" $keys "*) continue ;; esac
    done_keys="$done_keys$keys "
    if [ "$keys" != "$JOURNAL_KEY_PATH" ] && grep -q '^simulation: *true' "$keys"; then
        chmod 0640 "$keys"
        set_owner "$ROOT_SERVICE" "$keys"
    else
        chmod 0600 "$keys"
        set_owner "$SERVICE_SERVICE" "$keys"
        say "keys: $(basename "$keys") mode 0600, owner $SERVICE_USER"
    fi
done

# --- the program ----------------------------------------------------------------------------

if [ "$PACKAGE" = 1 ]; then
    if [ ! -x "$DESTDIR$PREFIX/bin/python" ]; then
        python3 -m venv "$DESTDIR$PREFIX"
    fi
    "$DESTDIR$PREFIX/bin/python" -m pip install --quiet --upgrade pip
    extras="[pcsc,nfc]"
    pkg-config --exists libpcsclite 2>/dev/null || extras="[nfc]"
    # Dependencies first, then the package itself even when its version did not change.
    "$DESTDIR$PREFIX/bin/python" -m pip install --quiet --upgrade "$SOURCE$extras"
    "$DESTDIR$PREFIX/bin/python" -m pip install --quiet --force-reinstall --no-deps "$SOURCE"
    say "installed the package in $PREFIX ($extras)"
else
    say "skipped the package (--no-package)"
fi
install -d -m 0755 "$DESTDIR$(dirname "$WRAPPER")"
cat > "$DESTDIR$WRAPPER" <<EOF
#!/bin/sh
# The validator command with this host's configuration (installed by deploy/install.sh).
CALYPSO_VALIDATOR_CONFIG=\${CALYPSO_VALIDATOR_CONFIG:-$ETC}
export CALYPSO_VALIDATOR_CONFIG
exec $PREFIX/bin/validator "\$@"
EOF
chmod 0755 "$DESTDIR$WRAPPER"
install -d -m 0755 "$DESTDIR$DOC_DIR"
install -m 0644 "$SOURCE/docs/operations.md" "$DESTDIR$DOC_DIR/operations.md"
install -m 0644 "$SOURCE/docs/sam.md" "$DESTDIR$DOC_DIR/sam.md"

# --- unit and udev rules ---------------------------------------------------------------------

install -d -m 0755 "$DESTDIR$UNIT_DIR" "$DESTDIR$UDEV_DIR"
install -m 0644 "$SOURCE/deploy/systemd/$NAME.service" "$DESTDIR$UNIT_DIR/$NAME.service"
install -m 0644 "$SOURCE/deploy/udev/$UDEV_RULES" "$DESTDIR$UDEV_DIR/$UDEV_RULES"
if live_system; then
    systemctl daemon-reload
    udevadm control --reload-rules 2>/dev/null || true
    udevadm trigger --subsystem-match=usb 2>/dev/null || true
    if [ "$ENABLE" = 1 ]; then
        systemctl enable --now pcscd.socket 2>/dev/null || true
        systemctl enable "$NAME.service"
        systemctl restart "$NAME.service"
        say "enabled and (re)started $NAME"
    elif systemctl is-active --quiet "$NAME.service"; then
        systemctl restart "$NAME.service"
        say "restarted $NAME (upgrade)"
    fi
fi
say "done. Check the host: sudo calypso-validator doctor"
[ "$ENABLE" = 1 ] || say "start at boot: sudo systemctl enable --now $NAME"
