// Volumes: the project's Cinder volumes, snapshots and backups, each a list
// (sorted, filtered, paged in the browser), with the create forms (a volume
// blank, from an image or from a snapshot; a snapshot of a volume), edit
// (name, description), extend, upload to an image and deletes, each confirmed. Live through the event stream (`volume`,
// `volume_snapshot`). Attaching and detaching is on the server's page
// (server-detail.tsx), through Nova, as the CLI's `server add volume` does.
import { useEffect, useState } from 'preact/hooks';
import { ApiError, call, canWrite } from '../api.ts';
import { onEvent } from '../events.ts';
import { navigate } from '../router.ts';
import { ClientTable, ConfirmButton, CreateForm, DialogForm, ErrorNote, Field, Page, Status, Tabs, debounce, useLoad, val, type Column } from '../ui.tsx';

export interface Volume {
  id: string; name: string | null; status: string; size: number; volume_type: string | null; bootable: string;
  description: string | null; created_at: string; snapshot_id: string | null; source_volid: string | null;
  attachments: Array<{ server_id: string; device: string; attachment_id: string }>;
  'os-vol-tenant-attr:tenant_id'?: string;
}
interface Snapshot { id: string; name: string | null; status: string; size: number; volume_id: string; created_at: string; description: string | null }
interface Backup { id: string; name: string | null; status: string; fail_reason: string | null; size: number; volume_id: string; created_at: string; is_incremental: boolean }
interface VolumeType { id: string; name: string; description: string | null }
interface Image { id: string; name: string | null; status: string; disk_format: string | null; container_format: string | null; size: number | null; min_disk?: number }

/** Calls Cinder v3 (the catalog's `block-storage`, project-less). */
export const cinder = <T = any>(method: string, path: string, body?: unknown) => call<T>(method, 'block-storage', path, body === undefined ? {} : { body });

export const volumeLabel = (v: { id: string; name: string | null }): string => v.name || v.id;

interface Data { volumes: Volume[]; snapshots: Snapshot[]; backups: Backup[] | null; types: VolumeType[]; images: Image[] }

/** Every volume of the project (Cinder's pages of up to 1,000 followed). */
export async function allVolumes(): Promise<Volume[]> {
  const out: Volume[] = [];
  let marker = '';
  for (;;) {
    const r = await cinder('GET', `/volumes/detail?limit=1000${marker ? `&marker=${marker}` : ''}`);
    const page = r.body.volumes as Volume[];
    out.push(...page);
    if (!(r.body.volumes_links ?? []).some((l: { rel: string }) => l.rel === 'next') || page.length === 0) return out;
    marker = page[page.length - 1]!.id;
  }
}

async function load(): Promise<Data> {
  const [volumes, snapshots, backups, types, images] = await Promise.all([
    allVolumes(),
    cinder('GET', '/snapshots/detail?limit=1000').then((r) => r.body.snapshots as Snapshot[]),
    // backups are a Cinder resource this cloud may not serve: its 404 says so
    cinder('GET', '/backups/detail?limit=1000').then((r) => r.body.backups as Backup[], (err) => {
      if (err instanceof ApiError && err.status === 404) return null;
      throw err;
    }),
    cinder('GET', '/types').then((r) => r.body.volume_types as VolumeType[]),
    call('GET', 'image', '/v2/images?limit=1000&status=active').then((r) => r.body.images as Image[], () => [] as Image[]),
  ]);
  return { volumes, snapshots, backups, types, images };
}

const ago = (t: string) => <time dateTime={t}>{new Date(t.endsWith('Z') ? t : `${t}Z`).toLocaleString()}</time>;

