// Identity's admin tabs, for cloud admins and (within their domain, through a
// domain-scoped token: api.ts's identityAdminScope) domain admins, as
// Keystone's policy allows: projects (create, edit, enable/disable, delete),
// users (create with a password that is never shown back, edit, enable/
// disable, delete), groups and their members, role assignments of users and
// groups on projects, and (cloud admins) each project's quotas in Nova
// (os-quota-sets), Neutron (/v2.0/quotas) and Cinder (os-quota-sets). Every
// list is Keystone's, filtered by the domain for a domain admin, and follows
// the event stream (identity's events: a grant or a membership is its user's
// or group's update); what a caller without the right opens anyway shows the
// API's 403.
import { useState } from 'preact/hooks';
import { call, hasService, keystone } from '../api.ts';
import { ClientTable, ConfirmButton, CreateForm, DialogForm, ErrorNote, Field, Loading, Status, Table, useLiveReload, useLoad, val, type Column } from '../ui.tsx';

export interface AdminScope {
  token: string;
  /** A domain admin's domain; null: the cloud admin. */
  domain: { id: string; name: string } | null;
  /** Opened without the right: read anyway (the API answers 403), no buttons. */
  denied?: boolean;
}

export const ADMIN_TABS: Array<[string, string]> = [['projects', 'Projects'], ['users', 'Users'], ['groups', 'Groups'], ['roles', 'Role assignments'], ['quotas', 'Quotas']];

interface Project { id: string; name: string; description: string; enabled: boolean; domain_id: string }
interface User { id: string; name: string; email?: string; description?: string; enabled: boolean; domain_id: string; default_project_id?: string }
interface Group { id: string; name: string; description: string; domain_id: string }
interface Role { id: string; name: string; domain_id?: string | null }
interface Domain { id: string; name: string }

const ks = (scope: AdminScope) => <T = any>(method: string, path: string, body?: unknown) => keystone<T>(method, path, body, scope.token);
const inDomain = (scope: AdminScope, sep = '?') => (scope.domain ? `${sep}domain_id=${scope.domain.id}` : '');

async function listProjects(scope: AdminScope): Promise<Project[]> {
  return (await ks(scope)('GET', `/projects${inDomain(scope)}`)).body.projects;
}
async function listUsers(scope: AdminScope): Promise<User[]> {
  return (await ks(scope)('GET', `/users${inDomain(scope)}`)).body.users;
}
async function listDomains(scope: AdminScope): Promise<Domain[]> {
  if (scope.domain) return [scope.domain];
  return (await ks(scope)('GET', '/domains')).body.domains;
}

const byName = <T extends { name: string }>(a: T, b: T) => a.name.localeCompare(b.name);

function DomainSelect({ domains, value, set, name }: { domains: Domain[]; value: string; set: (v: string) => void; name: string }) {
  if (domains.length <= 1) return null;
  return (
    <Field label="Domain">
      <select name={name} value={value} onChange={(e) => set(val(e))}>
        {domains.map((d) => <option key={d.id} value={d.id}>{d.name}</option>)}
      </select>
    </Field>
  );
}

function EnableButton({ what, name, enabled, patch }: { what: string; name: string; enabled: boolean; patch: (enabled: boolean) => Promise<void> }) {
  return enabled
    ? <ConfirmButton label="Disable" question={`Disable ${what} “${name}”? ${what === 'user' ? 'It can no longer log in.' : 'Its users can no longer use it.'}`} onConfirm={() => patch(false)} />
    : <ConfirmButton label="Enable" question={`Enable ${what} “${name}”?`} onConfirm={() => patch(true)} />;
}

// ---- projects

function ProjectEdit({ p, scope, done }: { p: Project; scope: AdminScope; done: () => void }) {
  const [name, setName] = useState(p.name);
  const [description, setDescription] = useState(p.description ?? '');
  return (
    <DialogForm label="Edit" title={`Edit project “${p.name}”`} submit={async () => {
      await ks(scope)('PATCH', `/projects/${p.id}`, { project: { name: name.trim(), description } });
      done();
    }}>
      <Field label="Name"><input name="edit-project-name" value={name} onInput={(e) => setName(val(e))} required /></Field>
      <Field label="Description"><textarea name="edit-project-description" value={description} onInput={(e) => setDescription(val(e))} rows={3} /></Field>
    </DialogForm>
  );
}

