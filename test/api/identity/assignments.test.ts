import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useCloud } from '../../harness.ts';
import { fixtures } from './assignment-fixtures.ts';
import { adminApi, V3 } from './lib.ts';

const cloud = useCloud();
const admin = adminApi(cloud);
const fx = fixtures(cloud);
const tokenRoles = async (token: string) =>
  (await cloud.call('GET', `${V3}/auth/tokens`, { token: cloud.adminToken, headers: { 'X-Subject-Token': token } })).body.token.roles
    .map((r: { name: string }) => r.name).sort();
type Assignment = {
  role: { id: string; name?: string; domain?: { id: string; name: string } };
  user?: { id: string; name?: string; domain?: { id: string; name: string } };
  group?: { id: string; name?: string };
  scope: { project?: { id: string; name?: string; domain?: { id: string; name: string } }; domain?: { id: string; name?: string }; system?: { all: true }; 'OS-INHERIT:inherited_to'?: string };
  links: { assignment: string; membership?: string; prior_role?: string };
};
const assignments = async (query: string): Promise<Assignment[]> => {
  const r = await admin('GET', `/role_assignments?${query}`);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body.role_assignments;
};

test('grant, list, check and revoke a role for a user on a project; revocation ends the token', async () => {
  const project = await fx.project();
  const u = await fx.user();
  const member = await fx.roleId('member');
  const base = `/projects/${project}/users/${u.id}/roles`;
  assert.equal((await admin('PUT', `${base}/${member}`)).status, 204);
  assert.equal((await admin('PUT', `${base}/${member}`)).status, 204, 'granting twice is quiet');
  const list = await admin('GET', base);
  assert.equal(list.status, 200);
  assert.deepEqual(list.body.roles.map((r: { id: string }) => r.id), [member]);
  assert.equal(list.body.roles[0].name, 'member');
  assert.equal(list.body.roles[0].domain_id, null);
  assert.match(list.body.links.self, new RegExp(`/v3${base}$`));
  assert.equal((await admin('HEAD', `${base}/${member}`)).status, 204);
  assert.equal((await admin('GET', `${base}/${member}`)).status, 204);

  const token = await fx.login(u, 'default', { project });
  assert.deepEqual(await tokenRoles(token), ['member', 'reader']);
  assert.equal((await admin('DELETE', `${base}/${member}`)).status, 204);
  assert.equal(await fx.validate(token), 404, 'the token that carried the grant is revoked');
  const again = await admin('DELETE', `${base}/${member}`);
  assert.equal(again.status, 404);
  assert.match(again.body.error.message, /^Could not find role assignment with role: /);
  assert.equal((await admin('HEAD', `${base}/${member}`)).status, 404);
  assert.deepEqual((await admin('GET', base)).body.roles, []);
});

test('grants name what they touch: 404 for a missing user, group, project, domain or role', async () => {
  const project = await fx.project();
  const domain = await fx.domain();
  const u = await fx.user();
  const g = await fx.group();
  const member = await fx.roleId('member');
  const cases: Array<[string, string]> = [
    [`/projects/nope/users/${u.id}/roles/${member}`, 'project'], [`/projects/${project}/users/nope/roles/${member}`, 'user'],
    [`/projects/${project}/users/${u.id}/roles/nope`, 'role'], [`/projects/${project}/groups/nope/roles/${member}`, 'group'],
    [`/domains/nope/users/${u.id}/roles/${member}`, 'domain'], [`/domains/${domain}/groups/${g}/roles/nope`, 'role'],
    [`/system/users/nope/roles/${member}`, 'user'], [`/system/groups/${g}/roles/nope`, 'role'],
    [`/OS-INHERIT/domains/nope/users/${u.id}/roles/${member}/inherited_to_projects`, 'domain'],
    [`/OS-INHERIT/projects/${project}/groups/nope/roles/${member}/inherited_to_projects`, 'group'],
  ];
  for (const [path, kind] of cases) {
    const r = await admin('PUT', path);
    assert.equal(r.status, 404, path);
    assert.match(r.body.error.message, new RegExp(`^Could not find ${kind}: `), path);
  }
  assert.equal((await admin('GET', `/projects/${project}/users/nope/roles`)).status, 404);
  assert.equal((await admin('GET', `/domains/nope/groups/${g}/roles`)).status, 404);
});

