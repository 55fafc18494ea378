// After a host reboot the instances this node ran come back first: the node reports itself
// `recovering`, and the scheduler places nothing new on it until every instance it is to run is
// running again (or has failed, or is kept down by its policy), or RECOVERY_LIMIT_MS has passed.
import type { Supervisor } from './supervisor.js';

const RECOVERY_LIMIT_MS = 120_000;

export class RebootRecovery {
  private readonly since = Date.now();

  constructor(private active: boolean) {}

  get recovering(): boolean {
    return this.active;
  }

  /** True once, at the moment the recovery ends. */
  ended(supervisors: Iterable<Supervisor>, now = Date.now()): boolean {
    if (!this.active) return false;
    const waiting = [...supervisors].some((s) => s.instance.desired === 'running' && !['running', 'failed', 'exited'].includes(s.status.state));
    if (waiting && now - this.since < RECOVERY_LIMIT_MS) return false;
    this.active = false;
    return true;
  }
}
