// One fuzz worker: calls [from, from + count) of a seed, in order, in this process. Before
// each call it records the call index and its running counts in the progress file (one
// synchronous write), so that when the process dies the parent knows the call that killed
// it; findings (non-finite outputs, engine errors) are appended to the events file at once.
// A call that returns a promise is awaited before the next one starts.
//   node test/fuzz/worker.mjs <seed> <from> <count> <progress file> <events file>
import fs from 'node:fs';
import { allFinite, makeCall, removeScratch } from './grammar.mjs';

const [seed, from, count] = process.argv.slice(2, 5).map(Number);
const [progressFile, eventsFile] = process.argv.slice(5, 7);
const progress = fs.openSync(progressFile, 'w');
const record = Buffer.alloc(128, 0x20);
const counts = { ok: 0, clean: 0, engine: 0, other: 0, nonFinite: 0 };

// Errors that are JavaScript's own (a value reached code that did not check it), not ours.
const ENGINE = /Cannot (read|set) properties|is not a function|is not iterable|is not a constructor|Cannot convert|Cannot mix BigInt|Invalid array length|Invalid typed array length|Maximum call stack|Array buffer allocation failed|Cannot destructure|Cannot create property|object null is not|Invalid argument|Offset is outside|Reduce of empty/;

function event(kind, index, name, detail) {
  fs.appendFileSync(eventsFile, JSON.stringify({ kind, index, name, detail: String(detail).slice(0, 300) }) + '\n');
}

function write(index, name = '-') {
  record.fill(0x20);
  record.write(`${index} ${counts.ok} ${counts.clean} ${counts.engine} ${counts.other} ${counts.nonFinite} ${name}`, 0, 'latin1');
  fs.writeSync(progress, record, 0, record.length, 0);
}

function finiteOutputs(outputs) {
  if (outputs === undefined || outputs === null) return true;
  const list = Array.isArray(outputs) ? outputs : [outputs];
  return list.every((x) => x === undefined || !(typeof x === 'number' || ArrayBuffer.isView(x)) || allFinite(x));
}

for (let i = from; i < from + count; i++) {
  const call = makeCall(seed, i);
  write(i, call.name);
  try {
    let outputs = call.run();
    // The Promise-returning functions: the call is what the promise settles to.
    if (outputs instanceof Promise) outputs = await outputs;
    counts.ok++;
    if (call.ctx.finite && !finiteOutputs(outputs)) {
      counts.nonFinite++;
      event('nonFinite', i, call.name, 'finite inputs gave a non-finite output');
    }
  } catch (e) {
    const message = e instanceof Error ? `${e.name}: ${e.message}` : `thrown ${typeof e}`;
    if (e instanceof Error && ENGINE.test(e.message) && !/^fuzz:/.test(e.message)) {
      counts.engine++;
      event('engine', i, call.name, message);
    } else if (e instanceof TypeError || e instanceof RangeError || (e instanceof Error && /Error$/.test(e.name))) {
      counts.clean++;
    } else {
      counts.other++;
      event('other', i, call.name, message);
    }
  } finally {
    call.ctx.cleanup();
  }
}
write(from + count);
fs.closeSync(progress);
removeScratch();
