// A real Docker registry for the image tests: Debian's docker-registry (Docker Distribution 2.8)
// as our child process, configured in a temp dir (storage, log, htpasswd, certificates), and the
// docker CLI to push test images into it. Images are made locally with `docker import` (like
// scripts/test-image.sh), so nothing is ever fetched from the internet.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, open, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { freePort } from './cluster.js';

export const REGISTRY = process.env.GANTRY_TEST_REGISTRY ?? 'docker-registry';
// Where the Docker Engine looks for a registry's CA, per host:port, on every connection. But the
// Engine treats every registry on 127.0.0.0/8 as insecure by default: it then skips certificate
// checks (and never reads certs.d), and after a failure over HTTPS it retries over plain HTTP.
// The CA is installed anyway, for an Engine configured otherwise; our own probe does check it.
const CERTS_D = '/etc/docker/certs.d';

export interface RegistryAuth {
  username: string;
  password: string;
}

export interface RegistryOptions {
  /** Basic auth from an htpasswd file: /v2/ answers 401 without these credentials. */
  auth?: RegistryAuth;
  /** HTTPS with a throwaway CA, which the local Docker Engine is told to trust via certs.d
   *  (see CERTS_D: on 127.0.0.1 the Engine does not check it). */
  tls?: boolean;
  /** Keep config, storage and log here (kept on stop) instead of a fresh temp dir (removed on stop):
   *  a registry started again on the same dir (and port) still has the images pushed before. */
  dir?: string;
  /** Listen here instead of on a free port: with `dir`, a restart keeps the image refs valid. */
  port?: number;
  /**
   * Listen on this address (default 127.0.0.1). The Docker Engine treats 127.0.0.0/8 as an
   * insecure registry and checks no certificate there: a TLS test that must prove the engine
   * trusts the CA through certs.d listens on a non-loopback address (see hostAddress()).
   */
  address?: string;
}

export interface TestRegistry {
  /** "127.0.0.1:PORT": what goes before the repository in an image ref. */
  host: string;
  /** "http(s)://127.0.0.1:PORT" */
  url: string;
  /** The CA that signed the server certificate (with tls). */
  caFile?: string;
  auth?: RegistryAuth;
  dir: string;
  /** The registry's stdout and stderr: its own log and the HTTP access log, interleaved. */
  logFile: string;
  /** A DOCKER_CONFIG dir of its own, so a `docker login` here never touches ~/.docker. */
  dockerConfig: string;
  /** Kills this registry (its pid only), waits for it to exit, forgets its CA in certs.d. */
  stop(): Promise<void>;
  /** The access log lines (combined log format) of the log so far. */
  accessLog(): Promise<string[]>;
  /** How many blobs (layers and image configs) were downloaded: GETs of .../blobs/sha256:... answered 200. */
  blobFetches(): Promise<number>;
}

/** Apache combined log format, as distribution writes it next to its own log lines:
 *  127.0.0.1 - - [30/Nov/2026:16:35:16 +0000] "GET /v2/ HTTP/1.1" 200 2 "" "docker/20.10.24 ..." */
const ACCESS_LINE = /^\S+ \S+ \S+ \[[^\]]+\] "[A-Z]+ \S+ HTTP\/[\d.]+" \d{3} /;
const BLOB_FETCH = /"GET \/v2\/\S+\/blobs\/sha256:[0-9a-f]{64} HTTP\/[\d.]+" 200 /;

/**
 * A non-loopback IPv4 address of this host (the Docker bridge's, or any other interface's):
 * where a registry must listen for the engine to check its TLS certificate.
 */
export function hostAddress(): string {
  const all = Object.entries(networkInterfaces()).flatMap(([name, addresses]) => (addresses ?? []).map((a) => ({ name, ...a })));
  const usable = all.filter((a) => a.family === 'IPv4' && !a.internal);
  const found = usable.find((a) => a.name === 'docker0') ?? usable[0];
  if (!found) throw new Error('this host has no non-loopback IPv4 address for a TLS registry');
  return found.address;
}

