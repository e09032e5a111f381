// Static web sites, as Swift's staticweb middleware: for anonymous GET/HEAD
// (or with `X-Web-Mode: true`, or through a TempURL) of a container with
// X-Container-Meta-Web-Index / -Listings, the container answers as a web
// site: `/c` redirects to `/c/` (301), `/c/` serves the index object, else an
// HTML listing (`-Web-Listings: true`, styled by `-Web-Listings-CSS`, titled
// by `-Web-Listings-Label`); a pseudo-directory `/c/dir/` likewise; an object
// whose Content-Type is `-Web-Directory-Type` (default
// application/directory) and at most one byte long is a directory marker. A
// 401 or 404 is answered with the object `<status><Web-Error>` when
// `-Web-Error` names one (still with the error's status). Reads go through
// the rest of the pipeline as the caller's subrequests, so the container's
// read ACL decides (`.r:*` for a public site; `.rlistings` for listings).
import { escapeXml } from '../../common/text.ts';
import { checkContainerAccess } from './access.ts';
import { quote } from './bulk-format.ts';
import { loadContainer } from './container.ts';
import { swiftStatus } from './errors.ts';
import { header, listingDate, truthy } from './headers.ts';
import { percentDecode, type SwiftMiddleware, type SwiftRequest } from './request.ts';
import { discard, isSuccess, type SubAnswer, type Subrequests } from './subrequest.ts';
import { staticwebAnswers, tempUrlGrant } from './tempurl.ts';

interface WebConfig { index: string; error: string; listings: string; label: string; css: string; dirType: string }

function webConfig(meta: Record<string, string> | undefined): WebConfig {
  const get = (k: string) => {
    for (const [key, v] of Object.entries(meta ?? {})) if (key.toLowerCase() === k) return v.trim();
    return '';
  };
  return { index: get('web-index'), error: get('web-error'), listings: get('web-listings'), label: get('web-listings-label'), css: get('web-listings-css'), dirType: get('web-directory-type') };
}



/** Swift's human_readable: 1048576 -> "1Mi". */
export function humanReadable(n: number): string {
  let v = n;
  let index = -1;
  const suffixes = 'KMGTPEZY';
  while (v >= 1024 && index + 1 < suffixes.length) {
    index++;
    v = Math.round(v / 1024);
  }
  return index === -1 ? String(Math.trunc(v)) : `${Math.round(v)}${suffixes[index]}i`;
}

export function staticwebMiddleware(sub: Subrequests): SwiftMiddleware {
  const self: SwiftMiddleware = async (sr, next) => {
    if ((sr.method !== 'GET' && sr.method !== 'HEAD') || sr.container === undefined) return next();
    const webMode = truthy(header(sr.headers, 'x-web-mode'));
    if (sr.cred && !tempUrlGrant(sr) && !webMode) return next();
    // A container that is no web site answers as the API does (Swift: the same answer, by a longer way).
    const web = webConfig((await loadContainer(sr))?.metadata);
    if (!web.index && !web.listings) {
      if (webMode && sr.object === undefined) throw swiftStatus(404);
      return next();
    }
    const site = new Site(sr, sub, self, webMode);
    return sr.object === undefined ? site.container(next) : site.object();
  };
  return self;
}

class Site {
  private readonly sr: SwiftRequest;
  private readonly sub: Subrequests;
  private readonly self: SwiftMiddleware;
  private readonly webMode: boolean;
  private web: WebConfig = webConfig(undefined);
  private readonly path: string;
  constructor(sr: SwiftRequest, sub: Subrequests, self: SwiftMiddleware, webMode: boolean) {
    this.sr = sr;
    this.sub = sub;
    this.self = self;
    this.webMode = webMode;
    const url = sr.req.url;
    const q = url.indexOf('?');
    this.path = q < 0 ? url : url.slice(0, q);
  }

  private async load(): Promise<void> {
    this.web = webConfig((await loadContainer(this.sr))?.metadata);
  }

  private get(object: string): Promise<SubAnswer> {
    const sr = this.sr;
    return this.sub.run(this.self, sr, { method: sr.method, container: sr.container, object, headers: { ...sr.headers }, query: {} });
  }

