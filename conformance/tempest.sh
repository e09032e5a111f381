#!/usr/bin/env bash
# Tempest (Debian's tempest 33) against an all-in-one Stratus cloud (lib.sh).
#
#   conformance/tempest.sh --services identity[,compute,compute-vm,image,network,volume,object,placement]
#                          [--expected FILE] [--extra-conf FILE] [--concurrency N] [--regex REGEX | --include-list FILE]
#                          [--from-subunit STREAM]
#
# Writes tempest.conf from conformance/tempest/tempest.conf.template plus
# tempest-conf.d/<service>.conf for each service named, then FILE from
# --extra-conf merged over it (e.g. [compute] flavor_ref / image_ref); runs
# `tempest run --regex '^tempest\.api\.(<services>)\.'` in a workspace of its own
# (registry and workspace under $STRATUS_TEMPEST_DIR, default .tempest/ in the
# repo); keeps the subunit stream there; then reads it against the list of tests
# expected to fail (--expected, default conformance/expected/<first service>.txt;
# format and rules in tempest_results.py), writes failing.txt (failures the list
# does not name), expected-failures.txt, now-passing.txt, skipped.txt and
# failure-details.txt beside it, and ends with one line
# `N passed, N failed, N skipped, N expected failures`.
# --from-subunit reads an existing stream instead of starting a cloud and running Tempest.
# --include-list FILE: the tests to run, a regex a line (Tempest's --include-list), instead of --regex.
#
# compute-vm: compute with the small VM image (stratus-tiny) and [validation] run_validation = true:
# Tempest logs into its guests over SSH through floating IPs on the public network (tempest-conf.d/
# compute_vm.conf); image, network and volume are on with it (volume attachments, the scenario tests),
# its servers on a network of their own (tempest-vm-servers), so it runs beside a compute run on one cloud.
#
# Exit status: 0 when every failure is listed, 1 when a test failed that the
# list does not name or no test ran, 2 when the cloud did not start or the list
# is malformed. A listed test that passed is reported (remove it from the list)
# and does not fail the run. Counting is Tempest's: a class whose setUpClass
# fails is one failed id (listed as <class id>.setUpClass).
set -uo pipefail
. "$(dirname "$(readlink -f "$0")")/lib.sh"

services=identity expected='' extra_conf='' concurrency=2 regex='' from_subunit='' include_list=''
usage() { sed -n '4,6p' "$0" | sed 's/^# *//' >&2; exit 2; }
while [ $# -gt 0 ]; do
  case $1 in
    --services) services=${2:?}; shift 2 ;;
    --expected) expected=$(readlink -f "${2:?}"); shift 2 ;;
    --from-subunit) from_subunit=$(readlink -f "${2:?}"); shift 2 ;;
    --extra-conf) extra_conf=$(readlink -f "${2:?}"); shift 2 ;;
    --concurrency) concurrency=${2:?}; shift 2 ;;
    --regex) regex=${2:?}; shift 2 ;;
    --include-list) include_list=$(readlink -f "${2:?}"); shift 2 ;;
    *) usage ;;
  esac
done
[ -z "$extra_conf" ] || [ -f "$extra_conf" ] || { echo "tempest.sh: no such file: $extra_conf" >&2; exit 2; }
[ -z "$include_list" ] || [ -f "$include_list" ] || { echo "tempest.sh: no such list: $include_list" >&2; exit 2; }
[ -z "$include_list" ] || [ -z "$regex" ] || { echo "tempest.sh: --regex or --include-list, not both" >&2; exit 2; }
if [ -z "$expected" ]; then
  expected=$STRATUS_ROOT/conformance/expected/${services%%,*}.txt
  [ -f "$expected" ] || expected=''
fi
[ -z "$expected" ] || [ -f "$expected" ] || { echo "tempest.sh: no such list: $expected" >&2; exit 2; }

# results STREAM DIR : the report and the result line (tempest_results.py), its exit status.
results() {
  dpython "$STRATUS_ROOT/conformance/tempest_results.py" "$1" "$expected" "$2"
}
if [ -n "$from_subunit" ]; then
  out=$(mktemp -d "${TMPDIR:-/tmp}/tempest-results.XXXXXX") || exit 2
  echo "tempest.sh: reading $from_subunit; lists in $out" >&2
  results "$from_subunit" "$out"
  exit
fi

confdir=$STRATUS_ROOT/conformance/tempest
# service -> test module under tempest.api, [service_available] placeholder
declare -A module=([identity]=identity [compute]=compute [image]=image [network]=network
  [volume]=volume [object_storage]=object_storage [placement]='' [compute_vm]='')
