// How a client command reaches the server: the client made from its --server, --token and --ca
// flags, the environment and the config file (config.ts has the order). Imported by the command
// modules when a command runs, never at start.
import type { Command } from 'commander';
import { GantryClient } from './client.js';
import type { ClientOptions } from './client/transport.js';
import { options } from './cli-options.js';
import { loadClientConfig, readCertificateFile } from './config.js';

/** The server, token and CA (PEM) a command uses: for the client, and for a WebSocket of its own (gantry exec). */
export function connectionFor(cmd: Command): ClientOptions {
  const { server, token, ca } = options(cmd);
  const config = loadClientConfig({ server, token, ca });
  const caFrom = ca ? '--ca' : process.env.GANTRY_CA ? 'GANTRY_CA' : 'the CA file ("ca" in the config file)';
  return { ...config, ca: config.ca === undefined ? undefined : readCertificateFile(config.ca, caFrom).pem };
}

export function clientFor(cmd: Command): GantryClient {
  return new GantryClient(connectionFor(cmd));
}
