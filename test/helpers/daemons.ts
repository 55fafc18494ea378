// Debian daemons the tests start for real (Prometheus, Alertmanager) from the configurations the
// docs show, and a webhook receiver that records what it is sent.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** `text` with every `from` replaced, insisting it occurs `times` times (the example changed: fix the test with it). */
export function replaced(text: string, from: string, to: string, times: number, file: string): string {
  assert.equal(text.split(from).length - 1, times, `${file} should hold "${from}" ${times} time(s)`);
  return text.replaceAll(from, to);
}

/** A daemon whose last lines of output land in `output` when it exits (the cluster's, shown when a test fails). */
export class Daemon {
  private readonly child: ChildProcess;
  private readonly said: string[] = [];

  constructor(name: string, program: string, args: string[], output: string[]) {
    this.child = spawn(program, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    for (const stream of [this.child.stdout!, this.child.stderr!]) stream.on('data', (d) => this.said.push(...String(d).trimEnd().split('\n').map((l) => `[${name}] ${l}`)));
    this.child.once('exit', () => output.push(...this.said.slice(-40)));
  }

  async stop(): Promise<void> {
    if (!this.child.pid || this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.child.kill('SIGTERM');
    await exited;
  }
}

export interface Received { path: string; body: any; at: number }

/** An HTTP server on loopback that answers 200 to every POST and keeps its path and JSON body. */
export class WebhookReceiver {
  readonly received: Received[] = [];
  private server: Server | undefined;
  port = 0;

  async start(): Promise<this> {
    this.server = createServer((req, res) => {
      let text = '';
      req.on('data', (c) => (text += c));
      req.on('end', () => {
        this.received.push({ path: req.url!, body: JSON.parse(text), at: Date.now() });
        res.writeHead(200).end();
      });
    });
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', r));
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  close(): void {
    this.server?.close();
  }
}
