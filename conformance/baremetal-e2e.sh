#!/usr/bin/env bash
# Bare metal end to end on an all-in-one cloud (lib.sh: `stratus up`, whose agent is the conductor
# on br-bm 172.24.8.1 and whose flat network `baremetal` is the provisioning network), with REAL
# parts only: two virtual bare-metal machines from `stratus baremetal virtual create` (qemu under
# TCG), one behind OpenIPMI's ipmi_sim booting the deploy ramdisk over PXE (the network agent's
# dnsmasq, iPXE), one behind Stratus's Redfish emulator booting it from virtual media.
# Each machine has a second NIC wired to nothing (not enrolled).
#   enrol -> manage -> inspect, both at once: the IPMI node in band (the ramdisk over PXE: the
#   properties, the boot NIC's port kept, the second NIC's port made with pxe_enabled false), the
#   Redfish node out of band (inspect_interface redfish, its port deleted first: the properties and
#   a port per NIC from the BMC, nothing booted) -> provide (automated cleaning: the disk's metadata
#   erased) -> available;
#   `openstack server create` of a whole-disk image (stratus-tiny) with a bare-metal flavor
#   (resources:CUSTOM_E2E=1, the machines' resource class) on network `baremetal` with a key pair, one server per node at
#   once -> ACTIVE; SSH with the key to each server's address; `server stop` -> SHUTOFF, the nodes
#   and the machines' qemu off; `server start` -> ACTIVE, SSH again; `console log show` has the
#   guest's boot (the nodes' serial consoles); `openstack server delete` -> the node
#   torn down and cleaned back to available; then nothing left: no machine's qemu, tap or BMC, no
#   provisioning port, no bridge but up's, no nft table but the cloud's, no dnsmasq of a network
#   that is gone, no machine's MAC in the baremetal network's dnsmasq config, nothing of a node in
#   its TFTP root.
# Beside it, on the same cloud, conformance/baremetal-cli.sh's checks of the `openstack baremetal`
# client (against its test-double conductor, in a conductor group of its own; its nodes have
# resource class `baremetal`, the machines here `e2e`, so no server lands on a test double), in a
# process of its own whose lines are shown prefixed with `cli: ` and counted in the summary.
#
# Each step is a named check (conformance/checks.sh). Ends with `N passed, N failed`; exits 1 if
# a check failed, 2 if the cloud did not start. Run it only under `flock /tmp/stratus-cloud.lock`.
set -uo pipefail
. "$(dirname "$(readlink -f "$0")")/lib.sh"
here=$STRATUS_ROOT . "$STRATUS_ROOT/scripts/node-env.sh" >/dev/null
e2e_started=$SECONDS
bridges_before=$(ip -br link show type bridge | awk '{print $1}' | sort)
netns_before=$(ip netns list | awk '{print $1}' | sort)
cloud_start
. "$STRATUS_ROOT/conformance/checks.sh"
WAIT_FOR_INTERVAL=2 # a client call takes seconds on a loaded 2-core machine

os() { env PATH="$DEBIAN_PATH" OS_CLIENT_CONFIG_FILE="$OS_CLOUDS_FILE" openstack --os-cloud stratus "$@"; }
bm() { os baremetal "$@"; }
stratus() { "${STRATUS_BIN:-$STRATUS_ROOT/bin/stratus}" "$@"; }
work=$_cloud_tmp/baremetal-e2e
vbmc=$work/vbmc
prefix=e2e$$
mkdir -p "$work"
# the machines go before the cloud does (their nodes through its API while it still runs)
at_exit "stratus baremetal virtual delete --all --state-dir '$vbmc' --data-dir '$CLOUD_DIR' >/dev/null 2>&1 || stratus baremetal virtual delete --all --state-dir '$vbmc' --no-unenroll >/dev/null 2>&1"

