// The resource event stream (docs/events.md) as the dashboard reads it:
// Server-Sent Events over fetch, so the token travels in X-Auth-Token and
// never in a URL. Reconnects with backoff, asking for what it missed with
// Last-Event-ID.
import { endpoint, hasService, session } from './api.ts';

export interface ResourceEvent {
  seq: number; time: string; type: string; id: string; project_id: string | null;
  action: 'created' | 'updated' | 'deleted'; status?: string | null; name?: string | null; detail?: Record<string, unknown>;
}

type Listener = (e: ResourceEvent) => void;
const listeners = new Set<Listener>();
let running: AbortController | null = null;
let lastSeq: number | null = null;
let connected = false;
const stateWatchers = new Set<(up: boolean) => void>();

/** Calls `fn` with every event of the session's scope; returns the unsubscribe. */
export function onEvent(fn: Listener): () => void {
  listeners.add(fn);
  return () => listeners.delete(fn);
}
export function onStreamState(fn: (up: boolean) => void): () => void {
  stateWatchers.add(fn);
  fn(connected);
  return () => stateWatchers.delete(fn);
}
function setConnected(up: boolean): void {
  connected = up;
  for (const w of stateWatchers) w(up);
}

/** (Re)starts the stream for the current session's token; stops it without one. */
export function restartStream(): void {
  running?.abort();
  running = null;
  setConnected(false);
  lastSeq = null;
  const s = session();
  if (!s || !hasService('events')) return;
  const ctl = new AbortController();
  running = ctl;
  void loop(s.token, ctl.signal);
}

async function loop(token: string, signal: AbortSignal): Promise<void> {
  let delay = 1000;
  while (!signal.aborted) {
    try {
      const headers: Record<string, string> = { 'X-Auth-Token': token, Accept: 'text/event-stream' };
      if (lastSeq !== null) headers['Last-Event-ID'] = String(lastSeq);
      const r = await fetch(`${endpoint('events')}/stream`, { headers, signal, credentials: 'omit', cache: 'no-store' });
      if (r.status === 401 || r.status === 403) return;
      if (!r.ok || !r.body) throw new Error(`HTTP ${r.status}`);
      setConnected(true);
      delay = 1000;
      await read(r.body, signal);
    } catch {
      if (signal.aborted) return;
    }
    setConnected(false);
    await new Promise((res) => setTimeout(res, delay));
    delay = Math.min(delay * 2, 15_000);
  }
}

async function read(body: ReadableStream<Uint8Array>, signal: AbortSignal): Promise<void> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buf = '';
  while (!signal.aborted) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += decoder.decode(value, { stream: true });
    let end: number;
    while ((end = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, end);
      buf = buf.slice(end + 2);
      let event = 'message';
      let data = '';
      for (const line of block.split('\n')) {
        if (line.startsWith('event:')) event = line.slice(6).trim();
        else if (line.startsWith('data:')) data += line.slice(5).trimStart();
      }
      if (event === 'end') return;
      if (event !== 'resource' || !data) continue;
      try {
        const e = JSON.parse(data) as ResourceEvent;
        lastSeq = e.seq;
        for (const l of listeners) l(e);
      } catch { /* a malformed event is skipped */ }
    }
  }
}
