// The default `busybox` image: built on this machine from Debian's
// busybox-static, no network needed. One reproducible gzip layer (sorted
// entries, mtime 0, root-owned), written as an OCI layout tar.
//
// Its entrypoint, /sbin/stratus-init, is PID 1: it reaps zombies (ash waits
// for every child, orphans included), prints a line to the console, runs the
// server's user data once per server when it is a script (#!…, as cloud-init
// does in a VM) from the config drive mounted at /mnt/config, serves the
// server's hostname over HTTP on port 80 (busybox httpd), and runs a shell on
// the serial console's input when its stdin is that FIFO.
import { createWriteStream } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { createHash } from 'node:crypto';
import { runOk } from '../../exec.ts';
import type { TarWriter } from '../../../common/tar.ts';
import { buildLayerBlob, fileRange, writeOciArchive } from './oci.ts';

export const BUSYBOX_BINARY = '/bin/busybox';
/** Where the config drive appears inside a container (read-only), as Nova's docs mount config-2. */
export const CONFIG_DRIVE_PATH = '/mnt/config';

export const INIT_SCRIPT = `#!/bin/sh
# stratus-init: PID 1 of the Stratus busybox image.
# Reaps zombies, runs the server's user data once when it is a script, prints
# a line to the console and serves the hostname over HTTP on port 80.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
CD=${CONFIG_DRIVE_PATH}/openstack/latest
H=$(hostname)
echo "stratus-init: starting ($(busybox | head -n 1 | cut -d' ' -f1-2))"
echo "stratus-init: hostname $H"
if [ -f $CD/meta_data.json ]; then echo "stratus-init: config drive at ${CONFIG_DRIVE_PATH}"; else echo "stratus-init: no config drive"; fi
mkdir -p /var/www /var/lib/cloud
echo "$H" > /var/www/index.html
httpd -p 80 -h /var/www && echo "stratus-init: serving the hostname on port 80"
echo "stratus-init: $H is up"
if [ -f $CD/user_data ] && [ "$(head -c 2 $CD/user_data)" = '#!' ]; then
  ID=$(sed -n 's/^{"uuid":"\\([0-9a-fA-F-]*\\)".*/\\1/p' $CD/meta_data.json 2>/dev/null)
  M=/var/lib/cloud/user-data-ran-\${ID:-unknown}
  if [ ! -e "$M" ]; then
    : > "$M"
    cp $CD/user_data /var/lib/cloud/user-data && chmod 700 /var/lib/cloud/user-data
    ( /var/lib/cloud/user-data; echo "stratus-init: user data exited with $?" ) &
  fi
fi
# the serial console: a shell on the console input (a FIFO the agent writes to);
# through fd 3, as a background job's own stdin is /dev/null
if [ -p /proc/self/fd/0 ]; then exec 3<&0; ( while :; do sh -i <&3 3<&- 2>&1; sleep 1; done ) & fi
trap 'echo "stratus-init: stopping"; kill -TERM -1 2>/dev/null; exit 0' TERM INT
while :; do sleep 60 & wait $!; done
`;

/** True when the ELF file has no program interpreter (statically linked). */
export async function isStaticElf(path: string): Promise<boolean> {
  const b = await fsp.readFile(path);
  if (b.length < 64 || b.readUInt32BE(0) !== 0x7f454c46 || b[4] !== 2) return false;
  const phoff = Number(b.readBigUInt64LE(32));
  const phentsize = b.readUInt16LE(54);
  const phnum = b.readUInt16LE(56);
  for (let i = 0; i < phnum; i++) {
    if (b.readUInt32LE(phoff + i * phentsize) === 3) return false; // PT_INTERP
  }
  return true;
}

/** Installs busybox-static with apt-get when /bin/busybox is missing or dynamic (root only). */
export async function ensureBusyboxStatic(): Promise<void> {
  const ok = await isStaticElf(BUSYBOX_BINARY).catch(() => false);
  if (ok) return;
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const install = () => runOk('apt-get', ['-o', 'DPkg::Lock::Timeout=600', 'install', '-y', '--no-install-recommends', 'busybox-static'], { env, timeoutMs: 900_000 });
  await install().catch(async () => {
    await runOk('apt-get', ['-o', 'DPkg::Lock::Timeout=600', 'update'], { env, timeoutMs: 900_000 });
    await install();
  });
  if (!(await isStaticElf(BUSYBOX_BINARY))) throw new Error(`${BUSYBOX_BINARY} is not statically linked after installing busybox-static`);
}

