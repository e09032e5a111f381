// Identity: what every user manages for themselves — application credentials
// (Keystone's /v3/users/{id}/application_credentials), EC2 credentials
// (/v3/users/{id}/credentials/OS-EC2) and key pairs (Nova's os-keypairs) —
// and, for admins and domain admins, the admin tabs of identity-admin.tsx.
// A secret (an application credential's, an EC2 credential's, a generated
// private key) is shown once, right after its create, and kept nowhere: the
// lists never show it. Each list follows the event stream (the user's own
// credentials' and key pairs' events), so a change made elsewhere shows too.
import { Fragment, type ComponentChildren } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { call, hasService, identityAdminScope, keystone, session } from '../api.ts';
import { navigate } from '../router.ts';
import { ClientTable, ConfirmButton, CreateForm, ErrorNote, Field, Page, Tabs, errorText, useLiveReload, useLoad, val, type Column } from '../ui.tsx';
import { ADMIN_TABS, AdminTab, type AdminScope } from './identity-admin.tsx';

export const when = (t: string | null | undefined) => (t ? <time dateTime={t}>{new Date(/Z|[+-]\d\d:?\d\d$/.test(t) ? t : `${t}Z`).toLocaleString()}</time> : '—');

/**
 * A secret shown this once, right after its create, with a copy button; the
 * page forgets it on “Done”. Copying uses the Clipboard API (HTTPS or
 * localhost), else selects the text for the user to copy.
 */
export function SecretOnce({ title, items, onDone, children }: { title: string; items: Array<[string, string]>; onDone: () => void; children?: ComponentChildren }) {
  const [note, setNote] = useState<string | null>(null);
  const copy = async (label: string, value: string, el: HTMLElement | null) => {
    try {
      await navigator.clipboard.writeText(value);
      setNote(`${label} copied.`);
    } catch {
      if (el) getSelection()?.selectAllChildren(el);
      setNote(`${label} selected: copy it with Ctrl+C.`);
    }
  };
  return (
    <section class="card secret" aria-label={title}>
      <h2>{title}</h2>
      <p><strong>Copy it now:</strong> it is shown this once and never again.</p>
      <dl class="props">
        {items.map(([label, value]) => (
          <Fragment key={label}>
            <dt>{label}</dt>
            <dd>
              <code data-secret={label}>{value}</code>{' '}
              <button type="button" onClick={(e) => void copy(label, value, (e.currentTarget.previousElementSibling as HTMLElement | null))}>Copy {label.toLowerCase()}</button>
            </dd>
          </Fragment>
        ))}
      </dl>
      {children}
      <p class="muted" role="status">{note ?? ''}</p>
      <button type="button" class="primary" onClick={onDone}>Done</button>
    </section>
  );
}

interface AppCred { id: string; name: string; description: string | null; expires_at: string | null; project_id: string; roles: Array<{ id: string; name: string }>; unrestricted: boolean }

function AppCredentials() {
  const s = session()!;
  const uid = s.user.id;
  const list = useLoad(async () => (await keystone('GET', `/users/${uid}/application_credentials`)).body.application_credentials as AppCred[], [uid]);
  useLiveReload((e) => e.type === 'application_credential', list.reload);
  const [name, setName] = useState('');
  const [description, setDescription] = useState('');
  const [expires, setExpires] = useState('');
  const [roles, setRoles] = useState<string[]>(s.roles);
  const [made, setMade] = useState<{ id: string; name: string; secret: string } | null>(null);
  const columns: Column<AppCred>[] = [
    { key: 'name', label: 'Name', value: (c) => c.name },
    { key: 'description', label: 'Description', value: (c) => c.description ?? '' },
    { key: 'id', label: 'ID', value: (c) => c.id, render: (c) => <code>{c.id}</code> },
    { key: 'roles', label: 'Roles', value: (c) => c.roles.map((r) => r.name).join(', ') },
    { key: 'expires', label: 'Expires', value: (c) => c.expires_at ?? '', render: (c) => (c.expires_at ? when(c.expires_at) : 'never') },
    {
      key: 'actions', label: 'Actions', value: () => '', sortable: false, render: (c) => (
        <ConfirmButton label="Delete" danger question={`Delete application credential “${c.name}”? Whatever logs in with it stops working.`}
          onConfirm={async () => { await keystone('DELETE', `/users/${uid}/application_credentials/${c.id}`); list.reload(); }} />
      ),
    },
  ];
  return (
    <>
      <p class="muted">Application credentials log a program in as you, in project {s.project?.name ?? '—'}, with the roles you give them.</p>
      <ErrorNote error={list.error} />
      {made && <SecretOnce title={`Application credential “${made.name}”`} items={[['ID', made.id], ['Secret', made.secret]]} onDone={() => setMade(null)} />}
      {list.data && <ClientTable caption="Application credentials" rows={list.data} rowKey={(c) => c.id} initialSort={{ key: 'name', dir: 'asc' }} columns={columns} />}
      <CreateForm title="Create an application credential" submit={async () => {
        const body: Record<string, unknown> = { name: name.trim(), roles: roles.map((r) => ({ name: r })) };
        if (description.trim()) body.description = description.trim();
        if (expires) body.expires_at = new Date(expires).toISOString();
        const r = await keystone('POST', `/users/${uid}/application_credentials`, { application_credential: body });
        const c = r.body.application_credential;
        setMade({ id: c.id, name: c.name, secret: c.secret });
        setName('');
        setDescription('');
        setExpires('');
        list.reload();
      }}>
        <Field label="Name"><input name="appcred-name" value={name} onInput={(e) => setName(val(e))} required /></Field>
        <Field label="Description"><input name="appcred-description" value={description} onInput={(e) => setDescription(val(e))} /></Field>
        <Field label="Expires" hint="Empty: never."><input name="appcred-expires" type="datetime-local" value={expires} onInput={(e) => setExpires(val(e))} /></Field>
        <fieldset>
          <legend>Roles</legend>
          {s.roles.map((r) => (
            <label class="check" key={r}><input type="checkbox" checked={roles.includes(r)} onChange={(e) => setRoles(e.currentTarget.checked ? [...roles, r] : roles.filter((x) => x !== r))} /> {r}</label>
          ))}
        </fieldset>
      </CreateForm>
    </>
  );
}

