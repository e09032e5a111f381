// Ironic's errors: the body `{"error_message": "<JSON text>"}` whose text is
// `{"faultstring": ..., "faultcode": "Client"|"Server", "debuginfo": null}`
// (ironic/api/method.py format_exception, wrapped by the parsable-error
// middleware), with Ironic's exception messages and statuses
// (ironic/common/exception.py). A 406 carries the version range headers
// (added by http.ts on every answer).
import { ApiError } from '../common/errors.ts';

export function renderIronicError(err: ApiError): unknown {
  const faultcode = err.status >= 500 ? 'Server' : 'Client';
  return { error_message: JSON.stringify({ faultstring: err.message, faultcode, debuginfo: null }) };
}

const bad = (m: string) => new ApiError('BadRequest', m);
const conflict = (m: string) => new ApiError('Conflict', m);
const notFound = (m: string) => new ApiError('NotFound', m);

export const E = {
  invalid: bad,
  conflict,
  notFound,
  notAcceptable: () => new ApiError('NotAcceptable', 'Request not acceptable.'),
  forbidden: (rule: string) => new ApiError('Forbidden', `Access was denied to the following resource: ${rule}`),
  nodeNotFound: (node: string) => notFound(`Node ${node} could not be found.`),
  portNotFound: (port: string) => notFound(`Port ${port} could not be found.`),
  portgroupNotFound: (pg: string) => notFound(`Portgroup ${pg} could not be found.`),
  allocationNotFound: (a: string) => notFound(`Allocation ${a} could not be found.`),
  chassisNotFound: (c: string) => notFound(`Chassis ${c} could not be found.`),
  conductorNotFound: (c: string) => notFound(`Conductor ${c} could not be found.`),
  historyNotFound: (h: string) => notFound(`Node history record ${h} could not be found.`),
  driverNotFound: (d: string) => notFound(`Could not find the following driver(s) or hardware type(s): ${d}.`),
  traitNotFound: (node: string, trait: string) => notFound(`Node ${node} doesn't have a trait '${trait}'`),
  noValidHost: (driver: string, group: string) =>
    bad(`No valid host was found. Reason: No conductor service registered which supports driver ${driver} for conductor group "${group}". Ensure the driver is valid and enabled.`),
  invalidState: (action: string, node: string, state: string | null) =>
    bad(`The requested action "${action}" can not be performed on node "${node}" while it is in state "${state}".`),
  notUnderstood: (action: string) => bad(`The requested action "${action}" could not be understood.`),
  nodeLocked: (node: string, host: string) => conflict(`Node ${node} is locked by host ${host}, please retry after the current operation is completed.`),
  inMaintenance: (op: string, node: string) => bad(`The ${op} operation can't be performed on node ${node} because it's in maintenance mode.`),
  macExists: (mac: string) => conflict(`A port with MAC address ${mac} already exists.`),
  portgroupMacExists: (mac: string) => conflict(`A portgroup with MAC address ${mac} already exists.`),
  duplicateName: (name: string) => conflict(`A node with name ${name} already exists.`),
  nodeExists: (uuid: string) => conflict(`A node with UUID ${uuid} already exists.`),
  portExists: (uuid: string) => conflict(`A port with UUID ${uuid} already exists.`),
  portgroupDuplicateName: (name: string) => conflict(`A portgroup with name ${name} already exists.`),
  allocationDuplicateName: (name: string) => conflict(`An allocation with name ${name} already exists.`),
  instanceAssociated: (instance: string, node: string) =>
    conflict(`Instance ${instance} is already associated with a node, it cannot be associated with this other node ${node}`),
  nodeAssociated: (node: string, instance: string) => conflict(`Node ${node} is associated with instance ${instance}.`),
  invalidUuidOrName: (name: string) => bad(`Expected a logical name or UUID but received ${name}.`),
  updateInTransition: (node: string) => conflict(`Node ${node} can not be updated while a state transition is in progress.`),
  protectedNode: (node: string) => new ApiError('Forbidden', `Node ${node} is protected and cannot be undeployed, rebuilt or deleted`),
  vifAttached: (vif: string, kind: string, uuid: string) => conflict(`Unable to attach VIF because VIF ${vif} is already attached to Ironic ${kind} ${uuid}`),
  vifNotAttached: (vif: string, node: string) => bad(`Unable to detach VIF ${vif} from node ${node} because it is not attached to it.`),
  noFreePorts: (vif: string) => bad(`Unable to attach VIF ${vif}, not enough free physical ports.`),
} as const;
