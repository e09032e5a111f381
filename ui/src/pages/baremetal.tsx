// Bare metal (admins): Ironic's nodes with their provision and power states,
// live from the event stream's `baremetal_node` events; enroll (IPMI or
// Redfish, the BMC's password sent once and never shown back: Ironic answers
// `******`), and the actions the CLI has: the provision verbs the node's state
// allows (manage, inspect, provide, clean, deploy, undeploy, abort), power
// on/off/reboot, maintenance with a reason, delete. Every action is confirmed.
import { useEffect, useState } from 'preact/hooks';
import { call, isAdmin } from '../api.ts';
import { onEvent } from '../events.ts';
import { ClientTable, ConfirmButton, CreateForm, DialogForm, ErrorNote, Field, Loading, Page, Status, Table, debounce, useLoad, val, type Column } from '../ui.tsx';
import { navigate } from '../router.ts';

export interface Node {
  uuid: string; name: string | null; driver: string; provision_state: string; target_provision_state: string | null;
  power_state: string | null; target_power_state: string | null; maintenance: boolean; maintenance_reason: string | null;
  last_error: string | null; instance_uuid: string | null; resource_class: string | null; owner: string | null;
  driver_info: Record<string, unknown>; conductor?: string | null; properties?: Record<string, unknown>;
}
interface Image { id: string; name: string | null; disk_format: string | null; container_format: string | null }

/** Calls Ironic v1 (the catalog's `baremetal`) at the microversion Stratus serves. */
export const ironic = <T = any>(method: string, path: string, body?: unknown) =>
  call<T>(method, 'baremetal', `/v1${path}`, { headers: { 'X-OpenStack-Ironic-API-Version': '1.78' }, ...(body === undefined ? {} : { body }) });

const label = (n: Node) => n.name || n.uuid;
/** Manual cleaning runs Stratus's one clean step (the automated one): the disks' metadata erased. */
const CLEAN_STEPS = [{ interface: 'deploy', step: 'erase_devices_metadata' }];

interface Verb { label: string; target: string; from: string[]; danger?: boolean; question: (n: Node) => string; extra?: Record<string, unknown> }
/** The provision verbs, by the states Ironic's state machine takes each from (src/baremetal/states.ts). */
const VERBS: Verb[] = [
  { label: 'Manage', target: 'manage', from: ['enroll', 'available', 'clean failed', 'inspect failed', 'adopt failed'], question: (n) => `Manage node “${label(n)}”? Its BMC credentials are verified first.` },
  { label: 'Inspect', target: 'inspect', from: ['manageable', 'inspect failed'], question: (n) => `Inspect node “${label(n)}”? It boots the ramdisk to find its CPUs, memory, disks and NICs.` },
  { label: 'Provide', target: 'provide', from: ['manageable'], question: (n) => `Provide node “${label(n)}”? It is cleaned, then available for servers.` },
  { label: 'Clean', target: 'clean', from: ['manageable'], extra: { clean_steps: CLEAN_STEPS }, question: (n) => `Clean node “${label(n)}”? Its disks’ metadata is erased.` },
  { label: 'Undeploy', target: 'deleted', from: ['active', 'deploy failed', 'error', 'wait call-back', 'rescue', 'rescue failed'], danger: true, question: (n) => `Undeploy node “${label(n)}”? What runs on it is torn down and its disks cleaned.` },
  { label: 'Abort', target: 'abort', from: ['wait call-back', 'clean wait', 'inspect wait', 'rescue wait'], danger: true, question: (n) => `Abort the operation of node “${label(n)}”?` },
];

const DELETABLE = ['manageable', 'enroll', 'adopt failed', 'available'];