  /** Sends a subrequest's answer as the request's own. */
  private emit(a: SubAnswer, status = a.status): unknown {
    this.sr.reply.code(status).headers(a.headers);
    if (this.sr.method === 'HEAD') {
      discard(a.body);
      return undefined;
    }
    return a.body;
  }

  private redirectWithSlash(): unknown {
    this.sr.reply.code(301).headers({ Location: `${this.path}/`, 'Content-Type': 'text/html; charset=UTF-8' });
    return '';
  }

  /** An error answer, with the container's error page for its status when there is one. */
  private async errorResponse(a: SubAnswer): Promise<unknown> {
    if (this.web.error) {
      const page = await this.get(`${a.status}${this.web.error}`);
      if (isSuccess(page.status)) {
        discard(a.body);
        return this.emit(page, a.status);
      }
      discard(page.body);
    }
    return this.emit(a);
  }

  private notFound(body?: string): SubAnswer {
    return { status: 404, headers: { 'content-type': 'text/html; charset=UTF-8' }, body: body ?? '<html><h1>Not Found</h1><p>The resource could not be found.</p></html>' };
  }

  async container(next: () => Promise<unknown>): Promise<unknown> {
    const sr = this.sr;
    await this.load();
    const c = await loadContainer(sr);
    try {
      await checkContainerAccess(sr, c, 'list');
    } catch (e) {
      const status = (e as { status?: number }).status ?? 401;
      return this.errorResponse({ status, headers: { 'content-type': 'text/html; charset=UTF-8' }, body: '' });
    }
    if (!this.web.listings && !this.web.index) {
      if (this.webMode) throw swiftStatus(404);
      return next();
    }
    if (!this.path.endsWith('/')) return this.redirectWithSlash();
    if (!this.web.index) return this.listing('');
    const a = await this.get(this.web.index);
    if (a.status === 404) {
      discard(a.body);
      return this.listing('');
    }
    if (!isSuccess(a.status) && !(a.status >= 300 && a.status < 400)) return this.errorResponse(a);
    return this.emit(a);
  }

  async object(): Promise<unknown> {
    const sr = this.sr;
    const obj = sr.object!;
    const a = await this.get(obj);
    await this.load();
    let status = a.status;
    if (isSuccess(status) || (status >= 300 && status < 400)) {
      const dirType = this.web.dirType || 'application/directory';
      const len = Number(a.headers['content-length'] ?? 0);
      if (a.headers['content-type'] === dirType && len <= 1) status = 404;
      else return this.emit(a);
    }
    if (status !== 404) {
      this.web.error = '';
      return this.errorResponse(a);
    }
    if (!this.web.listings && !this.web.index) return this.emit(a.status === 404 ? a : this.notFound(), 404);
    discard(a.body);
    if (this.web.index) {
      const idx = await this.get(`${obj.endsWith('/') ? obj : `${obj}/`}${this.web.index}`);
      if (isSuccess(idx.status) || (idx.status >= 300 && idx.status < 400)) {
        if (!this.path.endsWith('/')) {
          discard(idx.body);
          return this.redirectWithSlash();
        }
        return this.emit(idx);
      }
      discard(idx.body);
    }
    if (!this.path.endsWith('/')) {
      const c = await loadContainer(sr);
      const some = c ? await sr.ctx.store.listObjects(c, { prefix: `${obj}/`, delimiter: '/', limit: 1 }) : [];
      if (!some.length) return this.errorResponse(this.notFound());
      return this.redirectWithSlash();
    }
    return this.listing(obj);
  }