# both NODE... reach provision state STATE within SECONDS (a failed state ends the wait); one
# `node list` a round (a client call takes seconds on a loaded 2-core machine)
nodes_reach() {
  local limit=$1 state=$2 deadline n s all list; shift 2
  deadline=$((SECONDS + limit))
  while :; do
    all=1 OUT=
    list=$(bm node list -f value -c Name -c "Provisioning State" 2>&1)
    for n in "$@"; do
      s=$(awk -v n="$n" '$1 == n {sub(/^[^ ]+ /, ""); print}' <<<"$list")
      OUT+="$n: ${s:-$list}"$'\n'
      case $s in *failed | error) echo "$OUT"; bm node show "$n" -f value -c last_error; return 1 ;; esac
      [ "$s" = "$state" ] || all=0
    done
    [ "$all" = 1 ] && return 0
    [ "$SECONDS" -ge "$deadline" ] && { echo "after $limit s:"; echo "$OUT"; return 1; }
    sleep 2
  done
}
# SECONDS STATUS SERVER...: each server has STATUS within SECONDS (ERROR ends the wait); one
# `server list` a round
servers_reach() {
  local limit=$1 want=$2 deadline s st all list; shift 2
  deadline=$((SECONDS + limit))
  while :; do
    all=1 OUT=
    list=$(os server list -f value -c Name -c Status 2>&1)
    for s in "$@"; do
      st=$(awk -v s="$s" '$1 == s {print $2}' <<<"$list")
      OUT+="$s: ${st:-$list}"$'\n'
      [ "$st" = ERROR ] && { echo "$OUT"; os server show "$s" -f value -c fault; return 1; }
      [ "$st" = "$want" ] || all=0
    done
    [ "$all" = 1 ] && return 0
    [ "$SECONDS" -ge "$deadline" ] && { echo "after $limit s:"; echo "$OUT"; bm node list --long -f value -c Name -c "Power State" -c "Provisioning State" -c "Last Error"; return 1; }
    sleep 2
  done
}
t_mark() { echo "# $(($SECONDS - e2e_started)) s: $*"; }

check "catalog has baremetal (ironic)" wait_for 10 ironic os catalog list -f value -c Name
check "the all-in-one's agent is a conductor (ipmi, redfish)" wait_for 60 redfish bm driver list -f value
conductor=$(bm conductor list -f value -c Hostname 2>/dev/null | head -n 1)
# the client's checks, beside these (see above)
STRATUS_CLOUD_ATTACH=1 CLOUD_URL=$CLOUD_URL CLOUD_DIR=$CLOUD_DIR OS_CLOUDS_FILE=$OS_CLOUDS_FILE _cloud_tmp=$_cloud_tmp \
  "$STRATUS_ROOT/conformance/baremetal-cli.sh" >"$work/baremetal-cli.log" 2>&1 &
cli_pid=$!
at_exit "kill $cli_pid 2>/dev/null; wait $cli_pid 2>/dev/null"
check_has "conductor show: up, in the default group" True -- bm conductor show "$conductor" -f value -c alive
check_has "network baremetal (flat, physnet baremetal)" flat baremetal -- os network show baremetal -f value -c provider:network_type -c provider:physical_network
check "the image stratus-tiny is active" wait_for 600 active os image show stratus-tiny -f value -c status

# --- two machines: IPMI (PXE) and Redfish (virtual media); 384 MiB is what the ramdisk needs
t_mark "creating the machines"
check "baremetal virtual create (ipmi + redfish)" stratus baremetal virtual create --count 2 --bmc mixed --state-dir "$vbmc" \
  --data-dir "$CLOUD_DIR" --name-prefix "$prefix" --memory-mb 384 --disk-mb 256 --resource-class e2e
n1=$prefix-1 n2=$prefix-2
check_has "node list shows both, enroll" "$n1" "$n2" enroll -- bm node list -f value
check_has "the IPMI node boots over iPXE" ipmi ipxe -- bm node show "$n1" -f value -c driver -c boot_interface
check_has "the Redfish node boots from virtual media" redfish redfish-virtual-media -- bm node show "$n2" -f value -c driver -c boot_interface