export async function startRegistry(options: RegistryOptions = {}): Promise<TestRegistry> {
  const ownDir = options.dir === undefined;
  const dir = options.dir ?? (await mkdtemp(join(tmpdir(), 'gantry-registry-')));
  await mkdir(dir, { recursive: true });
  const port = options.port ?? (await freePort());
  const address = options.address ?? '127.0.0.1';
  const host = `${address}:${port}`;
  const url = `${options.tls ? 'https' : 'http'}://${host}`;
  const logFile = join(dir, 'registry.log');
  const dockerConfig = join(dir, 'docker-config');
  await mkdir(dockerConfig, { recursive: true });

  const config: Record<string, unknown> = {
    version: 0.1,
    log: { level: 'info', accesslog: { disabled: false } },
    storage: { filesystem: { rootdirectory: join(dir, 'data') }, delete: { enabled: true } },
    // A fixed secret only silences the warning about a generated one (it signs upload state).
    http: { addr: host, secret: randomBytes(16).toString('hex') } as Record<string, unknown>,
  };
  if (options.auth) {
    const htpasswd = join(dir, 'htpasswd');
    await writeFile(htpasswd, await makeHtpasswd(options.auth));
    config.auth = { htpasswd: { realm: 'gantry-test', path: htpasswd } };
  }
  let caFile: string | undefined;
  let certsDir: string | undefined;
  if (options.tls) {
    const tls = await makeCertificates(join(dir, 'tls'), address);
    caFile = tls.ca;
    (config.http as Record<string, unknown>).tls = { certificate: tls.cert, key: tls.key };
    certsDir = join(CERTS_D, host);
    await mkdir(certsDir, { recursive: true });
    await copyFile(tls.ca, join(certsDir, 'ca.crt'));
  }
  const configFile = join(dir, 'config.yml');
  await writeFile(configFile, stringify(config));

  // The log file is the child's stdout and stderr itself: lines land there as they are written,
  // and nothing is lost when this process stops reading.
  const log = await open(logFile, 'a');
  let child: ChildProcess;
  try {
    child = spawn(REGISTRY, ['serve', configFile], { stdio: ['ignore', log.fd, log.fd] });
  } finally {
    await log.close();
  }
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.once('error', () => {}); // a missing binary shows as an exit; waitUntilUp reports it

  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
    if (certsDir) await rm(certsDir, { recursive: true, force: true });
    if (ownDir) await rm(dir, { recursive: true, force: true });
  };
  const accessLog = async () => (await readFile(logFile, 'utf8')).split('\n').filter((line) => ACCESS_LINE.test(line));

  try {
    const ca = caFile ? await readFile(caFile) : undefined;
    await waitUntilUp(url, ca, child, logFile, options.auth !== undefined);
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    host,
    url,
    caFile,
    auth: options.auth,
    dir,
    logFile,
    dockerConfig,
    stop,
    accessLog,
    async blobFetches() {
      return (await accessLog()).filter((line) => BLOB_FETCH.test(line)).length;
    },
  };
}

/** Polls GET /v2/ until it answers 200 (or 401: up, but wants credentials). With TLS the probe
 *  trusts only our CA, so it also proves the certificate is good for 127.0.0.1. */
async function waitUntilUp(url: string, ca: Buffer | undefined, child: ChildProcess, logFile: string, auth: boolean): Promise<void> {
  const deadline = Date.now() + 15_000;
  let last = 'no answer yet';
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) {
      const log = await readFile(logFile, 'utf8').catch(() => '');
      throw new Error(`${REGISTRY} exited (${child.exitCode ?? child.signalCode ?? 'did not start'}) before answering ${url}/v2/:\n${log.slice(-4000)}`);
    }
    try {
      const status = await statusOf(`${url}/v2/`, ca);
      if (status === 200 || (auth && status === 401)) return;
      last = `HTTP ${status}`;
    } catch (err) {
      last = (err as Error).message;
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`${REGISTRY} at ${url} did not come up within 15 s (${last}); log: ${logFile}`);
}

function statusOf(url: string, ca: Buffer | undefined): Promise<number> {
  return new Promise((resolve, reject) => {
    const onResponse = (res: IncomingMessage) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    };
    const req = url.startsWith('https:') ? httpsRequest(url, { ca, agent: false, timeout: 2000 }, onResponse) : httpRequest(url, { agent: false, timeout: 2000 }, onResponse);
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end();
  });
}

/** bcrypt (-B): the only hash distribution accepts. The password goes in on stdin (-i) rather
 *  than argv (-b), so it is in no process list and no error message. */
async function makeHtpasswd(auth: RegistryAuth): Promise<string> {
  const { stdout } = await run('htpasswd', ['-nBi', auth.username], { input: auth.password });
  return stdout.trim() + '\n';
}

/** A throwaway CA and a server certificate it signs, for IP 127.0.0.1 and DNS localhost (Go
 *  checks subjectAltName only, never the CN). P-256 keys: made in milliseconds. */
async function makeCertificates(dir: string, address: string): Promise<{ ca: string; cert: string; key: string }> {
  await mkdir(dir, { recursive: true });
  const openssl = (...args: string[]) => run('openssl', args, { cwd: dir });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  await openssl('req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=Gantry test registry CA');
  await openssl('req', ...ec, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=gantry test registry');
  await writeFile(join(dir, 'server.ext'), `subjectAltName=IP:127.0.0.1,DNS:localhost${address === '127.0.0.1' ? '' : `,IP:${address}`}\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n`);
  await openssl('x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.crt', '-days', '2', '-extfile', 'server.ext');
  return { ca: join(dir, 'ca.crt'), cert: join(dir, 'server.crt'), key: join(dir, 'server.key') };
}

interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Written to stdin: how secrets are passed, never in argv. */
  input?: string;
}

