#!/usr/bin/env bash
# Conformance with the `openstack` CLI (Debian's python3-openstackclient): starts
# an all-in-one cloud (lib.sh) and walks the identity, image and compute flows an operator would,
# each step a named check. It keeps going after a failure, prints `ok - NAME` or
# `not ok - NAME` (with the command's output as `#` lines) per check, and ends
# with one line `N passed, N failed`. Exits 1 if any check failed, 2 if the
# cloud did not start.
set -uo pipefail
. "$(dirname "$(readlink -f "$0")")/lib.sh"
cloud_start

. "$STRATUS_ROOT/conformance/checks.sh"

# The admin, through the clouds.yaml that `stratus up` wrote.
os() { env PATH="$DEBIAN_PATH" OS_CLIENT_CONFIG_FILE="$OS_CLOUDS_FILE" openstack --os-cloud stratus "$@"; }
# Anyone else, through explicit options (no clouds.yaml).
os_bare() { env PATH="$DEBIAN_PATH" openstack --os-auth-url "$CLOUD_AUTH_URL" --os-identity-api-version 3 --os-region-name "$CLOUD_REGION" "$@"; }
# The test user with a password, scoped to the test project.
os_user() {
  local password=$1; shift
  os_bare --os-username cli-user --os-password "$password" --os-user-domain-name Default \
    --os-project-name cli-project --os-project-domain-name Default "$@"
}
# An application credential (no clouds.yaml).
os_appcred() {
  local id=$1 secret=$2; shift 2
  env PATH="$DEBIAN_PATH" openstack --os-auth-type v3applicationcredential --os-auth-url "$CLOUD_AUTH_URL" \
    --os-identity-api-version 3 --os-application-credential-id "$id" --os-application-credential-secret "$secret" "$@"
}
http_status() { curl -s -o /dev/null -m 10 -w '%{http_code}' "$@"; }

pw1=Pw1-$RANDOM$RANDOM pw2=Pw2-$RANDOM$RANDOM

# --- tokens and catalog
check "token issue" os token issue -f value -c id
admin_token=$OUT
check_has "catalog list shows identity" identity "$CLOUD_URL/identity" -- os catalog list -f value
check_has "endpoint list shows identity" identity -- os endpoint list -f value

# --- domains
check_has "domain create" cli-domain -- os domain create cli-domain --description 'made by cli.sh' -f value -c name
check_has "domain list shows it" cli-domain Default -- os domain list -f value -c Name
check_has "domain show" cli-domain 'made by cli.sh' -- os domain show cli-domain -f value
check "domain set --description" os domain set cli-domain --description changed
check_has "domain show after set" changed -- os domain show cli-domain -f value -c description
check_fails_after "domain show after set" "domain delete refused while enabled" os domain delete cli-domain
check "domain set --disable" os domain set cli-domain --disable
check_has "domain show disabled" False -- os domain show cli-domain -f value -c enabled
check "domain delete" os domain delete cli-domain
check_lacks "domain list after delete" cli-domain -- os domain list -f value -c Name

# --- projects
check_has "project create" cli-project -- os project create cli-project --domain Default --description 'made by cli.sh' -f value -c name
check_has "project list shows it" cli-project "$ADMIN_PROJECT" -- os project list -f value -c Name
check_has "project show" cli-project 'made by cli.sh' default -- os project show cli-project --domain Default -f value
check "project set --description" os project set cli-project --description changed
check_has "project show after set" changed -- os project show cli-project -f value -c description
check_fails_after "project show" "project show of a missing project fails" os project show no-such-project

# --- users
check_has "user create" cli-user -- os user create cli-user --domain Default --project cli-project --password "$pw1" --email cli@example.org -f value -c name
check_has "user list shows it" cli-user "$ADMIN_USER" -- os user list -f value -c Name
check_has "user show" cli-user cli@example.org -- os user show cli-user --domain Default -f value
check "user set --email" os user set cli-user --email changed@example.org
check_has "user show after set" changed@example.org -- os user show cli-user -f value -c email