# --- manage (verify: the BMC answers) and provide (automated cleaning), both nodes at once
check "node manage (ipmi)" bm node manage "$n1"
check "node manage (redfish)" bm node manage "$n2"
check "both manageable (verified through their BMCs)" nodes_reach 120 manageable "$n1" "$n2"

# the machines' power as their BMCs see it (whether their qemu runs), the nodes' as Ironic shows it
machines_power() { stratus baremetal virtual list --state-dir "$vbmc" | awk '{print "machine", $1, $2}'; }
nodes_power() { local out; out=$(bm node list -f value -c Name -c "Power State") || return 1; grep "^$prefix" <<<"$out"; return 0; }

# --- inspection, both ways Ironic does it, at once: the IPMI node in band (the ramdisk over PXE
# reports every NIC: the boot NIC's enrolled port stays, the second NIC, wired to nothing, gets a
# port with pxe_enabled false), the Redfish node out of band (inspect_interface redfish: the BMC's
# ProcessorSummary, MemorySummary, Processors, SimpleStorage and EthernetInterfaces; no boot, no
# power change), its enrolled port deleted first so only inspection can bring it back. The sizes
# enrolment gave are taken away first, so only inspection can bring them back.
mac_of() { sed -n 's/.*"mac": *"\([^"]*\)".*/\1/p' "$vbmc/machines/$1/machine.json"; }
spare_of() { sed -n 's/.*"spareMac": *"\([^"]*\)".*/\1/p' "$vbmc/machines/$1/machine.json"; }
mac1=$(mac_of "$n1") mac2=$(mac_of "$n2") spare1=$(spare_of "$n1") spare2=$(spare_of "$n2")
check "the machines have a second NIC (a MAC of its own)" test -n "$spare1" -a -n "$spare2" -a "$spare1" != "$mac1" -a "$spare2" != "$mac2"
t_mark "inspecting"
for n in "$n1" "$n2"; do
  check "node unset --property cpus/memory_mb/local_gb/cpu_arch ($n)" bm node unset "$n" --property cpus --property memory_mb --property local_gb --property cpu_arch
done
# NODE LINE...: the node's ports (address pxe_enabled), sorted, are exactly these lines (none: no port)
ports_are() {
  local n=$1 p want; shift
  p=$(bm port list --node "$n" --fields address pxe_enabled -f value 2>&1 | sort); want=$(printf '%s\n' "$@" | sort)
  echo "$p"; [ "$p" = "$want" ]
}
delete_ports() { local p out; out=$(bm port list --node "$1" -f value -c UUID) || return 1; for p in $out; do bm port delete "$p" || return 1; done; }
check "port delete: the Redfish node has no port ($n2)" delete_ports "$n2"
check "the Redfish node has no port before inspection" ports_are "$n2"
check "node set --inspect-interface redfish ($n2)" bm node set "$n2" --inspect-interface redfish
check "node inspect (ipmi, in band over PXE)" bm node inspect "$n1"
inspect2_started=$SECONDS
check "node inspect (redfish, out of band)" bm node inspect "$n2"
check "the out-of-band inspection is done within 60 s (nothing boots)" nodes_reach 60 manageable "$n2"
echo "# out-of-band inspection: $((SECONDS - inspect2_started)) s"
check "inspection: both manageable again" nodes_reach 300 manageable "$n1" "$n2"
t_mark "inspected"
# NODE: its properties against the machine's size (1 CPU, 384 MiB (in band: less the kernel's own), a 256 MiB disk: 0 GiB)
inspected_sizes() {
  bm node show "$1" -f json -c properties -c inspection_finished_at | dpython -c '
import json, sys
d = json.load(sys.stdin); p = d["properties"]; m = p.get("memory_mb")
good = d.get("inspection_finished_at") and p.get("cpus") == 1 and isinstance(m, int) and 256 < m <= 384 and p.get("local_gb") == 0 and p.get("cpu_arch") == "x86_64"
print("inspected:" if good else "WRONG:", json.dumps(p, sort_keys=True), "finished", d.get("inspection_finished_at"))'
}
check_has "inspection set cpus, memory_mb, local_gb, cpu_arch ($n1, in band)" inspected: -- inspected_sizes "$n1"
check_has "inspection set cpus, memory_mb, local_gb, cpu_arch ($n2, out of band)" inspected: -- inspected_sizes "$n2"
check_has "out of band, memory_mb is the BMC's whole 384 MiB ($n2)" '"memory_mb": 384' -- bm node show "$n2" -f json -c properties
check_has "in band: the boot NIC keeps its port (PXE-enabled), the second NIC's appears (pxe_enabled False) ($n1)" "$mac1 True" "$spare1 False" -- \
  ports_are "$n1" "$mac1 True" "$spare1 False"
