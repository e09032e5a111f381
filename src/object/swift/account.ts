// Swift accounts (`/v1/AUTH_<project>`): GET lists the containers, HEAD its
// counters and metadata, POST sets metadata and the account ACL. PUT and
// DELETE of an account are 405, as a proxy without allow_account_management.
import { accountLevel, canRead, denied, isSwiftOwner } from './access.ts';
import { parseAccountAcl } from './acl.ts';
import { swiftStatus } from './errors.ts';
import { applyMeta, checkMetaTotal, header, metaFromHeaders, metaHeaders } from './headers.ts';
import { listingFormat, listOptions, renderContainers } from './listing.ts';
import type { SwiftRequest } from './request.ts';
import { DEFAULT_POLICY } from '../store.ts';

export async function accountRequest(sr: SwiftRequest): Promise<unknown> {
  switch (sr.method) {
    case 'GET':
    case 'HEAD':
      return getAccount(sr);
    case 'POST':
      return postAccount(sr);
    case 'PUT':
    case 'DELETE':
      throw swiftStatus(405, { Allow: 'GET, HEAD, POST' });
    default:
      throw swiftStatus(405, { Allow: 'GET, HEAD, POST' });
  }
}

async function accountHeaders(sr: SwiftRequest): Promise<Record<string, string>> {
  const level = await accountLevel(sr);
  const a = await sr.ctx.store.getAccount(sr.project);
  const h: Record<string, string> = {
    'X-Account-Container-Count': String(a.containerCount),
    'X-Account-Object-Count': String(a.objectCount),
    'X-Account-Bytes-Used': String(a.bytesUsed),
    [`X-Account-Storage-Policy-${DEFAULT_POLICY}-Container-Count`]: String(a.containerCount),
    [`X-Account-Storage-Policy-${DEFAULT_POLICY}-Object-Count`]: String(a.objectCount),
    [`X-Account-Storage-Policy-${DEFAULT_POLICY}-Bytes-Used`]: String(a.bytesUsed),
    'X-Timestamp': a.createdAt ?? (Date.now() / 1000).toFixed(5),
    'X-PUT-Timestamp': a.createdAt ?? (Date.now() / 1000).toFixed(5),
    'Accept-Ranges': 'bytes',
    ...metaHeaders('account', a.metadata),
  };
  if (isSwiftOwner(level) && a.acl) h['X-Account-Access-Control'] = a.acl;
  return h;
}

async function getAccount(sr: SwiftRequest): Promise<unknown> {
  const level = await accountLevel(sr);
  if (!canRead(level)) throw denied(sr);
  const headers = await accountHeaders(sr);
  const format = listingFormat(sr.query, header(sr.headers, 'accept'));
  sr.reply.headers(headers);
  if (sr.method === 'HEAD') {
    sr.reply.code(204).header('Content-Type', formatType(format));
    return undefined;
  }
  const entries = await sr.ctx.store.listContainers(sr.project, listOptions(sr.query));
  const [type, body] = renderContainers(format, sr.account, entries);
  sr.reply.header('Content-Type', type);
  if (body === null) {
    sr.reply.code(204);
    return undefined;
  }
  return body;
}

const formatType = (f: string): string => (f === 'json' ? 'application/json; charset=utf-8' : f === 'xml' ? 'application/xml; charset=utf-8' : 'text/plain; charset=utf-8');

async function postAccount(sr: SwiftRequest): Promise<unknown> {
  const level = await accountLevel(sr);
  if (!isSwiftOwner(level)) throw denied(sr);
  const change = metaFromHeaders(sr.headers, 'account');
  const aclHeader = header(sr.headers, 'x-account-access-control');
  const acl = aclHeader === undefined ? undefined : parseAccountAcl(aclHeader);
  const current = await sr.ctx.store.getAccount(sr.project);
  checkMetaTotal(applyMeta(current.metadata, change));
  await sr.ctx.store.updateAccount(sr.project, { metadata: change, ...(acl !== undefined ? { acl } : {}) });
  sr.reply.code(204).headers(await accountHeaders(sr));
  return undefined;
}
