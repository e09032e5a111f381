// The dns-integration attributes' validators: a port's dns_name and a
// network's dns_domain are DNS names (RFC 1123 labels), checked as Neutron's
// validators check them and refused with its messages. They end up in
// dnsmasq's files (src/agent/drivers/network/dhcp.ts), which also refuses on
// its own anything that could break a line there.
import { invalidAttr } from './errors.ts';

/** Neutron's FQDN_FIELD_SIZE: the longest name stored. */
export const FQDN_MAX_LEN = 255;
const LABEL = /^(?!-)[a-zA-Z0-9-]{1,63}(?<!-)$/;

/** Why `data` is not a PQDN or FQDN (a trailing dot marks an FQDN), or null when it is one. */
export function dnsFormatProblem(data: string, maxLen = FQDN_MAX_LEN): string | null {
  if (data === '') return null;
  const trimmed = data.endsWith('.') ? data.slice(0, -1) : data;
  const reason = ((): string | null => {
    if (trimmed.length > maxLen) return `'${trimmed}' exceeds the ${maxLen} character FQDN limit`;
    const labels = trimmed.split('.');
    for (const label of labels) {
      if (label === '') return 'Encountered an empty component';
      if (label.startsWith('-') || label.endsWith('-')) return `Name '${label}' must not start or end with a hyphen`;
      if (!LABEL.test(label)) return `Name '${label}' must be 1-63 characters long, each of which can only be alphanumeric or a hyphen`;
    }
    // a top-level label is never all digits (RFC 1123)
    if (labels.length > 1 && /^[0-9]+$/.test(labels.at(-1)!)) return `TLD '${labels.at(-1)}' must not be all numeric`;
    return null;
  })();
  return reason === null ? null : `'${data}' not a valid PQDN or FQDN. Reason: ${reason}`;
}

/** A port's dns_name, or Neutron's 400 ("Invalid input for dns_name. Reason: ..."). */
export function checkDnsName(name: string): string {
  const problem = dnsFormatProblem(name);
  if (problem) throw invalidAttr('dns_name', problem);
  return name;
}

/** A network's dns_domain: empty, or an FQDN (trailing dot) with room for a label; else Neutron's 400. */
export function checkDnsDomain(domain: string): string {
  if (domain === '') return domain;
  if (!domain.endsWith('.')) throw invalidAttr('dns_domain', `'${domain}' is not a FQDN`);
  const problem = dnsFormatProblem(domain);
  if (problem) throw invalidAttr('dns_domain', problem);
  if (domain.length > FQDN_MAX_LEN - 2) {
    throw invalidAttr('dns_domain', `'${domain}' contains ${domain.length} characters. Adding a sub-domain will cause it to exceed the maximum length of a FQDN of '${FQDN_MAX_LEN}'`);
  }
  return domain;
}
