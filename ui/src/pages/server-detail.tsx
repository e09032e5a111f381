// One server: its addresses and state (live), its actions (each confirmed),
// its instance actions, its console log and its consoles: the serial console
// in a terminal (xterm.js, loaded only when opened) and, for VMs, noVNC.
// The actions and consoles offered are those of the server's kind, as the
// compute API's own descriptor (src/compute/kinds.ts) says: the kind its
// flavor names, else its image's container format.
import { useEffect, useRef, useState } from 'preact/hooks';
import { KINDS, kindOfFlavor, kindOfImageFormat, type DriverAction, type KindName } from '../../../src/compute/kinds.ts';
import { call, canWrite, isAdmin } from '../api.ts';
import { onEvent } from '../events.ts';
import { navigate } from '../router.ts';
import { ConfirmButton, CreateForm, ErrorNote, Field, Loading, Page, Status, Table, Tabs, debounce, errorText, useLoad, val } from '../ui.tsx';
import { KIND_LABEL, type Server } from './servers.tsx';
import { allVolumes, volumeLabel } from './volumes.tsx';

const act = (id: string, body: unknown) => call('POST', 'compute', `/servers/${id}/action`, { body });

interface Action { label: string; when: string[]; body: (s: Server) => unknown; action: DriverAction | null; danger?: boolean; admin?: boolean }
const SHELVED = ['SHELVED', 'SHELVED_OFFLOADED'];
const ACTIONS: Action[] = [
  { label: 'Start', when: ['SHUTOFF'], body: () => ({ 'os-start': null }), action: 'os-start' },
  { label: 'Stop', when: ['ACTIVE', 'ERROR'], body: () => ({ 'os-stop': null }), action: 'os-stop' },
  { label: 'Reboot', when: ['ACTIVE'], body: () => ({ reboot: { type: 'SOFT' } }), action: 'reboot' },
  { label: 'Hard reboot', when: ['ACTIVE', 'SHUTOFF', 'ERROR', 'PAUSED', 'SUSPENDED'], body: () => ({ reboot: { type: 'HARD' } }), action: 'reboot' },
  { label: 'Pause', when: ['ACTIVE'], body: () => ({ pause: null }), action: 'pause' },
  { label: 'Unpause', when: ['PAUSED'], body: () => ({ unpause: null }), action: 'unpause' },
  { label: 'Suspend', when: ['ACTIVE'], body: () => ({ suspend: null }), action: 'suspend' },
  { label: 'Resume', when: ['SUSPENDED'], body: () => ({ resume: null }), action: 'resume' },
  { label: 'Rescue', when: ['ACTIVE', 'SHUTOFF', 'ERROR'], body: () => ({ rescue: null }), action: 'rescue' },
  { label: 'Unrescue', when: ['RESCUE'], body: () => ({ unrescue: null }), action: 'unrescue' },
  { label: 'Shelve', when: ['ACTIVE', 'SHUTOFF', 'PAUSED', 'SUSPENDED'], body: () => ({ shelve: null }), action: 'shelve' },
  { label: 'Offload', when: ['SHELVED'], body: () => ({ shelveOffload: null }), action: 'shelveOffload', admin: true },
  { label: 'Unshelve', when: SHELVED, body: () => ({ unshelve: null }), action: 'unshelve' },
  { label: 'Rebuild', when: ['ACTIVE', 'SHUTOFF', 'ERROR'], body: (s) => ({ rebuild: { imageRef: s.image ? s.image.id : '' } }), action: 'rebuild', danger: true },
  // cold migration (admins): the scheduler picks another host; the server waits in VERIFY_RESIZE for confirm or revert
  { label: 'Migrate', when: ['ACTIVE', 'SHUTOFF'], body: () => ({ migrate: null }), action: 'migrate', admin: true },
  { label: 'Confirm resize', when: ['VERIFY_RESIZE'], body: () => ({ confirmResize: null }), action: 'confirmResize' },
  { label: 'Revert resize', when: ['VERIFY_RESIZE'], body: () => ({ revertResize: null }), action: 'revertResize' },
];

