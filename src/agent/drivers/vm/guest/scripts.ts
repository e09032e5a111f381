// The text of the small guest's boot: busybox init runs /etc/init.d/rcS, which
// loads the kernel modules, leases addresses by DHCP (udhcpc), reads the SSH
// keys, host name and user data from the config drive (a `config-2` ISO 9660
// or FAT disk with openstack/latest/meta_data.json and user_data) or else the
// metadata service (http://169.254.169.254/openstack/latest/...), installs the
// keys for root, starts dropbear on port 22, says `stratus-guest: ready`, and
// runs the user data when it is a script (#!). acpid turns the ACPI power
// button into `poweroff`. Every step prints a `stratus-guest: ...` line on the
// console (ttyS0), which tests and users read from the console log.
//
// The JSON parsing is a few sed/grep lines in functions.sh, which the unit
// tests run with the host's busybox.

/** String.raw, with a backslash before `${` standing for a shell's `${` (not a substitution). */
const sh = (s: TemplateStringsArray, ...v: unknown[]): string => String.raw(s, ...v).replace(/\\\$\{/g, '${');

/** Prefix of every line the guest prints about its boot. */
export const MARKER = 'stratus-guest:';
/** The line the guest prints once dropbear runs and its keys are installed. */
export const READY_MARKER = `${MARKER} ready`;

/** /etc/stratus/functions.sh: shared by rcS, the DHCP script and the power-button handler. */
export const FUNCTIONS_SH = sh`# stratus-guest shell functions (busybox sh)
say() { echo "${MARKER} $*" >/dev/console 2>/dev/null || echo "${MARKER} $*"; }
uptime_s() { cut -d' ' -f1 /proc/uptime 2>/dev/null; }
# json_str KEY FILE: the string value of the first "KEY": "..." in a JSON file (one without commas in it)
json_str() { tr ',{}' '\n\n\n' < "$2" 2>/dev/null | sed -n 's/^[[:space:]]*"'"$1"'"[[:space:]]*:[[:space:]]*"\([^"]*\)".*$/\1/p' | head -n 1; }
# ssh_keys FILE: the OpenSSH public keys in a meta_data.json, one a line, each once
ssh_keys() {
  grep -oE '"(ssh-(rsa|dss|ed25519)|ecdsa-sha2-nistp(256|384|521)|sk-[a-z0-9@.-]+) [^"]+"' "$1" 2>/dev/null |
    sed -e 's/^"//' -e 's/"$//' -e 's#\\/#/#g' -e 's/\\[nr]//g' | awk 'NF && !seen[$0]++'
}
# is_script FILE: true when FILE starts with #!
is_script() { [ -s "$1" ] && [ "$(head -c 2 "$1")" = '#!' ]; }
# load_modules LIST: insmod every module named in LIST (a file), in order
load_modules() { while read -r m; do [ -n "$m" ] && insmod "/lib/modules/$m" 2>/dev/null; done < "$1"; }
`;

/** /etc/inittab (busybox init): rcS once, a root shell on the serial console and the first VT, rcK at power-off. */
export const INITTAB = `::sysinit:/etc/init.d/rcS
ttyS0::respawn:-/bin/sh
tty1::respawn:-/bin/sh
::ctrlaltdel:/sbin/reboot
::shutdown:/etc/init.d/rcK
`;

/** /etc/init.d/rcS: the boot. */
export const RCS = sh`#!/bin/sh
export PATH=/sbin:/bin:/usr/sbin:/usr/bin
. /etc/stratus/functions.sh
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mkdir -p /dev/pts /dev/shm /run/stratus /var/log /mnt/config
mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts /dev/pts
say "booting: kernel $(uname -r), uptime $(uptime_s) s"
hostname stratus-guest
ip link set lo up
# DHCP on every NIC (udhcpc in the background, it keeps trying), started as soon as eth0
# exists while the other modules still load; eth0's lease is waited for below
M=/run/stratus
dhcp_all() {
  for d in /sys/class/net/eth*; do
    [ -e "$d" ] || continue
    i=\${d##*/}
    [ -e $M/dhcp-$i ] && continue
    : > $M/dhcp-$i
    say "$i mac $(cat "$d/address")"
    ip link set "$i" up
    udhcpc -i "$i" -s /usr/share/udhcpc/default.script -t 30 -T 1 -A 1 -b -O mtu -O staticroutes -x hostname:stratus-guest >/var/log/udhcpc-$i.log 2>&1 &
  done
}
load_modules /lib/modules/early.order &
loader=$!
while [ ! -e /sys/class/net/eth0 ] && kill -0 $loader 2>/dev/null; do sleep 0.05; done
dhcp_all
wait $loader
say "modules loaded, uptime $(uptime_s) s"
acpid -c /etc/acpi -l /var/log/acpid.log
dhcp_all

# meanwhile, the config drive: a disk labelled config-2 (ISO 9660 or FAT); a CD-ROM may take
# a moment to appear: looked for during 3 s now, and again between the metadata service's tries
src=
config_drive() {
  dev=$(findfs LABEL=config-2 2>/dev/null || findfs LABEL=CONFIG-2 2>/dev/null)
  [ -n "$dev" ] || return 1
  if mount -o ro -t iso9660 "$dev" /mnt/config 2>/dev/null || mount -o ro -t vfat "$dev" /mnt/config 2>/dev/null; then
    for f in meta_data.json user_data network_data.json vendor_data.json; do
      [ -f /mnt/config/openstack/latest/$f ] && cp /mnt/config/openstack/latest/$f $M/$f
    done
    umount /mnt/config
    src="config drive $dev"
    return 0
  fi
  [ -z "$cd_bad" ] && say "cannot mount the config drive $dev"
  cd_bad=1
  return 1
}
end=$(( $(cut -d. -f1 /proc/uptime) + 3 ))
until config_drive || [ "$(cut -d. -f1 /proc/uptime)" -ge $end ]; do sleep 0.2; done

# the lease on eth0
n=0; while [ $n -lt 300 ] && ! ip -4 addr show dev eth0 2>/dev/null | grep -q inet; do sleep 0.1; n=$((n + 1)); done
ip -4 addr show dev eth0 2>/dev/null | grep -q inet || say "eth0 has no address yet"

# else the metadata service: a few tries (a cloud's answers at once; a network without one
# costs about 10 s), the config drive looked for again before each (IDE CD-ROMs are slow to appear)
if [ -z "$src" ]; then
  U=http://169.254.169.254/openstack/latest
  n=0
  while [ $n -lt 3 ]; do
    config_drive && break
    if timeout 3 wget -q -O $M/meta_data.json.part $U/meta_data.json 2>/dev/null && [ -s $M/meta_data.json.part ]; then
      mv $M/meta_data.json.part $M/meta_data.json
      timeout 10 wget -q -O $M/user_data $U/user_data 2>/dev/null || rm -f $M/user_data
      src="metadata service $U"
      break
    fi
    sleep 1; n=$((n + 1))
  done
  rm -f $M/meta_data.json.part
fi

if [ -n "$src" ]; then
  say "metadata from the $src"
  uuid=$(json_str uuid $M/meta_data.json)
  h=$(json_str hostname $M/meta_data.json)
  [ -n "$uuid" ] && say "instance $uuid"
  if [ -n "$h" ]; then h=\${h%%.*}; hostname "$h"; say "hostname $h"; fi
  mkdir -p /root/.ssh && chmod 700 /root/.ssh
  ssh_keys $M/meta_data.json > /root/.ssh/authorized_keys
  chmod 600 /root/.ssh/authorized_keys
  say "installed $(grep -c . /root/.ssh/authorized_keys) SSH key(s) for root"
else
  say "no config drive and no metadata service: no SSH key, no user data"
fi
printf '127.0.0.1\tlocalhost\n127.0.1.1\t%s\n' "$(hostname)" > /etc/hosts

# the SSH server (host keys made now, each boot: one VM image, many servers)
mkdir -p /etc/dropbear
for t in ed25519 ecdsa; do dropbearkey -t $t -f /etc/dropbear/dropbear_\${t}_host_key >/dev/null 2>&1; done
echo "-----BEGIN SSH HOST KEY KEYS-----" >/dev/console
for t in ed25519 ecdsa; do dropbearkey -y -f /etc/dropbear/dropbear_\${t}_host_key 2>/dev/null | grep -E '^(ssh|ecdsa)-' >/dev/console; done
echo "-----END SSH HOST KEY KEYS-----" >/dev/console
if dropbear -r /etc/dropbear/dropbear_ed25519_host_key -r /etc/dropbear/dropbear_ecdsa_host_key -p 22 -s -P /run/dropbear.pid; then
  say "dropbear listening on port 22"
else
  say "dropbear did not start"
fi
say "ready: $(hostname) $(ip -4 -o addr show dev eth0 2>/dev/null | awk '{print $4}' | head -n 1), uptime $(uptime_s) s"

if is_script $M/user_data; then
  cp $M/user_data $M/user-data.sh && chmod 700 $M/user-data.sh
  say "running the user data"
  ( $M/user-data.sh >/dev/console 2>&1; say "user data exited with $?" ) &
fi
( load_modules /lib/modules/late.order ) &
`;

/** /etc/init.d/rcK: power-off (busybox init runs it before killing everything). */
export const RCK = `#!/bin/sh
. /etc/stratus/functions.sh
say "powering off"
[ -f /run/dropbear.pid ] && kill "$(cat /run/dropbear.pid)" 2>/dev/null
sync
`;

/** udhcpc's script: addresses, MTU, routes (RFC 3442 static routes first, then the router), DNS. */
export const UDHCPC_SCRIPT = sh`#!/bin/sh
. /etc/stratus/functions.sh
ev=$1
case "$ev" in
  deconfig)
    ip -4 addr flush dev "$interface"
    ip link set "$interface" up
    ;;
  bound|renew)
    [ "$ev" = bound ] && ip -4 addr flush dev "$interface"
    [ -n "$mtu" ] && ip link set dev "$interface" mtu "$mtu"
    ip addr replace "$ip/$mask" dev "$interface"
    if [ -n "$staticroutes" ]; then
      set -- $staticroutes
      while [ $# -ge 2 ]; do
        if [ "$1" = 0.0.0.0/0 ]; then ip route replace default via "$2" dev "$interface"; else ip route replace "$1" via "$2" dev "$interface"; fi
        shift 2
      done
    elif [ -n "$router" ] && { [ "$interface" = eth0 ] || ! ip route show default | grep -q .; }; then
      ip route replace default via "\${router%% *}" dev "$interface"
    fi
    if [ -n "$dns" ] && [ "$interface" = eth0 ]; then
      { [ -n "$domain" ] && echo "search $domain"; for s in $dns; do echo "nameserver $s"; done; } > /etc/resolv.conf
    fi
    [ "$ev" = bound ] && say "$interface leased $ip/$mask router \${router:-none} mtu \${mtu:-default}, uptime $(uptime_s) s"
    ;;
esac
exit 0
`;

/** busybox acpid's handler of the power button (event PWRF/00000080). */
export const POWER_BUTTON = `#!/bin/sh
. /etc/stratus/functions.sh
say "ACPI power button: powering off"
poweroff
`;

/**
 * Commands test suites run in a guest that busybox lacks (Tempest's remote client runs `sudo …`,
 * `curl URL`, `curl -X POST -d DATA URL`, `lsblk -lb --nodeps`, `blkid -L config-2 -o device`, as on
 * CirrOS): small scripts over busybox, each doing what those calls need and refusing the rest.
 */
/** sudo: root's guest has one user, root; the command runs as is. */
export const SUDO = `#!/bin/sh
# the guest's only user is root: run the command as it is
while [ $# -gt 0 ]; do case $1 in -E|-H|-n|-S|--) shift ;; -u) [ "$2" = root ] || { echo "sudo: no user $2" >&2; exit 1; }; shift 2 ;; *) break ;; esac; done
[ $# -gt 0 ] || { echo "usage: sudo COMMAND..." >&2; exit 1; }
exec "$@"
`;
/** curl over busybox wget: GET (or POST with -d) one URL, the body on stdout. */
export const CURL = sh`#!/bin/sh
# curl [-s] [-S] [-f] [-L] [-X GET|POST] [-d DATA] [-o FILE] URL: busybox wget underneath
method= data= out=- url= fail=
while [ $# -gt 0 ]; do
  case $1 in
    -s|-S|-sS|-L|-sL|--silent|--show-error|--location) shift ;;
    -f|-sf|-fs|-sSf|-fsS|--fail) fail=1; shift ;;
    -X|--request) method=$2; shift 2 ;;
    -d|--data|--data-raw|--data-binary) data=$2; method=\${method:-POST}; shift 2 ;;
    -o|--output) out=$2; shift 2 ;;
    -*) echo "curl: option $1 is not supported in this guest" >&2; exit 2 ;;
    *) url=$1; shift ;;
  esac
done
[ -n "$url" ] || { echo "curl: no URL" >&2; exit 2; }
case \${method:-GET} in
  GET) wget -q -O "$out" "$url" ;;
  POST) wget -q -O "$out" --post-data "$data" "$url" ;;
  *) echo "curl: method $method is not supported in this guest" >&2; exit 2 ;;
esac
rc=$?
# curl without -f exits 0 on an HTTP error; busybox wget exits 1 for it (and for a connection it could not make)
if [ $rc != 0 ] && [ -n "$fail" ]; then exit $rc; fi
exit 0
`;
/** lsblk: the block devices from /sys/block, in util-linux's columns (-b: sizes in bytes; -l, --nodeps: the only form). */
export const LSBLK = sh`#!/bin/sh
# lsblk [-l] [-b] [--nodeps] [-d] [--fs] [--ascii]: whole disks from /sys/block, util-linux's column layout
bytes= fs=
for a in "$@"; do case $a in -b|--bytes|-lb|-bl) bytes=1 ;; -f|--fs) fs=1 ;; -l|--list|-d|--nodeps|-a|--ascii|-ld|-dl) ;; *) echo "lsblk: option $a is not supported in this guest" >&2; exit 2 ;; esac; done
human() { awk -v b="$1" 'BEGIN { split("B K M G T", u); i = 1; while (b >= 1024 && i < 5) { b /= 1024; i++ } printf (b == int(b) ? "%d%s" : "%.1f%s"), b, u[i] }'; }
if [ -n "$fs" ]; then printf '%-7s %-8s %-11s\n' NAME FSTYPE LABEL; else printf '%-7s %-7s %2s %12s %2s %-4s %s\n' NAME MAJ:MIN RM SIZE RO TYPE MOUNTPOINTS; fi
for d in /sys/block/*; do
  n=\${d##*/}
  case $n in loop*|ram*) continue ;; esac
  if [ -n "$fs" ]; then
    t=$(findfs LABEL=config-2 2>/dev/null)
    if [ "$t" = /dev/$n ]; then printf '%-7s %-8s %-11s\n' "$n" iso9660 config-2; else printf '%-7s %-8s %-11s\n' "$n" '' ''; fi
    continue
  fi
  size=$(( $(cat "$d/size") * 512 ))
  [ -n "$bytes" ] || size=$(human $size)
  type=disk; case $n in sr*) type=rom ;; esac
  mp=$(awk -v dev=/dev/$n '$1 == dev { print $2; exit }' /proc/mounts)
  printf '%-7s %-7s %2s %12s %2s %-4s %s\n' "$n" "$(cat "$d/dev")" "$(cat "$d/removable")" "$size" "$(cat "$d/ro")" "$type" "$mp"
done
`;
/** blkid -L LABEL [-o device]: the device with that label (busybox findfs); the only form. */
export const BLKID = `#!/bin/sh
# blkid -L LABEL [-o device]: the device holding the file system labelled LABEL
label=
while [ $# -gt 0 ]; do case $1 in -L) label=$2; shift 2 ;; -o) [ "$2" = device ] || { echo "blkid: -o $2 is not supported in this guest" >&2; exit 2; }; shift 2 ;; *) echo "blkid: only -L LABEL is supported in this guest" >&2; exit 2 ;; esac; done
[ -n "$label" ] || { echo "usage: blkid -L LABEL [-o device]" >&2; exit 2; }
findfs "LABEL=$label" 2>/dev/null || exit 2
`;

/** The boot loader's kernel command line: kernel messages on the VGA and the serial console (the last one is /dev/console). */
export const KERNEL_CMDLINE = 'console=tty0 console=ttyS0,115200n8 panic=10 loglevel=4';

/** Plain files of the guest's /etc and /root, with their modes. */
export const ETC_FILES: ReadonlyArray<[string, string, number]> = [
  ['etc/passwd', 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n', 0o644],
  ['etc/shadow', 'root:*:19000:0:99999:7:::\nnobody:*:19000:0:99999:7:::\n', 0o600],
  ['etc/group', 'root:x:0:\ntty:x:5:\nnogroup:x:65534:\n', 0o644],
  ['etc/shells', '/bin/sh\n/bin/ash\n', 0o644],
  ['etc/hosts', '127.0.0.1\tlocalhost\n', 0o644],
  ['etc/profile', 'export PATH=/sbin:/bin:/usr/sbin:/usr/bin\nexport PS1=\'\\u@\\h:\\w\\$ \'\n', 0o644],
  ['etc/os-release', 'NAME="Stratus tiny"\nID=stratus-tiny\nPRETTY_NAME="Stratus tiny guest (Debian kernel, busybox, dropbear)"\n', 0o644],
  ['etc/inittab', INITTAB, 0o644],
  ['etc/init.d/rcS', RCS, 0o755],
  ['etc/init.d/rcK', RCK, 0o755],
  ['etc/stratus/functions.sh', FUNCTIONS_SH, 0o644],
  ['etc/acpi/PWRF/00000080', POWER_BUTTON, 0o755],
  ['usr/share/udhcpc/default.script', UDHCPC_SCRIPT, 0o755],
  ['usr/bin/sudo', SUDO, 0o755],
  ['usr/bin/curl', CURL, 0o755],
  ['usr/bin/lsblk', LSBLK, 0o755],
  ['sbin/blkid', BLKID, 0o755],
];
