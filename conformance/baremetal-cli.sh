#!/usr/bin/env bash
# Conformance of `openstack baremetal` (Debian's python3-ironicclient 5.0, unchanged) against an
# all-in-one cloud (lib.sh): drivers, nodes (create, list, show, set, unset, manage, inspect,
# provide, deploy, undeploy, maintenance, power, delete), ports, port groups, allocations,
# conductors, node history, and Ironic's errors for a duplicate MAC, an unknown driver and a verb
# in the wrong state.
#
# WITHOUT HARDWARE: the nodes are driven by a TEST DOUBLE conductor
# (conformance/baremetal-conductor-double.ts), an agent process registered over the real agent
# API in its own conductor group (`test-double`) that answers every node operation as a machine
# whose BMC and ramdisk always succeed. It checks the API, the state machine and the client, not
# the power and provisioning of machines (test/dataplane/baremetal-*.test.ts do that).
#
# Each step is a named check (conformance/checks.sh). Ends with `N passed, N failed`; exits 1 if
# a check failed, 2 if the cloud did not start. Run it only under `flock /tmp/stratus-cloud.lock`.
# Run by a suite that started its cloud already (baremetal-e2e.sh, beside its own checks), with
# STRATUS_CLOUD_ATTACH=1 and that cloud's CLOUD_URL, CLOUD_DIR, OS_CLOUDS_FILE and _cloud_tmp in
# its environment, it checks that cloud and leaves it running.
set -uo pipefail
if [ -n "${STRATUS_CLOUD_ATTACH:-}" ]; then
  attached_url=$CLOUD_URL attached_dir=$CLOUD_DIR attached_clouds=$OS_CLOUDS_FILE attached_tmp=$_cloud_tmp
  . "$(dirname "$(readlink -f "$0")")/lib.sh"
  CLOUD_URL=$attached_url CLOUD_DIR=$attached_dir OS_CLOUDS_FILE=$attached_clouds _cloud_tmp=$attached_tmp
  here=$STRATUS_ROOT . "$STRATUS_ROOT/scripts/node-env.sh" >/dev/null
else
  . "$(dirname "$(readlink -f "$0")")/lib.sh"
  here=$STRATUS_ROOT . "$STRATUS_ROOT/scripts/node-env.sh" >/dev/null
  cloud_start
fi
. "$STRATUS_ROOT/conformance/checks.sh"

os() { env PATH="$DEBIAN_PATH" OS_CLIENT_CONFIG_FILE="$OS_CLOUDS_FILE" openstack --os-cloud stratus "$@"; }
bm() { os baremetal "$@"; }
# a call expected to fail, for checking the error's words (its exit status is not the check)
bm_err() { bm "$@" 2>&1; return 0; }
work=$_cloud_tmp/baremetal-cli
mkdir -p "$work"

# --- the test-double conductor (see above), stopped by its PID when the suite exits
"$STRATUS_NODE" --disable-warning=ExperimentalWarning "$STRATUS_ROOT/conformance/baremetal-conductor-double.ts" \
  "$CLOUD_URL" "$CLOUD_DIR/agent-token" bm-test-double test-double >"$work/conductor-double.log" 2>&1 &
double_pid=$!
at_exit "kill $double_pid 2>/dev/null; wait $double_pid 2>/dev/null"

check "catalog has baremetal (ironic)" wait_for 5 ironic os catalog list -f value -c Name
check "conductor list shows the test double" wait_for 20 bm-test-double bm conductor list -f value -c Hostname
check_has "driver list" ipmi redfish -- bm driver list -f value
check_has "driver show ipmi" ipmitool -- bm driver show ipmi -f value
check_has "driver property list redfish" redfish_address -- bm driver property list redfish -f value

# --- nodes
check_fails "node create with an unknown driver is refused" bm node create --driver no-such-driver
check_has "the refusal is Ironic's" "No valid host was found" -- bm_err node create --driver no-such-driver
check_has "node create (ipmi)" cli-ipmi -- bm node create --driver ipmi --name cli-ipmi --conductor-group test-double \
  --driver-info ipmi_address=192.0.2.71 --driver-info ipmi_username=admin --driver-info ipmi_password=cli-secret \
  --resource-class baremetal --property cpu_arch=x86_64 -f value -c name
check_has "node create (redfish)" cli-redfish -- bm node create --driver redfish --name cli-redfish --conductor-group test-double \
  --driver-info redfish_address=https://192.0.2.72 --driver-info redfish_system_id=/redfish/v1/Systems/1 \
  --driver-info redfish_username=root --driver-info redfish_password=cli-secret --driver-info redfish_verify_ca=false \
  --boot-interface redfish-virtual-media --resource-class baremetal -f value -c name
check_has "node list" cli-ipmi cli-redfish enroll -- bm node list -f value
check_has "node show" cli-ipmi ipmitool enroll test-double -- bm node show cli-ipmi -f value
check_lacks "node show masks the BMC password" cli-secret -- bm node show cli-ipmi -f json
check_has "node show masks it as Ironic does" '******' -- bm node show cli-redfish -f value -c driver_info
check "node set" bm node set cli-ipmi --extra rack=r1 --description 'made by baremetal-cli.sh' --property memory_mb=1024
check_has "node show after set" rack r1 'made by baremetal-cli.sh' -- bm node show cli-ipmi -f value -c extra -c description
check "node unset" bm node unset cli-ipmi --extra rack
check_lacks "node show after unset" rack -- bm node show cli-ipmi -f value -c extra
check "node add trait" bm node add trait cli-ipmi CUSTOM_CLI
check_has "node trait list" CUSTOM_CLI -- bm node trait list cli-ipmi -f value

