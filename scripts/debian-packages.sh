# Sourced (POSIX sh): ensure_debian_packages PKG... installs the Debian packages
# that are not installed yet (one apt-get update, then install), as root.
# Returns non-zero when it could not.
ensure_debian_packages() {
  _missing=
  for _p in "$@"; do
    case " $_missing " in *" $_p "*) continue ;; esac
    [ "$(dpkg-query -W -f='${db:Status-Status}' "$_p" 2>/dev/null)" = installed ] || _missing="$_missing $_p"
  done
  [ -z "$_missing" ] && return 0
  if [ "$(id -u)" != 0 ]; then
    echo "stratus: not root, cannot install$_missing" >&2
    return 1
  fi
  echo "stratus: installing$_missing" >&2
  # shellcheck disable=SC2086
  { DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=600 $_missing; } </dev/null >&2
}

# What a host running an agent needs: the container runtime, netns/veth tools,
# the default image's busybox, nsenter/mount (util-linux), xattr tools, the
# containers' seccomp profile (Podman's /usr/share/containers/seccomp.json) and
# btrfs-progs (the flavor disk limit: a btrfs qgroup per server), and for
# tenant networks nftables (security groups and routers' NAT), dnsmasq-base
# (DHCP/DNS), haproxy (the metadata service's proxy in each DHCP namespace),
# iputils-arping (routers' gratuitous ARP for floating IPs), conntrack (a
# router forgets the connections of a floating IP that goes) and radvd (router
# advertisements on routers' IPv6 interfaces), and for virtual machines
# qemu-system-x86 (SeaBIOS and the iPXE ROMs come with it), qemu-utils
# (qemu-img: overlays, conversion, snapshots) and genisoimage (config drives).
STRATUS_HOST_PACKAGES="runc iproute2 busybox-static util-linux attr golang-github-containers-common btrfs-progs nftables dnsmasq-base haproxy iputils-arping conntrack radvd qemu-system-x86 qemu-utils genisoimage bzip2"

# What building the small VM guest image (`stratus image build-tiny`, imported
# by `stratus up` as stratus-tiny; docs/guest-images.md) needs: the guest's
# busybox and dropbear (with the shared libraries ldd finds on this host), kmod
# (depmod and modprobe --show-depends order the kernel modules), and the boot
# disk's tools: a FAT file system (dosfstools, mtools) with SYSLINUX on it
# (syslinux installs into the FAT image without mounting it; syslinux-common
# has the MBR and ldlinux.c32), converted to qcow2 by qemu-img (qemu-utils).
# The kernel itself comes from `apt-get download` of linux-image-amd64's
# dependency, never installed on the host.
STRATUS_GUEST_IMAGE_PACKAGES="busybox-static dropbear-bin kmod dosfstools mtools syslinux syslinux-common qemu-utils"

# `stratus image build-debian` (a Debian 12 cloud image with cloud-init) also
# needs debootstrap (and e2fsprogs, always installed, for mkfs.ext4 -d).
STRATUS_DEBIAN_IMAGE_PACKAGES="debootstrap"

# The object storage clients the conformance flows drive (conformance/object-cli.sh): the
# `swift` CLI, `aws` (s3, s3api, presign), s3cmd, boto3 for a script, and skopeo and
# podman against the OCI registry.
STRATUS_OBJECT_CLIENT_PACKAGES="python3-swiftclient awscli s3cmd python3-boto3 skopeo podman"

# The reference Swift that `bin/bench object` measures beside Stratus (the team's peer
# scripts: Debian's Keystone under uwsgi on MariaDB with memcached, and Swift's proxy,
# account, container and object servers with Keystone authentication).
STRATUS_SWIFT_PEER_PACKAGES="swift swift-proxy swift-account swift-container swift-object python3-swiftclient python3-keystonemiddleware memcached python3-memcache keystone python3-openstackclient uwsgi-core uwsgi-plugin-python3 mariadb-server python3-pymysql curl skopeo"

# Bare metal, one list for every suite and host that needs part of it:
#   a conductor host (`stratus agent --baremetal`): ipmitool (the IPMI BMC client,
#     `-I lanplus`), ipxe (undionly.kpxe served over TFTP), xorriso, isolinux and
#     syslinux-common (the deploy ramdisk's ISO for Redfish virtual media);
#   `stratus baremetal virtual create` (src/vbmc): openipmi (ipmi_sim, the
#     virtual IPMI BMC), socat (each machine's serial port relayed to a TCP port:
#     ipmi_sim's Serial over LAN, the Redfish Telnet serial console),
#     qemu-system-x86 (with ipxe-qemu, the NIC's boot ROM) and openssl (the
#     Redfish emulator's certificate), from the host list;
#   the data-plane tests (test/dataplane/vbmc-*.test.ts, baremetal-*.test.ts):
#     all of the above, plus redfishtool and python3-sushy, the Debian Redfish
#     clients that judge the emulator;
#   the CLI flow: python3-ironicclient (`openstack baremetal ...`);
#   the unit suite: openipmi and ipmitool (test/unit/vbmc-ipmi.test.ts; bin/test names them).
STRATUS_BAREMETAL_PACKAGES="openipmi socat ipmitool ipxe xorriso isolinux syslinux-common redfishtool python3-sushy python3-ironicclient"

# The dashboard's tests in a real browser (test/browser, bin/test's `browser` suite): Debian's
# chromium, driven by playwright-core from npm, and a font for its screenshots.
STRATUS_BROWSER_PACKAGES="chromium fonts-dejavu-core"