# --- groups
check_has "group create" cli-group -- os group create cli-group --domain Default --description 'made by cli.sh' -f value -c name
check_has "group list shows it" cli-group -- os group list -f value -c Name
check_has "group show" cli-group 'made by cli.sh' -- os group show cli-group -f value
check "group set --description" os group set cli-group --description changed
check_has "group show after set" changed -- os group show cli-group -f value -c description
check "group add user" os group add user cli-group cli-user
# `group contains user` exits 0 either way; only its message tells.
check_has "group contains user" "cli-user in group cli-group" -- os group contains user cli-group cli-user
check_has "group list --user shows it" cli-group -- os group list --user cli-user -f value -c Name

# --- roles
check_has "role create" cli-role -- os role create cli-role -f value -c name
check_has "role create (second)" cli-role-2 -- os role create cli-role-2 --description 'made by cli.sh' -f value -c name
check_has "role list shows them" cli-role cli-role-2 admin -- os role list -f value -c Name
check_has "role show" cli-role-2 'made by cli.sh' -- os role show cli-role-2 -f value
check "role set --description" os role set cli-role --description changed
check_has "role show after set" changed -- os role show cli-role -f value -c description

# --- role assignments
check "role add --user --project" os role add --user cli-user --project cli-project cli-role
check "role add --group --project" os role add --group cli-group --project cli-project cli-role-2
check_has "role assignment list --names (direct)" cli-user@Default cli-project@Default cli-role -- \
  os role assignment list --names --user cli-user --project cli-project -f value
check_has "role assignment list --names --effective (via group)" cli-user@Default cli-project@Default cli-role-2 -- \
  os role assignment list --names --effective --user cli-user --project cli-project -f value
check_has "role assignment list --names --group" cli-group@Default cli-role-2 -- \
  os role assignment list --names --group cli-group -f value

# --- the user themself
check "user token issue (password)" os_user "$pw1" token issue -f value -c id
check_has "user project list (own scope)" cli-project -- os_user "$pw1" project list --my-projects -f value -c Name

# --- application credentials (the admin's)
check "application credential create" os application credential create cli-appcred --description 'made by cli.sh' -f shell -c id -c secret
appcred_id=$(sed -n 's/^id="\(.*\)"$/\1/p' <<<"$OUT") appcred_secret=$(sed -n 's/^secret="\(.*\)"$/\1/p' <<<"$OUT")
check_has "application credential list shows it" cli-appcred -- os application credential list -f value -c Name
check "application credential authenticates" os_appcred "$appcred_id" "$appcred_secret" token issue -f value -c id
check_fails_after "application credential authenticates" "application credential with a wrong secret fails" os_appcred "$appcred_id" wrong-secret token issue
check "application credential delete" os application credential delete cli-appcred
check_fails_after "application credential delete" "deleted application credential fails" os_appcred "$appcred_id" "$appcred_secret" token issue

# --- password change by the user themself
check "user password set (as the user)" os_user "$pw1" user password set --original-password "$pw1" --password "$pw2"
check "new password works" os_user "$pw2" token issue -f value -c id
check_fails_after "new password works" "old password fails" os_user "$pw1" token issue

# --- token revocation
check "token issue (to revoke)" os token issue -f shell -c id -c project_id
doomed=$(sed -n 's/^id="\(.*\)"$/\1/p' <<<"$OUT") admin_project_id=$(sed -n 's/^project_id="\(.*\)"$/\1/p' <<<"$OUT")
check_has "token validates before revoke (GET /auth/tokens 200)" 200 -- \
  http_status -H "X-Auth-Token: $admin_token" -H "X-Subject-Token: $doomed" "$CLOUD_AUTH_URL/auth/tokens"
check "token authenticates before revoke" os_bare --os-auth-type token --os-token "$doomed" --os-project-id "$admin_project_id" project list
check "token revoke" os token revoke "$doomed"
check_has "revoked token does not validate (GET /auth/tokens 404)" 404 -- \
  http_status -H "X-Auth-Token: $admin_token" -H "X-Subject-Token: $doomed" "$CLOUD_AUTH_URL/auth/tokens"
check_fails_after "token authenticates before revoke" "revoked token does not authenticate" os_bare --os-auth-type token --os-token "$doomed" --os-project-id "$admin_project_id" project list

