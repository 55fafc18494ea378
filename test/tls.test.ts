// Native TLS: `gantry server --tls-cert --tls-key` serves HTTPS (and WSS to agents); the CLI and
// the agents verify it with --ca (the CLI also with GANTRY_CA or "ca" in its config file), and
// without the CA they refuse it, saying why. The keys are made by openssl in a temp dir per run.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort, TestCluster, until } from './helpers/cluster.js';
import { ConfigError, loadClientConfig, readCertificateFile, readPrivateKeyFile, saveClientConfig } from '../src/cli/config.js';
import type { EventListResponse, NodeListResponse } from '../src/model/api.js';

const run = promisify(execFile);

interface Certificates {
  /** A throwaway CA, and a certificate for IP 127.0.0.1 it signed (server.pem, server.key). */
  ca: string;
  cert: string;
  key: string;
  /** A self-signed certificate for IP 127.0.0.1. */
  selfCert: string;
  selfKey: string;
}

async function makeCertificates(dir: string): Promise<Certificates> {
  const openssl = (...args: string[]) => run('openssl', args, { cwd: dir });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  await openssl('req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=Gantry test CA');
  await openssl('req', ...ec, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=gantry test server');
  writeFileSync(join(dir, 'server.ext'), 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n');
  await openssl('x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.pem', '-days', '2', '-extfile', 'server.ext');
  await openssl('req', '-x509', ...ec, '-keyout', 'self.key', '-out', 'self.pem', '-days', '2', '-subj', '/CN=gantry self-signed', '-addext', 'subjectAltName=IP:127.0.0.1');
  const at = (file: string) => join(dir, file);
  return { ca: at('ca.pem'), cert: at('server.pem'), key: at('server.key'), selfCert: at('self.pem'), selfKey: at('self.key') };
}

describe('TLS', () => {
  const cluster = new TestCluster();
  let certs: Certificates;
  /** No config file and no GANTRY_CA from the environment running the tests: only what a test gives. */
  const bare = () => ({ GANTRY_CONFIG: join(cluster.dir, 'no-config.json'), GANTRY_CA: '' });
  before(async () => {
    certs = await makeCertificates(cluster.dir);
    cluster.ca = certs.ca;
    await cluster.startServer({ extra: ['--tls-cert', certs.cert, '--tls-key', certs.key] });
  });
  after(() => cluster.close());

  test('config: --ca > GANTRY_CA > "ca" of the config file (relative to the file), field by field; PEM checked', () => {
    const file = join(cluster.dir, 'config', 'config.json');
    const env = { GANTRY_CONFIG: file } as NodeJS.ProcessEnv;
    saveClientConfig({ server: 'https://file:1', token: 't', ca: certs.ca }, env);
    assert.deepEqual(JSON.parse(readFileSync(file, 'utf8')), { server: 'https://file:1', token: 't', ca: certs.ca });
    assert.deepEqual(loadClientConfig({}, env), { server: 'https://file:1', token: 't', ca: certs.ca });
    assert.deepEqual(loadClientConfig({}, { ...env, GANTRY_CA: '/env.pem' }), { server: 'https://file:1', token: 't', ca: '/env.pem' });
    assert.deepEqual(loadClientConfig({ ca: 'flag.pem' }, { ...env, GANTRY_CA: '/env.pem' }), { server: 'https://file:1', token: 't', ca: 'flag.pem' });
    writeFileSync(file, JSON.stringify({ server: 'https://file:1', ca: '../ca.pem' }));
    assert.deepEqual(loadClientConfig({}, env), { server: 'https://file:1', ca: join(cluster.dir, 'ca.pem') });
    writeFileSync(file, JSON.stringify({ ca: 7 }));
    assert.throws(() => loadClientConfig({}, env), /"ca" must be a string/);

    assert.equal(readCertificateFile(certs.ca, '--ca').certificates.length, 1);
    assert.equal(readCertificateFile(certs.cert, '--ca').certificates[0]!.subject, 'CN=gantry test server');
    const corrupt = join(cluster.dir, 'corrupt.pem');
    writeFileSync(corrupt, '-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n');
    assert.throws(() => readCertificateFile(corrupt, '--ca'), (err: Error) => err instanceof ConfigError && /^--ca \S+corrupt\.pem: certificate 1 cannot be read/.test(err.message));
    assert.throws(() => readPrivateKeyFile(certs.ca, '--tls-key'), /^ConfigError: --tls-key \S+ca\.pem: not a PEM private key file/);
    assert.equal(readPrivateKeyFile(certs.key, '--tls-key').key.type, 'private');
  });

  test('the server serves HTTPS, and nothing over plain HTTP', async () => {
    assert.ok(cluster.output.some((line) => line.includes(`gantry server listening on https://127.0.0.1:${cluster.port}`)), cluster.output.join('\n'));
    assert.deepEqual(await cluster.api('GET', '/healthz').then((r) => (r as { ok: boolean }).ok), true);
    await assert.rejects(fetch(`http://127.0.0.1:${cluster.port}/healthz`), 'plain HTTP to the TLS port');
    // Node's own CAs do not know the test CA.
    await assert.rejects(fetch(`https://127.0.0.1:${cluster.port}/healthz`), (err: Error & { cause?: { code?: string } }) => /UNABLE_TO_VERIFY_LEAF_SIGNATURE/.test(String(err.cause?.code)));
  });

  test('a console sign-in over TLS sets its session cookie Secure', async () => {
    const password = 'a password long enough';
    await cluster.api('POST', '/v1/users', { name: 'tina', password });
    const undici = await import('undici');
    const dispatcher = new undici.Agent({ connect: { ca: readFileSync(certs.ca) } });
    try {
      const answer = await undici.fetch(`${cluster.url}/v1/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user: 'tina', password, session: 'cookie' }), dispatcher });
      assert.equal(answer.status, 200);
      const cookie = answer.headers.getSetCookie()[0] ?? '';
      assert.match(cookie, /^gantry_session=[^;]+;.*; Secure/i, cookie);
    } finally {
      await dispatcher.close();
    }
  });

  test('the CLI verifies the server with --ca, GANTRY_CA or "ca" in its config file', async () => {
    const withFlag = await cluster.cli(['apps', '--ca', certs.ca], { env: bare() });
    assert.equal(withFlag.code, 0, withFlag.stderr);
    assert.match(withFlag.stderr, /^no apps$/m);

    const withEnv = await cluster.cli(['apps'], { env: { ...bare(), GANTRY_CA: certs.ca } });
    assert.equal(withEnv.code, 0, withEnv.stderr);
    assert.match(withEnv.stderr, /^no apps$/m);

    // A relative path in the config file is relative to the file.
    const config = join(cluster.dir, 'tls-config.json');
    writeFileSync(config, JSON.stringify({ ca: 'ca.pem' }));
    const withFile = await cluster.cli(['apps'], { env: { ...bare(), GANTRY_CONFIG: config } });
    assert.equal(withFile.code, 0, withFile.stderr);
    assert.match(withFile.stderr, /^no apps$/m);
  });

  test('the CLI without the CA refuses the server: exit 4, naming the certificate problem and --ca', async () => {
    const [noCa, otherCa, notPem, wrongHost] = await Promise.all([
      cluster.cli(['apps'], { env: bare() }),
      cluster.cli(['apps', '--ca', certs.selfCert], { env: bare() }),
      cluster.cli(['apps', '--ca', certs.key], { env: bare() }),
      cluster.cli(['apps', '--ca', certs.ca, '--server', `https://localhost:${cluster.port}`], { env: bare() }),
    ]);
    assert.equal(noCa.code, 4, noCa.stderr);
    assert.match(noCa.stderr, new RegExp(`^error: cannot verify the TLS certificate of the Gantry server at https://127\\.0\\.0\\.1:${cluster.port}: unable to verify the first certificate \\(UNABLE_TO_VERIFY_LEAF_SIGNATURE\\)\\. .*pass that CA's certificate with --ca FILE \\(or GANTRY_CA`));
    assert.equal(otherCa.code, 4, otherCa.stderr);
    assert.match(otherCa.stderr, /cannot verify the TLS certificate .*--ca FILE/);
    assert.equal(notPem.code, 2, notPem.stderr);
    assert.match(notPem.stderr, /^error: --ca \S+server\.key: not a PEM certificate file/);
    // localhost may resolve to ::1, where nothing listens: then the connection is refused instead.
    assert.equal(wrongHost.code, 4, wrongHost.stderr);
    assert.match(wrongHost.stderr, /ERR_TLS_CERT_ALTNAME_INVALID\)\. The certificate does not name the host of the server URL|ECONNREFUSED/);
  });

  test('an agent with --ca connects over wss:// and its node becomes ready', async () => {
    const name = `tls-ok-${cluster.id}`;
    await cluster.startAgent({ name, portRange: '31460-31469', dockerSocket: join(cluster.dir, 'none.sock'), extra: ['--ca', certs.ca] });
    assert.ok(cluster.output.some((line) => line === `[agent ${name}] agent: connected to ${cluster.url}`));
  });

  test('an agent without the CA never connects, and its log says why', async () => {
    const name = `tls-no-ca-${cluster.id}`;
    await cluster.startAgent({ name, portRange: '31470-31479', dockerSocket: join(cluster.dir, 'none.sock'), wait: false });
    const line = await until('the agent to say why it cannot connect', () => cluster.output.find((l) => l.startsWith(`[agent ${name}]`) && l.includes('cannot connect')), 20_000);
    assert.equal(line, `[agent ${name}] agent: cannot connect to ${cluster.url}: TLS: cannot verify the server's certificate (UNABLE_TO_VERIFY_LEAF_SIGNATURE: unable to verify the first certificate); give the CA that signed it with --ca FILE`);
    await new Promise((resolve) => setTimeout(resolve, 1500)); // a few more tries
    const { nodes } = (await cluster.api('GET', '/v1/nodes')) as NodeListResponse;
    assert.ok(!nodes.some((n) => n.name === name), 'the node never registered');
    // The server refused nothing: the agent gave up in the TLS handshake, before sending its token.
    const { events } = (await cluster.api('GET', '/v1/events?limit=1000')) as EventListResponse;
    assert.deepEqual(events.filter((e) => e.type === 'agent.refused' || e.message.includes(name)), []);
    const lines = cluster.output.filter((l) => l.startsWith(`[agent ${name}]`) && l.includes('cannot connect'));
    assert.equal(lines.length, 1, `the same failure is logged once a minute, not on every retry:\n${lines.join('\n')}`);
    await cluster.stopAgent(name);
  });

  test('gantry server: --tls-cert and --tls-key both or neither, readable PEM, and a pair', async () => {
    const port = String(await freePort());
    const server = (...tls: string[]) => cluster.cli(['server', '--data-dir', join(cluster.dir, 'never'), '--port', port, ...tls], { timeoutMs: 60_000 });
    const cases: [string[], RegExp][] = [
      [['--tls-cert', certs.cert], /^error: --tls-cert needs --tls-key/],
      [['--tls-key', certs.key], /^error: --tls-key needs --tls-cert/],
      [['--tls-cert', join(cluster.dir, 'missing.pem'), '--tls-key', certs.key], /^error: --tls-cert \S+missing\.pem: cannot read it: ENOENT/],
      [['--tls-cert', certs.key, '--tls-key', certs.key], /^error: --tls-cert \S+server\.key: not a PEM certificate file/],
      [['--tls-cert', certs.cert, '--tls-key', certs.cert], /^error: --tls-key \S+server\.pem: not a PEM private key file/],
      [['--tls-cert', certs.cert, '--tls-key', certs.selfKey], /^error: --tls-key \S+self\.key is not the private key of the certificate in --tls-cert/],
    ];
    const results = await Promise.all(cases.map(([flags]) => server(...flags)));
    results.forEach((result, i) => {
      assert.equal(result.code, 2, `${cases[i]![0].join(' ')}: ${result.stderr}`);
      assert.match(result.stderr, cases[i]![1]);
    });
  });

  test('gantry up: the local agent trusts the server (its certificate when self-signed, else --ca); the CLI config keeps the CA', async () => {
    const setups = [
      { what: 'self-signed', cert: certs.selfCert, key: certs.selfKey, ca: undefined, trusted: certs.selfCert },
      { what: 'signed by --ca', cert: certs.cert, key: certs.key, ca: certs.ca, trusted: certs.ca },
    ];
    for (const [i, setup] of setups.entries()) {
      const up = new TestCluster();
      try {
        up.ca = setup.trusted;
        up.port = await freePort();
        const name = `tls-up-${i}-${up.id}`;
        const args = ['up', '--data-dir', join(up.dir, 'data'), '--port', String(up.port), '--tls-cert', setup.cert, '--tls-key', setup.key, ...(setup.ca ? ['--ca', setup.ca] : [])];
        up.server = up.spawn('up', [...args, '--node-name', name, '--docker-socket', join(up.dir, 'none.sock'), '--port-range', `${31480 + 10 * i}-${31489 + 10 * i}`]);
        await until(`the local agent of gantry up (${setup.what}) to be ready`, async () => ((await up.api('GET', '/v1/nodes')) as NodeListResponse).nodes.some((n) => n.name === name && n.state === 'ready'));
        const saved = JSON.parse(readFileSync(join(up.dir, 'cli.json'), 'utf8')) as { server: string; ca?: string };
        assert.deepEqual([saved.server, saved.ca], [up.url, setup.trusted]);
        // The CLI of the user who ran `gantry up` finds the server, its token and its CA in that config.
        const apps = await up.cli(['apps'], { env: { GANTRY_SERVER: '', GANTRY_TOKEN: '', GANTRY_CA: '' } });
        assert.equal(apps.code, 0, apps.stderr);
      } finally {
        await up.close();
      }
    }
  });
});