function Projects({ scope }: { scope: AdminScope }) {
  const data = useLoad(async () => {
    const [projects, domains] = await Promise.all([listProjects(scope), scope.denied ? [] : listDomains(scope).catch(() => [])]);
    return { projects, domains };
  }, [scope.token]);
  useLiveReload((e) => e.type === 'project' || e.type === 'domain', data.reload);
  const [name, setName] = useState('');
  const [description, setDescription] = useState('');
  const [domain, setDomain] = useState(scope.domain?.id ?? 'default');
  const write = !scope.denied;
  const domainName = (id: string) => data.data?.domains.find((d) => d.id === id)?.name ?? id;
  const columns: Column<Project>[] = [
    { key: 'name', label: 'Name', value: (p) => p.name },
    { key: 'description', label: 'Description', value: (p) => p.description ?? '' },
    { key: 'domain', label: 'Domain', value: (p) => domainName(p.domain_id) },
    { key: 'enabled', label: 'Enabled', value: (p) => (p.enabled ? 'enabled' : 'disabled'), render: (p) => <Status value={p.enabled ? 'enabled' : 'disabled'} /> },
  ];
  if (write) {
    columns.push({
      key: 'actions', label: 'Actions', value: () => '', sortable: false, render: (p) => (
        <div class="actions">
          <ProjectEdit p={p} scope={scope} done={data.reload} />
          <EnableButton what="project" name={p.name} enabled={p.enabled} patch={async (enabled) => { await ks(scope)('PATCH', `/projects/${p.id}`, { project: { enabled } }); data.reload(); }} />
          <ConfirmButton label="Delete" danger question={`Delete project “${p.name}”? Its role assignments go with it; its resources stay behind, unreachable.`}
            onConfirm={async () => { await ks(scope)('DELETE', `/projects/${p.id}`); data.reload(); }} />
        </div>
      ),
    });
  }
  return (
    <>
      <ErrorNote error={data.error} />
      {data.data ? <ClientTable caption="Projects" rows={data.data.projects} rowKey={(p) => p.id} initialSort={{ key: 'name', dir: 'asc' }} columns={columns} /> : !data.error && <Loading what="projects" />}
      {write && (
        <CreateForm title="Create a project" submit={async () => {
          await ks(scope)('POST', '/projects', { project: { name: name.trim(), description, domain_id: domain, enabled: true } });
          setName('');
          setDescription('');
          data.reload();
        }}>
          <Field label="Name"><input name="project-name" value={name} onInput={(e) => setName(val(e))} required /></Field>
          <Field label="Description"><input name="project-description" value={description} onInput={(e) => setDescription(val(e))} /></Field>
          <DomainSelect name="project-domain" domains={data.data?.domains ?? []} value={domain} set={setDomain} />
        </CreateForm>
      )}
    </>
  );
}

// ---- users

function ProjectOptions({ projects }: { projects: Project[] }) {
  return <>{[...projects].sort(byName).map((p) => <option key={p.id} value={p.id}>{p.name}</option>)}</>;
}

function UserEdit({ u, scope, projects, done }: { u: User; scope: AdminScope; projects: Project[]; done: () => void }) {
  const [name, setName] = useState(u.name);
  const [email, setEmail] = useState(u.email ?? '');
  const [project, setProject] = useState(u.default_project_id ?? '');
  const [password, setPassword] = useState('');
  return (
    <DialogForm label="Edit" title={`Edit user “${u.name}”`} submit={async () => {
      // only what changed (a user's email is one of Keystone's free-form extras)
      const user: Record<string, unknown> = {};
      if (name.trim() !== u.name) user.name = name.trim();
      if (email.trim() !== (u.email ?? '')) user.email = email.trim();
      if (project !== (u.default_project_id ?? '')) user.default_project_id = project || null;
      if (password) user.password = password;
      try {
        await ks(scope)('PATCH', `/users/${u.id}`, { user });
      } finally {
        setPassword('');
      }
      done();
    }}>
      <Field label="Name"><input name="edit-user-name" value={name} onInput={(e) => setName(val(e))} required /></Field>
      <Field label="Email"><input name="edit-user-email" type="email" value={email} onInput={(e) => setEmail(val(e))} /></Field>
      <Field label="Default project">
        <select name="edit-user-project" value={project} onChange={(e) => setProject(val(e))}><option value="">None</option><ProjectOptions projects={projects} /></select>
      </Field>
      <Field label="New password" hint="Empty: unchanged. Never shown back."><input name="edit-user-password" type="password" autoComplete="new-password" value={password} onInput={(e) => setPassword(val(e))} /></Field>
    </DialogForm>
  );
}