# --- removal
check "role remove --user --project" os role remove --user cli-user --project cli-project cli-role
check_lacks "role assignment list after remove" cli-user -- \
  os role assignment list --names --role cli-role --user cli-user --project cli-project -f value
check "role remove --group --project" os role remove --group cli-group --project cli-project cli-role-2
check "group remove user" os group remove user cli-group cli-user
check_has "group contains user after remove says not" "cli-user not in group cli-group" -- os group contains user cli-group cli-user
check "user delete" os user delete cli-user
check_fails_after "user delete" "user show after delete fails" os user show cli-user
check "group delete" os group delete cli-group
check_fails_after "group delete" "group show after delete fails" os group show cli-group
check "role delete" os role delete cli-role cli-role-2
check_fails_after "role delete" "role show after delete fails" os role show cli-role
check "project delete" os project delete cli-project
check_fails_after "project delete" "project show after delete fails" os project show cli-project

# --- images and servers: an OCI image archive becomes a running container
# wait_status SERVER STATUS: polls `server show` until STATUS (60 s).
wait_status() {
  local i st
  for i in $(seq 1 60); do
    st=$(os server show "$1" -f value -c status 2>/dev/null)
    [ "$st" = "$2" ] && return 0
    sleep 1
  done
  echo "server $1 is $st, not $2, after 60 s"
  return 1
}
oci=$_cloud_tmp/busybox-oci.tar
check "build an OCI image archive (stratus image build-busybox)" "$STRATUS_ROOT/bin/stratus" image build-busybox --output "$oci"
# The CLI prints the image as created (queued, as with Glance); the upload follows.
check_has "image create from the OCI archive" cli-image -- \
  os image create cli-image --file "$oci" --disk-format raw --container-format docker -f value -c name
check_has "the uploaded image is active" active -- os image show cli-image -f value -c status
check_has "flavor create" cli-flavor -- os flavor create cli-flavor --vcpus 1 --ram 64 --disk 1 -f value -c name
check_has "keypair create" "PRIVATE KEY" -- os keypair create cli-key
check_has "server create --wait" ACTIVE -- \
  os server create --image cli-image --flavor cli-flavor --key-name cli-key --wait cli-server -f value -c status
check_has "console log show has the container's output" cli-server -- os console log show cli-server
check_has "console url show --serial gives the serial proxy's ws:// URL" "ws://" "/compute/serial-console?token=" -- \
  os console url show --serial cli-server -f value -c url
check "server stop" os server stop cli-server
check "server is SHUTOFF after stop" wait_status cli-server SHUTOFF
check "server start" os server start cli-server
check "server is ACTIVE after start" wait_status cli-server ACTIVE
check "server reboot --wait" os server reboot --wait cli-server
check_has "server is ACTIVE after reboot" ACTIVE -- os server show cli-server -f value -c status
check_has "server image create --wait" active -- os server image create --name cli-snapshot --wait cli-server -f value -c status
check_has "the snapshot is a container image" docker -- os image show cli-snapshot -f value -c container_format
check "server delete --wait" os server delete --wait cli-server
check_fails_after "server delete --wait" "server show after delete fails" os server show cli-server
check "image delete" os image delete cli-snapshot cli-image
check "flavor delete" os flavor delete cli-flavor
check "keypair delete" os keypair delete cli-key

# --- placement (python3-osc-placement; negotiates microversion 1.29): the agent's host is a
# resource provider with VCPU/MEMORY_MB/DISK_GB inventories; custom classes and traits round-trip.
placement_host=$(os hypervisor list -f value -c "Hypervisor Hostname" 2>/dev/null | head -n 1)
check_has "resource provider list shows the compute host" "$placement_host" -- os resource provider list -f value -c name
placement_rp=$(os resource provider list -f value -c uuid --name "$placement_host" 2>/dev/null)
check_has "resource provider inventory list" VCPU MEMORY_MB DISK_GB -- os resource provider inventory list "$placement_rp" -f value -c resource_class
check_has "resource class list" VCPU MEMORY_MB DISK_GB -- os resource class list -f value -c name
check "resource class create" os resource class create CUSTOM_CLI_GOLD
check_has "resource class show" CUSTOM_CLI_GOLD -- os resource class show CUSTOM_CLI_GOLD -f value -c name
check_has "trait list" COMPUTE_NODE -- os trait list -f value -c name
check "trait create" os trait create CUSTOM_CLI_FAST
check_has "resource provider trait set" CUSTOM_CLI_FAST COMPUTE_NODE -- \
  os resource provider trait set --trait COMPUTE_NODE --trait CUSTOM_CLI_FAST "$placement_rp" -f value -c name
