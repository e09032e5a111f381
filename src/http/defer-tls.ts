// Fastify requires node:https and node:http2 as it loads, for the servers it
// starts with TLS or HTTP/2. Loading them loads node:tls, which starts
// parsing the root certificates on a thread, and their modules and OpenSSL's
// TLS code: 2-3 MiB of the server's RSS (docs/performance.md) that a plain
// HTTP server never uses. Imported for its effect, this module hands Fastify
// stand-ins for the two that load the real module on first use, that is when
// the server starts with a certificate (https.createServer).
//
// It must run before Fastify loads: src/cli/main.ts imports it first.
// Limited to Fastify's server module, which only calls createServer on them;
// a Fastify that read them as it loads would just load them, as before.
// Not for tests that import src/server/stratus.ts directly: they load TLS as
// Node would, which changes nothing but their memory.
import { registerHooks } from 'node:module';

const FASTIFY_SERVER = /\/node_modules\/fastify\/lib\/server\.js$/;
const DEFERRED = new Set(['node:https', 'node:http2']);
const SCHEME = 'stratus-deferred:';

registerHooks({
  resolve(specifier, context, nextResolve) {
    if (DEFERRED.has(specifier) && context.parentURL !== undefined && FASTIFY_SERVER.test(context.parentURL)) {
      return { url: SCHEME + specifier, format: 'commonjs', shortCircuit: true };
    }
    return nextResolve(specifier, context);
  },
  load(url, context, nextLoad) {
    if (!url.startsWith(SCHEME)) return nextLoad(url, context);
    const name = JSON.stringify(url.slice(SCHEME.length));
    // Every way of looking at the module (a property, `in`, its keys) loads it.
    const source = `let real;
const load = () => (real ??= process.getBuiltinModule(${name}));
module.exports = new Proxy({}, {
  get: (_, key) => load()[key],
  has: (_, key) => key in load(),
  ownKeys: () => Reflect.ownKeys(load()),
  getOwnPropertyDescriptor: (_, key) => {
    const d = Reflect.getOwnPropertyDescriptor(load(), key);
    return d && { ...d, configurable: true };
  },
});
`;
    return { format: 'commonjs', source, shortCircuit: true };
  },
});