test('group grants reach members, and removing one revokes the members\' tokens', async () => {
  const project = await fx.project();
  const u = await fx.user();
  const g = await fx.group('default', [u.id]);
  const role = await fx.role();
  assert.equal((await admin('PUT', `/projects/${project}/groups/${g}/roles/${role.id}`)).status, 204);
  assert.deepEqual((await admin('GET', `/projects/${project}/groups/${g}/roles`)).body.roles.map((r: { id: string }) => r.id), [role.id]);
  assert.equal((await admin('HEAD', `/projects/${project}/groups/${g}/roles/${role.id}`)).status, 204);
  const token = await fx.login(u, 'default', { project });
  assert.deepEqual(await tokenRoles(token), [role.name]);
  assert.equal((await admin('DELETE', `/projects/${project}/groups/${g}/roles/${role.id}`)).status, 204);
  assert.equal(await fx.validate(token), 404);
});

test('domain and system grants for users and groups', async () => {
  const domain = await fx.domain();
  const u = await fx.user(domain);
  const g = await fx.group(domain, [u.id]);
  const reader = await fx.roleId('reader');
  const member = await fx.roleId('member');
  for (const base of [`/domains/${domain}/users/${u.id}/roles`, `/domains/${domain}/groups/${g}/roles`, `/system/users/${u.id}/roles`, `/system/groups/${g}/roles`]) {
    assert.equal((await admin('PUT', `${base}/${reader}`)).status, 204, base);
    assert.deepEqual((await admin('GET', base)).body.roles.map((r: { name: string }) => r.name), ['reader'], base);
    assert.equal((await admin('HEAD', `${base}/${reader}`)).status, 204, base);
    assert.equal((await admin('HEAD', `${base}/${member}`)).status, 404, base);
  }
  const domainToken = await fx.login(u, domain, { domain });
  assert.deepEqual(await tokenRoles(domainToken), ['reader']);
  const systemToken = await fx.login(u, domain, { system: true });
  assert.deepEqual(await tokenRoles(systemToken), ['reader']);
  const direct = await assignments(`user.id=${u.id}`);
  assert.equal(direct.length, 2);
  assert.ok(direct.some((a) => a.scope.system?.all === true && a.links.assignment.endsWith(`/v3/system/users/${u.id}/roles/${reader}`)));
  assert.ok(direct.some((a) => a.scope.domain?.id === domain && a.links.assignment.endsWith(`/v3/domains/${domain}/users/${u.id}/roles/${reader}`)));

  assert.equal((await admin('DELETE', `/system/users/${u.id}/roles/${reader}`)).status, 204);
  assert.equal(await fx.validate(systemToken), 404);
  assert.equal((await admin('DELETE', `/domains/${domain}/groups/${g}/roles/${reader}`)).status, 204);
  assert.equal((await admin('DELETE', `/domains/${domain}/users/${u.id}/roles/${reader}`)).status, 204);
  assert.equal(await fx.validate(domainToken), 404);
  assert.equal((await admin('DELETE', `/system/groups/${g}/roles/${reader}`)).status, 204);
  assert.equal((await admin('DELETE', `/system/groups/${g}/roles/${reader}`)).status, 404);
});

test('domain-specific roles: only on projects of their domain, never on the system, never in a token', async () => {
  const domain = await fx.domain();
  const project = await fx.project(domain);
  const elsewhere = await fx.project();
  const u = await fx.user(domain);
  const dr = await fx.role({ domain_id: domain });
  const reader = await fx.roleId('reader');
  assert.equal((await admin('PUT', `/roles/${dr.id}/implies/${reader}`)).status, 201);
  assert.equal((await admin('PUT', `/projects/${elsewhere}/users/${u.id}/roles/${dr.id}`)).status, 403);
  assert.equal((await admin('PUT', `/system/users/${u.id}/roles/${dr.id}`)).status, 400);
  assert.equal((await admin('PUT', `/projects/${project}/users/${u.id}/roles/${dr.id}`)).status, 204);
  const token = await fx.login(u, domain, { project });
  assert.deepEqual(await tokenRoles(token), ['reader']);
  const eff = await assignments(`effective&user.id=${u.id}&scope.project.id=${project}`);
  assert.deepEqual(eff.map((a) => a.role.id), [reader], 'the domain role itself is stripped, what it implies stays');
  assert.ok(eff[0]!.links.prior_role);
  // Deleting the domain role revokes tokens that got roles through it.
  assert.equal((await admin('DELETE', `/roles/${dr.id}`)).status, 204);
  assert.equal(await fx.validate(token), 404);
});

