// The agent's per-instance state machine (src/agent/supervisor-machine.ts) and the Supervisor
// that drives it (src/agent/supervisor.ts), without Docker or processes:
// 1. a walk of every cell of TABLE (every phase × every event) against invariants that a wrong
//    cell would break, and proof that the walk catches mutated copies of the table;
// 2. the verdict functions behind the table's choices, the backoff, and what each phase reports;
// 3. the Supervisor driven tick by tick over an in-memory fake Runtime whose calls can be made to
//    fail or hang, with time passed to tick() (its injectable clock) instead of waited for.
// Only the health-check tests wait on real timers (a probe every 20 ms).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Readable } from 'node:stream';
import {
  CHOICES, EVENTS, IGNORED, IN_FLIGHT_PHASES, PHASES, REPORTED, STABLE_AFTER_MS, STEP_OUTCOMES, TABLE, UP_PHASES,
  afterDownVerdict, afterStartVerdict, afterUnhealthyVerdict, backoffDelay, isChoice, reaction,
  type Cell, type Choice, type Effect, type MachineEvent, type Phase, type Step, type Transition,
} from '../src/agent/supervisor-machine.js';
import { Supervisor, type SupervisorHooks } from '../src/agent/supervisor.js';
import { EntrySpec, HealthSpec, RestartSpec } from '../src/model/spec.js';
import type { GantryEvent, Instance, InstanceStatus } from '../src/model/types.js';
import type { ExecResult, Runtime, RunSpec, RuntimeInstance, StartResult } from '../src/runtime/runtime.js';

// ---- 1. The table ---------------------------------------------------------------------------

type Table = Record<Phase, Record<MachineEvent, Cell>>;
type Choices = Record<Choice, Record<string, Transition>>;

/** Every effect, and the events whose cells may carry it (what it reads must come with them). */
const EFFECT_EVENTS = {
  adopt: ['seen.running'], // reads the runtime's view of it
  noteExit: ['seen.exited'], // reads its exit code
  noteVanished: ['seen.missing'],
  noteUnhealthy: ['health.failed'],
  noteHealthy: ['health.passed'],
  afterStartHook: ['start.done', 'seen.running'], // just up: started, or adopted
  scheduleRestart: ['seen.exited', 'seen.missing'], // went down by itself
  keepDown: ['seen.exited', 'seen.missing'],
  giveUp: ['seen.exited', 'seen.missing'],
  failStart: ['start.failed'], // reads the step's error
  noteFailure: ['stop.failed', 'remove.failed'],
} as const satisfies Record<Effect, readonly MachineEvent[]>;
const CHOICE_NAMES = { afterStart: true, afterDown: true, afterUnhealthy: true } as const satisfies Record<Choice, true>;
const STEPS = Object.keys(STEP_OUTCOMES) as Step[];
const OUTCOME_EVENTS: ReadonlySet<MachineEvent> = new Set(STEPS.flatMap((s) => [STEP_OUTCOMES[s].done, STEP_OUTCOMES[s].failed]));

/** One way out of a cell: the cell itself, or one outcome of its choice. */
interface Move {
  from: Phase;
  event: MachineEvent;
  where: string;
  choose?: string;
  /** The cell's own effects (before a choice's). */
  cellEffects: readonly Effect[];
  effects: readonly Effect[];
  to: Phase;
  step?: Step;
}

const same = (a: Iterable<string>, b: Iterable<string>) => {
  const x = [...new Set(a)].sort();
  const y = [...new Set(b)].sort();
  return x.length === y.length && x.every((v, i) => v === y[i]);
};

function movesOf(table: Table, choices: Choices, problems: string[]): Move[] {
  const moves: Move[] = [];
  for (const from of PHASES) {
    for (const event of EVENTS) {
      const where = `${from} × ${event}`;
      const cell = table[from]?.[event];
      if (cell === undefined) {
        problems.push(`${where}: no cell`);
        continue;
      }
      if (cell === IGNORED) continue;
      if (typeof cell !== 'object' || cell === null) {
        problems.push(`${where}: neither IGNORED nor a transition`);
        continue;
      }
      const cellEffects = cell.effects ?? [];
      if (!isChoice(cell)) {
        moves.push({ from, event, where, cellEffects, effects: cellEffects, to: cell.to, step: cell.step });
        continue;
      }
      if ('to' in cell || 'step' in cell) problems.push(`${where}: a choice has no phase or step of its own`);
      const outcomes = choices[cell.choose];
      if (!outcomes || !(cell.choose in CHOICE_NAMES)) {
        problems.push(`${where}: unknown choice ${String(cell.choose)}`);
        continue;
      }
      for (const [verdict, outcome] of Object.entries(outcomes)) {
        moves.push({ from, event, where: `${where} → ${cell.choose}.${verdict}`, choose: cell.choose, cellEffects, effects: [...cellEffects, ...(outcome.effects ?? [])], to: outcome.to, step: outcome.step });
      }
    }
  }
  return moves;
}

/** Where a cell leads (every outcome of a choice). */
function targets(cell: Cell, choices: Choices): Phase[] {
  if (cell === IGNORED) return [];
  if (!isChoice(cell)) return [cell.to];
  return Object.values(choices[cell.choose] ?? {}).map((t) => t.to);
}

/**
 * With `wish` offered over and over (and every step succeeding), where does each phase end up?
 * A wish is offered on every tick and again after every step, so it must end in a phase that
 * ignores it, and that phase must be one of `settled`, without going round in circles.
 */
function settleProblems(table: Table, choices: Choices, wish: MachineEvent, settled: readonly Phase[]): string[] {
  const problems = new Set<string>();
  for (const start of PHASES) {
    if (start === 'removed') continue;
    const stack: Phase[][] = [[start]];
    while (stack.length > 0) {
      const path = stack.pop()!;
      const phase = path[path.length - 1]!;
      const row = table[phase];
      if (!row) continue; // an unknown phase: reported by the walk
      let cells: Cell[];
      if (IN_FLIGHT_PHASES.has(phase)) {
        cells = EVENTS.filter((e) => e.endsWith('.done')).map((e) => row[e]).filter((c) => c !== IGNORED);
        if (cells.length === 0) problems.add(`${wish} from ${start}: stuck in flight in ${phase} (${path.join(' → ')})`);
      } else {
        const cell = row[wish];
        if (cell === IGNORED) {
          if (!settled.includes(phase)) problems.add(`${wish} from ${start} settles in ${phase}, not ${settled.join(' or ')} (${path.join(' → ')})`);
          continue;
        }
        cells = [cell];
      }
      for (const next of cells.flatMap((c) => targets(c, choices))) {
        if (path.includes(next)) problems.add(`${wish} from ${start} does not settle: it loops (${[...path, next].join(' → ')})`);
        else stack.push([...path, next]);
      }
    }
  }
  return [...problems];
}