declare -A flag=([identity]='' [compute]=NOVA [image]=GLANCE [network]=NEUTRON
  [volume]=CINDER [object_storage]=SWIFT [placement]=PLACEMENT [compute_vm]=NOVA)
# the services a service's run needs on with it (their flags and tempest-conf.d parts, before its own)
declare -A with=([compute_vm]='compute image network volume')
declare -A enabled=([NOVA]=false [GLANCE]=false [NEUTRON]=false [CINDER]=false [SWIFT]=false [PLACEMENT]=false)
modules=() conf_parts=("$confdir/tempest.conf.template")
IFS=, read -ra wanted <<<"$services"
for s in "${wanted[@]}"; do
  s=${s//-/_}
  # `object` (the list conformance/expected/object.txt) is Tempest's object_storage
  [ "$s" = object ] && s=object_storage
  [ -n "${module[$s]+x}" ] || { echo "tempest.sh: unknown service '$s'" >&2; exit 2; }
  [ -n "${module[$s]}" ] && modules+=("${module[$s]}")
  for w in ${with[$s]:-}; do
    enabled[${flag[$w]}]=true
    conf_parts+=("$confdir/tempest-conf.d/$w.conf")
  done
  [ -n "${flag[$s]}" ] && enabled[${flag[$s]}]=true
  [ -f "$confdir/tempest-conf.d/$s.conf" ] && conf_parts+=("$confdir/tempest-conf.d/$s.conf")
done
# compute-vm: its servers boot the small VM image, on a network of their own
vm=false image_name=busybox servers_net=tempest-servers servers_range=10.254.0.0/20
if [[ ",${services//-/_}," == *,compute_vm,* ]]; then
  vm=true image_name=stratus-tiny servers_net=tempest-vm-servers servers_range=10.254.16.0/20
fi
# Compute runs with the network service: its servers get ports on a shared
# network (made below, [compute] fixed_network_name), os-interface and the
# security group and network proxies are tested against it.
if [ "${enabled[NOVA]}" = true ] && [ "${enabled[NEUTRON]}" = false ]; then
  enabled[NEUTRON]=true
  conf_parts+=("$confdir/tempest-conf.d/network.conf")
fi
if [ -z "$regex" ] && [ -z "$include_list" ]; then
  [ ${#modules[@]} -gt 0 ] || { echo "tempest.sh: no test module for --services $services" >&2; exit 2; }
  regex="^tempest\\.api\\.($(IFS='|'; echo "${modules[*]}"))\\."
fi

# The cloud runs with the security-compliance settings tempest.conf announces (lib.sh), or is the one
# STRATUS_CONFORMANCE_CLOUD_* name, started so (bin/test's, shared by the services' runs).
tempest_cloud_start

top=${STRATUS_TEMPEST_DIR:-$STRATUS_ROOT/.tempest}
mkdir -p "$top"
top=$(readlink -f "$top")
registry=$top/workspace.yaml ws=$top/workspace
tempest() { env PATH="$DEBIAN_PATH" tempest "$@"; }
# `tempest init` refuses a name its registry already holds: forget the last run first.
# (From $top: these read /etc/tempest/tempest.conf, which logs to ./tempest.log.)
cd "$top" || exit 2
tempest workspace remove --workspace-path "$registry" --name stratus >/dev/null 2>&1 || true
rm -rf "$ws"
tempest init --workspace-path "$registry" --name stratus "$ws" >/dev/null || { echo "tempest.sh: tempest init failed" >&2; exit 2; }

# Compute tests boot the default image ("busybox", imported by the all-in-one
# agent at first start; compute-vm's "stratus-tiny", built and imported in the
# background then): wait for it and hand its id to compute.conf (@IMAGE_REF@).
# compute-vm's scenario tests upload an image of their own from a file ([scenario] img_file,
# @IMG_FILE@): stratus-tiny's disk, saved from the image service.
image_ref= img_file=
if [ "${enabled[NOVA]}" = true ]; then
  for _ in $(seq 1 $([ $vm = true ] && echo 600 || echo 90)); do
    image_ref=$(env PATH="$DEBIAN_PATH" OS_CLIENT_CONFIG_FILE="$OS_CLOUDS_FILE" OS_CLOUD=stratus \
      openstack image list --name "$image_name" --status active -f value -c ID 2>/dev/null | head -n 1)
    [ -n "$image_ref" ] && break
    sleep 1
  done
  [ -n "$image_ref" ] || echo "tempest.sh: no active image named $image_name; set [compute] image_ref with --extra-conf" >&2
  if [ $vm = true ] && [ -n "$image_ref" ]; then
    img_file=$ws/$image_name.qcow2
    env PATH="$DEBIAN_PATH" OS_CLIENT_CONFIG_FILE="$OS_CLOUDS_FILE" OS_CLOUD=stratus \
      openstack image save --file "$img_file" "$image_ref" || { echo "tempest.sh: could not save $image_name for [scenario] img_file" >&2; exit 2; }
  fi
fi

# Network tests run against the extensions the cloud lists (@NETWORK_EXTENSIONS@).
network_extensions=all public_network_id= public_network_name=
if [ "${enabled[NEUTRON]}" = true ]; then
  network_extensions=$(env PATH="$DEBIAN_PATH" OS_CLIENT_CONFIG_FILE="$OS_CLOUDS_FILE" OS_CLOUD=stratus \
    openstack extension list --network -f value -c Alias 2>/dev/null | paste -sd, -)
  [ -n "$network_extensions" ] || { echo "tempest.sh: the network service lists no extensions" >&2; exit 2; }
  # the external network routers' gateways and floating IPs are on (devstack's "public"), the default one:
  # the `public` that `stratus up` makes at its first start when it has the external bridge, else one made here
  public_network_name=public
  # (after its image import: wait for it while the external bridge says it comes)
  if ip link show br-ex >/dev/null 2>&1; then
    for _ in $(seq 1 90); do [ -f "$CLOUD_DIR/networks-created" ] && break; sleep 1; done
  fi
  public_network_id=$(env PATH="$DEBIAN_PATH" OS_CLIENT_CONFIG_FILE="$OS_CLOUDS_FILE" OS_CLOUD=stratus \
    openstack network list --external --name public -f value -c ID 2>/dev/null | head -n 1)
  if [ -z "$public_network_id" ]; then
    public_network_name=tempest-public
    public_network_id=$(env PATH="$DEBIAN_PATH" OS_CLIENT_CONFIG_FILE="$OS_CLOUDS_FILE" OS_CLOUD=stratus \
      openstack network create --external --default tempest-public -f value -c id 2>/dev/null) &&
      env PATH="$DEBIAN_PATH" OS_CLIENT_CONFIG_FILE="$OS_CLOUDS_FILE" OS_CLOUD=stratus \
        openstack subnet create --network "$public_network_id" --subnet-range 172.24.4.0/24 --no-dhcp tempest-public-subnet >/dev/null 2>&1 ||
      { echo "tempest.sh: could not make the public network" >&2; exit 2; }
  fi
fi

# The network compute's test servers are put on (compute.conf's fixed_network_name, @SERVERS_NETWORK@):
# shared, so every project Tempest makes can use it, and routed to the public network.
if [ "${enabled[NOVA]}" = true ]; then
  osc() { env PATH="$DEBIAN_PATH" OS_CLIENT_CONFIG_FILE="$OS_CLOUDS_FILE" OS_CLOUD=stratus openstack "$@"; }
  if ! osc network show "$servers_net" -f value -c id >/dev/null 2>&1; then
    osc network create --share "$servers_net" -f value -c id >/dev/null &&
      osc subnet create --network "$servers_net" --subnet-range "$servers_range" "$servers_net" -f value -c id >/dev/null ||
      { echo "tempest.sh: could not make the servers' network" >&2; exit 2; }
  fi
  # routed to the public network, so floating IPs (os-floating-ips, addFloatingIp) can be given to its servers
  if [ -n "$public_network_id" ] && ! osc router show "$servers_net" -f value -c id >/dev/null 2>&1; then
    osc router create --external-gateway "$public_network_id" "$servers_net" -f value -c id >/dev/null &&
      osc router add subnet "$servers_net" "$servers_net" >/dev/null ||
      { echo "tempest.sh: could not route the servers' network" >&2; exit 2; }
  fi
fi
# Object storage: the roles Tempest's object tests give their users ([object-storage]
# operator_role, member, and reseller_admin_role, which Keystone must know by name: devstack
# makes ResellerAdmin for Swift's keystoneauth), and the optional APIs the cloud's /info
# announces ([object-storage-feature-enabled] discoverable_apis, tempurl_digest_hashlib,
# object_versioning), so a test of a middleware not served skips instead of failing.
object_apis=none object_versioning=false tempurl_digest=sha1
if [ "${enabled[SWIFT]}" = true ]; then
  osc() { env PATH="$DEBIAN_PATH" OS_CLIENT_CONFIG_FILE="$OS_CLOUDS_FILE" OS_CLOUD=stratus openstack "$@"; }
  osc role show ResellerAdmin >/dev/null 2>&1 || osc role create ResellerAdmin >/dev/null ||
    { echo "tempest.sh: could not make the ResellerAdmin role" >&2; exit 2; }
  info=$(curl -sf -m 10 "$CLOUD_URL/object/info" || curl -sf -m 10 "$CLOUD_URL/info") || info=
  if [ -n "$info" ]; then
    read -r object_apis object_versioning tempurl_digest < <(dpython -c '
import json, sys
info = json.loads(sys.argv[1])
apis = sorted(k for k in info if k != "swift")
digests = (info.get("tempurl") or {}).get("allowed_digests") or ["sha1"]
print(",".join(apis) or "none", str("versioned_writes" in info or "object_versioning" in info).lower(),
      "sha256" if "sha256" in digests else digests[0])' "$info")
  else
    echo "tempest.sh: the object service answers no /info; discoverable_apis is empty" >&2
  fi
fi

# tempest.conf: template + enabled services' parts, placeholders filled, --extra-conf merged last.
env IMG_FILE="$img_file" SERVERS_NETWORK="$servers_net" OBJECT_APIS="$object_apis" OBJECT_VERSIONING="$object_versioning" TEMPURL_DIGEST="$tempurl_digest" WORKSPACE="$ws" AUTH_URL="$CLOUD_AUTH_URL" REGION="$CLOUD_REGION" ADMIN_USER="$ADMIN_USER" IMAGE_REF="$image_ref" NETWORK_EXTENSIONS="$network_extensions" PUBLIC_NETWORK_ID="$public_network_id" PUBLIC_NETWORK_NAME="$public_network_name" \
  ADMIN_PASSWORD="$ADMIN_PASSWORD" ADMIN_PROJECT="$ADMIN_PROJECT" ADMIN_DOMAIN="$ADMIN_USER_DOMAIN" \
  NOVA="${enabled[NOVA]}" GLANCE="${enabled[GLANCE]}" NEUTRON="${enabled[NEUTRON]}" \
  CINDER="${enabled[CINDER]}" SWIFT="${enabled[SWIFT]}" PLACEMENT="${enabled[PLACEMENT]}" \
  PATH="$DEBIAN_PATH" /usr/bin/python3 - "$ws/etc/tempest.conf" "$extra_conf" "${conf_parts[@]}" <<'EOF' || { echo "tempest.sh: could not write tempest.conf" >&2; exit 2; }
import configparser, os, re, sys
out, extra, parts = sys.argv[1], sys.argv[2], sys.argv[3:]
text = "\n".join(open(p).read() for p in parts)
known = "WORKSPACE AUTH_URL REGION ADMIN_USER ADMIN_PASSWORD ADMIN_PROJECT ADMIN_DOMAIN NOVA GLANCE NEUTRON CINDER SWIFT PLACEMENT IMAGE_REF NETWORK_EXTENSIONS PUBLIC_NETWORK_ID PUBLIC_NETWORK_NAME OBJECT_APIS IMG_FILE SERVERS_NETWORK OBJECT_VERSIONING TEMPURL_DIGEST".split()
text = re.sub(r"@(%s)@" % "|".join(known), lambda m: os.environ[m.group(1)], text)
conf = configparser.RawConfigParser(strict=False)  # later sections and keys win
conf.optionxform = str
conf.read_string(text)
if extra:
    conf.read(extra)
with open(out, "w") as f:
    conf.write(f)
EOF

if [ -n "$include_list" ]; then select=(--include-list "$include_list"); else select=(--regex "$regex"); fi
echo "tempest.sh: running ${select[*]} (concurrency $concurrency) in $ws" >&2
# pyhooks/sitecustomize.py takes the 10 s sleep out of Tempest's delete_subnet (see there)
(cd "$ws" && env PYTHONPATH="$confdir/pyhooks${PYTHONPATH:+:$PYTHONPATH}" tempest run "${select[@]}" --concurrency "$concurrency" </dev/null)
(cd "$ws" && env PATH="$DEBIAN_PATH" stestr last --subunit >"$ws/tempest.subunit" 2>/dev/null)

results "$ws/tempest.subunit" "$ws"