test('OS-INHERIT on a domain reaches every project in it, and the effective list shows it', async () => {
  const domain = await fx.domain();
  const parent = await fx.project(domain);
  const leaf = await fx.project(domain, parent);
  const u = await fx.user(domain);
  const role = await fx.role();
  const one = `/OS-INHERIT/domains/${domain}/users/${u.id}/roles/${role.id}/inherited_to_projects`;
  assert.equal((await admin('PUT', one)).status, 204);
  const list = await admin('GET', `/OS-INHERIT/domains/${domain}/users/${u.id}/roles/inherited_to_projects`);
  assert.deepEqual(list.body.roles.map((r: { id: string }) => r.id), [role.id]);
  assert.equal((await admin('HEAD', one)).status, 204);
  assert.equal((await admin('HEAD', `/domains/${domain}/users/${u.id}/roles/${role.id}`)).status, 404, 'not a direct domain grant');
  assert.deepEqual((await admin('GET', `/domains/${domain}/users/${u.id}/roles`)).body.roles, []);

  const direct = await assignments(`user.id=${u.id}`);
  assert.equal(direct.length, 1);
  assert.deepEqual(direct[0]!.scope, { domain: { id: domain }, 'OS-INHERIT:inherited_to': 'projects' });
  assert.ok(direct[0]!.links.assignment.endsWith(`/v3${one}`));
  assert.equal((await assignments(`user.id=${u.id}&scope.OS-INHERIT:inherited_to=projects`)).length, 1);
  assert.equal((await assignments(`user.id=${u.id}&scope.OS-INHERIT:inherited_to=none`)).length, 0);

  for (const p of [parent, leaf]) {
    const eff = await assignments(`scope.project.id=${p}&user.id=${u.id}&effective`);
    assert.equal(eff.length, 1, p);
    assert.deepEqual(eff[0]!.scope, { project: { id: p }, 'OS-INHERIT:inherited_to': 'projects' });
    assert.ok(eff[0]!.links.assignment.endsWith(`/v3${one}`));
  }
  assert.equal((await assignments(`user.id=${u.id}&effective`)).length, 2, 'one per project of the domain');
  const token = await fx.login(u, domain, { project: leaf });
  assert.deepEqual(await tokenRoles(token), [role.name]);

  assert.equal((await admin('DELETE', one)).status, 204);
  assert.equal(await fx.validate(token), 404);
  for (const p of [parent, leaf]) assert.deepEqual(await assignments(`scope.project.id=${p}&user.id=${u.id}&effective`), []);
});

test('OS-INHERIT on a project reaches its subtree, not itself', async () => {
  const parent = await fx.project();
  const leaf = await fx.project('default', parent);
  const u = await fx.user();
  const g = await fx.group('default', [u.id]);
  const role = await fx.role();
  const one = `/OS-INHERIT/projects/${parent}/users/${u.id}/roles/${role.id}/inherited_to_projects`;
  assert.equal((await admin('PUT', one)).status, 204);
  assert.equal((await admin('HEAD', one)).status, 204);
  assert.equal((await admin('PUT', `/OS-INHERIT/projects/${parent}/groups/${g}/roles/${role.id}/inherited_to_projects`)).status, 204);
  assert.deepEqual(await assignments(`scope.project.id=${parent}&user.id=${u.id}&effective`), []);
  const eff = await assignments(`scope.project.id=${leaf}&user.id=${u.id}&effective`);
  assert.equal(eff.length, 2);
  const viaGroup = eff.find((a) => a.links.membership)!;
  assert.ok(viaGroup.links.membership!.endsWith(`/v3/groups/${g}/users/${u.id}`));
  assert.ok(viaGroup.links.assignment.endsWith(`/v3/OS-INHERIT/projects/${parent}/groups/${g}/roles/${role.id}/inherited_to_projects`));
  const token = await fx.login(u, 'default', { project: leaf });
  assert.deepEqual(await tokenRoles(token), [role.name]);
  assert.equal((await admin('DELETE', one)).status, 204);
  assert.equal(await fx.validate(token), 404);
  assert.equal((await admin('DELETE', one)).status, 404);
});

