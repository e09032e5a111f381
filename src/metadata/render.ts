// The metadata answers, as Nova's metadata API gives them to a server: the
// OpenStack layout under /openstack (versions, then meta_data.json,
// user_data, password, vendor_data.json, network_data.json,
// vendor_data2.json per version) and the EC2 layout everywhere else
// (/<version>/meta-data/..., /<version>/user-data). A directory lists its
// entries one a line (a sub-directory with a trailing slash; EC2's
// public-keys/ says `0=<key name>`); a missing path is webob's plain 404.
// Pure: the server's facts come in a ServerMetadata (service.ts loads it).
import type { NetworkData } from '../network/service.ts';

/** Everything the answers are made of, for one server. */
export interface ServerMetadata {
  uuid: string;
  name: string;
  hostname: string;
  project_id: string;
  availability_zone: string;
  launch_index: number;
  reservation_id: string;
  /** The server's metadata (Nova's `meta`). */
  meta: Record<string, string>;
  keys: Array<{ name: string; type: string; data: string }>;
  /** The user data as given at create (base64 decoded); null when none. */
  user_data: Buffer | null;
  flavor_name: string;
  /** EC2 ids: `i-%08x` and `ami-%08x` of their numbers. */
  ec2_instance_id: string;
  ec2_ami_id: string;
  /** The first fixed IPv4 address and the MAC of the port holding it. */
  local_ipv4: string;
  mac: string;
  /** The first floating IP of the server's ports; null when it has none. */
  public_ipv4: string | null;
  security_groups: string[];
  network_data: NetworkData;
  /** The password the guest posted; '' when none. */
  password: string;
}

export interface MetadataAnswer { status: number; contentType: string; body: Buffer }

/** EC2's metadata versions (Nova's list) and the OpenStack ones, oldest first. */
export const EC2_VERSIONS = ['1.0', '2007-01-19', '2007-03-01', '2007-08-29', '2007-10-10', '2007-12-15', '2008-02-01', '2008-09-01', '2009-04-04'] as const;
export const OPENSTACK_VERSIONS = ['2012-08-10', '2013-04-04', '2013-10-17', '2015-10-15', '2016-06-30', '2016-10-06', '2017-02-22', '2018-08-27', '2020-10-14', '2025-04-04'] as const;
const OS = { grizzly: '2013-04-04', havana: '2013-10-17', liberty: '2015-10-15', newtonTwo: '2016-10-06' } as const;

/** Nova's password limit: four system-metadata chunks of 255 characters. */
export const MAX_PASSWORD_BYTES = 4 * 255;

const TEXT = 'text/plain; charset=UTF-8';
const JSON_TYPE = 'application/json';

/** webob's plain-text error bodies, which Nova's metadata API answers with. */
const plainError = (status: number, title: string, explanation: string): MetadataAnswer =>
  ({ status, contentType: TEXT, body: Buffer.from(`${status} ${title}\n\n${explanation}\n\n   `) });
export const notFound = () => plainError(404, 'Not Found', 'The resource could not be found.');
export const conflict = () => plainError(409, 'Conflict', 'There was a conflict when trying to complete your request.');
const tooLarge = () => plainError(400, 'Bad Request', 'Request is too large.');
const badMethod = () => plainError(405, 'Method Not Allowed', 'The method is not allowed for this resource.');

const text = (s: string | Buffer, contentType = TEXT): MetadataAnswer => ({ status: 200, contentType, body: Buffer.isBuffer(s) ? s : Buffer.from(s) });

/** Nova's path normalisation: leading slash, `.`/`..` and repeated or trailing slashes resolved. */
export function normalizePath(path: string): string[] {
  const out: string[] = [];
  for (const t of path.split('/')) {
    if (t === '' || t === '.') continue;
    if (t === '..') out.pop();
    else out.push(t);
  }
  return out;
}

/** A tree node of the EC2 layout: a directory (maybe with a listing name), a list, or a leaf. */
type Tree = { [k: string]: Tree } | string[] | string | number;
const LISTING_NAME = '_name';

/** A directory's listing as EC2 shows it: sorted, sub-directories with a slash (or their own listing name). */
function listing(node: Tree): string {
  if (Array.isArray(node)) return node.join('\n');
  if (typeof node !== 'object') return String(node);
  return Object.keys(node).filter((k) => k !== LISTING_NAME).sort().map((k) => {
    const v = node[k]!;
    if (typeof v === 'object' && !Array.isArray(v)) return typeof v[LISTING_NAME] === 'string' ? v[LISTING_NAME] as unknown as string : `${k}/`;
    return k;
  }).join('\n');
}

