// Launching a server: the kinds the cloud has, as the compute API's own
// descriptor (src/compute/kinds.ts) decides them: a container from an OCI or
// Docker image, a VM from a disk image, bare metal by its flavor (stratus:kind
// or a custom resource class with the rest zeroed); then image, flavor,
// network or a free port, key pair, security groups, user data and, for a kind that boots
// from a disk (a VM), volumes: existing ones attached at boot, the root disk a
// new volume made from the image (containers get volumes on their page). The
// API's own refusal is shown in the form.
import { useState } from 'preact/hooks';
import { KINDS, imageBootsKind, kindOfFlavor, type KindName } from '../../../src/compute/kinds.ts';
import { call, hasService, session } from '../api.ts';
import { navigate } from '../router.ts';
import { ErrorNote, Field, Loading, Page, errorText, useLoad, val } from '../ui.tsx';
import { KIND_LABEL } from './servers.tsx';
import { allVolumes, volumeLabel, type Volume } from './volumes.tsx';

interface Image { id: string; name: string | null; container_format: string | null; disk_format: string | null; status: string; size?: number }
interface Flavor { id: string; name: string; vcpus: number; ram: number; disk: number; extra_specs?: Record<string, string> }

interface Port { id: string; name: string; network_id: string; device_id: string; device_owner: string; fixed_ips: Array<{ ip_address: string }> }

const KIND_NAMES = Object.keys(KINDS) as KindName[];
/** Whether a flavor is for servers of `kind`: the kind it names, or any image-chosen kind when it names none. */
const flavorFits = (f: Flavor, kind: KindName): boolean => {
  const named = kindOfFlavor(f.extra_specs ?? {});
  return named ? named === kind : !KINDS[kind].byFlavor;
};
const imageFits = (i: Image, kind: KindName): boolean => imageBootsKind(kind, i.container_format, i.disk_format);

async function loadChoices() {
  const pid = session()!.project!.id;
  const [images, flavors, keypairs, networks, groups, volumes, ports] = await Promise.all([
    call('GET', 'image', '/v2/images?status=active&limit=1000').then((r) => r.body.images as Image[]),
    call('GET', 'compute', '/flavors/detail').then((r) => r.body.flavors as Flavor[]),
    call('GET', 'compute', '/os-keypairs').then((r) => (r.body.keypairs as Array<{ keypair: { name: string } }>).map((k) => k.keypair.name)),
    hasService('network') ? call('GET', 'network', '/v2.0/networks').then((r) => (r.body.networks as Array<{ id: string; name: string; 'router:external'?: boolean; shared?: boolean; project_id: string }>)
      .filter((n) => !n['router:external'] || n.project_id === pid)) : Promise.resolve([]),
    hasService('network') ? call('GET', 'network', `/v2.0/security-groups?project_id=${pid}`).then((r) => r.body.security_groups as Array<{ id: string; name: string }>) : Promise.resolve([]),
    hasService('block-storage') ? allVolumes().then((vs) => vs.filter((v) => v.status === 'available')) : Promise.resolve([] as Volume[]),
    // the project's ports bound to nothing: a server may take one instead of a network
    hasService('network') ? call('GET', 'network', `/v2.0/ports?project_id=${pid}`).then((r) => (r.body.ports as Port[]).filter((x) => !x.device_id && !x.device_owner)) : Promise.resolve([] as Port[]),
  ]);
  return { images, flavors, keypairs, networks, groups, volumes, ports };
}

function utf8Base64(s: string): string {
  const bytes = new TextEncoder().encode(s);
  let bin = '';
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin);
}