  private cssPath(prefix: string): string {
    const css = this.web.css;
    if (/^(\/|https?:\/\/)/.test(css)) return quote(css).replace(/%3A/g, ':');
    return '../'.repeat((prefix.match(/\//g) ?? []).length) + quote(css);
  }

  private async listing(prefix: string): Promise<unknown> {
    const sr = this.sr;
    const raw = this.path.replace(/^\/object(?=\/)/, '');
    let label = percentDecode(raw) ?? raw;
    if (this.web.label) label = `${this.web.label}/${label.split('/').slice(4).join('/')}`;
    if (!truthy(this.web.listings)) {
      let body = `<!DOCTYPE html>\n<html>\n<head>\n<title>Listing of ${escapeXml(label)}</title>\n`;
      if (this.web.css) body += `  <link rel="stylesheet" type="text/css" href="${this.cssPath(prefix)}" />\n`;
      else body += '  <style type="text/css">\n   h1 {font-size: 1em; font-weight: bold;}\n   p {font-size: 2}\n  </style>\n';
      body += '</head>\n<body>  <h1>Web Listing Disabled</h1>   <p>The owner of this web site has disabled web listing.'
        + '   <p>If you are the owner of this web site, you can enable   web listing by setting X-Container-Meta-Web-Listings.</p>';
      if (this.web.index) {
        body += `<h1>Index File Not Found</h1> <p>The owner of this web site has set  <b>X-Container-Meta-Web-Index: ${escapeXml(this.web.index)}</b>.  However, this file is not found.</p>`;
      }
      body += ' </body>\n</html>\n';
      return this.errorResponse(this.notFound(body));
    }
    const c = await loadContainer(sr);
    if (!c) return this.errorResponse(this.notFound());
    const entries = await sr.ctx.store.listObjects(c, { prefix: prefix || undefined, delimiter: '/', limit: 10000 });
    if (prefix && !entries.length) return this.errorResponse(this.notFound());
    let tempurlQs = '';
    let tempurlPrefix = '';
    if (tempUrlGrant(sr)) {
      const q = sr.query;
      if (q.temp_url_prefix !== undefined) {
        tempurlPrefix = q.temp_url_prefix;
        const parts = [`temp_url_prefix=${quote(tempurlPrefix)}`, `temp_url_expires=${quote(q.temp_url_expires ?? '')}`, `temp_url_sig=${q.temp_url_sig}`];
        if (q.inline !== undefined) parts.push('inline');
        tempurlQs = `?${parts.join('&amp;')}`;
      }
      staticwebAnswers.add(sr);
    }
    let body = `<!DOCTYPE html>\n<html>\n <head>\n  <title>Listing of ${escapeXml(label)}</title>\n`;
    if (this.web.css) body += `  <link rel="stylesheet" type="text/css" href="${this.cssPath(prefix)}" />\n`;
    else {
      body += '  <style type="text/css">\n   h1 {font-size: 1em; font-weight: bold;}\n   th {text-align: left; padding: 0px 1em 0px 1em;}\n'
        + '   td {padding: 0px 1em 0px 1em;}\n   a {text-decoration: none;}\n  </style>\n';
    }
    body += ` </head>\n <body>\n  <h1 id="title">Listing of ${escapeXml(label)}</h1>\n  <table id="listing">\n   <tr id="heading">\n`
      + '    <th class="colname">Name</th>\n    <th class="colsize">Size</th>\n    <th class="coldate">Date</th>\n   </tr>\n';
    if (prefix.length > tempurlPrefix.length) {
      body += `   <tr id="parent" class="item">\n    <td class="colname"><a href="../${tempurlQs}">../</a></td>\n`
        + '    <td class="colsize">&nbsp;</td>\n    <td class="coldate">&nbsp;</td>\n   </tr>\n';
    }
    for (const e of entries) {
      if (e.kind !== 'subdir') continue;
      const name = e.name.slice(prefix.length);
      body += `   <tr class="item subdir">\n    <td class="colname"><a href="./${quote(name).replace(/\./g, '%2E')}${tempurlQs}">${escapeXml(name)}</a></td>\n`
        + '    <td class="colsize">&nbsp;</td>\n    <td class="coldate">&nbsp;</td>\n   </tr>\n';
    }
    for (const e of entries) {
      if (e.kind !== 'object') continue;
      const name = e.name.slice(prefix.length);
      const types = e.contentType.split('/').map((t) => `type-${escapeXml(t.toLowerCase())}`).join(' ');
      const date = escapeXml(listingDate(e.timestamp)).split('.')[0]!.replace('T', ' ');
      body += `   <tr class="item ${types}">\n    <td class="colname"><a href="./${quote(name).replace(/\./g, '%2E')}${tempurlQs}">${escapeXml(name)}</a></td>\n`
        + `    <td class="colsize">${humanReadable(e.size)}</td>\n    <td class="coldate">${date}</td>\n   </tr>\n`;
    }
    body += '  </table>\n </body>\n</html>\n';
    sr.reply.code(200).headers({ 'Content-Type': 'text/html; charset=UTF-8', 'Content-Length': String(Buffer.byteLength(body)) });
    return sr.method === 'HEAD' ? undefined : body;
  }
}
