# Sourced: ensure_debian_packages PKG... installs the Debian packages that are
# not installed yet (one apt-get update, then install), as root. Returns
# non-zero when it could not.
ensure_debian_packages() {
  local missing=() p
  for p in "$@"; do
    [[ " ${missing[*]} " == *" $p "* ]] && continue
    [ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null)" = installed ] || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" != 0 ]; then
    echo "stratus: not root, cannot install ${missing[*]}" >&2
    return 1
  fi
  echo "stratus: installing ${missing[*]}" >&2
  { DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=600 "${missing[@]}"; } </dev/null >&2
}

# What a host running an agent needs: the container runtime, netns/veth tools,
# the default image's busybox, and nsenter/mount (util-linux).
STRATUS_HOST_PACKAGES="runc iproute2 busybox-static util-linux attr"