function DeployButton({ n, images, done }: { n: Node; images: Image[]; done: () => void }) {
  const [image, setImage] = useState('');
  return (
    <DialogForm label="Deploy" title={`Deploy an image on node “${label(n)}”`} submit={async () => {
      await ironic('PATCH', `/nodes/${n.uuid}`, [{ op: 'add', path: '/instance_info/image_source', value: image }]);
      await ironic('PUT', `/nodes/${n.uuid}/states/provision`, { target: 'active' });
      done();
    }}>
      <Field label="Whole-disk image" hint="Raw or QCOW2, written to the node’s first disk.">
        <select name="deploy-image" value={image} onChange={(e) => setImage(val(e))} required>
          <option value="">Choose…</option>
          {images.map((i) => <option key={i.id} value={i.id}>{i.name ?? i.id} ({i.disk_format})</option>)}
        </select>
      </Field>
    </DialogForm>
  );
}

function MaintenanceButton({ n, done }: { n: Node; done: () => void }) {
  const [reason, setReason] = useState('');
  if (n.maintenance) {
    return <ConfirmButton label="End maintenance" question={`End maintenance of node “${label(n)}”?`} onConfirm={async () => { await ironic('DELETE', `/nodes/${n.uuid}/maintenance`); done(); }} />;
  }
  return (
    <DialogForm label="Maintenance" title={`Put node “${label(n)}” in maintenance`} submit={async () => {
      await ironic('PUT', `/nodes/${n.uuid}/maintenance`, reason.trim() ? { reason: reason.trim() } : {});
      setReason('');
      done();
    }}>
      <Field label="Reason"><input name="maintenance-reason" value={reason} onInput={(e) => setReason(val(e))} /></Field>
    </DialogForm>
  );
}

function Actions({ n, images, done }: { n: Node; images: Image[]; done: () => void }) {
  const busy = !!n.target_provision_state;
  const provision = (target: string, extra: Record<string, unknown> = {}) => async () => {
    await ironic('PUT', `/nodes/${n.uuid}/states/provision`, { target, ...extra });
    done();
  };
  const power = (target: string) => async () => {
    await ironic('PUT', `/nodes/${n.uuid}/states/power`, { target });
    done();
  };
  return (
    <div class="actions">
      {VERBS.filter((v) => v.from.includes(n.provision_state) && (v.target === 'abort' || !busy)).map((v) => (
        <ConfirmButton key={v.target} label={v.label} danger={v.danger} question={v.question(n)} onConfirm={provision(v.target, v.extra)} />
      ))}
      {['available', 'deploy failed'].includes(n.provision_state) && !n.instance_uuid && <DeployButton n={n} images={images} done={done} />}
      {n.power_state !== 'power on' && <ConfirmButton label="Power on" disabled={!!n.target_power_state} question={`Power on node “${label(n)}”?`} onConfirm={power('power on')} />}
      {n.power_state !== 'power off' && <ConfirmButton label="Power off" danger disabled={!!n.target_power_state} question={`Power off node “${label(n)}”? What runs on it stops at once.`} onConfirm={power('power off')} />}
      {n.power_state === 'power on' && <ConfirmButton label="Reboot" disabled={!!n.target_power_state} question={`Reboot node “${label(n)}”?`} onConfirm={power('rebooting')} />}
      <MaintenanceButton n={n} done={done} />
      {(DELETABLE.includes(n.provision_state) || n.maintenance) && !n.instance_uuid && (
        <ConfirmButton label="Delete" danger question={`Delete node “${label(n)}” from the cloud? Its ports go with it.`} onConfirm={async () => { await ironic('DELETE', `/nodes/${n.uuid}`); done(); }} />
      )}
    </div>
  );
}

