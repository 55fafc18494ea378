// The process runtime's list(), made cheap enough to run every agent tick on hundreds of
// instances. Reading and parsing every record.json, then probing /proc, one promise at a time,
// cost the agent 13% of a core at 200 instances; the records change only when an instance is
// started, restarted, moved to other cores or removed, so they are kept here between listings.
//
// A listing reads the state dir (which instances exist), stats each record.json (a changed file,
// one another runtime object or a person wrote or deleted, is read again: an atomic rewrite gives
// it a new inode) and, for each instance believed running, its wrapper's /proc/<pid>/stat. Those
// are synchronous on purpose: they never wait for a disk (the dentries are cached, /proc is made
// on the read), and each costs microseconds where a promise-based read costs trips through the
// thread pool. What an instance looks like (its labels, times, ids) is built once per record, and
// once more when it exits (then its exit file and OOM count are read, again only when they change).
import { readdirSync, readFileSync, statSync, type Stats } from 'node:fs';
import { join } from 'node:path';
import { oomKills } from './cgroups.js';
import { isAliveNow } from './process-proc.js';
import { ID, instanceView, readExitFile, type ProcessRecord } from './process-records.js';
import type { RuntimeInstance } from './runtime.js';

/** Identifies one version of a file: a rewrite (new inode), an edit (mtime, size) or a deletion changes it. */
type Stamp = string;

interface Known {
  recordStamp: Stamp;
  record: ProcessRecord;
  running: RuntimeInstance;
  exited?: { exitStamp: Stamp; view: RuntimeInstance };
}

function stampOf(stats: Stats | undefined): Stamp {
  return stats ? `${stats.ino}:${stats.mtimeMs}:${stats.ctimeMs}:${stats.size}` : 'none';
}

export class ProcessListing {
  private readonly known = new Map<string, Known>();

  constructor(private readonly stateDir: string) {}

  /** The records of the instances the last listing found running (usage sampling reads from them). */
  runningRecords(): ProcessRecord[] {
    return [...this.known.values()].filter((known) => !known.exited).map((known) => known.record);
  }

  async list(): Promise<RuntimeInstance[]> {
    let names: string[];
    try {
      names = readdirSync(this.stateDir);
    } catch {
      this.known.clear();
      return [];
    }
    const present = new Set<string>();
    const out: RuntimeInstance[] = [];
    for (const name of names.sort()) {
      if (!ID.test(name)) continue;
      const known = this.current(name);
      if (!known) continue;
      present.add(name);
      const { record } = known;
      out.push(isAliveNow(record.pid, record.startTime) ? known.running : await this.exitedView(name, known));
    }
    for (const name of this.known.keys()) if (!present.has(name)) this.known.delete(name);
    return out;
  }

  /** The record as it is on disk now (read again only when its file changed); undefined without one. */
  private current(name: string): Known | undefined {
    const dir = join(this.stateDir, name);
    const recordStamp = stampOf(statSync(join(dir, 'record.json'), { throwIfNoEntry: false }));
    const known = this.known.get(name);
    if (known?.recordStamp === recordStamp) return known;
    this.known.delete(name);
    if (recordStamp === 'none') return undefined;
    let record: ProcessRecord;
    try {
      record = JSON.parse(readFileSync(join(dir, 'record.json'), 'utf8')) as ProcessRecord;
    } catch {
      return undefined; // half a record (being replaced): the next listing reads it whole
    }
    const fresh: Known = { recordStamp, record, running: instanceView(record, true, undefined, false) };
    this.known.set(name, fresh);
    return fresh;
  }

  private async exitedView(name: string, known: Known): Promise<RuntimeInstance> {
    const exitStamp = stampOf(statSync(join(this.stateDir, name, 'exit'), { throwIfNoEntry: false }));
    if (known.exited?.exitStamp === exitStamp) return known.exited.view;
    const exit = await readExitFile(this.stateDir, name);
    const exited = { exitStamp, view: instanceView(known.record, false, exit, (await oomKills(known.record.cgroups)) > 0) };
    known.exited = exited;
    return exited.view;
  }
}
