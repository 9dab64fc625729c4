// A seeded pseudo-random generator (mulberry32) and the few functions of it
// the trainer and the cluster model need, in plain arithmetic: Node's and
// Deno's V8 differ in the last bit of Math.log/exp/cos, and training must give
// the same model bytes from the same seed on both.

export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const LN2 = 0.6931471805599453;

/** Natural log of x > 0: x = m·2^e (exact), ln m = 2·atanh((m−1)/(m+1)) by its series (m in [√½, √2)). */
export function ln(x: number): number {
  if (!(x > 0)) return x === 0 ? -Infinity : NaN;
  let e = 0;
  while (x >= 1.4142135623730951) x /= 2, e++;
  while (x < 0.7071067811865476) x *= 2, e--;
  const z = (x - 1) / (x + 1);
  const z2 = z * z;
  let term = z;
  let sum = 0;
  for (let k = 1; k < 60; k += 2) {
    sum += term / k;
    term *= z2;
  }
  return 2 * sum + e * LN2;
}

/** e^y: y = k·ln 2 + r with |r| ≤ ln2/2, e^r by its series, times 2^k (exact). */
export function exp(y: number): number {
  if (y > 709) return Infinity;
  if (y < -745) return 0;
  const k = Math.round(y / LN2);
  const r = y - k * LN2;
  let term = 1;
  let sum = 1;
  for (let i = 1; i < 30; i++) {
    term *= r / i;
    sum += term;
  }
  return sum * 2 ** k;
}

/** Standard normal samples from `random` (Marsaglia's polar method: only sqrt and ln). */
export function normal(random: () => number): () => number {
  return () => {
    for (;;) {
      const u = 2 * random() - 1;
      const v = 2 * random() - 1;
      const s = u * u + v * v;
      if (s > 0 && s < 1) return u * Math.sqrt((-2 * ln(s)) / s);
    }
  };
}

/** An exponential sample of rate `rate`. */
export const exponential = (random: () => number, rate: number) => -ln(1 - random()) / rate;