function ExtendButton({ v, done }: { v: Volume; done: () => void }) {
  const [size, setSize] = useState(String(v.size + 1));
  return (
    <DialogForm label="Extend" title={`Extend volume “${volumeLabel(v)}”`} disabled={!['available', 'in-use'].includes(v.status)} submit={async () => {
      await cinder('POST', `/volumes/${v.id}/action`, { 'os-extend': { new_size: Number(size) } });
      done();
    }}>
      <Field label="New size (GiB)" hint={`Now ${v.size} GiB; a volume only grows.`}>
        <input name="new-size" type="number" inputMode="numeric" value={size} onInput={(e) => setSize(val(e))} required />
      </Field>
    </DialogForm>
  );
}

function EditButton({ v, done }: { v: Volume; done: () => void }) {
  const [name, setName] = useState(v.name ?? '');
  const [description, setDescription] = useState(v.description ?? '');
  return (
    <DialogForm label="Edit" title={`Edit volume “${volumeLabel(v)}”`} submit={async () => {
      await cinder('PUT', `/volumes/${v.id}`, { volume: { name: name.trim(), description } });
      done();
    }}>
      <Field label="Name"><input name="edit-name" value={name} onInput={(e) => setName(val(e))} /></Field>
      <Field label="Description"><textarea name="edit-description" value={description} onInput={(e) => setDescription(val(e))} rows={3} /></Field>
    </DialogForm>
  );
}

function UploadImageButton({ v, done }: { v: Volume; done: () => void }) {
  const [name, setName] = useState(`${volumeLabel(v)}-image`);
  // QCOW2 by default: a volume's unwritten space costs nothing in it (raw copies every byte)
  const [format, setFormat] = useState('qcow2');
  const [note, setNote] = useState<string | null>(null);
  return (
    <>
      <DialogForm label="Upload to image" title={`Upload volume “${volumeLabel(v)}” to an image`} disabled={!['available', 'in-use'].includes(v.status)} submit={async () => {
        // an attached volume's data as it is now: Cinder's `force`
        const r = await cinder('POST', `/volumes/${v.id}/action`, { 'os-volume_upload_image': { image_name: name.trim(), disk_format: format, container_format: 'bare', force: v.status === 'in-use' } });
        setNote(`Image ${r.body?.['os-volume_upload_image']?.image_id ?? ''} is being filled from the volume.`);
        done();
      }}>
        <Field label="Image name"><input name="upload-image-name" value={name} onInput={(e) => setName(val(e))} required /></Field>
        <Field label="Disk format">
          <select name="upload-image-format" value={format} onChange={(e) => setFormat(val(e))}>
            <option value="qcow2">QCOW2</option>
            <option value="raw">Raw</option>
          </select>
        </Field>
      </DialogForm>
      {note && <span class="muted" role="status">{note}</span>}
    </>
  );
}

