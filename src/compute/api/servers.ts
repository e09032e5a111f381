// /servers: create (records intent: BUILD, scheduling), list and detail with
// Nova's filters, sorting and pagination, show, update and delete.
import { PowerState } from '../schema.ts';
import type { RequestedNetworks } from '../../network/service.ts';
import { allocatePorts, givenPorts, resolveGroups } from './server-ports.ts';
import { imageBootsKind, isolatedKind, KINDS, kindOf, kindOfFlavor, kindOfImageFormat, type KindName } from '../kinds.ts';
import { randomBytes, randomInt } from 'node:crypto';
import { sql } from 'kysely';
import { Type } from 'typebox';
import { ApiError, badRequest, conflict, forbidden } from '../../common/errors.ts';
import { nowIso, uuid } from '../../common/ids.ts';
import type { Credentials } from '../../http/auth.ts';
import { route, type Route, type RouteContext } from '../../http/service.ts';
import type { ComputeContext } from './context.ts';
import { extraSpecsOf, findFlavor } from './flavors.ts';
import { accessIp, keyedBy, boolFrom, checkName, endpoint, has, isPrintable, isUuid, mv, nextLinks, pageParams, parseTime, q, qAll, validate, objectOf } from './http.ts';
import type { ImageInfo } from './images-access.ts';
import { findKeypair } from './keypairs.ts';
import { isComputeAdmin } from './policy.ts';
import { claimTransaction, groupMembers, overQuota, projectLimits, serverUsage, within } from './quota.ts';
import { forgetServer, loadServer, recordAction, reloadServer, serverTarget, type ServerRow } from './servers-store.ts';
import { partialView, renderBrief, renderServer, viewData, type EmbeddedFlavor } from './servers-view.ts';
import { statesOf, TaskState, VmState } from './state.ts';
import { releaseConsumer } from '../../placement/service.ts';
import { nextDevice, releaseServerVolumes } from '../engine/server-volumes.ts';

// ---- request bodies

const METADATA_KEY = '^[a-zA-Z0-9-_:. ]{1,255}$';
export const Metadata = keyedBy(METADATA_KEY, Type.String({ maxLength: 255 }));
/** {"metadata": {...}}: sets or replaces a server's (or, below 2.39, an image's) metadata. */
export const MetadataBody = Type.Object({ metadata: Metadata }, { additionalProperties: false });
const MetaBody = Type.Object({
  meta: keyedBy(METADATA_KEY, Type.String({ maxLength: 255 }), { minProperties: 1, maxProperties: 1 }),
}, { additionalProperties: false });

/** The body of PUT .../metadata/{key}: {"meta": {key: value}}, one item whose key is the URI's. */
export function metadataItem(rc: RouteContext): Record<string, string> {
  const asked = objectOf(objectOf(rc.body)?.meta);
  if (asked && Object.keys(asked).length > 1) throw badRequest('Request body contains too many items');
  const { meta } = validate(MetaBody, rc.body);
  if (!(rc.params.key! in meta)) throw badRequest('Request body and URI mismatch');
  return meta;
}

const Tag = Type.String({ minLength: 1, maxLength: 60, pattern: '^[^,/]*$' });
const Uuid = Type.String({ pattern: '^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$' });
const PositiveInt = Type.Union([Type.Integer({ minimum: 1 }), Type.String({ pattern: '^[0-9]*[1-9][0-9]*$' })]);
const BoolLike = Type.Union([Type.Boolean(), Type.String({ pattern: '^(True|TRUE|true|1|ON|On|on|YES|Yes|yes|False|FALSE|false|0|OFF|Off|off|NO|No|no)$' })]);
const NetworkItem = Type.Object({
  fixed_ip: Type.Optional(Type.String()),
  port: Type.Optional(Type.Union([Uuid, Type.Null()])),
  uuid: Type.Optional(Type.String()),
  tag: Type.Optional(Type.String({ minLength: 1, maxLength: 60, pattern: '^[^,/]*$' })),
}, { additionalProperties: false });
const Bdm = Type.Object({
  source_type: Type.Optional(Type.String()), uuid: Type.Optional(Type.String({ minLength: 1, maxLength: 255, pattern: '^[a-zA-Z0-9._-]*$' })),
  image_id: Type.Optional(Uuid), destination_type: Type.Optional(Type.String()), guest_format: Type.Optional(Type.String({ maxLength: 255 })),
  device_type: Type.Optional(Type.String({ maxLength: 255 })), disk_bus: Type.Optional(Type.String({ maxLength: 255 })),
  boot_index: Type.Optional(Type.Union([Type.Integer(), Type.String({ pattern: '^-?[0-9]+$' }), Type.Null()])),
  device_name: Type.Optional(Type.String({ minLength: 1, maxLength: 255 })), volume_size: Type.Optional(Type.Unknown()),
  delete_on_termination: Type.Optional(BoolLike), tag: Type.Optional(Type.String()), volume_type: Type.Optional(Type.Union([Type.String(), Type.Null()])),
  volume_id: Type.Optional(Type.String()), snapshot_id: Type.Optional(Type.String()), no_device: Type.Optional(Type.Unknown()),
  virtual_name: Type.Optional(Type.String()), connection_info: Type.Optional(Type.String()),
}, { additionalProperties: false });
const Hints = Type.Object({
  group: Type.Optional(Type.Union([Uuid, Type.Array(Uuid)])),
  different_host: Type.Optional(Type.Union([Uuid, Type.Array(Uuid)])),
  same_host: Type.Optional(Type.Union([Uuid, Type.Array(Uuid)])),
}, { additionalProperties: true });

const CreateBody = Type.Object({
  server: Type.Object({
    name: Type.String(),
    imageRef: Type.Optional(Type.String()),
    flavorRef: Type.Union([Type.String({ minLength: 1 }), Type.Integer()]),
    adminPass: Type.Optional(Type.String()),
    metadata: Type.Optional(Metadata),
    networks: Type.Optional(Type.Union([Type.Array(NetworkItem), Type.Literal('none'), Type.Literal('auto')])),
    'OS-DCF:diskConfig': Type.Optional(Type.Union([Type.Literal('AUTO'), Type.Literal('MANUAL')])),
    accessIPv4: Type.Optional(Type.String()),
    accessIPv6: Type.Optional(Type.String()),
    personality: Type.Optional(Type.Array(Type.Object({ path: Type.String({ maxLength: 255 }), contents: Type.String() }, { additionalProperties: false }))),
    availability_zone: Type.Optional(Type.String({ minLength: 1, maxLength: 255 })),
    block_device_mapping: Type.Optional(Type.Array(Type.Unknown())),
    block_device_mapping_v2: Type.Optional(Type.Array(Bdm)),
    config_drive: Type.Optional(BoolLike),
    key_name: Type.Optional(Type.String({ minLength: 1, maxLength: 255 })),
    min_count: Type.Optional(PositiveInt),
    max_count: Type.Optional(PositiveInt),
    return_reservation_id: Type.Optional(BoolLike),
    security_groups: Type.Optional(Type.Array(Type.Object({ name: Type.Optional(Type.String({ minLength: 1, maxLength: 255 })) }, { additionalProperties: false }))),
    user_data: Type.Optional(Type.String({ maxLength: 65535 })),
    description: Type.Optional(Type.Union([Type.String({ maxLength: 255 }), Type.Null()])),
    tags: Type.Optional(Type.Array(Tag, { maxItems: 50 })),
    trusted_image_certificates: Type.Optional(Type.Union([Type.Array(Type.String({ minLength: 1 }), { minItems: 1, maxItems: 50, uniqueItems: true }), Type.Null()])),
    host: Type.Optional(Type.String({ minLength: 1, maxLength: 255, pattern: '^[a-zA-Z0-9-._]*$' })),
    hypervisor_hostname: Type.Optional(Type.String({ minLength: 1, maxLength: 255, pattern: '^[a-zA-Z0-9-._]*$' })),
    hostname: Type.Optional(Type.String({ minLength: 1, maxLength: 255 })),
  }, { additionalProperties: false }),
  'os:scheduler_hints': Type.Optional(Hints),
  'OS-SCH-HNT:scheduler_hints': Type.Optional(Hints),
}, { additionalProperties: false });