/** Runs a program to its end; rejects with its stderr when it fails. */
function run(program: string, args: string[], options: RunOptions = {}): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const input = options.input;
    const child = spawn(program, args, { cwd: options.cwd, env: options.env, stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.once('error', reject);
    child.once('close', (code) => {
      if (code === 0) resolve({ stdout, stderr });
      else reject(new Error(`${program} ${args.join(' ')} failed (exit ${code}): ${(stderr || stdout).trim()}`));
    });
    if (child.stdin) {
      child.stdin.on('error', () => {}); // a program that exits without reading fails by its exit code
      child.stdin.end(input);
    }
  });
}

/** The docker CLI; `dockerConfig` is its DOCKER_CONFIG (logins), a temp dir rather than ~/.docker. */
export function docker(args: string[], options: { dockerConfig?: string; input?: string } = {}): Promise<{ stdout: string; stderr: string }> {
  const env = options.dockerConfig ? { ...process.env, DOCKER_CONFIG: options.dockerConfig } : process.env;
  return run('docker', args, { env, input: options.input });
}

/** `docker login` to the registry with its credentials (password on stdin), stored in dockerConfig. */
export async function loginTo(registry: TestRegistry, dockerConfig = registry.dockerConfig): Promise<void> {
  if (!registry.auth) throw new Error(`${registry.host} has no auth to log in with`);
  await docker(['login', '--username', registry.auth.username, '--password-stdin', registry.host], { dockerConfig, input: registry.auth.password });
}

/**
 * Pushes local image `source` as `target` ("repo:tag") into the registry and returns the ref and
 * the manifest digest the push reports. Unless keepLocal, the pushed tag is removed locally
 * afterwards. Note the source tag still holds the same image: while it exists, a pull of the ref
 * fetches the manifest only (the Engine has the config and layers). Remove the source too
 * (removeLocalImage) when a pull must download the blobs.
 */
export async function pushImage(registry: TestRegistry, source: string, target: string, options: { keepLocal?: boolean } = {}): Promise<{ ref: string; digest: string }> {
  const ref = `${registry.host}/${target}`;
  const dockerConfig = registry.dockerConfig;
  if (registry.auth) await loginTo(registry);
  await docker(['tag', source, ref]);
  const { stdout } = await docker(['push', ref], { dockerConfig });
  // "v1: digest: sha256:3b24... size: 527"
  const digest = /digest: (sha256:[0-9a-f]{64})/.exec(stdout)?.[1];
  if (!digest) throw new Error(`docker push ${ref} printed no digest: ${stdout}`);
  if (!options.keepLocal) await removeLocalImage(ref);
  return { ref, digest };
}

/** Removes a local image (or just this tag of it); an image that is not there is fine. */
export async function removeLocalImage(ref: string): Promise<void> {
  try {
    await docker(['image', 'rm', ref]);
  } catch (err) {
    if (!/no such image/i.test((err as Error).message)) throw err;
  }
}

// The applets the test workloads use; each is a symlink to the one static busybox.
const APPLETS = ['sh', 'sleep', 'cat', 'echo', 'ls', 'wget', 'nc'];

/**
 * Makes a local image `tag` by `docker import` of a root filesystem: busybox-static with a few
 * applets, /marker holding `marker` (so images made with different markers have different
 * digests) and, with sizeMiB, /payload of that many MiB of random bytes (incompressible, so a
 * pull really moves that much). Runs `sleep 3600` by default.
 */
export async function makeImage(tag: string, options: { sizeMiB?: number; marker?: string } = {}): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'gantry-image-'));
  try {
    const root = join(work, 'root');
    for (const sub of ['bin', 'etc', 'tmp']) await mkdir(join(root, sub), { recursive: true });
    const busybox = (await run('sh', ['-c', 'command -v busybox'])).stdout.trim();
    await copyFile(busybox, join(root, 'bin', 'busybox'));
    for (const applet of APPLETS) await symlink('busybox', join(root, 'bin', applet));
    await writeFile(join(root, 'etc', 'passwd'), 'root:x:0:0:root:/:/bin/sh\n');
    await writeFile(join(root, 'marker'), `${options.marker ?? tag}\n`);
    if (options.sizeMiB) {
      const payload = await open(join(root, 'payload'), 'w');
      try {
        for (let i = 0; i < options.sizeMiB; i++) await payload.write(randomBytes(1024 * 1024));
      } finally {
        await payload.close();
      }
    }
    const tar = join(work, 'rootfs.tar');
    await run('tar', ['-C', root, '-cf', tar, '.']);
    await docker(['import', '--change', 'CMD ["sleep","3600"]', '--change', 'ENV PATH=/bin', tar, tag]);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
