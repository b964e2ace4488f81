// The official client's authentication flow against a server whose app declares permissions.
// Usage: node auth.mjs <baseUrl> <client version: 3.0.6 | 4.0.4>
// Exits non-zero, naming the failed check, when the server and the client disagree.
import assert from 'node:assert/strict';
import { checker, rejects } from './checks.mjs';

const [, , baseUrl, version] = process.argv;
const { ObjectStackClient } = await import(`client-${version}`);
const client = new ObjectStackClient({ baseUrl });
const tag = `v${version.replaceAll('.', '_')}_${Date.now()}`;
const email = `${tag}@example.com`;
const password = 'a-long-enough-password';

const check = checker(version);

await check('discovery reports auth', async () => {
  const discovery = await client.connect();
  assert.equal(discovery.routes.auth, '/api/v1/auth');
  await rejects(client.data.find('order'), 401, 'unauthenticated');
});

let userId;
await check('register, then data calls with the token', async () => {
  const registered = await client.auth.register({ email, password, name: 'Client' });
  assert.ok(registered.data.token.length >= 40);
  assert.equal(registered.data.user.email, email);
  assert.equal(registered.data.user.password, undefined);
  userId = registered.data.user.id;
  const created = await client.data.create('order', { title: `${tag} mine` });
  assert.equal(created.record.owner, userId);
  const listed = await client.data.find('order');
  assert.deepEqual(listed.records.map((r) => r.title), [`${tag} mine`]);
  const me = await client.auth.me();
  assert.equal(me.data.user.id, userId);
});

await check('logout revokes, login restores', async () => {
  await client.auth.logout();
  await rejects(client.data.find('order'), 401, 'unauthenticated');
  await rejects(client.auth.login({ email, password: 'not-the-password' }), 401, 'invalid_credentials');
  const login = await client.auth.login({ email, password });
  assert.ok(login.data.token);
  const listed = await client.data.find('order');
  assert.equal(listed.records.length, 1);
  // Someone else's order (the seed's) is neither listed nor readable.
  await rejects(client.data.get('order', 'seeded'), 404, 'record_not_found');
});

console.log(`client ${version}: all auth checks passed against ${baseUrl}`);
