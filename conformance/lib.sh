# Sourced by the conformance suites (cli.sh, tempest.sh): starts an all-in-one
# Stratus cloud for them and removes it when the suite exits.
#
#   . "$(dirname "$(readlink -f "$0")")/lib.sh"
#   cloud_start          # sets the CLOUD_* variables below, or exits 2
#   at_exit 'some cleanup command'   # runs on exit, before the cloud is stopped
#
# After cloud_start:
#   CLOUD_DIR            the cloud's data dir (temp; removed on exit)
#   CLOUD_PORT           its port on 127.0.0.1
#   CLOUD_URL            http://127.0.0.1:PORT
#   CLOUD_LOG            the server's output: its banner and JSON log (`up --log-file -`), and the agent's
#   OS_CLOUDS_FILE       CLOUD_DIR/clouds.yaml (a cloud named "stratus": the admin)
#   CLOUD_AUTH_URL, CLOUD_REGION, ADMIN_USER, ADMIN_PROJECT, ADMIN_USER_DOMAIN,
#   ADMIN_PROJECT_DOMAIN, ADMIN_PASSWORD   read from clouds.yaml / admin-password
#
# A cloud another script started and stops (bin/test's one cloud for every Tempest service) is used instead of
# a new one when STRATUS_CONFORMANCE_CLOUD_DIR and STRATUS_CONFORMANCE_CLOUD_URL name it (its data dir and URL;
# STRATUS_CONFORMANCE_CLOUD_LOG its log): `cloud_share` exports those for a started cloud's users.
# OpenStack's Python tools come from Debian's packages: run them with
# PATH=$DEBIAN_PATH (another python3 earlier on PATH may lack the python3-* modules).
# STRATUS_BIN overrides the command that runs `stratus` (default: bin/stratus).
# The cloud is stopped by its PID (SIGTERM, then SIGKILL after 15 s), never by name.

STRATUS_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DEBIAN_PATH=/usr/sbin:/usr/bin:/sbin:/bin
CLOUD_START_TIMEOUT=${CLOUD_START_TIMEOUT:-60}

# Settings from the caller's environment must not leak into the suites.
unset $(compgen -e | grep '^OS_') 2>/dev/null || true

