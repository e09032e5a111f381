// Images: the Glance list, and an upload from a file with a progress bar
// (the image record made first, then its data PUT with XMLHttpRequest, whose
// upload progress fetch does not report).
import { useState } from 'preact/hooks';
import { call, canWrite, endpoint, session } from '../api.ts';
import { onEvent } from '../events.ts';
import { useEffect } from 'preact/hooks';
import { ClientTable, ConfirmButton, ErrorNote, Field, Page, Status, errorText, formatBytes, useLoad, val } from '../ui.tsx';

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
      <Field label="File"><input name="file" type="file" required onChange={(e) => setFile(e.currentTarget.files?.[0] ?? null)} /></Field>
      {progress !== null && (
        <label class="field">
          <span>Upload progress</span>
          <progress max={1} value={progress}>{Math.round(progress * 100)}%</progress>
          <small class="muted">{Math.round(progress * 100)}% of {formatBytes(file?.size)}</small>
        </label>
      )}
      <ErrorNote error={error} />
      <button type="submit" class="primary" disabled={!file || (progress !== null && progress < 1)}>Upload</button>
    </form>
  );
}

export function Images() {
  const { data, error, reload } = useLoad(async () => (await call('GET', 'image', '/v2/images?limit=1000')).body.images as Image[], []);
  useEffect(() => onEvent((e) => {
    if (e.type === 'image') reload();
  }), []);
  const pid = session()!.project?.id;
  const write = canWrite();
  return (
    <Page title="Images">
      <ErrorNote error={error} />
      <ClientTable caption="Images" rows={data ?? []} rowKey={(i) => i.id} initialSort={{ key: 'name', dir: 'asc' }} columns={[
        { key: 'name', label: 'Name', value: (i) => i.name ?? i.id },
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