interface Ec2 { access: string; tenant_id: string; user_id: string }

function Ec2Credentials() {
  const s = session()!;
  const uid = s.user.id;
  const list = useLoad(async () => (await keystone('GET', `/users/${uid}/credentials/OS-EC2`)).body.credentials as Ec2[], [uid]);
  useLiveReload((e) => e.type === 'ec2_credential' || e.type === 'credential', list.reload);
  const projects = useLoad(async () => {
    const names: Record<string, string> = {};
    if (s.unscoped) for (const p of (await keystone('GET', '/auth/projects', undefined, s.unscoped)).body.projects as Array<{ id: string; name: string }>) names[p.id] = p.name;
    else if (s.project) names[s.project.id] = s.project.name;
    return names;
  }, [uid]);
  const [made, setMade] = useState<{ access: string; secret: string } | null>(null);
  return (
    <>
      <p class="muted">EC2 credentials sign S3 requests to object storage as you, in a project.</p>
      <ErrorNote error={list.error} />
      {made && <SecretOnce title="EC2 credential" items={[['Access key', made.access], ['Secret key', made.secret]]} onDone={() => setMade(null)} />}
      {/* the list carries each secret too: it is not shown */}
      {list.data && <ClientTable caption="EC2 credentials" rows={list.data} rowKey={(c) => c.access} columns={[
        { key: 'access', label: 'Access key', value: (c) => c.access, render: (c) => <code>{c.access}</code> },
        { key: 'project', label: 'Project', value: (c) => projects.data?.[c.tenant_id] ?? c.tenant_id },
        {
          key: 'actions', label: 'Actions', value: () => '', sortable: false, render: (c) => (
            <ConfirmButton label="Delete" danger question={`Delete EC2 credential ${c.access}? S3 clients using it stop working.`}
              onConfirm={async () => { await keystone('DELETE', `/users/${uid}/credentials/OS-EC2/${c.access}`); list.reload(); }} />
          ),
        },
      ]} />}
      <CreateForm title="Create an EC2 credential" submit={async () => {
        const r = await keystone('POST', `/users/${uid}/credentials/OS-EC2`, { tenant_id: s.project?.id });
        setMade({ access: r.body.credential.access, secret: r.body.credential.secret });
        list.reload();
      }}>
        <p class="muted">For project {s.project?.name ?? '—'}.</p>
      </CreateForm>
    </>
  );
}

interface Keypair { name: string; fingerprint: string; type?: string; public_key: string }

