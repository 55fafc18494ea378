// The company directory over TLS (StartTLS and ldaps://, verified with the configured CA, and
// refused without it), groups read from the memberOf attribute, and a directory that accepts
// connections but never answers: a real slapd with a throwaway CA made by openssl, and a real
// Gantry server over real HTTP for each configuration.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startServer } from '../src/server/main.js';
import { loadDirectoryConfig } from '../src/server/directory/config.js';
import { skipWithoutProgram } from './helpers/env.js';
import { SERVICE_DN, SERVICE_PASSWORD, SUFFIX, TestSlapd, groupEntry, personEntry, userDn } from './helpers/ldap.js';

const run = promisify(execFile);
const ADMIN = 'gty_directory_tls_test_admin_token';
const ALICE = 'alice directory password';

const skip = skipWithoutProgram('slapd', 'slapd') || skipWithoutProgram('ldapadd', 'ldap-utils') || skipWithoutProgram('openssl', 'openssl');

describe('company directory: TLS, memberOf, a directory that never answers', { skip }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'gantry-directory-tls-'));
  const at = (file: string) => join(dir, file);
  let slapd: TestSlapd;
  let silent: Server;
  const sockets = new Set<Socket>();
  let servers = 0;

  /** Signs alice in through a fresh server configured with `settings`; the answer and the events. */
  const signIn = async (settings: string) => {
    const file = at(`directory-${++servers}.yaml`);
    writeFileSync(file, `${settings}
timeout: 2s
bind:
  dn: ${SERVICE_DN}
  passwordEnv: GANTRY_TEST_LDAP_PASSWORD
users:
  base: ou=people,${SUFFIX}
  filter: (uid={user})
groups:
  attribute: memberOf
mapping:
  - group: shop-owners
    team: shop
    role: owner
`);
    const server = await startServer({ dataDir: at(`server-${servers}`), port: 0, bootstrapToken: ADMIN, directory: loadDirectoryConfig(file, { GANTRY_TEST_LDAP_PASSWORD: SERVICE_PASSWORD }) });
    try {
      const call = async (method: string, path: string, body?: unknown) => {
        const response = await fetch(`${server.url}${path}`, { method, headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' }, ...(body ? { body: JSON.stringify(body) } : {}) });
        return { status: response.status, body: (await response.json()) as Record<string, unknown> };
      };
      assert.equal((await call('POST', '/v1/teams', { name: 'shop' })).status, 201);
      const answer = await call('POST', '/v1/login', { user: 'alice', password: ALICE });
      const team = (await call('GET', '/v1/teams/shop')).body.team as { members: Record<string, string> };
      const events = JSON.stringify((await call('GET', '/v1/events?limit=1000')).body);
      return { ...answer, members: team.members, events };
    } finally {
      await server.close();
    }
  };

  before(async () => {
    const openssl = (...args: string[]) => run('openssl', args, { cwd: dir });
    const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
    await openssl('req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=Gantry directory test CA');
    await openssl('req', ...ec, '-keyout', 'ldap.key', '-out', 'ldap.csr', '-subj', '/CN=directory test server');
    writeFileSync(at('ldap.ext'), 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n');
    await openssl('x509', '-req', '-in', 'ldap.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'ldap.pem', '-days', '2', '-extfile', 'ldap.ext');
    await openssl('req', '-x509', ...ec, '-keyout', 'other.key', '-out', 'other-ca.pem', '-days', '2', '-subj', '/CN=Some other CA');
    slapd = new TestSlapd({ cert: at('ldap.pem'), key: at('ldap.key') });
    await slapd.start();
    // groupOfNames added over LDAP: the memberof overlay writes memberOf into alice's entry.
    await slapd.seed([personEntry({ uid: 'alice', password: ALICE }), groupEntry('shop-owners', [userDn('alice')])]);
    silent = createServer((socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  });

  after(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => (silent ? silent.close(() => resolve()) : resolve()));
    await slapd?.remove();
    rmSync(dir, { recursive: true, force: true });
  });

  test('StartTLS verified with caFile; groups from memberOf give the team role', async () => {
    const answer = await signIn(`url: ${slapd.url}\nstartTls: true\ncaFile: ca.pem`);
    assert.equal(answer.status, 200, answer.events);
    assert.equal(answer.members.alice, 'owner');
  });

  test('ldaps:// verified with caFile', async () => {
    const answer = await signIn(`url: ${slapd.ldapsUrl}\ncaFile: ca.pem`);
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
  });

  test('a certificate the CA does not vouch for: 503, and the event says why', async () => {
    for (const settings of [`url: ${slapd.ldapsUrl}\ncaFile: other-ca.pem`, `url: ${slapd.url}\nstartTls: true\ncaFile: other-ca.pem`, `url: ${slapd.ldapsUrl}`]) {
      const answer = await signIn(settings);
      assert.equal(answer.status, 503, `${settings}: ${JSON.stringify(answer.body)}`);
      assert.match(answer.body.error as string, /the company directory at ldaps?:\/\/127\.0\.0\.1:\d+ did not answer/);
      assert.match(answer.events, /auth\.directory_unavailable[^}]*certificate/i, settings);
      assert.equal(answer.members.alice, undefined);
    }
  });

  test('a directory that takes the connection and never answers: 503 after the timeout', async () => {
    const { port } = silent.address() as { port: number };
    const answer = await signIn(`url: ldap://127.0.0.1:${port}`);
    assert.equal(answer.status, 503, JSON.stringify(answer.body));
    assert.match(answer.events, /auth\.directory_unavailable/);
  });

  test('the service password from an unset variable is refused at start, naming the field', () => {
    const file = at('unset.yaml');
    writeFileSync(file, `url: ${slapd.url}\nbind:\n  dn: ${SERVICE_DN}\n  passwordEnv: GANTRY_TEST_UNSET\nusers:\n  base: ${SUFFIX}\n  filter: (uid={user})\ngroups:\n  attribute: memberOf\n`);
    assert.throws(() => loadDirectoryConfig(file, {}), /bind\.passwordEnv: the environment variable GANTRY_TEST_UNSET is not set/);
    writeFileSync(file, `url: ${slapd.ldapsUrl}\nstartTls: true\nbind:\n  dn: ${SERVICE_DN}\n  passwordEnv: X\nusers:\n  base: ${SUFFIX}\n  filter: (uid)\ngroups: {}\n`);
    assert.throws(() => loadDirectoryConfig(file, { X: 'x' }), (err: Error) => /users\.filter: must contain \{user\}/.test(err.message) && /groups: give attribute/.test(err.message));
  });
});
