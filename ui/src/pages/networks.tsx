// Networks: the topology picture (topology.tsx), and the networks, subnets,
// ports, routers (and their interfaces), security groups (and their rules)
// and floating IPs (associated with a port and back) of the project, each a
// list with its create form and deletes.
import { useState } from 'preact/hooks';
import { call, canWrite, session } from '../api.ts';
import { navigate } from '../router.ts';
import { ClientTable, ConfirmButton, CreateForm, DialogForm, ErrorNote, Field, Page, Status, Tabs, useLiveReload, useLoad, val, type Column } from '../ui.tsx';
import { Topology, loadServers } from './topology.tsx';

type Row = Record<string, any> & { id: string };
const net = <T = any>(method: string, path: string, body?: unknown) => call<T>(method, 'network', `/v2.0${path}`, body === undefined ? {} : { body });
const list = async (collection: string): Promise<Row[]> => (await net('GET', `/${collection}`)).body[collection.replace(/-/g, '_')];

function deleteColumn(kind: string, path: string, reload: () => void): Column<Row> {
  const pid = session()!.project?.id;
  return {
    key: 'actions', label: 'Actions', value: () => '', sortable: false,
    render: (r) => canWrite() && r.project_id === pid
      ? <ConfirmButton label="Delete" danger question={`Delete ${kind} “${r.name || r.floating_ip_address || r.id}”?`} onConfirm={async () => { await net('DELETE', `/${path}/${r.id}`); reload(); }} />
      : null,
  };
}

const nameCol: Column<Row> = { key: 'name', label: 'Name', value: (r) => r.name || r.id };

function NetworksTab({ data, reload }: { data: Data; reload: () => void }) {
  const [name, setName] = useState('');
  return (
    <>
      <ClientTable caption="Networks" rows={data.networks} rowKey={(r) => r.id} initialSort={{ key: 'name', dir: 'asc' }} columns={[
        nameCol,
        { key: 'status', label: 'Status', value: (r) => r.status, render: (r) => <Status value={r.status} /> },
        { key: 'subnets', label: 'Subnets', value: (r) => r.subnets.map((s: string) => data.subnets.find((x) => x.id === s)?.cidr ?? s).join(', ') },
        { key: 'ext', label: 'External', value: (r) => (r['router:external'] ? 'yes' : 'no') },
        { key: 'shared', label: 'Shared', value: (r) => (r.shared ? 'yes' : 'no') },
        deleteColumn('network', 'networks', reload),
      ]} />
      {canWrite() && (
        <CreateForm title="Create a network" submit={async () => { await net('POST', '/networks', { network: { name: name.trim() } }); setName(''); reload(); }}>
          <Field label="Name"><input name="network-name" value={name} onInput={(e) => setName(val(e))} required /></Field>
        </CreateForm>
      )}
    </>
  );
}

function SubnetsTab({ data, reload }: { data: Data; reload: () => void }) {
  const mine = data.networks.filter((n) => !n['router:external']);
  const [network, setNetwork] = useState('');
  const [name, setName] = useState('');
  const [cidr, setCidr] = useState('10.0.0.0/24');
  return (
    <>
      <ClientTable caption="Subnets" rows={data.subnets} rowKey={(r) => r.id} initialSort={{ key: 'name', dir: 'asc' }} columns={[
        nameCol,
        { key: 'cidr', label: 'CIDR', value: (r) => r.cidr },
        { key: 'network', label: 'Network', value: (r) => data.networks.find((n) => n.id === r.network_id)?.name ?? r.network_id },
        { key: 'gateway', label: 'Gateway', value: (r) => r.gateway_ip ?? '—' },
        { key: 'dhcp', label: 'DHCP', value: (r) => (r.enable_dhcp ? 'yes' : 'no') },
        deleteColumn('subnet', 'subnets', reload),
      ]} />
      {canWrite() && (
        <CreateForm title="Create a subnet" submit={async () => {
          await net('POST', '/subnets', { subnet: { network_id: network, name: name.trim(), cidr: cidr.trim(), ip_version: cidr.includes(':') ? 6 : 4 } });
          setName('');
          reload();
        }}>
          <Field label="Network">
            <select name="subnet-network" value={network} onChange={(e) => setNetwork(val(e))} required>
              <option value="">Choose…</option>
              {mine.map((n) => <option key={n.id} value={n.id}>{n.name || n.id}</option>)}
            </select>
          </Field>
          <Field label="Name"><input name="subnet-name" value={name} onInput={(e) => setName(val(e))} /></Field>
          <Field label="CIDR"><input name="cidr" value={cidr} onInput={(e) => setCidr(val(e))} required /></Field>
        </CreateForm>
      )}
    </>
  );
}

