// Object storage (Swift under /object): the project's containers, and each
// container's objects as a file browser (folders by the `/` delimiter, as the
// swift CLI shows pseudo-directories); upload with a progress bar
// (XMLHttpRequest), download with one (fetched with the token and read chunk by
// chunk, then handed to the browser as a file), the container's public/private toggle (X-Container-Read
// `.r:*,.rlistings`, removed for private) and a TempURL per object (HMAC-SHA256
// in the browser with the account's Temp-URL-Key, made once if the account has
// none). Deletes are confirmed; Swift's refusals (a container not empty) shown.
// The registry tab lists the OCI registry's repositories and tags the token
// sees, each tag with its `podman pull` line, and each repository's public/
// private toggle (Stratus's /v2/_stratus/repositories extension).
import { useState } from 'preact/hooks';
import { call, canWrite, endpoint, session } from '../api.ts';
import { navigate } from '../router.ts';
import { ClientTable, ConfirmButton, CreateForm, ErrorNote, Field, Page, UploadProgress, Tabs, errorText, formatBytes, useLoad, val, type Column } from '../ui.tsx';

interface Container { name: string; count: number; bytes: number; last_modified?: string }
interface Entry { name?: string; subdir?: string; bytes?: number; content_type?: string; last_modified?: string; hash?: string }

/** A path under the account: each segment of a container or object name percent-encoded, its slashes kept. */
const pathOf = (container: string, object = '') => `/${encodeURIComponent(container)}${object ? `/${object.split('/').map(encodeURIComponent).join('/')}` : ''}`;
const swift = (method: string, path: string, headers: Record<string, string> = {}) => call(method, 'object-store', path, { headers });

function putFile(url: string, file: File, onProgress: (f: number) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const x = new XMLHttpRequest();
    x.open('PUT', url);
    x.setRequestHeader('X-Auth-Token', session()!.token);
    x.setRequestHeader('Content-Type', file.type || 'application/octet-stream');
    x.upload.onprogress = (e) => {
      if (e.lengthComputable) onProgress(e.loaded / e.total);
    };
    x.onload = () => (x.status >= 200 && x.status < 300 ? resolve() : reject(new Error(`Upload refused: HTTP ${x.status} ${x.responseText.slice(0, 200)}`)));
    x.onerror = () => reject(new Error('Upload failed: the connection broke.'));
    x.send(file);
  });
}

/**
 * The object's bytes fetched with the token (read chunk by chunk, `onProgress`
 * told the fraction when the length is known), then saved by the browser under
 * the name's last segment.
 */
async function download(container: string, object: string, onProgress: (loaded: number, total: number | null) => void): Promise<void> {
  const r = await fetch(`${endpoint('object-store')}${pathOf(container, object)}`, { headers: { 'X-Auth-Token': session()!.token }, credentials: 'omit', cache: 'no-store' });
  if (!r.ok || !r.body) throw new Error(`Download refused: HTTP ${r.status}`);
  const length = Number(r.headers.get('content-length'));
  const total = Number.isFinite(length) && length > 0 ? length : null;
  const parts: Uint8Array[] = [];
  let loaded = 0;
  const reader = r.body.getReader();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    parts.push(value);
    loaded += value.length;
    onProgress(loaded, total);
  }
  onProgress(loaded, loaded);
  const url = URL.createObjectURL(new Blob(parts as BlobPart[], { type: r.headers.get('content-type') ?? 'application/octet-stream' }));
  const a = document.createElement('a');
  a.href = url;
  a.download = object.split('/').pop() || object;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/** The account's Temp-URL-Key, set to a new random one when the account has none. */
async function tempUrlKey(): Promise<string> {
  const h = await swift('HEAD', '');
  const key = h.headers.get('x-account-meta-temp-url-key');
  if (key) return key;
  const fresh = Array.from(crypto.getRandomValues(new Uint8Array(24)), (b) => b.toString(16).padStart(2, '0')).join('');
  await swift('POST', '', { 'X-Account-Meta-Temp-URL-Key': fresh });
  return fresh;
}

