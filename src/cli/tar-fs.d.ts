// The part of tar-fs (a dependency of dockerode; no @types package is installed) that
// build-context.ts uses: packing a directory into a tar stream.
declare module 'tar-fs' {
  import type { Readable } from 'node:stream';

  export interface PackHeader {
    name: string;
    mode: number;
    mtime: Date;
    size: number;
    type: string;
    uid: number;
    gid: number;
    linkname?: string;
  }

  export interface PackOptions {
    /** Called with the absolute path of each entry below the directory; true leaves it (and all under it) out. */
    ignore?: (name: string) => boolean;
    map?: (header: PackHeader) => PackHeader | undefined;
    /** Bits cleared from every mode (default: the process's umask). */
    umask?: number;
    /** false: skip entries tar cannot hold (FIFOs, devices) instead of failing. */
    strict?: boolean;
    sort?: boolean;
    /** What to pack, relative to the directory (default: the directory itself, as "."). Directories are packed with what is under them. */
    entries?: string[];
  }

  export function pack(cwd: string, options?: PackOptions): Readable;
}
