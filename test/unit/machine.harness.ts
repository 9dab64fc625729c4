// The machines' test harnesses, shared by their unit tests and the coverage
// test: each machine with inert or scripted effects on a simulated clock.
import { type AnyEventObject, createActor, fromCallback, fromPromise, type InspectionEvent, SimulatedClock } from 'xstate';
import { type CoordinatorEvent, coordinatorMachine, type DutyInput } from '../../machines/coordinator.machine.ts';
import {
  type AcquireOutcome,
  type AcquireRequest,
  type LeaseEvent,
  leaseMachine,
  type ProbeRequest,
  type RenewOutcome,
  type RenewRequest,
} from '../../machines/lease.machine.ts';
import { type LeaseTiming, leaseTiming } from '../../machines/lease.rules.ts';
import { type BootstrapOutput, type NodeInput, nodeMachine } from '../../machines/node.machine.ts';

type Inspect = (ev: InspectionEvent) => void;

export const timing: LeaseTiming = leaseTiming(1000);
export const me = { id: 'n1', instance: 'i-1' };
export const other = { id: 'n2', instance: 'i-2' };
export const coordinatorInput = { nodeId: 'n1', lease: { key: 'leader', holder: me, timing } };

/** The node machine with an inert node lease and a fake coordinator that answers `stop` with `coordinator.stopped`. */
export function nodeHarness(
  options: { bootstrapFails?: boolean; handBackFails?: boolean; handBackHangs?: boolean; inspect?: Inspect } = {},
) {
  const clock = new SimulatedClock();
  const toCoordinator: string[] = [];
  const toLease: string[] = [];
  const resumed: number[] = [];
  const machine = nodeMachine.provide({
    actions: { resumeJobs: () => void resumed.push(clock.now()) },
    actors: {
      bootstrap: fromPromise<BootstrapOutput, NodeInput>(async () => {
        if (options.bootstrapFails) throw new Error('lease TTL mismatch');
        return { timing };
      }),
      handBackJobs: fromPromise(async () => {
        if (options.handBackFails) throw new Error('hand-back failed');
        if (options.handBackHangs) await new Promise(() => {});
      }),
      nodeLease: fromCallback(({ receive }) => {
        receive((e: AnyEventObject) => void toLease.push(e.type));
      }) as never,
      coordinator: fromCallback(({ receive, sendBack }) => {
        receive((e: AnyEventObject) => {
          toCoordinator.push(e.type);
          if (e.type === 'stop') sendBack({ type: 'coordinator.stopped' });
        });
      }) as never,
    },
  });
  const actor = createActor(machine, {
    clock,
    inspect: options.inspect,
    input: { nodeId: 'n1', instance: 'i-1', leaseKeys: { node: 'node.n1', leader: 'leader' } },
  });
  const settle = () => new Promise((r) => setTimeout(r, 0));
  return { actor, clock, toCoordinator, toLease, resumed, settle };
}

/** The coordinator driven by lease reports alone (its lease child is inert); duties recorded. */
export function coordinatorHarness(
  options: { leaseValid?: boolean; leaseFresh?: () => boolean; inspect?: Inspect; clock?: SimulatedClock } = {},
) {
  const released: number[] = [];
  const renews: number[] = [];
  const stopped: number[] = [];
  const recovered: DutyInput[] = [];
  const machine = coordinatorMachine.provide({
    actors: {
      leaderLease: fromCallback(({ receive }) => {
        receive((e) => {
          if ((e as { type: string }).type === 'release') released.push(1);
          if ((e as { type: string }).type === 'renew') renews.push(1);
        });
      }) as never,
      recover: fromPromise<void, DutyInput>(async ({ input }) => {
        recovered.push(input);
      }),
      place: fromCallback<CoordinatorEvent, DutyInput>(() => () => {}),
    },
    guards: {
      leaseValid: () => options.leaseValid ?? true,
      leaseFresh: () => (options.leaseFresh ?? (() => options.leaseValid ?? true))(),
    },
    actions: { reportStopped: () => void stopped.push(1) },
  });
  const actor = createActor(machine, {
    input: coordinatorInput,
    inspect: options.inspect,
    ...(options.clock ? { clock: options.clock } : {}),
  });
  return { actor, released, renews, recovered, stopped };
}

/** The lease machine with scripted KV outcomes. */
export type Script<Req, Out> = (req: Req, now: number) => Out;

export function leaseHarness(options: {
  acquire: Script<AcquireRequest, AcquireOutcome>;
  renew?: Script<RenewRequest, RenewOutcome>;
  inspect?: Inspect;
}) {
  const clock = new SimulatedClock();
  const reports: string[] = [];
  const acquires: AcquireRequest[] = [];
  const renews: RenewRequest[] = [];
  const releases: RenewRequest[] = [];
  const record = (name: string) => ({ context }: { context: { epoch: number | null } }) => {
    reports.push(context.epoch === null ? name : `${name}@${context.epoch}`);
  };
  const machine = leaseMachine.provide({
    actors: {
      acquireLease: fromPromise<AcquireOutcome, AcquireRequest>(async ({ input }) => {
        acquires.push(input);
        return options.acquire(input, clock.now());
      }),
      renewLease: fromPromise<RenewOutcome, RenewRequest>(async ({ input }) => {
        renews.push(input);
        return (options.renew ?? ((r, now) => ({ type: 'renewed', revision: r.revision + 10, sentAt: now, receivedAt: now })))(
          input,
          clock.now(),
        );
      }),
      releaseLease: fromPromise<void, RenewRequest>(async ({ input }) => {
        releases.push(input);
      }),
      watchKey: fromCallback<LeaseEvent, { key: string }>(() => () => {}),
      probeHolder: fromCallback<LeaseEvent, ProbeRequest>(() => () => {}),
    },
    actions: {
      reportAcquiring: record('acquiring'),
      reportAcquired: record('acquired'),
      reportRenewed: record('renewed'),
      reportStandby: record('standby'),
      reportLost: record('lost'),
      reportReleased: record('released'),
    },
  });
  const actor = createActor(machine, { clock, inspect: options.inspect, input: { key: 'leader', holder: me, timing } });
  const settle = () => new Promise((r) => setTimeout(r, 0));
  const advance = async (ms: number) => {
    // Step in small increments so promise effects settle between timers.
    for (let left = ms; left > 0; left -= 10) {
      clock.increment(Math.min(10, left));
      await settle();
    }
  };
  return { actor, clock, reports, acquires, renews, releases, settle, advance };
}