export function LaunchServer() {
  const { data, error: loadError } = useLoad(loadChoices, []);
  const [chosenKind, setKind] = useState<KindName | null>(null);
  const [name, setName] = useState('');
  const [image, setImage] = useState('');
  const [flavor, setFlavor] = useState('');
  const [network, setNetwork] = useState('');
  const [keyName, setKeyName] = useState('');
  const [groups, setGroups] = useState<string[]>([]);
  const [userData, setUserData] = useState('');
  const [attach, setAttach] = useState<string[]>([]);
  const [rootVolume, setRootVolume] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  if (loadError) return <Page title="Launch server"><ErrorNote error={loadError} /></Page>;
  if (!data) return <Page title="Launch server"><Loading what="images and flavors" /></Page>;
  // a kind is offered when the cloud has an image and a flavor for it
  const kinds = KIND_NAMES.filter((k) => data.images.some((i) => imageFits(i, k)) && data.flavors.some((f) => flavorFits(f, k)));
  const kind: KindName = chosenKind ?? kinds[0] ?? 'container';
  const images = data.images.filter((i) => imageFits(i, kind));
  const flavors = data.flavors.filter((f) => flavorFits(f, kind)).sort((a, b) => a.ram - b.ram || a.vcpus - b.vcpus);
  // volumes at boot (attached, or a new root volume): where the kind attaches volumes and boots from a disk (the compute API's rule)
  const volumesFit = hasService('block-storage') && (KINDS[kind].actions as readonly string[]).includes('attach_volume') && KINDS[kind].rootDisk;
  const rootVolumeFits = volumesFit;
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    const bdms: Array<Record<string, unknown>> = [];
    if (rootVolumeFits && rootVolume) bdms.push({ source_type: 'image', destination_type: 'volume', uuid: image, boot_index: 0, volume_size: Number(rootVolume), delete_on_termination: true });
    if (volumesFit) for (const v of attach) bdms.push({ source_type: 'volume', destination_type: 'volume', uuid: v, boot_index: -1 });
    const server: Record<string, unknown> = {
      name: name.trim(), imageRef: rootVolumeFits && rootVolume ? '' : image, flavorRef: flavor,
      networks: network === '' ? (data.networks.length ? 'auto' : 'none') : network === 'none' ? 'none'
        : network.startsWith('port:') ? [{ port: network.slice(5) }] : [{ uuid: network }],
    };
    if (keyName) server.key_name = keyName;
    if (groups.length) server.security_groups = groups.map((g) => ({ name: g }));
    if (userData) server.user_data = utf8Base64(userData);
    if (bdms.length) server.block_device_mapping_v2 = bdms;
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
          {kinds.length === 0 && <p class="muted">The cloud has no image with a flavor to boot it yet.</p>}
          {kinds.map((k) => (
            <label class="radio" key={k}>
              <input type="radio" name="kind" value={k} checked={kind === k} onChange={() => { setKind(k); setImage(''); setFlavor(''); setRootVolume(''); }} /> {KIND_LABEL[k]}
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
        <Field label="Network" hint="Automatic: the project's network, made for it when it has none and the cloud has a default external network. Or one of the project's free ports.">
          <select name="network" value={network} onChange={(e) => setNetwork(val(e))}>
            <option value="">{data.networks.length ? 'Automatic' : 'None'}</option>
            <option value="none">None</option>
            {data.networks.map((n) => <option key={n.id} value={n.id}>{n.name || n.id}</option>)}
            {data.ports.length > 0 && (
              <optgroup label="Ports">
                {data.ports.map((x) => <option key={x.id} value={`port:${x.id}`}>Port {x.name || x.id.slice(0, 8)} ({x.fixed_ips.map((f) => f.ip_address).join(', ')}) on {data.networks.find((n) => n.id === x.network_id)?.name ?? x.network_id}</option>)}
              </optgroup>
            )}
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
        {rootVolumeFits && (
          <Field label="Root disk" hint="On the host, of the size the server's type says; or a new volume to boot from, deleted with the server.">
            <select name="root-volume" value={rootVolume} onChange={(e) => setRootVolume(val(e))}>
              <option value="">On the host</option>
              {[1, 2, 5, 10, 20, 50].map((n) => <option key={n} value={String(n)}>A new volume of {n} GiB</option>)}
            </select>
          </Field>
        )}
        {volumesFit && data.volumes.length > 0 && (
          <fieldset>
            <legend>Volumes to attach</legend>
            {data.volumes.map((v) => (
              <label class="check" key={v.id}>
                <input type="checkbox" checked={attach.includes(v.id)} onChange={(e) => setAttach(e.currentTarget.checked ? [...attach, v.id] : attach.filter((x) => x !== v.id))} /> {volumeLabel(v)} ({v.size} GiB)
              </label>
            ))}
          </fieldset>
        )}
        <ErrorNote error={error} />
        <div class="actions">
          <button type="submit" class="primary" disabled={busy}>{busy ? 'Launching…' : 'Launch'}</button>
          <a href="#/servers">Cancel</a>
        </div>
      </form>
    </Page>
  );
}