/**
 * The server's kind: the one its flavor names (stratus:kind, a bare-metal
 * flavor's custom resource class), else its image's container format; a
 * volume-backed server is a VM. Null when its image is gone (every action shown).
 */
async function kindOfServer(s: Server): Promise<KindName | null> {
  const byFlavor = kindOfFlavor(s.flavor?.extra_specs ?? {});
  if (byFlavor) return byFlavor;
  if (!s.image) return 'vm';
  try {
    return kindOfImageFormat((await call('GET', 'image', `/v2/images/${s.image.id}`)).body.container_format ?? null);
  } catch {
    return null;
  }
}

/** What a server of `kind` can do (a driver action its kind lacks is Nova's 409): null kind, everything. */
const kindCan = (kind: KindName | null, action: DriverAction | null): boolean => !kind || !action || (KINDS[kind].actions as readonly string[]).includes(action);
const kindConsoles = (kind: KindName | null): string[] => (kind ? Object.keys(KINDS[kind].consoles) : ['serial', 'vnc']);

function ResizeForm({ server, done }: { server: Server; done: () => void }) {
  const flavors = useLoad(async () => (await call('GET', 'compute', '/flavors/detail')).body.flavors as Array<{ id: string; name: string; vcpus: number; ram: number; disk: number }>, []);
  const [flavor, setFlavor] = useState('');
  const [error, setError] = useState<string | null>(null);
  return (
    <form class="inline" onSubmit={async (e) => {
      e.preventDefault();
      try {
        await act(server.id, { resize: { flavorRef: flavor } });
        done();
      } catch (err) {
        setError(errorText(err));
      }
    }}>
      <Field label="New flavor" error={error}>
        <select value={flavor} onChange={(e) => setFlavor(val(e))} required>
          <option value="">Choose…</option>
          {(flavors.data ?? []).filter((f) => f.name !== server.flavor?.original_name).map((f) => <option key={f.id} value={f.id}>{f.name} ({f.vcpus} vCPU, {f.ram} MiB, {f.disk} GiB)</option>)}
        </select>
      </Field>
      <button type="submit" disabled={!flavor}>Resize</button>
    </form>
  );
}

function SnapshotForm({ server }: { server: Server }) {
  const [name, setName] = useState(`${server.name}-snapshot`);
  const [note, setNote] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  return (
    <form class="inline" onSubmit={async (e) => {
      e.preventDefault();
      setError(null);
      try {
        const r = await act(server.id, { createImage: { name } });
        setNote(`Snapshot ${r.body?.image_id ?? ''} is being made.`);
      } catch (err) {
        setError(errorText(err));
      }
    }}>
      <Field label="Snapshot name" error={error}><input value={name} onInput={(e) => setName(val(e))} required /></Field>
      <button type="submit">Snapshot</button>
      {note && <p role="status">{note}</p>}
    </form>
  );
}

function ConsoleLog({ id }: { id: string }) {
  const { data, error, loading, reload } = useLoad(async () => (await act(id, { 'os-getConsoleOutput': { length: 200 } })).body.output as string, [id]);
  return (
    <section aria-label="Console log">
      <div class="toolbar"><button type="button" onClick={reload}>Refresh</button></div>
      <ErrorNote error={error} />
      {loading && data === undefined ? <Loading what="the console log" /> : <pre class="console-log" tabIndex={0} aria-label="Console output">{data ?? ''}</pre>}
    </section>
  );
}