/** Everything wrong with a table and its choices; [] when nothing is. */
function tableProblems(table: Table, choices: Choices): string[] {
  const problems: string[] = [];
  const phases = new Set<string>(PHASES);

  // Shape: a row per phase, a cell per event, every choice known.
  if (!same(Object.keys(table), PHASES)) problems.push(`the table's phases are ${Object.keys(table).join(',')}`);
  for (const phase of PHASES) if (table[phase] && !same(Object.keys(table[phase]), EVENTS)) problems.push(`${phase}: the row's events are not EVENTS`);
  if (!same(Object.keys(choices), Object.keys(CHOICE_NAMES))) problems.push(`the choices are ${Object.keys(choices).join(',')}`);
  for (const step of STEPS) {
    const { done, failed } = STEP_OUTCOMES[step];
    if (!done.endsWith('.done') || !failed.endsWith('.failed') || done.split('.')[0] !== failed.split('.')[0]) problems.push(`step ${step}: outcomes ${done} / ${failed} do not pair up`);
  }
  for (const set of [UP_PHASES, IN_FLIGHT_PHASES]) for (const p of set) if (!phases.has(p)) problems.push(`${p} is not a phase`);
  for (const p of UP_PHASES) if (IN_FLIGHT_PHASES.has(p)) problems.push(`${p} is both up and in flight`);

  const moves = movesOf(table, choices, problems);
  const stepsInto = new Map<Phase, Set<Step>>(PHASES.map((p) => [p, new Set<Step>()]));
  for (const m of moves) if (m.step !== undefined && stepsInto.has(m.to)) stepsInto.get(m.to)!.add(m.step);

  for (const m of moves) {
    if (!phases.has(m.to)) {
      problems.push(`${m.where}: goes to ${String(m.to)}, not a phase`);
      continue;
    }
    // Effects: known, once each, on the events that give them what they read.
    if (new Set(m.effects).size !== m.effects.length) problems.push(`${m.where}: an effect twice (${m.effects.join(',')})`);
    for (const effect of m.effects) {
      const allowed: readonly MachineEvent[] | undefined = (EFFECT_EVENTS as Record<string, readonly MachineEvent[]>)[effect];
      if (!allowed) problems.push(`${m.where}: unknown effect ${effect}`);
      else if (!allowed.includes(m.event)) problems.push(`${m.where}: effect ${effect} on an event that does not bring what it needs`);
    }
    // Steps: a phase in flight is entered with its step; no other phase is.
    if (m.step !== undefined && !STEPS.includes(m.step)) problems.push(`${m.where}: unknown step ${m.step}`);
    if (IN_FLIGHT_PHASES.has(m.to) && m.step === undefined) problems.push(`${m.where}: enters in-flight ${m.to} without a step (it would wait forever)`);
    if (!IN_FLIGHT_PHASES.has(m.to) && m.step !== undefined) problems.push(`${m.where}: runs step ${m.step} in ${m.to}, which does not wait for it`);
    // The books the Supervisor keeps for a phase are set on the way in.
    const has = (...any: Effect[]) => any.some((e) => m.effects.includes(e));
    if (m.to === 'backoff' && !has('scheduleRestart', 'failStart')) problems.push(`${m.where}: enters backoff without scheduling its end`);
    if (m.to === 'failed' && !has('giveUp')) problems.push(`${m.where}: enters failed without giving up`);
    if (m.to === 'exited' && !has('keepDown')) problems.push(`${m.where}: enters exited without keepDown`);
    if (has('giveUp') && m.to !== 'failed') problems.push(`${m.where}: gives up but goes to ${m.to}`);
    if (has('scheduleRestart', 'failStart') && m.to !== 'backoff') problems.push(`${m.where}: schedules a restart but goes to ${m.to}`);
    // Up (checked, registered) only once started or adopted; running only with its after-start hook seen to.
    if (UP_PHASES.has(m.to) && !UP_PHASES.has(m.from) && !(m.choose === 'afterStart' && (m.event === 'start.done' || m.cellEffects.includes('adopt')))) {
      problems.push(`${m.where}: enters up phase ${m.to} from ${m.from} without being started or adopted`);
    }
    if (m.to === 'running' && m.from !== 'running' && !has('noteHealthy', 'afterStartHook')) problems.push(`${m.where}: enters running without its after-start hook`);
    // A choice decides on what the cell noted first.
    if (m.choose === 'afterDown' && !m.cellEffects.some((e) => e === 'noteExit' || e === 'noteVanished')) problems.push(`${m.where}: afterDown without noting how it went down`);
    if (m.choose === 'afterUnhealthy' && !m.cellEffects.includes('noteUnhealthy')) problems.push(`${m.where}: afterUnhealthy without noteUnhealthy`);
    if (m.choose === 'afterStart' && m.event !== 'start.done' && !m.cellEffects.includes('adopt')) problems.push(`${m.where}: afterStart neither after a start nor an adoption`);
    // Removed means removed with everything: only a finished remove step (not a discard) gets there.
    if (m.to === 'removed' && !(m.event === 'remove.done' && same(stepsInto.get(m.from) ?? [], ['remove']))) problems.push(`${m.where}: enters removed other than by a finished remove step`);
  }

  for (const phase of PHASES) {
    const row = table[phase];
    if (!row) continue;
    const reacts = EVENTS.filter((e) => row[e] !== undefined && row[e] !== IGNORED);
    const on = (e: MachineEvent) => reacts.includes(e);
    if (IN_FLIGHT_PHASES.has(phase)) {
      // In flight: exactly the outcomes of the steps it is entered with, both of each.
      const steps = stepsInto.get(phase)!;
      const expected = [...steps].flatMap((s) => [STEP_OUTCOMES[s].done, STEP_OUTCOMES[s].failed]);
      if (steps.size === 0) problems.push(`${phase}: in flight, but no cell enters it with a step`);
      for (const e of reacts) if (!expected.includes(e)) problems.push(`${phase}: in flight with ${[...steps].join('/')}, but reacts to ${e}`);
      for (const e of expected) if (!on(e)) problems.push(`${phase}: in flight with ${[...steps].join('/')}, but ignores ${e} (stuck in flight)`);
    } else {
      for (const e of reacts) if (OUTCOME_EVENTS.has(e)) problems.push(`${phase}: not in flight, but reacts to the step outcome ${e}`);
    }
    for (const e of ['health.passed', 'health.failed'] as const) if (on(e) && !UP_PHASES.has(phase)) problems.push(`${phase}: not up (no checks run), but reacts to ${e}`);
    if (on('backoff.elapsed') !== (phase === 'backoff')) problems.push(`${phase}: ${on('backoff.elapsed') ? 'reacts to' : 'ignores'} backoff.elapsed`);
    if (UP_PHASES.has(phase)) {
      if (on('want.running') || on('seen.running')) problems.push(`${phase}: up, but reacts to want.running or seen.running (it is what is wanted)`);
      if (!on('seen.exited') || !on('seen.missing')) problems.push(`${phase}: up, but does not notice it going down`);
      if (!on('health.failed')) problems.push(`${phase}: up, but ignores failing checks`);
    } else if (!IN_FLIGHT_PHASES.has(phase) && phase !== 'removed' && !on('seen.running')) {
      problems.push(`${phase}: down, but ignores it being seen running (started by hand, or by an earlier agent)`);
    }
    if (phase === 'removed' && reacts.length > 0) problems.push(`removed: not terminal, reacts to ${reacts.join(',')}`);
  }

  // Every phase can be reached from pending, through any cell and any verdict.
  const reached = new Set<Phase>(['pending']);
  for (let grew = true; grew; ) {
    grew = false;
    for (const m of moves) {
      if (reached.has(m.from) && phases.has(m.to) && !reached.has(m.to)) {
        reached.add(m.to);
        grew = true;
      }
    }
  }
  for (const p of PHASES) if (!reached.has(p)) problems.push(`${p}: not reachable from pending`);

  // What is wanted is reached from anywhere, and then left alone.
  // (A removal under way when the stop is asked for ends as it began: removed.)
  problems.push(...settleProblems(table, choices, 'want.stopped', ['stopped', 'removed']));
  problems.push(...settleProblems(table, choices, 'want.removed', ['removed']));
  return problems;
}

