// A progress bar with rate and ETA on stderr. On a terminal it redraws one line; elsewhere
// (a log file, CI) it prints a plain line at most every few seconds and at the end.

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '--:--';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  const mm = String(m).padStart(2, '0'), ss = String(r).padStart(2, '0');
  return h > 0 ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}

export function formatRate(perSecond: number, unit: string): string {
  if (!Number.isFinite(perSecond) || perSecond <= 0) return `-- ${unit}/s`;
  if (perSecond >= 100) return `${Math.round(perSecond)} ${unit}/s`;
  if (perSecond >= 1) return `${perSecond.toFixed(1)} ${unit}/s`;
  return `${(1 / perSecond).toFixed(1)} s/${unit}`;
}

export function renderBar(fraction: number, width: number): string {
  const f = Math.min(1, Math.max(0, Number.isFinite(fraction) ? fraction : 0));
  const full = Math.floor(f * width);
  return '#'.repeat(full) + (full < width ? '.'.repeat(width - full) : '');
}

export interface ProgressState {
  label: string;
  done: number;
  total: number;
  /** Seconds since the bar started. */
  elapsed: number;
  unit: string;
  /** Extra fields shown after the ETA, such as the loss. */
  fields?: Record<string, number | string>;
}

function formatField(v: number | string): string {
  if (typeof v === 'string') return v;
  return Math.abs(v) >= 1000 || Number.isInteger(v) ? String(v) : v.toPrecision(4);
}

/** One progress line: label, bar, count, rate, elapsed and ETA, fields. */
export function formatProgress(p: ProgressState, barWidth = 24): string {
  const rate = p.elapsed > 0 ? p.done / p.elapsed : NaN;
  const eta = p.done > 0 && p.done < p.total ? (p.total - p.done) / rate : p.done >= p.total ? 0 : NaN;
  const width = String(p.total).length;
  const parts = [
    p.label,
    `[${renderBar(p.total > 0 ? p.done / p.total : 1, barWidth)}]`,
    `${String(p.done).padStart(width)}/${p.total}`,
    formatRate(rate, p.unit),
    `${formatDuration(p.elapsed)} elapsed`,
    `ETA ${formatDuration(eta)}`,
  ];
  for (const [k, v] of Object.entries(p.fields ?? {})) parts.push(`${k} ${formatField(v)}`);
  return parts.join(' ');
}

export interface ProgressStream {
  write(s: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export class ProgressBar {
  readonly #stream: ProgressStream;
  readonly #tty: boolean;
  readonly #label: string;
  readonly #total: number;
  readonly #unit: string;
  readonly #now: () => number;
  readonly #start: number;
  readonly #plainEverySeconds: number;
  #lastPlain: number;
  #lastDraw = -Infinity;
  #done = 0;
  #fields: Record<string, number | string> = {};

  constructor(
    stream: ProgressStream, label: string, total: number,
    options: { unit?: string; now?: () => number; plainEverySeconds?: number; tty?: boolean } = {},
  ) {
    this.#stream = stream;
    this.#tty = options.tty ?? stream.isTTY === true;
    this.#label = label;
    this.#total = total;
    this.#unit = options.unit ?? 'step';
    this.#now = options.now ?? (() => performance.now() / 1000);
    this.#start = this.#now();
    this.#lastPlain = this.#start; // the first plain line comes after an interval, not at once
    this.#plainEverySeconds = options.plainEverySeconds ?? 10;
  }

  #line(): string {
    return formatProgress({
      label: this.#label, done: this.#done, total: this.#total, elapsed: this.#now() - this.#start,
      unit: this.#unit, fields: this.#fields,
    });
  }

  /** Sets the count (and fields) and redraws when it is time to. */
  update(done: number, fields: Record<string, number | string> = {}): void {
    this.#done = done;
    this.#fields = fields;
    const t = this.#now();
    if (this.#tty) {
      if (t - this.#lastDraw < 0.1 && done < this.#total) return;
      this.#lastDraw = t;
      const line = this.#line();
      const cols = this.#stream.columns ?? 0;
      this.#stream.write(`\r${cols > 1 && line.length >= cols ? line.slice(0, cols - 1) : line}\x1b[K`);
    } else if (t - this.#lastPlain >= this.#plainEverySeconds && done < this.#total) {
      this.#lastPlain = t;
      this.#stream.write(this.#line() + '\n');
    }
  }

  /** Draws the final state and ends the line. */
  finish(): void {
    this.#stream.write(this.#tty ? `\r${this.#line()}\x1b[K\n` : this.#line() + '\n');
  }
}
