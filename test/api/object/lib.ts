// Helpers for the object-storage API tests: raw HTTP calls under
// /object/v1/AUTH_<project> with any body (bytes, streams) and headers.
import type { Cloud } from '../../harness.ts';

export interface SwiftReply { status: number; headers: Headers; text: string; bytes: Buffer; json: any }
export interface Who { token?: string; projectId: string }

export type SwiftCall = (method: string, path: string, o?: { as?: Who | null; account?: string; headers?: Record<string, string>; body?: string | Buffer | Uint8Array | ReadableStream; duplex?: boolean }) => Promise<SwiftReply>;

/** Calls /object/v1/AUTH_<project><path> as `as` (the token; null: anonymous), `account` overriding the project's. */
export function swift(cloud: Cloud, def: () => Who): SwiftCall {
  return async (method, path, o = {}) => {
    const who = o.as === undefined ? def() : o.as;
    const headers: Record<string, string> = { ...(o.headers ?? {}) };
    if (who?.token) headers['X-Auth-Token'] = who.token;
    const account = o.account ?? `AUTH_${who?.projectId ?? def().projectId}`;
    const init: RequestInit & { duplex?: string } = { method, headers, body: o.body as BodyInit | undefined };
    if (o.body instanceof ReadableStream) init.duplex = 'half';
    const r = await fetch(`${cloud.url}/object/v1/${account}${path}`, init);
    const bytes = Buffer.from(await r.arrayBuffer());
    const text = bytes.toString('utf8');
    let json: any;
    if ((r.headers.get('content-type') ?? '').includes('json') && text) json = JSON.parse(text);
    return { status: r.status, headers: r.headers, text, bytes, json };
  };
}

/** A percent-encoded path of a name (slashes kept). */
export const enc = (name: string): string => name.split('/').map(encodeURIComponent).join('/');
