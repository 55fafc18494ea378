// Child process of bench/dns.ts: Gantry's DnsServer over the benchmark registry. Prints
// {"port": P} once listening; stops on SIGTERM.
import { StaticEndpointSource } from '../../src/discovery/source.js';
import { DnsServer } from '../../src/discovery/dns.js';
import { benchEndpoints } from './names.js';

const source = new StaticEndpointSource();
for (const endpoint of benchEndpoints(Number(process.env.ENTRIES ?? 1000), Number(process.env.PER_ENTRY ?? 3))) source.set(endpoint);
const server = new DnsServer(source, { port: Number(process.env.PORT ?? 0), domain: process.env.DOMAIN ?? 'gantry.local', workers: Number(process.env.WORKERS ?? 0) });
const { port } = await server.start();
process.stdout.write(`${JSON.stringify({ port })}\n`);
process.on('SIGTERM', () => void server.stop().then(() => process.exit(0)));