# out of band the BMC does not say which NIC boots: a new port is PXE-enabled, as Ironic makes it
check_has "out of band: a port per NIC appears, with the BMC's MACs ($n2)" "$mac2 True" "$spare2 True" -- ports_are "$n2" "$mac2 True" "$spare2 True"
check_has "the out-of-band inspection left the Redfish node off (no power change)" "$n2 power off" -- nodes_power
check_has "... its machine is off" "machine $n2 off" -- machines_power
never_ran() { if [ -s "$vbmc/machines/$1/console.log" ]; then echo "$1 has console output"; else echo "$1 never ran"; fi; }
check_has "... and never ran (no console output: nothing booted)" "$n2 never ran" -- never_ran "$n2"
# as an operator does after inspection: the boot NIC's port on the provisioning network's physnet (a VIF takes that one)
port_of() { bm port list --node "$1" -f value -c UUID -c Address | awk -v m="$2" '$2 == m {print $1}'; }
check "port set --physical-network baremetal on the inspected boot NIC's port ($n2)" bm port set "$(port_of "$n2" "$mac2")" --physical-network baremetal
console_of() { echo "$vbmc/machines/$1/console.log"; }
check_has "the ramdisk said what it found ($n1's console)" "inspected: 1 CPUs" -- cat "$(console_of "$n1")"
# NODE: the console's size now, so a later check reads only what came after (the log is appended across boots)
console_size() { stat -c %s "$(console_of "$1")" 2>/dev/null || echo 0; }
# NODE OFFSET: the console from that byte on
console_since() { tail -c +"$(($2 + 1))" "$(console_of "$1")"; }
t_mark "cleaning"
c1=$(console_size "$n1") c2=$(console_size "$n2")
check "node provide (ipmi)" bm node provide "$n1"
check "node provide (redfish)" bm node provide "$n2"
check "provide: cleaning (IPMI over PXE, Redfish over virtual media) -> both available" nodes_reach 600 available "$n1" "$n2"
t_mark "available"
check_has "the IPMI node's cleaning booted over PXE (its console since provide)" "iPXE" -- console_since "$n1" "$c1"
check_has "the cleaning erased $n1's disk metadata (its console since provide)" "erased the metadata of /dev/" -- console_since "$n1" "$c1"
check_has "the cleaning erased $n2's disk metadata (its console since provide)" "erased the metadata of /dev/" -- console_since "$n2" "$c2"
u1=$(bm node show "$n1" -f value -c uuid 2>/dev/null) u2=$(bm node show "$n2" -f value -c uuid 2>/dev/null)
check_has "the nodes are off after cleaning" "$n1 power off" "$n2 power off" -- nodes_power
# the ports on the provisioning network held for the nodes (an operation's: device_id the node)
node_ports() { local out; out=$(os port list --network baremetal --long -f value -c ID -c device_id -c device_owner) || return 1; grep -E "$u1|$u2" <<<"$out"; return 0; }
check_lacks "no provisioning port is left after cleaning" "baremetal:none" -- node_ports

