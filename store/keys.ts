// The key layout inside the buckets (the same under every cluster prefix).

/** The keys inside the buckets (the same under every prefix). */
export const keys = {
  /** A job's record (jobs bucket) and its checkpoint (checkpoints bucket). */
  job: (id: string) => `job.${id}`,
  jobs: 'job.>',
  jobIdOf: (key: string) => key.slice('job.'.length),
  /** The coordinator lease (leases bucket). */
  leader: 'leader',
  /** A node's liveness lease, with its advert (leases bucket). */
  node: (nodeId: string) => `node.${nodeId}`,
  nodes: 'node.>',
  /** A schedule (schedules bucket). */
  schedule: (name: string) => `schedule.${name}`,
  schedules: 'schedule.>',
};