function VolumesTab({ data, reload, query }: { data: Data; reload: () => void; query: URLSearchParams }) {
  const write = canWrite();
  const [name, setName] = useState('');
  const [size, setSize] = useState('1');
  const [type, setType] = useState('');
  // a snapshot's “Create volume” comes here with ?snapshot=<id>
  const [source, setSource] = useState<'blank' | 'image' | 'snapshot'>(query.get('snapshot') ? 'snapshot' : 'blank');
  const [image, setImage] = useState('');
  const [snapshot, setSnapshot] = useState(query.get('snapshot') ?? '');
  const [snapName, setSnapName] = useState('');
  const [snapVolume, setSnapVolume] = useState('');
  // only what Cinder's create flow takes: bare raw or qcow2 images
  const images = data.images.filter((i) => i.container_format === 'bare' && (i.disk_format === 'raw' || i.disk_format === 'qcow2'));
  // the attached servers' names: one list of the project's servers (ids and names), not a call per server
  const attachedIds = [...new Set(data.volumes.flatMap((v) => v.attachments.map((a) => a.server_id)))].sort().join();
  const servers = useLoad(async () => {
    const names: Record<string, string> = {};
    if (!attachedIds) return names;
    const r = await call('GET', 'compute', '/servers?limit=1000').catch(() => null);
    for (const s of (r?.body.servers ?? []) as Array<{ id: string; name: string }>) names[s.id] = s.name;
    return names;
  }, [attachedIds]);
  const columns: Column<Volume>[] = [
    { key: 'name', label: 'Name', value: volumeLabel },
    { key: 'status', label: 'Status', value: (v) => v.status, render: (v) => <Status value={v.status} /> },
    { key: 'size', label: 'Size', value: (v) => v.size, render: (v) => `${v.size} GiB` },
    { key: 'type', label: 'Type', value: (v) => v.volume_type ?? '' },
    { key: 'bootable', label: 'Bootable', value: (v) => (v.bootable === 'true' ? 'yes' : 'no') },
    {
      key: 'attached', label: 'Attached to', value: (v) => v.attachments.map((a) => servers.data?.[a.server_id] ?? a.server_id).join(', '),
      render: (v) => v.attachments.length === 0 ? '—' : (
        <ul class="plain">{v.attachments.map((a) => <li key={a.attachment_id}><a href={`#/servers/${a.server_id}`}>{servers.data?.[a.server_id] ?? a.server_id}</a> <span class="muted">{a.device}</span></li>)}</ul>
      ),
    },
    { key: 'created', label: 'Created', value: (v) => v.created_at, render: (v) => ago(v.created_at) },
  ];
  if (write) {
    columns.push({
      key: 'actions', label: 'Actions', value: () => '', sortable: false, render: (v) => (
        <div class="actions">
          <EditButton v={v} done={reload} />
          <ExtendButton v={v} done={reload} />
          <UploadImageButton v={v} done={reload} />
          <ConfirmButton label="Delete" danger disabled={v.attachments.length > 0} question={`Delete volume “${volumeLabel(v)}”? Its data is lost.`}
            onConfirm={async () => { await cinder('DELETE', `/volumes/${v.id}`); reload(); }} />
        </div>
      ),
    });
  }
  return (
    <>
      <ClientTable caption="Volumes" rows={data.volumes} rowKey={(v) => v.id} initialSort={{ key: 'created', dir: 'desc' }} columns={columns} />
      {write && (
        <div class="grid">
          <CreateForm title="Create a volume" submit={async () => {
            const volume: Record<string, unknown> = { name: name.trim() || null, size: size.trim() === '' ? null : Number(size) };
            if (type) volume.volume_type = type;
            if (source === 'image') volume.imageRef = image;
            if (source === 'snapshot') volume.snapshot_id = snapshot;
            await cinder('POST', '/volumes', { volume });
            setName('');
            reload();
          }}>
            <Field label="Name"><input name="volume-name" value={name} onInput={(e) => setName(val(e))} /></Field>
            <Field label="Size (GiB)" hint={source === 'blank' ? undefined : 'At least the source’s size; empty: the source’s size.'}>
              <input name="volume-size" type="number" inputMode="numeric" value={size} onInput={(e) => setSize(val(e))} required={source === 'blank'} />
            </Field>
            <Field label="Type">
              <select name="volume-type" value={type} onChange={(e) => setType(val(e))}>
                <option value="">The default type</option>
                {data.types.map((t) => <option key={t.id} value={t.name}>{t.name}</option>)}
              </select>
            </Field>
            <fieldset>
              <legend>Source</legend>
              {(['blank', 'image', 'snapshot'] as const).map((s) => (
                <label class="radio" key={s}><input type="radio" name="volume-source" value={s} checked={source === s} onChange={() => setSource(s)} /> {{ blank: 'Empty', image: 'An image', snapshot: 'A snapshot' }[s]}</label>
              ))}
            </fieldset>
            {source === 'image' && (
              <Field label="Image">
                <select name="volume-image" value={image} onChange={(e) => setImage(val(e))} required>
                  <option value="">Choose…</option>
                  {images.map((i) => <option key={i.id} value={i.id}>{i.name ?? i.id} ({i.disk_format})</option>)}
                </select>
              </Field>
            )}
            {source === 'snapshot' && (
              <Field label="Snapshot">
                <select name="volume-snapshot" value={snapshot} onChange={(e) => setSnapshot(val(e))} required>
                  <option value="">Choose…</option>
                  {data.snapshots.filter((s) => s.status === 'available').map((s) => <option key={s.id} value={s.id}>{s.name || s.id} ({s.size} GiB)</option>)}
                </select>
              </Field>
            )}
          </CreateForm>
          <CreateForm title="Snapshot a volume" submit={async () => {
            // an attached volume's snapshot is Cinder's `force` (crash-consistent)
            const vol = data.volumes.find((v) => v.id === snapVolume);
            await cinder('POST', '/snapshots', { snapshot: { volume_id: snapVolume, name: snapName.trim() || null, force: vol?.status === 'in-use' } });
            setSnapName('');
            reload();
          }}>
            <Field label="Volume">
              <select name="snapshot-volume" value={snapVolume} onChange={(e) => setSnapVolume(val(e))} required>
                <option value="">Choose…</option>
                {data.volumes.filter((v) => ['available', 'in-use'].includes(v.status)).map((v) => <option key={v.id} value={v.id}>{volumeLabel(v)} ({v.size} GiB)</option>)}
              </select>
            </Field>
            <Field label="Snapshot name"><input name="snapshot-name" value={snapName} onInput={(e) => setSnapName(val(e))} /></Field>
          </CreateForm>
        </div>
      )}
    </>
  );
}

