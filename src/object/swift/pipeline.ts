// The Swift API's middleware, in the order they wrap the core handlers (the
// first listed sees the request first), as Swift's proxy-server pipeline
// orders its filters. Each feature is its own module in this folder exporting
// a SwiftMiddleware factory; add it here with one line. Middleware that make
// subrequests (bulk, FormPost, static web, large objects) run them through
// the middleware after themselves, then the core (subrequest.ts). Symlinks
// come before large objects (Swift puts them after): a link is followed
// before the large-object middleware looks at what it names, so a link to
// an SLO or a DLO is served as one.
import { bulkMiddleware } from './bulk.ts';
import { corsMiddleware } from './cors.ts';
import { formpostMiddleware } from './formpost.ts';
import { largeObjectsMiddleware } from './large-objects.ts';
import { quotasMiddleware } from './quotas.ts';
import type { SwiftContext, SwiftMiddleware } from './request.ts';
import { staticwebMiddleware } from './staticweb.ts';
import { Subrequests } from './subrequest.ts';
import { symlinkMiddleware } from './symlink.ts';
import { tempurlMiddleware } from './tempurl.ts';
import { versioningMiddleware } from './versioning.ts';

export function swiftMiddleware(_ctx: SwiftContext): SwiftMiddleware[] {
  const chain: SwiftMiddleware[] = [];
  const sub = new Subrequests(chain);
  chain.push(
    corsMiddleware(),
    bulkMiddleware(sub),
    tempurlMiddleware(),
    formpostMiddleware(sub),
    staticwebMiddleware(sub),
    quotasMiddleware(),
    symlinkMiddleware(),
    largeObjectsMiddleware(sub),
    versioningMiddleware(),
  );
  return chain;
}
