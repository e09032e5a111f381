// Images: the Glance list (with the images shared with the project, pending
// ones too), each image's page (image detail below), and an upload from a file with a progress bar
// (the image record made first, then its data PUT with XMLHttpRequest, whose
// upload progress fetch does not report).
import { useEffect, useState } from 'preact/hooks';
import { call, canWrite, endpoint, session } from '../api.ts';
import { onEvent } from '../events.ts';
import { ClientTable, ConfirmButton, CreateForm, ErrorNote, Field, Page, UploadProgress, Status, Table, errorText, formatBytes, useLoad, val } from '../ui.tsx';

interface Image { id: string; name: string | null; status: string; visibility: string; size: number | null; disk_format: string | null; container_format: string | null; owner: string; created_at: string }

function putFile(url: string, file: File, onProgress: (f: number) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const x = new XMLHttpRequest();
    x.open('PUT', url);
    x.setRequestHeader('X-Auth-Token', session()!.token);
    x.setRequestHeader('Content-Type', 'application/octet-stream');
    x.upload.onprogress = (e) => {
      if (e.lengthComputable) onProgress(e.loaded / e.total);
    };
    x.onload = () => (x.status >= 200 && x.status < 300 ? resolve() : reject(new Error(`Upload refused: HTTP ${x.status} ${x.responseText.slice(0, 200)}`)));
    x.onerror = () => reject(new Error('Upload failed: the connection broke.'));
    x.send(file);
  });
}

function Upload({ done }: { done: () => void }) {
  const [name, setName] = useState('');
  const [file, setFile] = useState<File | null>(null);
  const [format, setFormat] = useState('docker/raw');
  const [progress, setProgress] = useState<number | null>(null);
  const [error, setError] = useState<string | null>(null);
  const submit = async (e: Event) => {
    e.preventDefault();
    if (!file) return;
    setError(null);
    const [container_format, disk_format] = format.split('/');
    try {
      const r = await call('POST', 'image', '/v2/images', { body: { name: name.trim() || file.name, container_format, disk_format } });
      setProgress(0);
      await putFile(`${endpoint('image')}/v2/images/${r.body.id}/file`, file, setProgress);
      setProgress(1);
      done();
    } catch (err) {
      setError(errorText(err));
    }
  };
  return (
    <form class="form card" onSubmit={submit} aria-label="Upload an image">
      <h2>Upload an image</h2>
      <Field label="Name"><input name="image-name" value={name} onInput={(e) => setName(val(e))} /></Field>
      <Field label="Format">
        <select name="format" value={format} onChange={(e) => setFormat(val(e))}>
          <option value="docker/raw">OCI or Docker archive (container)</option>
          <option value="bare/qcow2">QCOW2 disk (VM)</option>
          <option value="bare/raw">Raw disk (VM)</option>
        </select>
      </Field>
      <Field label="File"><input name="file" type="file" required onChange={(e) => { setFile(e.currentTarget.files?.[0] ?? null); setProgress(null); }} /></Field>
      {progress !== null && <UploadProgress progress={progress} size={file?.size} />}
      <ErrorNote error={error} />
      <button type="submit" class="primary" disabled={!file || (progress !== null && progress < 1)}>Upload</button>
    </form>
  );
}

export function Images() {
  const { data, error, reload } = useLoad(async () => (await call('GET', 'image', '/v2/images?limit=1000&member_status=all')).body.images as Image[], []);
  useEffect(() => onEvent((e) => {
    if (e.type === 'image') reload();
  }), []);
  const pid = session()!.project?.id;
  const write = canWrite();
  return (
    <Page title="Images">
      <ErrorNote error={error} />
      <ClientTable caption="Images" rows={data ?? []} rowKey={(i) => i.id} initialSort={{ key: 'name', dir: 'asc' }} columns={[
        { key: 'name', label: 'Name', value: (i) => i.name ?? i.id, render: (i) => <a href={`#/images/${i.id}`}>{i.name ?? i.id}</a> },
        { key: 'status', label: 'Status', value: (i) => i.status, render: (i) => <Status value={i.status} /> },
        { key: 'format', label: 'Format', value: (i) => `${i.container_format ?? ''}/${i.disk_format ?? ''}` },
        { key: 'size', label: 'Size', value: (i) => i.size ?? 0, render: (i) => formatBytes(i.size) },
        { key: 'visibility', label: 'Visibility', value: (i) => i.visibility },
        { key: 'actions', label: 'Actions', value: () => '', render: (i) => write && i.owner === pid
          ? <ConfirmButton label="Delete" danger question={`Delete image “${i.name ?? i.id}”?`} onConfirm={async () => { await call('DELETE', 'image', `/v2/images/${i.id}`); reload(); }} />
          : null },
      ]} />
      {write && <Upload done={reload} />}
    </Page>
  );
}