const copyOfTable = () => structuredClone(TABLE) as Table;
const copyOfChoices = () => structuredClone(CHOICES) as unknown as Choices;

describe('the table', () => {
  test('every cell of every row is IGNORED or a valid transition, and the whole keeps its invariants', () => {
    let cells = 0;
    for (const phase of PHASES) {
      for (const event of EVENTS) {
        const cell = reaction(phase, event);
        assert.equal(cell, TABLE[phase][event]);
        assert.ok(cell === IGNORED || (typeof cell === 'object' && ('to' in cell) !== ('choose' in cell)), `${phase} × ${event}`);
        cells++;
      }
    }
    assert.equal(cells, PHASES.length * EVENTS.length);
    assert.deepEqual(tableProblems(TABLE, CHOICES), []);
  });

  test('each phase reacts to what it should (a readable summary, row by row)', () => {
    const reacting = (phase: Phase) => EVENTS.filter((e) => TABLE[phase][e] !== IGNORED);
    assert.deepEqual(reacting('starting'), ['start.done', 'start.failed']);
    assert.deepEqual(reacting('stopping'), ['stop.done', 'stop.failed']);
    assert.deepEqual(reacting('recycling'), ['stop.done', 'stop.failed']);
    assert.deepEqual(reacting('removing'), ['remove.done', 'remove.failed']);
    assert.deepEqual(reacting('rebuilding'), ['remove.done', 'remove.failed']);
    assert.deepEqual(reacting('removed'), []);
    assert.deepEqual(reacting('running'), ['want.stopped', 'want.removed', 'want.rebuild', 'want.restart', 'seen.exited', 'seen.missing', 'health.failed']);
    assert.deepEqual(reacting('stopped'), ['want.running', 'want.removed', 'want.rebuild', 'want.restart', 'seen.running']);
    assert.deepEqual(reacting('backoff'), ['want.stopped', 'want.removed', 'want.rebuild', 'want.restart', 'seen.running', 'backoff.elapsed']);
  });

  // The walk is only worth something if it fails on a wrong table: each mutated copy (the source
  // and the TABLE the Supervisor reads are untouched) must be caught, by the invariant named.
  const mutations: Array<{ what: string; mutate: (t: Table, c: Choices) => void; caught: RegExp }> = [
    { what: 'a stop failure ignored while stopping', mutate: (t) => void (t.stopping['stop.failed'] = IGNORED), caught: /stopping: in flight .* ignores stop\.failed/ },
    { what: 'in flight, reacting to a wish', mutate: (t) => void (t.starting['want.stopped'] = { to: 'stopping', step: 'stop' }), caught: /starting: in flight .* reacts to want\.stopped/ },
    { what: 'a stale outcome handled outside flight', mutate: (t) => void (t.stopped['stop.done'] = { to: 'stopped' }), caught: /stopped: not in flight, but reacts to the step outcome stop\.done/ },
    { what: 'a start without its step', mutate: (t) => void (t.backoff['backoff.elapsed'] = { to: 'starting' }), caught: /backoff × backoff\.elapsed: enters in-flight starting without a step/ },
    { what: 'a step in a phase that does not wait', mutate: (t) => void (t.stopped['want.running'] = { to: 'running', step: 'resume', effects: ['afterStartHook'] }), caught: /runs step resume in running/ },
    { what: 'the wrong step for a phase', mutate: (t) => void (t.backoff['seen.running'] = { to: 'stopping', step: 'remove' }), caught: /stopping: in flight with stop\/remove, but ignores remove\.done/ },
    { what: 'a choice outcome without its step', mutate: (_t, c) => void (c.afterUnhealthy.restart = { to: 'recycling' }), caught: /afterUnhealthy\.restart: enters in-flight recycling without a step/ },
    { what: 'an exit not noticed while running', mutate: (t) => void (t.running['seen.exited'] = IGNORED), caught: /running: up, but does not notice it going down/ },
    { what: 'a running instance started again', mutate: (t) => void (t.running['seen.running'] = { to: 'starting', step: 'start' }), caught: /running: up, but reacts to want\.running or seen\.running/ },
    { what: 'removed no longer terminal', mutate: (t) => void (t.removed['want.running'] = { to: 'starting', step: 'start' }), caught: /removed: not terminal/ },
    { what: 'removed after a discard (volumes kept)', mutate: (t) => void (t.rebuilding['remove.done'] = { to: 'removed' }), caught: /enters removed other than by a finished remove step/ },
    { what: 'up without being started or adopted', mutate: (t) => void (t.exited['seen.running'] = { to: 'running', effects: ['afterStartHook'] }), caught: /enters up phase running from exited without being started or adopted/ },
    { what: 'running without its after-start hook', mutate: (t) => void (t.warming['health.passed'] = { to: 'running' }), caught: /warming × health\.passed: enters running without its after-start hook/ },
    { what: 'backoff without its end scheduled', mutate: (t) => void (t.pending['seen.exited'] = { to: 'backoff', effects: ['noteExit'] }), caught: /pending × seen\.exited: enters backoff without scheduling its end/ },
    { what: 'an exit code read where there is none', mutate: (t) => void (t.running['seen.missing'] = { choose: 'afterDown', effects: ['noteExit'] }), caught: /effect noteExit on an event that does not bring what it needs/ },
    { what: 'a policy verdict on a stale reason', mutate: (t) => void (t.warming['health.failed'] = { choose: 'afterDown' }), caught: /afterDown without noting how it went down/ },
    { what: 'checks heard where none run', mutate: (t) => void (t.failed['health.passed'] = { to: 'running', effects: ['noteHealthy'] }), caught: /failed: not up \(no checks run\), but reacts to health\.passed/ },
    { what: 'a backoff that never ends', mutate: (t) => void (t.backoff['backoff.elapsed'] = IGNORED), caught: /backoff: ignores backoff\.elapsed/ },
    { what: 'a stopped instance started by hand left running', mutate: (t) => void (t.stopped['seen.running'] = IGNORED), caught: /stopped: down, but ignores it being seen running/ },
    { what: 'a removal wish that stops short', mutate: (t) => void (t.stopped['want.removed'] = IGNORED), caught: /want\.removed from \w+ settles in stopped/ },
    { what: 'a stop that leads back to a stop', mutate: (t) => void (t.stopping['stop.done'] = { to: 'pending' }), caught: /want\.stopped from \w+ does not settle: it loops/ },
    { what: 'a phase no cell leads to', mutate: (t) => void (t.stopped['want.rebuild'] = { to: 'starting', step: 'start' }), caught: /rebuilding: not reachable from pending/ },
    { what: 'a cell missing from a row', mutate: (t) => void delete (t.exited as Partial<Record<MachineEvent, Cell>>)['seen.missing'], caught: /exited × seen\.missing: no cell/ },
  ];
  for (const { what, mutate, caught } of mutations) {
    test(`the walk catches a mutated copy: ${what}`, () => {
      const table = copyOfTable();
      const choices = copyOfChoices();
      mutate(table, choices);
      const problems = tableProblems(table, choices);
      assert.ok(problems.some((p) => caught.test(p)), `expected ${caught} among:\n${problems.join('\n')}`);
    });
  }

  test('the mutations touched copies only', () => {
    assert.deepEqual(tableProblems(TABLE, CHOICES), []);
    assert.equal(TABLE.stopping['stop.failed'] === IGNORED, false);
  });
});

