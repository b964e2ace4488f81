// Drives a running objectstack-rs server with the official client.
// Usage: node compat.mjs <baseUrl> <client version: 3.0.6 | 4.0.4>
// Exits non-zero, naming the failed check, when the server and the client disagree.
import assert from 'node:assert/strict';
import { checker, rejects } from './checks.mjs';

const [, , baseUrl, version] = process.argv;
const { ObjectStackClient } = await import(`client-${version}`);
const client = new ObjectStackClient({ baseUrl });
const tag = `v${version.replaceAll('.', '_')}_${Date.now()}`;

const check = checker(version);

await check('discovery', async () => {
  const discovery = await client.connect();
  assert.equal(discovery.routes.data, '/api/v1/data');
  assert.equal(discovery.routes.metadata, '/api/v1/meta');
});

await check('metadata', async () => {
  const types = await client.meta.getTypes();
  assert.ok(types.types.includes('object'));
  const items = await client.meta.getItems('object');
  assert.ok(items.items.some((o) => o.name === 'order'));
  const item = await client.meta.getItem('object', 'order');
  assert.equal(item.name, 'order');
  const cached = await client.meta.getCached('order');
  assert.equal(cached.data.name, 'order');
  assert.ok(cached.etag.value.length > 4);
  const again = await fetch(`${baseUrl}/api/v1/meta/object/order`, { headers: { 'If-None-Match': `"${cached.etag.value}"` } });
  assert.equal(again.status, 304);
});

const ids = [];
await check('create / get / update / delete', async () => {
  const created = await client.data.create('order', { title: `${tag} first`, amount: 12.5, customer: 'ada' });
  assert.equal(created.object, 'order');
  assert.ok(created.id);
  assert.equal(created.record.title, `${tag} first`);
  assert.equal(created.record.status, 'open');
  ids.push(created.id);
  const got = await client.data.get('order', created.id);
  assert.equal(got.record.id, created.id);
  assert.equal(got.record.amount, 12.5);
  const updated = await client.data.update('order', created.id, { status: 'paid' });
  assert.equal(updated.record.status, 'paid');
  const second = await client.data.create('order', { title: `${tag} second`, amount: 30 });
  const removed = await client.data.delete('order', second.id);
  assert.equal(removed.success ?? removed.deleted, true);
  await rejects(client.data.get('order', second.id), 404, 'record_not_found');
});

await check('createMany, batch, updateMany, deleteMany', async () => {
  const many = await client.data.createMany('order', Array.from({ length: 12 }, (_, i) => ({ title: `${tag} bulk ${String(i).padStart(2, '0')}`, amount: i, customer: i % 2 ? 'ada' : 'bob' })));
  const records = Array.isArray(many) ? many : many.records;
  assert.equal(records.length, 12);
  ids.push(...records.map((r) => r.id));
  const batch = await client.data.batch('order', { operation: 'update', records: [{ id: records[0].id, data: { status: 'paid' } }, { id: records[1].id, data: { status: 'paid' } }], options: { atomic: true, returnRecords: true } });
  assert.equal(batch.success, true);
  assert.equal(batch.succeeded, 2);
  const updated = await client.data.updateMany('order', [{ id: records[2].id, data: { amount: 100 } }]);
  assert.equal(updated.succeeded, 1);
  const deleted = await client.data.deleteMany('order', [records[11].id]);
  assert.equal(deleted.succeeded, 1);
  ids.pop();
  const atomic = await client.data.batch('order', { operation: 'create', records: [{ data: { title: `${tag} atomic ok` } }, { data: { title: 42 } }], options: { atomic: true } });
  assert.equal(atomic.success, false);
  const after = await client.data.query('order', { where: { title: `${tag} atomic ok` } });
  assert.equal(after.total, 0, 'atomic batches are all or nothing');
});

await check('find: filters, sort, paging, select', async () => {
  const arrayFilter = await client.data.find('order', { filters: [['title', 'startswith', `${tag} bulk`], ['amount', '>=', 5]], sort: '-amount', top: 3, skip: 1, select: ['title', 'amount'] });
  assert.equal(arrayFilter.total, 7, 'true total: amounts 5..10, and 100 (updated); 11 was deleted');
  assert.equal(arrayFilter.hasMore, true);
  assert.deepEqual(arrayFilter.records.map((r) => r.amount), [10, 9, 8]);
  assert.deepEqual(Object.keys(arrayFilter.records[0]).sort(), ['amount', 'id', 'title']);
  const objectFilter = await client.data.find('order', { filters: { customer: 'bob', status: 'open' }, sort: ['title'], top: 100 });
  assert.ok(objectFilter.records.length >= 1);
  assert.ok(objectFilter.records.every((r) => r.customer === 'bob' && r.status === 'open'));
  const orFilter = await client.data.find('order', { filters: [['title', '=', `${tag} bulk 00`], 'or', ['title', '=', `${tag} bulk 01`]] });
  assert.equal(orFilter.total, 2, 'infix or is honoured');
  const sorted = await client.data.find('order', { filters: [['title', 'startswith', `${tag} bulk`]], sort: [{ field: 'amount', order: 'desc' }], top: 2 });
  assert.deepEqual(sorted.records.map((r) => r.amount), [100, 10]);
});

await check('query: where (object form), expand, aggregates', async () => {
  const result = await client.data.query('order', { where: { title: { $startsWith: `${tag} bulk` }, customer: 'ada' }, orderBy: [{ field: 'amount', order: 'asc' }], limit: 2, expand: { customer: { object: 'customer' } } });
  assert.equal(result.records.length, 2);
  assert.equal(result.records[0].customer.name, 'Ada Lovelace');
  const grouped = await client.data.query('order', { where: { title: { $startsWith: `${tag} bulk` } }, groupBy: ['customer'], aggregations: [{ function: 'count', alias: 'n' }, { function: 'sum', field: 'amount', alias: 'total' }], orderBy: [{ field: 'customer', order: 'asc' }] });
  assert.deepEqual(grouped.records.map((r) => [r.customer, r.n]), [['ada', 5], ['bob', 6]]);
});

await check('errors', async () => {
  const invalid = await rejects(client.data.create('order', { title: 7, ghost: true }), 400);
  assert.match(invalid.message, /title|ghost/);
  await rejects(client.data.create('nothing_here', { a: 1 }), 404, 'object_not_found');
  await rejects(client.data.find('nothing_here'), 404, 'object_not_found');
  await rejects(client.data.get('order', 'no-such-id'), 404, 'record_not_found');
  await rejects(client.data.update('order', 'no-such-id', { title: 'x' }), 404, 'record_not_found');
  await rejects(client.data.delete('order', 'no-such-id'), 404, 'record_not_found');
  await rejects(client.data.find('order', { filters: [['amount', 'approximately', 1]] }), 400, 'invalid_filter');
  await rejects(client.data.find('order', { filters: { ghost: 1 } }), 400, 'invalid_query');
});

console.log(`client ${version}: all checks passed against ${baseUrl}`);
