// The CLI client's calls about what the server keeps for instances and hands only to the nodes
// that run them: team secrets (and the key that seals them), team configs, registry logins.
import type { ConfigInfo, RegistryLoginInfo, SecretInfo } from '../../model/api.js';
import type { ConfigRecord } from '../../model/types.js';
import type { Change } from '../../model/diff.js';
import { TeamCalls } from './teams.js';
import { enc } from './transport.js';

export class SecretCalls extends TeamCalls {
  secrets(team: string): Promise<{ secrets: SecretInfo[] }> {
    return this.json('GET', `/v1/teams/${enc(team)}/secrets`);
  }

  secret(team: string, name: string): Promise<{ secret: SecretInfo; value: string }> {
    return this.json('GET', `/v1/teams/${enc(team)}/secrets/${enc(name)}`);
  }

  setSecret(team: string, name: string, value: string, roll: boolean): Promise<{ secret: SecretInfo; rolled?: { app: string; release: number }[]; waiting?: { app: string; message: string }[]; failed?: { app: string; error: string }[] }> {
    return this.json('PUT', `/v1/teams/${enc(team)}/secrets/${enc(name)}`, { body: JSON.stringify({ value, roll }), contentType: 'application/json' });
  }

  removeSecret(team: string, name: string): Promise<{ removed: string }> {
    return this.json('DELETE', `/v1/teams/${enc(team)}/secrets/${enc(name)}`);
  }

  rotateSecretKey(): Promise<{ key: string; secrets: number; registryLogins: number }> {
    return this.json('POST', '/v1/secrets/rotate-key', { body: '{}', contentType: 'application/json' });
  }

  configs(team: string): Promise<{ configs: ConfigInfo[] }> {
    return this.json('GET', `/v1/teams/${enc(team)}/configs`);
  }

  config(team: string, name: string, version?: number): Promise<{ config: ConfigRecord }> {
    return this.json('GET', `/v1/teams/${enc(team)}/configs/${enc(name)}`, version === undefined ? {} : { query: { version: String(version) } });
  }

  configHistory(team: string, name: string): Promise<{ versions: ConfigRecord[] }> {
    return this.json('GET', `/v1/teams/${enc(team)}/configs/${enc(name)}/history`);
  }

  configDiff(team: string, name: string, from: number, to?: number): Promise<{ from: number; to: number; changes: Change[] }> {
    return this.json('GET', `/v1/teams/${enc(team)}/configs/${enc(name)}/diff`, { query: { from: String(from), ...(to === undefined ? {} : { to: String(to) }) } });
  }

  /** scope: the only app / env that may use it (null: any again; absent: as it was). */
  setConfig(team: string, name: string, content: { text: string } | { values: Record<string, string> }, note?: string, scope: { app?: string | null; env?: string | null } = {}): Promise<{ config: ConfigInfo; rolled: { app: string; release: number }[]; waiting?: { app: string; message: string }[]; failed: { app: string; error: string }[] }> {
    return this.json('PUT', `/v1/teams/${enc(team)}/configs/${enc(name)}`, { body: JSON.stringify({ ...content, ...(note ? { note } : {}), ...scope }), contentType: 'application/json' });
  }

  rollbackConfig(team: string, name: string, version: number): Promise<{ config: ConfigInfo; rolled: { app: string; release: number }[]; waiting?: { app: string; message: string }[]; failed: { app: string; error: string }[] }> {
    return this.json('POST', `/v1/teams/${enc(team)}/configs/${enc(name)}/rollback`, { body: JSON.stringify({ version }), contentType: 'application/json' });
  }

  removeConfig(team: string, name: string): Promise<{ removed: string }> {
    return this.json('DELETE', `/v1/teams/${enc(team)}/configs/${enc(name)}`);
  }

  registries(): Promise<{ registries: RegistryLoginInfo[] }> {
    return this.json('GET', '/v1/registries');
  }

  registryLogin(host: string, username: string, password: string): Promise<{ registry: RegistryLoginInfo }> {
    return this.json('PUT', `/v1/registries/${enc(host)}`, { body: JSON.stringify({ username, password }), contentType: 'application/json' });
  }

  registryLogout(host: string): Promise<{ removed: string }> {
    return this.json('DELETE', `/v1/registries/${enc(host)}`);
  }
}
