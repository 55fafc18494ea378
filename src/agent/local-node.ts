// What this agent says about its host, kept current: the node description (capacity, runtimes,
// address; node-info.ts), which runtimes can be used right now, the host ports other programs
// were found holding, and whether the node is still recovering from a reboot. The hello and every
// heartbeat send `info` as it is at that moment.
import type { NodeInfo } from '../model/types.js';
import type { Runtime } from '../runtime/runtime.js';
import { describeNode, type NodeIdentity } from './node-info.js';
import { TakenPortList, type TakenPort } from './ports.js';

export class LocalNode {
  private readonly portsTaken = new TakenPortList();

  private constructor(
    private readonly identity: NodeIdentity,
    private readonly runtimes: Runtime[],
    public info: NodeInfo,
    /** The runtimes that answered their probe: the only ones listed and started on. */
    public usable: Runtime[],
  ) {}

  static async describe(identity: NodeIdentity, runtimes: Runtime[]): Promise<LocalNode> {
    const { info, usable } = await describeNode(identity, runtimes);
    return new LocalNode(identity, runtimes, info, usable);
  }

  get name(): string {
    return this.info.name;
  }

  /** Probes the runtimes again (one may have come or gone) and describes the host anew. */
  async refresh(): Promise<void> {
    const { info, usable } = await describeNode(this.identity, this.runtimes);
    this.info = { ...info, recovering: this.info.recovering, portsTaken: this.portsTaken.list() };
    this.usable = usable;
  }

  notePortsTaken(ports: TakenPort[]): void {
    this.portsTaken.add(ports);
    this.info = { ...this.info, portsTaken: this.portsTaken.list() };
  }

  setRecovering(recovering: boolean): void {
    this.info = { ...this.info, recovering };
  }
}
