// The user docs as a test: README.md stays short and points into docs/, every
// docs page stays readable, every relative link (and the heading it names)
// resolves, and no internal issue or bug numbers leak into them. Reads the
// files as text; runs under Node and Deno alike.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const readme = join(root, 'README.md');
const docsDir = join(root, 'docs');
const pages = readdirSync(docsDir).filter((f) => f.endsWith('.md')).sort().map((f) => join(docsDir, f));
const docs = [readme, ...pages];

const maxReadmeLines = 250;
const maxPageLines = 600;

const text = (file: string) => readFileSync(file, 'utf8');
const lines = (file: string) => text(file).replace(/\n$/, '').split('\n').length;
const name = (file: string) => relative(root, file);

/** The text without fenced code blocks (their `#` lines are not headings, their brackets not links). */
export function prose(markdown: string): string {
  return markdown.replace(/^([ \t]*)(```|~~~)[^\n]*\n[\s\S]*?^\1\2[ \t]*$/gm, '');
}

/** Every link and image target outside code: `[x](t)`, `![x](t)`, with an optional title. */
export function linksOf(markdown: string): string[] {
  const withoutCode = prose(markdown).replace(/`[^`\n]*`/g, 'code');
  return [...withoutCode.matchAll(/!?\[[^\]\n]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)].map((m) => m[1]!);
}

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens (github-slugger). */
export function slug(heading: string): string {
  return heading.trim().toLowerCase().replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, '').replace(/ /g, '-');
}

/** The anchors a page's headings give, with GitHub's -1, -2 … for repeats. */
export function anchorsOf(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  for (const m of prose(markdown).matchAll(/^ {0,3}#{1,6}\s+(.+?)\s*#*\s*$/gm)) {
    const base = slug(m[1]!.replace(/`/g, '').replace(/\[([^\]]*)\]\([^)]*\)/g, '$1'));
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}

const external = /^[a-z][a-z0-9+.-]*:/i;

/** A relative link's file (absolute) and anchor; null for external links. */
function target(from: string, link: string): { file: string; anchor: string | null } | null {
  if (external.test(link)) return null;
  const hash = link.indexOf('#');
  const path = hash < 0 ? link : link.slice(0, hash);
  const anchor = hash < 0 ? null : decodeURIComponent(link.slice(hash + 1));
  return { file: path === '' ? from : resolve(dirname(from), decodeURIComponent(path)), anchor };
}

describe('docs', () => {
  test(`README.md is at most ${maxReadmeLines} lines`, () => {
    assert.ok(lines(readme) <= maxReadmeLines, `README.md has ${lines(readme)} lines`);
  });

  test(`every docs/*.md page is at most ${maxPageLines} lines`, () => {
    assert.ok(pages.length >= 6, `docs/ has ${pages.length} pages`);
    const long = pages.filter((p) => lines(p) > maxPageLines).map((p) => `${name(p)}: ${lines(p)} lines`);
    assert.deepEqual(long, []);
  });

  test('README.md links at least 6 docs pages, and every page can be reached from it', () => {
    const linked = (file: string) =>
      new Set(linksOf(text(file)).map((l) => target(file, l)?.file).filter((f): f is string => !!f && pages.includes(f)));
    const fromReadme = linked(readme);
    assert.ok(fromReadme.size >= 6, `README.md links ${fromReadme.size} docs pages`);
    const reached = new Set(fromReadme);
    for (const page of reached) for (const next of linked(page)) reached.add(next);
    assert.deepEqual(pages.filter((p) => !reached.has(p)).map(name), [], 'pages no link leads to');
  });

  test('every relative link resolves to a file, and every anchor into a page to one of its headings', () => {
    const broken: string[] = [];
    for (const file of docs) {
      for (const link of linksOf(text(file))) {
        const t = target(file, link);
        if (!t) continue;
        if (!existsSync(t.file)) broken.push(`${name(file)}: ${link} (no such file)`);
        else if (t.anchor && t.file.endsWith('.md') && !anchorsOf(text(t.file)).has(t.anchor)) {
          broken.push(`${name(file)}: ${link} (no heading #${t.anchor} in ${name(t.file)})`);
        }
      }
    }
    assert.deepEqual(broken, []);
  });

  test('every name the package exports is documented in client.md or writing-jobs.md', () => {
    const exported = new Set<string>();
    for (const f of ['client.ts', 'worker.ts']) {
      const src = text(join(root, 'sdk', f));
      for (const m of src.matchAll(/^export (?:async )?(?:function|class|const|type) ([A-Za-z]+)/gm)) exported.add(m[1]!);
      for (const m of src.matchAll(/^export (?:type )?\{([^}]*)\}/gm)) {
        for (const part of m[1]!.split(',')) exported.add(part.trim().replace(/^type /, ''));
      }
    }
    exported.delete('');
    const documented = text(join(docsDir, 'client.md')) + text(join(docsDir, 'writing-jobs.md'));
    assert.ok(exported.size > 20, `found the exports (${exported.size})`);
    assert.deepEqual([...exported].filter((x) => !documented.includes(`\`${x}`)).sort(), [], 'each named in backquotes');
  });

  test('no user doc mentions internal issue or bug numbers (history belongs to git log)', () => {
    const found: string[] = [];
    for (const file of docs) {
      for (const m of text(file).matchAll(/\b(?:issues?|bugs?)\s*#?\d+/gi)) found.push(`${name(file)}: ${m[0]}`);
    }
    assert.deepEqual(found, []);
  });

  test('the checks themselves: links, anchors and code', () => {
    const sample = [
      '# A `code` title',
      'See [x](a.md#b), ![img](c.svg "t") and [y](https://e.org).',
      '```sh',
      '# not a heading [z](nowhere.md)',
      '```',
      '`[w](inline.md)` and ## not a heading',
      '## Fleets: many nodes, one process',
      '## Fleets: many nodes, one process',
    ].join('\n');
    assert.deepEqual(linksOf(sample), ['a.md#b', 'c.svg', 'https://e.org']);
    assert.deepEqual([...anchorsOf(sample)], ['a-code-title', 'fleets-many-nodes-one-process', 'fleets-many-nodes-one-process-1']);
    assert.equal(slug("The machines in Stately's editor"), 'the-machines-in-statelys-editor');
    assert.equal(slug('1. Priority and preemption'), '1-priority-and-preemption');
  });
});