export function ec2MetaData(md: ServerMetadata): Record<string, Tree> {
  const t: Record<string, Tree> = {
    'ami-id': md.ec2_ami_id, 'ami-launch-index': md.launch_index, 'ami-manifest-path': 'FIXME', 'instance-id': md.ec2_instance_id,
    hostname: md.hostname, 'local-ipv4': md.local_ipv4, 'reservation-id': md.reservation_id, 'security-groups': md.security_groups,
    'local-hostname': md.hostname, 'public-hostname': md.hostname,
    'instance-type': md.flavor_name, 'block-device-mapping': { ami: 'vda', root: '/dev/vda' },
    placement: { 'availability-zone': md.availability_zone }, 'instance-action': 'none',
  };
  if (md.mac) t.mac = md.mac;
  // only with a floating IP (Nova shows an empty one; a guest reading it then takes '' for an address)
  if (md.public_ipv4) t['public-ipv4'] = md.public_ipv4;
  const key = md.keys[0];
  if (key) t['public-keys'] = { '0': { [LISTING_NAME]: `0=${key.name}`, 'openssh-key': key.data } as unknown as Tree };
  return t;
}

/** Nova's meta_data.json: uuid first. */
export function metaDataJson(md: ServerMetadata): Record<string, unknown> {
  return {
    uuid: md.uuid, meta: md.meta,
    ...(md.keys.length ? { public_keys: Object.fromEntries(md.keys.map((k) => [k.name, k.data])), keys: md.keys } : {}),
    hostname: md.hostname, name: md.name, launch_index: md.launch_index, availability_zone: md.availability_zone, project_id: md.project_id, devices: [],
  };
}

function openstack(md: ServerMetadata, tokens: string[], method: string, body: Buffer): MetadataAnswer {
  if (!tokens.length) return text([...OPENSTACK_VERSIONS.filter((v) => v <= new Date().toISOString().slice(0, 10)), 'latest'].join('\n'));
  const asked = tokens[0]!;
  const version = asked === 'latest' ? OPENSTACK_VERSIONS.at(-1)! : asked;
  if (!(OPENSTACK_VERSIONS as readonly string[]).includes(version)) return notFound();
  const since = (v: string) => version >= v;
  const item = tokens.slice(1).join('/');
  if (method === 'POST' && item !== 'password') return badMethod();
  switch (item) {
    case '': {
      const entries = ['meta_data.json'];
      if (md.user_data) entries.push('user_data');
      if (since(OS.grizzly)) entries.push('password');
      if (since(OS.havana)) entries.push('vendor_data.json');
      if (since(OS.liberty)) entries.push('network_data.json');
      if (since(OS.newtonTwo)) entries.push('vendor_data2.json');
      return text(entries.join('\n'));
    }
    case 'meta_data.json': return text(JSON.stringify(metaDataJson(md)), JSON_TYPE);
    case 'user_data': return md.user_data ? text(md.user_data, 'application/octet-stream') : notFound();
    case 'network_data.json': return since(OS.liberty) ? text(JSON.stringify(md.network_data), JSON_TYPE) : notFound();
    // no vendor data providers: Nova without StaticJSON answers 404 here, and {} for vendor_data2
    case 'vendor_data.json': return notFound();
    case 'vendor_data2.json': return since(OS.newtonTwo) ? text('{}', JSON_TYPE) : notFound();
    case 'password': {
      if (!since(OS.grizzly)) return notFound();
      if (method !== 'POST') return text(md.password);
      if (md.password) return conflict();
      if (body.length > MAX_PASSWORD_BYTES) return tooLarge();
      // the caller stores it (service.ts) and answers
      return { status: 200, contentType: TEXT, body: Buffer.alloc(0) };
    }
    default: return notFound();
  }
}

function ec2(md: ServerMetadata, tokens: string[]): MetadataAnswer {
  const asked = tokens[0]!;
  const version = asked === 'latest' ? EC2_VERSIONS.at(-1)! : asked;
  if (!(EC2_VERSIONS as readonly string[]).includes(version)) return notFound();
  let node: Tree = { 'meta-data': ec2MetaData(md), ...(md.user_data ? { 'user-data': md.user_data.toString('latin1') } : {}) };
  if (tokens[1] === 'user-data' && tokens.length === 2) return md.user_data ? text(md.user_data, 'application/octet-stream') : notFound();
  for (const t of tokens.slice(1)) {
    if (typeof node !== 'object' || Array.isArray(node) || t === LISTING_NAME || !(t in node)) return notFound();
    node = node[t]!;
  }
  return text(listing(node));
}

/**
 * The answer to `method path` from the server `md`. A POST of the password
 * that may be stored answers 200 with an empty body: the caller stores
 * `body` first (passwordToStore says whether to).
 */
export function renderMetadata(md: ServerMetadata, method: string, path: string, body: Buffer = Buffer.alloc(0)): MetadataAnswer {
  if (method !== 'GET' && method !== 'HEAD' && method !== 'POST') return badMethod();
  const tokens = normalizePath(path);
  if (!tokens.length) return method === 'POST' ? badMethod() : text([...EC2_VERSIONS, 'latest'].join('\n'));
  if (tokens[0] === 'openstack') return openstack(md, tokens.slice(1), method, body);
  if (method === 'POST') return badMethod();
  return ec2(md, tokens[0] === 'ec2' ? tokens.slice(1) : tokens);
}

/** Whether `method path` is a password the guest may set now (the renderer said yes). */
export function passwordToStore(md: ServerMetadata, method: string, path: string, body: Buffer): boolean {
  const t = normalizePath(path);
  return method === 'POST' && t[0] === 'openstack' && t.length === 3 && t[2] === 'password' && renderMetadata(md, method, path, body).status === 200;
}
