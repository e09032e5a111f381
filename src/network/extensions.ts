// The version document, the v2.0 resource list and /v2.0/extensions: exactly
// the extensions this service implements, so clients that check an alias
// before using a feature find what works and only that.
import { PUBLIC } from '../http/policy.ts';
import { route, type Route, type RouteContext } from '../http/service.ts';
import { NeutronError } from './errors.ts';

interface Extension { alias: string; name: string; description: string }

/** Each alias names what it adds; aliases and names are Neutron's (neutron_lib/api/definitions). */
export const EXTENSIONS: readonly Extension[] = [
  { alias: 'project-id', name: 'project_id field enabled', description: 'Extension that indicates that project_id field is enabled.' },
  { alias: 'standard-attr-description', name: 'standard-attr-description', description: 'Extension to add descriptions to standard attributes' },
  { alias: 'standard-attr-revisions', name: 'Resource revision numbers', description: 'This extension will display the revision number of neutron resources.' },
  { alias: 'revision-if-match', name: 'If-Match constraints based on revision_number', description: "Extension indicating that If-Match based on revision_number is supported." },
  { alias: 'standard-attr-timestamp', name: 'Resource timestamps', description: 'Adds created_at and updated_at fields to all Neutron resources that have Neutron standard attributes.' },
  { alias: 'standard-attr-tag', name: 'Tag support for resources with standard attribute: network, subnet, port, subnetpool, security_group, address_group, router, floatingip', description: 'Enables to set tag on resources with standard attribute.' },
  { alias: 'tag', name: 'Tag support', description: 'Enables to set tag on resources.' },
  { alias: 'filter-validation', name: 'Filter parameters validation', description: 'Provides validation on filtering parameters.' },
  { alias: 'sorting', name: 'Sorting support', description: 'Enables sorting of resources.' },
  { alias: 'pagination', name: 'Pagination support', description: 'Enables pagination of resources.' },
  { alias: 'provider', name: 'Provider Network', description: 'Expose mapping of virtual networks to physical networks' },
  { alias: 'external-net', name: 'Neutron external network', description: 'Adds external network attribute to network resource.' },
  { alias: 'net-mtu', name: 'Network MTU', description: 'Provides MTU attribute for a network resource.' },
  { alias: 'net-mtu-writable', name: 'Network MTU (writable)', description: 'Provides a writable MTU attribute for a network resource.' },
  { alias: 'network_availability_zone', name: 'Network Availability Zone', description: 'Availability zone support for network.' },
  { alias: 'port-security', name: 'Port Security', description: 'Provides port security' },
  { alias: 'binding', name: 'Port Binding', description: 'Expose port bindings of a virtual port to external application' },
  { alias: 'extra_dhcp_opt', name: 'Neutron Extra DHCP options', description: 'Extra options configuration for DHCP. For example PXE boot options to DHCP clients can be specified (e.g. tftp-server, server-ip-address, bootfile-name)' },
  { alias: 'allowed-address-pairs', name: 'Allowed Address Pairs', description: 'Provides allowed address pairs' },
  { alias: 'security-group', name: 'security-group', description: 'The security groups extension.' },
  { alias: 'stateful-security-group', name: 'Stateful security group', description: 'Indicates if the security group is stateful or not' },
  { alias: 'address-group', name: 'Address group', description: 'Support address group' },
  { alias: 'security-groups-remote-address-group', name: 'Remote address group id field for security group rules', description: 'Add new field of remote address group id in security group rules' },
  { alias: 'dns-integration', name: 'DNS Integration', description: 'Provides integration with DNS.' },
  { alias: 'subnet_allocation', name: 'Subnet Allocation', description: 'Enables allocation of subnets from a subnet pool' },
  { alias: 'default-subnetpools', name: 'Default Subnetpools', description: 'Provides ability to mark and use a subnetpool as the default.' },
  { alias: 'rbac-policies', name: 'RBAC Policies', description: 'Allows creation and modification of policies that control tenant access to resources.' },
  { alias: 'network-ip-availability', name: 'Network IP Availability', description: 'Provides IP availability data for each network and subnet.' },
  { alias: 'router', name: 'Neutron L3 Router', description: 'Router abstraction for basic L3 forwarding between L2 Neutron networks and access to external networks via a NAT gateway.' },
  { alias: 'ext-gw-mode', name: 'Neutron L3 Configurable external gateway mode', description: 'Extension of the router abstraction for specifying whether SNAT should occur on the external gateway' },
  { alias: 'extraroute', name: 'Neutron Extra Route', description: 'Extra routes configuration for L3 router' },
  { alias: 'extraroute-atomic', name: 'Atomically add/remove extra routes', description: 'Edit extra routes of a router on server side by atomically adding/removing extra routes' },
  { alias: 'fip-port-details', name: 'Floating IP Port Details Extension', description: 'Add port_details attribute to Floating IP resource' },
  { alias: 'floating-ip-port-forwarding', name: 'Floating IP Port Forwarding', description: 'Provides port forwarding to floating IP' },
  { alias: 'auto-allocated-topology', name: 'Auto Allocated Topology Services', description: 'Auto Allocated Topology Services.' },
  { alias: 'quotas', name: 'Quota management support', description: 'Expose functions for quotas management per project' },
  { alias: 'quota_details', name: 'Quota details management support', description: 'Expose functions for quotas usage statistics per project' },
];

/** Resources v2.0 serves, for the document at /v2.0. */
const RESOURCES: Array<[string, string]> = [['network', 'networks'], ['subnet', 'subnets'], ['port', 'ports'], ['security_group', 'security-groups'],
  ['security_group_rule', 'security-group-rules'], ['address_group', 'address-groups'], ['quota', 'quotas'],
  ['rbac_policy', 'rbac-policies'], ['subnetpool', 'subnetpools'], ['network_ip_availability', 'network-ip-availabilities'],
  ['router', 'routers'], ['floatingip', 'floatingips']];

const UPDATED = '2026-12-06T00:00:00-00:00';
const render = (e: Extension) => ({ name: e.name, alias: e.alias, description: e.description, updated: UPDATED, links: [] });

/** Where this request reached the service, for absolute links. */
export function serviceUrl(rc: RouteContext): string {
  return `${rc.req.protocol}://${rc.req.headers.host ?? 'localhost'}/network`;
}

export function discoveryRoutes(extensions: readonly Extension[]): Route[] {
  const resources = (rc: RouteContext) => ({
    resources: RESOURCES.map(([name, collection]) => ({ name, collection, links: [{ href: `${serviceUrl(rc)}/v2.0/${collection}`, rel: 'self' }] })),
  });
  const versions = (rc: RouteContext) => ({ versions: [{ id: 'v2.0', status: 'CURRENT', links: [{ href: `${serviceUrl(rc)}/v2.0/`, rel: 'self' }] }] });
  return [
    route({ method: 'GET', path: '/', rule: PUBLIC, handler: versions }),
    route({ method: 'GET', path: '/v2.0', rule: PUBLIC, handler: resources }),
    route({ method: 'GET', path: '/v2.0/extensions', rule: 'get_extension', handler: () => ({ extensions: extensions.map(render) }) }),
    route({
      method: 'GET', path: '/v2.0/extensions/:alias', rule: 'get_extension',
      handler(rc) {
        const e = extensions.find((x) => x.alias === rc.params.alias);
        if (!e) throw new NeutronError('NotFound', 'HTTPNotFound', `Extension with alias ${rc.params.alias} does not exist`);
        return { extension: render(e) };
      },
    }),
  ];
}
