// Which bid scorer a node uses (`shoal node --policy onnx|heuristic|<path>`):
// the shipped ONNX model by default, the heuristic on request, or a model
// file. A model that cannot be used (missing, corrupt, another feature spec or
// input shape) is never used to mis-score: the node falls back to the
// heuristic with one clear warning, says so in its status advert
// (`heuristic (fallback: …)`) and in the `shoal_policy_fallback` metric.
import { heuristicScorer, type Scorer } from '../policies/scorer.ts';

export type ScorerChoice = { scorer: Scorer; /** What status shows. */ description: string; fallback: string | null };

export async function chooseScorer(policy: string, warn: (msg: string) => void): Promise<ScorerChoice> {
  if (policy === 'heuristic') return { scorer: heuristicScorer, description: 'heuristic', fallback: null };
  try {
    // Loaded only when asked for: ONNX Runtime's native library costs a node with the heuristic nothing.
    const { loadOnnxScorer, shippedModel } = await import('../policies/onnx.scorer.ts');
    const path = policy === 'onnx' ? shippedModel : policy;
    const scorer = await loadOnnxScorer(path);
    return { scorer, description: scorer.name, fallback: null };
  } catch (err) {
    const missing = (err as NodeJS.ErrnoException).code === 'ERR_MODULE_NOT_FOUND' && /'onnxruntime-node'/.test((err as Error).message);
    // An optional dependency: a package installed with --omit=optional (or whose install script failed) has none.
    const reason = missing
      ? 'onnxruntime-node is not installed (npm install onnxruntime-node --onnxruntime-node-install=skip)'
      : (err as Error).message;
    warn(`policy ${policy}: ${reason}; scoring bids with the heuristic instead`);
    return { scorer: heuristicScorer, description: `heuristic (fallback: ${reason})`, fallback: reason };
  }
}