/** Fields of the server body that exist only in a range of microversions. */
const CREATE_FIELDS: Array<[string, string, string | null]> = [
  ['description', '2.19', null], ['tags', '2.52', null], ['trusted_image_certificates', '2.63', null], ['host', '2.74', null],
  ['hypervisor_hostname', '2.74', null], ['hostname', '2.90', null], ['personality', '2.1', '2.56'],
];

export function unexpectedField(field: string, where = 'server') {
  return badRequest(`Invalid input for field/attribute ${where}. Additional properties are not allowed ('${field}' was unexpected)`);
}

export function checkVersionedFields(rc: RouteContext, body: Record<string, unknown>, fields: Array<[string, string, string | null]>, where: string) {
  const v = mv(rc);
  for (const [f, min, max] of fields) {
    if (f in body && (v.lt(min) || (max !== null && v.cmp(max) > 0))) throw unexpectedField(f, where);
  }
}

/** Nova's hostname rule (RFC 1123 labels; FQDN from 2.94). */
export function checkHostname(rc: RouteContext, h: string): string {
  const fqdn = mv(rc).ge('2.94');
  const label = '[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?';
  const re = fqdn ? new RegExp(`^${label}(\\.${label})*\\.?$`) : /^[a-zA-Z0-9]+[a-zA-Z0-9-]*[a-zA-Z0-9]+$/;
  if (!re.test(h) || h.length > (fqdn ? 255 : 63) || h.length < (fqdn ? 1 : 2)) {
    throw badRequest(`Invalid input for field/attribute hostname. Value: ${h}. '${h}' does not match '${re.source}'`);
  }
  return h;
}

/** Nova's sanitize_hostname: a hostname derived from a display name. */
export function sanitizeHostname(name: string, fallback: string): string {
  let h = [...name].filter((c) => c.charCodeAt(0) <= 0xff).join('').slice(0, 63);
  h = h.replace(/[ _.]/g, '-').replace(/[^\w.-]+/g, '').toLowerCase().replace(/^[.-]+|[.-]+$/g, '');
  return h === '' ? fallback.slice(0, 63) : h;
}

export function isBase64(s: string): boolean {
  const t = s.replace(/\s+/g, '');
  return t.length % 4 === 0 && /^[A-Za-z0-9+/]*={0,2}$/.test(t);
}

/** Nova's generate_password: 12 characters without look-alikes. */
export function generatePassword(): string {
  const chars = 'abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789';
  let out = '';
  for (let i = 0; i < 12; i++) out += chars[randomInt(chars.length)];
  return out;
}

const reservationId = () => `r-${randomBytes(6).toString('base64url').replace(/[-_]/g, 'x').slice(0, 8).toLowerCase()}`;

/** The id at the end of an href (Nova's get_id_from_href). */
export const idFromHref = (ref: string): string => new URL(ref, 'http://x/').pathname.split('/').at(-1) ?? '';

/** The kind of host an image needs (kinds.ts: OCI/Docker images are containers; disk images are VMs). */
export const kindOfImage = (img: ImageInfo): KindName => kindOfImageFormat(img.containerFormat);

/** Validates an image for booting with `flavor` (Nova's _validate_flavor_image checks: FlavorMemoryTooSmall, FlavorDiskSmallerThanImage, FlavorDiskSmallerThanMinDisk, InvalidImageConfigDrive). */
export function checkImage(img: ImageInfo | undefined, flavor: { ram: number; disk: number }, missing = 'Can not find requested image'): ImageInfo {
  if (!img) throw badRequest(missing);
  if (img.status !== 'active') throw badRequest(`Image ${img.id} is not active.`);
  const cf = (img.containerFormat ?? '').toLowerCase();
  if (cf === 'aki' || cf === 'ari') throw badRequest(`Image ${img.id} is unacceptable: a kernel or ramdisk image cannot be booted.`);
  const drive = img.properties.img_config_drive ?? 'optional';
  if (drive !== 'optional' && drive !== 'mandatory') throw badRequest(`Image's config drive option '${drive}' is invalid`);
  if (img.minRam > flavor.ram) throw badRequest(`Flavor's memory is too small for requested image.`);
  // a root disk from the flavor (0: not checked); the image's size first, then its min_disk, as Nova does
  if (KINDS[kindOfImage(img)].rootDisk && flavor.disk > 0) {
    if (img.size !== null && img.size > flavor.disk * 1024 ** 3) throw badRequest(`Flavor's disk is too small for requested image. Flavor disk is ${flavor.disk * 1024 ** 3} bytes, image is ${img.size} bytes.`);
    if (img.minDisk > flavor.disk) throw badRequest(`Flavor's disk is too small for requested image. Flavor disk is ${flavor.disk * 1024 ** 3} bytes, minimum required by image is ${img.minDisk * 1024 ** 3} bytes.`);
  }
  return img;
}

/** A bare-metal server's image: a whole-disk image the deploy ramdisk writes (kinds.ts: Glance's bare container, raw or qcow2 disk). */
export function checkBaremetalImage(img: ImageInfo): void {
  if (!imageBootsKind('baremetal', img.containerFormat, img.diskFormat)) {
    throw badRequest(`Image ${img.id} is unacceptable: a bare-metal server boots a whole-disk image (container_format bare, disk_format raw or qcow2), not ${img.containerFormat ?? 'none'}/${img.diskFormat ?? 'none'}.`);
  }
}

/** An image a kind the flavor chose (kindOfFlavor, a `byFlavor` kind) boots: its descriptor's formats, else Nova's 400. */
export function checkFlavorKindImage(kind: KindName, img: ImageInfo): void {
  if (kind === 'baremetal') return checkBaremetalImage(img);
  if (!imageBootsKind(kind, img.containerFormat, img.diskFormat)) {
    throw badRequest(`Image ${img.id} is unacceptable: a ${kind} server runs an image of container_format ${KINDS[kind].imageFormats.join(' or ')}, not ${img.containerFormat ?? 'none'}.`);
  }
}

/** A volume block device mapping asked for at create (block_device_mapping_v2, source and destination volume). */
interface VolumeBdmAsk {
  /** The existing volume (source volume); '' for one made at create. */
  volumeId: string; bootIndex: number | null; deleteOnTermination: boolean; device: string | null; tag: string | null;
  /** A volume made at create (Nova's image, snapshot or blank to volume): its source and size in GiB (null: the source's). */
  make?: { source: 'image' | 'snapshot' | 'blank'; id: string | null; size: number | null; volumeType: string | null };
}

const bootSequenceInvalid = () => badRequest('Boot sequence for the instance and image/block device mapping combination is not valid.');

/**
 * block_device_mapping_v2 as Nova's _validate_bdm reads it: the image to boot
 * (source image, destination local, boot_index 0) and existing volumes
 * (source and destination volume; the boot_index 0 one is the root disk);
 * the boot indexes from 0 without gaps. Volumes made at create (from an image,
 * a snapshot or blank) and local ephemeral or swap disks are not served yet: 400.
 */