/** A router's interfaces: its interface ports' subnets. */
function interfacesOf(data: Data, router: string): Array<{ subnet: string; label: string }> {
  return data.ports.filter((p) => p.device_id === router && String(p.device_owner).startsWith('network:router_interface'))
    .flatMap((p) => (p.fixed_ips as Array<{ subnet_id: string; ip_address: string }>).map((f) => {
      const sn = data.subnets.find((x) => x.id === f.subnet_id);
      return { subnet: f.subnet_id, label: `${sn?.name || sn?.cidr || f.subnet_id} (${f.ip_address})` };
    }));
}

const ipsText = (p: Row): string => (p.fixed_ips as Array<{ ip_address: string }>).map((f) => f.ip_address).join(', ');

function PortsTab({ data, reload }: { data: Data; reload: () => void }) {
  const mine = data.networks.filter((n) => !n['router:external']);
  const [network, setNetwork] = useState('');
  const [name, setName] = useState('');
  const [ip, setIp] = useState('');
  return (
    <>
      <ClientTable caption="Ports" rows={data.ports} rowKey={(r) => r.id} initialSort={{ key: 'network', dir: 'asc' }} columns={[
        { key: 'name', label: 'Name', value: (r) => r.name || r.id.slice(0, 8) },
        { key: 'network', label: 'Network', value: (r) => data.networks.find((n) => n.id === r.network_id)?.name ?? r.network_id },
        { key: 'ips', label: 'Fixed IPs', value: ipsText },
        { key: 'mac', label: 'MAC', value: (r) => r.mac_address },
        { key: 'owner', label: 'Attached to', value: (r) => r.device_owner || '—' },
        { key: 'status', label: 'Status', value: (r) => r.status, render: (r) => <Status value={r.status} /> },
        deleteColumn('port', 'ports', reload),
      ]} />
      {canWrite() && (
        <CreateForm title="Create a port" submit={async () => {
          const port: Record<string, unknown> = { network_id: network, name: name.trim() };
          if (ip.trim()) port.fixed_ips = [{ ip_address: ip.trim() }];
          await net('POST', '/ports', { port });
          setName('');
          setIp('');
          reload();
        }}>
          <Field label="Network">
            <select name="port-network" value={network} onChange={(e) => setNetwork(val(e))} required>
              <option value="">Choose…</option>
              {mine.map((n) => <option key={n.id} value={n.id}>{n.name || n.id}</option>)}
            </select>
          </Field>
          <Field label="Name"><input name="port-name" value={name} onInput={(e) => setName(val(e))} /></Field>
          <Field label="Fixed IP" hint="Empty: an address of its subnet."><input name="port-ip" value={ip} onInput={(e) => setIp(val(e))} /></Field>
        </CreateForm>
      )}
    </>
  );
}

