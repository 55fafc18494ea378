// The life of one instance on this node as a state machine, written as data: for every phase the
// instance can be in and every event that can happen to it, either the transition it takes (the
// next phase, what is done on the way, and the background step that phase runs) or an explicit
// "ignored". Nothing here runs anything: supervisor.ts drives the table, supervisor-steps.ts holds
// the steps. Reading one row tells everything a phase reacts to; the unit test walks every cell.
//
// Three kinds of events:
// - what is wanted (`want.*`), from the instance's assignment: offered on every tick, first;
// - what was seen (`seen.*`), from a runtime listing newer than the last step; then, in backoff,
//   whether the wait is over (`backoff.elapsed`); the first event a phase reacts to is taken;
// - what happened: a step's outcome (`start.*`, `stop.*`, `remove.*`) and the health checks'
//   verdicts (`health.*`), offered as they come.
// Phases with a step under way ("in flight") react only to that step's outcome; once it is in, the
// wish is offered again, so chained work (stop, then remove) goes on without waiting for a tick.
//
// A few transitions end in a choice, decided by the instance's spec when it is taken: whether it
// has a health check (afterStart), what its restart policy says after it went down (afterDown),
// and after it failed its checks (afterUnhealthy). Their outcomes are data too (CHOICES).
import type { HealthSpec, RestartSpec } from '../model/spec.js';
import type { InstanceState } from '../model/types.js';

export const PHASES = [
  'pending', // nothing known yet (just assigned, or a stop or removal failed): the next tick decides
  'starting', // in flight: a start, a restart, a resume
  'warming', // up, its health check has not passed yet since it started
  'running', // up and healthy (or without a health check)
  'unhealthy', // failed its checks; kept, still checked (restart policy never)
  'recycling', // in flight: stopped for failing its checks, to be restarted
  'backoff', // down, waiting to be started again
  'stopping', // in flight: withdrawn, before-stop hook, signal and grace
  'stopped', // stopped on request (or between a stop and what follows it)
  'exited', // down, and its restart policy keeps it down
  'failed', // down after maxRetries restarts: given up
  'rebuilding', // in flight: its container or process record removed, volumes kept, for a new one
  'removing', // in flight: removed with everything it held
  'removed', // gone, as asked
] as const;
export type Phase = (typeof PHASES)[number];

export const EVENTS = [
  'want.running', 'want.stopped', 'want.removed', 'want.rebuild', 'want.restart',
  'seen.running', 'seen.exited', 'seen.missing',
  'backoff.elapsed',
  'health.passed', 'health.failed',
  'start.done', 'start.failed', 'stop.done', 'stop.failed', 'remove.done', 'remove.failed',
] as const;
export type MachineEvent = (typeof EVENTS)[number];

/** Background work; the phase it runs in waits for its outcome (STEP_OUTCOMES). */
export type Step = 'start' | 'startAgain' | 'resume' | 'restartInPlace' | 'stop' | 'remove' | 'discard';

export const STEP_OUTCOMES: Record<Step, { done: MachineEvent; failed: MachineEvent }> = {
  start: { done: 'start.done', failed: 'start.failed' },
  startAgain: { done: 'start.done', failed: 'start.failed' },
  resume: { done: 'start.done', failed: 'start.failed' },
  restartInPlace: { done: 'start.done', failed: 'start.failed' },
  stop: { done: 'stop.done', failed: 'stop.failed' },
  remove: { done: 'remove.done', failed: 'remove.failed' },
  discard: { done: 'remove.done', failed: 'remove.failed' },
};

/** What a transition does at once, in order, before it enters its phase. */
export type Effect =
  | 'adopt' // found running: take it as it is
  | 'noteExit' // it exited by itself: an event, and why, for what follows
  | 'noteVanished' // its container or process is gone, not by Gantry's hand
  | 'noteUnhealthy' // it failed `retries` checks in a row
  | 'noteHealthy' // a check passed: an event, and the after-start hook if one is due
  | 'afterStartHook' // started without a health check: the after-start hook
  | 'scheduleRestart' // when the backoff ends
  | 'keepDown' // why it stays down
  | 'giveUp' // maxRetries reached
  | 'failStart' // the start failed: an event, and the backoff before the next try
  | 'noteFailure'; // a stop or removal failed: an event; the next tick tries again

export type Choice = 'afterStart' | 'afterDown' | 'afterUnhealthy';