export function parseBdms(list: Array<Record<string, any>>): { image: string | null; volumes: VolumeBdmAsk[] } {
  let image: string | null = null;
  const volumes: VolumeBdmAsk[] = [];
  const boots: number[] = [];
  for (const bdm of list) {
    const source = String(bdm.source_type ?? 'volume');
    const dest = String(bdm.destination_type ?? (source === 'image' || source === 'blank' ? 'local' : 'volume'));
    let bootIndex: number | null = null;
    if (bdm.boot_index !== undefined && bdm.boot_index !== null && bdm.boot_index !== '') {
      const n = Number(bdm.boot_index);
      if (!Number.isInteger(n)) throw badRequest('Boot index is invalid.');
      bootIndex = n < 0 ? null : n;
    }
    if (bootIndex !== null) boots.push(bootIndex);
    if (source === 'image' && dest === 'local') {
      if (bootIndex !== 0) throw bootSequenceInvalid();
      const id = bdm.uuid ?? bdm.image_id;
      if (!id) throw badRequest('Bad block device mapping: an image mapping needs a uuid.');
      if (image && image !== id) throw bootSequenceInvalid();
      image = String(id);
    } else if (source === 'volume' && dest === 'volume') {
      const id = String(bdm.uuid ?? bdm.volume_id ?? '');
      if (!id) throw badRequest('Bad block device mapping: a volume mapping needs a uuid.');
      volumes.push({
        volumeId: id.toLowerCase(), bootIndex, deleteOnTermination: bdm.delete_on_termination !== undefined && boolFrom(bdm.delete_on_termination),
        device: devicePath(bdm.device_name), tag: bdm.tag ?? null,
      });
    } else if ((source === 'image' || source === 'snapshot' || source === 'blank') && dest === 'volume') {
      let size: number | null = null;
      if (bdm.volume_size !== undefined && bdm.volume_size !== null && bdm.volume_size !== '') {
        const n = Number(bdm.volume_size);
        if (!Number.isInteger(n) || n < 0 || typeof bdm.volume_size === 'boolean') throw badRequest('Block Device Mapping is Invalid: Invalid volume_size.');
        size = n || null;
      }
      const id = source === 'blank' ? null : String(bdm.uuid ?? (source === 'image' ? bdm.image_id : bdm.snapshot_id) ?? '');
      if (id === '') throw badRequest(`Block Device Mapping is Invalid: a ${source} mapping needs a uuid.`);
      if (source === 'blank' && !size) throw badRequest("Block Device Mapping is Invalid: Blank volumes (source: 'blank', dest: 'volume') need to have non-zero size");
      volumes.push({
        volumeId: '', bootIndex, deleteOnTermination: bdm.delete_on_termination !== undefined && boolFrom(bdm.delete_on_termination),
        device: devicePath(bdm.device_name), tag: bdm.tag ?? null, make: { source, id, size, volumeType: bdm.volume_type ?? null },
      });
    } else {
      throw badRequest(`Block device mapping with source_type '${source}' and destination_type '${dest}' is not supported yet: an image to boot (local) and volumes (existing, or made from an image, a snapshot or blank) are.`);
    }
  }
  boots.sort((a, b) => a - b);
  if (boots.some((b, i) => b !== i)) throw bootSequenceInvalid();
  return { image, volumes };
}

/** Nova's schema of a mapping's device_name; `vdb` is taken as `/dev/vdb`. */
const VOLUME_DEVICE_RE = /^[a-zA-Z0-9._/-]*$/;
const devicePath = (d: unknown): string | null => {
  if (d === undefined || d === null) return null;
  if (!VOLUME_DEVICE_RE.test(String(d))) throw badRequest(`Invalid input for field/attribute device_name. Value: ${String(d)}. The supplied device name (${String(d)}) is invalid.`);
  const name = String(d);
  return name.startsWith('/dev/') ? name : `/dev/${name.replace(/^\/+/, '')}`;
};

/** The volumes of a create's mappings as Nova checks them before the build: the project's, bootable for the root, available (a multiattach one from 2.60). */
async function checkBdmVolumes(ctx: ComputeContext, rc: RouteContext, asked: VolumeBdmAsk[], flavorRam: number): Promise<Array<VolumeBdmAsk & { readOnly: boolean }>> {
  if (!ctx.volumes) throw badRequest('Block storage is not available: this cloud runs compute without the volume service.');
  const cred = rc.cred!;
  const seen = new Set<string>();
  const out: Array<VolumeBdmAsk & { readOnly: boolean }> = [];
  for (const b of asked) {
    if (b.make) {
      if (b.make.source === 'image') {
        // the image's size when none is asked, as Nova's: an image without a size needs one
        const img = isUuid(b.make.id!) ? await ctx.images.get(cred, b.make.id!) : undefined;
        if (!img) throw badRequest(`Image ${b.make.id} could not be found.`);
        if (img.status !== 'active') throw badRequest(`Image ${img.id} is not active.`);
        if (!KINDS[kindOfImage(img)].rootDisk) throw badRequest(`Image ${img.id} is a container image: a container cannot boot from a volume or have one made from its image, only a VM can.`);
        if (b.bootIndex === 0) checkImage(img, { ram: flavorRam, disk: 0 });
        if (!b.make.size) {
          const gib = Math.max(img.size ? Math.ceil(img.size / 2 ** 30) : 0, img.minDisk);
          if (!img.size) throw badRequest("Block Device Mapping is Invalid: Images with destination_type 'volume' need to have a non-zero size specified");
          b.make.size = gib;
        }
      }
      out.push({ ...b, readOnly: false });
      continue;
    }
    if (seen.has(b.volumeId)) throw badRequest(`Invalid volume: volume ${b.volumeId} already attached`);
    seen.add(b.volumeId);
    const vol = isUuid(b.volumeId) ? await ctx.volumes.get(b.volumeId) : null;
    if (!vol || (!isComputeAdmin(cred) && vol.project_id !== cred.projectId)) throw badRequest(`Volume ${b.volumeId} could not be found.`);
    if (b.bootIndex === 0 && !vol.bootable) throw badRequest(`Block Device ${b.volumeId} is not bootable.`);
    if (vol.multiattach && mv(rc).lt('2.60')) throw badRequest('Multiattach volumes are only supported starting with compute API version 2.60.');
    if (vol.status !== 'available' && !(vol.multiattach && vol.status === 'in-use')) {
      throw badRequest(`Invalid volume: volume '${b.volumeId}' status must be 'available'. Currently in '${vol.status}'`);
    }
    out.push({ ...b, readOnly: vol.readonly });
  }
  return out;
}

/**
 * The create's volumes attached to the new server (held back from scheduling
 * in task block_device_mapping meanwhile): each a mapping and a Cinder
 * attachment, reserved until the scheduler places the server (the placement
 * moves them to its host: engine/server-volumes.ts), the root as /dev/vda.
 * Then the server is scheduled. A refusal (the volume taken meanwhile) undoes
 * what was made and is Nova's 400.
 */
async function attachBdmVolumes(ctx: ComputeContext, rc: RouteContext, serverId: string, asked: Array<VolumeBdmAsk & { readOnly: boolean }>): Promise<void> {
  const vols = ctx.volumes!;
  const taken: string[] = [];
  const root = '/dev/vda';
  const made: string[] = [];
  /** Cinder's refusal as Nova's: its 400s and 404s a 400, its quota's 413 Nova's 403. */
  const asNova = (err: unknown) => {
    if (err instanceof ApiError && (err.status === 400 || err.status === 404)) return badRequest(err.message);
    if (err instanceof ApiError && err.status === 413) return forbidden(`Volume resource quota exceeded: ${err.message}`);
    return err;
  };
  let waiting = false;
  try {
    for (const b of [...asked].sort((x, y) => (x.bootIndex ?? 99) - (y.bootIndex ?? 99))) {
      const device = b.bootIndex === 0 ? (b.device ?? root) : (b.device && !taken.includes(b.device) ? b.device : nextDevice(taken, root));
      if (taken.includes(device)) throw badRequest(`The supplied device path (${device}) is in use.`);
      taken.push(device);
      const id = uuid();
      const now = nowIso();
      let volumeId = b.volumeId;
      if (b.make) {
        // Nova's volume made for the mapping (nova/virt/block_device.py): a blank one named <server>-blank-vol
        const m = b.make;
        const body: Record<string, unknown> = { size: m.size, name: m.source === 'blank' ? `${serverId}-blank-vol` : '' };
        if (m.source === 'image') body.imageRef = m.id;
        if (m.source === 'snapshot') body.snapshot_id = m.id;
        if (m.volumeType) body.volume_type = m.volumeType;
        volumeId = await vols.create(rc.cred!, body).catch((err: unknown) => { throw asNova(err); });
        made.push(volumeId);
      }
      // delete_on_termination only once all are made: an undone create never deletes the user's volume
      await ctx.db.insertInto('compute_block_device_mappings').values({
        id, server_id: serverId, volume_id: volumeId, attachment_id: id, device_name: device, tag: b.tag, delete_on_termination: 0,
        boot_index: b.bootIndex, status: b.make ? 'creating' : 'reserved', created_at: now, updated_at: now,
      }).execute();
      if (b.make) {
        // attached once Cinder has made it (engine/server-volumes.ts settleMadeVolumes)
        waiting = true;
        continue;
      }
      const { attachmentId } = await vols.attach({ volumeId, serverId, host: null, device, readOnly: b.readOnly }).catch((err: unknown) => { throw asNova(err); });
      await ctx.db.updateTable('compute_block_device_mappings').set({ attachment_id: attachmentId, status: 'attaching', updated_at: nowIso() }).where('id', '=', id).execute();
    }
    for (const b of asked) {
      if (b.deleteOnTermination) {
        await ctx.db.updateTable('compute_block_device_mappings').set({ delete_on_termination: 1 }).where('server_id', '=', serverId)
          .where('device_name', '=', taken[[...asked].sort((x, y) => (x.bootIndex ?? 99) - (y.bootIndex ?? 99)).indexOf(b)]!).execute();
      }
    }
  } catch (err) {
    await ctx.db.updateTable('compute_block_device_mappings').set({ delete_on_termination: 0 }).where('server_id', '=', serverId).execute();
    // the volumes this create made go with it
    for (const v of made) {
      await ctx.db.deleteFrom('compute_block_device_mappings').where('server_id', '=', serverId).where('volume_id', '=', v).execute();
      if (!(await vols.deleteVolume(v))) ctx.log.warn({ server: serverId, volume: v }, 'a volume made for a server whose create failed is kept: it cannot be deleted now');
    }
    throw err;
  }
  // volumes still being made: the engine schedules the server once they are attached (settleMadeVolumes)
  if (waiting) return;
  await ctx.db.updateTable('compute_servers').set({ task_state: TaskState.SCHEDULING, version: sql`version + 1`, updated_at: nowIso() })
    .where('id', '=', serverId).where('task_state', '=', TaskState.BLOCK_DEVICE_MAPPING).where('deleted_at', 'is', null).execute();
}