function RoutersTab({ data, reload }: { data: Data; reload: () => void }) {
  const external = data.networks.filter((n) => n['router:external']);
  const [name, setName] = useState('');
  const [gateway, setGateway] = useState('');
  const [router, setRouter] = useState('');
  const [subnet, setSubnet] = useState('');
  return (
    <>
      <ClientTable caption="Routers" rows={data.routers} rowKey={(r) => r.id} initialSort={{ key: 'name', dir: 'asc' }} columns={[
        nameCol,
        { key: 'status', label: 'Status', value: (r) => r.status, render: (r) => <Status value={r.status} /> },
        { key: 'gateway', label: 'External gateway', value: (r) => (r.external_gateway_info ? data.networks.find((n) => n.id === r.external_gateway_info.network_id)?.name ?? r.external_gateway_info.network_id : '—') },
        { key: 'interfaces', label: 'Interfaces', sortable: false, value: (r) => interfacesOf(data, r.id).map((i) => i.label).join(', '),
          render: (r) => (
            <ul class="plain">
              {interfacesOf(data, r.id).map((i) => (
                <li key={i.subnet}>{i.label}{' '}
                  {canWrite() && <ConfirmButton label="Disconnect" danger question={`Disconnect subnet ${i.label} from router “${r.name || r.id}”?`}
                    onConfirm={async () => { await net('PUT', `/routers/${r.id}/remove_router_interface`, { subnet_id: i.subnet }); reload(); }} />}
                </li>
              ))}
            </ul>
          ) },
        deleteColumn('router', 'routers', reload),
      ]} />
      {canWrite() && (
        <div class="grid">
          <CreateForm title="Create a router" submit={async () => {
            await net('POST', '/routers', { router: { name: name.trim(), ...(gateway ? { external_gateway_info: { network_id: gateway } } : {}) } });
            setName('');
            reload();
          }}>
            <Field label="Name"><input name="router-name" value={name} onInput={(e) => setName(val(e))} required /></Field>
            <Field label="External network">
              <select name="gateway" value={gateway} onChange={(e) => setGateway(val(e))}>
                <option value="">None</option>
                {external.map((n) => <option key={n.id} value={n.id}>{n.name || n.id}</option>)}
              </select>
            </Field>
          </CreateForm>
          <CreateForm title="Connect a subnet to a router" submit={async () => {
            await net('PUT', `/routers/${router}/add_router_interface`, { subnet_id: subnet });
            reload();
          }}>
            <Field label="Router">
              <select name="iface-router" value={router} onChange={(e) => setRouter(val(e))} required>
                <option value="">Choose…</option>
                {data.routers.map((r) => <option key={r.id} value={r.id}>{r.name || r.id}</option>)}
              </select>
            </Field>
            <Field label="Subnet">
              <select name="iface-subnet" value={subnet} onChange={(e) => setSubnet(val(e))} required>
                <option value="">Choose…</option>
                {data.subnets.map((s) => <option key={s.id} value={s.id}>{s.name || s.id} ({s.cidr})</option>)}
              </select>
            </Field>
          </CreateForm>
        </div>
      )}
    </>
  );
}

const ruleText = (x: Row): string =>
  `${x.direction} ${x.ethertype} ${x.protocol ?? 'any'}${x.port_range_min !== null && x.port_range_min !== undefined ? ` ${x.port_range_min}-${x.port_range_max}` : ''} ${x.remote_ip_prefix ?? (x.remote_group_id ? 'group' : '')}`.trim();

