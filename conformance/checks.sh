# Sourced (bash) by the flow suites (cli.sh, object-cli.sh, baremetal-*.sh): named checks that keep going after a
# failure, each printing `ok - NAME` or `not ok - NAME` (with the command's output as `#` lines),
# and skips (`ok - NAME # SKIP reason`, counted apart). `checks_summary` prints the last line,
# `N passed, N failed` (and `, N skipped` when something skipped), and returns 1 if a check failed.
passed=0 failed=0 skipped=0
OUT=
declare -A passed_check=()

# A check that took 2 s or more says how long after its name (`ok - NAME # 12.3 s`): where a suite's time goes.
_check_t0=
_took() {
  [ -n "$_check_t0" ] || return 0
  local us=$(( ${EPOCHREALTIME/./} - ${_check_t0/./} ))
  [ "$us" -ge 2000000 ] && printf ' # %d.%d s' $((us / 1000000)) $((us / 100000 % 10))
  return 0
}
ok() { local took; took=$(_took); _check_t0=; passed=$((passed + 1)); passed_check[$1]=1; echo "ok - $1$took"; }
not_ok() {
  local took; took=$(_took); _check_t0=
  failed=$((failed + 1)); echo "not ok - $1$took"
  [ -n "${2:-}" ] && printf '%s\n' "$2" | head -n 15 | sed 's/^/#   /'
  return 0
}
# check NAME CMD... : passes when CMD exits 0. Its output (stdout+stderr) is left in OUT.
check() {
  local name=$1; shift
  _check_t0=$EPOCHREALTIME
  if OUT=$("$@" 2>&1); then ok "$name"; else not_ok "$name" "$ $*"$'\n'"$OUT"; fi
}
# check_has NAME TEXT... -- CMD... : CMD exits 0 and its output contains every TEXT (fixed strings).
check_has() {
  local name=$1 texts=() t missing=; shift
  _check_t0=$EPOCHREALTIME
  while [ "$1" != -- ]; do texts+=("$1"); shift; done; shift
  if ! OUT=$("$@" 2>&1); then not_ok "$name" "$ $*"$'\n'"$OUT"; return; fi
  for t in "${texts[@]}"; do grep -qF -- "$t" <<<"$OUT" || missing+=" '$t'"; done
  if [ -z "$missing" ]; then ok "$name"; else not_ok "$name" "output lacks$missing:"$'\n'"$OUT"; fi
}
# check_lacks NAME TEXT -- CMD... : CMD exits 0 and its output does not contain TEXT.
check_lacks() {
  local name=$1 text=$2; shift 3
  _check_t0=$EPOCHREALTIME
  if ! OUT=$("$@" 2>&1); then not_ok "$name" "$ $*"$'\n'"$OUT"; return; fi
  if grep -qF -- "$text" <<<"$OUT"; then not_ok "$name" "output still has '$text':"$'\n'"$OUT"; else ok "$name"; fi
}
# check_fails NAME CMD... : passes when CMD exits non-zero.
check_fails() {
  local name=$1; shift
  _check_t0=$EPOCHREALTIME
  if OUT=$("$@" 2>&1); then not_ok "$name" "expected a failure, got success:"$'\n'"$OUT"; else ok "$name"; fi
}
# check_fails_after PRE NAME CMD... : as check_fails, but a failure means something only
# once the check named PRE passed (the thing exists, the credential worked): otherwise not ok.
check_fails_after() {
  local pre=$1 name=$2; shift 2
  if [ -z "${passed_check[$pre]:-}" ]; then not_ok "$name" "cannot tell: '$pre' did not pass"; return; fi
  check_fails "$name" "$@"
}

# wait_for SECONDS TEXT CMD...: CMD's output has TEXT within SECONDS (tried every
# WAIT_FOR_INTERVAL seconds, 1 unless set); else prints what it last said and returns 1.
wait_for() {
  local limit=$1 text=$2 deadline; shift 2
  deadline=$((SECONDS + limit))
  while [ "$SECONDS" -lt "$deadline" ]; do
    OUT=$("$@" 2>&1) && grep -qF -- "$text" <<<"$OUT" && return 0
    sleep "${WAIT_FOR_INTERVAL:-1}"
  done
  echo "after $limit s the output still lacks '$text':"; echo "$OUT"
  return 1
}

# skip NAME REASON : the check cannot run yet (its piece of the cloud is not there); counted apart.
skip() { skipped=$((skipped + 1)); echo "ok - $1 # SKIP $2"; }
checks_summary() {
  if [ "$skipped" -gt 0 ]; then echo "$passed passed, $failed failed, $skipped skipped"; else echo "$passed passed, $failed failed"; fi
  [ "$failed" = 0 ]
}
