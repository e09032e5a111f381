// The noVNC console page (Nova's nova-novncproxy serves noVNC's files beside
// its WebSocket): noVNC's ES modules from the npm package @novnc/novnc
// (core/, vendor/), served as they are, and Stratus's own vnc_lite.html,
// which reads the query parameters Nova's URL carries (`path`, and `host`,
// `port`, `encrypt`, `password`, `title` as noVNC's vnc_lite.html does) and
// connects to ws(s)://host:port/path: with no host or port, the page's own,
// so the console works behind the one public port (or a proxy in front of it).
//
//   GET /compute/novnc/vnc_lite.html?path=compute%2Fvnc-console%3Ftoken%3D...
//   GET /compute/novnc/core/rfb.js, /compute/novnc/vendor/pako/...
//
// Public, like Nova's proxy: the token in `path` is what the WebSocket checks.
import * as fsp from 'node:fs/promises';
import { dirname, extname, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { notFound } from '../../common/errors.ts';
import { PUBLIC } from '../../http/policy.ts';
import type { Service } from '../../http/service.ts';
import { PREFIX, renderComputeError } from './http.ts';

export const NOVNC_PATH = `${PREFIX}/novnc`;
export const NOVNC_PAGE = 'vnc_lite.html';

const TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8', '.mjs': 'text/javascript; charset=utf-8', '.json': 'application/json',
  '.css': 'text/css; charset=utf-8', '.svg': 'image/svg+xml', '.png': 'image/png',
};
/** The package's folders a page may load from. */
const SERVED = new Set(['core', 'vendor']);

let packageDir: string | null = null;
/** The installed @novnc/novnc package's folder (its one export is core/rfb.js). */
function novncDir(): string {
  packageDir ??= dirname(dirname(fileURLToPath(import.meta.resolve('@novnc/novnc'))));
  return packageDir;
}

/**
 * The file of the package a request path names, or null: only under core/
 * and vendor/, only known file types, never a `.` or `..` segment (encoded
 * or not), and resolved inside the package's folder.
 */
export function novncFile(rel: string, dir = novncDir()): string | null {
  let path: string;
  try {
    path = decodeURIComponent(rel);
  } catch {
    return null;
  }
  const parts = path.split('/');
  if (!SERVED.has(parts[0]!) || parts.some((p) => p === '' || p === '.' || p === '..' || p.includes('\\') || p.includes('\0'))) return null;
  if (!Object.hasOwn(TYPES, extname(path))) return null;
  const file = resolve(dir, ...parts);
  return file.startsWith(dir + sep) ? file : null;
}

/** Stratus's console page: noVNC's RFB client on the whole window, a status line and Ctrl-Alt-Del (Tempest wants `noVNC` and a script in it). */
const PAGE = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>noVNC</title>
<style>
  html, body { margin: 0; height: 100%; background: #1e1e1e; color: #ddd; font: 14px system-ui, sans-serif; }
  body { display: flex; flex-direction: column; }
  #bar { display: flex; gap: 12px; align-items: center; padding: 4px 10px; background: #333; }
  #status { flex: 1; }
  #screen { flex: 1; overflow: hidden; }
</style>
</head>
<body>
<div id="bar"><span id="status">Connecting…</span><button id="cad" type="button" disabled>Send Ctrl-Alt-Del</button></div>
<div id="screen"></div>
<script type="module">
import RFB from './core/rfb.js';
const q = new URLSearchParams(location.search);
const flag = (v, dflt) => v === null ? dflt : ['1', 'true', 'yes', 'on'].includes(v.toLowerCase());
const scheme = flag(q.get('encrypt'), location.protocol === 'https:') ? 'wss' : 'ws';
const host = q.get('host') || location.hostname;
const port = q.get('port') || location.port;
const path = q.get('path') ?? 'websockify';
const url = scheme + '://' + (host.includes(':') && !host.startsWith('[') ? '[' + host + ']' : host) + (port ? ':' + port : '') + '/' + path.replace(/^\\//, '');
const status = document.getElementById('status');
const cad = document.getElementById('cad');
const say = (text) => { status.textContent = text; };
if (q.get('title')) document.title = q.get('title');
const rfb = new RFB(document.getElementById('screen'), url, { wsProtocols: ['binary'], credentials: { password: q.get('password') ?? '' } });
rfb.scaleViewport = true;
rfb.addEventListener('connect', () => { say('Connected'); cad.disabled = false; });
rfb.addEventListener('disconnect', (e) => { say(e.detail.clean ? 'Disconnected' : 'Connection lost'); cad.disabled = true; });
rfb.addEventListener('credentialsrequired', () => rfb.sendCredentials({ password: window.prompt('Password') ?? '' }));
rfb.addEventListener('desktopname', (e) => { if (!q.get('title')) document.title = e.detail.name; say('Connected to ' + e.detail.name); });
cad.addEventListener('click', () => rfb.sendCtrlAltDel());
</script>
</body>
</html>
`;

/** The noVNC page and noVNC's modules, under NOVNC_PATH. */
export function novncService(): Service {
  return {
    name: 'novnc',
    prefix: NOVNC_PATH,
    rules: {},
    renderError: renderComputeError,
    routes: [{
      method: 'GET', path: '/*', rule: PUBLIC,
      async handler(rc) {
        // the path as sent (not the router's decoded parameter): novncFile decodes it once, then checks every segment
        const rel = rc.req.url.slice(NOVNC_PATH.length + 1).split('?')[0]!;
        rc.reply.header('x-content-type-options', 'nosniff');
        if (rel === NOVNC_PAGE) {
          // the page's URL carries the console token: it is not sent on as a referrer, nor cached
          rc.reply.header('referrer-policy', 'no-referrer').header('cache-control', 'no-store').type('text/html; charset=utf-8');
          return PAGE;
        }
        const file = novncFile(rel);
        const data = file ? await fsp.readFile(file).catch(() => null) : null;
        if (!data) throw notFound('The resource could not be found.');
        rc.reply.header('cache-control', 'public, max-age=3600').type(TYPES[extname(file!)]!);
        return data;
      },
    }],
  };
}