# --- servers: a bare-metal flavor, a whole-disk image, a key pair, one server per node at once
check "flavor create (resources:CUSTOM_E2E=1, no VCPU/MEMORY_MB/DISK_GB)" os flavor create "$prefix-bm" --ram 384 --vcpus 1 --disk 0 \
  --property resources:CUSTOM_E2E=1 --property resources:VCPU=0 --property resources:MEMORY_MB=0 --property resources:DISK_GB=0
key=$work/key
check "keypair create" sh -c "env PATH='$DEBIAN_PATH' OS_CLIENT_CONFIG_FILE='$OS_CLOUDS_FILE' openstack --os-cloud stratus keypair create $prefix-key >'$key' && chmod 600 '$key'"
check "hypervisor list shows the nodes (ironic)" wait_for 60 ironic os hypervisor list -f value -c "Hypervisor Type"
t_mark "deploying"
s1=$prefix-srv-1 s2=$prefix-srv-2
for s in "$s1" "$s2"; do
  check "server create $s --flavor bm --image stratus-tiny --network baremetal --key-name" os server create --flavor "$prefix-bm" \
    --image stratus-tiny --network baremetal --key-name "$prefix-key" "$s"
done
check "both servers ACTIVE" servers_reach 900 ACTIVE "$s1" "$s2"
t_mark "active"
# the VIF took the node's port on the network's physnet, PXE-enabled: the boot NIC's, not the second NIC's
vif_macs() { local s; for s in "$@"; do echo "$s $(os port list --server "$s" -f value -c "MAC Address")"; done; }
check_has "each server's port has its node's boot NIC's MAC (not the second NIC's)" "$s1 $mac1" "$s2 $mac2" -- vif_macs "$s1" "$s2"
# where the provisioning network's dnsmasq keeps its config (checked again once the nodes are gone)
bm_dhcp=$CLOUD_DIR/agent/network/dhcp/$(os network show baremetal -f value -c id 2>/dev/null)
check_has "the baremetal network's dnsmasq lists the servers' MACs ($bm_dhcp/hosts)" "$mac1" "$mac2" -- cat "$bm_dhcp/hosts"
check_has "each server is on a node (hypervisor_hostname: a node's uuid)" "$u1" "$u2" -- \
  sh -c "env PATH='$DEBIAN_PATH' OS_CLIENT_CONFIG_FILE='$OS_CLOUDS_FILE' openstack --os-cloud stratus server show $s1 -f value -c OS-EXT-SRV-ATTR:hypervisor_hostname; env PATH='$DEBIAN_PATH' OS_CLIENT_CONFIG_FILE='$OS_CLOUDS_FILE' openstack --os-cloud stratus server show $s2 -f value -c OS-EXT-SRV-ATTR:hypervisor_hostname"
check_has "both nodes active" "$n1" "$n2" -- bm node list --provision-state active -f value -c Name
ssh_to() {
  local s=$1 ip deadline=$((SECONDS + 240))
  ip=$(os server show "$s" -f json -c addresses | grep -oE '172\.24\.8\.[0-9]+' | head -n 1)
  [ -n "$ip" ] || { echo "no address for $s"; return 1; }
  while :; do
    OUT=$(ssh -i "$key" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o ConnectTimeout=3 -o BatchMode=yes "root@$ip" 'hostname; cat /proc/cmdline' 2>&1) &&
      ! grep -q stratus.token <<<"$OUT" && { echo "$OUT"; return 0; }
    [ "$SECONDS" -ge "$deadline" ] && { echo "no SSH to $s at $ip: $OUT"; return 1; }
    sleep 3
  done
}
check_has "SSH with the key to $s1 (booted from its disk)" "$s1" -- ssh_to "$s1"
check_has "SSH with the key to $s2 (booted from its disk)" "$s2" -- ssh_to "$s2"
t_mark "ssh"