_at_exit_cmds=()
at_exit() { _at_exit_cmds+=("$1"); }
_run_at_exit() {
  local status=$? i
  _exit_status=$status
  for ((i = ${#_at_exit_cmds[@]} - 1; i >= 0; i--)); do eval "${_at_exit_cmds[i]}" || true; done
  exit "$status"
}
trap _run_at_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Debian's python, for the small helpers below and for the suites.
dpython() { PATH=$DEBIAN_PATH /usr/bin/python3 "$@"; }

free_port() {
  dpython -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# clouds_field FILE CLOUD KEY.PATH : prints clouds[CLOUD].KEY.PATH from a clouds.yaml
clouds_field() {
  dpython - "$@" <<'EOF'
import sys, yaml
path, cloud, key = sys.argv[1:4]
node = yaml.safe_load(open(path))["clouds"][cloud]
for part in key.split("."):
    node = node.get(part) if isinstance(node, dict) else None
print("" if node is None else node)
EOF
}

# Deletes every server the suites left behind (through the API, so the agent
# removes containers, cgroups and namespaces): stopping `stratus up` keeps
# servers running by design, and the data dir is about to go.
_cloud_delete_servers() {
  [ -s "${OS_CLOUDS_FILE:-}" ] || return 0
  local ids
  ids=$(env PATH="$DEBIAN_PATH" OS_CLIENT_CONFIG_FILE="$OS_CLOUDS_FILE" timeout 60 \
    openstack --os-cloud stratus server list --all-projects -f value -c ID 2>/dev/null) || return 0
  [ -n "$ids" ] || return 0
  echo "conformance: deleting $(wc -w <<<"$ids") server(s) left behind" >&2
  # shellcheck disable=SC2086
  env PATH="$DEBIAN_PATH" OS_CLIENT_CONFIG_FILE="$OS_CLOUDS_FILE" timeout 180 \
    openstack --os-cloud stratus server delete --wait $ids >/dev/null 2>&1 ||
    echo "conformance: some servers could not be deleted" >&2
}

# The agent's network data plane outlives it by design (a DHCP server keeps
# serving), and the networks of `up`'s first start (public, private, router1)
# and of the suites are still there when the cloud stops: what this cloud's
# agent made goes with it, found from the agent's state (its DHCP servers',
# haproxies' and routers' radvd pid files, its routers' and DHCP namespaces, its networks'
# bridges and VXLAN devices; a mapped host bridge such as br-ex stays).
_cloud_drop_network_plane() {
  local root=${CLOUD_DIR:-}/agent/network d f id pid dev
  [ -d "$root" ] || return 0
  for d in "$root"/dhcp/*/; do
    [ -d "$d" ] || continue
    for f in "$d"pid "$d"haproxy.pid; do
      pid=$(cat "$f" 2>/dev/null) || continue
      # only a process still running this network's own files
      if [[ "$pid" =~ ^[0-9]+$ ]] && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$d"; then kill -TERM "$pid" 2>/dev/null; fi
    done
    id=$(basename "$d")
    ip netns del "qdhcp-$id" 2>/dev/null
  done
  # routers' radvd (router advertisements), by their pid files likewise
  for d in "$root"/radvd/*/; do
    [ -d "$d" ] || continue
    pid=$(cat "$d"pid 2>/dev/null) || continue
    if [[ "$pid" =~ ^[0-9]+$ ]] && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$d"; then kill -TERM "$pid" 2>/dev/null; fi
  done
  for f in "$root"/routers/*.json; do
    [ -f "$f" ] && ip netns del "qrouter-$(basename "$f" .json)" 2>/dev/null
  done
  for f in "$root"/networks/*.json; do
    [ -f "$f" ] || continue
    # owned bridges (brq...) and VXLAN devices; a mapped host bridge is the host's
    for dev in $(python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); print(" ".join(x for x in [s.get("vxlan"), s.get("bridge") if s.get("owned", True) else None] if x))' "$f" 2>/dev/null); do
      ip link del "$dev" 2>/dev/null
    done
    id=$(basename "$f" .json)
    ip link del "brq${id:0:11}" 2>/dev/null
  done
  return 0
}

# VMs whose delete did not finish (a dead cloud) would keep running: their
# qemu by the pid file in the agent's VM state, when it still runs that VM.
_cloud_stop_vms() {
  local d pid
  for d in "${CLOUD_DIR:-}"/agent/vm/servers/*/; do
    [ -d "$d" ] || continue
    pid=$(cat "$d"qemu.pid 2>/dev/null) || continue
    if [[ "$pid" =~ ^[0-9]+$ ]] && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$d"; then kill -KILL "$pid" 2>/dev/null; fi
  done
  return 0
}

_cloud_stop() {
  local status=${_exit_status:-0}
  if [ -n "${CLOUD_PID:-}" ] && kill -0 "$CLOUD_PID" 2>/dev/null; then
    _cloud_delete_servers
    kill -TERM "$CLOUD_PID" 2>/dev/null
    local i
    for ((i = 0; i < 150; i++)); do kill -0 "$CLOUD_PID" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$CLOUD_PID" 2>/dev/null; then
      echo "conformance: the cloud (pid $CLOUD_PID) ignored SIGTERM for 15 s; killing it" >&2
      kill -KILL "$CLOUD_PID" 2>/dev/null
    fi
    wait "$CLOUD_PID" 2>/dev/null
  fi
  if [ "$status" != 0 ] && [ -f "${CLOUD_LOG:-}" ]; then
    echo "conformance: last lines of the cloud's log ($CLOUD_LOG):" >&2
    tail -n 40 "$CLOUD_LOG" | sed 's/^/  | /' >&2
  fi
  if [ -n "${STRATUS_CONFORMANCE_LOGS:-}" ] && [ -f "${CLOUD_LOG:-}" ]; then
    mkdir -p "$STRATUS_CONFORMANCE_LOGS" && cp "$CLOUD_LOG" "$STRATUS_CONFORMANCE_LOGS/stratus-$(basename "$0" .sh).log"
  fi
  # The agent's nft tables (its network data plane) outlive it by design; a
  # cloud that made them takes them along (tables that were there before it
  # belong to another Stratus on this machine).
  _cloud_stop_vms
  _cloud_drop_network_plane
  local fam
  for fam in bridge inet; do
    if [[ "${_cloud_nft_before:-}" != *" $fam "* ]]; then nft delete table "$fam" stratus 2>/dev/null || true; fi
  done
  if [ -n "${_cloud_tmp:-}" ]; then
    # The agent's disk pool (a loop-mounted btrfs file) outlives the agent, as
    # its containers do; this cloud is gone, so its mounts go too (deepest first).
    local m
    findmnt -rn -o TARGET | grep -F "$_cloud_tmp/" | sort -r | while read -r m; do
      umount "$m" 2>/dev/null || umount -l "$m"
    done
    rm -rf "$_cloud_tmp"
  fi
  return 0
}

cloud_start() {
  if [ -n "${STRATUS_CONFORMANCE_CLOUD_DIR:-}" ] && [ -n "${STRATUS_CONFORMANCE_CLOUD_URL:-}" ]; then
    _cloud_use_shared
    return
  fi
  _cloud_tmp=$(mktemp -d "${TMPDIR:-/tmp}/stratus-conformance.XXXXXX") || { echo "conformance: mktemp failed" >&2; exit 2; }
  _cloud_nft_before=" $(nft list tables 2>/dev/null | awk '$3 == "stratus" {print $2}' | tr '\n' ' ')"
  at_exit _cloud_stop
  CLOUD_DIR=$_cloud_tmp/data
  CLOUD_LOG=$_cloud_tmp/stratus.log
  CLOUD_PORT=$(free_port) || { echo "conformance: no free port" >&2; exit 2; }
  CLOUD_URL=http://127.0.0.1:$CLOUD_PORT
  OS_CLOUDS_FILE=$CLOUD_DIR/clouds.yaml

  # STRATUS_UP_ARGS: extra flags for `stratus up` (word-split), e.g. the security settings Tempest is told about.
  # shellcheck disable=SC2086
  "${STRATUS_BIN:-$STRATUS_ROOT/bin/stratus}" up --data-dir "$CLOUD_DIR" --port "$CLOUD_PORT" --log-file - ${STRATUS_UP_ARGS:-} </dev/null >"$CLOUD_LOG" 2>&1 &
  CLOUD_PID=$!

  local deadline=$((SECONDS + CLOUD_START_TIMEOUT))
  until [ "$(curl -s -o /dev/null -m 2 -w '%{http_code}' "$CLOUD_URL/healthz" 2>/dev/null)" = 200 ] && [ -s "$OS_CLOUDS_FILE" ]; do
    if ! kill -0 "$CLOUD_PID" 2>/dev/null; then
      wait "$CLOUD_PID"; echo "conformance: 'stratus up' exited with status $? before answering /healthz" >&2
      exit 2
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "conformance: $CLOUD_URL/healthz did not answer 200 (with $OS_CLOUDS_FILE written) within ${CLOUD_START_TIMEOUT}s" >&2
      exit 2
    fi
    sleep 0.2
  done

  _cloud_read_admin
  echo "conformance: stratus up (pid $CLOUD_PID) answers at $CLOUD_URL; identity at $CLOUD_AUTH_URL" >&2
}

# The admin's settings from the cloud's clouds.yaml and admin-password.
_cloud_read_admin() {
  CLOUD_AUTH_URL=$(clouds_field "$OS_CLOUDS_FILE" stratus auth.auth_url)
  CLOUD_REGION=$(clouds_field "$OS_CLOUDS_FILE" stratus region_name)
  ADMIN_USER=$(clouds_field "$OS_CLOUDS_FILE" stratus auth.username)
  ADMIN_PROJECT=$(clouds_field "$OS_CLOUDS_FILE" stratus auth.project_name)
  ADMIN_USER_DOMAIN=$(clouds_field "$OS_CLOUDS_FILE" stratus auth.user_domain_name)
  ADMIN_PROJECT_DOMAIN=$(clouds_field "$OS_CLOUDS_FILE" stratus auth.project_domain_name)
  if [ -s "$CLOUD_DIR/admin-password" ]; then
    ADMIN_PASSWORD=$(head -n 1 "$CLOUD_DIR/admin-password")
  else
    ADMIN_PASSWORD=$(clouds_field "$OS_CLOUDS_FILE" stratus auth.password)
  fi
  : "${CLOUD_AUTH_URL:=$CLOUD_URL/identity/v3}" "${CLOUD_REGION:=RegionOne}" "${ADMIN_USER:=admin}" "${ADMIN_PROJECT:=admin}"
  : "${ADMIN_USER_DOMAIN:=Default}" "${ADMIN_PROJECT_DOMAIN:=Default}"
}

# A started cloud's users (cloud_share's variables): the cloud is theirs to use, not to stop; a temp dir of
# their own ($_cloud_tmp) goes when they exit.
_cloud_use_shared() {
  CLOUD_DIR=$STRATUS_CONFORMANCE_CLOUD_DIR CLOUD_URL=$STRATUS_CONFORMANCE_CLOUD_URL
  CLOUD_PORT=${CLOUD_URL##*:} CLOUD_LOG=${STRATUS_CONFORMANCE_CLOUD_LOG:-} OS_CLOUDS_FILE=$CLOUD_DIR/clouds.yaml
  [ "$(curl -s -o /dev/null -m 10 -w '%{http_code}' "$CLOUD_URL/healthz" 2>/dev/null)" = 200 ] && [ -s "$OS_CLOUDS_FILE" ] ||
    { echo "conformance: the shared cloud at $CLOUD_URL ($CLOUD_DIR) does not answer /healthz" >&2; exit 2; }
  _cloud_tmp=$(mktemp -d "${TMPDIR:-/tmp}/stratus-conformance.XXXXXX") || { echo "conformance: mktemp failed" >&2; exit 2; }
  at_exit 'rm -rf "$_cloud_tmp"'
  _cloud_read_admin
  echo "conformance: using the cloud at $CLOUD_URL ($CLOUD_DIR); identity at $CLOUD_AUTH_URL" >&2
}

# tempest_cloud_start: cloud_start with the security-compliance settings tempest.conf announces ([identity]
# user_lockout_* and user_unique_last_password_count), as devstack's gate does: tempest.sh's cloud, and bin/test's
# one cloud for every Tempest service.
tempest_cloud_start() {
  export STRATUS_UP_ARGS="--lockout-attempts 2 --lockout-duration 5 --unique-last-password-count 2 ${STRATUS_UP_ARGS:-}"
  cloud_start
}

# cloud_share: after cloud_start, exports what makes the conformance scripts this shell then runs use this cloud.
cloud_share() {
  export STRATUS_CONFORMANCE_CLOUD_DIR=$CLOUD_DIR STRATUS_CONFORMANCE_CLOUD_URL=$CLOUD_URL STRATUS_CONFORMANCE_CLOUD_LOG=$CLOUD_LOG
}