// ---- 2. Verdicts, backoff, what is reported -------------------------------------------------

const restartSpec = (policy: 'always' | 'on-failure' | 'never', maxRetries?: number) => RestartSpec.parse({ policy, ...(maxRetries === undefined ? {} : { maxRetries }) });

describe('verdicts', () => {
  test('afterStart: checked with a health check, unchecked without', () => {
    assert.equal(afterStartVerdict(undefined), 'unchecked');
    assert.equal(afterStartVerdict(HealthSpec.parse({ tcp: { port: 80 } })), 'checked');
  });

  test('afterDown: restart, keep down or give up, per policy, clean exit or failure, and maxRetries', () => {
    const cases: Array<[policy: 'always' | 'on-failure' | 'never', maxRetries: number | undefined, attempt: number, failed: boolean, verdict: string]> = [
      ['always', undefined, 0, true, 'restart'],
      ['always', undefined, 0, false, 'restart'], // a clean exit too
      ['always', undefined, 1000, true, 'restart'], // no maxRetries: never gives up
      ['always', 3, 2, true, 'restart'],
      ['always', 3, 3, true, 'giveUp'],
      ['always', 3, 4, false, 'giveUp'],
      ['always', 0, 0, true, 'giveUp'], // maxRetries 0: not once
      ['on-failure', undefined, 0, true, 'restart'],
      ['on-failure', undefined, 0, false, 'keepDown'],
      ['on-failure', 2, 1, true, 'restart'],
      ['on-failure', 2, 2, true, 'giveUp'],
      ['on-failure', 2, 5, false, 'keepDown'], // a clean exit is kept down, not "given up"
      ['never', undefined, 0, true, 'keepDown'],
      ['never', undefined, 0, false, 'keepDown'],
      ['never', 0, 0, true, 'keepDown'],
    ];
    for (const [policy, maxRetries, attempt, failed, verdict] of cases) {
      assert.equal(afterDownVerdict(restartSpec(policy, maxRetries), attempt, failed), verdict, `${policy} maxRetries=${maxRetries} attempt=${attempt} failed=${failed}`);
    }
    // Every outcome of the choice can be reached, and no verdict names a missing outcome.
    assert.ok(same(new Set(cases.map((c) => c[4])), Object.keys(CHOICES.afterDown)));
  });

  test('afterUnhealthy: kept (and still checked) with policy never, restarted otherwise', () => {
    assert.equal(afterUnhealthyVerdict(restartSpec('never')), 'keep');
    assert.equal(afterUnhealthyVerdict(restartSpec('on-failure')), 'restart');
    assert.equal(afterUnhealthyVerdict(restartSpec('always', 0)), 'restart');
    assert.ok(same(['keep', 'restart'], Object.keys(CHOICES.afterUnhealthy)));
    assert.ok(same(['checked', 'unchecked'], Object.keys(CHOICES.afterStart)));
  });

  test('backoffDelay doubles with each attempt, up to max', () => {
    const cases: Array<[initial: number, max: number, attempt: number, delay: number]> = [
      [1000, 60_000, 0, 1000],
      [1000, 60_000, 1, 2000],
      [1000, 60_000, 2, 4000],
      [1000, 60_000, 5, 32_000],
      [1000, 60_000, 6, 60_000], // 64 s, capped
      [1000, 60_000, 60, 60_000],
      [1000, 60_000, 5000, 60_000], // 2 ** 5000 is Infinity: still the cap
      [5000, 1000, 0, 1000], // initial above max: max
      [300, 5000, 1, 600],
      [0, 1000, 3, 0],
    ];
    for (const [initial, max, attempt, delay] of cases) assert.equal(backoffDelay({ initial, max }, attempt), delay, `initial=${initial} max=${max} attempt=${attempt}`);
    for (const backoff of [{ initial: 1000, max: 60_000 }, { initial: 7, max: 1_000_000 }, { initial: 250, max: 250 }]) {
      for (let attempt = 0; attempt < 40; attempt++) {
        assert.equal(backoffDelay(backoff, attempt + 1), Math.min(2 * backoffDelay(backoff, attempt), backoff.max), `${JSON.stringify(backoff)} attempt ${attempt}`);
      }
    }
  });

  // `initial: 0` is a valid spec, and without maxRetries the attempt count has no bound: the
  // delay must stay a number (0 × 2^1024 would be NaN, and the instance would never restart).
  test('backoffDelay with initial 0 stays 0 however many attempts', () => {
    assert.equal(backoffDelay({ initial: 0, max: 1000 }, 1024), 0);
  });

  test('REPORTED: a state for every phase; only running is healthy, only unhealthy ones unhealthy', () => {
    assert.ok(same(Object.keys(REPORTED), PHASES));
    for (const phase of PHASES) {
      const { state, healthy } = REPORTED[phase];
      assert.equal(healthy === true, phase === 'running', `${phase}: healthy ${healthy}`);
      assert.equal(state === 'running', phase === 'running', `${phase}: state ${state}`);
      assert.equal(healthy === false, state === 'unhealthy', `${phase}: healthy ${healthy} with state ${state}`);
      assert.notEqual(state, 'lost', `${phase}: lost is the server's word for a silent node`);
      if (UP_PHASES.has(phase)) assert.ok(['starting', 'running', 'unhealthy'].includes(state), `${phase} is up but reported ${state}`);
      if (IN_FLIGHT_PHASES.has(phase)) assert.notEqual(healthy, true, `${phase}: in flight and healthy`);
    }
    assert.deepEqual(PHASES.filter((p) => REPORTED[p].state === 'backoff'), ['backoff']);
    assert.deepEqual(PHASES.filter((p) => REPORTED[p].state === 'failed'), ['failed']);
    assert.deepEqual(PHASES.filter((p) => REPORTED[p].state === 'removed'), ['removed']);
    assert.deepEqual(PHASES.filter((p) => REPORTED[p].healthy === false), ['unhealthy', 'recycling']);
    assert.equal(REPORTED.stopped.state, 'exited');
    assert.ok(STABLE_AFTER_MS > 0);
  });
});