function Enroll({ done }: { done: () => void }) {
  const [name, setName] = useState('');
  const [driver, setDriver] = useState<'ipmi' | 'redfish'>('ipmi');
  const [address, setAddress] = useState('');
  const [port, setPort] = useState('');
  const [system, setSystem] = useState('');
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [verify, setVerify] = useState(true);
  const [resourceClass, setResourceClass] = useState('baremetal');
  const [mac, setMac] = useState('');
  return (
    <CreateForm title="Enroll a node" label="Enroll" submit={async () => {
      const info: Record<string, unknown> = driver === 'ipmi'
        ? { ipmi_address: address.trim(), ...(port.trim() ? { ipmi_port: Number(port) } : {}), ...(username ? { ipmi_username: username } : {}), ...(password ? { ipmi_password: password } : {}) }
        : { redfish_address: address.trim(), redfish_system_id: system.trim(), ...(username ? { redfish_username: username } : {}), ...(password ? { redfish_password: password } : {}), redfish_verify_ca: verify };
      const r = await ironic('POST', '/nodes', { name: name.trim() || null, driver, driver_info: info, ...(resourceClass.trim() ? { resource_class: resourceClass.trim() } : {}) });
      // the password is not kept in the page once sent
      setPassword('');
      if (mac.trim()) await ironic('POST', '/ports', { node_uuid: r.body.uuid, address: mac.trim() });
      setName('');
      setAddress('');
      setMac('');
      done();
    }}>
      <Field label="Name"><input name="node-name" value={name} onInput={(e) => setName(val(e))} /></Field>
      <fieldset>
        <legend>Driver</legend>
        <label class="radio"><input type="radio" name="node-driver" value="ipmi" checked={driver === 'ipmi'} onChange={() => setDriver('ipmi')} /> IPMI</label>
        <label class="radio"><input type="radio" name="node-driver" value="redfish" checked={driver === 'redfish'} onChange={() => setDriver('redfish')} /> Redfish</label>
      </fieldset>
      <Field label={driver === 'ipmi' ? 'BMC address' : 'Redfish address'} hint={driver === 'ipmi' ? 'Host name or IP of the BMC.' : 'https://bmc.example or its IP.'}>
        <input name="bmc-address" value={address} onInput={(e) => setAddress(val(e))} required />
      </Field>
      {driver === 'ipmi'
        ? <Field label="IPMI port" hint="Empty: 623."><input name="ipmi-port" type="number" inputMode="numeric" value={port} onInput={(e) => setPort(val(e))} /></Field>
        : <Field label="System ID" hint="The Redfish system’s path, e.g. /redfish/v1/Systems/1."><input name="redfish-system" value={system} onInput={(e) => setSystem(val(e))} required /></Field>}
      <Field label="BMC user name"><input name="bmc-username" value={username} onInput={(e) => setUsername(val(e))} autoComplete="off" /></Field>
      <Field label="BMC password" hint="Sent to Ironic once; never shown back."><input name="bmc-password" type="password" value={password} onInput={(e) => setPassword(val(e))} autoComplete="new-password" /></Field>
      {driver === 'redfish' && <label class="check"><input type="checkbox" checked={verify} onChange={(e) => setVerify(e.currentTarget.checked)} /> Verify the BMC’s TLS certificate</label>}
      <Field label="Resource class" hint="The flavors that ask for it get this node."><input name="resource-class" value={resourceClass} onInput={(e) => setResourceClass(val(e))} /></Field>
      <Field label="PXE NIC MAC address" hint="Optional: the port the node boots from."><input name="node-mac" value={mac} onInput={(e) => setMac(val(e))} /></Field>
    </CreateForm>
  );
}

/** The node's size as inspection (or the admin) recorded it in its properties. */
const hardwareOf = (n: Node): string => {
  const p = n.properties ?? {};
  const parts = [p.cpus !== undefined ? `${p.cpus} CPU` : '', p.memory_mb !== undefined ? `${p.memory_mb} MiB` : '', p.local_gb !== undefined ? `${p.local_gb} GiB disk` : '', typeof p.cpu_arch === 'string' ? p.cpu_arch : ''];
  return parts.filter(Boolean).join(', ') || '—';
};

/** What the node's BMC is, without its secrets (Ironic masks them; the page never shows a *_password key at all). */
const bmcOf = (n: Node): string => String(n.driver_info.ipmi_address ?? n.driver_info.redfish_address ?? '');