export interface Transition {
  to: Phase;
  effects?: readonly Effect[];
  step?: Step;
}
/** Effects first; then the choice's outcome (its own effects, phase and step). */
export interface ChoiceTransition {
  choose: Choice;
  effects?: readonly Effect[];
}
export const IGNORED = 'ignored';
export type Cell = Transition | ChoiceTransition | typeof IGNORED;

export const CHOICES = {
  afterStart: {
    checked: { to: 'warming' },
    unchecked: { to: 'running', effects: ['afterStartHook'] },
  },
  afterDown: {
    restart: { to: 'backoff', effects: ['scheduleRestart'] },
    keepDown: { to: 'exited', effects: ['keepDown'] },
    giveUp: { to: 'failed', effects: ['giveUp'] },
  },
  afterUnhealthy: {
    keep: { to: 'unhealthy' },
    restart: { to: 'recycling', step: 'stop' },
  },
} as const satisfies Record<Choice, Record<string, Transition>>;
export type Verdict<C extends Choice> = keyof (typeof CHOICES)[C];

export function afterStartVerdict(health: HealthSpec | undefined): Verdict<'afterStart'> {
  return health ? 'checked' : 'unchecked';
}

/** `failed`: it went down with a failure (non-zero exit, vanished), not a clean exit. */
export function afterDownVerdict(policy: RestartSpec, attempt: number, failed: boolean): Verdict<'afterDown'> {
  const restart = policy.policy === 'always' || (policy.policy === 'on-failure' && failed);
  if (!restart) return 'keepDown';
  return policy.maxRetries !== undefined && attempt >= policy.maxRetries ? 'giveUp' : 'restart';
}

export function afterUnhealthyVerdict(policy: RestartSpec): Verdict<'afterUnhealthy'> {
  return policy.policy === 'never' ? 'keep' : 'restart';
}

/** Before the restart after `attempt` restarts in a row: doubled each time, up to backoff.max. */
export function backoffDelay(backoff: RestartSpec['backoff'], attempt: number): number {
  // The exponent is capped: 0 × 2^1024 would be NaN, and no delay needs more than 2^30 × initial.
  return Math.min(backoff.initial * 2 ** Math.min(attempt, 30), backoff.max);
}

/** Backoff is forgotten once an instance has run this long. */
export const STABLE_AFTER_MS = 10_000;

/** The state the server is told for each phase; and whether the instance counts as healthy. */
export const REPORTED: Record<Phase, { state: InstanceState; healthy: boolean | null }> = {
  pending: { state: 'pending', healthy: null },
  starting: { state: 'starting', healthy: null },
  warming: { state: 'starting', healthy: null },
  running: { state: 'running', healthy: true },
  unhealthy: { state: 'unhealthy', healthy: false },
  recycling: { state: 'unhealthy', healthy: false },
  backoff: { state: 'backoff', healthy: null },
  stopping: { state: 'stopping', healthy: null },
  stopped: { state: 'exited', healthy: null },
  exited: { state: 'exited', healthy: null },
  failed: { state: 'failed', healthy: null },
  rebuilding: { state: 'exited', healthy: null },
  removing: { state: 'exited', healthy: null },
  removed: { state: 'removed', healthy: null },
};

/** Its container or process runs: health is checked in these. */
export const UP_PHASES: ReadonlySet<Phase> = new Set(['warming', 'running', 'unhealthy']);
/** A step runs in these; observations and wishes wait until it is done. */
export const IN_FLIGHT_PHASES: ReadonlySet<Phase> = new Set(['starting', 'recycling', 'stopping', 'rebuilding', 'removing']);

const WISHES = ['want.running', 'want.stopped', 'want.removed', 'want.rebuild', 'want.restart'] as const;
const SIGHTINGS = ['seen.running', 'seen.exited', 'seen.missing'] as const;
const HEALTH = ['health.passed', 'health.failed'] as const;
const OUTCOMES = ['start.done', 'start.failed', 'stop.done', 'stop.failed', 'remove.done', 'remove.failed'] as const;
const everythingBut = (...kept: MachineEvent[]) => EVENTS.filter((e) => !kept.includes(e));

/** Any wish but "running" begins with a stop; the stop step skips what a stopped instance does not need. */
const stopFirst: Transition = { to: 'stopping', step: 'stop' };
const stopForWishes = { 'want.stopped': stopFirst, 'want.removed': stopFirst, 'want.rebuild': stopFirst, 'want.restart': stopFirst };
const adopt: ChoiceTransition = { choose: 'afterStart', effects: ['adopt'] };
const exitedByItself: ChoiceTransition = { choose: 'afterDown', effects: ['noteExit'] };
const vanished: ChoiceTransition = { choose: 'afterDown', effects: ['noteVanished'] };
const failedChecks: ChoiceTransition = { choose: 'afterUnhealthy', effects: ['noteUnhealthy'] };
const stopOrRemovalFailed: Transition = { to: 'pending', effects: ['noteFailure'] };