check_has "allocation candidate list --resource VCPU=1" "$placement_rp" -- \
  os allocation candidate list --resource VCPU=1 -f value -c "resource provider"
check_lacks "allocation candidate list with a forbidden trait" "$placement_rp" -- \
  os allocation candidate list --resource VCPU=1 --forbidden CUSTOM_CLI_FAST -f value -c "resource provider"
check_has "resource provider usage show" VCPU -- os resource provider usage show "$placement_rp" -f value -c resource_class
check "resource provider trait delete" os resource provider trait delete "$placement_rp"
check "trait delete" os trait delete CUSTOM_CLI_FAST
check "resource class delete" os resource class delete CUSTOM_CLI_GOLD
# --- end of placement

# --- networking (Neutron v2.0 under /network): networks, subnets, ports, security groups, quotas
check_has "catalog list shows network" network "$CLOUD_URL/network" -- os catalog list -f value
check_has "extension list --network" provider -- os extension list --network -f value -c Alias
check_has "network create" cli-net vxlan 1450 -- os network create cli-net -f value -c name -c provider:network_type -c mtu
check_has "network list" cli-net -- os network list -f value -c Name
check_has "subnet create" 10.77.0.0/24 10.77.0.1 -- os subnet create --network cli-net --subnet-range 10.77.0.0/24 cli-subnet -f value -c cidr -c gateway_ip
check_has "subnet create (IPv6 SLAAC)" fd77::/64 -- \
  os subnet create --network cli-net --ip-version 6 --ipv6-ra-mode slaac --ipv6-address-mode slaac --subnet-range fd77::/64 cli-subnet6 -f value -c cidr
check_has "network show lists its subnets" cli-net -- os network show cli-net -f value -c name -c subnets
check_has "port create" 10.77.0.2 fa:16:3e -- os port create --network cli-net cli-port -f value -c fixed_ips -c mac_address
check_has "port create --fixed-ip" 10.77.0.50 -- os port create --network cli-net --fixed-ip subnet=cli-subnet,ip-address=10.77.0.50 cli-port2 -f value -c fixed_ips
check_fails_after "port create --fixed-ip" "port create with a taken address fails" \
  os port create --network cli-net --fixed-ip subnet=cli-subnet,ip-address=10.77.0.50 cli-port3
check_has "port list" cli-port cli-port2 -- os port list -f value -c Name
check_has "security group list shows default" default -- os security group list -f value -c Name
check_has "security group rule create" 22 -- os security group rule create --protocol tcp --dst-port 22 --remote-ip 0.0.0.0/0 default -f value -c port_range_min
check_fails_after "security group rule create" "a duplicate rule fails" os security group rule create --protocol tcp --dst-port 22 --remote-ip 0.0.0.0/0 default
check "network set --tag" os network set --tag cli-tag cli-net
check_has "network list --tags" cli-net -- os network list --tags cli-tag -f value -c Name
check_fails_after "port create" "network delete with ports fails" os network delete cli-net
check "port delete" os port delete cli-port cli-port2
check "subnet delete" os subnet delete cli-subnet cli-subnet6
check "network delete" os network delete cli-net
check_lacks "network list after delete" cli-net -- os network list -f value -c Name
check_has "quota show (networks)" 100 -- os quota show -c networks -f value

