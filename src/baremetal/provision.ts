// What a provision verb does to a node (PUT /v1/nodes/{id}/states/provision),
// as Ironic's API and conductor together: checks (state machine, lock,
// maintenance, protection, parameters), the new provision_state and target,
// and the operation the conductor must carry out, recorded with a new id and
// a bumped version. The API never calls a BMC; the conductor's reports move
// the node on (kinds.ts).
import { execFileSync } from 'node:child_process';
import { hostname } from 'node:os';
import { ApiError } from '../common/errors.ts';
import { nowIso, uuid as newUuid } from '../common/ids.ts';
import { parseJsonObject } from '../common/json.ts';
import type { Microversion } from '../http/microversion.ts';
import type { BmContext, NodeRow } from './context.ts';
import { isHardwareType, missingDriverInfo } from './drivers.ts';
import { E } from './errors.ts';
import type { BootInterface, CleanStep, ConfigDrive, DeployImage, NodeOperation } from './protocol.ts';
import { BUSY, next, S, targetOf, VERB_SINCE, VERBS } from './states.ts';
import { afterChange, recordHistory } from './util.ts';
import { chooseConductor } from './conductors.ts';
import { closeProvisioning, needsProvisioning, openProvisioning } from './provisioning.ts';

export interface ProvisionBody {
  target: string;
  configdrive?: unknown;
  clean_steps?: unknown;
  deploy_steps?: unknown;
  rescue_password?: unknown;
  disable_ramdisk?: unknown;
}

const ERASE: CleanStep = { interface: 'deploy', step: 'erase_devices_metadata' };

function bootInterfaceOf(n: NodeRow): BootInterface {
  return parseJsonObject(n.interfaces).boot_interface === 'redfish-virtual-media' ? 'redfish-virtual-media' : 'ipxe';
}

function checkCleanSteps(steps: unknown): CleanStep[] {
  if (!Array.isArray(steps)) throw E.invalid('Invalid clean_steps: must be a list.');
  const valid = ['deploy', 'management', 'power', 'bios', 'raid'];
  return steps.map((s) => {
    const o = s as Record<string, unknown>;
    if (!o || typeof o !== 'object' || typeof o.interface !== 'string' || typeof o.step !== 'string') {
      throw E.invalid(`Invalid clean_steps: ${JSON.stringify(s)} must have "interface" and "step".`);
    }
    if (!valid.includes(o.interface)) throw E.invalid(`Invalid clean_steps: "interface" must be one of ${valid.join(', ')}.`);
    const extra = Object.keys(o).filter((k) => !['interface', 'step', 'args', 'priority'].includes(k));
    if (extra.length) throw E.invalid(`Invalid clean_steps: Additional properties are not allowed (${extra.map((x) => `'${x}'`).join(', ')} were unexpected)`);
    return { interface: o.interface as CleanStep['interface'], step: o.step, ...(o.args ? { args: o.args as Record<string, unknown> } : {}) };
  });
}

/** Ironic's configdrive: a string (a gzipped, base64 ISO or a URL), or (1.56) a dict of meta_data, user_data, network_data and (1.59) vendor_data. */
function checkConfigDrive(v: Microversion, cd: unknown): ConfigDrive | null {
  if (cd === undefined || cd === null) return null;
  if (typeof cd === 'string') return { meta_data: {}, image: cd };
  if (typeof cd !== 'object' || Array.isArray(cd)) throw E.invalid('Invalid configdrive: must be a string or a JSON object.');
  if (v.lt('1.56')) throw E.notAcceptable();
  const o = cd as Record<string, unknown>;
  const allowed = v.ge('1.59') ? ['meta_data', 'user_data', 'network_data', 'vendor_data'] : ['meta_data', 'user_data', 'network_data'];
  const extra = Object.keys(o).filter((k) => !allowed.includes(k));
  if (extra.length) throw E.invalid(`Invalid configdrive format: Additional properties are not allowed (${extra.map((x) => `'${x}'`).join(', ')} were unexpected)`);
  for (const k of ['meta_data', 'network_data', 'vendor_data']) {
    if (o[k] !== undefined && (typeof o[k] !== 'object' || o[k] === null || Array.isArray(o[k]))) throw E.invalid(`Invalid configdrive format: ${k} must be an object`);
  }
  const ud = o.user_data;
  const user = ud === undefined || ud === null ? undefined : typeof ud === 'string' ? ud : JSON.stringify(ud);
  return {
    meta_data: (o.meta_data as Record<string, unknown>) ?? {},
    ...(user !== undefined ? { user_data: user } : {}),
    ...(o.network_data ? { network_data: o.network_data as Record<string, unknown> } : {}),
    ...(o.vendor_data ? { vendor_data: o.vendor_data as Record<string, unknown> } : {}),
  };
}

