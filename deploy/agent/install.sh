#!/usr/bin/env bash
# Installs the payorch on-site agent as a systemd service, in one command (docs/runbooks/agent.md):
#
#   sudo ./install.sh --connector wss://connector.example.com/agent --token pen_…
#
# creates the system user payorch-agent, installs the executable to /opt/payorch-agent (plus
# node_modules/ for serial support when it lies beside the executable), writes
# /etc/payorch-agent/agent.json, installs and enables payorch-agent.service, enrolls with the
# one-time token, and starts the service. Idempotent: run it again to upgrade the executable or to
# change connectors (the old config is kept as agent.json.bak). Options:
#
#   --binary PATH       the executable (default: ./payorch-agent beside this script)
#   --connector URL     wss://<host>[:<port>]/agent; repeat for fallbacks (writes agent.json)
#   --config FILE       install this agent.json instead of writing one
#   --token TOKEN       one-time enrollment token (POST /v1/agents): enroll before starting
#   --prefix DIR        install below DIR and touch nothing else: no user, no chown, no
#                       systemctl, no enrollment (each skipped step is printed); for packaging/tests
#   --uninstall         stop and remove the service and the executable; keeps config and state
#   --purge             with --uninstall: also remove /etc/payorch-agent, /var/lib/payorch-agent
#                       (the credential) and the user
set -euo pipefail

NAME=payorch-agent
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BINARY="$SCRIPT_DIR/$NAME"
CONFIG_SOURCE=""
TOKEN=""
PREFIX=""
UNINSTALL=0
PURGE=0
CONNECTORS=()

usage() { sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'; }
die() {
  echo "install.sh: $*" >&2
  exit 2
}

while [ $# -gt 0 ]; do
  case "$1" in
    --binary) BINARY=${2:?--binary needs a path}; shift 2 ;;
    --connector) CONNECTORS+=("${2:?--connector needs a URL}"); shift 2 ;;
    --config) CONFIG_SOURCE=${2:?--config needs a file}; shift 2 ;;
    --token) TOKEN=${2:?--token needs the enrollment token}; shift 2 ;;
    --prefix) PREFIX=${2:?--prefix needs a directory}; shift 2 ;;
    --uninstall) UNINSTALL=1; shift ;;
    --purge) PURGE=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) die "unknown option $1 (--help lists them)" ;;
  esac
done

OPT_DIR=/opt/$NAME
EXE=$OPT_DIR/$NAME
LINK=/usr/local/bin/$NAME
CONF_DIR=/etc/$NAME
CONF=$CONF_DIR/agent.json
STATE_DIR=/var/lib/$NAME
UNIT=/etc/systemd/system/$NAME.service

if [ -n "$PREFIX" ]; then
  mkdir -p "$PREFIX"
  PREFIX=$(cd "$PREFIX" && pwd)
elif [ "$(id -u)" != 0 ]; then
  die "run as root (sudo), or use --prefix DIR to install below DIR"
fi

say() { echo "install.sh: $*"; }
# Runs a system-wide step, or prints it when installing below a prefix.
system() {
  if [ -n "$PREFIX" ]; then
    say "skipped (--prefix): $*"
  else
    "$@"
  fi
}

if [ "$UNINSTALL" = 1 ]; then
  if [ -z "$PREFIX" ] && command -v systemctl > /dev/null; then
    systemctl disable --now "$NAME.service" 2> /dev/null || true
  else
    say "skipped (--prefix): systemctl disable --now $NAME.service"
  fi
  rm -f "$PREFIX$UNIT" "$PREFIX$LINK"
  rm -rf "$PREFIX$OPT_DIR"
  if [ -z "$PREFIX" ] && command -v systemctl > /dev/null; then systemctl daemon-reload || true; fi
  say "removed the service, $EXE and $LINK"
  if [ "$PURGE" = 1 ]; then
    rm -rf "$PREFIX$CONF_DIR" "$PREFIX$STATE_DIR"
    if getent passwd "$NAME" > /dev/null 2>&1 || [ -n "$PREFIX" ]; then system userdel "$NAME"; fi
    say "purged $CONF_DIR, $STATE_DIR (credential) and the user $NAME"
  else
    say "kept $CONF_DIR and $STATE_DIR (the credential); --uninstall --purge removes them"
  fi
  exit 0
fi

