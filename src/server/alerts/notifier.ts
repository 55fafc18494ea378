// Sends notifications to webhook receivers in the background: a receiver that is down or slow
// never holds up evaluation. Each delivery is retried with doubling delays and given up after
// a while with an event; the queue is bounded, and when it is full the oldest delivery is
// dropped (and said so), so a dead receiver cannot grow the server's memory.
import type { Receiver } from '../../model/spec-alerts.js';
import type { EventLog } from '../services/events.js';
import type { Notification } from './evaluate.js';
import { notificationBody } from './bodies.js';

export interface NotifierOptions {
  maxQueue?: number;
  /** First retry delay; doubled each time up to maxDelayMs. */
  initialDelayMs?: number;
  maxDelayMs?: number;
  /** Give up a delivery this long after it was queued. */
  giveUpAfterMs?: number;
  timeoutMs?: number;
  externalUrl?: string;
}

interface Delivery {
  receiver: string;
  notification: Notification;
  queuedAt: number;
  attempts: number;
  dueAt: number;
}

export class Notifier {
  private readonly queue: Delivery[] = [];
  private readonly o: Required<NotifierOptions>;
  private timer: NodeJS.Timeout | undefined;
  private sending = false;
  private closed = false;
  /** Deliveries that succeeded, failed for good and were dropped: for tests and metrics. */
  readonly counts = { sent: 0, failed: 0, dropped: 0 };

  constructor(
    private readonly receivers: ReadonlyMap<string, Receiver>,
    private readonly events: EventLog,
    options: NotifierOptions = {},
  ) {
    this.o = { maxQueue: 1000, initialDelayMs: 1000, maxDelayMs: 60_000, giveUpAfterMs: 15 * 60_000, timeoutMs: 10_000, externalUrl: 'http://gantry', ...options };
  }

  send(notifications: readonly Notification[]): void {
    const now = Date.now();
    for (const notification of notifications) {
      for (const receiver of notification.alert.notify) {
        if (!this.receivers.has(receiver)) {
          this.events.note({ level: 'warning', type: 'alert.notify_failed', app: notification.alert.labels.app, message: `alert ${notification.alert.key}: no receiver named "${receiver}" in the server's alert rules file`, data: { receiver, alert: notification.alert.key } });
          continue;
        }
        if (this.queue.length >= this.o.maxQueue) {
          const dropped = this.queue.shift()!;
          this.counts.dropped++;
          this.events.note({ level: 'warning', type: 'alert.notify_failed', app: dropped.notification.alert.labels.app, message: `alert ${dropped.notification.alert.key}: notification to ${dropped.receiver} dropped: ${this.o.maxQueue} notifications waiting`, data: { receiver: dropped.receiver, alert: dropped.notification.alert.key } });
        }
        this.queue.push({ receiver, notification, queuedAt: now, attempts: 0, dueAt: now });
      }
    }
    this.kick();
  }

  /** How many deliveries wait. */
  get waiting(): number {
    return this.queue.length;
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
  }

  private kick(): void {
    if (this.closed || this.sending || this.queue.length === 0) return;
    if (this.timer) clearTimeout(this.timer);
    const next = Math.min(...this.queue.map((d) => d.dueAt));
    this.timer = setTimeout(() => void this.drain(), Math.max(0, next - Date.now()));
    this.timer.unref();
  }

  private async drain(): Promise<void> {
    this.timer = undefined;
    this.sending = true;
    try {
      const now = Date.now();
      const due = this.queue.filter((d) => d.dueAt <= now);
      // Receivers are independent: one that hangs does not delay the others.
      await Promise.all(due.map((d) => this.attempt(d)));
    } finally {
      this.sending = false;
      this.kick();
    }
  }

  private async attempt(delivery: Delivery): Promise<void> {
    const receiver = this.receivers.get(delivery.receiver)!;
    const body = JSON.stringify(notificationBody(delivery.receiver, receiver, delivery.notification, this.o.externalUrl));
    let problem: string;
    try {
      const answer = await fetch(receiver.url, {
        method: 'POST',
        headers: { ...receiver.headers, 'content-type': 'application/json' },
        body,
        signal: AbortSignal.timeout(this.o.timeoutMs),
        redirect: 'error',
      });
      await answer.body?.cancel();
      if (answer.ok) {
        this.remove(delivery);
        this.counts.sent++;
        return;
      }
      problem = `HTTP ${answer.status}`;
    } catch (err) {
      problem = (err as Error).message;
    }
    delivery.attempts++;
    const alert = delivery.notification.alert;
    if (Date.now() - delivery.queuedAt >= this.o.giveUpAfterMs) {
      this.remove(delivery);
      this.counts.failed++;
      this.events.note({ level: 'error', type: 'alert.notify_failed', app: alert.labels.app, node: alert.labels.node, message: `alert ${alert.key}: ${delivery.notification.status} notification to ${delivery.receiver} given up after ${delivery.attempts} attempts: ${problem}`, data: { receiver: delivery.receiver, alert: alert.key, attempts: delivery.attempts } });
      return;
    }
    delivery.dueAt = Date.now() + Math.min(this.o.maxDelayMs, this.o.initialDelayMs * 2 ** (delivery.attempts - 1));
  }

  private remove(delivery: Delivery): void {
    const at = this.queue.indexOf(delivery);
    if (at !== -1) this.queue.splice(at, 1);
  }
}
