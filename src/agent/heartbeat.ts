// The agent's heartbeat: every few seconds it describes the node anew (a runtime may have come or
// gone), tells the server it is alive with its endpoints (the registry leases hang on it) and what
// it runs unassigned, and now and then every status again, so a report the server lost is repaired.
// The server's welcome says how often it needs to hear from the node; never less often than the
// agent's own setting.

export class Heartbeat {
  private timer: NodeJS.Timeout;

  constructor(
    private readonly everyMs: number | undefined,
    private readonly beat: () => Promise<void>,
    private readonly log: (line: string) => void,
  ) {
    this.timer = setInterval(() => this.once(), everyMs ?? 5000);
  }

  /** The server's interval (from its welcome). */
  follow(serverMs: number): void {
    clearInterval(this.timer);
    this.timer = setInterval(() => this.once(), Math.min(serverMs, this.everyMs ?? serverMs));
  }

  stop(): void {
    clearInterval(this.timer);
  }

  // A failed heartbeat (the runtimes could not be probed) is logged; the next one tries again.
  private once(): void {
    this.beat().catch((err: Error) => this.log(`heartbeat failed: ${err.message}`));
  }
}