[ -f "$BINARY" ] || die "no executable at $BINARY (build it: npm run build:agent-sea; or pass --binary PATH)"
# The agent checks the URL fully; this only keeps the JSON we write well-formed.
url_form='^wss?://[][A-Za-z0-9.:_/-]+/agent$'
for url in "${CONNECTORS[@]}"; do
  [[ "$url" =~ $url_form ]] ||
    die "connector URL \"$url\" is not accepted: write it as wss://<host>[:<port>]/agent, e.g. wss://connector.example.com/agent"
done

# 1. The service user (no login, no home of its own; the state directory is its home).
if [ -n "$PREFIX" ] || ! getent passwd "$NAME" > /dev/null 2>&1; then
  system useradd --system --user-group --home-dir "$STATE_DIR" --no-create-home --shell /usr/sbin/nologin "$NAME"
fi

# 2. The executable, and serial support beside it when shipped (node_modules/serialport).
install -d -m 0755 "$PREFIX$OPT_DIR" "$(dirname "$PREFIX$LINK")"
install -m 0755 "$BINARY" "$PREFIX$EXE.new"
mv -f "$PREFIX$EXE.new" "$PREFIX$EXE"
if [ -d "$(dirname "$BINARY")/node_modules/serialport" ]; then
  rm -rf "$PREFIX$OPT_DIR/node_modules"
  cp -R "$(dirname "$BINARY")/node_modules" "$PREFIX$OPT_DIR/node_modules"
  say "serial support installed ($OPT_DIR/node_modules)"
fi
ln -sfn "$EXE" "$PREFIX$LINK"
say "installed $EXE ($("$PREFIX$EXE" --version 2> /dev/null || echo 'version unknown'))"

# 3. Configuration: root-owned, readable by the service group only.
install -d -m 0750 "$PREFIX$CONF_DIR"
system chgrp "$NAME" "$PREFIX$CONF_DIR"
new_config=""
if [ -n "$CONFIG_SOURCE" ]; then
  new_config=$(cat "$CONFIG_SOURCE")
elif [ ${#CONNECTORS[@]} -gt 0 ]; then
  list=$(printf '"%s", ' "${CONNECTORS[@]}")
  new_config=$(printf '{\n  "connectors": [%s],\n  "stateDir": "%s",\n  "logLevel": "info"\n}' "${list%, }" "$STATE_DIR")
elif [ ! -f "$PREFIX$CONF" ]; then
  die "no configuration yet: pass --connector wss://<host>/agent (or --config agent.json)"
fi
if [ -n "$new_config" ]; then
  if [ -f "$PREFIX$CONF" ] && [ "$(cat "$PREFIX$CONF")" = "$new_config" ]; then
    say "config $CONF unchanged"
  else
    [ -f "$PREFIX$CONF" ] && cp -p "$PREFIX$CONF" "$PREFIX$CONF.bak" && say "previous config kept as $CONF.bak"
    printf '%s\n' "$new_config" > "$PREFIX$CONF.new"
    chmod 0640 "$PREFIX$CONF.new"
    mv -f "$PREFIX$CONF.new" "$PREFIX$CONF"
    say "wrote $CONF"
  fi
  system chgrp "$NAME" "$PREFIX$CONF"
fi

# 4. State directory (credential): the service user's only writable place.
install -d -m 0700 "$PREFIX$STATE_DIR"
system chown "$NAME:$NAME" "$PREFIX$STATE_DIR"

# 5. The systemd unit.
install -d -m 0755 "$(dirname "$PREFIX$UNIT")"
install -m 0644 "$SCRIPT_DIR/$NAME.service" "$PREFIX$UNIT"
say "installed $UNIT"

# 6. Enrollment (once; the token is dead afterwards).
if [ -n "$TOKEN" ]; then
  if [ -n "$PREFIX" ]; then
    say "skipped (--prefix): runuser -u $NAME -- $EXE --config $CONF enroll --token …"
  else
    runuser -u "$NAME" -- "$EXE" --config "$CONF" enroll --token "$TOKEN"
  fi
fi

# 7. Enable and (re)start: an upgrade restarts the running agent on the new executable.
system systemctl daemon-reload
system systemctl enable "$NAME.service"
system systemctl restart "$NAME.service"
say "done. Check it: sudo -u $NAME $NAME --config $CONF doctor"
