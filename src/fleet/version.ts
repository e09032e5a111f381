// The protocol versioning rule for rolling upgrades: servers are upgraded
// first, then agents host by host. A server speaking M.n accepts agents of
// M.n and M.(n-1); a minor version only adds (new optional fields, new kinds,
// new request actions), so the one-older agent simply never sees what it does
// not know. A different major, an agent two minors behind, or an agent newer
// than the server is refused at registration with a 400 that says which
// versions the server accepts.
import { PROTOCOL_VERSION } from './protocol.ts';

const parse = (v: string): [number, number] | null => {
  const m = /^(\d{1,4})\.(\d{1,4})$/.exec(v);
  return m ? [Number(m[1]), Number(m[2])] : null;
};

/** Null when an agent speaking `agent` may talk to a server speaking `server`; otherwise why not. */
export function protocolRefusal(agent: string | undefined, server = PROTOCOL_VERSION): string | null {
  const s = parse(server);
  if (!s) throw new Error(`bad server protocol version ${server}`);
  const accepted = s[1] > 0 ? `${s[0]}.${s[1] - 1} or ${server}` : server;
  const a = agent === undefined ? null : parse(agent);
  if (!a) return `The agent speaks no known protocol version (${agent === undefined ? 'none given' : JSON.stringify(agent)}); this server accepts ${accepted}: upgrade the agent.`;
  if (a[0] !== s[0]) return `The agent speaks protocol ${agent}, a different major version than this server's ${server} (accepted: ${accepted}): ${a[0] < s[0] ? 'upgrade the agent' : 'upgrade the server first'}.`;
  if (a[1] > s[1]) return `The agent speaks protocol ${agent}, newer than this server's ${server} (accepted: ${accepted}): upgrade the server first.`;
  if (a[1] < s[1] - 1) return `The agent speaks protocol ${agent}, more than one minor version behind this server's ${server} (accepted: ${accepted}): upgrade the agent.`;
  return null;
}
