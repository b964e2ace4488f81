// Webhook delivery latency: a receiver on 127.0.0.1 and creates at a fixed
// rate against an objectstack-rs server whose app has a webhook pointing at
// the receiver. Latency = receipt time - the change's occurredAt (its commit,
// to the millisecond). Bounded: RATE creates/s for SECONDS, then at most 15 s
// for the deliveries to drain.
// Usage: node automation-load.mjs <server base> <receiver port> <rate> <seconds>
import http from 'node:http';

const [base, port, rate, seconds] = [process.argv[2], Number(process.argv[3]), Number(process.argv[4]), Number(process.argv[5])];
const latencies = [];
const ids = new Set();
const receiver = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const now = Date.now();
    const body = JSON.parse(Buffer.concat(chunks).toString());
    if (!ids.has(body.deliveryId)) {
      ids.add(body.deliveryId);
      latencies.push(now - Date.parse(body.occurredAt));
    }
    res.writeHead(204).end();
  });
});
await new Promise((resolve) => receiver.listen(port, '127.0.0.1', resolve));

const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
let created = 0, failed = 0, n = 0;
function create() {
  n += 1;
  const body = JSON.stringify({ title: `hook ${n}`, status: 'open', amount: n % 1000, category: 'c1' });
  const req = http.request(`${base}/api/v1/data/item`, { method: 'POST', agent, headers: { 'content-type': 'application/json' } }, (res) => {
    res.resume();
    res.on('end', () => { if (res.statusCode === 201) created += 1; else failed += 1; });
  });
  req.on('error', () => { failed += 1; });
  req.end(body);
}
const started = Date.now();
const tick = 10; // ms
await new Promise((resolve) => {
  const timer = setInterval(() => {
    const due = Math.floor(((Date.now() - started) / 1000) * rate) - n;
    for (let i = 0; i < due; i++) create();
    if (Date.now() - started >= seconds * 1000) { clearInterval(timer); resolve(); }
  }, tick);
});
const drainStart = Date.now();
while ((ids.size < created + failed || ids.size < n - failed) && Date.now() - drainStart < 15000) {
  await new Promise((r) => setTimeout(r, 50));
}
latencies.sort((a, b) => a - b);
const q = (p) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))];
console.log(JSON.stringify({ sent: n, created, failed, delivered: ids.size, p50: q(0.5), p99: q(0.99), max: latencies[latencies.length - 1] }));
receiver.close();
agent.destroy();
process.exit(0);
