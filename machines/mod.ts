// The pure machines: behaviour only, effects are provided by callers.
export * from './lease.machine.ts';
export * from './lease.rules.ts';
export * from './coordinator.machine.ts';
export * from './node.machine.ts';
export * from './job.machine.ts';