// ---- 3. The Supervisor over a fake runtime --------------------------------------------------

type Op = 'start' | 'restart' | 'stop' | 'remove' | 'inspect' | 'exec';

/** A promise the test settles: a runtime call that hangs until released. */
function gate() {
  let release!: () => void;
  let fail!: (err: Error) => void;
  const promise = new Promise<void>((resolve, reject) => {
    release = resolve;
    fail = reject;
  });
  return { promise, release, fail };
}

/**
 * The Runtime interface in memory. Calls are logged; the next calls of an operation can be made
 * to fail or hang, or every call of it to fail; what happens outside Gantry (an exit, a start or
 * removal by hand) is done through its own methods.
 */
class FakeRuntime implements Runtime {
  readonly name = 'process' as const;
  readonly instances = new Map<string, RuntimeInstance>();
  readonly calls: Array<{ op: Op; args: unknown[] }> = [];
  /** The exec health check (and hooks) exit 0 while true. */
  healthy = true;
  private readonly planned = new Map<Op, Array<() => Promise<void>>>();
  private readonly broken = new Map<Op, string>();
  private seq = 0;

  constructor(private readonly now: () => number) {}

  fail(op: Op, times = 1, message = `${op} failed`): void {
    for (let i = 0; i < times; i++) this.plan(op, async () => Promise.reject(new Error(message)));
  }
  failAlways(op: Op, message = `${op} failed`): void {
    this.broken.set(op, message);
  }
  heal(op: Op): void {
    this.broken.delete(op);
    this.planned.delete(op);
  }
  hang(op: Op) {
    const g = gate();
    this.plan(op, () => g.promise);
    return g;
  }
  count(op: Op): number {
    return this.calls.filter((c) => c.op === op).length;
  }

  // What happens outside Gantry.
  put(id: string, change: Partial<RuntimeInstance> = {}): RuntimeInstance {
    const inst: RuntimeInstance = { instanceId: id, runtimeId: `fake-${++this.seq}`, state: 'running', exitCode: null, oomKilled: false, startedAt: this.now(), finishedAt: null, labels: {}, ...change };
    this.instances.set(id, inst);
    return { ...inst };
  }
  exitByItself(id: string, exitCode: number): void {
    const inst = this.instances.get(id);
    assert.ok(inst?.state === 'running', `${id} is not running`);
    Object.assign(inst, { state: 'exited', exitCode, finishedAt: this.now() });
  }
  startByHand(id: string): void {
    const inst = this.instances.get(id);
    assert.ok(inst, `${id} is not there`);
    Object.assign(inst, { state: 'running', exitCode: null, startedAt: this.now(), finishedAt: null });
  }
  removeByHand(id: string): void {
    this.instances.delete(id);
  }
  /** What a listing shows of it now. */
  seen(id: string): RuntimeInstance | undefined {
    const inst = this.instances.get(id);
    return inst && { ...inst };
  }

  private plan(op: Op, fault: () => Promise<void>): void {
    this.planned.set(op, [...(this.planned.get(op) ?? []), fault]);
  }
  private async call(op: Op, ...args: unknown[]): Promise<void> {
    this.calls.push({ op, args });
    const broken = this.broken.get(op);
    if (broken !== undefined) {
      // As an engine's answer would, it comes back on a later turn of the event loop.
      await new Promise((resolve) => setImmediate(resolve));
      throw new Error(broken);
    }
    const fault = this.planned.get(op)?.shift();
    if (fault) await fault();
  }

  async probe() {
    return { ok: true };
  }
  async start(spec: RunSpec): Promise<StartResult> {
    await this.call('start', spec.instanceId);
    return { instance: this.put(spec.instanceId), warnings: [] };
  }
  async restart(instanceId: string): Promise<RuntimeInstance> {
    await this.call('restart', instanceId);
    const inst = this.instances.get(instanceId);
    if (!inst) throw new Error(`no such instance ${instanceId}`);
    Object.assign(inst, { state: 'running', exitCode: null, startedAt: this.now(), finishedAt: null });
    return { ...inst };
  }
  async stop(instanceId: string, signal: string, graceMs: number): Promise<void> {
    await this.call('stop', instanceId, signal, graceMs);
    const inst = this.instances.get(instanceId);
    if (inst?.state === 'running') Object.assign(inst, { state: 'exited', exitCode: 143, finishedAt: this.now() });
  }
  async updateCpuset(): Promise<void> {}
  async remove(instanceId: string, options?: { keepVolumes?: boolean }): Promise<void> {
    await this.call('remove', instanceId, options);
    this.instances.delete(instanceId);
  }
  async runInit(): Promise<ExecResult> {
    return { exitCode: 0, output: '' };
  }
  async list(): Promise<RuntimeInstance[]> {
    return [...this.instances.values()].map((i) => ({ ...i }));
  }
  async inspect(instanceId: string): Promise<RuntimeInstance | undefined> {
    await this.call('inspect', instanceId);
    return this.seen(instanceId);
  }
  async terminal(): Promise<never> {
    throw new Error('no terminals in a fake runtime');
  }

  async exec(instanceId: string, command: string[]): Promise<ExecResult> {
    await this.call('exec', instanceId, command);
    return this.healthy ? { exitCode: 0, output: 'ok' } : { exitCode: 1, output: 'not ready' };
  }
  async logs(): Promise<Readable> {
    throw new Error('the fake runtime keeps no logs');
  }
  async close(): Promise<void> {}
}

/** The clock handed to tick(): the real one, moved forward at will (never back). */
class Clock {
  private skew = 0;
  readonly now = (): number => Date.now() + this.skew;
  advance(ms: number): void {
    this.skew += ms;
  }
}

let seq = 0;
const HEALTH = { exec: { command: ['check'] }, interval: 20, retries: 1 };

function instanceOf(entry: Record<string, unknown>): Instance {
  const spec = EntrySpec.parse({ command: ['serve'], stop: { grace: 0, drain: 0 }, ...entry });
  return { id: `machine-${++seq}`, app: 'machine', env: 'test', entry: 'web', release: 1, node: 'node-1', runtime: 'process', spec, ports: [], desired: 'running', createdAt: 0 };
}

function harness(entry: Record<string, unknown> = {}, options: { previous?: InstanceStatus; before?: (rt: FakeRuntime, id: string) => void } = {}) {
  const clock = new Clock();
  const rt = new FakeRuntime(clock.now);
  const inst = instanceOf(entry);
  options.before?.(rt, inst.id);
  const events: Omit<GantryEvent, 'time'>[] = [];
  const registered: string[] = [];
  let withdrawn = 0;
  const trail: Phase[] = ['pending'];
  let sup: Supervisor | undefined;
  const hooks: SupervisorHooks = {
    report: () => {
      if (sup && trail[trail.length - 1] !== sup.phase) trail.push(sup.phase);
    },
    event: (event) => events.push(event),
    register: (i) => registered.push(i.id),
    withdraw: async () => {
      withdrawn++;
      return false;
    },
    sharedCpuset: () => [],
    portsTaken: () => assert.fail('no ports in these tests'),
    ensureImage: async () => ({ pulled: false }),
  };
  sup = new Supervisor(inst, rt, '127.0.0.1', hooks, options.previous);
  const s = sup;
  return {
    sup: s,
    rt,
    clock,
    inst,
    events,
    registered,
    trail,
    withdrawn: () => withdrawn,
    types: () => events.map((e) => e.type),
    /** One tick with what the runtime shows now, at `now` (the clock's time by default). */
    tick: (now = clock.now()) => s.tick(rt.seen(inst.id), undefined, now),
    /** Until the step under way (and all it chains) is done. */
    settle: () => settled(s),
    want: (change: Partial<Instance>) => s.reassign({ ...s.instance, ...change }),
  };
}