async function deployImage(ctx: BmContext, n: NodeRow, ii: Record<string, unknown>): Promise<DeployImage> {
  const src = ii.image_source;
  const fail = (m: string) => E.invalid(`Failed to validate deploy or power info for node ${n.uuid}. Error: ${m}`);
  if (typeof src !== 'string' || !src) throw fail("Some parameters were missing in node's instance_info. Missing are: ['image_source']");
  if (!ctx.images) throw fail('No image service to deploy from.');
  const img = await ctx.images.getImage(src);
  if (!img) throw fail(`Image ${src} could not be found.`);
  if (img.status !== 'active') throw fail(`Image ${src} is not active (${img.status}).`);
  const fmt = img.disk_format;
  if (fmt !== 'raw' && fmt !== 'qcow2') throw fail(`Image ${src} has disk_format ${fmt}: Stratus deploys raw or qcow2 images.`);
  const algo = img.os_hash_algo && img.os_hash_value ? img.os_hash_algo : 'md5';
  const value = img.os_hash_algo && img.os_hash_value ? img.os_hash_value : img.checksum;
  if (!value) throw fail(`Image ${src} has no checksum.`);
  const root = Number(ii.root_gb ?? 0);
  return { image_id: src, disk_format: fmt, hash_algo: algo, hash_value: value, root_gb: Number.isFinite(root) && root > 0 ? Math.floor(root) : 0 };
}

/** A crypt(3) SHA-512 hash of the rescue password (what the ramdisk puts in /etc/shadow). */
function hashPassword(pw: string): string {
  return execFileSync('openssl', ['passwd', '-6', '-stdin'], { input: pw, encoding: 'utf8' }).trim();
}

/** How long a request's hold on a node (a reservation outside an operation's states) counts, should its replica have died holding it. */
const HOLD_MS = 60_000;
/** Who holds a node while a request applies a verb to it (Ironic's reservation: the host holding the lock). */
const HOLDER = hostname();

/**
 * Checks and applies a provision verb; throws Ironic's errors. `user` is who
 * asked (node history); `o.instanceInfo` is merged into the node's
 * instance_info by the update that accepts the verb (a refused verb writes
 * none of it).
 *
 * An operation that boots the ramdisk gets its provisioning ports once the
 * request holds the node: a version-checked write of the reservation first
 * (a request racing it is refused with Ironic's 409 NodeLocked before it
 * touches a port), then the ports, then the operation, checked against the
 * held version; ports that cannot be opened give the node back as it was.
 */