/** Glance's own attributes of an image; every other key of its record is a custom property. */
const BASE = new Set(['id', 'name', 'status', 'visibility', 'protected', 'os_hidden', 'checksum', 'os_hash_algo', 'os_hash_value', 'owner', 'size', 'virtual_size',
  'min_ram', 'min_disk', 'container_format', 'disk_format', 'created_at', 'updated_at', 'tags', 'direct_url', 'locations', 'self', 'file', 'schema', 'stores']);

interface Member { member_id: string; status: string; created_at: string }

/** A JSON patch to Glance (its own media type). */
const patch = (id: string, ops: unknown[]) => call('PATCH', 'image', `/v2/images/${id}`, { raw: JSON.stringify(ops), headers: { 'Content-Type': 'application/openstack-images-v2.1-json-patch' } });

/**
 * One image: its record, its editable attributes (name, visibility, minimum
 * disk and RAM, protected) and custom properties (added, changed, removed by
 * JSON patch), and its sharing: the owner adds and removes member projects
 * (visibility `shared`); a member project accepts or rejects the share.
 */
export function ImageDetail({ id }: { id: string }) {
  const { data: image, error, reload } = useLoad(async () => (await call('GET', 'image', `/v2/images/${id}`)).body as Record<string, any>, [id]);
  useEffect(() => onEvent((e) => {
    if (e.type === 'image' && e.id === id) reload();
  }), [id]);
  const pid = session()!.project?.id;
  const owner = !!image && image.owner === pid && canWrite();
  const members = useLoad(async () => (image && (image.visibility === 'shared' || image.owner !== pid)
    ? (await call('GET', 'image', `/v2/images/${id}/members`)).body.members as Member[] : []), [id, image?.visibility, image?.updated_at]);
  const [edit, setEdit] = useState<Record<string, string> | null>(null);
  const [key, setKey] = useState('');
  const [value, setValue] = useState('');
  const [project, setProject] = useState('');
  if (error) return <Page title="Image"><ErrorNote error={error} /><a href="#/images">Back to images</a></Page>;
  if (!image) return <Page title="Image"><p class="muted">Loading the image…</p></Page>;
  const custom = Object.entries(image).filter(([k]) => !BASE.has(k));
  const mine = (members.data ?? []).find((m) => m.member_id === pid);
  const fields: Array<[string, string]> = [['name', 'Name'], ['min_disk', 'Minimum disk (GiB)'], ['min_ram', 'Minimum RAM (MiB)']];
  const current = { name: image.name ?? '', min_disk: String(image.min_disk ?? 0), min_ram: String(image.min_ram ?? 0), visibility: image.visibility, protected: String(!!image.protected) };
  const form = edit ?? current;
  return (
    <Page title={image.name ?? image.id} actions={<a href="#/images">All images</a>}>
      <p class="state"><Status value={image.status} /></p>
      <dl class="props">
        <dt>ID</dt><dd><code>{image.id}</code></dd>
        <dt>Format</dt><dd>{image.container_format ?? '—'}/{image.disk_format ?? '—'}</dd>
        <dt>Size</dt><dd>{formatBytes(image.size)}</dd>
        <dt>Visibility</dt><dd>{image.visibility}</dd>
        <dt>Protected</dt><dd>{image.protected ? 'yes' : 'no'}</dd>
        <dt>Minimum disk</dt><dd>{image.min_disk ?? 0} GiB</dd>
        <dt>Minimum RAM</dt><dd>{image.min_ram ?? 0} MiB</dd>
        <dt>Owner</dt><dd><code>{image.owner}</code></dd>
        <dt>Checksum</dt><dd><code>{image.os_hash_value ?? image.checksum ?? '—'}</code></dd>
        <dt>Created</dt><dd><time dateTime={image.created_at}>{new Date(image.created_at).toLocaleString()}</time></dd>
      </dl>
      <ClientTable caption="Properties" rows={custom} rowKey={([k]) => k} initialSort={{ key: 'key', dir: 'asc' }} columns={[
        { key: 'key', label: 'Property', value: ([k]) => k },
        { key: 'value', label: 'Value', value: ([, v]) => (typeof v === 'string' ? v : JSON.stringify(v)) },
        { key: 'actions', label: 'Actions', value: () => '', sortable: false, render: ([k]) => owner
          ? <ConfirmButton label="Remove" danger question={`Remove property “${k}”?`} onConfirm={async () => { await patch(id, [{ op: 'remove', path: `/${k}` }]); reload(); }} />
          : null },
      ]} />
      {owner && (
        <div class="grid">
          <CreateForm title="Edit the image" label="Save" submit={async () => {
            const ops: unknown[] = [];
            if (form.name !== current.name) ops.push({ op: 'replace', path: '/name', value: form.name });
            for (const k of ['min_disk', 'min_ram'] as const) if (form[k] !== current[k]) ops.push({ op: 'replace', path: `/${k}`, value: Number(form[k]) });
            if (form.visibility !== current.visibility) ops.push({ op: 'replace', path: '/visibility', value: form.visibility });
            if (form.protected !== current.protected) ops.push({ op: 'replace', path: '/protected', value: form.protected === 'true' });
            if (ops.length) await patch(id, ops);
            setEdit(null);
            reload();
          }}>
            {fields.map(([k, label]) => (
              <Field key={k} label={label}><input name={`image-${k}`} value={form[k as keyof typeof form]} inputMode={k === 'name' ? undefined : 'numeric'} onInput={(e) => setEdit({ ...form, [k]: val(e) })} /></Field>
            ))}
            <Field label="Visibility" hint="Shared: the member projects below may use it; public needs an admin.">
              <select name="image-visibility" value={form.visibility} onChange={(e) => setEdit({ ...form, visibility: val(e) })}>
                {['private', 'shared', 'community', 'public'].map((v) => <option key={v} value={v}>{v}</option>)}
              </select>
            </Field>
            <label class="check"><input type="checkbox" checked={form.protected === 'true'} onChange={(e) => setEdit({ ...form, protected: String(e.currentTarget.checked) })} /> Protected (cannot be deleted)</label>
          </CreateForm>
          <CreateForm title="Set a property" label="Set" submit={async () => {
            await patch(id, [{ op: key in image ? 'replace' : 'add', path: `/${key.trim()}`, value }]);
            setKey('');
            setValue('');
            reload();
          }}>
            <Field label="Property"><input name="property-key" value={key} onInput={(e) => setKey(val(e))} required /></Field>
            <Field label="Value"><input name="property-value" value={value} onInput={(e) => setValue(val(e))} /></Field>
          </CreateForm>
        </div>
      )}
      <h2>Sharing</h2>
      <ErrorNote error={members.error} />
      {image.owner === pid ? (
        image.visibility !== 'shared' ? <p class="muted">Set the visibility to shared to share the image with other projects.</p> : (
          <>
            <Table caption="Member projects" rows={members.data ?? []} rowKey={(m) => m.member_id} empty="Shared with no project yet." columns={[
              { key: 'member', label: 'Project', value: (m) => m.member_id },
              { key: 'status', label: 'Status', value: (m) => m.status },
              { key: 'actions', label: 'Actions', value: () => '', render: (m) => owner
                ? <ConfirmButton label="Remove" danger question={`Stop sharing with project ${m.member_id}?`} onConfirm={async () => { await call('DELETE', 'image', `/v2/images/${id}/members/${m.member_id}`); members.reload(); }} />
                : null },
            ]} />
            {owner && (
              <CreateForm title="Share with a project" label="Share" submit={async () => {
                await call('POST', 'image', `/v2/images/${id}/members`, { body: { member: project.trim() } });
                setProject('');
                members.reload();
              }}>
                <Field label="Project ID"><input name="member-project" value={project} onInput={(e) => setProject(val(e))} required /></Field>
              </CreateForm>
            )}
          </>
        )
      ) : mine ? (
        <div class="actions" role="group" aria-label="This project's share">
          <span>Shared with this project: {mine.status}</span>
          {canWrite() && mine.status !== 'accepted' && <ConfirmButton label="Accept" question="Accept the share? The image is then listed with this project's images." onConfirm={async () => { await call('PUT', 'image', `/v2/images/${id}/members/${pid}`, { body: { status: 'accepted' } }); members.reload(); }} />}
          {canWrite() && mine.status !== 'rejected' && <ConfirmButton label="Reject" question="Reject the share?" onConfirm={async () => { await call('PUT', 'image', `/v2/images/${id}/members/${pid}`, { body: { status: 'rejected' } }); members.reload(); }} />}
        </div>
      ) : <p class="muted">Not this project's image.</p>}
    </Page>
  );
}