async function settled(sup: Supervisor): Promise<void> {
  for (let i = 0; i < 200; i++) {
    await new Promise((resolve) => setImmediate(resolve));
    if (!sup.isBusy()) return;
  }
  assert.fail(`still in flight in ${sup.phase}`);
}

async function until(what: string, probe: () => boolean, timeoutMs = 1500): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!probe()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Started and running, no health check: the common beginning. */
async function running(entry: Record<string, unknown> = {}) {
  const h = harness(entry);
  h.tick();
  await h.settle();
  assert.equal(h.sup.phase, 'running');
  return h;
}

describe('Supervisor: starting', () => {
  test('a missing instance is started; without a health check it is running at once', async () => {
    const h = harness({ hooks: { afterStart: ['warm-up'] } });
    h.tick();
    assert.equal(h.sup.phase, 'starting');
    assert.ok(h.sup.isBusy());
    h.tick(); // ticks wait while a step is in flight
    await h.settle();
    assert.equal(h.sup.phase, 'running');
    assert.deepEqual(h.trail, ['pending', 'starting', 'running']);
    assert.equal(h.sup.status.state, 'running');
    assert.equal(h.sup.status.healthy, true);
    assert.equal(h.sup.status.runtimeId, h.rt.seen(h.inst.id)?.runtimeId);
    assert.equal(h.rt.count('start'), 1);
    assert.deepEqual(h.registered, [h.inst.id]);
    await sleep(1);
    assert.deepEqual(h.rt.calls.filter((c) => c.op === 'exec').map((c) => c.args[1]), [['warm-up']], 'its after-start hook ran, once');
    assert.deepEqual(h.types().filter((t) => t !== 'instance.hook'), ['instance.started']);

    // A later look that shows it running changes nothing.
    h.tick();
    await h.settle();
    assert.equal(h.sup.phase, 'running');
    assert.equal(h.rt.count('start'), 1);
    assert.deepEqual(h.registered, [h.inst.id]);
    h.sup.dispose();
  });

  test('with a health check it is warming (reported starting) until a check passes, then running', async () => {
    const h = harness({ health: HEALTH, hooks: { afterStart: ['warm-up'] } });
    h.rt.healthy = false;
    h.tick();
    await h.settle();
    assert.equal(h.sup.phase, 'warming');
    assert.equal(h.sup.status.state, 'starting');
    assert.equal(h.sup.status.healthy, null);
    await sleep(60); // a few failing probes: before the first pass they do not count
    assert.equal(h.sup.phase, 'warming');
    assert.deepEqual(h.registered, [], 'not in the registry before it is healthy');
    assert.ok(!h.rt.calls.some((c) => c.op === 'exec' && (c.args[1] as string[])[0] === 'warm-up'), 'after-start hook waits for health');

    h.rt.healthy = true;
    await until('running', () => h.sup.phase === 'running');
    assert.deepEqual(h.trail, ['pending', 'starting', 'warming', 'running']);
    assert.equal(h.sup.status.healthy, true);
    assert.deepEqual(h.registered, [h.inst.id]);
    assert.ok(h.types().includes('instance.healthy'));
    await until('the after-start hook', () => h.rt.calls.some((c) => c.op === 'exec' && (c.args[1] as string[])[0] === 'warm-up'));
    h.sup.dispose();
  });

  test('a start that hangs: further ticks wait for it, nothing is started twice', async () => {
    const h = harness();
    const hung = h.rt.hang('start');
    h.tick();
    await sleep(5);
    for (let i = 0; i < 3; i++) h.tick(h.clock.now() + 60_000);
    assert.equal(h.sup.phase, 'starting');
    assert.ok(h.sup.isBusy());
    hung.release();
    await h.settle();
    assert.equal(h.sup.phase, 'running');
    assert.equal(h.rt.count('start'), 1);
    h.sup.dispose();
  });

  test('a start that fails: backoff, and a fresh start (not a counted restart) once the delay is over', async () => {
    const h = harness({ restart: { policy: 'never', backoff: { initial: 1000, max: 60_000 } } });
    h.rt.fail('start', 1, 'no such image');
    const before = Date.now();
    h.tick();
    await h.settle();
    const after = Date.now();
    assert.equal(h.sup.phase, 'backoff');
    assert.equal(h.sup.status.state, 'backoff');
    assert.equal(h.sup.status.message, 'could not start: no such image');
    assert.deepEqual(h.types(), ['instance.start_failed']);

    h.tick(before + 999);
    assert.equal(h.sup.phase, 'backoff', 'not before the delay');
    h.tick(after + 1000);
    assert.equal(h.sup.phase, 'starting');
    await h.settle();
    assert.equal(h.sup.phase, 'running');
    assert.equal(h.rt.count('start'), 2);
    assert.equal(h.sup.status.restarts, 0);
    assert.equal(h.sup.status.message, null);
    h.sup.dispose();
  });
});

describe('Supervisor: adoption', () => {
  test('an instance found running is adopted as it is: no start, no events, its restarts kept', () => {
    const h = harness({ hooks: { afterStart: ['warm-up'] } }, {
      previous: { id: 'x', state: 'running', healthy: true, restarts: 3, exitCode: null, runtimeId: 'old', startedAt: 1, message: null, updatedAt: 1 },
      before: (rt, id) => void rt.put(id, { runtimeId: 'fake-adopted', startedAt: Date.now() - 5000 }),
    });
    h.tick();
    // Adoption runs no step: it is running before the tick returns.
    assert.equal(h.sup.phase, 'running');
    assert.equal(h.sup.isBusy(), false);
    assert.equal(h.sup.status.runtimeId, 'fake-adopted');
    assert.equal(h.sup.status.restarts, 3);
    assert.equal(h.sup.status.healthy, true);
    assert.deepEqual(h.registered, [h.inst.id]);
    assert.equal(h.rt.count('start') + h.rt.count('restart') + h.rt.count('exec'), 0, 'neither started nor its after-start hook run');
    assert.deepEqual(h.types(), []);
    h.sup.dispose();
  });

  test('adopted with a health check: warming until it passes', async () => {
    const h = harness({ health: HEALTH }, { before: (rt, id) => void rt.put(id) });
    h.tick();
    assert.equal(h.sup.phase, 'warming');
    await until('running', () => h.sup.phase === 'running');
    assert.equal(h.rt.count('start'), 0);
    h.sup.dispose();
  });

  test('a start asked on a view that missed it running adopts it instead of starting it twice', async () => {
    const h = harness({}, { before: (rt, id) => void rt.put(id, { runtimeId: 'fake-already' }) });
    h.sup.tick(undefined); // a listing from before it was started
    assert.equal(h.sup.phase, 'starting');
    await h.settle();
    assert.equal(h.sup.phase, 'running');
    assert.equal(h.sup.status.runtimeId, 'fake-already');
    assert.equal(h.rt.count('start'), 0);
    h.sup.dispose();
  });
});

