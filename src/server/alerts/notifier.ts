// Sends notifications to webhook receivers in the background: a receiver that is down or slow
// never holds up evaluation. Each delivery is retried with doubling delays and given up after
// a while with an event; the queue is bounded, and when it is full the oldest delivery is
// dropped (and said so), so a dead receiver cannot grow the server's memory.
//
// An Alertmanager (format alertmanager-api) holds alerts' state rather than a stream of changes:
// a firing alert is pushed again every resend interval (its endsAt moving ahead, so one Gantry
// stops telling about resolves by itself), and a newer state replaces one still waiting to be
// sent, so a late firing push can never follow the resolve.
import type { Receiver } from '../../model/spec-alerts.js';
import type { EventLog } from '../services/events.js';
import type { Alert, Notification } from './evaluate.js';
import { deliveryUrl, keepsState, notificationBody, resendMs } from './bodies.js';

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
  /** Being sent now: its body is made, so a newer state must wait behind it, not replace it. */
  sending?: boolean;
}

export class Notifier {
  private readonly queue: Delivery[] = [];
  private readonly o: Required<NotifierOptions>;
  private timer: NodeJS.Timeout | undefined;
  private sending = false;
  private closed = false;
  /** For receivers that keep state: when each firing alert was last queued for them, by receiver and key. */
  private readonly pushedAt = new Map<string, number>();
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
        this.enqueue(receiver, notification, now);
      }
    }
    this.kick();
  }

  /**
   * Called after each evaluation with the alerts firing and told (not silenced): each is pushed
   * again to the receivers that keep state once their resend interval has passed since the last
   * push. An alert left out (resolved, silenced, gone) is pushed no more.
   */
  resend(firing: readonly Alert[], now = Date.now()): void {
    const current = new Set<string>();
    for (const alert of firing) {
      for (const name of alert.notify) {
        const receiver = this.receivers.get(name);
        if (!receiver || !keepsState(receiver)) continue;
        const key = `${name}\n${alert.key}`;
        current.add(key);
        const last = this.pushedAt.get(key);
        if (last === undefined || now - last >= resendMs(receiver)) this.enqueue(name, { status: 'firing', alert }, now);
      }
    }
    for (const key of this.pushedAt.keys()) if (!current.has(key)) this.pushedAt.delete(key);
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

  private enqueue(receiver: string, notification: Notification, now: number): void {
    if (keepsState(this.receivers.get(receiver)!)) {
      const key = `${receiver}\n${notification.alert.key}`;
      if (notification.status === 'firing') this.pushedAt.set(key, now);
      else this.pushedAt.delete(key);
      // The newest state replaces one still waiting, keeping its place in the retries (and the time it has been failing).
      const waiting = this.queue.find((d) => !d.sending && d.receiver === receiver && d.notification.alert.key === notification.alert.key);
      if (waiting) {
        waiting.notification = notification;
        return;
      }
    }
    if (this.queue.length >= this.o.maxQueue) {
      const dropped = this.queue.shift()!;
      this.counts.dropped++;
      this.events.note({ level: 'warning', type: 'alert.notify_failed', app: dropped.notification.alert.labels.app, message: `alert ${dropped.notification.alert.key}: notification to ${dropped.receiver} dropped: ${this.o.maxQueue} notifications waiting`, data: { receiver: dropped.receiver, alert: dropped.notification.alert.key } });
    }
    this.queue.push({ receiver, notification, queuedAt: now, attempts: 0, dueAt: now });
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
      await Promise.all(due.map(async (d) => {
        d.sending = true;
        try {
          await this.attempt(d);
        } finally {
          d.sending = false;
        }
      }));
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
      const answer = await fetch(deliveryUrl(receiver), {
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
    if (keepsState(receiver) && this.queue.some((d) => d !== delivery && d.receiver === delivery.receiver && d.notification.alert.key === alert.key)) {
      this.remove(delivery); // a newer state came while this one was being sent: it is the one to retry
      return;
    }
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
