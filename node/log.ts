// Plain log lines on stderr, one per event, prefixed with time and source.
export function logger(source: string) {
  return (msg: string) => {
    process.stderr.write(`${new Date().toISOString()} [${source}] ${msg}\n`);
  };
}
export type Log = ReturnType<typeof logger>;