function RuleForm({ data, reload }: { data: Data; reload: () => void }) {
  const pid = session()!.project?.id;
  const groups = data.groups.filter((g) => g.project_id === pid);
  const blank = { group: '', direction: 'ingress', ethertype: 'IPv4', protocol: 'tcp', min: '', max: '', prefix: '' };
  const [f, setF] = useState(blank);
  const set = (k: keyof typeof blank) => (e: Parameters<typeof val>[0]) => setF({ ...f, [k]: val(e) });
  return (
    <CreateForm title="Add a rule" label="Add rule" submit={async () => {
      const rule: Record<string, unknown> = { security_group_id: f.group, direction: f.direction, ethertype: f.ethertype };
      if (f.protocol) rule.protocol = f.protocol;
      if (f.min.trim()) rule.port_range_min = Number(f.min);
      if (f.max.trim() || f.min.trim()) rule.port_range_max = Number(f.max.trim() || f.min);
      if (f.prefix.trim()) rule.remote_ip_prefix = f.prefix.trim();
      await net('POST', '/security-group-rules', { security_group_rule: rule });
      setF({ ...blank, group: f.group });
      reload();
    }}>
      <Field label="Security group">
        <select name="rule-group" value={f.group} onChange={set('group')} required>
          <option value="">Choose…</option>
          {groups.map((g) => <option key={g.id} value={g.id}>{g.name || g.id}</option>)}
        </select>
      </Field>
      <Field label="Direction"><select name="rule-direction" value={f.direction} onChange={set('direction')}><option value="ingress">ingress</option><option value="egress">egress</option></select></Field>
      <Field label="Ether type"><select name="rule-ethertype" value={f.ethertype} onChange={set('ethertype')}><option value="IPv4">IPv4</option><option value="IPv6">IPv6</option></select></Field>
      <Field label="Protocol">
        <select name="rule-protocol" value={f.protocol} onChange={set('protocol')}>
          {[['tcp', 'TCP'], ['udp', 'UDP'], ['icmp', 'ICMP'], ['', 'Any']].map(([v, l]) => <option key={v} value={v}>{l}</option>)}
        </select>
      </Field>
      <Field label="Port from"><input name="rule-min" inputMode="numeric" value={f.min} onInput={set('min')} /></Field>
      <Field label="Port to" hint="Empty: the same as from."><input name="rule-max" inputMode="numeric" value={f.max} onInput={set('max')} /></Field>
      <Field label="Remote IP prefix" hint="Empty: any address."><input name="rule-prefix" value={f.prefix} onInput={set('prefix')} /></Field>
    </CreateForm>
  );
}

function GroupsTab({ data, reload }: { data: Data; reload: () => void }) {
  const [name, setName] = useState('');
  const [description, setDescription] = useState('');
  return (
    <>
      <ClientTable caption="Security groups" rows={data.groups} rowKey={(r) => r.id} initialSort={{ key: 'name', dir: 'asc' }} columns={[
        nameCol,
        { key: 'description', label: 'Description', value: (r) => r.description },
        { key: 'rules', label: 'Rules', value: (r) => r.security_group_rules.length,
          render: (r) => <ul class="plain">{r.security_group_rules.map((x: Row) => (
            <li key={x.id}>{ruleText(x)}{' '}
              {canWrite() && r.project_id === session()!.project?.id && <ConfirmButton label="Delete rule" danger question={`Delete rule “${ruleText(x)}” of “${r.name}”?`}
                onConfirm={async () => { await net('DELETE', `/security-group-rules/${x.id}`); reload(); }} />}
            </li>
          ))}</ul> },
        deleteColumn('security group', 'security-groups', reload),
      ]} />
      {canWrite() && (
        <CreateForm title="Create a security group" submit={async () => {
          await net('POST', '/security-groups', { security_group: { name: name.trim(), description } });
          setName('');
          setDescription('');
          reload();
        }}>
          <Field label="Name"><input name="group-name" value={name} onInput={(e) => setName(val(e))} required /></Field>
          <Field label="Description"><input name="group-description" value={description} onInput={(e) => setDescription(val(e))} /></Field>
        </CreateForm>
      )}
      {canWrite() && <RuleForm data={data} reload={reload} />}
    </>
  );
}

/** Associates a floating IP with a server's port (one of the project's ports on a network a router joins). */
function AssociateForm({ fip, data, reload }: { fip: Row; data: Data; reload: () => void }) {
  const [port, setPort] = useState('');
  const candidates = data.ports.filter((p) => String(p.device_owner).startsWith('compute:') && p.fixed_ips.length > 0);
  return (
    <DialogForm label="Associate" title={`Associate ${fip.floating_ip_address}`} submit={async () => { await net('PUT', `/floatingips/${fip.id}`, { floatingip: { port_id: port } }); reload(); }}>
      <Field label="Port">
        <select name="fip-port" value={port} onChange={(e) => setPort(val(e))} required>
          <option value="">Choose…</option>
          {candidates.map((p) => <option key={p.id} value={p.id}>{ipsText(p)} on {data.networks.find((n) => n.id === p.network_id)?.name ?? p.network_id}{p.name ? ` (${p.name})` : ''}</option>)}
        </select>
      </Field>
    </DialogForm>
  );
}