export function Baremetal() {
  const admin = isAdmin();
  const { data, error, reload } = useLoad(async () => {
    if (!admin) return null;
    const [nodes, images] = await Promise.all([
      ironic('GET', '/nodes/detail?limit=1000').then((r) => r.body.nodes as Node[]),
      call('GET', 'image', '/v2/images?limit=1000&status=active').then((r) => (r.body.images as Image[]).filter((i) => i.container_format === 'bare' && ['raw', 'qcow2'].includes(i.disk_format ?? '')), () => [] as Image[]),
    ]);
    return { nodes, images };
  }, []);
  useEffect(() => {
    const soon = debounce(reload, 200);
    const off = onEvent((e) => {
      if (e.type === 'baremetal_node') soon();
    });
    return () => {
      off();
      soon.cancel();
    };
  }, []);
  if (!admin) return <Page title="Bare metal"><p>Only the cloud’s administrators manage bare-metal nodes.</p></Page>;
  const columns: Column<Node>[] = [
    { key: 'name', label: 'Name', value: label, render: (n) => <a href={`#/baremetal/${n.uuid}`}>{label(n)}</a> },
    {
      key: 'provision', label: 'Provision state', value: (n) => n.provision_state,
      render: (n) => <><Status value={n.provision_state} />{n.target_provision_state && <span class="muted"> → {n.target_provision_state}</span>}</>,
    },
    {
      key: 'power', label: 'Power', value: (n) => n.power_state ?? '',
      render: (n) => <>{n.power_state ?? 'unknown'}{n.target_power_state && <span class="muted"> → {n.target_power_state}</span>}</>,
    },
    { key: 'maintenance', label: 'Maintenance', value: (n) => (n.maintenance ? `yes${n.maintenance_reason ? `: ${n.maintenance_reason}` : ''}` : 'no') },
    { key: 'bmc', label: 'BMC', value: (n) => `${n.driver} ${bmcOf(n)}`, render: (n) => <>{n.driver} <span class="muted">{bmcOf(n)}</span></> },
    { key: 'hardware', label: 'Hardware', value: hardwareOf, sortable: false },
    { key: 'class', label: 'Resource class', value: (n) => n.resource_class ?? '' },
    { key: 'instance', label: 'Server', value: (n) => n.instance_uuid ?? '', render: (n) => (n.instance_uuid ? <a href={`#/servers/${n.instance_uuid}`}>{n.instance_uuid}</a> : '—') },
    { key: 'error', label: 'Last error', value: (n) => n.last_error ?? '', render: (n) => (n.last_error ? <span class="error">{n.last_error}</span> : '—') },
    { key: 'actions', label: 'Actions', value: () => '', sortable: false, render: (n) => <Actions n={n} images={data?.images ?? []} done={reload} /> },
  ];
  return (
    <Page title="Bare metal">
      <p class="muted">Node states update live from the event stream.</p>
      <ErrorNote error={error} />
      {data ? <ClientTable caption="Bare-metal nodes" rows={data.nodes} rowKey={(n) => n.uuid} initialSort={{ key: 'name', dir: 'asc' }} columns={columns} /> : !error && <p class="muted">Loading nodes…</p>}
      <Enroll done={reload} />
    </Page>
  );
}

interface Port { uuid: string; address: string; pxe_enabled: boolean; physical_network: string | null; internal_info?: Record<string, unknown> }
interface HistoryEvent { uuid: string; created_at: string; severity: string; event: string; event_type?: string; user?: string | null }

/** Shows a driver_info or instance_info value; Ironic has masked every secret as `******` already. */
const shown = (v: unknown): string => (typeof v === 'string' ? v : JSON.stringify(v));

