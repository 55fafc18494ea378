// The server's relay of terminal sessions to agents, around a reconnect: a node's agent that
// reconnects has a new connection while the old one is still closing. A session belongs to the
// connection it was opened on: the old connection's close ends only its own sessions, and what a
// client types is never sent to a newer connection that does not know the session. The agent
// connections are a stand-in here to make that ordering happen at will (the real relay over real
// agents is test/terminal.test.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TerminalRelays } from '../src/server/agents/terminals.js';
import type { AgentConnections, Session } from '../src/server/agents/connections.js';
import type { ServerToAgent } from '../src/model/agent-protocol.js';

function connectionsStandIn() {
  const byNode = new Map<string, Session>();
  const sent: { to: Session | undefined; message: ServerToAgent }[] = [];
  const connections = {
    byNode,
    send: (node: string, message: ServerToAgent) => {
      sent.push({ to: byNode.get(node), message });
      return byNode.has(node);
    },
  } as unknown as AgentConnections;
  return { byNode, sent, connections };
}

test('a terminal ends with the connection it was opened on, not with an older one closing after a reconnect', () => {
  const { byNode, sent, connections } = connectionsStandIn();
  const relays = new TerminalRelays(connections);
  const older = { node: 'n1' } as unknown as Session;
  const newer = { node: 'n1' } as unknown as Session;
  const ended: Record<string, string | undefined> = {};
  const handlers = (name: string) => ({ onOutput: () => {}, onExit: (_code: number | null, error?: string) => void (ended[name] = error ?? 'exited') });

  byNode.set('n1', older);
  const first = relays.open('n1', 'app-web-1', { cols: 80, rows: 24 }, handlers('first'))!;
  byNode.set('n1', newer); // the agent reconnected; the older connection has not closed yet
  const second = relays.open('n1', 'app-web-1', { cols: 80, rows: 24 }, handlers('second'))!;
  assert.ok(first && second);

  const before = sent.length;
  first.input('ls\n');
  assert.equal(sent.length, before, "the newer connection does not know the first session: nothing is sent to it");
  second.input('ls\n');
  assert.equal(sent.length, before + 1);
  assert.equal(sent.at(-1)!.to, newer);

  relays.disconnected('n1', older);
  assert.match(ended.first ?? '', /disconnected/);
  assert.equal(ended.second, undefined, "the older connection's close leaves the newer one's terminal open");

  relays.disconnected('n1', newer);
  assert.match(ended.second ?? '', /disconnected/);
});

test('closing a terminal whose connection was replaced ends it at once', () => {
  const { byNode, connections } = connectionsStandIn();
  const relays = new TerminalRelays(connections);
  let error: string | undefined;
  byNode.set('n1', { node: 'n1' } as unknown as Session);
  const link = relays.open('n1', 'app-web-1', { cols: 80, rows: 24 }, { onOutput: () => {}, onExit: (_code, why) => void (error = why) })!;
  byNode.set('n1', { node: 'n1' } as unknown as Session);
  link.close();
  assert.match(error ?? '', /not connected/);
});
