// Reasons a person can act on: every node is counted under the first cause that rules it out, and
// causes print most common first: "0/10 nodes: 7 insufficient cpu (need 4, best free 3.5), 3 label zone!=b".

/** Why one node cannot take the instance. `free` (with `need`) is aggregated as the best over nodes. */
export interface Cause {
  text: string;
  need?: string;
  free?: number;
  format?: (n: number) => string;
}

interface Tally {
  n: number;
  cause: Cause;
  best: number;
}

export class Reasons {
  private readonly tallies = new Map<string, Tally>();
  private nodes = 0;

  add(cause: Cause): void {
    this.nodes++;
    const t = this.tallies.get(cause.text);
    if (!t) this.tallies.set(cause.text, { n: 1, cause, best: cause.free ?? -Infinity });
    else {
      t.n++;
      if (cause.free !== undefined && cause.free > t.best) t.best = cause.free;
    }
  }

  get count(): number {
    return this.nodes;
  }

  /** "7 insufficient cpu (need 4, best free 3.5), 3 label zone!=b" */
  causes(): string {
    return [...this.tallies.values()]
      .sort((a, b) => b.n - a.n || (a.cause.text < b.cause.text ? -1 : a.cause.text > b.cause.text ? 1 : 0))
      .map(({ n, cause, best }) => {
        const detail = cause.need !== undefined ? ` (need ${cause.need}, best free ${(cause.format ?? String)(Math.max(0, best))})` : '';
        return `${n} ${cause.text}${detail}`;
      })
      .join(', ');
  }

  /** "0/10 nodes: ..." (or "0/0 nodes" when there are none). */
  summary(total: number, ok = 0): string {
    const causes = this.causes();
    return `${ok}/${total} nodes${causes ? `: ${causes}` : ''}`;
  }
}

/** CPUs with at most 3 decimals: 3.5, 0.25, 4. */
export function formatCpu(cpu: number): string {
  return String(Math.round(cpu * 1000) / 1000);
}

/** Bytes in the units of the app spec: 512Mi, 7.5Gi. */
export function formatBytes(bytes: number): string {
  const units = ['', 'Ki', 'Mi', 'Gi', 'Ti', 'Pi'];
  let v = bytes;
  let k = 0;
  while (Math.abs(v) >= 1024 && k < units.length - 1) {
    v /= 1024;
    k++;
  }
  return `${Math.round(v * 10) / 10}${units[k]}`;
}