function Users({ scope }: { scope: AdminScope }) {
  const data = useLoad(async () => {
    const [users, projects, domains] = await Promise.all([listUsers(scope), scope.denied ? [] : listProjects(scope), scope.denied ? [] : listDomains(scope).catch(() => [])]);
    return { users, projects, domains };
  }, [scope.token]);
  useLiveReload((e) => e.type === 'user' || e.type === 'project', data.reload);
  const [name, setName] = useState('');
  const [password, setPassword] = useState('');
  const [email, setEmail] = useState('');
  const [project, setProject] = useState('');
  const [domain, setDomain] = useState(scope.domain?.id ?? 'default');
  const write = !scope.denied;
  const projectName = (id?: string) => (id ? data.data?.projects.find((p) => p.id === id)?.name ?? id : '');
  const columns: Column<User>[] = [
    { key: 'name', label: 'Name', value: (u) => u.name },
    { key: 'email', label: 'Email', value: (u) => u.email ?? '' },
    { key: 'project', label: 'Default project', value: (u) => projectName(u.default_project_id) },
    { key: 'enabled', label: 'Enabled', value: (u) => (u.enabled ? 'enabled' : 'disabled'), render: (u) => <Status value={u.enabled ? 'enabled' : 'disabled'} /> },
  ];
  if (write) {
    columns.push({
      key: 'actions', label: 'Actions', value: () => '', sortable: false, render: (u) => (
        <div class="actions">
          <UserEdit u={u} scope={scope} projects={data.data?.projects ?? []} done={data.reload} />
          <EnableButton what="user" name={u.name} enabled={u.enabled} patch={async (enabled) => { await ks(scope)('PATCH', `/users/${u.id}`, { user: { enabled } }); data.reload(); }} />
          <ConfirmButton label="Delete" danger question={`Delete user “${u.name}”? Its role assignments, application credentials and tokens go with it.`}
            onConfirm={async () => { await ks(scope)('DELETE', `/users/${u.id}`); data.reload(); }} />
        </div>
      ),
    });
  }
  return (
    <>
      <ErrorNote error={data.error} />
      {data.data ? <ClientTable caption="Users" rows={data.data.users} rowKey={(u) => u.id} initialSort={{ key: 'name', dir: 'asc' }} columns={columns} /> : !data.error && <Loading what="users" />}
      {write && (
        <CreateForm title="Create a user" submit={async () => {
          const user: Record<string, unknown> = { name: name.trim(), password, domain_id: domain, enabled: true };
          if (email.trim()) user.email = email.trim();
          if (project) user.default_project_id = project;
          try {
            await ks(scope)('POST', '/users', { user });
          } finally {
            // the password leaves the page with the request
            setPassword('');
          }
          setName('');
          setEmail('');
          data.reload();
        }}>
          <Field label="Name"><input name="user-name" value={name} onInput={(e) => setName(val(e))} required autoComplete="off" /></Field>
          <Field label="Password" hint="Sent to Keystone once; never shown back."><input name="user-password" type="password" autoComplete="new-password" value={password} onInput={(e) => setPassword(val(e))} /></Field>
          <Field label="Email"><input name="user-email" type="email" value={email} onInput={(e) => setEmail(val(e))} /></Field>
          <Field label="Default project" hint="Give the user a role on it in Role assignments.">
            <select name="user-project" value={project} onChange={(e) => setProject(val(e))}><option value="">None</option><ProjectOptions projects={data.data?.projects ?? []} /></select>
          </Field>
          <DomainSelect name="user-domain" domains={data.data?.domains ?? []} value={domain} set={setDomain} />
        </CreateForm>
      )}
    </>
  );
}

// ---- groups

