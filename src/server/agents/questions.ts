// Questions the server asks of an agent and waits for (prepull, image.resolve): each has a
// requestId of its own, and only the answer of the node asked, in time, settles it.
import { randomUUID } from 'node:crypto';
import type { PrepullResult, ServerToAgent, ValidAgentMessage } from '../../model/agent-protocol.js';
import type { ClusterState } from '../state.js';
import type { AgentConnections } from './connections.js';
import type { InstanceValues } from './instance-values.js';

/** What an agent answers to a question of the server's. */
export type AgentAnswer = Extract<ValidAgentMessage, { type: 'prepulled' | 'image.resolved' | 'inspected' }>;

/** No node could be asked (none connected, ready, with Docker): not a verdict on the image. */
export class NoNodeToAsk extends Error {}

export class AgentQuestions {
  /** Questions asked of agents by requestId, until answered or timed out. */
  private readonly questions = new Map<string, { node: string; answer: (message: AgentAnswer) => void }>();

  constructor(
    private readonly state: ClusterState,
    private readonly connections: AgentConnections,
    private readonly values: InstanceValues,
  ) {}

  /**
   * Asks the node's agent to pull `images` now; resolves with its answer per image. Rejects when
   * the agent is not connected, cannot pre-pull (an older version), or does not answer in time.
   */
  async prepull(node: string, images: string[], timeoutMs: number): Promise<PrepullResult[]> {
    const session = this.connections.byNode.get(node);
    if (!session) throw new Error(`the agent of node ${node} is not connected`);
    if (!session.prepulls) throw new Error(`the agent of node ${node} does not pre-pull (an older version)`);
    const answer = await this.ask(node, timeoutMs, (requestId) => ({ type: 'prepull', requestId, images, ...this.values.authForImages(images) }), () => new Error(`the agent of node ${node} is not connected`));
    if (answer.type !== 'prepulled') throw new Error(`node ${node} answered a prepull with ${answer.type}`);
    return answer.results;
  }

  /**
   * The digest `image` names now, asked of a ready node's engine (for a registry the server
   * cannot reach). Rejects with the engine's words, or when no node can be asked.
   */
  async resolveImage(image: string, timeoutMs: number): Promise<{ digest: string; node: string }> {
    const node = [...this.connections.byNode].find(([name, session]) => session.resolves && this.state.nodes.get(name)?.state === 'ready' && session.info?.runtimes.includes('docker'))?.[0];
    if (!node) throw new NoNodeToAsk('no ready node with a Docker Engine is connected to ask');
    const answer = await this.ask(node, timeoutMs, (requestId) => ({ type: 'image.resolve', requestId, image, ...this.values.authForImages([image]) }), () => new NoNodeToAsk(`the agent of node ${node} is not connected`));
    if (answer.type !== 'image.resolved') throw new Error(`node ${node} answered an image.resolve with ${answer.type}`);
    if (!answer.digest) throw new Error(`node ${node}'s engine: ${answer.error ?? 'no digest'}`);
    return { digest: answer.digest, node };
  }

  /** Asks the node's agent to run its inspection checks now; resolves with its answer. */
  async inspect(node: string, timeoutMs: number): Promise<Extract<AgentAnswer, { type: 'inspected' }>> {
    const session = this.connections.byNode.get(node);
    if (!session) throw new Error(`the agent of node ${node} is not connected`);
    if (!session.inspects) throw new Error(`node ${node} is not inspected (agent too old)`);
    const answer = await this.ask(node, timeoutMs, (requestId) => ({ type: 'inspect', requestId }), () => new Error(`the agent of node ${node} is not connected`));
    if (answer.type !== 'inspected') throw new Error(`node ${node} answered an inspect with ${answer.type}`);
    return answer;
  }

  /** Whether `requestId` is a question this server asked of `node` and still waits for. */
  asked(node: string, requestId: string | undefined): boolean {
    return requestId !== undefined && this.questions.get(requestId)?.node === node;
  }

  /** An answer from `node`: to a question this server asked of this node; any other is ignored. */
  answered(node: string, message: AgentAnswer): void {
    const question = message.requestId === undefined ? undefined : this.questions.get(message.requestId);
    if (!question || question.node !== node) return;
    this.questions.delete(message.requestId!);
    question.answer(message);
  }

  /**
   * Sends the question `build` makes (with a fresh requestId) to the node's agent; resolves with
   * the answer carrying that requestId, rejects after `timeoutMs`, or with `unsent()` when it
   * could not be sent.
   */
  private ask(node: string, timeoutMs: number, build: (requestId: string) => ServerToAgent, unsent: () => Error): Promise<AgentAnswer> {
    const requestId = randomUUID();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.questions.delete(requestId);
        reject(new Error(`no answer from node ${node} within ${Math.round(timeoutMs / 1000)}s`));
      }, timeoutMs);
      this.questions.set(requestId, { node, answer: (message) => (clearTimeout(timer), resolve(message)) });
      if (!this.connections.send(node, build(requestId))) {
        clearTimeout(timer);
        this.questions.delete(requestId);
        reject(unsent());
      }
    });
  }
}