# --- ports and port groups
check_has "port create" 52:54:00:c1:1c:01 -- bm port create 52:54:00:c1:1c:01 --node cli-ipmi --physical-network baremetal -f value -c address
port_id=$(bm port list --address 52:54:00:c1:1c:01 -f value -c UUID 2>/dev/null)
check_has "port create with a duplicate MAC: Ironic's 409" "already exists" -- bm_err port create 52:54:00:c1:1c:01 --node cli-redfish
check_has "port list" 52:54:00:c1:1c:01 -- bm port list -f value
check_has "port show" 52:54:00:c1:1c:01 baremetal -- bm port show "$port_id" -f value
check_has "port group create" cli-bond -- bm port group create --node cli-redfish --name cli-bond --address 52:54:00:c1:1c:f0 -f value -c name
check_has "port group list" cli-bond -- bm port group list -f value
check_has "port group show" 52:54:00:c1:1c:f0 -- bm port group show cli-bond -f value
check_has "port create in the group" 52:54:00:c1:1c:02 -- bm port create 52:54:00:c1:1c:02 --node cli-redfish --port-group cli-bond -f value -c address

# --- the provision state machine (the test double answers every operation)
check_has "provide in enroll: Ironic's 400" "can not be performed" -- bm_err node provide cli-ipmi
check "node manage" bm node manage cli-ipmi --wait 60
check_has "node is manageable" manageable -- bm node show cli-ipmi -f value -c provision_state
check "node inspect" bm node inspect cli-ipmi --wait 60
check_has "inspection set the properties" local_gb memory_mb -- bm node show cli-ipmi -f value -c properties
check_has "inspection made a port per NIC" 52:54:00:c1:1c:01 -- bm port list --node cli-ipmi -f value
check "node provide (automated cleaning)" bm node provide cli-ipmi --wait 60
check_has "node is available" available -- bm node show cli-ipmi -f value -c provision_state
check "node power on" bm node power on cli-ipmi
check "node shows power on" wait_for 20 "power on" bm node show cli-ipmi -f value -c power_state
check "node power off" bm node power off cli-ipmi
check "node shows power off" wait_for 20 "power off" bm node show cli-ipmi -f value -c power_state
check "node boot device set" bm node boot device set cli-ipmi pxe
check_has "node boot device show" pxe -- bm node boot device show cli-ipmi -f value
check "node maintenance set" bm node maintenance set cli-ipmi --reason 'cli check'
check_has "node list --maintenance" cli-ipmi -- bm node list --maintenance -f value -c Name
check_has "deploy in maintenance: Ironic's 400" "maintenance mode" -- bm_err node deploy cli-ipmi
check "node maintenance unset" bm node maintenance unset cli-ipmi
check_lacks "node list --maintenance after unset" cli-ipmi -- bm node list --maintenance -f value -c Name

# a deploy needs an image in Glance
head -c 1048576 /dev/zero >"$work/disk.raw"
image_id=$(os image create --disk-format raw --container-format bare --file "$work/disk.raw" bm-cli-image -f value -c id 2>/dev/null)
check "node set --instance-info image_source" bm node set cli-ipmi --instance-info image_source="$image_id" --instance-info root_gb=1
check "node deploy with a config drive" bm node deploy cli-ipmi --config-drive '{"meta_data": {"hostname": "cli-bm"}, "user_data": "#cloud-config\n"}' --wait 60
check_has "node is active" active -- bm node show cli-ipmi -f value -c provision_state
check_has "node validate" power management deploy -- bm node validate cli-ipmi -f value
check "node undeploy" bm node undeploy cli-ipmi --wait 60
check_has "node is available again (cleaned)" available -- bm node show cli-ipmi -f value -c provision_state
check_has "node history list" 'Provision state changed' -- bm node history list cli-ipmi -f value

# --- allocations
check_has "allocation create" active -- bm allocation create --resource-class baremetal --trait CUSTOM_CLI --name cli-alloc --wait 30 -f value -c state
check_has "allocation list" cli-alloc -- bm allocation list -f value
node_uuid=$(bm node show cli-ipmi -f value -c uuid 2>/dev/null)
check_has "allocation show names the node" "$node_uuid" -- bm allocation show cli-alloc -f value
check_has "the node holds the allocation" "$(bm allocation show cli-alloc -f value -c uuid 2>/dev/null)" -- bm node show cli-ipmi -f value -c allocation_uuid
check "allocation delete" bm allocation delete cli-alloc
check_lacks "allocation list after delete" cli-alloc -- bm allocation list -f value

# --- teardown
check "port delete" bm port delete "$port_id"
check_lacks "port list after delete" 52:54:00:c1:1c:01 -- bm port list --node cli-ipmi -f value
check "port group delete" bm port group delete cli-bond
check "node delete (available)" bm node delete cli-ipmi
check "node delete (enroll)" bm node delete cli-redfish
check_lacks "node list after delete" cli- -- bm node list -f value

checks_summary