function Members({ g, scope, users, write }: { g: Group; scope: AdminScope; users: User[]; write: boolean }) {
  const members = useLoad(async () => (await ks(scope)('GET', `/groups/${g.id}/users`)).body.users as User[], [g.id]);
  useLiveReload((e) => e.type === 'user', members.reload, [g.id]);
  const [add, setAdd] = useState('');
  const ids = new Set((members.data ?? []).map((u) => u.id));
  return (
    <section class="card" aria-label={`Members of group “${g.name}”`}>
      <h2>Members of “{g.name}”</h2>
      <ErrorNote error={members.error} />
      {members.data && <Table caption={`Members of ${g.name}`} rows={members.data} rowKey={(u) => u.id} empty="No members." columns={[
        { key: 'name', label: 'User', value: (u) => u.name },
        ...(write ? [{
          key: 'actions', label: 'Actions', value: () => '', render: (u: User) => (
            <ConfirmButton label="Remove" danger question={`Remove user “${u.name}” from group “${g.name}”?`}
              onConfirm={async () => { await ks(scope)('DELETE', `/groups/${g.id}/users/${u.id}`); members.reload(); }} />
          ),
        }] : []),
      ]} />}
      {write && (
        <CreateForm title={`Add a member to “${g.name}”`} label="Add" submit={async () => {
          await ks(scope)('PUT', `/groups/${g.id}/users/${add}`);
          setAdd('');
          members.reload();
        }}>
          <Field label="User">
            <select name="member-user" value={add} onChange={(e) => setAdd(val(e))} required>
              <option value="">Choose…</option>
              {[...users].sort(byName).filter((u) => !ids.has(u.id)).map((u) => <option key={u.id} value={u.id}>{u.name}</option>)}
            </select>
          </Field>
        </CreateForm>
      )}
    </section>
  );
}

function Groups({ scope }: { scope: AdminScope }) {
  const data = useLoad(async () => {
    const [groups, users, domains] = await Promise.all([
      ks(scope)('GET', `/groups${inDomain(scope)}`).then((r) => r.body.groups as Group[]),
      scope.denied ? [] : listUsers(scope), scope.denied ? [] : listDomains(scope).catch(() => []),
    ]);
    return { groups, users, domains };
  }, [scope.token]);
  useLiveReload((e) => e.type === 'group' || e.type === 'user', data.reload);
  const [open, setOpen] = useState<string | null>(null);
  const [name, setName] = useState('');
  const [description, setDescription] = useState('');
  const [domain, setDomain] = useState(scope.domain?.id ?? 'default');
  const write = !scope.denied;
  const group = data.data?.groups.find((g) => g.id === open);
  return (
    <>
      <ErrorNote error={data.error} />
      {data.data ? <ClientTable caption="Groups" rows={data.data.groups} rowKey={(g) => g.id} initialSort={{ key: 'name', dir: 'asc' }} columns={[
        { key: 'name', label: 'Name', value: (g) => g.name },
        { key: 'description', label: 'Description', value: (g) => g.description ?? '' },
        {
          key: 'actions', label: 'Actions', value: () => '', sortable: false, render: (g) => (
            <div class="actions">
              <button type="button" aria-pressed={open === g.id} onClick={() => setOpen(open === g.id ? null : g.id)}>Members</button>
              {write && <ConfirmButton label="Delete" danger question={`Delete group “${g.name}”? Its role assignments go with it.`}
                onConfirm={async () => { await ks(scope)('DELETE', `/groups/${g.id}`); if (open === g.id) setOpen(null); data.reload(); }} />}
            </div>
          ),
        },
      ]} /> : !data.error && <Loading what="groups" />}
      {group && <Members key={group.id} g={group} scope={scope} users={data.data!.users} write={write} />}
      {write && (
        <CreateForm title="Create a group" submit={async () => {
          await ks(scope)('POST', '/groups', { group: { name: name.trim(), description, domain_id: domain } });
          setName('');
          setDescription('');
          data.reload();
        }}>
          <Field label="Name"><input name="group-name" value={name} onInput={(e) => setName(val(e))} required /></Field>
          <Field label="Description"><input name="group-description" value={description} onInput={(e) => setDescription(val(e))} /></Field>
          <DomainSelect name="group-domain" domains={data.data?.domains ?? []} value={domain} set={setDomain} />
        </CreateForm>
      )}
    </>
  );
}

// ---- role assignments

interface Assignment {
  role: { id: string; name?: string };
  user?: { id: string; name?: string };
  group?: { id: string; name?: string };
  scope: { project?: { id: string; name?: string }; domain?: { id: string; name?: string }; system?: unknown };
}