describe('Supervisor: going down by itself', () => {
  test('a failure under on-failure: backoff, started again once the delay is over, the next delay doubled', async () => {
    const h = await running({ restart: { policy: 'on-failure', backoff: { initial: 1000, max: 60_000 } } });
    const id = h.inst.id;

    h.rt.exitByItself(id, 1);
    const t0 = h.clock.now();
    h.tick(t0);
    assert.equal(h.sup.phase, 'backoff');
    assert.equal(h.sup.status.state, 'backoff');
    assert.equal(h.sup.status.exitCode, 1);
    assert.equal(h.sup.status.message, 'exited with code 1; restarting in 1s');
    assert.equal(h.events.find((e) => e.type === 'instance.exited')?.level, 'warning');

    h.tick(t0 + 999);
    assert.equal(h.sup.phase, 'backoff', 'not before the delay');
    assert.equal(h.rt.count('restart'), 0);
    h.tick(t0 + 1000);
    assert.equal(h.sup.phase, 'starting');
    await h.settle();
    assert.equal(h.sup.phase, 'running');
    assert.equal(h.rt.count('restart'), 1, 'the same container again');
    assert.equal(h.rt.count('start'), 1);
    assert.equal(h.sup.status.restarts, 1);
    assert.equal(h.sup.status.exitCode, null);
    assert.match(h.events.at(-1)?.message ?? '', /restarted after exit code 1 \(restart 1\)$/);

    // Down again soon after: twice the wait.
    h.rt.exitByItself(id, 2);
    const t1 = h.clock.now();
    h.tick(t1);
    assert.equal(h.sup.status.message, 'exited with code 2; restarting in 2s');
    h.tick(t1 + 1999);
    assert.equal(h.sup.phase, 'backoff');
    h.tick(t1 + 2000);
    await h.settle();
    assert.equal(h.sup.phase, 'running');
    assert.equal(h.sup.status.restarts, 2);

    // Down after running STABLE_AFTER_MS: the backoff is forgotten.
    h.rt.exitByItself(id, 3);
    h.tick(h.sup.status.startedAt! + STABLE_AFTER_MS);
    assert.equal(h.sup.status.message, 'exited with code 3; restarting in 1s');
    h.sup.dispose();
  });

  test('a clean exit under on-failure is kept down: exited, whatever the ticks', async () => {
    const h = await running({ restart: 'on-failure' });
    h.rt.exitByItself(h.inst.id, 0);
    h.tick();
    assert.equal(h.sup.phase, 'exited');
    assert.equal(h.sup.status.state, 'exited');
    assert.equal(h.sup.status.exitCode, 0);
    assert.equal(h.events.find((e) => e.type === 'instance.exited')?.level, 'info');
    for (let i = 1; i <= 3; i++) h.tick(h.clock.now() + i * 3_600_000);
    await h.settle();
    assert.equal(h.sup.phase, 'exited');
    assert.equal(h.rt.count('start') + h.rt.count('restart'), 1);
    h.sup.dispose();
  });

  test('after maxRetries restarts it gives up: failed, and stays down', async () => {
    const h = await running({ restart: { policy: 'always', maxRetries: 2, backoff: { initial: 100, max: 1000 } } });
    for (const delay of [100, 200]) {
      h.rt.exitByItself(h.inst.id, 1);
      const t = h.clock.now();
      h.tick(t);
      assert.equal(h.sup.phase, 'backoff');
      h.tick(t + delay);
      await h.settle();
      assert.equal(h.sup.phase, 'running');
    }
    assert.equal(h.sup.status.restarts, 2);
    h.rt.exitByItself(h.inst.id, 1);
    h.tick();
    assert.equal(h.sup.phase, 'failed');
    assert.equal(h.sup.status.state, 'failed');
    assert.equal(h.sup.status.message, 'exited with code 1; gave up after 2 restarts');
    assert.ok(h.types().includes('instance.failed'));
    for (let i = 1; i <= 3; i++) h.tick(h.clock.now() + i * 3_600_000);
    await h.settle();
    assert.equal(h.sup.phase, 'failed');
    assert.equal(h.rt.count('restart'), 2);
    h.sup.dispose();
  });

  test('removed behind its back: an instance.vanished event, then a counted restart (a fresh start, its container gone)', async () => {
    const h = await running({ restart: { policy: 'always', backoff: { initial: 500, max: 1000 } } });
    const first = h.sup.status.runtimeId;
    h.rt.removeByHand(h.inst.id);
    const t = h.clock.now();
    h.tick(t);
    assert.equal(h.sup.phase, 'backoff');
    assert.match(h.sup.status.message ?? '', /^process fake-1 disappeared outside Gantry \(removed by hand\?\); restarting in 0\.5s$/);
    assert.ok(h.types().includes('instance.vanished'));
    h.tick(t + 500);
    await h.settle();
    assert.equal(h.sup.phase, 'running');
    assert.equal(h.sup.status.restarts, 1);
    assert.notEqual(h.sup.status.runtimeId, first);
    assert.equal(h.rt.count('restart'), 1, 'tried the same one first');
    assert.equal(h.rt.count('start'), 2);
    h.sup.dispose();
  });

  test('failing its checks when running: stopped and started again (recycling), the restart counted', async () => {
    const h = harness({ health: HEALTH, restart: 'always' });
    h.tick();
    await until('running', () => h.sup.phase === 'running');
    h.rt.healthy = false;
    await until('warming again after the restart', () => h.sup.status.restarts === 1 && h.sup.phase === 'warming' && !h.sup.isBusy());
    assert.deepEqual(h.trail, ['pending', 'starting', 'warming', 'running', 'recycling', 'starting', 'warming']);
    assert.equal(h.rt.count('stop'), 1);
    assert.equal(h.rt.count('restart'), 1);
    assert.deepEqual(h.types().filter((t) => t !== 'instance.healthy'), ['instance.started', 'instance.unhealthy', 'instance.stopped', 'instance.restarted']);
    assert.match(h.events.find((e) => e.type === 'instance.stopped')!.message, /\(unhealthy\)$/);
    h.rt.healthy = true;
    await until('running again', () => h.sup.phase === 'running');
    h.sup.dispose();
  });

  test('failing its checks with policy never: kept, unhealthy and out of the registry, until they pass again', async () => {
    const h = harness({ health: HEALTH, restart: 'never' });
    h.tick();
    await until('running', () => h.sup.phase === 'running');
    h.rt.healthy = false;
    await until('unhealthy', () => h.sup.phase === 'unhealthy');
    assert.equal(h.sup.status.state, 'unhealthy');
    assert.equal(h.sup.status.healthy, false);
    assert.equal(h.withdrawn(), 1);
    assert.equal(h.rt.count('stop'), 0);
    h.rt.healthy = true;
    await until('running again', () => h.sup.phase === 'running');
    assert.deepEqual(h.registered, [h.inst.id, h.inst.id]);
    h.sup.dispose();
  });
});

