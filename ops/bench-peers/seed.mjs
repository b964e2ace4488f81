// Seeds N items into one server and writes their ids, one per line, to a file.
// Usage: node seed.mjs <objectstack|pocketbase> <baseUrl> <n> <idsFile> [token] [owner]
// (owner: a value for an `owner` field on every item; empty or absent: none)
import { writeFileSync } from 'node:fs';

const [, , kind, baseUrl, n, idsFile, token, owner] = process.argv;
const count = Number(n);
const statuses = ['open', 'done', 'late'];
const headers = { 'content-type': 'application/json', ...(token ? { authorization: token } : {}) };
const url = kind === 'pocketbase' ? `${baseUrl}/api/collections/items/records` : `${baseUrl}/api/v1/data/item`;
const ids = new Array(count);
let next = 0;

async function worker() {
  while (next < count) {
    const i = next++;
    const body = { title: `item ${i}`, status: statuses[i % 3], amount: (i * 7919) % 10000, category: `c${i % 17}`, ...(owner ? { owner } : {}) };
    const res = await fetch(url, { method: 'POST', headers, body: JSON.stringify(body) });
    const json = await res.json();
    if (!res.ok) throw new Error(`${res.status} ${JSON.stringify(json)}`);
    ids[i] = kind === 'pocketbase' ? json.id : (json.data?.id ?? json.id);
  }
}

await Promise.all(Array.from({ length: 32 }, worker));
writeFileSync(idsFile, ids.join('\n') + '\n');
console.log(`seeded ${count} items into ${kind}`);