# --- stop and start, both servers at once (IPMI's and Redfish's power): SHUTOFF with the node
# powered off and its qemu really gone; ACTIVE again, booted from its disk, SSH answering
t_mark "stopping"
check "server stop (both)" os server stop "$s1" "$s2"
check "both servers SHUTOFF" servers_reach 120 SHUTOFF "$s1" "$s2"
check_has "their nodes are powered off" "$n1 power off" "$n2 power off" -- nodes_power
check_has "the machines are off (their qemu gone)" "machine $n1 off" "machine $n2 off" -- machines_power
t_mark "starting"
check "server start (both)" os server start "$s1" "$s2"
check "both servers ACTIVE again" servers_reach 120 ACTIVE "$s1" "$s2"
check_has "their nodes are powered on" "$n1 power on" "$n2 power on" -- nodes_power
check_has "the machines are on" "machine $n1 on" "machine $n2 on" -- machines_power
check_has "SSH to $s1 again (booted from its disk after the start)" "$s1" -- ssh_to "$s1"
check_has "SSH to $s2 again (booted from its disk after the start)" "$s2" -- ssh_to "$s2"
t_mark "ssh after start"
# the servers' console logs through their BMCs (IPMI Serial over LAN, Redfish's serial console, as
# the conductor records them): the guest's boot (stratus-guest says `ready:`)
check "console log show $s1 has the guest's boot (its node's serial console)" wait_for 60 "ready: " os console log show "$s1"
check "console log show $s2 has the guest's boot (its node's serial console)" wait_for 60 "ready: " os console log show "$s2"

# --- delete: each node torn down and cleaned back to available
c1=$(console_size "$n1") c2=$(console_size "$n2")
check "server delete (both) --wait" os server delete --wait "$s1" "$s2"
check "the nodes are cleaned back to available, without an instance" nodes_reach 600 available "$n1" "$n2"
t_mark "available again"
node_instances() { bm node list -f value -c Name -c "Instance UUID" | awk -v p="$prefix" 'index($1, p) == 1 && $2 != "None" {print $1, "holds", $2}'; }
check_lacks "the nodes hold no instance" holds -- node_instances
check_has "the cleaning after the delete erased $n1's disk metadata (its console)" "erased the metadata of /dev/" -- console_since "$n1" "$c1"
check_has "the cleaning after the delete erased $n2's disk metadata (its console)" "erased the metadata of /dev/" -- console_since "$n2" "$c2"
check_lacks "no server port is left on baremetal" "compute:" -- os port list --network baremetal --long -f value -c device_owner
check_lacks "no provisioning port is left (the server's VIF the cleaning booted from went with it)" "baremetal:none" -- node_ports

