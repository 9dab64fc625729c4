// The learned bid scorer: ONNX Runtime's scores equal the TypeScript forward
// pass; a corrupt model, another feature spec or another input width is
// refused at load (the node falls back to the heuristic, once, saying why);
// training is reproducible from its seed, beats a random network on held-out
// heterogeneous episodes, and reproduces the committed model. Runs under Node
// and Deno (the same onnxruntime-node package).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { chooseScorer } from '../../node/policy.ts';
import { modelVersion, trainModel } from '../../cli/policy.ts';
import { type BidFeatures, featureCount, featureRows, featureSpec } from '../../policies/features.ts';
import { forward, mlpFrom, paramCount } from '../../policies/mlp.ts';
import { mlpFromOnnx, mlpToOnnx, type ModelSpec } from '../../policies/onnx.model.ts';
import { loadOnnxScorer, ModelError, shippedModel, specPathOf } from '../../policies/onnx.scorer.ts';
import { rng } from '../../training/random.ts';
import { mlpScorer } from '../../policies/scorer.ts';
import { episode, meanLoss, train } from '../../training/train.ts';

const shippedSpec = JSON.parse(readFileSync(specPathOf(shippedModel), 'utf8')) as ModelSpec;
const dir = mkdtempSync(join(tmpdir(), 'shoal-onnx-'));

/** A model file and its spec in a temp dir. */
function writeModel(name: string, bytes: Uint8Array, spec: unknown = shippedSpec): string {
  const path = join(dir, `${name}.onnx`);
  writeFileSync(path, bytes);
  writeFileSync(specPathOf(path), JSON.stringify(spec));
  return path;
}

const bid = fc.record({
  slots: fc.integer({ min: 1, max: 64 }),
  freeSlots: fc.integer({ min: 0, max: 64 }),
  running: fc.integer({ min: 0, max: 64 }),
  speed: fc.double({ min: 0.1, max: 8, noNaN: true }),
  holdsCheckpoint: fc.boolean(),
  recentWins: fc.integer({ min: 0, max: 50 }),
  priority: fc.integer({ min: 0, max: 9 }),
  idleMs: fc.integer({ min: 0, max: 120_000 }),
}) as fc.Arbitrary<BidFeatures>;

describe('learned bid scorer (ONNX)', () => {
  test('ONNX Runtime scores the shipped model as the TypeScript forward pass does (|Δ| ≤ 1e-5 + 1e-5·|score|), a batch at a time', async () => {
    const onnxScorer = await loadOnnxScorer(shippedModel);
    assert.equal(onnxScorer.name, `onnx:${shippedSpec.version}`);
    const mlp = mlpFromOnnx(readFileSync(shippedModel));
    assert.equal(mlp.inputs, featureCount);
    await fc.assert(
      fc.asyncProperty(fc.array(bid, { minLength: 1, maxLength: 64 }), async (rows) => {
        const got = await onnxScorer.score(rows);
        const want = forward(mlp, featureRows(rows), rows.length);
        assert.equal(got.length, rows.length);
        got.forEach((g, i) => assert.ok(Math.abs(g - want[i]!) <= 1e-5 + 1e-5 * Math.abs(want[i]!), `${g} vs ${want[i]}`));
      }),
      { numRuns: 100 },
    );
  });

  test('a missing, corrupt, mis-specified or wrong-shaped model is refused at load with a clear error', async () => {
    const mlp = mlpFromOnnx(readFileSync(shippedModel));
    await assert.rejects(loadOnnxScorer(join(dir, 'nothing.onnx')), (e) => e instanceof ModelError && /feature spec/.test(e.message));
    const corrupt = writeModel('corrupt', new Uint8Array(256).map((_, i) => (i * 37) % 251));
    await assert.rejects(loadOnnxScorer(corrupt), (e) => e instanceof ModelError && /cannot load ONNX model/.test(e.message));
    const renamed = { ...shippedSpec, features: featureSpec().map((f, i) => (i === 2 ? { ...f, name: 'cpuMhz' } : f)) };
    const misSpecified = writeModel('spec', readFileSync(shippedModel), renamed);
    await assert.rejects(loadOnnxScorer(misSpecified), (e) => e instanceof ModelError && /cpuMhz/.test(e.message));
    const narrow = mlpFrom(Array.from({ length: paramCount(5, 4) }, (_, i) => i / 100), 5, 4);
    const wrongShape = writeModel('narrow', mlpToOnnx(narrow, 'narrow'));
    await assert.rejects(
      loadOnnxScorer(wrongShape),
      (e) => e instanceof ModelError && new RegExp(`\\[bids, ${featureCount}\\]`).test(e.message),
    );
    assert.ok(mlp.hidden > 0);
  });

  test('a node falls back to the heuristic with one warning that says why; heuristic and onnx choose as asked', async () => {
    const warnings: string[] = [];
    const corrupt = writeModel('corrupt2', new Uint8Array([1, 2, 3]));
    const fallback = await chooseScorer(corrupt, (m) => warnings.push(m));
    assert.equal(fallback.scorer.name, 'heuristic');
    assert.match(fallback.description, /^heuristic \(fallback: cannot load ONNX model/);
    assert.equal(warnings.length, 1);
    assert.equal((await chooseScorer('heuristic', (m) => warnings.push(m))).description, 'heuristic');
    const onnx = await chooseScorer('onnx', (m) => warnings.push(m));
    assert.equal(onnx.description, `onnx:${shippedSpec.version}`);
    assert.equal(onnx.fallback, null);
    assert.equal(warnings.length, 1);
  });

  test('training is reproducible from its seed, and a tiny run beats a random network on held-out heterogeneous episodes', () => {
    const tiny = { seed: 7, hidden: 6, iterations: 6, population: 12, elite: 3, episodes: 2, jobsPerEpisode: 150 };
    const a = train(tiny);
    const b = train(tiny);
    assert.deepEqual(Array.from(a.mlp.w1), Array.from(b.mlp.w1));
    assert.deepEqual(a.curve, b.curve);
    const random = rng(99);
    const heldOut = Array.from({ length: 16 }, (_, k) => episode(4242, 2 * k + 1, 150)); // odd k: heterogeneous
    const randomNet = mlpFrom(Array.from({ length: paramCount(featureCount, 6) }, () => random() - 0.5), featureCount, 6);
    assert.ok(meanLoss(mlpScorer(a.mlp), heldOut) < meanLoss(mlpScorer(randomNet), heldOut));
  });

  test('`shoal policy train` with the committed spec reproduces the committed model byte for byte', () => {
    const t = shippedSpec.training;
    assert.equal(shippedSpec.version, modelVersion(t));
    const out = join(dir, 'again.onnx');
    trainModel({ seed: t.seed, iterations: t.iterations, population: t.population, out, quiet: true });
    assert.deepEqual(readFileSync(out), readFileSync(shippedModel));
    assert.deepEqual(JSON.parse(readFileSync(specPathOf(out), 'utf8')), shippedSpec);
  });
});