function SnapshotsTab({ data, reload }: { data: Data; reload: () => void; query: URLSearchParams }) {
  const columns: Column<Snapshot>[] = [
    { key: 'name', label: 'Name', value: (s) => s.name || s.id },
    { key: 'status', label: 'Status', value: (s) => s.status, render: (s) => <Status value={s.status} /> },
    { key: 'size', label: 'Size', value: (s) => s.size, render: (s) => `${s.size} GiB` },
    { key: 'volume', label: 'Volume', value: (s) => { const v = data.volumes.find((x) => x.id === s.volume_id); return v ? volumeLabel(v) : s.volume_id; } },
    { key: 'created', label: 'Created', value: (s) => s.created_at, render: (s) => ago(s.created_at) },
  ];
  if (canWrite()) {
    columns.push({
      key: 'actions', label: 'Actions', value: () => '', sortable: false,
      render: (s) => (
        <div class="actions">
          <button type="button" disabled={s.status !== 'available'} onClick={() => navigate(`/volumes?tab=volumes&snapshot=${s.id}`)}>Create volume</button>
          <ConfirmButton label="Delete" danger question={`Delete snapshot “${s.name || s.id}”?`} onConfirm={async () => { await cinder('DELETE', `/snapshots/${s.id}`); reload(); }} />
        </div>
      ),
    });
  }
  return (
    <>
      <ClientTable caption="Snapshots" rows={data.snapshots} rowKey={(s) => s.id} initialSort={{ key: 'created', dir: 'desc' }} columns={columns} />
      {canWrite() && <p class="muted">Snapshot a volume, or make a volume from a snapshot, on the <a href="#/volumes">Volumes</a> tab.</p>}
    </>
  );
}