# --- L3 and servers on networks: the all-in-one's public/private topology, a router, a security
# group that opens and closes a port, a floating IP reached from this host, a port added to a
# running server, the metadata service, and openstacksdk's auto_ip flow.
# wait_output NAME TEXT CMD...: polls CMD (60 s) until its output contains TEXT.
wait_output() {
  local text=$1 i; shift
  for i in $(seq 1 60); do
    OUT=$("$@" 2>&1) && grep -qF -- "$text" <<<"$OUT" && return 0
    sleep 1
  done
  echo "after 60 s the output still lacks '$text':"; echo "$OUT"
  return 1
}
check_has "the all-in-one has an external network public" public -- os network list --external -f value -c Name
check_has "and a router router1 from private to public" router1 -- os router list -f value -c Name
check "network create (L3)" os network create cli-l3net
check "subnet create (L3)" os subnet create --network cli-l3net --subnet-range 10.78.0.0/24 cli-l3sub
check "router create" os router create cli-router
check "router set --external-gateway public" os router set --external-gateway public cli-router
check_has "router show has its gateway with SNAT" '"enable_snat": true' -- os router show cli-router -f json -c external_gateway_info
check "router add subnet" os router add subnet cli-router cli-l3sub
check_fails_after "router add subnet" "router add subnet twice fails" os router add subnet cli-router cli-l3sub
# IPv6: a SLAAC subnet on the router, advertised by the router's radvd; one whose RAs come from
# a router outside the cloud (address mode only) is refused, as Neutron refuses it
check "subnet create (IPv6 SLAAC, L3)" os subnet create --network cli-l3net --ip-version 6 --ipv6-ra-mode slaac --ipv6-address-mode slaac \
  --subnet-range fd78::/64 cli-l3sub6
check "router add subnet (IPv6 SLAAC)" os router add subnet cli-router cli-l3sub6
check "subnet create (IPv6, RAs from outside)" os subnet create --network cli-l3net --ip-version 6 --ipv6-address-mode slaac --subnet-range fd79::/64 cli-l3sub6x
check_fails_after "subnet create (IPv6, RAs from outside)" "router add subnet refuses an IPv6 subnet with an address mode but no RA mode" \
  os router add subnet cli-router cli-l3sub6x
check "subnet delete (IPv6, RAs from outside)" os subnet delete cli-l3sub6x
router_id=$(os router show cli-router -f value -c id 2>/dev/null)
check "the router's radvd advertises the SLAAC prefix" wait_output 'prefix fd78::/64' cat "${CLOUD_DIR:-}/agent/network/radvd/$router_id/radvd.conf"
check "security group create" os security group create cli-sg
check "security group rule create --dst-port 80" os security group rule create --ingress --protocol tcp --dst-port 80 cli-sg -f value -c id
sg_rule=$OUT
check "security group rule create --ethertype IPv6 --dst-port 80" os security group rule create --ingress --ethertype IPv6 --protocol tcp --dst-port 80 cli-sg
udata=$_cloud_tmp/cli-userdata.sh
# as cloud-init does, it retries while the network comes up (the port is plugged beside the container's start)
cat >"$udata" <<'EOF'
#!/bin/sh
for i in $(seq 1 30); do wget -qO- http://169.254.169.254/openstack/latest/meta_data.json && exit 0; sleep 1; done
echo "metadata: unreachable"; ip addr; ip route
EOF
check_has "server create --nic net-id --security-group --user-data" ACTIVE -- \
  os server create --image busybox --flavor c1.container --nic net-id=cli-l3net --security-group cli-sg \
  --user-data "$udata" --wait cli-web -f value -c status
check_has "server show lists its fixed address" 10.78.0. -- os server show cli-web -f value -c addresses
check_has "server show lists its SLAAC address" fd78:: -- os server show cli-web -f value -c addresses
web_id=$(os server show cli-web -f value -c id 2>/dev/null)
web6=$(os port list --server cli-web -f value -c 'Fixed IP Addresses' 2>/dev/null | grep -o "fd78:[0-9a-f:]*" | head -n 1)
check "the server answers on its IPv6 address from the router's namespace (port 80)" \
  wait_output cli-web ip netns exec "qrouter-$router_id" curl -s -m 3 -g "http://[$web6]/"
