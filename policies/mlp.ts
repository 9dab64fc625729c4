// The learned bid scorer's network: inputs → hidden (ReLU) → hidden (ReLU) →
// one score, as plain arrays. The trainer searches its parameters; the ONNX
// model (onnx.model.ts) is the same network as Gemm/Relu nodes, and this
// forward pass is what the ONNX output is tested against.

export type Mlp = {
  inputs: number;
  hidden: number;
  /** [inputs × hidden], row-major (Gemm's B as ONNX stores it). */
  w1: Float32Array;
  b1: Float32Array;
  /** [hidden × hidden]. */
  w2: Float32Array;
  b2: Float32Array;
  /** [hidden × 1]. */
  w3: Float32Array;
  b3: Float32Array;
};

export function paramCount(inputs: number, hidden: number): number {
  return inputs * hidden + hidden + hidden * hidden + hidden + hidden + 1;
}

/** A network from a flat parameter vector (the trainer's search space), in the order of `Mlp`'s fields. */
export function mlpFrom(theta: ArrayLike<number>, inputs: number, hidden: number): Mlp {
  if (theta.length !== paramCount(inputs, hidden)) {
    throw new Error(`expected ${paramCount(inputs, hidden)} parameters, got ${theta.length}`);
  }
  let at = 0;
  const take = (k: number) => Float32Array.from(Array.prototype.slice.call(theta, at, at += k) as number[]);
  return {
    inputs,
    hidden,
    w1: take(inputs * hidden),
    b1: take(hidden),
    w2: take(hidden * hidden),
    b2: take(hidden),
    w3: take(hidden),
    b3: take(1),
  };
}

function layer(x: Float32Array, n: number, inDim: number, w: Float32Array, b: Float32Array, outDim: number, relu: boolean): Float32Array {
  const y = new Float32Array(n * outDim);
  for (let r = 0; r < n; r++) {
    for (let o = 0; o < outDim; o++) {
      let s = b[o]!;
      for (let i = 0; i < inDim; i++) s += x[r * inDim + i]! * w[i * outDim + o]!;
      y[r * outDim + o] = relu && s < 0 ? 0 : s;
    }
  }
  return y;
}

/** Scores of `n` rows (row-major, `m.inputs` wide), in float32 like the ONNX runtime. */
export function forward(m: Mlp, rows: Float32Array, n = rows.length / m.inputs): Float32Array {
  const h1 = layer(rows, n, m.inputs, m.w1, m.b1, m.hidden, true);
  const h2 = layer(h1, n, m.hidden, m.w2, m.b2, m.hidden, true);
  return layer(h2, n, m.hidden, m.w3, m.b3, 1, false);
}
