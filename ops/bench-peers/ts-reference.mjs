// The official TypeScript reference server (4.0.4, in-memory, nothing persisted)
// serving the benchmark's `item` object on 127.0.0.1:<port>. Used by ops/bench http.
import { ObjectKernel, DriverPlugin, AppPlugin } from '@objectstack/runtime';
import { ObjectQLPlugin } from '@objectstack/objectql';
import { InMemoryDriver } from '@objectstack/driver-memory';
import { HonoServerPlugin } from '@objectstack/plugin-hono-server';
import { createRestApiPlugin } from '@objectstack/rest';
import { readFileSync } from 'node:fs';

const port = Number(process.argv[2] ?? 18082);
const app = JSON.parse(readFileSync(new URL('./bench-app.json', import.meta.url)));
const kernel = new ObjectKernel({ logger: { level: 'error' } });
await kernel.use(new ObjectQLPlugin());
await kernel.use(new DriverPlugin(new InMemoryDriver({ persistence: false }), 'memory'));
await kernel.use(new AppPlugin(app));
await kernel.use(new HonoServerPlugin({ port, host: '127.0.0.1' }));
await kernel.use(createRestApiPlugin());
await kernel.bootstrap();
console.log(`ts-reference listening on ${port}`);
