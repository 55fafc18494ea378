// What a receiver is sent about one alert changing state, and where: Gantry's own JSON; the body
// of Alertmanager's webhook (version "4": status, groupKey, alerts[] with labels, annotations,
// startsAt, endsAt), so whatever already reads Alertmanager's webhooks reads Gantry's too; or the
// alert pushed to an Alertmanager's own API (POST /api/v2/alerts), so an existing Alertmanager
// routes, groups, inhibits and silences Gantry's alerts with the rest.
import { createHash } from 'node:crypto';
import { DEFAULT_RESEND_MS, type Receiver } from '../../model/spec-alerts.js';
import type { Alert, Notification } from './evaluate.js';

/** Alertmanager's "not ended yet": Go's zero time. */
const ZERO_TIME = '0001-01-01T00:00:00Z';

/**
 * A firing alert pushed to Alertmanager ends this many resend intervals after it was sent unless
 * pushed again (Prometheus' rule): a Gantry that stops telling lets it resolve, a late push does not.
 */
const VALID_RESENDS = 4;

/** Where a notification goes: the receiver's URL, or for an Alertmanager its alerts API below it. */
export function deliveryUrl(receiver: Receiver): string {
  return receiver.format === 'alertmanager-api' ? `${receiver.url.replace(/\/+$/, '')}/api/v2/alerts` : receiver.url;
}

/** Whether a receiver holds alerts' current state (told again while firing), not a stream of changes. */
export function keepsState(receiver: Receiver): boolean {
  return receiver.format === 'alertmanager-api';
}

export function resendMs(receiver: Receiver): number {
  return receiver.resendEvery ?? DEFAULT_RESEND_MS;
}

export function notificationBody(receiverName: string, receiver: Receiver, n: Notification, externalUrl: string, now = Date.now()): unknown {
  const { alert } = n;
  const startsAt = new Date(alert.firingSince ?? alert.since).toISOString();
  if (receiver.format === 'json') {
    return {
      status: n.status,
      alert: alert.rule,
      key: alert.key,
      severity: alert.severity,
      labels: alert.labels,
      summary: alert.summary,
      value: alert.value,
      since: startsAt,
      ...(n.status === 'resolved' ? { resolvedAt: new Date(alert.since).toISOString() } : {}),
    };
  }
  const labels = { alertname: alert.rule, severity: alert.severity, ...alert.labels };
  if (receiver.format === 'alertmanager-api') {
    return [
      {
        labels,
        annotations: { summary: alert.summary, description: description(alert, startsAt), value: alert.value },
        startsAt,
        endsAt: new Date(n.status === 'resolved' ? alert.since : now + VALID_RESENDS * resendMs(receiver)).toISOString(),
        generatorURL: generatorUrl(alert, externalUrl),
      },
    ];
  }
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
        startsAt,
        endsAt: n.status === 'resolved' ? new Date(alert.since).toISOString() : ZERO_TIME,
        generatorURL: externalUrl,
        fingerprint: createHash('sha256').update(alert.key).digest('hex').slice(0, 16),
      },
    ],
  };
}

/** For people reading the notification Alertmanager sends on: what holds, since when, where to look. */
function description(alert: Alert, startsAt: string): string {
  const { app, node } = alert.labels;
  const where = app !== undefined ? `gantry alerts --app ${app}` : `gantry alerts --node ${node}`;
  return `Gantry rule ${alert.rule} (${alert.severity}), firing since ${startsAt}: ${alert.summary}. \`${where}\` lists it; \`gantry events\` says what happened.`;
}

/** The server's alerts API narrowed to the alert's app or node: what "the source" of the alert is. */
function generatorUrl(alert: Alert, externalUrl: string): string {
  const { app, node } = alert.labels;
  const filter = app !== undefined ? `app=${encodeURIComponent(app)}` : node !== undefined ? `node=${encodeURIComponent(node)}` : '';
  return `${externalUrl}/v1/alerts${filter ? `?${filter}` : ''}`;
}