function BackupsTab({ data, reload }: { data: Data; reload: () => void; query: URLSearchParams }) {
  const [volume, setVolume] = useState('');
  const [name, setName] = useState('');
  const [incremental, setIncremental] = useState(false);
  if (data.backups === null) return <p role="status">This cloud does not serve volume backups yet: Cinder’s backups API answers 404. Snapshots keep a volume’s data point in time.</p>;
  const backups = data.backups;
  const columns: Column<Backup>[] = [
    { key: 'name', label: 'Name', value: (b) => b.name || b.id },
    // a backup that failed after its 202 says why (Cinder's fail_reason)
    { key: 'status', label: 'Status', value: (b) => b.status, render: (b) => <>{<Status value={b.status} />}{b.status === 'error' && b.fail_reason && <span class="muted"> {b.fail_reason}</span>}</> },
    { key: 'size', label: 'Size', value: (b) => b.size, render: (b) => `${b.size} GiB` },
    { key: 'kind', label: 'Kind', value: (b) => (b.is_incremental ? 'incremental' : 'full') },
    { key: 'volume', label: 'Volume', value: (b) => { const v = data.volumes.find((x) => x.id === b.volume_id); return v ? volumeLabel(v) : b.volume_id; } },
    { key: 'created', label: 'Created', value: (b) => b.created_at, render: (b) => ago(b.created_at) },
  ];
  if (canWrite()) {
    columns.push({
      key: 'actions', label: 'Actions', value: () => '', sortable: false,
      render: (b) => (
        <div class="actions">
          {/* Cinder makes a new volume of the backup's size when no volume is named */}
          <ConfirmButton label="Restore" question={`Restore backup “${b.name || b.id}” into a new volume?`} disabled={b.status !== 'available'}
            onConfirm={async () => { await cinder('POST', `/backups/${b.id}/restore`, { restore: { name: `${b.name || 'backup'}-restored` } }); reload(); }} />
          <ConfirmButton label="Delete" danger question={`Delete backup “${b.name || b.id}”?`} onConfirm={async () => { await cinder('DELETE', `/backups/${b.id}`); reload(); }} />
        </div>
      ),
    });
  }
  // an incremental backup needs a full one of the same volume to build on
  const hasFull = backups.some((b) => b.volume_id === volume && b.status === 'available');
  return (
    <>
      <ClientTable caption="Backups" rows={backups} rowKey={(b) => b.id} initialSort={{ key: 'created', dir: 'desc' }} columns={columns} />
      {canWrite() && (
        <div class="grid">
          <CreateForm title="Back up a volume" label="Back up" submit={async () => {
            // an attached volume is backed up from a snapshot of it: Cinder's `force` (a pool that cannot snapshot it
            // answers 400 at once, shown in the form)
            const vol = data.volumes.find((v) => v.id === volume);
            await cinder('POST', '/backups', { backup: { volume_id: volume, name: name.trim() || null, incremental: incremental && hasFull, force: vol?.status === 'in-use' } });
            setName('');
            reload();
          }}>
            <Field label="Volume">
              <select name="backup-volume" value={volume} onChange={(e) => setVolume(val(e))} required>
                <option value="">Choose…</option>
                {data.volumes.filter((v) => ['available', 'in-use'].includes(v.status)).map((v) => <option key={v.id} value={v.id}>{volumeLabel(v)} ({v.size} GiB)</option>)}
              </select>
            </Field>
            <Field label="Backup name"><input name="backup-name" value={name} onInput={(e) => setName(val(e))} /></Field>
            <label class="check"><input type="checkbox" name="backup-incremental" checked={incremental && hasFull} disabled={!hasFull} onChange={(e) => setIncremental((e.target as HTMLInputElement).checked)} /> Incremental (only the blocks changed since the last backup)</label>
          </CreateForm>
        </div>
      )}
    </>
  );
}

const TABS: Array<[string, string]> = [['volumes', 'Volumes'], ['snapshots', 'Snapshots'], ['backups', 'Backups']];

export function Volumes({ tab, query }: { tab: string; query: URLSearchParams }) {
  const { data, error, reload } = useLoad(load, []);
  useEffect(() => {
    const soon = debounce(reload);
    const off = onEvent((e) => {
      if (e.type === 'volume' || e.type === 'volume_snapshot' || e.type === 'volume_backup') soon();
    });
    return () => {
      off();
      soon.cancel();
    };
  }, []);
  const Tab = { volumes: VolumesTab, snapshots: SnapshotsTab, backups: BackupsTab }[tab] ?? VolumesTab;
  return (
    <Page title="Volumes">
      <Tabs tabs={TABS} current={tab} onSelect={(k) => navigate(`/volumes?tab=${k}`)} />
      <ErrorNote error={error} />
      {data ? <Tab key={query.toString()} data={data} reload={reload} query={query} /> : !error && <p class="muted">Loading volumes…</p>}
    </Page>
  );
}
