// The parts of Swift's bulk middleware that need no store: the bulk-delete
// body (one URL-quoted `container[/object]` per line), the answer's format
// from Accept (text/plain, application/json, application/xml, text/xml), and
// the answer's body in each (Swift's get_heartbeat_response_body).
import { escapeXml } from '../../common/text.ts';
import { swiftError } from './errors.ts';
import { BULK_LIMITS, DEFAULT_CONSTRAINTS } from './info.ts';


/** Longest line a bulk delete reads (Swift: object + container name lengths + 2). */
export const MAX_PATH_LENGTH = DEFAULT_CONSTRAINTS.max_object_name_length + DEFAULT_CONSTRAINTS.max_container_name_length + 2;

/** Python's unquote of a %-escaped UTF-8 string (bad escapes kept as they are). */
export function unquote(s: string): string {
  const bytes: number[] = [];
  const raw = Buffer.from(s, 'utf8');
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i]!;
    if (c === 0x25 && i + 2 < raw.length + 0 && /^[0-9a-fA-F]{2}$/.test(String.fromCharCode(raw[i + 1]!, raw[i + 2]!))) {
      bytes.push(Number.parseInt(String.fromCharCode(raw[i + 1]!, raw[i + 2]!), 16));
      i += 2;
    } else bytes.push(c);
  }
  return Buffer.from(bytes).toString('utf8');
}

/** Python's quote (safe '/'), as Swift quotes names in its answers. */
export function quote(s: string): string {
  let out = '';
  for (const byte of Buffer.from(s, 'utf8')) {
    const ch = String.fromCharCode(byte);
    out += byte < 0x80 && /[A-Za-z0-9_.\-~/]/.test(ch) ? ch : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** The names of a bulk-delete body; Swift's 413 past the per-request limit, 400 for an over-long line. */
export async function readDeleteList(body: AsyncIterable<Buffer | Uint8Array | string>): Promise<string[]> {
  const names: string[] = [];
  let line = Buffer.alloc(0);
  const take = (b: Buffer) => {
    const name = unquote(b.toString('utf8').trim());
    if (name) names.push(name);
    if (names.length > BULK_LIMITS.max_deletes_per_request) {
      throw swiftError(413, `Maximum Bulk Deletes: ${BULK_LIMITS.max_deletes_per_request} per request`);
    }
  };
  for await (const c of body) {
    line = Buffer.concat([line, typeof c === 'string' ? Buffer.from(c) : Buffer.from(c)]);
    let nl: number;
    while ((nl = line.indexOf(0x0a)) >= 0) {
      take(line.subarray(0, nl));
      line = line.subarray(nl + 1);
    }
    if (line.length > MAX_PATH_LENGTH * 2) throw swiftError(400, 'Invalid File Name');
  }
  take(line);
  return names;
}

export type BulkResult = Record<string, string | number>;

/** The answer's body: JSON (with Errors), XML under `root`, or `Key: value` lines then `Errors:`. */
export function renderBulk(format: string, result: BulkResult, errors: Array<[string, string]>, root: 'delete' | 'extract' | 'upload'): string {
  if (format === 'application/json') return JSON.stringify({ ...result, Errors: errors });
  const keys = Object.keys(result).sort();
  if (format.endsWith('/xml')) {
    let out = `<${root}>\n`;
    for (const k of keys) {
      const tag = k.replace(/ /g, '_').toLowerCase();
      out += `<${tag}>${escapeXml(String(result[k]))}</${tag}>\n`;
    }
    out += '<errors>\n';
    for (const [name, status] of errors) out += `<object><name>${escapeXml(name)}</name><status>${escapeXml(status)}</status></object>\n`;
    return `${out}</errors>\n</${root}>\n`;
  }
  let out = '';
  for (const k of keys) out += `${k}: ${result[k]}\n`;
  out += 'Errors:\n';
  for (const [name, status] of errors) out += `${name}, ${status}\n`;
  return out;
}

/** An HTTP status as Swift words it in bulk answers ("404 Not Found"). */
export const STATUS_TEXT: Record<number, string> = {
  200: 'OK', 201: 'Created', 202: 'Accepted', 204: 'No Content', 400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden',
  404: 'Not Found', 405: 'Method Not Allowed', 406: 'Not Acceptable', 409: 'Conflict', 411: 'Length Required',
  412: 'Precondition Failed', 413: 'Request Entity Too Large', 422: 'Unprocessable Entity', 500: 'Internal Error', 501: 'Not Implemented',
  502: 'Bad Gateway', 503: 'Service Unavailable',
};
export const statusLine = (status: number) => `${status} ${STATUS_TEXT[status] ?? 'Unknown'}`;
