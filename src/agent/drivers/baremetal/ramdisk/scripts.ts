// The deploy ramdisk's boot: busybox init runs /etc/init.d/rcS, which loads
// every kernel module, leases an address on each NIC (udhcpc, the small
// guest's script), reads `stratus.callback`, `stratus.node` and
// `stratus.token` (and iPXE's `BOOTIF`) from the kernel command line, then
// runs the agent loop: ask the conductor for a command, do it, report, ask
// again (protocol.ts says what the words are). Every step prints a
// `stratus-ramdisk: ...` line on the console; the token never is.
//
// Commands: inspect (the hardware as JSON: CPUs, arch, memory, disks with
// sizes, NICs with MACs, the boot MAC), clean (the first and last MiB of
// every disk and partition zeroed: partition tables and file-system
// signatures), deploy (the raw image streamed over HTTP onto the root disk,
// read back and its sha256 checked, then the config drive image written into
// a new MBR partition at the end of the disk), rescue (root's password hash
// set, dropbear started), poweroff, reboot, wait.
import { FUNCTIONS_SH, UDHCPC_SCRIPT } from '../../vm/guest/scripts.ts';

/** String.raw, with a backslash before `${` standing for a shell's `${` (not a substitution). */
const sh = (s: TemplateStringsArray, ...v: unknown[]): string => String.raw(s, ...v).replace(/\\\$\{/g, '${');

export const RAMDISK_MARKER = 'stratus-ramdisk:';

/** /etc/stratus/ramdisk.sh: the helpers of the agent (sourced; the unit tests run them with the host's busybox). */
export const RAMDISK_FUNCTIONS = sh`# stratus-ramdisk shell functions (busybox sh)
rsay() { echo "${RAMDISK_MARKER} $*" >/dev/console 2>/dev/null || echo "${RAMDISK_MARKER} $*"; }
# cmdline_arg NAME: the value of NAME=... on the kernel command line (CMDLINE: another file, for tests)
cmdline_arg() { tr ' ' '\n' < "\${CMDLINE:-/proc/cmdline}" | sed -n "s/^$1=//p" | head -n 1; }
# val KEY FILE: the value of KEY=... in a command
val() { sed -n "s/^$1=//p" "$2" | head -n 1; }
# jstr TEXT: TEXT as a JSON string (quotes and backslashes escaped, control characters dropped)
jstr() { printf '"%s"' "$(printf '%s' "$1" | tr -d '\000-\037' | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g')"; }
# safe TEXT: what of TEXT may go into a report as a name (model, serial)
safe() { printf '%s' "$1" | tr -cd 'A-Za-z0-9 ._:-' | sed -e 's/^ *//' -e 's/ *$//'; }
# disks: the block devices that are disks (no loop, RAM, CD-ROM or floppy), one name a line
disks() {
  for d in \${SYSFS:-/sys}/block/*; do
    n=\${d##*/}
    case "$n" in loop*|ram*|sr*|fd*|zram*|nbd*) continue ;; esac
    [ "$(cat "$d/size" 2>/dev/null || echo 0)" -gt 0 ] && echo "$n"
  done
}
# inventory: the hardware as JSON (NodeInventory), disks largest first
inventory() {
  cpus=$(grep -c '^processor' "\${PROCFS:-/proc}/cpuinfo")
  mem_kb=$(sed -n 's/^MemTotal:[[:space:]]*\([0-9]*\) kB$/\1/p' "\${PROCFS:-/proc}/meminfo")
  printf '{"cpus":%d,"cpu_arch":%s,"memory_mb":%d,"disks":[' "$cpus" "$(jstr "$(uname -m)")" $(( (mem_kb + 1023) / 1024 ))
  first=1
  for n in $(for x in $(disks); do echo "$(cat \${SYSFS:-/sys}/block/$x/size) $x"; done | sort -rn | cut -d' ' -f2); do
    d=\${SYSFS:-/sys}/block/$n
    [ $first = 1 ] || printf ','; first=0
    rot=$(cat "$d/queue/rotational" 2>/dev/null || echo 0)
    printf '{"name":%s,"size_bytes":%s,"rotational":%s' "$(jstr "/dev/$n")" "$(( $(cat "$d/size") * 512 ))" "$([ "$rot" = 1 ] && echo true || echo false)"
    m=$(safe "$(cat "$d/device/model" 2>/dev/null)"); [ -n "$m" ] && printf ',"model":%s' "$(jstr "$m")"
    s=$(safe "$(cat "$d/serial" 2>/dev/null || cat "$d/device/serial" 2>/dev/null)"); [ -n "$s" ] && printf ',"serial":%s' "$(jstr "$s")"
    printf '}'
  done
  printf '],"nics":['
  first=1
  for i in \${SYSFS:-/sys}/class/net/*; do
    n=\${i##*/}
    [ "$n" = lo ] && continue
    [ -e "$i/device" ] || continue
    [ $first = 1 ] || printf ','; first=0
    c=$(cat "$i/carrier" 2>/dev/null || echo 0)
    printf '{"name":%s,"mac":%s,"has_carrier":%s}' "$(jstr "$n")" "$(jstr "$(cat "$i/address")")" "$([ "$c" = 1 ] && echo true || echo false)"
  done
  printf ']'
  b=$(printf '%s' "$BOOTIF" | tr 'A-F-' 'a-f:' | sed 's/^01://')
  [ -n "$b" ] && printf ',"boot_mac":%s' "$(jstr "$b")"
  printf '}'
}
# zero DEV OFFSET_MIB COUNT_MIB: zeroes COUNT_MIB MiB of DEV from OFFSET_MIB
zero() { dd if=/dev/zero of="$1" bs=1048576 seek="$2" count="$3" conv=notrunc,fsync 2>/dev/null; }
# erase_metadata DEV: the first and last MiB of DEV (a disk or partition of SIZE bytes) zeroed
devsize() { blockdev --getsize64 "$1" 2>/dev/null || stat -c %s "$1"; }
erase_metadata() {
  size=$(devsize "$1")
  mib=$(( size / 1048576 ))
  [ "$mib" -ge 1 ] || { dd if=/dev/zero of="$1" bs=512 count=$(( size / 512 )) conv=notrunc 2>/dev/null; return; }
  zero "$1" 0 1 || return 1
  [ "$mib" -ge 2 ] && { zero "$1" $(( mib - 1 )) 1 || return 1; }
  # the tail that is not a whole MiB (a GPT backup header sits in the last sector)
  tail=$(( (size - mib * 1048576) / 512 ))
  [ "$tail" -gt 0 ] && dd if=/dev/zero of="$1" bs=512 seek=$(( mib * 2048 )) count="$tail" conv=notrunc 2>/dev/null
  return 0
}
# le32 N: N as four little-endian bytes
byte() { printf "\\$(printf %03o "$1")"; }
le32() { byte $(( $1 & 255 )); byte $(( ($1 >> 8) & 255 )); byte $(( ($1 >> 16) & 255 )); byte $(( ($1 >> 24) & 255 )); }
# mbr_type DEV SLOT: the partition type byte of MBR entry SLOT (0..3), decimal
mbr_type() { dd if="$1" bs=1 skip=$(( 446 + 16 * $2 + 4 )) count=1 2>/dev/null | od -An -tu1 | tr -d ' \n'; }
# mbr_u32 DEV OFFSET: the little-endian 32-bit number at OFFSET
mbr_u32() { dd if="$1" bs=1 skip="$2" count=4 2>/dev/null | od -An -tu4 | tr -d ' \n'; }
# add_partition DEV START SECTORS TYPE: a primary MBR partition in the first free entry; prints its number
add_partition() {
  sig=$(dd if="$1" bs=1 skip=510 count=2 2>/dev/null | od -An -tx1 | tr -d ' \n')
  [ "$sig" = 55aa ] || { echo "no MBR partition table on $1" >&2; return 1; }
  for s in 0 1 2 3; do [ "$(mbr_type "$1" $s)" = 238 ] && { echo "$1 has a GPT partition table (only MBR takes a config drive partition)" >&2; return 1; }; done
  for s in 0 1 2 3; do
    [ "$(mbr_type "$1" $s)" = 0 ] || continue
    { printf '\000\376\377\377'; byte "$4"; printf '\376\377\377'; le32 "$2"; le32 "$3"; } | dd of="$1" bs=1 seek=$(( 446 + 16 * s )) conv=notrunc 2>/dev/null || return 1
    echo $(( s + 1 ))
    return 0
  done
  echo "$1 has no free MBR partition entry" >&2
  return 1
}
# partitions_end DEV: the sector after the last MBR partition
partitions_end() {
  e=0
  for s in 0 1 2 3; do
    [ "$(mbr_type "$1" $s)" = 0 ] && continue
    st=$(mbr_u32 "$1" $(( 446 + 16 * s + 8 ))); n=$(mbr_u32 "$1" $(( 446 + 16 * s + 12 )))
    [ $(( st + n )) -gt "$e" ] && e=$(( st + n ))
  done
  echo "$e"
}
`;

/** /etc/init.d/rcS of the ramdisk: the boot and the agent loop. */
export const RAMDISK_RCS = sh`#!/bin/sh
export PATH=/sbin:/bin:/usr/sbin:/usr/bin
. /etc/stratus/functions.sh
. /etc/stratus/ramdisk.sh
set -o pipefail
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mkdir -p /dev/pts /run/stratus /var/log
mount -t devpts devpts /dev/pts
rsay "booting: kernel $(uname -r)"
hostname stratus-ramdisk
ip link set lo up
load_modules /lib/modules/early.order
load_modules /lib/modules/late.order
CB=$(cmdline_arg stratus.callback)
NODE=$(cmdline_arg stratus.node)
TOKEN=$(cmdline_arg stratus.token)
BOOTIF=$(cmdline_arg BOOTIF)
[ -n "$CB" ] && [ -n "$NODE" ] && [ -n "$TOKEN" ] || { rsay "no stratus.callback, stratus.node or stratus.token on the kernel command line"; exec sleep 100000; }
M=/run/stratus
for d in /sys/class/net/*; do
  i=\${d##*/}
  [ "$i" = lo ] && continue
  ip link set "$i" up
  udhcpc -i "$i" -s /usr/share/udhcpc/default.script -t 60 -T 1 -A 2 -b -x hostname:stratus-ramdisk >/var/log/udhcpc-$i.log 2>&1 &
done
n=0; while [ $n -lt 600 ] && ! ip -4 addr show | grep -q 'inet .*global'; do sleep 0.1; n=$((n + 1)); done
rsay "network: $(ip -4 -o addr show scope global | awk '{print $2, $4}' | tr '\n' ' ')"
rsay "node $NODE, conductor $CB"

# call PATH [FILE]: GET (or POST FILE as JSON) the conductor's node API; the answer on stdout
call() {
  if [ -n "$2" ]; then
    timeout 60 wget -q -O - --header "X-Stratus-Token: $TOKEN" --header 'Content-Type: application/json' --post-file "$2" "$CB/v1/nodes/$NODE/$1"
  else
    timeout 60 wget -q -O - --header "X-Stratus-Token: $TOKEN" "$CB/v1/nodes/$NODE/$1"
  fi
}
# report ID STATUS PHASE MESSAGE [JSON-FIELD]: tells the conductor (tries for a minute)
report() {
  { printf '{"op_id":%s,"status":%s,"phase":%s,"message":%s' "$(jstr "$1")" "$(jstr "$2")" "$(jstr "$3")" "$(jstr "$4")"
    [ -n "$5" ] && printf ',%s' "$5"
    printf '}'; } > $M/report.json
  n=0
  while [ $n -lt 30 ]; do call report $M/report.json >/dev/null && return 0; sleep 2; n=$((n + 1)); done
  rsay "cannot reach the conductor to report"
  return 1
}
fail() { rsay "$op failed: $1"; report "$id" failed "$phase" "$1"; }

# root_disk SIZE: the first disk by name that holds SIZE bytes
root_disk() { for n in $(disks | sort); do [ $(( $(cat /sys/block/$n/size) * 512 )) -ge "$1" ] && { echo "$n"; return 0; }; done; return 1; }

do_inspect() {
  phase=inspect
  inv=$(inventory) || { fail "inspection failed"; return; }
  rsay "inspected: $(grep -c '^processor' /proc/cpuinfo) CPUs, $(disks | tr '\n' ' ')"
  report "$id" ok inspect "inspected" "\"inventory\":$inv"
}

do_clean() {
  phase=erase
  for n in $(disks); do
    for p in /sys/block/$n/$n*; do
      [ -e "$p/partition" ] || continue
      erase_metadata "/dev/\${p##*/}" || { fail "cannot erase /dev/\${p##*/}"; return; }
    done
    erase_metadata "/dev/$n" || { fail "cannot erase /dev/$n"; return; }
    blockdev --rereadpt "/dev/$n" 2>/dev/null
    rsay "erased the metadata of /dev/$n"
  done
  sync
  report "$id" ok erase "disk metadata erased"
}

do_deploy() {
  phase=write_image
  size=$(val image_size $M/command); sum=$(val image_sha256 $M/command); cd_size=$(val configdrive_size $M/command)
  disk=$(root_disk "$size") || { fail "no disk holds the image ($size bytes)"; return; }
  rsay "writing the image ($size bytes) to /dev/$disk"
  report "$id" running write_image "writing the image to /dev/$disk" >/dev/null
  call image | dd of=/dev/$disk bs=1048576 conv=fsync 2>$M/dd.log || { fail "the image download or write failed"; return; }
  sync; echo 3 > /proc/sys/vm/drop_caches
  got=$(head -c "$size" /dev/$disk | sha256sum | cut -d' ' -f1)
  [ "$got" = "$sum" ] || { fail "the image on /dev/$disk does not match its checksum"; return; }
  rsay "image written and checked (sha256 $got)"
  if [ "\${cd_size:-0}" -gt 0 ]; then
    phase=config_drive
    report "$id" running config_drive "writing the config drive" >/dev/null
    call configdrive > $M/configdrive.img || { fail "the config drive download failed"; return; }
    [ "$(wc -c < $M/configdrive.img)" -eq "$cd_size" ] || { fail "the config drive download was cut"; return; }
    total=$(cat /sys/block/$disk/size)
    # 64 MiB at the end of the disk (as Ironic), less when the disk is small, at least the image
    want=131072; need=$(( (cd_size + 1048575) / 1048576 * 2048 ))
    end=$(partitions_end /dev/$disk)
    [ $(( total - want )) -ge $(( end > size / 512 ? end : size / 512 )) ] || want=$need
    start=$(( (total - want) / 2048 * 2048 ))
    [ "$start" -ge "$end" ] && [ "$start" -ge $(( size / 512 )) ] || { fail "no room for the config drive on /dev/$disk"; return; }
    part=$(add_partition /dev/$disk "$start" $(( total - start )) 131 2>$M/part.err) || { fail "$(cat $M/part.err)"; return; }
    dd if=$M/configdrive.img of=/dev/$disk bs=512 seek="$start" conv=notrunc,fsync 2>/dev/null || { fail "cannot write the config drive"; return; }
    blockdev --rereadpt /dev/$disk 2>/dev/null
    rsay "config drive in partition $part of /dev/$disk (sector $start)"
  fi
  sync
  report "$id" ok "$phase" "image written"
}

do_rescue() {
  phase=ramdisk
  h=$(val rescue_password_hash $M/command)
  [ -n "$h" ] || { fail "no rescue password"; return; }
  sed -i "s|^root:[^:]*:|root:$h:|" /etc/shadow
  mkdir -p /etc/dropbear
  for t in ed25519 ecdsa; do [ -f /etc/dropbear/dropbear_\${t}_host_key ] || dropbearkey -t $t -f /etc/dropbear/dropbear_\${t}_host_key >/dev/null 2>&1; done
  [ -f /run/dropbear.pid ] || dropbear -r /etc/dropbear/dropbear_ed25519_host_key -r /etc/dropbear/dropbear_ecdsa_host_key -p 22 -P /run/dropbear.pid
  rsay "rescue: dropbear listening on port 22"
  report "$id" ok ramdisk "rescue ready"
}

done_id=
while :; do
  if ! call command > $M/command.part 2>/dev/null; then sleep 2; continue; fi
  mv $M/command.part $M/command
  op=$(val op $M/command); id=$(val id $M/command)
  case "$op" in
    inspect|clean|deploy|rescue)
      if [ "$id" = "$done_id" ]; then call report $M/report.json >/dev/null; sleep 2; continue; fi
      rsay "command: $op"
      do_$op
      done_id=$id
      ;;
    poweroff) rsay "powering off"; sync; poweroff -f ;;
    reboot) rsay "rebooting"; sync; reboot -f ;;
    *) sleep 2 ;;
  esac
done
`;

/** The ramdisk's files (the small guest's udhcpc script and shell functions, its own boot). */
export const RAMDISK_FILES: ReadonlyArray<[string, string, number]> = [
  ['etc/passwd', 'root:x:0:0:root:/root:/bin/sh\n', 0o644],
  ['etc/shadow', 'root:*:19000:0:99999:7:::\n', 0o600],
  ['etc/group', 'root:x:0:\ntty:x:5:\n', 0o644],
  ['etc/shells', '/bin/sh\n/bin/ash\n', 0o644],
  ['etc/hosts', '127.0.0.1\tlocalhost\n', 0o644],
  ['etc/profile', 'export PATH=/sbin:/bin:/usr/sbin:/usr/bin\n', 0o644],
  ['etc/os-release', 'NAME="Stratus deploy ramdisk"\nID=stratus-ramdisk\n', 0o644],
  // the agent runs once, in the background of init; no shell on the console (the token is in /proc/cmdline)
  ['etc/inittab', '::once:/etc/init.d/rcS\n::ctrlaltdel:/sbin/reboot\n', 0o644],
  ['etc/init.d/rcS', RAMDISK_RCS, 0o755],
  ['etc/stratus/functions.sh', FUNCTIONS_SH, 0o644],
  ['etc/stratus/ramdisk.sh', RAMDISK_FUNCTIONS, 0o644],
  ['usr/share/udhcpc/default.script', UDHCPC_SCRIPT, 0o755],
];

/** The ramdisk's kernel command line besides the callback parameters. */
export const RAMDISK_CMDLINE = 'console=tty0 console=ttyS0,115200n8 panic=10 loglevel=4';
