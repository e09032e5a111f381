// The identity service (Keystone v3) under /identity: its routes, its policy,
// and the token machinery other services authenticate callers with.
import type { Logger } from 'pino';
import type { Db } from '../db/database.ts';
import type { TokenValidator } from '../http/auth.ts';
import type { Service } from '../http/service.ts';
import type { WriteWatch } from '../db/write-watch.ts';
import { basicAuthenticator, refreshLogin, type BasicAuthenticator, type BasicLogin } from './basic-auth.ts';
import { CatalogCache } from './catalog.ts';
import { CredentialStore } from './credential-store.ts';
import { ec2Keys, type Ec2Keys } from './ec2.ts';
import { IdentityReadCache } from './read-cache.ts';
import { defaultIdentityConfig, type IdentityConfig, type IdentityContext } from './context.ts';
import { tokenAuthenticator } from './credentials.ts';
import { keystoneBodyErrors, PREFIX, renderIdentityError } from './http.ts';
import { identityRules } from './policy.ts';
import { appcredsRoutes } from './routes/appcreds.ts';
import { assignmentsRoutes } from './routes/assignments.ts';
import { authRoutes } from './routes/auth.ts';
import { catalogRoutes } from './routes/catalog.ts';
import { credentialsRoutes } from './routes/credentials.ts';
import { discoveryRoutes } from './routes/discovery.ts';
import { domainConfigRoutes } from './routes/domain-config.ts';
import { domainRoutes } from './routes/domains.ts';
import { groupsRoutes } from './routes/groups.ts';
import { limitsRoutes } from './routes/limits.ts';
import { miscRoutes } from './routes/misc.ts';
import { projectsRoutes } from './routes/projects.ts';
import { rolesRoutes } from './routes/roles.ts';
import { trustsRoutes } from './routes/trusts.ts';
import { usersRoutes } from './routes/users.ts';
import { KeySet } from './keys.ts';
import { Revocations } from './tokens/revocations.ts';

export interface Identity {
  service: Service;
  authenticate: TokenValidator;
  context: IdentityContext;
  /** EC2 credentials by access key: their secrets and callers, for S3 request signatures. */
  ec2: Ec2Keys;
  /** HTTP Basic logins (a user's password or an application credential) for services clients reach without a token: the registry's token endpoint. */
  basicAuth: BasicAuthenticator;
  /** The login a refresh token (an earlier login's `refreshToken`) stands for; 401 when it is no longer valid. */
  refreshLogin: (refreshToken: string) => Promise<BasicLogin>;
  /** Reads keys, revocations and the catalog, then keeps them in sync with the database. */
  start(): Promise<void>;
  stop(): void;
}

/**
 * `writes` is the database's write watch when it is the embedded SQLite:
 * token-path reads are then cached in memory (see read-cache.ts).
 */
export function createIdentity(db: Db, log: Logger, overrides: Partial<IdentityConfig> = {}, writes: WriteWatch | null = null): Identity {
  const config = { ...defaultIdentityConfig, ...overrides };
  const context: IdentityContext = {
    db,
    log,
    config,
    // A staged key becomes primary after a few sync ticks, so every replica knows it first.
    keys: new KeySet(config.syncIntervalMs * 3),
    credentials: new CredentialStore(db),
    revocations: new Revocations((config.tokenExpiration + config.allowExpiredWindow) * 1000),
    catalog: new CatalogCache(db),
    cache: new IdentityReadCache(writes && { writes, db }),
  };
  const routes = [
    ...discoveryRoutes(),
    ...authRoutes(context),
    ...domainConfigRoutes(context),
    ...domainRoutes(context),
    ...projectsRoutes(context),
    ...usersRoutes(context),
    ...groupsRoutes(context),
    ...rolesRoutes(context),
    ...assignmentsRoutes(context),
    ...catalogRoutes(context),
    ...credentialsRoutes(context),
    ...appcredsRoutes(context),
    ...trustsRoutes(context),
    ...limitsRoutes(context),
    ...miscRoutes(context),
  ];
  let timer: NodeJS.Timeout | undefined;
  let ticks = 0;
  const sync = async () => {
    await context.keys.load(db);
    await context.credentials.load();
    await context.revocations.sync(db);
    if (ticks % 5 === 0) await context.catalog.reload();
    if (ticks % 600 === 0) await context.revocations.prune(db);
    ticks++;
  };
  return {
    service: { name: 'identity', prefix: PREFIX, routes, rules: identityRules, renderError: renderIdentityError, setup: (app) => {
      keystoneBodyErrors(app);
      // Keystone names where to authenticate on every 401.
      app.addHook('onSend', async (req, reply, payload) => {
        if (reply.statusCode === 401) reply.header('WWW-Authenticate', `Keystone uri="${req.protocol}://${req.headers.host}${PREFIX}"`);
        return payload;
      });
    } },
    authenticate: tokenAuthenticator(context),
    basicAuth: basicAuthenticator(context),
    refreshLogin: refreshLogin(context),
    context,
    ec2: ec2Keys(context),
    async start() {
      await sync();
      timer = setInterval(() => {
        sync().catch((err) => log.warn({ err }, 'identity sync failed'));
      }, config.syncIntervalMs);
      timer.unref();
    },
    stop() {
      if (timer) clearInterval(timer);
    },
  };
}