function SerialConsole({ id }: { id: string }) {
  const box = useRef<HTMLDivElement>(null);
  const [error, setError] = useState<string | null>(null);
  const [state, setState] = useState('connecting');
  useEffect(() => {
    let stop: (() => void) | null = null;
    let live = true;
    (async () => {
      try {
        const r = await call('POST', 'compute', `/servers/${id}/remote-consoles`, { body: { remote_console: { protocol: 'serial', type: 'serial' } } });
        // xterm.js comes with the console only: a chunk of its own
        const { openSerialConsole } = await import('../console.ts');
        if (!live || !box.current) return;
        stop = openSerialConsole(box.current, r.body.remote_console.url, setState, 'term-keys');
      } catch (err) {
        setError(errorText(err));
      }
    })();
    return () => {
      live = false;
      stop?.();
    };
  }, [id]);
  return (
    <section aria-label="Serial console">
      <p class="muted" role="status">Serial console: {state}</p>
      <p class="muted" id="term-keys">The terminal takes Tab; press Escape, then Tab, to leave it.</p>
      <ErrorNote error={error} />
      <div class="term-box" ref={box} />
    </section>
  );
}

function GraphicalConsole({ id }: { id: string }) {
  const [error, setError] = useState<string | null>(null);
  return (
    <section aria-label="Graphical console">
      <p>The graphical console (noVNC) opens in a window of its own.</p>
      <button type="button" onClick={async () => {
        setError(null);
        try {
          const r = await call('POST', 'compute', `/servers/${id}/remote-consoles`, { body: { remote_console: { protocol: 'vnc', type: 'novnc' } } });
          window.open(r.body.remote_console.url, '_blank', 'noopener,noreferrer');
        } catch (err) {
          setError(errorText(err));
        }
      }}>Open graphical console</button>
      <ErrorNote error={error} />
    </section>
  );
}

interface VolumeAttachment { id: string; volumeId: string; serverId: string; device: string | null; delete_on_termination?: boolean }

/** The server's volumes (Nova's os-volume_attachments): attach one of the project's available volumes, detach (confirmed); live by the volumes' events. */
function ServerVolumes({ server }: { server: Server }) {
  const id = server.id;
  const { data, error, reload } = useLoad(async () => {
    const [attachments, volumes] = await Promise.all([
      call('GET', 'compute', `/servers/${id}/os-volume_attachments`).then((r) => r.body.volumeAttachments as VolumeAttachment[]),
      allVolumes(),
    ]);
    return { attachments, volumes };
  }, [id]);
  useEffect(() => {
    const soon = debounce(reload);
    const off = onEvent((e) => {
      if (e.type === 'volume' || (e.type === 'server' && e.id === id)) soon();
    });
    return () => {
      off();
      soon.cancel();
    };
  }, [id]);
  const [volume, setVolume] = useState('');
  if (!data) return <><ErrorNote error={error} />{!error && <Loading what="the server's volumes" />}</>;
  const byId = new Map(data.volumes.map((v) => [v.id, v]));
  const write = canWrite();
  const attachable = data.volumes.filter((v) => v.status === 'available' || (v.status === 'in-use' && (v as { multiattach?: boolean }).multiattach));
  return (
    <section aria-label="Volumes">
      <ErrorNote error={error} />
      <Table caption="Attached volumes" rows={data.attachments} rowKey={(a) => a.volumeId} empty="No volumes attached." columns={[
        { key: 'device', label: 'Device', value: (a) => a.device ?? '' },
        { key: 'volume', label: 'Volume', value: (a) => { const v = byId.get(a.volumeId); return v ? volumeLabel(v) : a.volumeId; } },
        { key: 'size', label: 'Size', value: (a) => byId.get(a.volumeId)?.size ?? '', render: (a) => (byId.get(a.volumeId) ? `${byId.get(a.volumeId)!.size} GiB` : '—') },
        { key: 'status', label: 'Status', value: (a) => byId.get(a.volumeId)?.status ?? '', render: (a) => <Status value={byId.get(a.volumeId)?.status} /> },
        ...(write ? [{
          key: 'actions', label: 'Actions', value: () => '',
          render: (a: VolumeAttachment) => <ConfirmButton label="Detach" danger disabled={byId.get(a.volumeId)?.status === 'detaching'}
            question={`Detach volume “${byId.get(a.volumeId) ? volumeLabel(byId.get(a.volumeId)!) : a.volumeId}” from this server?`}
            onConfirm={async () => { await call('DELETE', 'compute', `/servers/${id}/os-volume_attachments/${a.volumeId}`); reload(); }} />,
        }] : []),
      ]} />
      {write && (
        <CreateForm title="Attach a volume" label="Attach" submit={async () => {
          await call('POST', 'compute', `/servers/${id}/os-volume_attachments`, { body: { volumeAttachment: { volumeId: volume } } });
          setVolume('');
          reload();
        }}>
          <Field label="Volume" hint={attachable.length ? undefined : 'No available volume: make one on the Volumes page.'}>
            <select name="attach-volume" value={volume} onChange={(e) => setVolume(val(e))} required>
              <option value="">Choose…</option>
              {attachable.map((v) => <option key={v.id} value={v.id}>{volumeLabel(v)} ({v.size} GiB)</option>)}
            </select>
          </Field>
        </CreateForm>
      )}
    </section>
  );
}