const assignmentKey = (a: Assignment) => `${a.role.id}:${a.user?.id ?? ''}:${a.group?.id ?? ''}:${a.scope.project?.id ?? a.scope.domain?.id ?? 'system'}`;
const assignmentPath = (a: Assignment): string | null => {
  const target = a.scope.project ? `/projects/${a.scope.project.id}` : a.scope.domain ? `/domains/${a.scope.domain.id}` : null;
  if (!target) return null;
  return `${target}/${a.user ? `users/${a.user.id}` : `groups/${a.group!.id}`}/roles/${a.role.id}`;
};

function Roles({ scope }: { scope: AdminScope }) {
  const data = useLoad(async () => {
    const [assignments, roles, projects, users, groups] = await Promise.all([
      ks(scope)('GET', '/role_assignments?include_names=true').then((r) => r.body.role_assignments as Assignment[]),
      ks(scope)('GET', '/roles').then((r) => r.body.roles as Role[]),
      scope.denied ? [] : listProjects(scope), scope.denied ? [] : listUsers(scope),
      scope.denied ? [] : ks(scope)('GET', `/groups${inDomain(scope)}`).then((r) => r.body.groups as Group[]),
    ]);
    // a domain admin sees the assignments on its domain's projects
    const mine = new Set(projects.map((p) => p.id));
    return { assignments: scope.domain ? assignments.filter((a) => (a.scope.project && mine.has(a.scope.project.id)) || a.scope.domain?.id === scope.domain!.id) : assignments, roles, projects, users, groups };
  }, [scope.token]);
  useLiveReload((e) => ['user', 'group', 'project'].includes(e.type), data.reload);
  const [role, setRole] = useState('');
  const [kind, setKind] = useState<'user' | 'group'>('user');
  const [who, setWho] = useState('');
  const [project, setProject] = useState('');
  const write = !scope.denied;
  const principal = (a: Assignment) => (a.user ? `user ${a.user.name ?? a.user.id}` : `group ${a.group?.name ?? a.group?.id}`);
  const where = (a: Assignment) => (a.scope.project ? `project ${a.scope.project.name ?? a.scope.project.id}` : a.scope.domain ? `domain ${a.scope.domain.name ?? a.scope.domain.id}` : 'system');
  const columns: Column<Assignment>[] = [
    { key: 'role', label: 'Role', value: (a) => a.role.name ?? a.role.id },
    { key: 'who', label: 'User or group', value: principal },
    { key: 'scope', label: 'On', value: where },
  ];
  if (write) {
    columns.push({
      key: 'actions', label: 'Actions', value: () => '', sortable: false, render: (a) => {
        const path = assignmentPath(a);
        return path && <ConfirmButton label="Unassign" danger question={`Take role “${a.role.name ?? a.role.id}” of ${principal(a)} on ${where(a)}?`}
          onConfirm={async () => { await ks(scope)('DELETE', path); data.reload(); }} />;
      },
    });
  }
  const principals = kind === 'user' ? data.data?.users ?? [] : data.data?.groups ?? [];
  return (
    <>
      <ErrorNote error={data.error} />
      {data.data ? <ClientTable caption="Role assignments" rows={data.data.assignments} rowKey={assignmentKey} initialSort={{ key: 'scope', dir: 'asc' }} columns={columns} /> : !data.error && <Loading what="role assignments" />}
      {write && data.data && (
        <CreateForm title="Assign a role" label="Assign" submit={async () => {
          await ks(scope)('PUT', `/projects/${project}/${kind}s/${who}/roles/${role}`);
          data.reload();
        }}>
          <Field label="Role">
            <select name="assign-role" value={role} onChange={(e) => setRole(val(e))} required>
              <option value="">Choose…</option>
              {[...data.data.roles].sort(byName).map((r) => <option key={r.id} value={r.id}>{r.name}</option>)}
            </select>
          </Field>
          <fieldset>
            <legend>To</legend>
            <label class="radio"><input type="radio" name="assign-kind" checked={kind === 'user'} onChange={() => { setKind('user'); setWho(''); }} /> A user</label>
            <label class="radio"><input type="radio" name="assign-kind" checked={kind === 'group'} onChange={() => { setKind('group'); setWho(''); }} /> A group</label>
          </fieldset>
          <Field label={kind === 'user' ? 'User' : 'Group'}>
            <select name="assign-who" value={who} onChange={(e) => setWho(val(e))} required>
              <option value="">Choose…</option>
              {[...principals].sort(byName).map((p) => <option key={p.id} value={p.id}>{p.name}</option>)}
            </select>
          </Field>
          <Field label="Project">
            <select name="assign-project" value={project} onChange={(e) => setProject(val(e))} required><option value="">Choose…</option><ProjectOptions projects={data.data.projects} /></select>
          </Field>
        </CreateForm>
      )}
    </>
  );
}

