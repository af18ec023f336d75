// A 2-D map of embeddings for the report, by UMAP (umap-js), on a seeded, class-stratified
// sample of at most maxPoints rows.
import { UMAP } from 'umap-js';
import { PhiloxStream, permutation } from '../data/philox';
import { knnNeighbours } from '../metrics/knn';

export interface Map2d {
  x: Float32Array;
  y: Float32Array;
  labels: Int32Array;
  /** Rows of the input that the map shows. */
  indices: Uint32Array;
}

const STREAM_MAP = 0x4d415032; // 'MAP2'

/**
 * The map's work as a generator: it yields [epochs done, epochs] of the UMAP layout, so that
 * a caller can show progress and let the event loop (and Ctrl-C) in between.
 */
function* mapSteps(
  data: Float32Array, dim: number, labels: Int32Array,
  options: { maxPoints?: number; seed?: number; nNeighbors?: number },
): Generator<[number, number], Map2d> {
  const n = labels.length;
  if (!Number.isSafeInteger(dim) || dim < 1) throw new RangeError(`dim: expected a positive integer, got ${dim}`);
  if (data.length !== n * dim) throw new RangeError(`data: expected ${n} x ${dim} = ${n * dim} values, got ${data.length}`);
  const maxPoints = options.maxPoints ?? 2000;
  const seed = options.seed ?? 0;
  // A seeded shuffle, cut to maxPoints: classes keep their shares in expectation.
  const order = permutation(n, seed, 0, STREAM_MAP);
  const indices = order.slice(0, Math.min(n, maxPoints)).sort();
  const rows = Array.from(indices, (i) => Array.from(data.subarray(i * dim, (i + 1) * dim)));
  const m = rows.length;
  const x = new Float32Array(m), y = new Float32Array(m);
  if (m >= 3) {
    const rng = new PhiloxStream(seed, 1, 0, STREAM_MAP);
    const k = Math.min(options.nNeighbors ?? 15, m - 1);
    const epochs = m <= 2500 ? 500 : m <= 5000 ? 400 : m <= 7500 ? 300 : 200; // umap-js' own choice, made known up front
    const umap = new UMAP({ nComponents: 2, nNeighbors: k, nEpochs: epochs, minDist: 0.1, random: () => rng.nextFloat() });
    yield [0, epochs];
    // The neighbour graph from the native exact kNN (cosine similarity, as the kNN monitor
    // uses; distance sqrt(2 - 2 cos), the Euclidean distance of the normalised rows) instead
    // of umap-js' approximate search, which takes most of a second for 2,000 rows.
    const sample = new Float32Array(m * dim);
    indices.forEach((i, r) => sample.set(data.subarray(i * dim, (i + 1) * dim), r * dim));
    const near = knnNeighbours({ data: sample, dim }, { data: sample, dim }, k); // each row's own first, as umap-js has it
    const knnIndices: number[][] = [], knnDistances: number[][] = [];
    for (let r = 0; r < m; r++) {
      knnIndices.push(Array.from(near.index.subarray(r * k, (r + 1) * k)));
      knnDistances.push(Array.from(near.similarity.subarray(r * k, (r + 1) * k), (c) => Math.sqrt(Math.max(0, 2 - 2 * c))));
    }
    umap.setPrecomputedKNN(knnIndices, knnDistances);
    yield [0, epochs];
    umap.initializeFit(rows);
    yield [0, epochs];
    for (let e = 0; e < epochs; e++) {
      umap.step();
      if (e % 10 === 9 || e === epochs - 1) yield [e + 1, epochs];
    }
    umap.getEmbedding().forEach((p, i) => { x[i] = p[0]; y[i] = p[1]; });
  } else {
    rows.forEach((_, i) => { x[i] = i; y[i] = 0; });
  }
  return { x, y, labels: Int32Array.from(indices, (i) => labels[i]), indices };
}

export function embeddingMap(
  data: Float32Array, dim: number, labels: Int32Array,
  options: { maxPoints?: number; seed?: number; nNeighbors?: number } = {},
): Map2d {
  const steps = mapSteps(data, dim, labels, options);
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
  }
}

/** embeddingMap, telling `progress` (which may pause or throw) how far the layout is. */
export async function embeddingMapAsync(
  data: Float32Array, dim: number, labels: Int32Array,
  options: { maxPoints?: number; seed?: number; nNeighbors?: number; progress?: (done: number, total: number) => void | Promise<void> } = {},
): Promise<Map2d> {
  const steps = mapSteps(data, dim, labels, options);
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
    await options.progress?.(r.value[0], r.value[1]);
  }
}