# --- the machines go; nothing left on the host
taps=$(sed -n 's/.*"tap": *"\([^"]*\)".*/\1/p' "$vbmc"/machines/*/machine.json 2>/dev/null | tr '\n' ' ')
check_has "the machines' taps are on br-bm" ${taps:-no-taps} -- ip -o link show master br-bm
check "baremetal virtual delete --all" stratus baremetal virtual delete --all --state-dir "$vbmc" --data-dir "$CLOUD_DIR"
check_lacks "the nodes are gone" "$prefix" -- bm node list -f value -c Name
nft_of_taps() { local t; for t in $taps; do nft list ruleset 2>/dev/null | grep -qF "$t" && echo "nft names $t"; done; return 0; }
check_lacks "no nft rule names a machine's tap" "nft names" -- nft_of_taps
check_lacks "no machine's qemu is left" "$vbmc" -- sh -c 'ps -eo args | grep -F qemu-system || true'
check_lacks "no BMC is left (ipmi_sim, the Redfish emulator)" "$vbmc" -- sh -c 'ps -eo args | grep -E "ipmi_sim|redfish" || true'
# anything else of the machines' (the serial relays' socat, ...): pgrep leaves itself out
machine_processes() { pgrep -af -- "$vbmc"; return 0; }
check_lacks "no process of the machines is left (serial relays included)" "$vbmc" -- machine_processes
new_netns() { comm -13 <(echo "$netns_before") <(ip netns list | awk '{print $1}' | sort) | grep -vE '^q(dhcp|router)-' | sed 's/^/NEW /'; return 0; }
taps_left() { local t; for t in $taps; do ip link show "$t" >/dev/null 2>&1 && echo "tap $t is left"; done; return 0; }
check_lacks "no machine's tap is left" "is left" -- taps_left
new_bridges() { comm -13 <(echo "$bridges_before") <(ip -br link show type bridge | awk '{print $1}' | sort) | grep -vE '^(br-ex|br-bm|brq.*)$' | sed 's/^/UNEXPECTED /'; return 0; }
check_lacks "no bridge but up's and the networks'" UNEXPECTED -- new_bridges
check_lacks "no new network namespace but the networks' DHCP and routers' (qdhcp-, qrouter-)" NEW -- new_netns
dnsmasq_of_gone_networks() {
  local d id nets
  nets=$(os network list -f value -c ID)
  for d in "$CLOUD_DIR"/agent/network/dhcp/*/; do
    [ -f "$d/pid" ] || continue
    id=$(basename "$d")
    kill -0 "$(cat "$d/pid")" 2>/dev/null && ! grep -q "$id" <<<"$nets" && echo "dnsmasq of gone network $id"
  done
  return 0
}
check_lacks "no dnsmasq of a network that is gone" dnsmasq -- dnsmasq_of_gone_networks
# the provisioning network's own DHCP once the nodes are gone (the agent rewrites it as it converges):
# its dnsmasq's hosts and options files name none of the machines' MACs, and its TFTP root (gone
# when no PXE port is left) holds nothing of a node, only iPXE's chain-loaders
dnsmasq_names_machines() {
  local deadline=$((SECONDS + 60)) m found
  [ -f "$bm_dhcp/hosts" ] || { echo "no dnsmasq config left for the network ($bm_dhcp)"; return 0; }
  while :; do
    found=
    for m in $mac1 $spare1 $mac2 $spare2; do grep -qiF -- "$m" "$bm_dhcp/hosts" "$bm_dhcp/opts" 2>/dev/null && found+=" $m"; done
    [ -z "$found" ] && { echo "the baremetal network's dnsmasq lists none of $mac1 $spare1 $mac2 $spare2"; return 0; }
    [ "$SECONDS" -ge "$deadline" ] && { echo "dnsmasq still lists$found:"; cat "$bm_dhcp/hosts"; return 0; }
    sleep 2
  done
}
check_lacks "the baremetal network's dnsmasq config lists no machine's MAC" "still lists" -- dnsmasq_names_machines
tftp_of_nodes() {
  local f
  [ -d "$bm_dhcp/tftp" ] || { echo "no TFTP root (no PXE port left)"; return 0; }
  for f in $(cd "$bm_dhcp/tftp" && find . -mindepth 1 | sed 's|^\./||'); do
    case $f in undionly.kpxe | ipxe.efi | snponly.efi) ;; *) echo "NODE FILE $f" ;; esac
  done
  grep -rlE "$u1|$u2" "$bm_dhcp/tftp" 2>/dev/null | sed 's/^/NODE FILE /'
  return 0
}
check_lacks "the TFTP root holds no node's files" "NODE FILE" -- tftp_of_nodes
check "flavor delete" os flavor delete "$prefix-bm"

echo "# bare metal end to end: $((SECONDS - e2e_started)) s"

# --- the `openstack baremetal` client's checks (beside these, see above): their lines and counts
wait "$cli_pid"
sed 's/^/cli: /' "$work/baremetal-cli.log"
cli_line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$work/baremetal-cli.log" | tail -n 1)
if [ -n "$cli_line" ]; then
  passed=$((passed + ${cli_line%% *})) failed=$((failed + $(awk '{print $3}' <<<"$cli_line")))
else
  not_ok "conformance/baremetal-cli.sh ended with its result line" "$(tail -n 5 "$work/baremetal-cli.log")"
fi
echo "# bare metal end to end and client checks: $((SECONDS - e2e_started)) s"
checks_summary