// ---- quotas

/** Each quota API: its catalog type, path and body key. Only the services the catalog has. */
const QUOTA_APIS = [
  { service: 'compute', title: 'Compute (Nova)', path: (p: string) => `/os-quota-sets/${p}`, key: 'quota_set' },
  { service: 'network', title: 'Network (Neutron)', path: (p: string) => `/v2.0/quotas/${p}`, key: 'quota' },
  { service: 'block-storage', title: 'Volumes (Cinder)', path: (p: string) => `/os-quota-sets/${p}`, key: 'quota_set' },
] as const;

type Quotas = Record<string, Record<string, number> | { error: string }>;

function QuotaEditor({ project, scope }: { project: Project; scope: AdminScope }) {
  const apis = QUOTA_APIS.filter((a) => hasService(a.service));
  const data = useLoad(async () => {
    const out: Quotas = {};
    await Promise.all(apis.map(async (a) => {
      try {
        const q = (await call('GET', a.service, a.path(project.id), { token: scope.token })).body[a.key] as Record<string, unknown>;
        out[a.service] = Object.fromEntries(Object.entries(q).filter(([, v]) => typeof v === 'number')) as Record<string, number>;
      } catch (err) {
        out[a.service] = { error: err instanceof Error ? err.message : String(err) };
      }
    }));
    return out;
  }, [project.id]);
  const [edits, setEdits] = useState<Record<string, Record<string, string>>>({});
  const [saved, setSaved] = useState<string | null>(null);
  if (!data.data) return <><ErrorNote error={data.error} />{!data.error && <Loading what="quotas" />}</>;
  const q = data.data;
  return (
    <CreateForm title={`Quotas of project “${project.name}”`} label="Save quotas" submit={async () => {
      setSaved(null);
      for (const a of apis) {
        const now = q[a.service];
        const changed = Object.entries(edits[a.service] ?? {}).filter(([k, v]) => now && !('error' in now) && String(now[k]) !== v);
        if (changed.length === 0) continue;
        await call('PUT', a.service, a.path(project.id), { token: scope.token, body: { [a.key]: Object.fromEntries(changed.map(([k, v]) => [k, v.trim() === '' ? v : Number(v)])) } });
      }
      setEdits({});
      setSaved('Saved.');
      data.reload();
    }}>
      <p class="muted">-1 is unlimited.</p>
      {apis.map((a) => {
        const now = q[a.service];
        return (
          <fieldset key={a.service}>
            <legend>{a.title}</legend>
            {!now || 'error' in now ? <ErrorNote error={(now as { error: string } | undefined)?.error ?? 'Not loaded.'} /> : (
              <div class="quota-grid">
                {Object.keys(now).sort().map((k) => (
                  <Field label={k} key={k}>
                    <input name={`quota-${a.service}-${k}`} type="number" inputMode="numeric" value={edits[a.service]?.[k] ?? String(now[k])}
                      onInput={(e) => { setSaved(null); setEdits({ ...edits, [a.service]: { ...edits[a.service], [k]: val(e) } }); }} />
                  </Field>
                ))}
              </div>
            )}
          </fieldset>
        );
      })}
      <p class="muted" role="status">{saved ?? ''}</p>
    </CreateForm>
  );
}

function QuotasTab({ scope }: { scope: AdminScope }) {
  const projects = useLoad(() => listProjects(scope), [scope.token]);
  const [pick, setPick] = useState('');
  const list = [...(projects.data ?? [])].sort(byName);
  const project = list.find((p) => p.id === pick) ?? list[0];
  return (
    <>
      <ErrorNote error={projects.error} />
      {projects.data && (
        <div class="toolbar">
          <label>Quotas of project <select name="quota-project" value={project?.id ?? ''} onChange={(e) => setPick(val(e))}><ProjectOptions projects={list} /></select></label>
        </div>
      )}
      {project && !scope.denied && <QuotaEditor key={project.id} project={project} scope={scope} />}
    </>
  );
}

export function AdminTab({ tab, scope }: { tab: string; scope: AdminScope }) {
  const Tab = { projects: Projects, users: Users, groups: Groups, roles: Roles, quotas: QuotasTab }[tab] ?? Projects;
  return <Tab scope={scope} />;
}