/** The availability zones servers may ask for: every host's, and the default. */
export async function knownZones(ctx: ComputeContext): Promise<Set<string>> {
  const rows = await ctx.db.selectFrom('compute_hosts').select('availability_zone').distinct().execute();
  return new Set([ctx.config.defaultAvailabilityZone, ...rows.map((r) => r.availability_zone)]);
}

async function createServers(ctx: ComputeContext, rc: RouteContext): Promise<unknown> {
  const v = mv(rc);
  const cred = rc.cred!;
  const admin = isComputeAdmin(cred);
  const body = validate(CreateBody, rc.body);
  const sv = body.server;
  checkVersionedFields(rc, sv, CREATE_FIELDS, 'server');
  if (v.ge('2.37') && sv.networks === undefined) throw badRequest(`Invalid input for field/attribute server. 'networks' is a required property`);
  if (v.lt('2.37') && typeof sv.networks === 'string') throw badRequest(`Invalid input for field/attribute networks. Value: ${sv.networks}. '${sv.networks}' is not of type 'array'`);
  const name = checkName('name', sv.name).trim();
  if (typeof sv.description === 'string' && !isPrintable(sv.description)) throw badRequest('Invalid input for field/attribute description.');
  if (sv.key_name !== undefined) checkName('key_name', sv.key_name);
  if (sv.availability_zone !== undefined) checkName('availability_zone', sv.availability_zone);
  if (sv.user_data !== undefined && !isBase64(sv.user_data)) throw badRequest(`Invalid input for field/attribute user_data. Value: ${sv.user_data.slice(0, 40)}. '${sv.user_data.slice(0, 40)}' is not a 'base64'`);
  if (sv.hostname !== undefined) checkHostname(rc, sv.hostname);
  for (const ip of ['accessIPv4', 'accessIPv6'] as const) if (sv[ip] !== undefined) sv[ip] = accessIp(ip, sv[ip]);
  const min = Number(sv.min_count ?? 1);
  const max = Number(sv.max_count ?? min);
  if (min > max) throw badRequest('min_count must be <= max_count');
  if (sv.hostname !== undefined && max > 1) throw badRequest('Unable to set the hostname of multiple instances at once: hostname applies to a single server.');
  const hints = (body['os:scheduler_hints'] ?? body['OS-SCH-HNT:scheduler_hints'] ?? {}) as Record<string, unknown>;

  // availability zone, possibly az:host:node (admins only)
  let az: string | null = sv.availability_zone ?? null;
  let forcedHost: string | null = null;
  if (az && az.includes(':')) {
    const parts = az.split(':');
    if (parts.length > 3) throw badRequest('Unable to parse availability_zone');
    forcedHost = parts[1] || null;
    az = parts[0] || null;
    if ((forcedHost || parts[2]) && !admin) throw forbidden(`Policy doesn't allow os_compute_api:servers:create:forced_host to be performed.`);
  }
  if (sv.host !== undefined || sv.hypervisor_hostname !== undefined) {
    if (!admin) throw forbidden(`Policy doesn't allow compute:servers:create:requested_destination to be performed.`);
    if (forcedHost) throw badRequest('One mechanism with host and/or hypervisor_hostname and another mechanism with zone:host:node are mutually exclusive.');
    forcedHost = sv.host ?? sv.hypervisor_hostname ?? null;
  }
  if (forcedHost && !(await ctx.db.selectFrom('compute_hosts').select('id').where('hostname', '=', forcedHost).executeTakeFirst())) {
    throw badRequest(`Compute host ${forcedHost} could not be found.`);
  }
  if (az && !(await knownZones(ctx)).has(az)) throw badRequest('The requested availability zone is not available');

  // flavor
  const flavorId = typeof sv.flavorRef === 'number' ? String(sv.flavorRef) : idFromHref(sv.flavorRef);
  const flavor = await findFlavor(ctx.db, cred, flavorId);
  if (!flavor) throw badRequest(`Flavor ${flavorId} could not be found.`);
  if (flavor.disabled) throw badRequest(`Flavor ${flavorId} could not be found.`);
  const specs = await extraSpecsOf(ctx.db, flavor.id);
  // a flavor that chooses the kind (kinds.ts kindOfFlavor: a bare-metal flavor, or stratus:kind=vm-container) makes a
  // server of that kind, whatever kind the image would say
  const specKind = kindOfFlavor(specs);
  const flavorKind = specKind && KINDS[specKind].byFlavor ? specKind : null;
  const bareMetal = flavorKind === 'baremetal';

  // image, directly or through an image block device mapping
  if (sv.block_device_mapping !== undefined && sv.block_device_mapping_v2 !== undefined) {
    throw badRequest('Using different block_device_mapping syntaxes is not allowed in the same request.');
  }
  if (sv.block_device_mapping?.length) throw badRequest('Block device mappings of volumes are not supported: this cloud has no block storage.');
  let imageRef: string = sv.imageRef ?? '';
  const bdmsAsked = parseBdms((sv.block_device_mapping_v2 ?? []) as Array<Record<string, any>>);
  if (bdmsAsked.image) {
    if (imageRef && idFromHref(imageRef) !== bdmsAsked.image) throw badRequest('Boot sequence for the instance and image/block device mapping combination is not valid.');
    imageRef = bdmsAsked.image;
  }
  const volumeBdms = bdmsAsked.volumes;
  const bootVolume = volumeBdms.find((b) => b.bootIndex === 0) ?? null;
  // the kinds a flavor chooses take no volumes at boot: bare metal (Nova's ironic driver boots whole-disk images; volumes need
  // Ironic's storage interface, which Stratus has not) and VM-isolated containers (no volume attach yet)
  if (flavorKind && volumeBdms.length) throw badRequest(`Block device mappings of volumes are not supported for ${bareMetal ? 'bare-metal' : flavorKind} servers.`);
  if (bootVolume && bdmsAsked.image) throw badRequest('Boot sequence for the instance and image/block device mapping combination is not valid.');
  let image: ImageInfo | null = null;
  if (bootVolume) {
    // a volume-backed server (Nova: its image_ref ""): a VM booting from its boot_index 0 volume; an imageRef given too must exist
    const given = imageRef ? idFromHref(imageRef) : '';
    if (given) {
      const img = checkImage(isUuid(given) ? await ctx.images.get(cred, given) : undefined, { ram: flavor.ram, disk: 0 });
      if (!KINDS[kindOfImage(img)].rootDisk) throw badRequest(`Image ${img.id} is a container image: a container cannot boot from a volume, only a VM can.`);
    }
  } else {
    if (!imageRef) throw badRequest('Missing imageRef attribute');
    const imageId = idFromHref(imageRef);
    if (sv.imageRef !== undefined && sv.imageRef !== '' && !isUuid(imageId)) {
      throw badRequest(`Invalid input for field/attribute imageRef. Value: ${sv.imageRef}. '${sv.imageRef}' is not a 'uuid'`);
    }
    image = checkImage(isUuid(imageId) ? await ctx.images.get(cred, imageId) : undefined, flavor);
    if (flavorKind) checkFlavorKindImage(flavorKind, image);
    if (flavor.disk === 0 && KINDS[kindOfImage(image)].rootDisk && !admin) {
      throw forbidden('Only volume-backed servers are allowed for flavors with zero disk.');
    }
    // a container has no block devices: a volume of it is attached later (os-volume_attachments), not at create
    if (volumeBdms.length && !KINDS[kindOfImage(image)].rootDisk) throw badRequest(`Image ${image.id} is a container image: block device mappings of volumes need a VM.`);
  }
  if (volumeBdms.length && max > 1) throw badRequest('Cannot attach one or more volumes to multiple instances');
  const volumesAsked = volumeBdms.length ? await checkBdmVolumes(ctx, rc, volumeBdms, flavor.ram) : [];
  // hw:isolation=vm on the flavor or the image runs a container image as a VM-isolated container
  const serverKind: KindName = flavorKind ?? (image ? isolatedKind(kindOfImage(image), specs, image.properties) : 'vm');

  // key pair
  let keyData: string | null = null;
  if (sv.key_name !== undefined) {
    const kp = await findKeypair(ctx, cred.userId, sv.key_name);
    if (!kp) throw badRequest('Invalid key_name provided.');
    keyData = kp.public_key;
  }

  // networks: checked here, recorded, and turned into ports after the create (server-ports.ts); security groups: recorded
  const networks: unknown = sv.networks ?? null;
  if (Array.isArray(networks)) {
    const ports = new Set<string>();
    for (const n of networks as Array<Record<string, string | null>>) {
      if (n.port) {
        if (ports.has(n.port)) throw badRequest(`Port ID '${n.port}' was specified twice: you cannot attach a port multiple times.`);
        if (n.fixed_ip) throw badRequest(`Specified Fixed IP '${n.fixed_ip}' cannot be used with port '${n.port}': the two cannot be specified together.`);
        ports.add(n.port);
      } else {
        if (!n.uuid) throw badRequest('Bad network format: missing uuid');
        if (!isUuid(n.uuid)) throw badRequest(`Bad networks format: network uuid is not in proper format (${n.uuid})`);
      }
    }
  }
  const asked = [...new Set(((sv.security_groups ?? [{ name: 'default' }]) as Array<{ name?: string }>).map((g) => g.name).filter((n): n is string => !!n))];
  const { names: groupsAsked, ids: groupIds } = await resolveGroups(ctx, cred.projectId ?? '', asked);

  // metadata, tags, user data
  const metadata = (sv.metadata ?? {}) as Record<string, string>;
  const tags = [...new Set((sv.tags ?? []) as string[])];
  const userData: string | null = sv.user_data ?? null;

  // server group from the scheduler hints
  let groupId: string | null = null;
  if (hints.group !== undefined) {
    groupId = Array.isArray(hints.group) ? String(hints.group[0] ?? '') : String(hints.group);
    const g = await ctx.db.selectFrom('compute_server_groups').selectAll().where('id', '=', groupId).executeTakeFirst();
    if (!g || (!admin && g.project_id !== cred.projectId)) throw badRequest(`Instance group ${groupId} could not be found.`);
  }

  const embedded: EmbeddedFlavor = {
    id: flavor.id, name: flavor.name, vcpus: flavor.vcpus, ram: flavor.ram, disk: flavor.disk, ephemeral: flavor.ephemeral, swap: flavor.swap, extra_specs: specs,
  };
  const description = v.ge('2.19') ? (sv.description ?? null) : name;
  const configDrive = sv.config_drive !== undefined && boolFrom(sv.config_drive) ? 'True' : '';
  const resv = reservationId();
  const now = nowIso();
  const projectId = cred.projectId ?? '';

  const created = await claimTransaction(ctx.db, async (tx) => {
    // quotas: instances, cores and ram for as many servers as fit between min and max
    const limits = await projectLimits(tx, projectId, cred.userId);
    if (Object.keys(metadata).length > limits.metadata_items && limits.metadata_items >= 0) {
      throw overQuota(['metadata_items'], [Object.keys(metadata).length], [0], [limits.metadata_items]);
    }
    const used = await serverUsage(tx, projectId);
    let count = max;
    const fits = (n: number) => within(limits.instances, used.instances, n) && within(limits.cores, used.cores, n * flavor.vcpus) && within(limits.ram, used.ram, n * flavor.ram);
    while (count >= min && !fits(count)) count--;
    if (count < min) {
      const over: string[] = [];
      const req: number[] = [];
      const usedL: number[] = [];
      const allowed: number[] = [];
      for (const [r, n, u, l] of [['instances', min, used.instances, limits.instances], ['cores', min * flavor.vcpus, used.cores, limits.cores], ['ram', min * flavor.ram, used.ram, limits.ram]] as const) {
        if (!within(l, u, n)) { over.push(r); req.push(n); usedL.push(u); allowed.push(l); }
      }
      throw overQuota(over, req, usedL, allowed);
    }
    if (groupId) {
      const members = await groupMembers(tx, groupId);
      if (limits.server_group_members >= 0 && members + count > limits.server_group_members) throw forbidden('Quota exceeded, too many servers in group');
    }
    const out: Array<{ id: string; name: string }> = [];
    for (let i = 0; i < count; i++) {
      const id = uuid();
      const displayName = count > 1 ? `${name}-${i + 1}` : name;
      const row = {
        id, name: displayName, project_id: projectId, user_id: cred.userId, image_id: image?.id ?? null, flavor_id: flavor.id, flavor: JSON.stringify(embedded),
        kind: serverKind, key_name: sv.key_name ?? null, key_data: keyData, user_data: userData, availability_zone: az,
        hostname: sv.hostname ?? sanitizeHostname(displayName, `Server-${id}`), description: count > 1 && v.lt('2.19') ? displayName : description,
        host: null, vm_state: VmState.BUILDING, task_state: volumesAsked.length ? TaskState.BLOCK_DEVICE_MAPPING : TaskState.SCHEDULING, power_state: PowerState.NOSTATE, desired_power: 'running',
        reboot_seq: 0, reboot_type: null, rebuild_seq: 0, locked: 0, locked_reason: null, config_drive: configDrive,
        access_ipv4: sv.accessIPv4 ?? '', access_ipv6: sv.accessIPv6 ?? '', fault: null, server_group_id: groupId, reservation_id: resv,
        launch_index: i, schedule_attempts: 0, failed_hosts: '[]', version: 1, launched_at: null, terminated_at: null,
        created_at: now, updated_at: now, deleted_at: null, locked_by: null,
        trusted_certs: sv.trusted_image_certificates ? JSON.stringify(sv.trusted_image_certificates) : null,
        scheduler_hints: JSON.stringify(hints), security_groups: JSON.stringify(groupsAsked),
        requested_networks: networks === null ? null : JSON.stringify(networks), requested_host: forcedHost, requested_az: az, disk_config: sv['OS-DCF:diskConfig'] ?? 'MANUAL',
        vcpus: flavor.vcpus, memory_mb: flavor.ram,
      };
      await tx.insertInto('compute_servers').values(row).execute();
      for (const [key, value] of Object.entries(metadata)) await tx.insertInto('compute_server_metadata').values({ server_id: id, key, value }).execute();
      for (const tag of tags) await tx.insertInto('compute_server_tags').values({ server_id: id, tag }).execute();
      if (groupId) await tx.insertInto('compute_server_group_members').values({ group_id: groupId, server_id: id }).execute();
      await recordAction(tx, row, cred, rc.req.id, { action: 'create', event: 'compute__do_build_and_run_instance' });
      out.push({ id, name: displayName });
    }
    return out;
  });
  if (ctx.network && networks !== null && networks !== 'none') {
    if (created.length > 1 && Array.isArray(networks) && networks.some((n: { port?: string }) => n.port)) {
      await undoCreate(ctx, cred, rc.req.id, created.map((c) => c.id));
      throw badRequest('Unable to launch multiple instances with a single configured port ID. Please launch your instance one by one with different ports.');
    }
    try {
      await allocatePorts(ctx.network, { serverIds: created.map((c) => c.id), projectId, availabilityZone: az ?? ctx.config.defaultAvailabilityZone ?? 'nova', requested: networks as RequestedNetworks, securityGroups: groupIds });
    } catch (err) {
      await undoCreate(ctx, cred, rc.req.id, created.map((c) => c.id));
      throw err;
    }
    // a server the scheduler already placed got its ports bound before they existed; a VM's spec
    // names its ports: a new version sends it the ports its agent may have been handed without
    const placed = await ctx.db.selectFrom('compute_servers').select(['id', 'host', 'kind']).where('id', 'in', created.map((c) => c.id)).where('host', 'is not', null).execute();
    for (const p of placed) {
      // a bare-metal server's driver binds its ports to the node's NICs: woken, it finds them now
      if (!kindOf(p.kind).agent) {
        ctx.engine.notify(p.host);
        continue;
      }
      await ctx.network.bind(p.id, p.host!, kindOf(p.kind).vifType);
      if (kindOf(p.kind).vifType === 'tap') {
        await ctx.db.updateTable('compute_servers').set({ version: sql`version + 1`, updated_at: nowIso() }).where('id', '=', p.id).where('deleted_at', 'is', null).execute();
        ctx.engine.notify(p.host);
      }
    }
  }
  if (volumesAsked.length) {
    try {
      await attachBdmVolumes(ctx, rc, created[0]!.id, volumesAsked);
    } catch (err) {
      await undoCreate(ctx, cred, rc.req.id, created.map((c) => c.id));
      throw err;
    }
  }
  ctx.engine.kick();
  await ctx.serverEvents(created.map((c) => c.id), 'created');

  if (sv.return_reservation_id !== undefined && boolFrom(sv.return_reservation_id)) {
    rc.reply.code(202);
    return { reservation_id: resv };
  }
  const first = created[0]!;
  const self = `${endpoint(rc.req)}/servers/${first.id}`;
  rc.reply.code(202).header('Location', self);
  const server: Record<string, unknown> = {
    id: first.id,
    links: [{ rel: 'self', href: self }, { rel: 'bookmark', href: self.replace('/v2.1/', '/') }],
    'OS-DCF:diskConfig': sv['OS-DCF:diskConfig'] ?? 'MANUAL',
    security_groups: sv.security_groups ?? [{ name: 'default' }],
  };
  if (ctx.config.enableInstancePassword) server.adminPass = sv.adminPass ?? generatePassword();
  return { server };
}

