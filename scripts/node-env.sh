# Sourced by bin/ scripts: sets STRATUS_NODE to a Node.js >= 24 and installs the
# project's npm dependencies when they are missing or older than the lock file.
# The machines ship an older Node; Node 24 comes from the npm registry's `node` package.
# The sourcing script sets $here to the checkout; without it, npm ci below
# would run (and replace node_modules) in whatever directory this is.
: "${here:?scripts/node-env.sh is sourced by bin/ scripts, which set \$here to the checkout}"
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
# Every Node process started from here loads scripts/stripped-ts-cache.mjs
# first: our .ts modules come type-stripped from this cache, so a warm start
# neither loads the type stripper (its wasm stays at ~12 MiB) nor keeps V8
# code caches in memory as NODE_COMPILE_CACHE would (~6 MiB). Without a home
# directory the cache stays off (the stripper runs) rather than sit in /tmp.
if [ -n "${STRATUS_TS_CACHE:-}${XDG_CACHE_HOME:-}${HOME:-}" ]; then
  export STRATUS_TS_CACHE=${STRATUS_TS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/stratus/stripped-ts}
fi
case " ${NODE_OPTIONS:-} " in
  *stripped-ts-cache.mjs*) ;;
  *)
    # --import takes a URL: a checkout path with spaces, '#', '%' or quotes must be encoded.
    hook_url=$("$STRATUS_NODE" -p 'require("node:url").pathToFileURL(process.argv[1]).href' "$here/scripts/stripped-ts-cache.mjs")
    export NODE_OPTIONS="--import=$hook_url ${NODE_OPTIONS:-}" ;;
esac
# Allocations of 8 KiB and more (V8's compiler zones, argon2id's 19 MiB) are
# mmapped and go back to the system when freed, instead of fragmenting malloc's
# heap; with two arenas, threads do not each keep their own. Measured in
# docs/performance.md.
export MALLOC_MMAP_THRESHOLD_=${MALLOC_MMAP_THRESHOLD_:-8192}
export MALLOC_ARENA_MAX=${MALLOC_ARENA_MAX:-2}