/** Hands `text` to the browser as a file named `name`. */
function saveFile(name: string, text: string): void {
  const url = URL.createObjectURL(new Blob([text], { type: 'application/x-pem-file' }));
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

function Keypairs() {
  const list = useLoad(async () => ((await call('GET', 'compute', '/os-keypairs')).body.keypairs as Array<{ keypair: Keypair }>).map((k) => k.keypair), []);
  useLiveReload((e) => e.type === 'keypair', list.reload);
  const [name, setName] = useState('');
  const [importName, setImportName] = useState('');
  const [publicKey, setPublicKey] = useState('');
  const [made, setMade] = useState<{ name: string; privateKey: string } | null>(null);
  return (
    <>
      <ErrorNote error={list.error} />
      {made && (
        <section class="card secret" aria-label={`Private key of “${made.name}”`}>
          <h2>Private key of “{made.name}”</h2>
          <p><strong>Download it now:</strong> Nova keeps only the public key, so this is the one chance.</p>
          <div class="actions">
            <button type="button" class="primary" onClick={() => saveFile(`${made.name}.pem`, made.privateKey)}>Download {made.name}.pem</button>
            <button type="button" onClick={() => setMade(null)}>Done</button>
          </div>
        </section>
      )}
      {list.data && <ClientTable caption="Key pairs" rows={list.data} rowKey={(k) => k.name} initialSort={{ key: 'name', dir: 'asc' }} columns={[
        { key: 'name', label: 'Name', value: (k) => k.name },
        { key: 'type', label: 'Type', value: (k) => k.type ?? 'ssh' },
        { key: 'fingerprint', label: 'Fingerprint', value: (k) => k.fingerprint, render: (k) => <code>{k.fingerprint}</code> },
        {
          key: 'actions', label: 'Actions', value: () => '', sortable: false, render: (k) => (
            <ConfirmButton label="Delete" danger question={`Delete key pair “${k.name}”? Servers that have it keep it.`}
              onConfirm={async () => { await call('DELETE', 'compute', `/os-keypairs/${encodeURIComponent(k.name)}`); list.reload(); }} />
          ),
        },
      ]} />}
      <div class="grid">
        <CreateForm title="Create a key pair" submit={async () => {
          const r = await call('POST', 'compute', '/os-keypairs', { body: { keypair: { name: name.trim() } } });
          setMade({ name: r.body.keypair.name, privateKey: r.body.keypair.private_key });
          setName('');
          list.reload();
        }}>
          <Field label="Name"><input name="keypair-name" value={name} onInput={(e) => setName(val(e))} required /></Field>
        </CreateForm>
        <CreateForm title="Import a public key" label="Import" submit={async () => {
          await call('POST', 'compute', '/os-keypairs', { body: { keypair: { name: importName.trim(), public_key: publicKey.trim() } } });
          setImportName('');
          setPublicKey('');
          list.reload();
        }}>
          <Field label="Name"><input name="import-name" value={importName} onInput={(e) => setImportName(val(e))} required /></Field>
          <Field label="Public key" hint="One line: ssh-ed25519 AAAA… or ssh-rsa AAAA…"><textarea name="import-key" value={publicKey} onInput={(e) => setPublicKey(val(e))} rows={3} required /></Field>
        </CreateForm>
      </div>
    </>
  );
}

const OWN_TABS: Array<[string, string]> = [['appcreds', 'Application credentials'], ['ec2', 'EC2 credentials'], ['keypairs', 'Key pairs']];

export function Identity({ tab }: { tab: string }) {
  const s = session()!;
  // the admin tabs only where Keystone's policy lets the caller administer: the cloud (admin) or a domain (domain admin)
  const [scope, setScope] = useState<AdminScope | null | undefined>(undefined);
  const [scopeError, setScopeError] = useState<string | null>(null);
  useEffect(() => {
    identityAdminScope().then(setScope, (err) => {
      setScope(null);
      setScopeError(errorText(err));
    });
  }, [s.token]);
  const own = OWN_TABS.filter(([k]) => k !== 'keypairs' || hasService('compute'));
  const admin = scope ? ADMIN_TABS.filter(([k]) => k !== 'quotas' || !scope.domain) : [];
  const known = [...own, ...ADMIN_TABS].some(([k]) => k === tab);
  const current = known ? tab : 'appcreds';
  return (
    <Page title="Identity">
      <Tabs tabs={[...own, ...admin]} current={current} onSelect={(k) => navigate(`/identity?tab=${k}`)} />
      <ErrorNote error={scopeError} />
      {scope?.domain && admin.some(([k]) => k === current) && <p class="muted">Administering domain {scope.domain.name}.</p>}
      {current === 'appcreds' && <AppCredentials />}
      {current === 'ec2' && <Ec2Credentials />}
      {current === 'keypairs' && <Keypairs />}
      {/* an admin tab opened without the right: its lists are asked for anyway, and the API's 403 is shown */}
      {scope !== undefined && ADMIN_TABS.some(([k]) => k === current) && <AdminTab key={current} tab={current} scope={scope ?? { token: s.token, domain: null, denied: true }} />}
    </Page>
  );
}