// ---- listing

const IGNORED_SORT_KEYS = ['architecture', 'cell_name', 'cleaned', 'default_ephemeral_device', 'default_swap_device', 'deleted', 'deleted_at',
  'disable_terminate', 'ephemeral_gb', 'ephemeral_key_uuid', 'id', 'key_data', 'launched_on', 'locked', 'memory_mb', 'os_type',
  'reservation_id', 'root_gb', 'shutdown_terminate', 'user_data', 'vcpus', 'vm_mode'];
/** Nova's sort keys and the columns behind them. */
const SORT_COLUMNS: Record<string, keyof ServerRow> = {
  access_ip_v4: 'access_ipv4', access_ip_v6: 'access_ipv6', auto_disk_config: 'created_at', availability_zone: 'availability_zone',
  config_drive: 'config_drive', created_at: 'created_at', display_description: 'description', display_name: 'name', host: 'host',
  hostname: 'hostname', image_ref: 'image_id', instance_type_id: 'flavor_id', kernel_id: 'created_at', key_name: 'key_name',
  launch_index: 'launch_index', launched_at: 'launched_at', locked_by: 'locked_by', node: 'host', power_state: 'power_state',
  progress: 'created_at', project_id: 'project_id', ramdisk_id: 'created_at', root_device_name: 'created_at', task_state: 'task_state',
  terminated_at: 'terminated_at', updated_at: 'updated_at', user_id: 'user_id', uuid: 'id', vm_state: 'vm_state', locked: 'locked',
};

