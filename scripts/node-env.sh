# Sourced by bin/ scripts: sets STRATUS_NODE to a Node.js >= 24 and installs the
# project's npm dependencies when they are missing or older than the lock file.
# The machines ship an older Node; Node 24 comes from the npm registry's `node` package.
node_dir=${STRATUS_NODE_DIR:-/opt/stratus/node}
node_major() { "$1" -e 'process.stdout.write(process.versions.node.split(".")[0])' 2>/dev/null || echo 0; }
STRATUS_NODE=
for candidate in "$(command -v node || true)" "$node_dir/node_modules/.bin/node"; do
  if [ -n "$candidate" ] && [ -x "$candidate" ] && [ "$(node_major "$candidate")" -ge 24 ]; then
    STRATUS_NODE=$candidate; break
  fi
done
if [ -z "$STRATUS_NODE" ]; then
  if ! command -v npm >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >&2
  fi
  echo "stratus: installing Node.js 24 into $node_dir" >&2
  mkdir -p "$node_dir"
  npm install --prefix "$node_dir" --no-save --no-audit --no-fund node@24 >&2
  STRATUS_NODE="$node_dir/node_modules/.bin/node"
fi
node_bin_dir=$(dirname "$(readlink -f "$STRATUS_NODE")")
export PATH="$node_bin_dir:$PATH"
if [ ! -f "$here/node_modules/.package-lock.json" ] || [ "$here/package-lock.json" -nt "$here/node_modules/.package-lock.json" ]; then
  (cd "$here" && npm ci --no-audit --no-fund >&2)
fi
export STRATUS_NODE
# Large short-lived allocations (argon2id's 19 MiB per password hash) go back to
# the system at once instead of staying in malloc's arenas.
export MALLOC_MMAP_THRESHOLD_=${MALLOC_MMAP_THRESHOLD_:-131072}
export MALLOC_ARENA_MAX=${MALLOC_ARENA_MAX:-2}
