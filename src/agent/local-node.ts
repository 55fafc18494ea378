// What this agent says about its host, kept current: the node description (capacity, runtimes,
// address; node-info.ts), which runtimes can be used right now, the host ports other programs
// were found holding, whether the node is still recovering from a reboot, and the disk its images
// take (image-usage.ts). The hello and every heartbeat send `info` as it is at that moment.
import type { NodeInfo } from '../model/types.js';
import type { Runtime } from '../runtime/runtime.js';
import { ImageDiskUsage } from './image-usage.js';
import { describeNode, type NodeIdentity } from './node-info.js';
import { TakenPortList, type TakenPort } from './ports.js';

export class LocalNode {
  private readonly portsTaken = new TakenPortList();
  private readonly imageUsage = new ImageDiskUsage();

  private constructor(
    private readonly identity: NodeIdentity,
    private readonly runtimes: Runtime[],
    public info: NodeInfo,
    /** The runtimes that answered their probe: the only ones listed and started on. */
    public usable: Runtime[],
  ) {}

  static async describe(identity: NodeIdentity, runtimes: Runtime[]): Promise<LocalNode> {
    const { info, usable } = await describeNode(identity, runtimes);
    const node = new LocalNode(identity, runtimes, info, usable);
    const images = await node.imageUsage.current(usable);
    if (images) node.info = { ...node.info, images };
    return node;
  }

  get name(): string {
    return this.info.name;
  }

  /** Probes the runtimes again (one may have come or gone) and describes the host anew. */
  async refresh(): Promise<void> {
    const { info, usable } = await describeNode(this.identity, this.runtimes);
    const images = await this.imageUsage.current(usable);
    this.info = { ...info, recovering: this.info.recovering, portsTaken: this.portsTaken.list(), ...(images ? { images } : {}) };
    this.usable = usable;
  }

  notePortsTaken(ports: TakenPort[]): void {
    this.portsTaken.add(ports);
    this.info = { ...this.info, portsTaken: this.portsTaken.list() };
  }

  /** Images were removed (or came): the next refresh counts them again. */
  imagesChanged(): void {
    this.imageUsage.changed();
  }

  setRecovering(recovering: boolean): void {
    this.info = { ...this.info, recovering };
  }
}
