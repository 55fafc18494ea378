// Shipping the lines of this node's instances to their apps' sinks (log-sinks.ts): for each
// instance with `logShipping` that has started here, a followed log stream from its runtime (new
// lines only) feeds one sink per spec entry. Each tick syncs the streams with the assignments and
// reports new drops as an `instance.logs_dropped` event (agents speak only of instance.* and node.*).
import type { Readable } from 'node:stream';
import type { Instance } from '../model/types.js';
import type { GantryEvent } from '../model/types.js';
import type { LogLine, Runtime } from '../runtime/runtime.js';
import { openSink, type Sink } from './log-sinks.js';

interface Shipment {
  stream: Readable | undefined;
  sinks: Sink[];
  /** Drops already reported, per sink. */
  reported: number[];
  opening: boolean;
}

export class LogShipping {
  private readonly shipments = new Map<string, Shipment>();

  constructor(
    private readonly runtimeOf: (instanceId: string) => Runtime | undefined,
    private readonly nodeName: () => string,
    private readonly event: (event: Omit<GantryEvent, 'time'>) => void,
    private readonly log: (line: string) => void,
  ) {}

  /** `started`: whether the instance has been started here (its runtime has logs for it). */
  sync(instances: Iterable<Instance>, started: (id: string) => boolean): void {
    const wanted = new Map<string, Instance>();
    for (const instance of instances) if (instance.logShipping?.ship.length && started(instance.id)) wanted.set(instance.id, instance);
    for (const [id, shipment] of this.shipments) {
      this.reportDrops(id, shipment, wanted.get(id));
      if (!wanted.has(id)) this.stop(id);
    }
    for (const instance of wanted.values()) if (!this.shipments.has(instance.id)) this.start(instance);
  }

  private start(instance: Instance): void {
    const runtime = this.runtimeOf(instance.id);
    if (!runtime) return;
    const shipping = instance.logShipping!;
    const shipment: Shipment = { stream: undefined, sinks: shipping.ship.map((spec) => openSink(spec, this.log)), reported: shipping.ship.map(() => 0), opening: true };
    this.shipments.set(instance.id, shipment);
    const fields = { node: this.nodeName(), app: instance.app, env: instance.env, team: shipping.team, entry: instance.entry, instance: instance.id };
    runtime.logs(instance.id, { follow: true, tail: 0 }).then(
      (stream) => {
        shipment.opening = false;
        if (this.shipments.get(instance.id) !== shipment) return void stream.destroy();
        shipment.stream = stream;
        stream.on('data', (line: LogLine) => {
          const shipped = { ...fields, time: line.time ?? Date.now(), stream: line.stream, text: line.text };
          for (const sink of shipment.sinks) sink.push(shipped);
        });
        // Ended (the instance was removed, or its runtime failed): the next sync starts again if it is still here.
        stream.on('close', () => {
          if (this.shipments.get(instance.id) === shipment) this.stop(instance.id);
        });
        stream.on('error', (err) => this.log(`log shipping of ${instance.id}: ${err.message}`));
      },
      (err: Error) => {
        this.log(`log shipping of ${instance.id} could not read its logs: ${err.message}`);
        if (this.shipments.get(instance.id) === shipment) this.stop(instance.id);
      },
    );
  }

  private reportDrops(id: string, shipment: Shipment, instance: Instance | undefined): void {
    shipment.sinks.forEach((sink, i) => {
      const dropped = sink.dropped - shipment.reported[i]!;
      if (dropped <= 0) return;
      shipment.reported[i] = sink.dropped;
      this.event({
        level: 'warning',
        type: 'instance.logs_dropped',
        ...(instance ? { app: instance.app, entry: instance.entry } : {}),
        instance: id,
        node: this.nodeName(),
        message: `${dropped} lines of ${id} not shipped to ${sink.describe}: its queue was full (${sink.dropped} in all)`,
        data: { sink: sink.describe, dropped, total: sink.dropped },
      });
    });
  }

  private stop(id: string): void {
    const shipment = this.shipments.get(id);
    if (!shipment) return;
    this.shipments.delete(id);
    shipment.stream?.destroy();
    for (const sink of shipment.sinks) sink.close();
  }

  close(): void {
    for (const id of [...this.shipments.keys()]) this.stop(id);
  }
}
