// `shoal policy train`: train the learned bid scorer on the cluster model and
// write it as ONNX beside its spec (policies/model/bid-scorer.onnx and .json by
// default), with a progress bar. The same seed and options give the same
// bytes; the committed model is reproduced by `shoal policy train` as is.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import cliProgress from 'cli-progress';
import { featureSpec } from '../policies/features.ts';
import { mlpToOnnx, type ModelSpec } from '../policies/onnx.model.ts';
import { shippedModel, specPathOf } from '../policies/onnx.scorer.ts';
import { defaultTraining, train, type TrainOptions } from '../training/train.ts';

export type TrainCommandOptions = { seed: number; out?: string; iterations?: number; population?: number; quiet?: boolean };

/** The model version: what it was trained from (no date, so retraining reproduces the bytes). */
export const modelVersion = (options: Pick<TrainOptions, 'seed' | 'iterations' | 'population'>) =>
  `s${options.seed}-i${options.iterations}-p${options.population}`;

export function trainModel(options: TrainCommandOptions): { model: string; spec: ModelSpec } {
  const opts: TrainOptions = {
    ...defaultTraining,
    seed: options.seed,
    iterations: options.iterations ?? defaultTraining.iterations,
    population: options.population ?? defaultTraining.population,
  };
  const model = resolve(options.out ?? shippedModel);
  if (!model.endsWith('.onnx')) throw new Error(`--out must name a .onnx file (its spec goes beside it as .json): ${model}`);
  const bar = options.quiet ? null : new cliProgress.SingleBar(
    { format: 'training {bar} {value}/{total} iterations | best loss {best}', hideCursor: true, stream: process.stderr },
    cliProgress.Presets.shades_classic,
  );
  bar?.start(opts.iterations, 0, { best: '-' });
  const began = performance.now();
  const r = train({ ...opts, onIteration: (i, best) => bar?.update(i, { best: best.toFixed(3) }) });
  bar?.stop();
  const version = modelVersion(opts);
  const spec: ModelSpec = {
    version,
    features: featureSpec(),
    hidden: opts.hidden,
    training: {
      method: 'cross-entropy method over the MLP parameters; loss = mean slowdown + 2 × Gini of busy time per slot, on simulated episodes',
      seed: opts.seed,
      iterations: opts.iterations,
      population: opts.population,
      episodes: r.episodes,
      jobsPerEpisode: opts.jobsPerEpisode,
      loss: r.loss,
      heuristicLoss: r.heuristicLoss,
      randomLoss: r.randomLoss,
      byWorkload: r.byWorkload,
      curve: r.curve,
      seconds: Math.round((performance.now() - began) / 100) / 10,
    },
  };
  mkdirSync(dirname(model), { recursive: true });
  writeFileSync(model, mlpToOnnx(r.mlp, version));
  // The spec without the run time, so the same seed writes the same file.
  writeFileSync(specPathOf(model), `${JSON.stringify({ ...spec, training: { ...spec.training, seconds: undefined } }, null, 2)}\n`);
  return { model, spec };
}