/** Filters a non-admin may use, by microversion (Nova's _get_server_search_options). */
function allowedFilters(rc: RouteContext): Set<string> {
  const v = mv(rc);
  const opts = ['reservation_id', 'name', 'status', 'image', 'flavor', 'ip', 'changes-since', 'all_tenants'];
  if (v.ge('2.5')) opts.push('ip6');
  if (v.ge('2.26')) opts.push('tags', 'tags-any', 'not-tags', 'not-tags-any');
  if (v.ge('2.66')) opts.push('changes-before');
  if (v.ge('2.73')) opts.push('locked');
  if (v.ge('2.83')) opts.push('availability_zone', 'config_drive', 'key_name', 'created_at', 'launched_at', 'terminated_at', 'power_state', 'task_state', 'vm_state', 'progress', 'user_id');
  if (v.ge('2.90')) opts.push('hostname');
  return new Set(opts);
}

const KNOWN_QUERY = new Set(['user_id', 'project_id', 'tenant_id', 'launch_index', 'image_ref', 'image', 'kernel_id', 'ramdisk_id', 'hostname',
  'key_name', 'power_state', 'vm_state', 'task_state', 'host', 'node', 'flavor', 'reservation_id', 'launched_at', 'terminated_at',
  'availability_zone', 'name', 'display_name', 'description', 'display_description', 'locked_by', 'uuid', 'root_device_name', 'config_drive',
  'access_ip_v4', 'access_ip_v6', 'auto_disk_config', 'progress', 'sort_key', 'sort_dir', 'all_tenants', 'soft_deleted', 'deleted', 'status',
  'changes-since', 'ip', 'ip6', 'created_at', 'limit', 'marker', 'tags', 'tags-any', 'not-tags', 'not-tags-any', 'changes-before', 'locked',
  'block_device_mapping', 'services', 'metadata', 'system_metadata', 'info_cache', 'security_groups', 'pci_devices']);
const JOINED = ['block_device_mapping', 'services', 'metadata', 'system_metadata', 'info_cache', 'security_groups', 'pci_devices'];

function regex(field: string, s: string): RegExp {
  try {
    return new RegExp(s);
  } catch {
    throw badRequest(`Invalid input for query parameters ${field}. Value: ${s}. '${s}' is not a 'regex'`);
  }
}

