// The learned scorer as an ONNX model: the MLP of mlp.ts as Gemm → Relu →
// Gemm → Relu → Gemm, input `features` [bids × features], output `score`
// [bids × 1], written with onnx-proto (ONNX's protobuf schema for JS). Beside
// it, a JSON spec: the feature names and scaling it was trained with, and how.
import onnxProto from 'onnx-proto';
import { featureSpec } from './features.ts';
import type { Mlp } from './mlp.ts';

const { onnx } = onnxProto;

export const modelInput = 'features';
export const modelOutput = 'score';

/** What a model file's spec says (model.json beside model.onnx). */
export type ModelSpec = {
  /** Changes with every retraining: `<date>-<seed>`. */
  version: string;
  features: ReturnType<typeof featureSpec>;
  hidden: number;
  training: {
    method: string;
    seed: number;
    iterations: number;
    population: number;
    episodes: number;
    jobsPerEpisode: number;
    /** Held-out mean loss (mean slowdown + 2 × Gini) of the model, the heuristic and a random network. */
    loss: number;
    heuristicLoss: number;
    randomLoss: number;
    byWorkload: Record<string, { model: number; heuristic: number; random: number }>;
    curve: number[];
    seconds: number;
  };
};

export function mlpToOnnx(m: Mlp, version: string): Uint8Array {
  const FLOAT = onnx.TensorProto.DataType.FLOAT;
  const tensor = (name: string, dims: number[], data: Float32Array) => ({ name, dims, dataType: FLOAT, floatData: Array.from(data) });
  const value = (name: string, dims: Array<number | string>) => ({
    name,
    type: {
      tensorType: {
        elemType: FLOAT,
        shape: { dim: dims.map((d) => (typeof d === 'string' ? { dimParam: d } : { dimValue: d })) },
      },
    },
  });
  const gemm = (x: string, w: string, b: string, out: string) => ({ opType: 'Gemm', name: out, input: [x, w, b], output: [out] });
  const relu = (x: string, out: string) => ({ opType: 'Relu', name: out, input: [x], output: [out] });
  const model = onnx.ModelProto.create({
    irVersion: 8,
    producerName: 'shoal',
    producerVersion: version,
    opsetImport: [{ domain: '', version: 13 }],
    metadataProps: [{ key: 'shoal.features', value: JSON.stringify(featureSpec()) }],
    graph: {
      name: 'shoal_bid_scorer',
      input: [value(modelInput, ['bids', m.inputs])],
      output: [value(modelOutput, ['bids', 1])],
      initializer: [
        tensor('w1', [m.inputs, m.hidden], m.w1),
        tensor('b1', [m.hidden], m.b1),
        tensor('w2', [m.hidden, m.hidden], m.w2),
        tensor('b2', [m.hidden], m.b2),
        tensor('w3', [m.hidden, 1], m.w3),
        tensor('b3', [1], m.b3),
      ],
      node: [
        gemm(modelInput, 'w1', 'b1', 'h1'),
        relu('h1', 'a1'),
        gemm('a1', 'w2', 'b2', 'h2'),
        relu('h2', 'a2'),
        gemm('a2', 'w3', 'b3', modelOutput),
      ],
    },
  });
  return onnx.ModelProto.encode(model).finish();
}

/** The network back from a model this module wrote (for checking ONNX Runtime against the TypeScript forward pass). */
export function mlpFromOnnx(bytes: Uint8Array): Mlp {
  const model = onnx.ModelProto.decode(bytes);
  const init = new Map((model.graph?.initializer ?? []).map((t) => [t.name ?? '', t]));
  const take = (name: string) => {
    const t = init.get(name);
    if (!t) throw new Error(`no initializer '${name}' in the model`);
    return { data: Float32Array.from(t.floatData ?? []), dims: (t.dims ?? []).map(Number) };
  };
  const w1 = take('w1');
  return {
    inputs: w1.dims[0]!,
    hidden: w1.dims[1]!,
    w1: w1.data,
    b1: take('b1').data,
    w2: take('w2').data,
    b2: take('b2').data,
    w3: take('w3').data,
    b3: take('b3').data,
  };
}
