// Launching a server: the kinds the cloud has (a container from an OCI or
// Docker image, a VM from a disk image; a flavor may be for one kind only,
// its extra spec stratus:kind), then image, flavor, network, key pair,
// security groups and user data. The API's own refusal is shown in the form.
import { useState } from 'preact/hooks';
import { call, hasService, session } from '../api.ts';
import { navigate } from '../router.ts';
import { ErrorNote, Field, Loading, Page, errorText, useLoad, val } from '../ui.tsx';

interface Image { id: string; name: string | null; container_format: string | null; disk_format: string | null; status: string; size?: number }
interface Flavor { id: string; name: string; vcpus: number; ram: number; disk: number; extra_specs?: Record<string, string> }

/** The kind of server an image boots (as src/compute/kinds.ts decides it: OCI and Docker images are containers). */
const kindOfImage = (i: Image): string => (['docker', 'oci'].includes((i.container_format ?? '').toLowerCase()) ? 'container' : 'vm');
const KIND_LABEL: Record<string, string> = { container: 'Container', vm: 'Virtual machine' };

async function loadChoices() {
  const pid = session()!.project!.id;
  const [images, flavors, keypairs, networks, groups] = await Promise.all([
    call('GET', 'image', '/v2/images?status=active&limit=1000').then((r) => r.body.images as Image[]),
    call('GET', 'compute', '/flavors/detail').then((r) => r.body.flavors as Flavor[]),
    call('GET', 'compute', '/os-keypairs').then((r) => (r.body.keypairs as Array<{ keypair: { name: string } }>).map((k) => k.keypair.name)),
    hasService('network') ? call('GET', 'network', '/v2.0/networks').then((r) => (r.body.networks as Array<{ id: string; name: string; 'router:external'?: boolean; shared?: boolean; project_id: string }>)
      .filter((n) => !n['router:external'] || n.project_id === pid)) : Promise.resolve([]),
    hasService('network') ? call('GET', 'network', `/v2.0/security-groups?project_id=${pid}`).then((r) => r.body.security_groups as Array<{ id: string; name: string }>) : Promise.resolve([]),
  ]);
  return { images, flavors, keypairs, networks, groups };
}

function utf8Base64(s: string): string {
  const bytes = new TextEncoder().encode(s);
  let bin = '';
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin);
}

export function LaunchServer() {
  const { data, error: loadError } = useLoad(loadChoices, []);
  const [kind, setKind] = useState('container');
  const [name, setName] = useState('');
  const [image, setImage] = useState('');
  const [flavor, setFlavor] = useState('');
  const [network, setNetwork] = useState('');
  const [keyName, setKeyName] = useState('');
  const [groups, setGroups] = useState<string[]>([]);
  const [userData, setUserData] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  if (loadError) return <Page title="Launch server"><ErrorNote error={loadError} /></Page>;
  if (!data) return <Page title="Launch server"><Loading what="images and flavors" /></Page>;
  const kinds = [...new Set(data.images.map(kindOfImage))].sort();
  const images = data.images.filter((i) => kindOfImage(i) === kind);
  const flavors = data.flavors.filter((f) => !f.extra_specs?.['stratus:kind'] || f.extra_specs['stratus:kind'] === kind).sort((a, b) => a.ram - b.ram || a.vcpus - b.vcpus);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    const server: Record<string, unknown> = {
      name: name.trim(), imageRef: image, flavorRef: flavor,
      networks: network === '' ? (data.networks.length ? 'auto' : 'none') : network === 'none' ? 'none' : [{ uuid: network }],
    };
    if (keyName) server.key_name = keyName;
    if (groups.length) server.security_groups = groups.map((g) => ({ name: g }));
    if (userData) server.user_data = utf8Base64(userData);
    try {
      const r = await call('POST', 'compute', '/servers', { body: { server } });
      navigate(`/servers/${r.body.server.id}`);
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <Page title="Launch server">
      <form class="form" onSubmit={submit} aria-label="Launch server">
        <fieldset>
          <legend>Kind</legend>
          {(kinds.length ? kinds : ['container']).map((k) => (
            <label class="radio" key={k}>
              <input type="radio" name="kind" value={k} checked={kind === k} onChange={() => { setKind(k); setImage(''); setFlavor(''); }} /> {KIND_LABEL[k] ?? k}
            </label>
          ))}
        </fieldset>
        <Field label="Name"><input name="name" value={name} onInput={(e) => setName(val(e))} required maxLength={255} /></Field>
        <Field label="Image">
          <select name="image" value={image} onChange={(e) => setImage(val(e))} required>
            <option value="">Choose an image…</option>
            {images.map((i) => <option key={i.id} value={i.id}>{i.name ?? i.id} ({i.container_format}/{i.disk_format})</option>)}
          </select>
        </Field>
        <Field label="Flavor">
          <select name="flavor" value={flavor} onChange={(e) => setFlavor(val(e))} required>
            <option value="">Choose a flavor…</option>
            {flavors.map((f) => <option key={f.id} value={f.id}>{f.name} ({f.vcpus} vCPU, {f.ram} MiB, {f.disk} GiB)</option>)}
          </select>
        </Field>
        <Field label="Network" hint="Automatic: the project's network, made for it when it has none and the cloud has a default external network.">
          <select name="network" value={network} onChange={(e) => setNetwork(val(e))}>
            <option value="">{data.networks.length ? 'Automatic' : 'None'}</option>
            <option value="none">None</option>
            {data.networks.map((n) => <option key={n.id} value={n.id}>{n.name || n.id}</option>)}
          </select>
        </Field>
        <Field label="Key pair">
          <select name="key" value={keyName} onChange={(e) => setKeyName(val(e))}>
            <option value="">None</option>
            {data.keypairs.map((k) => <option key={k} value={k}>{k}</option>)}
          </select>
        </Field>
        {data.groups.length > 0 && (
          <fieldset>
            <legend>Security groups</legend>
            {data.groups.map((g) => (
              <label class="check" key={g.id}>
                <input type="checkbox" checked={groups.includes(g.name)} onChange={(e) => setGroups(e.currentTarget.checked ? [...groups, g.name] : groups.filter((x) => x !== g.name))} /> {g.name}
              </label>
            ))}
          </fieldset>
        )}
        <Field label="User data" hint="cloud-init user data or a script, passed as is."><textarea name="user-data" rows={4} value={userData} onInput={(e) => setUserData(val(e))} /></Field>
        <ErrorNote error={error} />
        <div class="actions">
          <button type="submit" class="primary" disabled={busy}>{busy ? 'Launching…' : 'Launch'}</button>
          <a href="#/servers">Cancel</a>
        </div>
      </form>
    </Page>
  );
}