check "the server reads its own meta_data.json from 169.254.169.254" wait_output "$web_id" os console log show cli-web
check "floating ip create public" os floating ip create public -f value -c floating_ip_address
fip=$OUT
check "server add floating ip" os server add floating ip cli-web "$fip"
check_has "server show lists the floating ip" "$fip" -- os server show cli-web -f value -c addresses
check "the floating ip reaches the server from this host (port 80 open)" wait_output cli-web curl -s -m 3 "http://$fip/"
check "security group rule delete" os security group rule delete "$sg_rule"
# the change reaches the host's agent at the fleet's next recheck: closed within 30 s
port_closed() {
  local i
  for i in $(seq 1 30); do curl -s -m 2 -o /dev/null "$1" || return 0; sleep 1; done
  echo "$1 still answers after 30 s"; return 1
}
check "with the rule gone port 80 is closed" port_closed "http://$fip/"
check "port create (L3)" os port create --network cli-l3net cli-l3port
check "server add port" os server add port cli-web cli-l3port
check "the added port belongs to the server" wait_output "$web_id" os port show cli-l3port -f value -c device_id
check "server remove port" os server remove port cli-web cli-l3port
check "server remove floating ip" os server remove floating ip cli-web "$fip"
check "floating ip delete" os floating ip delete "$fip"
check "server delete --wait (L3)" os server delete --wait cli-web
check "router remove subnet" os router remove subnet cli-router cli-l3sub
check "router remove subnet (IPv6)" os router remove subnet cli-router cli-l3sub6
check "the router's radvd stops with its last IPv6 subnet" wait_output gone sh -c "[ -e '${CLOUD_DIR:-}/agent/network/radvd/$router_id' ] || echo gone"
check "router unset --external-gateway" os router unset --external-gateway cli-router
check "router delete" os router delete cli-router
check "port delete (L3)" os port delete cli-l3port
check "network delete (L3)" os network delete cli-l3net
check "security group delete" os security group delete cli-sg
check_has "openstacksdk create_server(auto_ip=True) ends ACTIVE with a fixed and a floating address" "ACTIVE fixed floating" -- \
  env PATH="$DEBIAN_PATH" OS_CLIENT_CONFIG_FILE="$OS_CLOUDS_FILE" python3 "$STRATUS_ROOT/conformance/sdk_server.py"
# --- end of L3

# --- virtual machines: the small guest image `stratus up` imports (stratus-tiny, built from Debian
# packages in the background), booted under the host's accelerator (TCG here) on the all-in-one's
# private network with a key pair; a container on the same network reaches it, SSH through a floating
# IP logs in with the key, the noVNC console page is served, stop/start, a resize confirmed, a volume attached
# to the container and then to the VM, and the delete leaves no qemu.
# wait_long SECONDS TEXT CMD...: as wait_output, with its own limit (a VM boots slowly under TCG).
wait_long() {
  local limit=$1 text=$2 i; shift 2
  for ((i = 0; i < limit; i += 2)); do
    OUT=$("$@" 2>&1) && grep -qF -- "$text" <<<"$OUT" && return 0
    sleep 2
  done
  echo "after $limit s the output still lacks '$text':"; echo "$OUT"
  return 1
}
check "hypervisor list shows QEMU" wait_output QEMU os hypervisor list -f value -c 'Hypervisor Type'
check "the small VM image stratus-tiny is imported (active)" wait_long 600 active os image show stratus-tiny -f value -c status
vmkey=$_cloud_tmp/cli-vm-key
check "keypair create (VM)" sh -c "env PATH='$DEBIAN_PATH' OS_CLIENT_CONFIG_FILE='$OS_CLOUDS_FILE' openstack --os-cloud stratus keypair create cli-vmkey >'$vmkey' && chmod 600 '$vmkey'"
check "security group create (VM)" os security group create cli-vmsg
check "security group rule create (VM: SSH)" os security group rule create --ingress --protocol tcp --dst-port 22 cli-vmsg
check "security group rule create (VM: ICMP)" os security group rule create --ingress --protocol icmp cli-vmsg
vmudata=$_cloud_tmp/cli-vm-userdata.sh
vm_marker=cli-vm-userdata-$RANDOM$RANDOM
printf '#!/bin/sh\necho %s\n' "$vm_marker" >"$vmudata"
check_has "server create --image stratus-tiny --key-name --network private --wait" ACTIVE -- \
  os server create --image stratus-tiny --flavor m1.nano --key-name cli-vmkey --network private --security-group cli-vmsg \
  --user-data "$vmudata" --wait cli-vm -f value -c status
