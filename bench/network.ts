// bench/network: the network driver's two costs that grow with a cloud, as
// ratios to the raw commands doing the same work in the same process
// (absolute numbers on these shared 2-core machines move from run to run; the
// ratios much less). Driver level: a NetworkDriver with its bridges and nft
// tables in a namespace of its own (the data-plane tests' host namespaces,
// test/dataplane/network-lib.ts), nothing in the machine's own namespace.
//
//   1. Plugging a port into a running server: `converge(port)` into a server
//      namespace that already exists (veth into it, MAC, MTU, address, up,
//      on the bridge, the port's nft chains and anti-spoofing elements),
//      against the raw `ip` commands for the same device, one process each as
//      the commands come: veth create, peer moved into the namespace, MAC
//      and address, up inside, host end on the bridge and up. Medians of
//      --ports plugs each.
//   2. A security-group rule change with --members (default 1000) ports in
//      the group: the group's converge with that many addresses in its
//      remote-group set, toggling one rule (tcp/22 from the group), against
//      one `nft -f` of a table holding the same set and a rule using it.
//      Also a member joining (one address more). Prints whether the rule
//      change is within 1 s.
//
// Usage (as root): bin/bench network [--ports 20] [--members 1000] [--rounds 5]
import { randomUUID } from 'node:crypto';
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, runOk } from '../src/agent/exec.ts';
import { bridgeName } from '../src/network/protocol.ts';
import { env, networkSpec, portSpec, randomMac, rule, sgSpec } from '../test/dataplane/network-lib.ts';
import { numberFlag, pct } from './lib.ts';

const PORTS = numberFlag('ports', 20);
const MEMBERS = numberFlag('members', 1000);
const ROUNDS = numberFlag('rounds', 5);

