// What a receiver is sent about one alert changing state: Gantry's own JSON, or the body of
// Alertmanager's webhook (version "4": status, groupKey, alerts[] with labels, annotations,
// startsAt, endsAt), so whatever already reads Alertmanager's webhooks reads Gantry's too.
import { createHash } from 'node:crypto';
import type { Receiver } from '../../model/spec-alerts.js';
import type { Notification } from './evaluate.js';

/** Alertmanager's "not ended yet": Go's zero time. */
const ZERO_TIME = '0001-01-01T00:00:00Z';

export function notificationBody(receiverName: string, receiver: Receiver, n: Notification, externalUrl: string): unknown {
  const { alert } = n;
  if (receiver.format === 'json') {
    return {
      status: n.status,
      alert: alert.rule,
      key: alert.key,
      severity: alert.severity,
      labels: alert.labels,
      summary: alert.summary,
      value: alert.value,
      since: new Date(alert.firingSince ?? alert.since).toISOString(),
      ...(n.status === 'resolved' ? { resolvedAt: new Date(alert.since).toISOString() } : {}),
    };
  }
  const labels = { alertname: alert.rule, severity: alert.severity, ...alert.labels };
  const groupLabels = { alertname: alert.rule };
  return {
    version: '4',
    groupKey: `{}:{alertname="${alert.rule}"}/${alert.key}`,
    truncatedAlerts: 0,
    status: n.status,
    receiver: receiverName,
    groupLabels,
    commonLabels: labels,
    commonAnnotations: { summary: alert.summary, value: alert.value },
    externalURL: externalUrl,
    alerts: [
      {
        status: n.status,
        labels,
        annotations: { summary: alert.summary, value: alert.value },
        startsAt: new Date(alert.firingSince ?? alert.since).toISOString(),
        endsAt: n.status === 'resolved' ? new Date(alert.since).toISOString() : ZERO_TIME,
        generatorURL: externalUrl,
        fingerprint: createHash('sha256').update(alert.key).digest('hex').slice(0, 16),
      },
    ],
  };
}
