// The CLI client's calls about alerts and their silences.
import type { Alert, Silence } from '../../server/alerts/evaluate.js';
import { SecretCalls } from './secrets.js';
import { enc } from './transport.js';

export class AlertCalls extends SecretCalls {
  alerts(filter: { app?: string; node?: string }): Promise<{ alerts: Alert[] }> {
    const query = new URLSearchParams({ ...(filter.app ? { app: filter.app } : {}), ...(filter.node ? { node: filter.node } : {}) });
    return this.json('GET', `/v1/alerts${query.size > 0 ? `?${query}` : ''}`);
  }

  silences(): Promise<{ silences: Silence[] }> {
    return this.json('GET', '/v1/alert-silences');
  }

  silence(matchers: Record<string, string>, duration: string, comment?: string): Promise<{ silence: Silence }> {
    return this.json('POST', '/v1/alert-silences', { body: JSON.stringify({ matchers, for: duration, ...(comment ? { comment } : {}) }), contentType: 'application/json' });
  }

  unsilence(id: string): Promise<{ removed: string }> {
    return this.json('DELETE', `/v1/alert-silences/${enc(id)}`);
  }
}
