// The serial console in a terminal: xterm.js over the compute API's serial
// console WebSocket (`binary` subprotocol, raw bytes both ways). Loaded on
// demand, as a chunk of its own, when a console is opened.
//
// xterm.js writes its dynamic styles (cell sizes, theme colours) into <style>
// elements, which the dashboard's Content-Security-Policy (style-src 'self',
// no 'unsafe-inline') refuses. Here xterm.js gets inert elements instead,
// whose text goes into constructed style sheets (document.adoptedStyleSheets), which the
// policy does not govern: what the terminal needs, and no inline style allowed.
import { Terminal } from '@xterm/xterm';

let patched = false;
function adoptStyleElements(): void {
  if (patched) return;
  patched = true;
  const create = document.createElement.bind(document);
  document.createElement = ((tag: string, options?: ElementCreationOptions) => {
    if (tag.toLowerCase() !== 'style') return create(tag, options);
    // an inert element in its place (an empty <style> is inline style too, refused and reported)
    const el = create('template');
    const sheet = new CSSStyleSheet();
    let text = '';
    Object.defineProperty(el, 'textContent', {
      get: () => text,
      set(v: string | null) {
        text = v ?? '';
        sheet.replaceSync(text);
        if (!document.adoptedStyleSheets.includes(sheet)) document.adoptedStyleSheets = [...document.adoptedStyleSheets, sheet];
      },
    });
    const remove = el.remove.bind(el);
    el.remove = () => {
      document.adoptedStyleSheets = document.adoptedStyleSheets.filter((s) => s !== sheet);
      remove();
    };
    return el;
  }) as typeof document.createElement;
}

/** Opens the console at `url` in `box` (its input described by the element `hintId` names); returns what closes it. */
export function openSerialConsole(box: HTMLElement, url: string, onState: (s: string) => void, hintId?: string): () => void {
  adoptStyleElements();
  const dark = matchMedia('(prefers-color-scheme: dark)').matches;
  const term = new Terminal({
    convertEol: true, cursorBlink: true, fontSize: 14, rows: 24, cols: 80,
    theme: dark ? { background: '#0f1419', foreground: '#e6e6e6' } : { background: '#ffffff', foreground: '#1b1f23', cursor: '#1b1f23' },
  });
  term.open(box);
  if (hintId) term.textarea?.setAttribute('aria-describedby', hintId);
  // the page is served by the server the URL names: its WebSocket is on this origin's host and scheme
  const u = new URL(url, location.href);
  u.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
  u.host = location.host;
  let ws: WebSocket | null = null;
  let closed = false;
  let tries = 0;
  const enc = new TextEncoder();
  const connect = () => {
    ws = new WebSocket(u.toString(), ['binary']);
    ws.binaryType = 'arraybuffer';
    ws.onopen = () => {
      onState('connected');
      term.focus();
    };
    ws.onmessage = (m) => term.write(typeof m.data === 'string' ? m.data : new Uint8Array(m.data as ArrayBuffer));
    ws.onclose = () => {
      if (closed) return;
      // the host's channel may still be opening (a 409 before the upgrade): tried again a few times
      if (++tries < 20 && term.buffer.active.length <= 1) {
        onState('waiting for the host');
        setTimeout(connect, 500);
      } else onState('disconnected');
    };
  };
  // the terminal takes Tab (the guest's shell completes with it), which would trap the keyboard there:
  // Escape and then, within a second, Tab or Shift+Tab leaves it, the key left to the browser (the
  // Escape still goes to the guest)
  let escaped = 0;
  term.attachCustomKeyEventHandler((e) => {
    if (e.type !== 'keydown') return true;
    if (e.key === 'Escape') escaped = e.timeStamp;
    else if (e.key === 'Tab' && escaped && e.timeStamp - escaped < 1000) {
      escaped = 0;
      return false;
    } else if (e.key !== 'Shift') escaped = 0;
    return true;
  });
  // Enter is a carriage return from a terminal; a container's console input is a pipe, not a tty that
  // would turn it into a newline, so it gets the newline (a VM's tty takes either)
  const input = term.onData((d) => {
    if (ws?.readyState === WebSocket.OPEN) ws.send(enc.encode(d.replace(/\r/g, '\n')));
  });
  connect();
  return () => {
    closed = true;
    input.dispose();
    ws?.close();
    term.dispose();
  };
}
