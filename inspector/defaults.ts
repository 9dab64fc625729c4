// The inspector's own settings (the nodes' side of the feed is in base/defaults.ts).

/** How often the page's server asks every node for its actors (its heartbeat), and how long finished jobs stay on the page. */
export const inspectorDefaults = {
  syncIntervalMs: 3_000,
  keepFinishedMs: 5 * 60_000,
  /** A page whose unsent events pass this many bytes is disconnected (it reconnects and resyncs). */
  pageBufferMaxBytes: 16 * 1024 * 1024,
  /** Live actors whose latest snapshot the server keeps for pages that join later (the oldest go first). */
  actorsMax: 20_000,
  /** Jobs the table keeps (the least recently updated go first), and how often changed rows go to the pages. */
  jobsMax: 50_000,
  rowsFlushMs: 250,
  /** Transitions the server and each page keep for the timeline (the oldest go first). */
  historyMax: 200_000,
};

/** How long the inspector waits for a job record's write to show up as an event before it draws the record's state itself. */
export const recordGraceMs = 2_000;