vm_id=$(os server show cli-vm -f value -c id 2>/dev/null)
vm_ip=$(os server show cli-vm -f json -c addresses 2>/dev/null | grep -o '10\.[0-9.]*' | head -n 1)
vm_port=$(os port list --server cli-vm -f value -c ID 2>/dev/null | head -n 1)
check_has "the VM's port is a tap" tap -- os port show "$vm_port" -f value -c binding_vif_type
check "the VM boots, leases its address and says it is ready" wait_long 300 "ready: " os console log show cli-vm
check_has "the VM leased the address its port has" "$vm_ip" -- os console log show cli-vm
check "the VM ran its user data" wait_long 120 "$vm_marker" os console log show cli-vm
# a container on the same network pings the VM (both in cli-vmsg: ICMP open)
pudata=$_cloud_tmp/cli-ping-userdata.sh
printf '#!/bin/sh\nfor i in $(seq 1 60); do ping -c 1 -W 1 %s >/dev/null 2>&1 && echo ping-vm: ok && exec sleep 3600; sleep 1; done\necho ping-vm: no answer\n' "$vm_ip" >"$pudata"
check_has "server create (a container beside the VM)" ACTIVE -- \
  os server create --image busybox --flavor c1.container --network private --security-group cli-vmsg --user-data "$pudata" --wait cli-vmpeer -f value -c status
check "the container pings the VM" wait_long 120 "ping-vm: ok" os console log show cli-vmpeer
check "floating ip create (VM)" os floating ip create public -f value -c floating_ip_address
vm_fip=$OUT
check "server add floating ip (VM)" os server add floating ip cli-vm "$vm_fip"
check "this host pings the VM's floating ip" wait_long 60 "1 received" ping -c 1 -W 1 "$vm_fip"
# the guest names itself after the server (the metadata's hostname)
check "ssh with the key pair through the floating ip logs in" wait_long 120 "logged-in-as-root@cli-vm" \
  ssh -i "$vmkey" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o ConnectTimeout=5 -o BatchMode=yes \
  "root@$vm_fip" 'echo "logged-in-as-$(id -un)@$(hostname)"'
check "console url show --novnc" os console url show --novnc cli-vm -f value -c url
novnc_url=$OUT
check_has "the noVNC page is served" 200 -- http_status "$novnc_url"
check_has "console url show --serial (VM)" ws -- os console url show --serial cli-vm -f value -c url
check_has "server stop (VM: ACPI power-down)" SHUTOFF -- sh -c "env PATH='$DEBIAN_PATH' OS_CLIENT_CONFIG_FILE='$OS_CLOUDS_FILE' openstack --os-cloud stratus server stop cli-vm && for i in \$(seq 1 90); do s=\$(env PATH='$DEBIAN_PATH' OS_CLIENT_CONFIG_FILE='$OS_CLOUDS_FILE' openstack --os-cloud stratus server show cli-vm -f value -c status); [ \"\$s\" = SHUTOFF ] && break; sleep 2; done; echo \$s"
check_has "server start (VM)" ACTIVE -- sh -c "env PATH='$DEBIAN_PATH' OS_CLIENT_CONFIG_FILE='$OS_CLOUDS_FILE' openstack --os-cloud stratus server start cli-vm && for i in \$(seq 1 90); do s=\$(env PATH='$DEBIAN_PATH' OS_CLIENT_CONFIG_FILE='$OS_CLOUDS_FILE' openstack --os-cloud stratus server show cli-vm -f value -c status); [ \"\$s\" = ACTIVE ] && break; sleep 2; done; echo \$s"
# settled_status SERVER: the server's status once no task runs (a resize, its confirmation)
settled_status() {
  local i s t
  for i in $(seq 1 150); do
    s=$(os server show "$1" -f value -c status 2>&1); t=$(os server show "$1" -f value -c OS-EXT-STS:task_state 2>&1)
    { [ "$t" = None ] || [ -z "$t" ]; } && [ "$s" != RESIZE ] && break
    sleep 2
  done
  echo "$s"
}
# resize (cold, to the same host): the VM restarts with the new flavor's memory, VERIFY_RESIZE until confirmed
check "server resize --flavor m1.micro (VM)" os server resize --flavor m1.micro cli-vm
check_has "the resized VM waits for confirmation (VERIFY_RESIZE)" VERIFY_RESIZE -- settled_status cli-vm
check "server resize confirm (VM)" os server resize confirm cli-vm
check_has "the VM is ACTIVE on m1.micro" ACTIVE -- settled_status cli-vm
check_has "server show: the new flavor" m1.micro -- os server show cli-vm -f value -c flavor

