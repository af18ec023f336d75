// kNN accuracy of embeddings: each test embedding takes the labels of its k most similar
// (cosine) training embeddings, the monitor of instance discrimination (Wu et al. 2018) and
// of SimCLR / MoCo / SupCon training runs. The neighbour search is native (knnTopK); the
// votes are cheap and happen here.
import { checkOneOf, checkOptionNames, describe } from '../check';
import { native } from '../native';
import { Tensor } from '../tensor';

export interface LabelledEmbeddings {
  /** Row-major [labels.length, dim]. */
  data: Float32Array;
  dim: number;
  labels: Int32Array | readonly number[];
}

export interface KnnOptions {
  /** Neighbours (default 200, at most the training rows). */
  k?: number;
  /**
   * 'weighted' (default): each neighbour votes exp(similarity / temperature) for its class;
   * 'majority': one vote each. Ties go to the lower class index.
   */
  vote?: 'weighted' | 'majority';
  /** Temperature of the weighted vote (default 0.1). */
  temperature?: number;
  threads?: number;
  /** Where the neighbour search runs: 'cpu' (default) or 'cuda' (the same neighbours, on the GPU). */
  device?: 'cpu' | 'cuda';
}

export interface Neighbours {
  /** [rows, k] training row indices, most similar first (equal similarity: lower index first). */
  index: Int32Array;
  /** [rows, k] cosine similarities. */
  similarity: Float32Array;
  k: number;
}

function checkEmbeddings(e: unknown, name: string, withLabels: boolean): { rows: number; labels: Int32Array | null } {
  if (typeof e !== 'object' || e === null) throw new TypeError(`${name}: expected { data, dim${withLabels ? ', labels' : ''} }, got ${describe(e)}`);
  const { data, dim, labels } = e as LabelledEmbeddings;
  if (!(data instanceof Float32Array)) throw new TypeError(`${name}.data: expected a Float32Array, got ${describe(data)}`);
  if (typeof dim !== 'number' || !Number.isSafeInteger(dim) || dim < 1)
    throw new RangeError(`${name}.dim: expected a positive integer, got ${describe(dim)}`);
  if (data.length === 0 || data.length % dim !== 0)
    throw new RangeError(`${name}.data: expected a positive multiple of dim = ${dim} values, got ${data.length}`);
  const rows = data.length / dim;
  if (!withLabels) return { rows, labels: null };
  if (!(labels instanceof Int32Array) && !Array.isArray(labels))
    throw new TypeError(`${name}.labels: expected an Int32Array or number[], got ${describe(labels)}`);
  if (labels.length !== rows) throw new RangeError(`${name}.labels: expected ${rows} labels (one per row), got ${labels.length}`);
  const out = Int32Array.from(labels);
  out.forEach((l, i) => {
    if (l < 0 || l !== labels[i]) throw new RangeError(`${name}.labels[${i}]: expected a non-negative integer, got ${labels[i]}`);
  });
  return { rows, labels: out };
}

/**
 * The k most similar training rows of each test row (cosine similarity). `device` 'cuda'
 * searches on the GPU (the rows are uploaded for the search; at most 2,048 neighbours there):
 * the same neighbours and similarities as on the CPU, bit for bit.
 */
export function knnNeighbours(
  train: { data: Float32Array; dim: number }, test: { data: Float32Array; dim: number }, k: number, threads?: number,
  device: 'cpu' | 'cuda' = 'cpu',
): Neighbours {
  if (threads !== undefined && (typeof threads !== 'number' || !Number.isSafeInteger(threads) || threads < 1))
    throw new RangeError(`threads: expected a positive integer, got ${describe(threads)}`);
  const where = checkOneOf(device, ['cpu', 'cuda'] as const, 'device');
  const a = checkEmbeddings(train, 'train', false), b = checkEmbeddings(test, 'test', false);
  if (train.dim !== test.dim) throw new RangeError(`test.dim: expected the training dim ${train.dim}, got ${test.dim}`);
  if (!Number.isSafeInteger(k) || k < 1 || k > a.rows)
    throw new RangeError(`k: expected an integer in [1, ${a.rows}] (the training rows), got ${describe(k)}`);
  const index = new Int32Array(b.rows * k), similarity = new Float32Array(b.rows * k);
  if (where === 'cpu') {
    native.nn.knnTopK(train.data, test.data, index, similarity, a.rows, b.rows, train.dim, k, threads);
    return { index, similarity, k };
  }
  const onDevice = [
    Tensor.from(train.data, [a.rows, train.dim], { device: 'cuda' }), Tensor.from(test.data, [b.rows, test.dim], { device: 'cuda' }),
    Tensor.zeros([b.rows, k], { dtype: 'int32', device: 'cuda' }), Tensor.zeros([b.rows, k], { device: 'cuda' }),
  ] as const;
  try {
    native.nn.knnTopK(onDevice[0].storage, onDevice[1].storage, onDevice[2].storage, onDevice[3].storage, a.rows, b.rows, train.dim, k);
    index.set(onDevice[2].dataSync() as Int32Array);
    similarity.set(onDevice[3].dataSync() as Float32Array);
  } finally {
    for (const t of onDevice) t.dispose();
  }
  return { index, similarity, k };
}

/** The predicted class of each test row. */
export function knnPredict(train: LabelledEmbeddings, test: { data: Float32Array; dim: number }, options: KnnOptions = {}): Int32Array {
  checkOptionNames(options, ['k', 'vote', 'temperature', 'threads', 'device'], 'options');
  const { rows, labels } = checkEmbeddings(train, 'train', true);
  const vote = checkOneOf(options.vote ?? 'weighted', ['weighted', 'majority'] as const, 'options.vote');
  const temperature = options.temperature ?? 0.1;
  if (typeof temperature !== 'number' || !(temperature > 0) || !Number.isFinite(temperature))
    throw new RangeError(`options.temperature: expected a finite number > 0, got ${describe(temperature)}`);
  const askedK = options.k ?? 200;
  if (typeof askedK !== 'number' || !Number.isSafeInteger(askedK) || askedK < 1)
    throw new RangeError(`options.k: expected a positive integer, got ${describe(askedK)}`);
  const k = Math.min(askedK, rows);
  const nb = knnNeighbours(train, test, k, options.threads, options.device);
  let classes = 0;
  for (const l of labels!) if (l + 1 > classes) classes = l + 1;
  const testRows = nb.index.length / k;
  const scores = new Float64Array(classes);
  const out = new Int32Array(testRows);
  for (let i = 0; i < testRows; i++) {
    scores.fill(0);
    for (let q = 0; q < k; q++) {
      const s = nb.similarity[i * k + q];
      scores[labels![nb.index[i * k + q]]] += vote === 'weighted' ? Math.exp(s / temperature) : 1;
    }
    let best = 0;
    for (let c = 1; c < classes; c++) if (scores[c] > scores[best]) best = c;
    out[i] = best;
  }
  return out;
}

/** The fraction of test rows whose kNN prediction is their label. */
export function knnAccuracy(train: LabelledEmbeddings, test: LabelledEmbeddings, options: KnnOptions = {}): number {
  const { labels } = checkEmbeddings(test, 'test', true);
  const predicted = knnPredict(train, test, options);
  let right = 0;
  for (let i = 0; i < predicted.length; i++) if (predicted[i] === labels![i]) right++;
  return right / predicted.length;
}