describe('Supervisor: what is wanted', () => {
  test('want.stopped while running: stopped, and left stopped whatever its restart policy; wanted again: resumed', async () => {
    const h = await running({ restart: 'always' });
    h.want({ desired: 'stopped' });
    h.tick();
    assert.equal(h.sup.phase, 'stopping');
    await h.settle();
    assert.equal(h.sup.phase, 'stopped');
    assert.equal(h.sup.status.state, 'exited');
    assert.equal(h.sup.status.message, 'stopped');
    assert.equal(h.rt.seen(h.inst.id)?.state, 'exited');
    assert.equal(h.withdrawn(), 1, 'withdrawn once, by the stop');
    assert.ok(h.types().includes('instance.stopped'));
    for (let i = 1; i <= 3; i++) h.tick(h.clock.now() + i * 60_000);
    assert.equal(h.sup.phase, 'stopped');
    assert.equal(h.rt.count('restart') + h.rt.count('start'), 1);

    h.want({ desired: 'running' });
    h.tick();
    assert.equal(h.sup.phase, 'starting');
    await h.settle();
    assert.equal(h.sup.phase, 'running');
    assert.equal(h.rt.count('restart'), 1, 'the same container again');
    assert.equal(h.sup.status.restarts, 0, 'a resume is not a restart');
    assert.match(h.events.at(-1)?.message ?? '', /started again/);
    h.sup.dispose();
  });

  test('seen running while stopped on request (started by hand): stopped again', async () => {
    const h = await running();
    h.want({ desired: 'stopped' });
    h.tick();
    await h.settle();
    assert.equal(h.sup.phase, 'stopped');
    h.rt.startByHand(h.inst.id);
    h.tick();
    assert.equal(h.sup.phase, 'stopping');
    await h.settle();
    assert.equal(h.sup.phase, 'stopped');
    assert.equal(h.rt.seen(h.inst.id)?.state, 'exited');
    assert.equal(h.rt.count('stop'), 2);
    assert.equal(h.rt.count('start') + h.rt.count('restart'), 1);
    h.sup.dispose();
  });

  test('want.removed while running: stopped, then removed with its volumes, without waiting for a tick; removed is final', async () => {
    const h = await running();
    h.want({ desired: 'removed' });
    h.tick();
    await h.settle();
    assert.equal(h.sup.phase, 'removed');
    assert.deepEqual(h.trail, ['pending', 'starting', 'running', 'stopping', 'stopped', 'removing', 'removed']);
    assert.equal(h.sup.status.state, 'removed');
    assert.equal(h.rt.seen(h.inst.id), undefined);
    assert.deepEqual(h.rt.calls.find((c) => c.op === 'remove')?.args, [h.inst.id, undefined]);
    assert.match(h.events.find((e) => e.type === 'instance.stopped')!.message, /\(removing\)$/);
    h.rt.put(h.inst.id); // even if it turned up again
    for (let i = 1; i <= 3; i++) h.tick(h.clock.now() + i * 60_000);
    assert.equal(h.sup.phase, 'removed');
    assert.equal(h.rt.count('stop'), 1);
    h.sup.dispose();
  });

  test('a stop that fails: pending with an instance.error event, then tried again at the next tick', async () => {
    const h = await running();
    h.rt.fail('stop', 1, 'the engine said no');
    h.want({ desired: 'stopped' });
    h.tick();
    await h.settle();
    assert.equal(h.sup.phase, 'pending');
    h.tick();
    await h.settle();
    assert.equal(h.sup.phase, 'stopped');
    assert.deepEqual(h.trail.slice(2), ['running', 'stopping', 'pending', 'stopping', 'stopped']);
    assert.equal(h.rt.count('stop'), 2);
    assert.ok(h.events.some((e) => e.type === 'instance.error' && /the engine said no/.test(e.message)), JSON.stringify(h.events));
    h.sup.dispose();
  });

  test('a removal that fails once: pending, then removed at the next tick', async () => {
    const h = await running();
    h.rt.fail('remove', 1);
    h.want({ desired: 'removed' });
    h.tick();
    await h.settle();
    assert.equal(h.sup.phase, 'pending');
    h.tick();
    await h.settle();
    assert.equal(h.sup.phase, 'removed');
    assert.ok(h.trail.includes('pending'));
    assert.equal(h.rt.count('remove'), 2);
    h.sup.dispose();
  });

  // A stop or removal that keeps failing (an engine that answers errors) is tried again at each
  // tick, not in a tight loop as fast as the runtime answers (each try makes an instance.error event).
  for (const [op, desired] of [['stop', 'stopped'], ['remove', 'removed']] as const) {
    test(`a ${op} that keeps failing is tried again at the next tick, not at once in a loop`, async () => {
      const h = await running();
      h.rt.failAlways(op);
      h.want({ desired });
      try {
        h.tick();
        await sleep(20); // no tick in between
        const tries = h.rt.count(op);
        const errors = h.types().filter((t) => t === 'instance.error').length;
        assert.ok(tries <= 1, `${op} tried ${tries} times in 20 ms without a tick (${errors} instance.error events)`);
      } finally {
        h.sup.dispose();
        h.rt.heal(op);
        await sleep(1);
      }
    });
  }

  test('a rebuild asked for: stopped, its container discarded (volumes kept), a new one started', async () => {
    const h = await running();
    const first = h.sup.status.runtimeId;
    h.want({ rebuild: 1, release: 2 });
    h.tick();
    await h.settle();
    assert.equal(h.sup.phase, 'running');
    assert.deepEqual(h.trail.slice(2), ['running', 'stopping', 'stopped', 'rebuilding', 'starting', 'running']);
    assert.deepEqual(h.rt.calls.find((c) => c.op === 'remove')?.args, [h.inst.id, { keepVolumes: true }]);
    assert.notEqual(h.sup.status.runtimeId, first);
    assert.equal(h.sup.status.release, 2);
    assert.ok(h.types().includes('instance.rebuilt'));
    h.tick();
    await h.settle();
    assert.equal(h.rt.count('start'), 2, 'rebuilt once');
    h.sup.dispose();
  });

  test('a restart asked for: stopped and the same container started again', async () => {
    const h = await running();
    const first = h.sup.status.runtimeId;
    h.want({ restart: 1 });
    h.tick();
    await h.settle();
    assert.equal(h.sup.phase, 'running');
    assert.deepEqual(h.trail.slice(2), ['running', 'stopping', 'stopped', 'starting', 'running']);
    assert.equal(h.sup.status.runtimeId, first);
    assert.equal(h.rt.count('restart'), 1);
    assert.match(h.events.at(-1)?.message ?? '', /restarted on request/);
    h.tick();
    await h.settle();
    assert.equal(h.rt.count('restart'), 1, 'restarted once');
    h.sup.dispose();
  });
});