test('role_assignments: direct filters, effective expansion of groups and implied roles, names', async () => {
  const domain = await fx.domain();
  const project = await fx.project(domain);
  const u = await fx.user(domain);
  const other = await fx.user(domain);
  const g = await fx.group(domain, [u.id, other.id]);
  const prior = await fx.role();
  const implied = await fx.role();
  await admin('PUT', `/roles/${prior.id}/implies/${implied.id}`);
  await admin('PUT', `/projects/${project}/users/${u.id}/roles/${prior.id}`);
  await admin('PUT', `/projects/${project}/groups/${g}/roles/${implied.id}`);

  const direct = await assignments(`scope.project.id=${project}`);
  assert.equal(direct.length, 2);
  const userA = direct.find((a) => a.user)!;
  assert.deepEqual(userA, {
    links: { assignment: userA.links.assignment }, scope: { project: { id: project } }, user: { id: u.id }, role: { id: prior.id },
  });
  assert.ok(userA.links.assignment.endsWith(`/v3/projects/${project}/users/${u.id}/roles/${prior.id}`));
  assert.ok(direct.some((a) => a.group?.id === g && a.links.assignment.endsWith(`/v3/projects/${project}/groups/${g}/roles/${implied.id}`)));
  assert.equal((await assignments(`group.id=${g}`)).length, 1);
  assert.equal((await assignments(`role.id=${prior.id}`)).length, 1);
  assert.equal((await assignments(`user.id=${u.id}`)).length, 1, 'no group expansion without effective');

  const eff = await assignments(`scope.project.id=${project}&effective`);
  // u: prior (direct), implied (through prior), implied (through the group); other: implied (through the group).
  assert.equal(eff.length, 4);
  assert.ok(eff.every((a) => a.user && !a.group));
  const throughPrior = eff.find((a) => a.links.prior_role)!;
  assert.equal(throughPrior.role.id, implied.id);
  assert.ok(throughPrior.links.assignment.endsWith(`/v3/projects/${project}/users/${u.id}/roles/${prior.id}`));
  assert.ok(throughPrior.links.prior_role!.endsWith(`/v3/prior_role/${implied.id}/implies/${prior.id}`));
  const throughGroup = eff.filter((a) => a.links.membership);
  assert.deepEqual(throughGroup.map((a) => a.user!.id).sort(), [u.id, other.id].sort());
  assert.equal((await assignments(`scope.project.id=${project}&effective&user.id=${u.id}`)).length, 3);
  assert.equal((await assignments(`scope.project.id=${project}&effective&role.id=${implied.id}`)).length, 3);
  assert.equal((await assignments(`scope.project.id=${project}&effective=0`)).length, 2, 'effective=0 is off');

  const named = await assignments(`scope.project.id=${project}&user.id=${u.id}&include_names`);
  assert.equal(named.length, 1);
  const domainName = (await admin('GET', `/domains/${domain}`)).body.domain?.name
    ?? (await cloud.server.database.db.selectFrom('identity_domains').select('name').where('id', '=', domain).executeTakeFirstOrThrow()).name;
  assert.deepEqual(named[0]!.user, { id: u.id, name: u.name, domain: { id: domain, name: domainName } });
  assert.equal(named[0]!.scope.project!.domain!.name, domainName);
  assert.equal(named[0]!.role.name, prior.name);
  assert.equal(named[0]!.role.domain, undefined);
});

