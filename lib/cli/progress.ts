// A progress bar with rate and ETA on stderr. On a terminal it redraws one line; elsewhere
// (a log file, CI) it prints a plain line at most every few seconds and at the end.

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '--:--';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  const mm = String(m).padStart(2, '0'), ss = String(r).padStart(2, '0');
  return h > 0 ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}

/** 'perSecond': 12.3 step/s; 'secondsEach': 4.0 s/step; 'auto': whichever reads better. */
export type RateStyle = 'perSecond' | 'secondsEach' | 'auto';

/** The style 'auto' picks for a rate. */
export function rateStyleFor(perSecond: number): Exclude<RateStyle, 'auto'> {
  return perSecond >= 1 || !Number.isFinite(perSecond) ? 'perSecond' : 'secondsEach';
}

export function formatRate(perSecond: number, unit: string, style: RateStyle = 'auto'): string {
  const each = style === 'secondsEach' || (style === 'auto' && perSecond > 0 && rateStyleFor(perSecond) === 'secondsEach');
  if (!Number.isFinite(perSecond) || perSecond <= 0) return each ? `-- s/${unit}` : `-- ${unit}/s`;
  if (each) return `${(1 / perSecond).toFixed(1)} s/${unit}`;
  if (perSecond >= 100) return `${Math.round(perSecond)} ${unit}/s`;
  return `${perSecond.toFixed(perSecond >= 1 ? 1 : 2)} ${unit}/s`;
}

/** No rate (nor ETA) is shown before this much time has passed: a first reading is noise. */
export const MIN_RATE_SECONDS = 0.5;

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
  /** The count when the bar started (work done earlier, as before a resume, is not in the rate). */
  start?: number;
  rateStyle?: RateStyle;
}

/** Items per second since the bar started; NaN until there is a fair measurement. */
export function progressRate(p: Pick<ProgressState, 'done' | 'elapsed' | 'start'>): number {
  const counted = p.done - (p.start ?? 0);
  return p.elapsed >= MIN_RATE_SECONDS && counted > 0 ? counted / p.elapsed : NaN;
}

function formatField(v: number | string): string {
  if (typeof v === 'string') return v;
  return Math.abs(v) >= 1000 || Number.isInteger(v) ? String(v) : v.toPrecision(4);
}

/** One progress line: label, bar, count, rate, elapsed and ETA, fields. */
export function formatProgress(p: ProgressState, barWidth = 24): string {
  const rate = progressRate(p);
  const eta = p.done >= p.total ? 0 : (p.total - p.done) / rate;
  const width = String(p.total).length;
  const parts = [
    p.label,
    `[${renderBar(p.total > 0 ? p.done / p.total : 1, barWidth)}]`,
    `${String(p.done).padStart(width)}/${p.total}`,
    formatRate(rate, p.unit, p.rateStyle),
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
  readonly #startCount: number;
  #rateStyle: RateStyle;
  #done: number;
  #fields: Record<string, number | string> = {};

  /**
   * `start`: the count the bar starts at (steps done before a resume); they show in the bar
   * but not in the rate. `rateStyle`: step/s or s/step; 'auto' (the default) picks one at the
   * first rate it shows and keeps it, so the unit never flips within a bar; pass one bar's
   * `rateStyle` to the next to keep it for a whole run.
   */
  constructor(
    stream: ProgressStream, label: string, total: number,
    options: { unit?: string; now?: () => number; plainEverySeconds?: number; tty?: boolean; start?: number; rateStyle?: RateStyle } = {},
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
    this.#startCount = options.start ?? 0;
    this.#done = this.#startCount;
    this.#rateStyle = options.rateStyle ?? 'auto';
  }

  /** The rate style in use ('auto' until the first rate was shown). */
  get rateStyle(): RateStyle {
    return this.#rateStyle;
  }

  #line(): string {
    const p: ProgressState = {
      label: this.#label, done: this.#done, total: this.#total, elapsed: this.#now() - this.#start,
      unit: this.#unit, fields: this.#fields, start: this.#startCount, rateStyle: this.#rateStyle,
    };
    const rate = progressRate(p);
    if (this.#rateStyle === 'auto' && Number.isFinite(rate)) p.rateStyle = this.#rateStyle = rateStyleFor(rate);
    return formatProgress(p);
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

  /**
   * Redraws the same count when it is time to: the elapsed time, rate and ETA move on while
   * a long step runs (in a worker thread, so that the event loop is free to call this).
   */
  refresh(): void {
    this.update(this.#done, this.#fields);
  }

  /** Draws the final state and ends the line. */
  finish(): void {
    this.#stream.write(this.#tty ? `\r${this.#line()}\x1b[K\n` : this.#line() + '\n');
  }
}