/** One node: its state and actions (as in the list), hardware, BMC settings (secrets masked by Ironic), ports and history; live. */
export function BaremetalNode({ id }: { id: string }) {
  const admin = isAdmin();
  const { data, error, reload } = useLoad(async () => {
    if (!admin) return null;
    const [node, ports, history, images] = await Promise.all([
      ironic('GET', `/nodes/${id}`).then((r) => r.body as Node & { instance_info: Record<string, unknown> }),
      ironic('GET', `/nodes/${id}/ports?detail=true`).then((r) => r.body.ports as Port[]),
      ironic('GET', `/nodes/${id}/history?detail=true`).then((r) => (r.body.history as HistoryEvent[]).sort((a, b) => b.created_at.localeCompare(a.created_at))),
      call('GET', 'image', '/v2/images?limit=1000&status=active').then((r) => (r.body.images as Image[]).filter((i) => i.container_format === 'bare' && ['raw', 'qcow2'].includes(i.disk_format ?? '')), () => [] as Image[]),
    ]);
    return { node, ports, history, images };
  }, [id]);
  useEffect(() => {
    const soon = debounce(reload, 200);
    const off = onEvent((e) => {
      if (e.type !== 'baremetal_node' || (e.id !== id && e.id !== data?.node.uuid)) return;
      if (e.action === 'deleted') navigate('/baremetal');
      else soon();
    });
    return () => {
      off();
      soon.cancel();
    };
  }, [id, data?.node.uuid]);
  if (!admin) return <Page title="Bare metal"><p>Only the cloud’s administrators manage bare-metal nodes.</p></Page>;
  if (!data) return <Page title="Bare-metal node">{error ? <ErrorNote error={error} /> : <Loading what="the node" />}<a href="#/baremetal">All nodes</a></Page>;
  const n = data.node;
  return (
    <Page title={label(n)} actions={<a href="#/baremetal">All nodes</a>}>
      <p class="state"><Status value={n.provision_state} />{n.target_provision_state && <span class="muted"> → {n.target_provision_state}</span>} <span>{n.power_state ?? 'power unknown'}</span>{n.target_power_state && <span class="muted"> → {n.target_power_state}</span>}{n.maintenance && <span class="error"> maintenance{n.maintenance_reason ? `: ${n.maintenance_reason}` : ''}</span>}</p>
      {n.last_error && <p class="error">{n.last_error}</p>}
      <ErrorNote error={error} />
      <Actions n={n} images={data.images} done={reload} />
      <dl class="props">
        <dt>UUID</dt><dd><code>{n.uuid}</code></dd>
        <dt>Hardware</dt><dd>{hardwareOf(n)}</dd>
        <dt>Resource class</dt><dd>{n.resource_class ?? '—'}</dd>
        <dt>Server</dt><dd>{n.instance_uuid ? <a href={`#/servers/${n.instance_uuid}`}>{n.instance_uuid}</a> : '—'}</dd>
        <dt>Driver</dt><dd>{n.driver}</dd>
        {Object.entries(n.driver_info).flatMap(([k, v]) => [<dt key={`k${k}`}><code>{k}</code></dt>, <dd key={`v${k}`}>{shown(v)}</dd>])}
        {Object.entries(n.instance_info ?? {}).filter(([k]) => k === 'image_source' || k === 'root_gb').flatMap(([k, v]) => [<dt key={`i${k}`}><code>instance_info/{k}</code></dt>, <dd key={`w${k}`}>{shown(v)}</dd>])}
      </dl>
      <h2>Ports</h2>
      <Table caption="Ports" rows={data.ports} rowKey={(p) => p.uuid} empty="No ports: the node cannot boot from the network until it has one (inspection makes them)." columns={[
        { key: 'mac', label: 'MAC address', value: (p) => p.address },
        { key: 'pxe', label: 'PXE', value: (p) => (p.pxe_enabled ? 'yes' : 'no') },
        { key: 'physnet', label: 'Physical network', value: (p) => p.physical_network ?? '—' },
      ]} />
      <h2>History</h2>
      <ClientTable caption="History" rows={data.history} rowKey={(h) => h.uuid} initialSort={{ key: 'time', dir: 'desc' }} columns={[
        { key: 'time', label: 'Time', value: (h) => h.created_at, render: (h) => <time dateTime={h.created_at}>{new Date(h.created_at).toLocaleString()}</time> },
        { key: 'severity', label: 'Severity', value: (h) => h.severity },
        { key: 'event', label: 'Event', value: (h) => h.event },
        { key: 'user', label: 'User', value: (h) => h.user ?? '' },
      ]} />
    </Page>
  );
}