function FloatingTab({ data, reload }: { data: Data; reload: () => void }) {
  const external = data.networks.filter((n) => n['router:external']);
  const [pool, setPool] = useState('');
  return (
    <>
      <ClientTable caption="Floating IPs" rows={data.fips} rowKey={(r) => r.id} initialSort={{ key: 'address', dir: 'asc' }} columns={[
        { key: 'address', label: 'Address', value: (r) => r.floating_ip_address },
        { key: 'status', label: 'Status', value: (r) => r.status, render: (r) => <Status value={r.status} /> },
        { key: 'fixed', label: 'Fixed address', value: (r) => r.fixed_ip_address ?? '—' },
        { key: 'network', label: 'Network', value: (r) => data.networks.find((n) => n.id === r.floating_network_id)?.name ?? r.floating_network_id },
        { key: 'associate', label: 'Association', value: (r) => r.port_id ?? '', sortable: false, render: (r) => !canWrite() ? null : r.port_id
          ? <ConfirmButton label="Disassociate" question={`Disassociate ${r.floating_ip_address} from ${r.fixed_ip_address}?`} onConfirm={async () => { await net('PUT', `/floatingips/${r.id}`, { floatingip: { port_id: null } }); reload(); }} />
          : <AssociateForm fip={r} data={data} reload={reload} /> },
        deleteColumn('floating IP', 'floatingips', reload),
      ]} />
      {canWrite() && (
        <CreateForm title="Allocate a floating IP" submit={async () => { await net('POST', '/floatingips', { floatingip: { floating_network_id: pool } }); reload(); }}>
          <Field label="External network">
            <select name="pool" value={pool} onChange={(e) => setPool(val(e))} required>
              <option value="">Choose…</option>
              {external.map((n) => <option key={n.id} value={n.id}>{n.name || n.id}</option>)}
            </select>
          </Field>
        </CreateForm>
      )}
    </>
  );
}

interface Data { networks: Row[]; subnets: Row[]; routers: Row[]; groups: Row[]; fips: Row[]; ports: Row[] }

function TopologyTab({ data }: { data: Data; reload: () => void }) {
  const servers = useLoad(loadServers, [data.ports.length, data.ports.map((p) => p.device_id).join()]);
  return servers.data ? <Topology data={data} servers={servers.data} /> : <p class="muted">Loading servers…</p>;
}

const TABS: Array<[string, string]> = [['topology', 'Topology'], ['networks', 'Networks'], ['subnets', 'Subnets'], ['ports', 'Ports'], ['routers', 'Routers'], ['groups', 'Security groups'], ['floating', 'Floating IPs']];

export function Networks({ tab }: { tab: string }) {
  const { data, error, reload } = useLoad(async (): Promise<Data> => {
    const [networks, subnets, routers, groups, fips, ports] = await Promise.all(['networks', 'subnets', 'routers', 'security-groups', 'floatingips', 'ports'].map(list));
    return { networks: networks!, subnets: subnets!, routers: routers!, groups: groups!, fips: fips!, ports: ports! };
  }, []);
  useLiveReload((e) => ['network', 'subnet', 'router', 'floatingip', 'security_group', 'port'].includes(e.type) || (e.type === 'server' && e.action !== 'updated'), reload);
  const Tab = { topology: TopologyTab, networks: NetworksTab, subnets: SubnetsTab, ports: PortsTab, routers: RoutersTab, groups: GroupsTab, floating: FloatingTab }[tab] ?? NetworksTab;
  return (
    <Page title="Networks">
      <Tabs tabs={TABS} current={tab} onSelect={(k) => navigate(`/networks?tab=${k}`)} />
      <ErrorNote error={error} />
      {data ? <Tab data={data} reload={reload} /> : !error && <p class="muted">Loading networks…</p>}
    </Page>
  );
}