async function listServers(ctx: ComputeContext, rc: RouteContext, detail: boolean) {
  const v = mv(rc);
  const cred = rc.cred!;
  const admin = isComputeAdmin(cred);
  const opts: Record<string, string> = {};
  for (const k of Object.keys(rc.query)) {
    if (v.ge('2.75') && !KNOWN_QUERY.has(k) && !k.startsWith('_')) {
      throw badRequest(`Invalid input for query parameters ${k}. Additional properties are not allowed ('${k}' was unexpected)`);
    }
    opts[k] = q(rc, k)!;
  }
  // what a non-admin may not filter by is dropped, as Nova does
  if (!admin) {
    const allowed = allowedFilters(rc);
    for (const k of Object.keys(opts)) if (!allowed.has(k) && !['limit', 'marker', 'sort_key', 'sort_dir'].includes(k)) delete opts[k];
  }
  for (const k of Object.keys(opts)) {
    if (JOINED.includes(k) || k.startsWith('_')) throw badRequest(`Invalid filter field: ${k}.`);
  }

  let qb = ctx.db.selectFrom('compute_servers').selectAll();
  // status -> vm_state / task_state
  if (has(rc, 'status') && 'status' in opts) {
    const { vmStates, taskStates } = statesOf(qAll(rc, 'status'));
    if (!vmStates.length) {
      if (v.ge('2.38')) throw badRequest('Invalid status value');
      return { rows: [] as ServerRow[], limit: 0 };
    }
    if (vmStates.length === 1 && vmStates[0] === 'deleted' && !admin) throw forbidden('Only administrators may list deleted instances');
    qb = qb.where('vm_state', 'in', vmStates);
    if (!taskStates.includes('default')) qb = qb.where('task_state', 'in', taskStates as string[]);
  }
  let since: string | undefined;
  let before: string | undefined;
  if (opts['changes-since'] !== undefined) since = parseTime('changes-since', opts['changes-since']);
  if (opts['changes-before'] !== undefined) before = parseTime('changes-before', opts['changes-before']);
  if (since && before && before < since) throw badRequest('The value of changes-since must be less than or equal to changes-before.');
  if (since) qb = qb.where('updated_at', '>=', since);
  if (before) qb = qb.where('updated_at', '<=', before);
  // deleted servers only when asked for (admins) or with changes-since/before
  if (opts.deleted !== undefined) {
    qb = boolFrom(opts.deleted) ? qb.where('deleted_at', 'is not', null) : qb.where('deleted_at', 'is', null);
  } else if (since === undefined && before === undefined && !(has(rc, 'status') && qAll(rc, 'status').some((s) => s.toLowerCase() === 'deleted'))) {
    qb = qb.where('deleted_at', 'is', null);
  }
  // tenancy
  let allTenants = false;
  if ('all_tenants' in opts) {
    allTenants = opts.all_tenants === '' ? true : boolFrom(opts.all_tenants, true);
  }
  if (allTenants) {
    if (!admin) throw forbidden(`Policy doesn't allow os_compute_api:servers:${detail ? 'detail' : 'index'}:get_all_tenants to be performed.`);
    const p = opts.project_id ?? opts.tenant_id;
    if (p !== undefined) qb = qb.where('project_id', '=', p);
  } else if (cred.projectId) {
    qb = qb.where('project_id', '=', cred.projectId);
  } else {
    qb = qb.where('user_id', '=', cred.userId);
  }
  // exact filters
  const exact: Array<[string, keyof ServerRow]> = [['user_id', 'user_id'], ['uuid', 'id'], ['vm_state', 'vm_state'], ['task_state', 'task_state'],
    ['host', 'host'], ['image', 'image_id'], ['image_ref', 'image_id'], ['reservation_id', 'reservation_id'], ['launch_index', 'launch_index'],
    ['power_state', 'power_state'], ['node', 'host']];
  for (const [param, col] of exact) {
    const val = opts[param];
    if (val === undefined) continue;
    const value: string | number = col === 'launch_index' || col === 'power_state' ? Number(val) : param === 'image' || param === 'image_ref' ? idFromHref(val) : val;
    qb = qb.where(col as any, '=', value);
  }
  if (opts.flavor !== undefined) qb = qb.where('flavor_id', '=', idFromHref(opts.flavor));
  if (opts.locked !== undefined) {
    let locked: boolean;
    try {
      locked = boolFrom(opts.locked, true);
    } catch {
      throw badRequest(`Unrecognized value '${opts.locked}', acceptable values are: '0', '1', 'f', 'false', 'n', 'no', 'off', 'on', 't', 'true', 'y', 'yes'`);
    }
    qb = qb.where('locked', '=', locked ? 1 : 0);
  }
  if (opts.config_drive !== undefined) qb = qb.where('config_drive', '=', boolFrom(opts.config_drive) ? 'True' : '');
  // sorting
  const keys = qAll(rc, 'sort_key').map((k) => k.trim());
  const dirs = qAll(rc, 'sort_dir').map((d) => d.trim().toLowerCase());
  const ignored = v.ge('2.73') ? IGNORED_SORT_KEYS.filter((k) => k !== 'locked') : IGNORED_SORT_KEYS;
  const sort: Array<[keyof ServerRow, 'asc' | 'desc']> = [];
  const effectiveKeys = keys.length ? keys : ['created_at'];
  effectiveKeys.forEach((k, i) => {
    if (ignored.includes(k)) return;
    const col = SORT_COLUMNS[k];
    if (!col) throw badRequest(`Invalid input for query parameters sort_key. Value: ${k}. '${k}' is not one of the valid sort keys`);
    if ((k === 'host' || k === 'node') && !admin) throw forbidden(`Only administrators can sort servers by ${k}`);
    const d = dirs[i] ?? dirs[0] ?? 'desc';
    if (d !== 'asc' && d !== 'desc') throw badRequest(`Unknown sort direction, must be 'desc' or 'asc'`);
    sort.push([col, d]);
  });
  if (!sort.length) sort.push(['created_at', (dirs[0] as 'asc' | 'desc') ?? 'desc']);
  // Sorted here rather than in SQL, so that both databases order NULLs alike
  // (first when ascending, as Nova on MySQL does) and a marker's place is known.
  sort.push(['id', sort[0]![1]]);
  const order = (a: ServerRow, b: ServerRow): number => {
    for (const [col, d] of sort) {
      const x = a[col] as string | number | null;
      const y = b[col] as string | number | null;
      if (x === y) continue;
      const c = x === null ? -1 : y === null ? 1 : x < y ? -1 : 1;
      return d === 'asc' ? c : -c;
    }
    return 0;
  };
  let rows = (await qb.execute()).sort(order);

  // regex and tag filters
  const regexFilters: Array<[string, (s: ServerRow) => string | null]> = [
    ['name', (s) => s.name], ['display_name', (s) => s.name], ['hostname', (s) => s.hostname], ['key_name', (s) => s.key_name],
    ['availability_zone', (s) => s.availability_zone], ['description', (s) => s.description], ['display_description', (s) => s.description],
    ['locked_by', (s) => s.locked_by], ['access_ip_v4', (s) => s.access_ipv4], ['access_ip_v6', (s) => s.access_ipv6],
    ['launched_at', (s) => s.launched_at], ['terminated_at', (s) => s.terminated_at], ['created_at', (s) => s.created_at],
  ];
  for (const [param, get] of regexFilters) {
    if (opts[param] === undefined) continue;
    const re = regex(param, opts[param]);
    rows = rows.filter((s) => { const x = get(s); return x !== null && re.test(x); });
  }
  if (opts.ip !== undefined || opts.ip6 !== undefined) {
    // Nova's ip/ip6: a regex over the server's fixed IPv4 (IPv6) addresses
    const addrs = ctx.network && rows.length ? await ctx.network.addresses(rows.map((r) => r.id)) : new Map();
    const wanted: Array<[4 | 6, RegExp]> = [];
    if (opts.ip !== undefined) wanted.push([4, regex('ip', opts.ip)]);
    if (opts.ip6 !== undefined) wanted.push([6, regex('ip6', opts.ip6)]);
    rows = rows.filter((s) => {
      const all = Object.values(addrs.get(s.id) ?? {}).flat() as Array<{ version: number; addr: string }>;
      return wanted.every(([version, re]) => all.some((a) => a.version === version && re.test(a.addr)));
    });
  }
  if (opts.progress !== undefined) rows = rows.filter(() => opts.progress === '0');
  if (v.ge('2.26') && (opts.tags ?? opts['tags-any'] ?? opts['not-tags'] ?? opts['not-tags-any']) !== undefined) {
    const { tagsOf } = await import('./servers-store.ts');
    const tags = await tagsOf(ctx.db, rows.map((r) => r.id));
    const split = (s: string | undefined) => (s === undefined ? undefined : s.split(','));
    const all = split(opts.tags);
    const any = split(opts['tags-any']);
    const notAll = split(opts['not-tags']);
    const notAny = split(opts['not-tags-any']);
    rows = rows.filter((s) => {
      const t = new Set(tags.get(s.id) ?? []);
      if (all && !all.every((x) => t.has(x))) return false;
      if (any && !any.some((x) => t.has(x))) return false;
      if (notAll && notAll.every((x) => t.has(x))) return false;
      if (notAny && notAny.some((x) => t.has(x))) return false;
      return true;
    });
  }
  const { limit, marker } = pageParams(rc);
  if (marker !== undefined) {
    // the marker need not match the filters: the page starts after its place in the order
    const m = await ctx.db.selectFrom('compute_servers').selectAll().where('id', '=', marker).executeTakeFirst();
    if (!m || (!admin && m.project_id !== cred.projectId)) throw badRequest(`marker [${marker}] not found`);
    rows = rows.filter((s) => s.id !== m.id && order(s, m) > 0);
  }
  return { rows: rows.slice(0, limit), limit };
}