const median = (xs: number[]) => pct([...xs].sort((a, b) => a - b), 50);
const ms = (x: number) => `${x.toFixed(1).padStart(7)} ms`;
async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}
/** The n-th address of 10.128.0.0/9 (enough for --members up to 8 million). */
const memberIp = (n: number) => `10.${128 + Math.floor(n / 65536)}.${Math.floor(n / 256) % 256}.${n % 256}`;

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('bench/network makes namespaces and nft tables: run it as root');
  const e = env();
  const scratch = mkdtempSync(join(tmpdir(), `${e.prefix}-bench-`));
  try {
    const h = await e.host('bench');
    const hostNs = (args: string[]) => runOk('ip', ['-n', h.ns, ...args]);

    // ---- 1. port plug
    const net = randomUUID();
    await h.converge('network', net, networkSpec({ cidr: '10.70.0.0/16' }));
    const sg = randomUUID();
    await h.converge('security_group', sg, sgSpec([rule('ingress', { remote_group_id: sg }), rule('egress')], { remote_groups: { [sg]: [] } }));
    const servers = [];
    for (let i = 0; i < 2 * PORTS; i++) {
      const s = await e.server();
      await runOk('ip', ['netns', 'add', s.ns]);
      await runOk('ip', ['-n', s.ns, 'link', 'set', 'lo', 'up']);
      servers.push(s);
    }
    const driver: number[] = [];
    const raw: number[] = [];
    const bridge = bridgeName(net);
    for (let i = 0; i < PORTS; i++) {
      // alternated, so that a slow moment of the machine falls on both sides
      const s = servers[2 * i]!;
      const spec = portSpec(net, s.id, `10.70.${Math.floor(i / 200)}.${(i % 200) + 10}`, { prefixlen: 16, security_group_ids: [sg] });
      driver.push(await timed(() => h.converge('port', randomUUID(), spec)));
      const r = servers[2 * i + 1]!;
      const dev = `raw${i}`;
      raw.push(await timed(async () => {
        await hostNs(['link', 'add', dev, 'mtu', '1450', 'type', 'veth', 'peer', 'name', `${dev}p`, 'mtu', '1450']);
        await hostNs(['link', 'set', `${dev}p`, 'netns', r.ns]);
        await runOk('ip', ['-n', r.ns, 'link', 'set', `${dev}p`, 'name', 'eth0', 'address', randomMac()]);
        await runOk('ip', ['-n', r.ns, 'addr', 'add', `10.70.${100 + Math.floor(i / 200)}.${(i % 200) + 10}/16`, 'dev', 'eth0']);
        await runOk('ip', ['-n', r.ns, 'link', 'set', 'eth0', 'up']);
        await hostNs(['link', 'set', dev, 'master', bridge, 'up']);
      }));
    }
    const plugRatio = median(driver) / median(raw);
    process.stdout.write([
      `port plug into a running server (${PORTS} each, medians)`,
      `  driver converge(port)       ${ms(median(driver))}  (p90 ${ms(pct([...driver].sort((a, b) => a - b), 90))})`,
      `  raw ip commands (6)         ${ms(median(raw))}  (p90 ${ms(pct([...raw].sort((a, b) => a - b), 90))})`,
      `  ratio driver / raw          ${plugRatio.toFixed(2)}x`,
      '',
    ].join('\n'));

    // ---- 2. security-group rule change with MEMBERS ports in the group
    const big = randomUUID();
    const members = Array.from({ length: MEMBERS }, (_, n) => memberIp(n));
    const base = [rule('ingress', { remote_group_id: big }), rule('egress')];
    const ssh = rule('ingress', { protocol: 'tcp', port_range_min: 22, port_range_max: 22, remote_group_id: big });
    const spec = (rules: typeof base, m = members) => sgSpec(rules, { remote_groups: { [big]: m } });
    const first = await timed(() => h.converge('security_group', big, spec(base)));
    const ruleChange: number[] = [];
    const join1: number[] = [];
    const nftRaw: number[] = [];
    const file = join(scratch, 'raw.nft');
    writeFileSync(file, [
      'table inet stratusbench {',
      `  set members { type ipv4_addr; elements = { ${members.join(', ')} } }`,
      '  chain c { ip saddr @members tcp dport 22 accept; }',
      '}',
      '',
    ].join('\n'));
    for (let i = 0; i < ROUNDS; i++) {
      ruleChange.push(await timed(() => h.converge('security_group', big, spec([...base, ssh]))));
      ruleChange.push(await timed(() => h.converge('security_group', big, spec(base))));
      join1.push(await timed(() => h.converge('security_group', big, spec(base, [...members, memberIp(MEMBERS + i)]))));
      nftRaw.push(await timed(() => runOk('nsenter', [`--net=/run/netns/${h.ns}`, 'nft', '-f', file])));
      await runOk('nsenter', [`--net=/run/netns/${h.ns}`, 'nft', 'delete', 'table', 'inet', 'stratusbench']);
    }
    const change = median(ruleChange);
    process.stdout.write([
      `security group with ${MEMBERS} members in its remote-group set (${ROUNDS} rounds, medians)`,
      `  first converge              ${ms(first)}`,
      `  rule change (add/remove)    ${ms(change)}  (max ${ms(Math.max(...ruleChange))})`,
      `  one member joins            ${ms(median(join1))}`,
      `  raw: one nft -f of the set  ${ms(median(nftRaw))}`,
      `  ratio rule change / raw     ${(change / median(nftRaw)).toFixed(2)}x`,
      `  rule change within 1 s:     ${Math.max(...ruleChange) <= 1000 ? 'yes' : 'NO'} (slowest of ${ruleChange.length})`,
      '',
    ].join('\n'));
  } finally {
    await run('nsenter', [`--net=/run/netns/${e.prefix}-bench`, 'nft', 'delete', 'table', 'inet', 'stratusbench']);
    await e.cleanup();
    rmSync(scratch, { recursive: true, force: true });
  }
}

await main();
