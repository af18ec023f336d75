#!/usr/bin/env node
// The `supcon` command.
import fs from 'node:fs';
import path from 'node:path';
import { writeRunReport } from '../report/write';
import { Command, HELP, parseCommandLine, UsageError } from './args';
import { formatBench, runBench } from './bench';
import { runInfo } from './info';
import type { ProgressStream } from './progress';
import { evaluateRun, interceptSigint, runTraining } from './train-loop';
import { RunFolder } from './run-folder';
import { supconTrainerFactory } from '../train';
import { registeredTrainer, TrainerFactory } from './trainer';
import { trainerInWorker } from './trainer-worker';

export interface CliIo {
  stdout: { write(s: string): unknown };
  stderr: ProgressStream;
}

export interface CliDeps {
  /** The training loop (default: the registered one). */
  factory?: TrainerFactory;
  /** How supcon was invoked, for the commands it suggests (default: invokedAs()). */
  command?: string;
}

export function packageVersion(): string {
  const file = path.join(__dirname, '..', '..', '..', 'package.json');
  return String(JSON.parse(fs.readFileSync(file, 'utf8')).version);
}

async function execute(cmd: Command, io: CliIo, deps: CliDeps): Promise<number> {
  const out = (s: string) => io.stdout.write(s + '\n');
  switch (cmd.command) {
    case 'help':
      out(HELP[(cmd.topic ?? 'main') as keyof typeof HELP] ?? HELP.main);
      return 0;
    case 'version':
      out(packageVersion());
      return 0;
    case 'info':
      out(runInfo(cmd.json, packageVersion()));
      return 0;
    case 'bench': {
      const r = runBench(cmd);
      out(cmd.json ? JSON.stringify(r, null, 2) : formatBench(r));
      return 0;
    }
    case 'train': {
      const factory = deps.factory ?? defaultFactory();
      const stop = interceptSigint(io.stderr);
      try {
        const result = await runTraining(cmd.config, {
          factory, resume: cmd.resume, given: cmd.given, command: deps.command ?? invokedAs(), stream: io.stderr, stop,
          writeReport: (run, evaluation, classNames, hooks) => writeRunReport(run, evaluation, classNames, hooks),
        });
        if (result.status === 'interrupted') return 130;
        if (result.status === 'complete') return 0;
        out(JSON.stringify({ run: result.run.dir, ...result.evaluation?.metrics }));
        io.stderr.write(`Report: ${result.run.reportFile}\n`);
        return 0;
      } finally {
        stop.dispose();
      }
    }
    case 'eval': {
      const factory = deps.factory ?? defaultFactory();
      const stop = interceptSigint(io.stderr);
      try {
        const evaluation = await evaluateRun(cmd.run, {
          factory, stream: io.stderr, device: cmd.device, stop, command: deps.command ?? invokedAs(),
          writeReport: (run, e, classNames, hooks) => writeRunReport(run, e, classNames, hooks),
        });
        if (evaluation === null) return 130;
        out(JSON.stringify({ run: path.resolve(cmd.run), ...evaluation.metrics }));
        io.stderr.write(`Report: ${new RunFolder(cmd.run).reportFile}\n`);
        return 0;
      } finally {
        stop.dispose();
      }
    }
  }
}

/**
 * The registered trainer; the package's own runs in a worker thread (TrainerWorker), so that
 * the progress line and Ctrl-C stay responsive while a step runs. A trainer registered by
 * the embedding program runs in this thread (its module is not known to load in another).
 */
function defaultFactory(): TrainerFactory {
  const registered = registeredTrainer();
  return registered === supconTrainerFactory ? trainerInWorker() : registered;
}

/**
 * How the user ran this command, for the commands we suggest: 'npx supcon' under npx or an
 * npm script (npm sets npm_command), 'supcon' when the script was found on the PATH under
 * that name (a global install), else the script as typed ('node dist/lib/cli/main.js').
 */
export function invokedAs(env: Record<string, string | undefined> = process.env, argv: readonly string[] = process.argv): string {
  if (env.npm_command !== undefined) return 'npx supcon'; // npx, or an npm script: a local install
  const script = argv[1] ?? '';
  if (path.basename(script) === 'supcon') {
    const onPath = (env.PATH ?? '').split(path.delimiter).some((d) => d !== '' && path.resolve(d, 'supcon') === path.resolve(script));
    return onPath ? 'supcon' : script;
  }
  return `node ${path.relative(process.cwd(), script) || script}`;
}

/** Runs the command line; returns the exit status (2 for usage errors, 130 after Ctrl-C). */
export async function main(argv: readonly string[], io: CliIo = process, deps: CliDeps = {}): Promise<number> {
  let cmd: Command;
  try {
    cmd = parseCommandLine(argv);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    const where = e.command ? `supcon ${e.command}` : 'supcon';
    io.stderr.write(`${where}: ${e.message}\nRun '${where} --help' for usage.\n`);
    return 2;
  }
  try {
    return await execute(cmd, io, deps);
  } catch (e) {
    if (e instanceof UsageError) {
      io.stderr.write(`supcon ${cmd.command}: ${e.message}\n`);
      return 2;
    }
    io.stderr.write(`supcon ${cmd.command}: ${(e as Error).message}\n`);
    if (process.env.SUPCON_DEBUG) io.stderr.write(`${(e as Error).stack}\n`);
    return 1;
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then((code) => { process.exitCode = code; });
}
