// Brands for the objects users create and pass back in options (filters,
// registries, shared tails). `instanceof` fails when two copies of this
// package are installed (a framework's and the app's): a brand is a
// registered symbol, the same in every copy, so each recognises the other's.

/** The registered symbol that marks instances of one of this package's classes. */
export function brandOf(name: string): symbol {
  return Symbol.for(`kafka-sse-bridge.${name}`);
}

/** Whether `value` carries the brand `name` (set on the class's prototype by `setBrand`). */
export function hasBrand(value: unknown, name: string): boolean {
  return value !== null && typeof value === 'object' && (value as Record<symbol, unknown>)[brandOf(name)] === true;
}

/** Marks every instance of `cls` with the brand `name`. */
export function setBrand(cls: { prototype: object }, name: string): void {
  Object.defineProperty(cls.prototype, brandOf(name), { value: true });
}
