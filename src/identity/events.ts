// Keystone's part of the resource event stream (src/http/events.ts): the
// API's writes on domains, projects, users, groups, application credentials
// and credentials (EC2 ones by their access key), each shown from its row.
// Whose the event is decides who hears it (eventVisible): a project's event
// is its own project's and its domain's; a user's, a group's and a domain's
// are their domain's (and a user's its own); a credential's or application
// credential's are its user's alone, never its project's other members'.
// A role grant or a group membership (`PUT /v3/projects/{p}/users/{u}/roles/{r}`,
// `PUT /v3/groups/{g}/users/{u}`) is the user's (or, for a group's grant, the
// group's) `updated` event, the last collection its path names. No event
// carries a secret: names and owners only.
import type { Db } from '../db/database.ts';
import type { Described, WriteWatch } from '../http/events.ts';
import { ec2CredentialId } from './routes/credentials.ts';

const enabled = (n: number) => (n === 1 ? 'enabled' : 'disabled');

export function identityWriteWatch(db: Db): WriteWatch {
  const credential = async (id: string, ec2: boolean): Promise<Described | null> => {
    const row = await db.selectFrom('identity_credentials').select(['user_id', 'type']).where('id', '=', ec2 ? ec2CredentialId(id) : id).executeTakeFirst();
    if (!row || (ec2 && row.type.toLowerCase() !== 'ec2')) return null;
    return { project_id: null, user_id: row.user_id, name: null, status: null };
  };
  return {
    collections: {
      domains: { type: 'domain', key: 'domain' }, projects: { type: 'project', key: 'project' }, users: { type: 'user', key: 'user' },
      groups: { type: 'group', key: 'group' }, application_credentials: { type: 'application_credential', key: 'application_credential' },
      credentials: { type: 'credential', key: 'credential' }, 'OS-EC2': { type: 'ec2_credential', key: 'credential', id: 'access' },
    },
    async describe(type, id) {
      switch (type) {
        case 'domain':
        case 'project': {
          const p = await db.selectFrom('identity_projects').select(['name', 'domain_id', 'enabled']).where('id', '=', id).executeTakeFirst();
          if (p) return { project_id: id, domain_id: p.domain_id, name: p.name, status: enabled(p.enabled) };
          // a domain, also reached as the project acting as it
          const d = await db.selectFrom('identity_domains').select(['name', 'enabled']).where('id', '=', id).executeTakeFirst();
          return d ? { project_id: null, domain_id: id, name: d.name, status: enabled(d.enabled) } : null;
        }
        case 'user': {
          const u = await db.selectFrom('identity_users').select(['name', 'domain_id', 'enabled']).where('id', '=', id).executeTakeFirst();
          return u ? { project_id: null, user_id: id, domain_id: u.domain_id, name: u.name, status: enabled(u.enabled) } : null;
        }
        case 'group': {
          const g = await db.selectFrom('identity_groups').select(['name', 'domain_id']).where('id', '=', id).executeTakeFirst();
          return g ? { project_id: null, domain_id: g.domain_id, name: g.name, status: null } : null;
        }
        case 'application_credential': {
          const a = await db.selectFrom('identity_app_credentials').select(['name', 'user_id']).where('id', '=', id).executeTakeFirst();
          return a ? { project_id: null, user_id: a.user_id, name: a.name, status: null } : null;
        }
        case 'credential':
          return credential(id, false);
        case 'ec2_credential':
          return credential(id, true);
        default:
          return null;
      }
    },
  };
}
