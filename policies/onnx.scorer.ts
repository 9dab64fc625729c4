// Scoring bids with ONNX Runtime (onnxruntime-node's CPU build, on Node and
// Deno alike): a model whose feature spec or input width does not match this
// version of Shoal is refused at load with an error that says which, never
// used to mis-score. Every offer is scored as one batch.
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { featureCount, featureRows, featureSpec } from './features.ts';
import { modelInput, modelOutput, type ModelSpec } from './onnx.model.ts';
import type { Scorer } from './scorer.ts';

/** The model the project trains and ships (`shoal policy train` rewrites it). */
export const shippedModel = fileURLToPath(new URL('./model/bid-scorer.onnx', import.meta.url));

/** The spec beside a model: the same path with .json for .onnx. */
export const specPathOf = (model: string) => `${model.replace(/\.onnx$/, '')}.json`;

export class ModelError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ModelError';
  }
}

const names = (xs: Array<{ name: string }>) => xs.map((x) => x.name).join(', ');

export type OnnxScorer = Scorer & { spec: ModelSpec; score: (rows: Parameters<Scorer['score']>[0]) => Promise<number[]> };

export async function loadOnnxScorer(modelPath: string): Promise<OnnxScorer> {
  const specPath = specPathOf(modelPath);
  let spec: ModelSpec;
  try {
    spec = JSON.parse(await readFile(specPath, 'utf8')) as ModelSpec;
  } catch (err) {
    throw new ModelError(`cannot read the model's feature spec ${specPath}: ${(err as Error).message}`);
  }
  const want = featureSpec();
  if (!Array.isArray(spec.features) || JSON.stringify(spec.features) !== JSON.stringify(want)) {
    const theirs = Array.isArray(spec.features) ? names(spec.features) : 'none';
    throw new ModelError(
      `the model's features (${theirs}) are not the ones this Shoal scores with (${names(want)}, same scales): retrain it`,
    );
  }
  let session: ort.InferenceSession;
  try {
    session = await ort.InferenceSession.create(await readFile(modelPath));
  } catch (err) {
    throw new ModelError(`cannot load ONNX model ${modelPath}: ${(err as Error).message}`);
  }
  if (!session.inputNames.includes(modelInput) || !session.outputNames.includes(modelOutput)) {
    throw new ModelError(
      `ONNX model ${modelPath} has inputs [${session.inputNames}] and outputs [${session.outputNames}]; expected '${modelInput}' and '${modelOutput}'`,
    );
  }
  const run = async (data: Float32Array, n: number): Promise<Float32Array> => {
    const out = await session.run({ [modelInput]: new ort.Tensor('float32', data, [n, featureCount]) });
    const t = out[modelOutput]!;
    if (t.dims.length !== 2 || t.dims[0] !== n || t.dims[1] !== 1) {
      throw new ModelError(`ONNX model ${modelPath} answered shape [${t.dims}] for ${n} bids; expected [${n}, 1]`);
    }
    return t.data as Float32Array;
  };
  // A probe at load: a model of another input width or output shape fails here, not in an auction.
  try {
    await run(new Float32Array(featureCount), 1);
  } catch (err) {
    throw err instanceof ModelError
      ? err
      : new ModelError(`ONNX model ${modelPath} does not take [bids, ${featureCount}] features: ${(err as Error).message}`);
  }
  return { name: `onnx:${spec.version}`, spec, score: async (rows) => Array.from(await run(featureRows(rows), rows.length)) };
}