/** Builds the busybox image as an OCI layout tar at `output`; returns its config digest. */
export async function buildBusyboxImage(output: string): Promise<{ configDigest: string; size: number }> {
  if (!(await isStaticElf(BUSYBOX_BINARY).catch(() => false))) {
    throw new Error(`${BUSYBOX_BINARY} is missing or not statically linked: apt-get install busybox-static`);
  }
  const applets = (await runOk(BUSYBOX_BINARY, ['--list'])).stdout.split('\n').map((s) => s.trim()).filter((s) => /^[a-z0-9._[-]+$/i.test(s) && s !== 'busybox');
  const binSize = (await fsp.stat(BUSYBOX_BINARY)).size;
  const dirs: Array<[string, number]> = [
    ['bin', 0o755], ['dev', 0o755], ['etc', 0o755], ['home', 0o755], ['mnt', 0o755], ['proc', 0o555], ['root', 0o700], ['run', 0o755],
    ['sbin', 0o755], ['sys', 0o555], ['tmp', 0o1777], ['usr', 0o755], ['usr/bin', 0o755], ['usr/sbin', 0o755], ['var', 0o755],
    ['var/lib', 0o755], ['var/lib/cloud', 0o755], ['var/www', 0o755],
  ];
  const files: Array<[string, string, number]> = [
    ['etc/passwd', 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n', 0o644],
    ['etc/group', 'root:x:0:\nnogroup:x:65534:\n', 0o644],
    ['etc/hosts', '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n', 0o644],
    ['etc/os-release', 'NAME="Stratus busybox"\nID=busybox\nPRETTY_NAME="Stratus busybox (Debian busybox-static)"\n', 0o644],
    ['sbin/stratus-init', INIT_SCRIPT, 0o755],
    ['var/www/index.html', 'busybox\n', 0o644],
  ];
  type Item = { name: string; add: (tar: TarWriter) => Promise<void> };
  const items: Item[] = [
    ...dirs.map(([name, mode]): Item => ({ name, add: (t) => t.add({ name, type: 'dir', mode }) })),
    ...files.map(([name, text, mode]): Item => ({ name, add: (t) => t.add({ name, type: 'file', mode }, Buffer.from(text)) })),
    { name: 'bin/busybox', add: (t) => t.add({ name: 'bin/busybox', type: 'file', mode: 0o755, size: binSize }, (async function* () { yield await fsp.readFile(BUSYBOX_BINARY); })()) },
    ...applets.filter((a) => !files.some(([f]) => f === `bin/${a}`)).map((a): Item => ({ name: `bin/${a}`, add: (t) => t.add({ name: `bin/${a}`, type: 'symlink', linkname: 'busybox' }) })),
  ];
  items.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const unique = items.filter((it, i) => i === 0 || items[i - 1]!.name !== it.name);

  await fsp.mkdir(dirname(output), { recursive: true });
  const tmp = await fsp.mkdtemp(join(dirname(output), '.busybox-build-'));
  try {
    const layerFile = join(tmp, 'layer.tar.gz');
    const layer = await buildLayerBlob(layerFile, async (tar) => {
      for (const it of unique) await it.add(tar);
    });
    const version = (await runOk(BUSYBOX_BINARY, ['--help']).catch(() => null))?.stdout.split('\n')[0]?.match(/v[\d.]+/)?.[0] ?? 'unknown';
    const config = {
      created: '1970-01-01T00:00:00Z', architecture: 'amd64', os: 'linux',
      config: {
        Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
        Entrypoint: ['/sbin/stratus-init'], WorkingDir: '/', StopSignal: 'SIGTERM',
        ExposedPorts: { '80/tcp': {} },
        Labels: { 'org.opencontainers.image.title': 'busybox', 'org.opencontainers.image.description': `Stratus default image: Debian busybox-static ${version}` },
      },
      rootfs: { type: 'layers', diff_ids: [layer.diffId] },
      history: [{ created: '1970-01-01T00:00:00Z', created_by: `stratus image build-busybox (busybox-static ${version})` }],
    };
    const configRaw = Buffer.from(JSON.stringify(config));
    const partial = `${output}.partial`;
    const out = createWriteStream(partial);
    await writeOciArchive(out, { configRaw, layers: [{ ...layer, read: fileRange(layerFile, 0, layer.size) }], refName: 'latest' });
    await fsp.rename(partial, output);
    return { configDigest: `sha256:${createHash('sha256').update(configRaw).digest('hex')}`, size: (await fsp.stat(output)).size };
  } finally {
    await fsp.rm(tmp, { recursive: true, force: true });
  }
}