export async function applyVerb(ctx: BmContext, node: NodeRow, body: ProvisionBody, v: Microversion, user: string | null, o: { instanceInfo?: Record<string, unknown> } = {}): Promise<void> {
  const target = body.target;
  if (typeof target !== 'string') throw E.invalid('Invalid input for field/attribute target. Value: None. Mandatory field missing.');
  const event = VERBS[target];
  if (!event) throw E.notUnderstood(target);
  if (VERB_SINCE[target] && v.lt(VERB_SINCE[target]!)) throw E.notAcceptable();
  if (target === 'rebuild' && body.configdrive !== undefined && v.lt('1.35')) throw E.notAcceptable();
  if (body.clean_steps !== undefined && target !== 'clean') throw E.invalid('"clean_steps" is only valid when setting target provision state to clean');
  if (body.rescue_password !== undefined && target !== 'rescue') throw E.invalid('"rescue_password" is only valid when setting target provision state to rescue');
  if (body.configdrive !== undefined && body.configdrive !== null && !['active', 'deploy', 'rebuild'].includes(target)) {
    throw E.invalid('Adding a config drive is only supported when setting provision state to active or rebuild');
  }
  if (['active', 'deploy', 'rebuild'].includes(target) && node.maintenance) throw E.inMaintenance('provisioning', node.uuid);
  const to = next(node.provision_state, event);
  if (!to) {
    if (node.reservation && BUSY.has(node.provision_state)) throw E.nodeLocked(node.uuid, node.reservation);
    throw E.invalidState(target, node.uuid, node.provision_state);
  }
  // another request holds the node (its ports being opened): Ironic's NodeLocked
  if (node.reservation && !BUSY.has(node.provision_state) && Date.now() - Date.parse(node.updated_at ?? '') < HOLD_MS) throw E.nodeLocked(node.uuid, node.reservation);
  if (node.protected && ['rebuild', 'delete'].includes(event)) throw E.protectedNode(node.uuid);
  if (event === 'rescue') {
    if (typeof body.rescue_password !== 'string' || !body.rescue_password.trim()) {
      throw E.invalid('A non-empty "rescue_password" is required when setting target provision state to rescue');
    }
  }
  const ifaces = parseJsonObject(node.interfaces);
  if ((event === 'rescue' || event === 'unrescue') && ifaces.rescue_interface === 'no-rescue') {
    throw E.invalid(`Driver ${node.driver} does not support rescue (disabled or not implemented).`);
  }
  if (event === 'inspect' && ifaces.inspect_interface === 'no-inspect') {
    throw E.invalid(`Driver ${node.driver} does not support inspect (disabled or not implemented).`);
  }
  let steps: CleanStep[] | null = null;
  if (target === 'clean') {
    if (body.clean_steps === undefined) throw E.invalid('"clean_steps" is required when setting target provision state to clean');
    steps = checkCleanSteps(body.clean_steps);
  }
  const configDrive = checkConfigDrive(v, body.configdrive);

  let state: string = to;
  let targetState: string | null = targetOf(to);
  let operation: NodeOperation | null = null;
  let lastError: string | null = node.last_error;
  const bi = bootInterfaceOf(node);
  const id = newUuid();
  const history: string[] = [];
  const ii = { ...parseJsonObject(node.instance_info), ...(o.instanceInfo ?? {}) };

  switch (to) {
    case S.verifying: {
      const missing = isHardwareType(node.driver) ? missingDriverInfo(node.driver, parseJsonObject(node.driver_info)) : missingDriverInfo(node.driver, {});
      if (missing) {
        // Ironic's verify fails at once on driver_info it cannot use: back to enroll with last_error
        state = S.enroll;
        targetState = null;
        lastError = `Failed to get power state for node ${node.uuid}. Error: ${missing}`;
      } else operation = { id, type: 'verify' };
      break;
    }
    // Ironic's redfish inspect interface reads the BMC; the agent's boots the ramdisk
    case S.inspecting: operation = ifaces.inspect_interface === 'redfish' ? { id, type: 'inspect', inspect_interface: 'redfish' } : { id, type: 'inspect', boot_interface: bi }; break;
    case S.cleaning:
      if (target === 'clean') {
        targetState = S.manageable;
        operation = { id, type: 'clean', boot_interface: bi, steps: steps! };
      } else if (node.automated_clean === 0) {
        state = S.available;
        targetState = null;
      } else operation = { id, type: 'clean', boot_interface: bi, steps: [ERASE] };
      break;
    case S.deploying: {
      const image = await deployImage(ctx, node, ii);
      operation = { id, type: 'deploy', boot_interface: bi, image, config_drive: configDrive };
      if (configDrive) ii.configdrive = '******';
      break;
    }
    case S.deleting: operation = { id, type: 'tear_down' }; break;
    case S.rescuing: operation = { id, type: 'rescue', boot_interface: bi, rescue_password_hash: hashPassword(String(body.rescue_password)) }; break;
    case S.unrescuing: operation = { id, type: 'unrescue' }; break;
    case S.adopting: {
      const missing = missingDriverInfo(node.driver, parseJsonObject(node.driver_info));
      const img = typeof ii.image_source === 'string' ? null : "Some parameters were missing in node's instance_info. Missing are: ['image_source']";
      if (missing || img) {
        state = S.adoptFail;
        targetState = S.active;
        lastError = `Error while attempting to adopt node ${node.uuid}: ${missing ?? img}.`;
      } else {
        state = S.active;
        targetState = null;
      }
      break;
    }
    case S.manageable: case S.available: case S.active:
      targetState = null;
      break;
    default:
      break;
  }
  // abort: the running operation is dropped (the conductor sees none and stops) and the node fails
  if (event === 'abort') {
    operation = null;
    targetState = null;
    const what = node.provision_state === S.cleanWait ? 'clean' : node.provision_state === S.inspectWait ? 'inspection' : node.provision_state === S.rescueWait ? 'rescue' : 'deploy';
    lastError = `By request, the ${what} operation was aborted`;
  }
  if (operation || state === S.verifying) lastError = null;
  const now = nowIso();
  // an operation on a node no conductor holds yet: the one it goes to, written with it
  const conductor = operation && !node.conductor ? await chooseConductor(ctx, node) : node.conductor;
  let version = node.version;
  let provisioning: string | null = null;
  let held = false;
  // the hold given back however the node's version moved meanwhile (a PATCH, a conductor's report): never left locked
  const releaseHold = () => ctx.db.updateTable('baremetal_nodes').set((eb) => ({ reservation: node.reservation, updated_at: nowIso(), version: eb('version', '+', 1) }))
    .where('uuid', '=', node.uuid).where('reservation', '=', HOLDER).execute();
  if (needsProvisioning(ctx, node, operation)) {
    const hold = await ctx.db.updateTable('baremetal_nodes').set((eb) => ({ reservation: HOLDER, updated_at: now, version: eb('version', '+', 1) }))
      .where('uuid', '=', node.uuid).where('version', '=', node.version).executeTakeFirst();
    if (Number(hold.numUpdatedRows) === 0) throw await lockedBy(ctx, node);
    held = true;
    version = node.version + 1;
    try {
      const p = await openProvisioning(ctx, node, conductor, operation);
      provisioning = p ? JSON.stringify(p) : null;
    } catch (err) {
      await releaseHold();
      // the network's refusals (no such network, a MAC in use, no address left) are the request's; anything else is ours
      if (!(err instanceof ApiError) || err.status >= 500) throw err;
      throw E.invalid(`Unable to set up the provisioning network ${ctx.config.provisioningNetwork} for node ${node.uuid}: ${err.message}`);
    }
  }
  const r = await ctx.db.updateTable('baremetal_nodes').set((eb) => ({
    provision_state: state, target_provision_state: targetState, provision_updated_at: now, updated_at: now, last_error: lastError,
    operation: operation ? JSON.stringify(operation) : null, reservation: operation ? conductor : null, provisioning, conductor,
    instance_info: JSON.stringify(ii),
    ...(to === S.inspecting ? { inspection_started_at: now, inspection_finished_at: null } : {}),
    ...(to === S.cleaning ? { clean_step: JSON.stringify(operation && operation.type === 'clean' ? operation.steps[0] ?? {} : {}) } : {}),
    version: eb('version', '+', 1),
  })).where('uuid', '=', node.uuid).where('version', '=', version).executeTakeFirst();
  if (Number(r.numUpdatedRows) === 0) {
    await closeProvisioning(ctx, provisioning, operation);
    if (held) await releaseHold();
    throw await lockedBy(ctx, node);
  }
  // the previous operation's ports (an abort, a rebuild over a failed deploy) go
  await closeProvisioning(ctx, node.provisioning, node.operation);
  history.push(`${node.provision_state} -> ${state} (${target})`);
  await recordHistory(ctx, node.uuid, { event: `Provision state changed from "${node.provision_state}" to "${state}" by "${target}".`, eventType: 'provisioning', user, conductor });
  if (lastError && lastError !== node.last_error) await recordHistory(ctx, node.uuid, { event: lastError, eventType: 'provisioning', severity: 'ERROR', user, conductor });
  await afterChange(ctx, node.uuid);
}

/** Ironic's NodeLocked for a request that lost the node to another: the holder as the node shows it now. */
async function lockedBy(ctx: BmContext, node: NodeRow): Promise<ApiError> {
  const now = await ctx.db.selectFrom('baremetal_nodes').select(['reservation', 'conductor']).where('uuid', '=', node.uuid).executeTakeFirst();
  return E.nodeLocked(node.uuid, now?.reservation ?? now?.conductor ?? node.conductor ?? 'unknown');
}
