// `stratus events`: the resource event stream (docs/events.md) printed one
// line per event, as any client reads it: a Keystone token from the OS_*
// environment (openrc: password, application credential, or OS_TOKEN), the
// stream's URL from the token's catalog (type `events`), then
// GET <url>/stream with X-Auth-Token, reconnecting with Last-Event-ID.

export interface EventsFlags { types?: string; json?: boolean; since?: string; once?: boolean }

type Env = Record<string, string | undefined>;

/** A token and its catalog from the OS_* variables the `openstack` CLI reads. */
export async function tokenFromEnv(env: Env = process.env): Promise<{ token: string; catalog: Array<{ type: string; endpoints: Array<{ interface: string; url: string }> }> }> {
  const authUrl = env.OS_AUTH_URL?.replace(/\/$/, '');
  if (!authUrl) throw new Error('OS_AUTH_URL is not set: source the openrc that `stratus up` wrote (DATA_DIR/openrc)');
  const base = /\/v3$/.test(authUrl) ? authUrl : `${authUrl}/v3`;
  let auth: unknown;
  if (env.OS_TOKEN) {
    auth = { identity: { methods: ['token'], token: { id: env.OS_TOKEN } }, ...scope(env) };
  } else if (env.OS_APPLICATION_CREDENTIAL_ID && env.OS_APPLICATION_CREDENTIAL_SECRET) {
    auth = { identity: { methods: ['application_credential'], application_credential: { id: env.OS_APPLICATION_CREDENTIAL_ID, secret: env.OS_APPLICATION_CREDENTIAL_SECRET } } };
  } else if (env.OS_USERNAME && env.OS_PASSWORD) {
    const domain = env.OS_USER_DOMAIN_ID ? { id: env.OS_USER_DOMAIN_ID } : { name: env.OS_USER_DOMAIN_NAME ?? 'Default' };
    auth = { identity: { methods: ['password'], password: { user: { name: env.OS_USERNAME, domain, password: env.OS_PASSWORD } } }, ...scope(env) };
  } else {
    throw new Error('no credentials: set OS_USERNAME and OS_PASSWORD, OS_APPLICATION_CREDENTIAL_ID and _SECRET, or OS_TOKEN');
  }
  const r = await fetch(`${base}/auth/tokens`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ auth }) });
  if (r.status !== 201) throw new Error(`authentication failed: ${r.status} ${(await r.text()).slice(0, 300)}`);
  const body = await r.json() as { token: { catalog?: Array<{ type: string; endpoints: Array<{ interface: string; url: string }> }> } };
  return { token: r.headers.get('x-subject-token')!, catalog: body.token.catalog ?? [] };
}

function scope(env: Env): Record<string, unknown> {
  if (env.OS_PROJECT_ID) return { scope: { project: { id: env.OS_PROJECT_ID } } };
  if (env.OS_PROJECT_NAME) {
    const domain = env.OS_PROJECT_DOMAIN_ID ? { id: env.OS_PROJECT_DOMAIN_ID } : { name: env.OS_PROJECT_DOMAIN_NAME ?? 'Default' };
    return { scope: { project: { name: env.OS_PROJECT_NAME, domain } } };
  }
  return {};
}

/** One event as a line: time, action, type, id, status, name, project; the user and domain when it names them (identity's, key pairs). */
export function formatEvent(e: Record<string, any>): string {
  const task = e.detail?.task_state ? ` (${e.detail.task_state})` : '';
  const owners = (['user', 'domain'] as const).map((k) => (e[`${k}_id`] ? ` ${k}=${e[`${k}_id`]}` : '')).join('');
  return `${e.time} ${String(e.action).padEnd(7)} ${e.type} ${e.id} ${e.status ?? '-'}${task} ${JSON.stringify(e.name ?? '')} project=${e.project_id ?? '-'}${owners}`;
}

/** Streams until interrupted or the stream refuses the token (with `once`, until the server ends the stream). */
export async function printEvents(f: EventsFlags, out: (line: string) => void = (l) => process.stdout.write(l + '\n')): Promise<void> {
  const { token, catalog } = await tokenFromEnv();
  const entry = catalog.find((e) => e.type === 'events');
  const url = (entry?.endpoints.find((e) => e.interface === 'public') ?? entry?.endpoints[0])?.url;
  if (!url) throw new Error('the catalog has no events endpoint (a Stratus server before the event stream?)');
  let last: string | undefined = f.since;
  let delay = 1000;
  for (;;) {
    const headers: Record<string, string> = { 'x-auth-token': token, accept: 'text/event-stream' };
    if (last !== undefined) headers['last-event-id'] = last;
    try {
      const r = await fetch(`${url.replace(/\/$/, '')}/stream${f.types ? `?types=${encodeURIComponent(f.types)}` : ''}`, { headers });
      if (r.status === 401 || r.status === 403 || r.status === 400) throw Object.assign(new Error(`the event stream refused: ${r.status} ${(await r.text()).slice(0, 300)}`), { fatal: true });
      if (!r.ok || !r.body) throw new Error(`the event stream answered ${r.status}`);
      delay = 1000;
      const dec = new TextDecoder();
      let buf = '';
      for await (const chunk of r.body as unknown as AsyncIterable<Uint8Array>) {
        buf += dec.decode(chunk, { stream: true });
        let end: number;
        while ((end = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, end);
          buf = buf.slice(end + 2);
          const lines = block.split('\n');
          const event = lines.find((l) => l.startsWith('event:'))?.slice(6).trim();
          const data = lines.filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trimStart()).join('');
          // `end`: the server stops or the token is no longer valid; the next connection says which (401 ends here)
          if (event !== 'resource' || !data) continue;
          const e = JSON.parse(data);
          last = String(e.seq);
          out(f.json ? data : formatEvent(e));
        }
      }
    } catch (err) {
      if ((err as { fatal?: boolean }).fatal) throw err;
      process.stderr.write(`stratus events: ${(err as Error).message}; reconnecting\n`);
    }
    if (f.once) return;
    await new Promise((res) => setTimeout(res, delay));
    delay = Math.min(delay * 2, 15_000);
  }
}
