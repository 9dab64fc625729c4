// One scenario in its own process (so each runs on a machine no earlier one
// left busy): `tsx bench/scenario.ts <name> <result.json> [--quick]`. Progress
// goes to stderr as `progress <done> <total> <what>` lines; the result to the file.
import { writeFileSync } from 'node:fs';
import { type ScenarioName, scenarios } from './scenarios.ts';

const [name, out] = process.argv.slice(2);
if (!name || !out || !(name in scenarios)) {
  process.stderr.write(`usage: bench/scenario.ts <${Object.keys(scenarios).join('|')}> <result.json> [--quick]\n`);
  process.exit(2);
}
const result = await scenarios[name as ScenarioName]({
  quick: process.argv.includes('--quick'),
  progress: (done, total, what) => process.stderr.write(`progress ${done} ${total} ${what}\n`),
});
writeFileSync(out, JSON.stringify(result));
process.exit(0);
