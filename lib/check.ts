// Argument checks for the TypeScript front end. Messages name the argument, what was
// expected and what came, like the native layer's.

export function describe(value: unknown): string {
  if (value === undefined) return 'undefined';
  if (value === null) return 'null';
  if (typeof value === 'number') return `number ${value}`;
  if (typeof value === 'string') return `string '${value.length > 40 ? value.slice(0, 40) + '...' : value}'`;
  if (typeof value === 'boolean') return `boolean ${value}`;
  if (Array.isArray(value)) return `an Array(${value.length})`;
  if (ArrayBuffer.isView(value)) {
    const len = (value as unknown as { length?: number }).length;
    return `${value.constructor.name}(${len ?? value.byteLength})`;
  }
  if (typeof value === 'function') return 'a function';
  if (typeof value === 'object') {
    const name = (value as object).constructor?.name;
    return name && name !== 'Object' ? `a ${name}` : 'an object';
  }
  return typeof value;
}

export function isPositiveInteger(x: unknown): x is number {
  return typeof x === 'number' && Number.isSafeInteger(x) && x > 0;
}

/**
 * A shape: an array of non-negative safe integers, returned as a plain copy. Each element is
 * read once (length first, then each index), and the copy is what is checked: a Proxy or a
 * getter that answers differently on a second read cannot slip past the check.
 */
export function checkShape(shape: unknown, name: string): number[] {
  if (!Array.isArray(shape)) throw new TypeError(`${name}: expected an array of dimensions, got ${describe(shape)}`);
  const length = shape.length;
  if (!(Number.isSafeInteger(length) && length <= MAX_RANK))
    throw new RangeError(`${name}: expected at most ${MAX_RANK} dimensions, got ${describe(length)}`);
  const dims: unknown[] = [];
  for (let i = 0; i < length; i++) dims.push(shape[i]);
  for (let i = 0; i < length; i++) {
    const s = dims[i];
    if (typeof s !== 'number') throw new TypeError(`${name}[${i}]: expected a number, got ${describe(s)}`);
    if (!Number.isSafeInteger(s) || s < 0)
      throw new RangeError(`${name}[${i}]: expected a non-negative integer, got ${describe(s)}`);
  }
  return dims as number[];
}

/**
 * A plain copy of an array argument of at most `max` elements, each index read once: a Proxy
 * or a sparse Array whose length lies (1e9) is refused at once instead of being walked.
 */
export function plainArray(value: unknown, name: string, max: number): unknown[] {
  if (!Array.isArray(value)) throw new TypeError(`${name}: expected an array, got ${describe(value)}`);
  const length = value.length;
  if (!(Number.isSafeInteger(length) && length <= max)) throw new RangeError(`${name}: expected at most ${max} elements, got ${describe(length)}`);
  const out: unknown[] = [];
  for (let i = 0; i < length; i++) out.push(value[i]);
  return out;
}

/** The most dimensions a shape may have. */
export const MAX_RANK = 64;

export function product(shape: readonly number[]): number {
  let p = 1;
  for (const s of shape) p *= s;
  return p;
}

/** `options` when it is an object (undefined gives {}), else a TypeError naming it. */
export function optionsObject<T extends object>(options: T | undefined, name: string): T {
  if (options === undefined) return {} as T;
  if (options === null || typeof options !== 'object' || Array.isArray(options))
    throw new TypeError(`${name}: expected an object of options, got ${describe(options)}`);
  return options;
}

/** Rejects option names the function does not know (a typo must not pass silently). */
export function checkOptionNames(options: object, known: readonly string[], name: string): void {
  if (options === null || typeof options !== 'object' || Array.isArray(options))
    throw new TypeError(`${name}: expected an object of options, got ${describe(options)}`);
  for (const key of Object.keys(options)) {
    if (!known.includes(key))
      throw new TypeError(`${name}: unknown option '${key}'; expected one of ${known.map((k) => `'${k}'`).join(', ')}`);
  }
}

export function checkOneOf<T extends string>(value: unknown, choices: readonly T[], name: string): T {
  if (typeof value !== 'string') throw new TypeError(`${name}: expected a string, got ${describe(value)}`);
  if (!(choices as readonly string[]).includes(value))
    throw new RangeError(`${name}: expected one of ${choices.map((c) => `'${c}'`).join(', ')}, got '${value}'`);
  return value as T;
}
