// `shoal/worker`: run job handlers inside your own application. A Worker is a
// full Shoal node (a lease, slots, a coordinator candidate) whose job types
// are the definitions you give it, beside the built-ins. It installs no signal
// handlers and never exits the process unless asked (`handleSignals`); call
// `stop()` to drain it: running jobs are handed back (or finish), its leases
// are released, and the connection closes.
import { type NodeOptions, resolveNodeConfig } from '../node/config.ts';
import type { Handler, JobTypes } from '../node/handlers.ts';
import { JobInputError } from '../node/handlers.ts';
import { inputMismatch } from '../node/input.schemas.ts';
import { type NodeHandle, startNode } from '../node/node.process.ts';
import { connectionFlags, type ConnectOptions } from './connection.ts';
import { type AnyJobDefinition, parseInput, settingsOf } from './job.ts';

export { defineJob, type InferInput, type InferOutput, type JobDefinition, type StandardSchemaV1 } from './job.ts';
export type { JobCtx } from '../node/handlers.ts';
export { NonRetryableError } from '../base/errors.ts';
export type { RetryPolicy } from '../api/contract.ts';

export type WorkerOptions = ConnectOptions & {
  /** The job types this worker runs (`defineJob`), beside the built-ins. */
  jobs: AnyJobDefinition[];
  /** Node id: letters, digits, - or _; unique among live nodes. @default `node-<random>` */
  id?: string;
  /** Jobs computed at once. @default 4 */
  slots?: number;
  /** Drain on SIGTERM/SIGINT, as `shoal node` does (a second signal exits). @default false */
  handleSignals?: boolean;
  /** Where the worker's log lines go; `false`: nowhere. @default stderr */
  log?: ((line: string) => void) | false;
  /** Any other node setting (`shoal node --help` lists them): io slots, labels, placement, retention, metrics… */
  node?: Omit<NodeOptions, keyof ConnectOptions | 'id' | 'slots' | 'jobs'>;
};

/** The definitions as the node's job types: each handler gets its input as the schema parsed it. */
function jobTypes(defs: AnyJobDefinition[]): JobTypes {
  const handlers: Record<string, Handler> = {};
  const seen = new Set<string>();
  for (const def of defs) {
    if (seen.has(def.type)) throw new TypeError(`Worker: job type '${def.type}' is given twice`);
    seen.add(def.type);
    handlers[def.type] = async (input, ctx) => {
      const parsed = await parseInput(def, input);
      if ('problems' in parsed) throw new JobInputError(inputMismatch(def.type, parsed.problems));
      return await def.handler(parsed.value, ctx);
    };
  }
  return {
    handlers,
    schemas: Object.fromEntries(defs.filter((d) => d.input).map((d) => [d.type, d.input!])),
    settings: Object.fromEntries(defs.map((d) => [d.type, settingsOf(d)])),
  };
}

export class Worker {
  readonly id: string;
  readonly #node: NodeHandle;

  private constructor(node: NodeHandle) {
    this.id = node.id;
    this.#node = node;
  }

  /** Connect, join the cluster and take work; resolves once this worker is a member (its lease held). */
  static async start(options: WorkerOptions): Promise<Worker> {
    const types = jobTypes(options.jobs);
    const { jobs: _jobs, handleSignals, log, node, id, slots, ...connect } = options;
    const config = resolveNodeConfig({ ...node, ...connectionFlags(connect), prefix: connect.prefix, id, slots });
    const handle = await startNode(config, {
      types,
      signals: handleSignals === true,
      log: log === false ? () => {} : log ? (line) => log(`[${config.id}] ${line}`) : undefined,
    });
    try {
      await handle.ready;
    } catch (err) {
      throw new Error(`worker ${config.id} could not join: ${(err as Error).message}`, { cause: err });
    }
    return new Worker(handle);
  }

  /** Drain and stop: running jobs are handed back (checkpointed ones resume elsewhere), leases released. */
  async stop(): Promise<void> {
    const code = await this.#node.stop();
    if (code !== 0) throw new Error(`worker ${this.id} did not stop cleanly (see its log)`);
  }

  /** Resolves when the worker has stopped (by `stop()`, a signal, a drain request or a failure): its exit code. */
  get stopped(): Promise<number> {
    return this.#node.done;
  }
}
