// What a command prints. For people: words on stdout. With `--json`: one
// JSON document per result on stdout (a line each, so long-running commands
// such as `up` and `node` give a stream of them) and the words on stderr, so
// `shoal … --json | jq` sees only JSON. Log lines (stderr) become JSON objects too.
let json = false;

/** Set once per command, from its `--json` flag, before it runs (log lines, node/log.ts, turn to JSON too). */
export function setJson(on: boolean): void {
  json = on;
}

export const isJson = (): boolean => json;

/** A line for people: stdout, or stderr under --json. */
export function say(line: string): void {
  (json ? process.stderr : process.stdout).write(`${line}\n`);
}

/** A result for programs: one JSON line on stdout under --json; nothing otherwise (the words said it). */
export function result(value: unknown): void {
  if (json) process.stdout.write(`${JSON.stringify(value)}\n`);
}
