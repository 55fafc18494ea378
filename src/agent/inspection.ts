// Node inspection on the agent: runs the checks of the server's policy every interval (5 min by
// default) and whenever the server asks (`inspect`), and reports the results (`inspected`).
// The clock offset is measured against the server's time: a `clock.ask` answered with the
// server's clock, taken as the middle of the round trip, so the agent's own word about its
// clock is never what is judged.
import { randomUUID } from 'node:crypto';
import type { AgentToServer } from '../model/agent-protocol.js';
import type { CheckResult, InspectPolicy } from '../model/inspection.js';
import { cgroupCheck, clockCheck, dockerCheck, fileLimitCheck, kernelCheck, memoryChecks, sysctlChecks, uptimeCheck, usageChecks } from './inspection-checks.js';

/** How long the server has to answer a clock.ask. */
const CLOCK_ANSWER_MS = 5000;

export interface InspectorOptions {
  send(message: AgentToServer): boolean;
  nodeName(): string;
  /** Whether the node runs Docker (otherwise the docker check is skipped). */
  hasDocker(): boolean;
  dockerSocket?: string;
}

export class NodeInspector {
  private policy: InspectPolicy | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  /** Clock questions waiting for the server's answer, by requestId. */
  private readonly clockAsks = new Map<string, (serverTime: number) => void>();

  constructor(private readonly options: InspectorOptions) {}

  /** The server's policy (sent on every connection): checks run now, then every interval. */
  follow(policy: InspectPolicy): void {
    this.policy = policy;
    this.schedule(0);
  }

  /** The server asks for a run now. */
  request(requestId: string): void {
    void this.run(requestId);
  }

  /** The server's answer to a clock.ask. */
  clock(requestId: string, serverTime: number): void {
    const answer = this.clockAsks.get(requestId);
    this.clockAsks.delete(requestId);
    answer?.(serverTime);
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  private schedule(ms: number): void {
    clearTimeout(this.timer);
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.run().finally(() => this.schedule(this.policy?.intervalMs ?? 0)), ms);
    this.timer.unref();
  }

  private async run(requestId?: string): Promise<void> {
    const policy = this.policy;
    // Asked before the policy came (it follows the welcome): nothing to check against yet.
    const results = policy ? await this.check(policy) : [];
    this.options.send({ type: 'inspected', node: this.options.nodeName(), ...(requestId ? { requestId } : {}), results });
  }

  private async check(policy: InspectPolicy): Promise<CheckResult[]> {
    const results: CheckResult[] = [];
    if (policy.kernel) results.push(kernelCheck(policy.kernel));
    if (policy.cgroup) results.push(cgroupCheck(policy.cgroup));
    if (policy.docker && this.options.hasDocker()) results.push(await dockerCheck(policy.docker, this.options.dockerSocket));
    results.push(...usageChecks('disk', policy.disk), ...usageChecks('inodes', policy.inodes));
    if (policy.memory) results.push(...memoryChecks(policy.memory));
    if (policy.clockOffset) results.push(clockCheck(policy.clockOffset, await this.clockOffset()));
    if (policy.uptime) results.push(uptimeCheck(policy.uptime));
    if (policy.fileLimit) results.push(fileLimitCheck(policy.fileLimit));
    results.push(...sysctlChecks(policy.sysctls));
    return results;
  }

  /** This node's clock minus the server's (ms), the server's time taken at the middle of the round trip. */
  private clockOffset(): Promise<number | Error> {
    const requestId = randomUUID();
    const askedAt = Date.now();
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.clockAsks.delete(requestId);
        resolve(new Error(`the server did not tell its time within ${CLOCK_ANSWER_MS / 1000}s`));
      }, CLOCK_ANSWER_MS);
      this.clockAsks.set(requestId, (serverTime) => {
        clearTimeout(timer);
        const answeredAt = Date.now();
        resolve(Math.round((askedAt + answeredAt) / 2 - serverTime));
      });
      if (!this.options.send({ type: 'clock.ask', requestId })) {
        clearTimeout(timer);
        this.clockAsks.delete(requestId);
        resolve(new Error('not connected to the server'));
      }
    });
  }
}