function History({ id, version }: { id: string; version: number }) {
  const { data, error } = useLoad(async () => (await call('GET', 'compute', `/servers/${id}/os-instance-actions`)).body.instanceActions as Array<{ action: string; request_id: string; start_time: string; message: string | null; user_id: string }>, [id, version]);
  return (
    <>
      <ErrorNote error={error} />
      <Table caption="Instance actions" rowKey={(a) => a.request_id + a.action} rows={data ?? []} columns={[
        { key: 'action', label: 'Action', value: (a) => a.action },
        { key: 'start', label: 'Started', value: (a) => a.start_time, render: (a) => <time dateTime={a.start_time}>{new Date(a.start_time).toLocaleString()}</time> },
        { key: 'message', label: 'Message', value: (a) => a.message ?? '' },
        { key: 'request', label: 'Request', value: (a) => a.request_id },
      ]} />
    </>
  );
}

export function ServerDetail({ id }: { id: string }) {
  const { data: server, error, reload, set } = useLoad(async () => (await call('GET', 'compute', `/servers/${id}`)).body.server as Server, [id]);
  const kindLoad = useLoad(async () => (server ? kindOfServer(server) : undefined), [id, !!server]);
  const kind = kindLoad.data ?? null;
  const [tab, setTab] = useState('overview');
  const [version, setVersion] = useState(0);
  const [actionError, setActionError] = useState<string | null>(null);
  const latest = useRef(server);
  latest.current = server;
  useEffect(() => onEvent((e) => {
    if (e.type !== 'server' || e.id !== id) return;
    const s = latest.current;
    if (e.action === 'deleted') {
      if (s) set({ ...s, status: 'DELETED' });
      return;
    }
    if (s) set({ ...s, status: e.status ?? s.status, name: e.name ?? s.name, 'OS-EXT-STS:task_state': (e.detail?.task_state as string | null) ?? null });
    setVersion((v) => v + 1);
    if (!e.detail?.task_state) reload();
  }), [id]);
  if (error) return <Page title="Server"><ErrorNote error={error} /><a href="#/servers">Back to servers</a></Page>;
  if (!server) return <Page title="Server"><Loading what="the server" /></Page>;
  const write = canWrite();
  const busy = !!server['OS-EXT-STS:task_state'];
  const run = async (body: unknown) => {
    setActionError(null);
    await act(server.id, body);
  };
  return (
    <Page title={server.name || server.id} actions={<a href="#/servers">All servers</a>}>
      <p class="state"><Status value={server.status} /> {busy && <span class="muted">{server['OS-EXT-STS:task_state']}</span>}</p>
      {server.fault && <p class="error">{server.fault.message}</p>}
      {write && server.status !== 'DELETED' && (
        <div class="actions" aria-label="Server actions" role="group">
          {kindLoad.data !== undefined && ACTIONS.filter((a) => a.when.includes(server.status) && kindCan(kind, a.action) && (!a.admin || isAdmin()) && (a.action !== 'rebuild' || server.image)).map((a) => (
            <ConfirmButton key={a.label} label={a.label} disabled={busy} danger={a.danger} question={`${a.label} server “${server.name}”?${a.action === 'rebuild' ? ' Its disk is written again from its image.' : ''}`} onConfirm={() => run(a.body(server))} />
          ))}
          <ConfirmButton label="Delete" danger question={`Delete server “${server.name}”? This cannot be undone.`} onConfirm={async () => {
            await call('DELETE', 'compute', `/servers/${server.id}`);
            navigate('/servers');
          }} />
        </div>
      )}
      <ErrorNote error={actionError} />
      <Tabs current={tab} onSelect={setTab} tabs={([['overview', 'Overview'], ['volumes', 'Volumes'], ['log', 'Console log'], ['console', 'Serial console'], ['vnc', 'Graphical console'], ['history', 'Action history']] as Array<[string, string]>)
        .filter(([k]) => (k === 'volumes' ? kindCan(kind, 'attach_volume') : k === 'log' ? kindCan(kind, 'os-getConsoleOutput') : k === 'console' ? kindConsoles(kind).includes('serial') : k === 'vnc' ? kindConsoles(kind).includes('vnc') : true))} />
      {tab === 'overview' && (
        <>
          <dl class="props">
            <dt>ID</dt><dd><code>{server.id}</code></dd>
            <dt>Kind</dt><dd>{kind ? KIND_LABEL[kind] : '—'}</dd>
            <dt>Flavor</dt><dd>{server.flavor?.original_name ?? server.flavor?.id} {server.flavor?.vcpus !== undefined && <span class="muted">({server.flavor.vcpus} vCPU, {server.flavor.ram} MiB)</span>}</dd>
            <dt>Image</dt><dd>{server.image ? <code>{server.image.id}</code> : 'booted from a volume'}</dd>
            <dt>Key pair</dt><dd>{server.key_name ?? '—'}</dd>
            <dt>Security groups</dt><dd>{(server.security_groups ?? []).map((g) => g.name).join(', ') || '—'}</dd>
            <dt>Created</dt><dd><time dateTime={server.created}>{new Date(server.created).toLocaleString()}</time></dd>
            <dt>Addresses</dt>
            <dd>
              {Object.keys(server.addresses ?? {}).length === 0 ? '—' : (
                <ul class="plain">
                  {Object.entries(server.addresses).flatMap(([net, list]) => list.map((a) => <li key={net + a.addr}>{a.addr} <span class="muted">{a['OS-EXT-IPS:type'] ?? ''} on {net}</span></li>))}
                </ul>
              )}
            </dd>
            <dt>Metadata</dt>
            <dd>{Object.entries(server.metadata ?? {}).map(([k, v]) => <div key={k}><code>{k}</code> = {v}</div>)}</dd>
          </dl>
          {write && ['ACTIVE', 'SHUTOFF'].includes(server.status) && !busy && (kindCan(kind, 'resize') || kindCan(kind, 'createImage')) && (
            <div class="grid">
              {kindCan(kind, 'resize') && <section class="card"><h2>Resize</h2><ResizeForm server={server} done={reload} /></section>}
              {kindCan(kind, 'createImage') && <section class="card"><h2>Snapshot</h2><SnapshotForm server={server} /></section>}
            </div>
          )}
        </>
      )}
      {tab === 'volumes' && <ServerVolumes server={server} />}
      {tab === 'log' && <ConsoleLog id={server.id} />}
      {tab === 'console' && (server.status === 'ACTIVE' ? <SerialConsole id={server.id} /> : <p>The serial console needs the server ACTIVE.</p>)}
      {tab === 'vnc' && <GraphicalConsole id={server.id} />}
      {tab === 'history' && <History id={server.id} version={version} />}
    </Page>
  );
}
