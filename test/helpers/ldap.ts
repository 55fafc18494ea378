// A private OpenLDAP for the company directory tests: Debian's slapd with a slapd.conf made
// here (back_mdb from Debian's module path, the memberof overlay), listening on a free port of
// 127.0.0.1, its database in a temp directory, in the foreground (-d 0) so it is our child and
// is stopped by its pid. With a certificate it also serves StartTLS on ldap:// and ldaps:// on a
// second port. Entries go in with ldapadd and change with ldapmodify, as the
// directory's own admin (the rootdn) would do it.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, until } from './cluster.js';

export const SUFFIX = 'dc=example,dc=org';
const ROOT_DN = `cn=admin,${SUFFIX}`;
const ROOT_PASSWORD = 'directory admin password';
export const SERVICE_DN = `cn=gantry,ou=services,${SUFFIX}`;
export const SERVICE_PASSWORD = 'gantry service account password';
const MODULES = process.env.GANTRY_TEST_LDAP_MODULES ?? '/usr/lib/ldap';

export const userDn = (uid: string, ou = 'people') => `uid=${uid},ou=${ou},${SUFFIX}`;
export const groupDn = (cn: string) => `cn=${cn},ou=groups,${SUFFIX}`;

export interface Person {
  uid: string;
  password: string;
  ou?: string;
}

/** The organisation's skeleton: who the service account is, where people and groups live. */
function baseEntries(): string {
  return [
    `dn: ${SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example Ltd`,
    ...['people', 'contractors', 'groups', 'services'].map((ou) => `dn: ou=${ou},${SUFFIX}\nobjectClass: organizationalUnit\nou: ${ou}`),
    `dn: ${SERVICE_DN}\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\ncn: gantry\nuserPassword: ${SERVICE_PASSWORD}`,
  ].join('\n\n');
}

export function personEntry(person: Person): string {
  return `dn: ${userDn(person.uid, person.ou)}\nobjectClass: inetOrgPerson\nuid: ${person.uid}\ncn: ${person.uid}\nsn: ${person.uid}\nuserPassword: ${person.password}`;
}

export function groupEntry(cn: string, members: string[]): string {
  return `dn: ${groupDn(cn)}\nobjectClass: groupOfNames\ncn: ${cn}\n${members.map((m) => `member: ${m}`).join('\n')}`;
}

export class TestSlapd {
  readonly dir = mkdtempSync(join(tmpdir(), 'gantry-slapd-'));
  port = 0;
  tlsPort = 0;
  private child: ChildProcess | undefined;
  private output = '';

  /** `tls`: PEM files of the server's certificate (for 127.0.0.1) and key. */
  constructor(private readonly tls?: { cert: string; key: string }) {}

  get url(): string {
    return `ldap://127.0.0.1:${this.port}`;
  }

  get ldapsUrl(): string {
    return `ldaps://127.0.0.1:${this.tlsPort}`;
  }

  /** Starts slapd (again, on the same port and database, after stop()). */
  async start(): Promise<void> {
    if (this.port === 0) {
      this.port = await freePort();
      if (this.tls) this.tlsPort = await freePort();
      mkdirSync(join(this.dir, 'db'), { mode: 0o700 });
      writeFileSync(join(this.dir, 'slapd.conf'), this.config());
    }
    const urls = [`${this.url}/`, ...(this.tls ? [`${this.ldapsUrl}/`] : [])].join(' ');
    const child = spawn('slapd', ['-d', '0', '-f', join(this.dir, 'slapd.conf'), '-h', urls], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    const keep = (chunk: Buffer) => (this.output = (this.output + chunk.toString()).slice(-8000));
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    await until(`slapd on ${this.url} (${this.output.trim().split('\n').slice(-3).join(' | ')})`, async () => {
      if (child.exitCode !== null) throw new Error(`slapd exited with ${child.exitCode}: ${this.output}`);
      return (await listening(this.port)) && (!this.tls || (await listening(this.tlsPort)));
    }, 15_000, 50);
  }

  /** Adds the organisation's skeleton and these entries (LDIF, blank-line separated). */
  async seed(entries: string[]): Promise<void> {
    await this.ldap('ldapadd', [baseEntries(), ...entries].join('\n\n'));
  }

  add(ldif: string): Promise<void> {
    return this.ldap('ldapadd', ldif);
  }

  modify(ldif: string): Promise<void> {
    return this.ldap('ldapmodify', ldif);
  }

  /** Stops slapd by its pid and waits for it to exit. */
  async stop(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    process.kill(child.pid!, 'SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }

  async remove(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }

  private ldap(tool: 'ldapadd' | 'ldapmodify', ldif: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const run = execFile(tool, ['-x', '-H', this.url, '-D', ROOT_DN, '-w', ROOT_PASSWORD], (err, _stdout, stderr) => (err ? reject(new Error(`${tool}: ${stderr || err.message}`)) : resolve()));
      run.stdin!.end(`${ldif}\n`);
    });
  }

  private config(): string {
    return [
      ...['core', 'cosine', 'inetorgperson'].map((schema) => `include /etc/ldap/schema/${schema}.schema`),
      `modulepath ${MODULES}`,
      'moduleload back_mdb',
      'moduleload memberof',
      `pidfile ${join(this.dir, 'slapd.pid')}`,
      `argsfile ${join(this.dir, 'slapd.args')}`,
      ...(this.tls ? [`TLSCertificateFile ${this.tls.cert}`, `TLSCertificateKeyFile ${this.tls.key}`] : []),
      'database mdb',
      `suffix "${SUFFIX}"`,
      `rootdn "${ROOT_DN}"`,
      `rootpw "${ROOT_PASSWORD}"`,
      `directory ${join(this.dir, 'db')}`,
      'maxsize 16777216',
      'overlay memberof',
      // Passwords are for binding only; the service account reads the rest; nobody else anything.
      'access to attrs=userPassword by self write by anonymous auth by * none',
      `access to * by dn.exact="${SERVICE_DN}" read by self read by * none`,
      '',
    ].join('\n');
  }
}

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port }, () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
