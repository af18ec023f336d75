// The worker-thread side of TrainerWorker: makes the trainer with the registered factory of
// the module it is given, then runs the calls posted to it, one at a time, in order.
import { parentPort, workerData } from 'node:worker_threads';
import { registeredTrainer, Trainer } from './trainer';
import type { SerializedError, ThreadData, ThreadMessage } from './trainer-worker';

const data = workerData as ThreadData;
const port = parentPort!;
const abort = new Int32Array(data.abort);
const post = (m: ThreadMessage) => port.postMessage(m);

class Aborted extends Error {}

function serialize(e: unknown): SerializedError {
  return e instanceof Error ? { name: e.name, message: e.message, stack: e.stack } : { name: 'Error', message: String(e) };
}

async function start(): Promise<Trainer> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  require(data.module);
  return registeredTrainer()({ ...data.setup, log: (message) => post({ type: 'log', message }) });
}

start().then(
  (trainer) => {
    post({ type: 'ready', stepsPerEpoch: trainer.stepsPerEpoch });
    let queue = Promise.resolve();
    port.on('message', (m: { id: number; method: keyof Trainer; args: unknown[]; progress: boolean }) => {
      queue = queue.then(async () => {
        if (m.method === 'dispose') {
          trainer.dispose();
          port.close();
          return;
        }
        // The caller's progress callback threw: stop at the next report (as it would have).
        const progress = (done: number, total: number, label: string) => {
          if (Atomics.load(abort, 0) !== 0) throw new Aborted();
          post({ type: 'progress', id: m.id, done, total, label });
        };
        try {
          const args = m.progress ? [...m.args, progress] : m.args;
          // An optional method the trainer lacks (flushLoss) answers null.
          const fn = trainer[m.method] as ((...a: unknown[]) => unknown) | undefined;
          const value = typeof fn === 'function' ? await fn.apply(trainer, args) : null;
          post({ type: 'result', id: m.id, value });
        } catch (e) {
          post({ type: 'error', id: m.id, error: serialize(e) });
        }
      });
    });
  },
  (e) => {
    post({ type: 'error', id: 0, error: serialize(e) });
    port.close();
  },
);
