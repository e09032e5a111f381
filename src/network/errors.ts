// Neutron's errors: an ApiError that also carries Neutron's exception name
// (NetworkNotFound, IpAddressGenerationFailure...), rendered as
// {"NeutronError": {"type", "message", "detail"}}. Names, statuses and
// messages are Neutron's (neutron_lib/exceptions), so clients that match on
// them keep working.
import { ApiError, type ErrorCodeName } from '../common/errors.ts';

export class NeutronError extends ApiError {
  readonly type: string;
  constructor(code: ErrorCodeName, type: string, message: string) {
    super(code, message);
    this.type = type;
  }
}

/** The type a plain ApiError (routing, schema validation, authentication) shows, as webob names it in Neutron. */
const HTTP_TYPES: Partial<Record<ErrorCodeName, string>> = {
  BadRequest: 'HTTPBadRequest', Unauthorized: 'HTTPUnauthorized', Forbidden: 'HTTPForbidden', NotFound: 'HTTPNotFound',
  MethodNotAllowed: 'HTTPMethodNotAllowed', Conflict: 'HTTPConflict', PayloadTooLarge: 'HTTPRequestEntityTooLarge',
  UnsupportedMediaType: 'HTTPUnsupportedMediaType', NotAcceptable: 'HTTPNotAcceptable', Internal: 'HTTPInternalServerError',
};

export function renderNeutronError(err: ApiError): unknown {
  const type = err instanceof NeutronError ? err.type : HTTP_TYPES[err.code] ?? 'HTTPInternalServerError';
  return { NeutronError: { type, message: err.message, detail: '' } };
}

const make = (code: ErrorCodeName, type: string) => (message: string) => new NeutronError(code, type, message);

export const badRequest = make('BadRequest', 'HTTPBadRequest');
export const invalidInput = (reason: string) => new NeutronError('BadRequest', 'InvalidInput', `Invalid input for operation: ${reason}.`);
/** An attribute's value failed its validator (Neutron's "Invalid input for X. Reason: ..."). */
export const invalidAttr = (attr: string, reason: string) => badRequest(`Invalid input for ${attr}. Reason: ${reason}.`);
export const policyDenied = (action: string) => new NeutronError('Forbidden', 'PolicyNotAuthorized', `(rule:${action}) is disallowed by policy`);

/** Each resource's NotFound, named and worded as Neutron's. */
export const notFound = {
  network: (id: string) => new NeutronError('NotFound', 'NetworkNotFound', `Network ${id} could not be found.`),
  subnet: (id: string) => new NeutronError('NotFound', 'SubnetNotFound', `Subnet ${id} could not be found.`),
  port: (id: string) => new NeutronError('NotFound', 'PortNotFound', `Port ${id} could not be found.`),
  security_group: (id: string) => new NeutronError('NotFound', 'SecurityGroupNotFound', `Security group ${id} does not exist`),
  security_group_rule: (id: string) => new NeutronError('NotFound', 'SecurityGroupRuleNotFound', `Security group rule ${id} does not exist`),
  address_group: (id: string) => new NeutronError('NotFound', 'AddressGroupNotFound', `Address group ${id} could not be found.`),
  subnetpool: (id: string) => new NeutronError('NotFound', 'SubnetPoolNotFound', `Subnet pool ${id} could not be found.`),
  router: (id: string) => new NeutronError('NotFound', 'RouterNotFound', `Router ${id} could not be found`),
  floatingip: (id: string) => new NeutronError('NotFound', 'FloatingIPNotFound', `Floating IP ${id} could not be found`),
  rbac_policy: (id: string) => new NeutronError('NotFound', 'RbacPolicyNotFound', `RBAC policy of type network with ID ${id} not found`),
} as const;
export type ResourceKind = keyof typeof notFound;

export const conflict = (type: string, message: string) => new NeutronError('Conflict', type, message);
export const networkInUse = (id: string) =>
  conflict('NetworkInUse', `Unable to complete operation on network ${id}. There are one or more ports still in use on the network.`);
export const subnetInUse = (id: string) =>
  conflict('SubnetInUse', `Unable to complete operation on subnet ${id}: One or more ports have an IP allocation from this subnet.`);
export const ipExhausted = (networkId: string) =>
  conflict('IpAddressGenerationFailure', `No more IP addresses available on network ${networkId}.`);
export const ipTaken = (ip: string, subnetId: string) =>
  conflict('IpAddressAlreadyAllocated', `IP address ${ip} already allocated in subnet ${subnetId}`);
export const macInUse = (mac: string, networkId: string) =>
  conflict('MacAddressInUse', `Unable to complete operation for network ${networkId}. The mac address ${mac} is in use.`);
export const overQuota = (resources: string[]) =>
  conflict('OverQuota', `Quota exceeded for resources: [${resources.map((r) => `'${r}'`).join(', ')}].`);
export const revisionMismatch = (wanted: number, current: number) =>
  new NeutronError('PreconditionFailed', 'RevisionNumberConstraintFailed', `Constrained to ${wanted}, but current revision is ${current}`);
/** Neutron's BadRequest(resource, msg): "Bad router request: ...". */
export const badResource = (resource: string, msg: string) => new NeutronError('BadRequest', 'BadRequest', `Bad ${resource} request: ${msg}.`);