// ---- update

const UpdateBody = Type.Object({
  server: Type.Object({
    name: Type.Optional(Type.String()),
    'OS-DCF:diskConfig': Type.Optional(Type.Union([Type.Literal('AUTO'), Type.Literal('MANUAL')])),
    accessIPv4: Type.Optional(Type.String()),
    accessIPv6: Type.Optional(Type.String()),
    description: Type.Optional(Type.Union([Type.String({ maxLength: 255 }), Type.Null()])),
    hostname: Type.Optional(Type.String({ minLength: 1, maxLength: 255 })),
  }, { additionalProperties: false }),
}, { additionalProperties: false });

export function serverRoutes(ctx: ComputeContext): Route[] {
  const db = ctx.db;
  const target = (rc: RouteContext) => serverTarget(ctx, rc);
  return [
    route({
      method: 'POST', path: '/v2.1/servers', rule: 'os_compute_api:servers:create',
      target: (rc) => ({ project_id: rc.cred?.projectId, user_id: rc.cred?.userId }),
      handler: (rc) => createServers(ctx, rc),
    }),
    route({
      method: 'GET', path: '/v2.1/servers', rule: 'os_compute_api:servers:index',
      async handler(rc) {
        const { rows, limit } = await listServers(ctx, rc, false);
        const next = nextLinks(rc.req, 'servers', rows, rows.at(-1)?.id, limit);
        return { servers: rows.map((s) => renderBrief(rc.req, s)), ...(next ? { servers_links: next } : {}) };
      },
    }),
    route({
      method: 'GET', path: '/v2.1/servers/detail', rule: 'os_compute_api:servers:detail',
      async handler(rc) {
        const { rows, limit } = await listServers(ctx, rc, true);
        const data = await viewData(ctx, rows);
        const next = nextLinks(rc.req, 'servers/detail', rows, rows.at(-1)?.id, limit);
        return { servers: rows.map((s) => renderServer(ctx, rc.req, rc.cred!, s, data)), ...(next ? { servers_links: next } : {}) };
      },
    }),
    route({
      method: 'GET', path: '/v2.1/servers/:server_id', rule: 'os_compute_api:servers:show', target,
      async handler(rc) {
        const s = await loadServer(ctx, rc);
        const data = await viewData(ctx, [s]);
        return { server: renderServer(ctx, rc.req, rc.cred!, s, data, { showServerGroups: mv(rc).ge('2.71') }) };
      },
    }),
    route({
      method: 'PUT', path: '/v2.1/servers/:server_id', rule: 'os_compute_api:servers:update', target,
      async handler(rc) {
        const v = mv(rc);
        const body = validate(UpdateBody, rc.body).server;
        checkVersionedFields(rc, body, [['description', '2.19', null], ['hostname', '2.90', null]], 'server');
        const s = await loadServer(ctx, rc);
        const set: Record<string, unknown> = {};
        if (body.name !== undefined) set.name = checkName('name', body.name).trim();
        if (body.description !== undefined) {
          if (typeof body.description === 'string' && !isPrintable(body.description)) throw badRequest('Invalid input for field/attribute description.');
          set.description = body.description;
        }
        if (body.hostname !== undefined) set.hostname = checkHostname(rc, body.hostname);
        if (body.accessIPv4 !== undefined) set.access_ipv4 = accessIp('accessIPv4', body.accessIPv4);
        if (body.accessIPv6 !== undefined) set.access_ipv6 = accessIp('accessIPv6', body.accessIPv6);
        if (body['OS-DCF:diskConfig'] !== undefined) set.disk_config = body['OS-DCF:diskConfig'];
        if (Object.keys(set).length) {
          set.updated_at = nowIso();
          if (set.hostname !== undefined) set.version = s.version + 1;
          await db.updateTable('compute_servers').set(set as any).where('id', '=', s.id).execute();
          if (set.hostname !== undefined && s.host) ctx.engine.notify(s.host);
          await ctx.serverEvents([s.id]);
        }
        forgetServer(rc);
        const fresh = await reloadServer(db, s.id);
        const data = await viewData(ctx, [fresh]);
        void v;
        return { server: renderServer(ctx, rc.req, rc.cred!, fresh, data, partialView(rc.req, false)) };
      },
    }),
    route({
      method: 'DELETE', path: '/v2.1/servers/:server_id', rule: 'os_compute_api:servers:delete', target, status: 204,
      async handler(rc) {
        const s = await loadServer(ctx, rc);
        if (s.locked && !isComputeAdmin(rc.cred)) throw conflict(`Instance ${s.id} is locked`);
        await deleteServer(ctx, rc.cred!, rc.req.id, s, 'delete');
      },
    }),
  ];
}

/** A create whose ports could not be made: its servers go again. */
async function undoCreate(ctx: ComputeContext, cred: Credentials, requestId: string, ids: string[]): Promise<void> {
  for (const id of ids) {
    const s = await ctx.db.selectFrom('compute_servers').selectAll().where('id', '=', id).executeTakeFirst();
    if (s && s.deleted_at === null) await deleteServer(ctx, cred, requestId, s as ServerRow, 'delete');
  }
}

/**
 * Records a delete: a server no host holds is gone at once (soft-deleted);
 * otherwise task_state 'deleting' and a version bump tell its agent to clean
 * up, and the engine soft-deletes the row once the host is clean.
 */
export async function deleteServer(ctx: ComputeContext, cred: Credentials, requestId: string, s: ServerRow, action: 'delete' | 'forceDelete'): Promise<void> {
  if (s.task_state === TaskState.DELETING) {
    if (s.host) ctx.engine.notify(s.host);
    return;
  }
  const now = nowIso();
  const placedOn = await ctx.db.transaction().execute(async (tx) => {
    const local = await tx.updateTable('compute_servers')
      .set({ vm_state: VmState.DELETED, task_state: null, power_state: PowerState.NOSTATE, deleted_at: now, terminated_at: now, updated_at: now, version: s.version + 1 })
      .where('id', '=', s.id).where('host', 'is', null).where('deleted_at', 'is', null).executeTakeFirst();
    if (Number(local.numUpdatedRows) > 0) {
      await releaseConsumer(tx, s.id);
      await tx.deleteFrom('compute_server_group_members').where('server_id', '=', s.id).execute();
      await recordAction(tx, s, cred, requestId, { action: action === 'forceDelete' ? 'forceDelete' : 'delete' });
      return null;
    }
    const fresh = await tx.selectFrom('compute_servers').select(['host', 'version']).where('id', '=', s.id).executeTakeFirstOrThrow();
    await tx.updateTable('compute_servers')
      .set({ task_state: TaskState.DELETING, updated_at: now, version: fresh.version + 1 })
      .where('id', '=', s.id).execute();
    await recordAction(tx, s, cred, requestId, { action: action === 'forceDelete' ? 'forceDelete' : 'delete', event: 'compute_terminate_instance' }, fresh.host);
    return fresh.host;
  });
  if (placedOn) ctx.engine.notify(placedOn);
  else {
    // gone at once (no host): so are its ports and volume attachments; a placed server's go when its host reports it deleted (service.ts)
    if (ctx.network) await ctx.network.release(s.id, givenPorts(s.requested_networks));
    if (ctx.volumes) await releaseServerVolumes(ctx.db, ctx.volumes, ctx.log, s.id);
  }
  // a shelved offloaded server's snapshot goes with it, as Nova's
  if (!placedOn && s.shelved_image_id) await ctx.images.deleteById(s.shelved_image_id).catch(() => undefined);
  ctx.engine.kick();
  await ctx.serverEvents([s.id]);
}