test('role_assignments: include_subtree, system filter, and bad combinations', async () => {
  const parent = await fx.project();
  const child = await fx.project('default', parent);
  const u = await fx.user();
  const role = await fx.role();
  await admin('PUT', `/projects/${child}/users/${u.id}/roles/${role.id}`);
  await admin('PUT', `/system/users/${u.id}/roles/${role.id}`);
  assert.equal((await assignments(`scope.project.id=${parent}`)).length, 0);
  const tree = await assignments(`scope.project.id=${parent}&include_subtree`);
  assert.deepEqual(tree.map((a) => a.scope.project?.id), [child]);
  const sys = await assignments(`scope.system=all&user.id=${u.id}`);
  assert.deepEqual(sys.map((a) => a.scope), [{ system: { all: true } }]);
  assert.equal((await assignments(`user.id=${u.id}`)).length, 2);
  assert.equal((await assignments(`user.id=${u.id}&effective`)).length, 1, 'Keystone leaves system grants out of the effective list');

  for (const q of [
    `user.id=${u.id}&group.id=x`, `scope.project.id=${parent}&scope.domain.id=default`, 'scope.system=all&scope.domain.id=default',
    `scope.system=all&scope.project.id=${parent}`, 'effective&group.id=x', 'effective&scope.domain.id=default&scope.OS-INHERIT:inherited_to=projects',
    'include_subtree',
  ]) {
    const r = await admin('GET', `/role_assignments?${q}`);
    assert.equal(r.status, 400, q);
    assert.equal(r.body.error.code, 400);
  }
  assert.equal((await admin('GET', '/role_assignments?scope.project.id=nope&include_subtree')).status, 404);
});

test('role_assignments policy: readers and admins, or a user asking about themself', async () => {
  const project = await fx.project();
  const u = await fx.user();
  await admin('PUT', `/projects/${project}/users/${u.id}/roles/${await fx.roleId('member')}`);
  const token = await fx.login(u, 'default', { project });
  assert.equal((await cloud.call('GET', `${V3}/role_assignments`, { token })).status, 403);
  assert.equal((await cloud.call('GET', `${V3}/role_assignments?scope.project.id=${project}`, { token })).status, 403);
  const own = await cloud.call('GET', `${V3}/role_assignments?user.id=${u.id}&effective`, { token });
  assert.equal(own.status, 200);
  assert.deepEqual(own.body.role_assignments.map((a: Assignment) => a.role.id).sort(),
    [await fx.roleId('member'), await fx.roleId('reader')].sort());
  assert.equal((await cloud.call('PUT', `${V3}/projects/${project}/users/${u.id}/roles/${await fx.roleId('admin')}`, { token })).status, 403);
  assert.equal((await cloud.call('GET', `${V3}/projects/${project}/users/${u.id}/roles`, { token })).status, 403);

  // A domain reader lists the assignments of their own domain only.
  const domain = await fx.domain();
  const inDomain = await fx.project(domain);
  const dr = await fx.user(domain);
  await admin('PUT', `/domains/${domain}/users/${dr.id}/roles/${await fx.roleId('reader')}`);
  await admin('PUT', `/projects/${inDomain}/users/${dr.id}/roles/${await fx.roleId('member')}`);
  const drToken = await fx.login(dr, domain, { domain });
  const seen = await cloud.call('GET', `${V3}/role_assignments`, { token: drToken });
  assert.equal(seen.status, 200);
  assert.equal(seen.body.role_assignments.length, 2);
  assert.ok(seen.body.role_assignments.every((a: Assignment) => a.scope.domain?.id === domain || a.scope.project?.id === inDomain));
  // A domain reader may read grants in their domain, but not change them.
  assert.equal((await cloud.call('GET', `${V3}/projects/${inDomain}/users/${dr.id}/roles`, { token: drToken })).status, 200);
  assert.equal((await cloud.call('GET', `${V3}/projects/${project}/users/${u.id}/roles`, { token: drToken })).status, 403);
  assert.equal((await cloud.call('PUT', `${V3}/projects/${inDomain}/users/${dr.id}/roles/${await fx.roleId('admin')}`, { token: drToken })).status, 403);
});
