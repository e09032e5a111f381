// The iPXE scripts a conductor serves. The provisioning network's DHCP hands
// every iPXE client `http://<conductor>/boot.ipxe` (the node's port's
// `tag:ipxe,67`), which chains to the script of the NIC it booted from
// (`/ipxe/<mac with hyphens>`): the deploy ramdisk with the callback
// parameters on its kernel line while the node has an operation that boots
// it, else `exit` (back to the firmware, which boots the next device: the
// disk). Pure.

/** The script every iPXE client gets first. */
export function chainScript(base: string): string {
  return ['#!ipxe', `chain ${base}/ipxe/\${netX/mac:hexhyp} || exit`, ''].join('\n');
}

/** The script that boots the ramdisk (BOOTIF: the NIC iPXE booted from, as Ironic passes it). */
export function ramdiskScript(base: string, cmdline: string): string {
  return [
    '#!ipxe',
    `kernel ${base}/ramdisk/vmlinuz ${cmdline} BOOTIF=\${netX/mac} || goto fail`,
    `initrd ${base}/ramdisk/initrd.img || goto fail`,
    'boot || goto fail',
    ':fail',
    'echo stratus: cannot boot the deploy ramdisk, retrying in 10 s',
    'sleep 10',
    `chain --replace --autofree ${base}/ipxe/\${netX/mac:hexhyp}`,
    '',
  ].join('\n');
}

/** The script of a node with nothing to boot over the network: back to the firmware's next boot device. */
export function localBootScript(): string {
  return ['#!ipxe', 'echo stratus: booting from the local disk', 'exit', ''].join('\n');
}

/** A MAC from the path form `52-54-00-12-34-56` (or with colons); null when it is none. */
export function macFromPath(s: string): string | null {
  const m = s.toLowerCase().replace(/-/g, ':');
  return /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/.test(m) ? m : null;
}
