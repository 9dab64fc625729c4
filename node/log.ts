// Log lines on stderr, one per event, prefixed with time and source; or, with
// `--json`, one JSON object per line ({at, source, msg}) for a log collector.
import { isJson } from '../base/output.ts';

export function logger(source: string) {
  return (msg: string) => {
    const at = new Date().toISOString();
    process.stderr.write(isJson() ? `${JSON.stringify({ at, source, msg })}\n` : `${at} [${source}] ${msg}\n`);
  };
}
export type Log = ReturnType<typeof logger>;