/** One phase's row: what it reacts to, and what it ignores; each event must be in exactly one. */
function row(reacts: Partial<Record<MachineEvent, Transition | ChoiceTransition>>, ignores: readonly MachineEvent[]): Record<MachineEvent, Cell> {
  const cells = {} as Record<MachineEvent, Cell>;
  for (const event of EVENTS) {
    const reaction = reacts[event];
    const ignored = ignores.includes(event);
    if ((reaction === undefined) === !ignored) throw new Error(`supervisor machine: ${event} must be handled or ignored, once`);
    cells[event] = reaction ?? IGNORED;
  }
  return cells;
}

/** While up: stop for any other wish, notice it going down, take the checks' verdicts. */
function upRow(onPassed: Transition | undefined): Record<MachineEvent, Cell> {
  return row(
    { ...stopForWishes, 'seen.exited': exitedByItself, 'seen.missing': vanished, ...(onPassed ? { 'health.passed': onPassed } : {}), 'health.failed': failedChecks },
    ['want.running', 'seen.running', 'backoff.elapsed', ...OUTCOMES, ...(onPassed ? [] : (['health.passed'] as const))],
  );
}

/** Down and left alone (by its policy, or given up): only a wish or someone starting it moves it. */
const downRow = row({ ...stopForWishes, 'seen.running': adopt }, ['want.running', 'seen.exited', 'seen.missing', 'backoff.elapsed', ...HEALTH, ...OUTCOMES]);

export const TABLE: Record<Phase, Record<MachineEvent, Cell>> = {
  pending: row(
    { ...stopForWishes, 'seen.running': adopt, 'seen.exited': exitedByItself, 'seen.missing': { to: 'starting', step: 'start' } },
    ['want.running', 'backoff.elapsed', ...HEALTH, ...OUTCOMES],
  ),
  starting: row(
    { 'start.done': { choose: 'afterStart' }, 'start.failed': { to: 'backoff', effects: ['failStart'] } },
    everythingBut('start.done', 'start.failed'),
  ),
  warming: upRow({ to: 'running', effects: ['noteHealthy'] }),
  running: upRow(undefined),
  unhealthy: upRow({ to: 'running', effects: ['noteHealthy'] }),
  recycling: row({ 'stop.done': { to: 'starting', step: 'startAgain' }, 'stop.failed': stopOrRemovalFailed }, everythingBut('stop.done', 'stop.failed')),
  backoff: row(
    { ...stopForWishes, 'seen.running': adopt, 'backoff.elapsed': { to: 'starting', step: 'startAgain' } },
    ['want.running', 'seen.exited', 'seen.missing', ...HEALTH, ...OUTCOMES],
  ),
  stopping: row({ 'stop.done': { to: 'stopped' }, 'stop.failed': stopOrRemovalFailed }, everythingBut('stop.done', 'stop.failed')),
  stopped: row(
    {
      'want.running': { to: 'starting', step: 'resume' },
      'want.removed': { to: 'removing', step: 'remove' },
      'want.rebuild': { to: 'rebuilding', step: 'discard' },
      'want.restart': { to: 'starting', step: 'restartInPlace' },
      // Started by hand while it is to stay stopped.
      'seen.running': stopFirst,
    },
    ['want.stopped', 'seen.exited', 'seen.missing', 'backoff.elapsed', ...HEALTH, ...OUTCOMES],
  ),
  exited: downRow,
  failed: downRow,
  rebuilding: row({ 'remove.done': { to: 'starting', step: 'start' }, 'remove.failed': stopOrRemovalFailed }, everythingBut('remove.done', 'remove.failed')),
  removing: row({ 'remove.done': { to: 'removed' }, 'remove.failed': stopOrRemovalFailed }, everythingBut('remove.done', 'remove.failed')),
  removed: row({}, EVENTS),
};

export function isChoice(cell: Transition | ChoiceTransition): cell is ChoiceTransition {
  return 'choose' in cell;
}

/** The cell for `event` in `phase`: a transition, a choice, or IGNORED. */
export function reaction(phase: Phase, event: MachineEvent): Cell {
  return TABLE[phase][event];
}

export { WISHES, SIGHTINGS };