/** A GET TempURL for the object, valid `seconds`: HMAC-SHA256 over "GET\nexpires\npath" (the path as this page calls it). */
async function tempUrl(container: string, object: string, seconds: number): Promise<string> {
  if (!crypto.subtle) throw new Error('Signing a TempURL needs the dashboard over HTTPS (or on localhost).');
  const key = await tempUrlKey();
  const url = new URL(`${endpoint('object-store')}${pathOf(container, object)}`);
  const expires = Math.floor(Date.now() / 1000) + seconds;
  const enc = new TextEncoder();
  const k = await crypto.subtle.importKey('raw', enc.encode(key), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  const sig = new Uint8Array(await crypto.subtle.sign('HMAC', k, enc.encode(`GET\n${expires}\n${url.pathname}`)));
  url.search = `temp_url_sig=${Array.from(sig, (b) => b.toString(16).padStart(2, '0')).join('')}&temp_url_expires=${expires}`;
  return url.toString();
}

function TempUrlButton({ container, object }: { container: string; object: string }) {
  const [url, setUrl] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  return (
    <>
      <button type="button" onClick={async () => {
        setError(null);
        try {
          setUrl(await tempUrl(container, object, 24 * 3600));
        } catch (err) {
          setError(errorText(err));
        }
      }}>TempURL</button>
      {url && <label class="field"><span class="sr-only">TempURL of {object}</span><input readOnly value={url} class="temp-url" onFocus={(e) => e.currentTarget.select()} /><small class="muted">Valid 24 hours, no token needed.</small></label>}
      <ErrorNote error={error} />
    </>
  );
}

/** The registry (/v2 on this server, which takes the Keystone token): the project's repositories and their tags, each with its pull line. */
async function registry<T>(path: string): Promise<T> {
  return (await call<T>('GET', null, `/v2${path}`)).body;
}

/** podman's flag for a registry served over plain HTTP (this page's own scheme tells). */
const tlsFlag = (): string => (location.protocol === 'http:' ? ' --tls-verify=false' : '');

interface Repo { name: string; tags: string[]; public: boolean | null }

function Registry() {
  const { data, error, reload } = useLoad(async (): Promise<Repo[]> => {
    const { repositories } = await registry<{ repositories: string[] }>('/_catalog?n=1000');
    return Promise.all(repositories.map(async (name) => {
      const [tags, vis] = await Promise.all([
        registry<{ tags: string[] | null }>(`/${name}/tags/list`).then((x) => (x.tags ?? []).sort(), () => [] as string[]),
        // Stratus's extension: whether anyone may pull it
        registry<{ public: boolean }>(`/_stratus/repositories/${name}`).then((x) => x.public, () => null),
      ]);
      return { name, tags, public: vis };
    }));
  }, []);
  const write = canWrite();
  const setPublic = (repo: Repo, pub: boolean) => async () => {
    await call('PUT', null, `/v2/_stratus/repositories/${repo.name}`, { body: { public: pub } });
    reload();
  };
  return (
    <>
      <p class="muted">Push with <code>podman login{tlsFlag()} {location.host}</code> (your user name and password, or an application credential’s id and secret), then <code>podman push{tlsFlag()} {location.host}/&lt;project&gt;/&lt;name&gt;:&lt;tag&gt;</code>.</p>
      <ErrorNote error={error} />
      <ClientTable caption="Registry repositories" rows={data ?? []} rowKey={(r) => r.name} initialSort={{ key: 'repo', dir: 'asc' }} columns={[
        { key: 'repo', label: 'Repository', value: (r) => r.name },
        { key: 'visibility', label: 'Visibility', value: (r) => (r.public === null ? '' : r.public ? 'public' : 'private'), render: (r) => (
          <>
            <span>{r.public === null ? '—' : r.public ? 'public: anyone may pull' : 'private'}</span>{' '}
            {write && r.public !== null && (r.public
              ? <ConfirmButton label="Make private" question={`Make repository “${r.name}” private?`} onConfirm={setPublic(r, false)} />
              : <ConfirmButton label="Make public" danger question={`Make repository “${r.name}” public? Anyone may pull its images without logging in.`} onConfirm={setPublic(r, true)} />)}
          </>
        ) },
        { key: 'pull', label: 'Tags', value: (r) => r.tags.join(' '), sortable: false, render: (r) => (r.tags.length === 0 ? '(no tags)' : (
          <ul class="plain">{r.tags.map((t) => <li key={t}><code>podman pull{tlsFlag()} {location.host}/{r.name}:{t}</code></li>)}</ul>
        )) },
      ]} />
    </>
  );
}

function Containers({ tab }: { tab: string }) {
  const { data, error, reload } = useLoad(async () => (await swift('GET', '?format=json&limit=10000')).body as Container[], []);
  const [name, setName] = useState('');
  const write = canWrite();
  const columns: Column<Container>[] = [
    { key: 'name', label: 'Name', value: (c) => c.name, render: (c) => <a href={`#/objects?container=${encodeURIComponent(c.name)}`}>{c.name}</a> },
    { key: 'count', label: 'Objects', value: (c) => c.count },
    { key: 'bytes', label: 'Size', value: (c) => c.bytes, render: (c) => formatBytes(c.bytes) },
  ];
  if (write) {
    columns.push({
      key: 'actions', label: 'Actions', value: () => '', sortable: false,
      render: (c) => <ConfirmButton label="Delete" danger question={`Delete container “${c.name}”? It must be empty.`} onConfirm={async () => { await swift('DELETE', pathOf(c.name)); reload(); }} />,
    });
  }
  return (
    <Page title="Object storage">
      <Tabs tabs={[['containers', 'Containers'], ['registry', 'Registry']]} current={tab} onSelect={(k) => navigate(`/objects?tab=${k}`)} />
      {tab === 'registry' ? <Registry /> : <>
      <ErrorNote error={error} />
      <ClientTable caption="Containers" rows={data ?? []} rowKey={(c) => c.name} initialSort={{ key: 'name', dir: 'asc' }} columns={columns} />
      {write && (
        <CreateForm title="Create a container" submit={async () => {
          await swift('PUT', pathOf(name.trim()));
          setName('');
          reload();
        }}>
          <Field label="Name" hint="No slash; up to 256 characters."><input name="container-name" value={name} onInput={(e) => setName(val(e))} required /></Field>
        </CreateForm>
      )}
      </>}
    </Page>
  );
}

function Upload({ container, prefix, done }: { container: string; prefix: string; done: () => void }) {
  const [file, setFile] = useState<File | null>(null);
  const [name, setName] = useState('');
  const [progress, setProgress] = useState<number | null>(null);
  const [error, setError] = useState<string | null>(null);
  return (
    <form class="form card" aria-label="Upload an object" onSubmit={async (e) => {
      e.preventDefault();
      if (!file) return;
      setError(null);
      try {
        setProgress(0);
        await putFile(`${endpoint('object-store')}${pathOf(container, prefix + (name.trim() || file.name))}`, file, setProgress);
        setProgress(1);
        setName('');
        done();
      } catch (err) {
        setError(errorText(err));
      }
    }}>
      <h2>Upload an object</h2>
      <Field label="File"><input name="object-file" type="file" required onChange={(e) => setFile(e.currentTarget.files?.[0] ?? null)} /></Field>
      <Field label="Object name" hint={`Under ${prefix || 'the container’s top'}; a slash makes folders. Empty: the file’s name.`}>
        <input name="object-name" value={name} onInput={(e) => setName(val(e))} />
      </Field>
      {progress !== null && <UploadProgress progress={progress} size={file?.size} />}
      <ErrorNote error={error} />
      <button type="submit" class="primary" disabled={!file || (progress !== null && progress < 1)}>Upload</button>
    </form>
  );
}

function ContainerView({ container, prefix }: { container: string; prefix: string }) {
  const { data, error, reload } = useLoad(async () => {
    const [list, head] = await Promise.all([
      swift('GET', `${pathOf(container)}?format=json&delimiter=/&limit=10000${prefix ? `&prefix=${encodeURIComponent(prefix)}` : ''}`),
      swift('HEAD', pathOf(container)),
    ]);
    return { entries: list.body as Entry[], read: head.headers.get('x-container-read') ?? '' };
  }, [container, prefix]);
  const [actionError, setActionError] = useState<string | null>(null);
  const [loading, setLoading] = useState<{ name: string; loaded: number; total: number | null } | null>(null);
  const write = canWrite();
  const isPublic = !!data && data.read.split(',').map((s) => s.trim()).includes('.r:*');
  const go = (p: string) => navigate(`/objects?container=${encodeURIComponent(container)}${p ? `&prefix=${encodeURIComponent(p)}` : ''}`);
  const crumbs = prefix.split('/').filter(Boolean);
  const columns: Column<Entry>[] = [
    {
      key: 'name', label: 'Name', value: (e) => e.subdir ?? e.name ?? '',
      render: (e) => e.subdir
        ? <a href={`#/objects?container=${encodeURIComponent(container)}&prefix=${encodeURIComponent(e.subdir)}`}><span aria-hidden="true">📁 </span>{e.subdir.slice(prefix.length)}</a>
        : <span>{e.name!.slice(prefix.length)}</span>,
    },
    { key: 'size', label: 'Size', value: (e) => e.bytes ?? -1, render: (e) => (e.subdir ? 'folder' : formatBytes(e.bytes)) },
    { key: 'type', label: 'Type', value: (e) => e.content_type ?? '' },
    { key: 'modified', label: 'Modified', value: (e) => e.last_modified ?? '', render: (e) => (e.last_modified ? <time dateTime={e.last_modified}>{new Date(`${e.last_modified}Z`).toLocaleString()}</time> : '') },
    {
      key: 'actions', label: 'Actions', value: () => '', sortable: false,
      render: (e) => e.subdir ? null : (
        <div class="actions">
          <button type="button" onClick={() => {
            setActionError(null);
            download(container, e.name!, (loaded, total) => setLoading({ name: e.name!, loaded, total })).catch((err) => setActionError(errorText(err)));
          }}>Download</button>
          {write && <TempUrlButton container={container} object={e.name!} />}
          {write && <ConfirmButton label="Delete" danger question={`Delete object “${e.name}”?`} onConfirm={async () => { await swift('DELETE', pathOf(container, e.name!)); reload(); }} />}
        </div>
      ),
    },
  ];
  const publicUrl = `${location.origin}${new URL(endpoint('object-store')).pathname}${pathOf(container)}`;
  return (
    <Page title={container} actions={<a href="#/objects">All containers</a>}>
      <nav aria-label="Folder" class="crumbs">
        <a href={`#/objects?container=${encodeURIComponent(container)}`}>{container}</a>
        {crumbs.map((c, i) => <span key={i}> / <a href={`#/objects?container=${encodeURIComponent(container)}&prefix=${encodeURIComponent(`${crumbs.slice(0, i + 1).join('/')}/`)}`}>{c}</a></span>)}
      </nav>
      {data && (
        <p class="state">
          {/* the status says the state alone: the toggle beside it is no part of what it announces */}
          <span role="status">{isPublic ? <>Public: anyone can read its objects and list it at <code>{publicUrl}</code></> : 'Private: only the project’s users (and TempURLs) reach its objects.'}</span>
          {' '}
          {write && (isPublic
            ? <ConfirmButton label="Make private" question={`Make container “${container}” private?`} onConfirm={async () => { await swift('POST', pathOf(container), { 'X-Remove-Container-Read': '1' }); reload(); }} />
            : <ConfirmButton label="Make public" danger question={`Make container “${container}” public? Anyone who has its URL can read and list its objects.`} onConfirm={async () => { await swift('POST', pathOf(container), { 'X-Container-Read': '.r:*,.rlistings' }); reload(); }} />)}
        </p>
      )}
      <ErrorNote error={error ?? actionError} />
      {loading && (
        <label class="field download">
          <span>Download of {loading.name}</span>
          <progress max={loading.total ?? undefined} value={loading.total ? loading.loaded : undefined} />
          <small class="muted" role="status">{loading.total ? `${Math.round((loading.loaded / loading.total) * 100)}% of ${formatBytes(loading.total)}` : `${formatBytes(loading.loaded)}…`}</small>
        </label>
      )}
      {prefix && <p><button type="button" onClick={() => go(crumbs.length > 1 ? `${crumbs.slice(0, -1).join('/')}/` : '')}>Up a folder</button></p>}
      <ClientTable caption={`Objects in ${container}`} rows={data?.entries ?? []} rowKey={(e) => e.subdir ?? e.name!} initialSort={{ key: 'name', dir: 'asc' }} columns={columns} />
      {write && <Upload container={container} prefix={prefix} done={reload} />}
    </Page>
  );
}

export function Objects({ query }: { query: URLSearchParams }) {
  const container = query.get('container');
  return container ? <ContainerView container={container} prefix={query.get('prefix') ?? ''} /> : <Containers tab={query.get('tab') ?? 'containers'} />;
}