# --- volumes (Cinder v3 under /volume, the file backend of the all-in-one's agent): one volume
# attached to the running container, then to the running VM, which sees a disk; detached, deleted.
check "volume create --size 1" os volume create --size 1 cli-vol
check "the volume becomes available" wait_output available os volume show cli-vol -f value -c status
vol_id=$(os volume show cli-vol -f value -c id 2>/dev/null)
check "server add volume (container)" os server add volume cli-vmpeer cli-vol
check "the volume is in-use" wait_output in-use os volume show cli-vol -f value -c status
check_has "server volume list (container) shows it" "$vol_id" -- os server volume list cli-vmpeer -f value
check_has "a loop device holds the volume for the container" "$vol_id" -- losetup -a
check_fails_after "server add volume (container)" "an in-use volume is not attached twice" os server add volume cli-vm cli-vol
check "server remove volume (container)" os server remove volume cli-vmpeer cli-vol
check "the volume is available again" wait_output available os volume show cli-vol -f value -c status
check_lacks "no loop device holds the volume any more" "$vol_id" -- losetup -a
check "server add volume (VM)" os server add volume cli-vm cli-vol
check "the volume is in-use by the VM" wait_output in-use os volume show cli-vol -f value -c status
check "the VM (booted again after its resize) sees a second disk, vdb" wait_long 300 vdb \
  ssh -i "$vmkey" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o ConnectTimeout=5 -o BatchMode=yes "root@$vm_fip" 'cat /proc/partitions'
check "server remove volume (VM)" os server remove volume cli-vm cli-vol
check "the volume is available after the VM's detach" wait_long 120 available os volume show cli-vol -f value -c status
# backups: to the object store, restored into a new volume, deleted
check "volume backup create" os volume backup create --name cli-backup cli-vol
check "the backup becomes available" wait_long 300 available os volume backup show cli-backup -f value -c status
check_has "volume backup list shows it" cli-backup -- os volume backup list -f value -c Name
# Debian's OSC 6.0 returns the restore's answer where cliff wants (columns, data): the restore is made, then the
# CLI fails with "cannot unpack non-iterable VolumeBackupsRestore object" (a client bug, fixed in later OSC). The
# check passes on success or on that one line; the restored volume is checked next.
restore_backup() {
  local out
  out=$(os volume backup restore "$@" 2>&1) && return 0
  echo "$out"
  [ "$out" = "cannot unpack non-iterable VolumeBackupsRestore object" ]
}
check "volume backup restore into a new volume" restore_backup cli-backup cli-vol-restored
check "the restored volume becomes available" wait_long 300 available os volume show cli-vol-restored -f value -c status
check "volume backup delete" os volume backup delete cli-backup
check "volume delete (restored)" os volume delete cli-vol-restored
check "volume delete" os volume delete cli-vol
volume_gone() { local i; for i in $(seq 1 60); do os volume show "$1" >/dev/null 2>&1 || return 0; sleep 1; done; echo "volume $1 still there"; return 1; }
check "the volume is gone" volume_gone cli-vol
check "the restored volume is gone" volume_gone cli-vol-restored
# --- end of volumes
check "server remove floating ip (VM)" os server remove floating ip cli-vm "$vm_fip"
check "floating ip delete (VM)" os floating ip delete "$vm_fip"
check "server delete --wait (VM and container)" os server delete --wait cli-vm cli-vmpeer
check "no qemu is left for the VM, nor its state" sh -c "! ps -eo comm=,args= | awk '\$1 ~ /^qemu-system/' | grep -qF '$vm_id' && [ ! -e '$CLOUD_DIR/agent/vm/servers/$vm_id' ]"
check "security group delete (VM)" os security group delete cli-vmsg
check "keypair delete (VM)" os keypair delete cli-vmkey
# --- end of virtual machines

checks_summary
